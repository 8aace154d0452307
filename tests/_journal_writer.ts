// Child process of tests/disk_journal_test.ts' kill -9 test: appends frames carrying unique ids
// (u32 big-endian id, then filler) to the journal in DIR as fast as it can, one sealed block per
// simulated read of 1–200 frames, acknowledges them on cursor "w" ~5000 records behind, and after
// each seal prints "APPENDED ACKED": the highest id sealed and the position acknowledged (the
// figures the test holds the journal to after `kill -9`).
// Usage: deno run -P=test tests/_journal_writer.ts DIR FSYNC
import { DiskJournal, type DiskJournalOptions } from "../lib/internal.ts";

const [dir, fsync = "never"] = Deno.args;
const journal = await DiskJournal.open(dir, {
  fsync: fsync as DiskJournalOptions["fsync"],
  segmentBytes: 256 * 1024,
});
const out = Deno.stdout;
const enc = new TextEncoder();
const frame = new Uint8Array(600);
const w = journal.cursor("w");
const ALL = { maxRecords: Infinity, coalesce: false };
let id = 0;
let acked = 0;
let seed = 1;
out.writeSync(enc.encode("ready\n"));
for (;;) {
  seed = (seed * 1103515245 + 12345) >>> 0;
  const n = 1 + (seed % 200);
  for (let i = 0; i < n; i++) {
    new DataView(frame.buffer).setUint32(0, ++id);
    journal.appendFrame(frame, 0, 8 + (id % 500));
  }
  journal.seal();
  // A reader that lags ~5000 records behind: its position is saved at each acknowledgement
  // (and segments it passed are deleted) while the process may be killed at any moment.
  while (id - acked > 5000) {
    const b = journal.read(w, ALL)!;
    journal.ack(w, b);
    acked = b.next;
  }
  out.writeSync(enc.encode(`${id} ${acked}\n`));
  if (id % 5000 < n) await new Promise((r) => setTimeout(r, 0)); // let the fsync timer run
}

// Child process of tests/disk_journal_test.ts' kill -9 test: appends frames carrying unique ids
// (u32 big-endian id, then filler) to the journal in DIR as fast as it can, one sealed block per
// simulated read of 1–200 frames, and after each seal prints the highest id sealed (the
// "reported as appended" figure the test holds the journal to after `kill -9`).
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
let id = 0;
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
  out.writeSync(enc.encode(`${id}\n`));
  if (id % 5000 < n) await new Promise((r) => setTimeout(r, 0)); // let the fsync timer run
}

// Child process of tests/disk_journal_test.ts' disk-full tests, started under `ulimit -f` with
// SIGXFSZ ignored, so segment writes past the limit fail with EFBIG — a real kernel write error,
// as on a full disk. Appends 1000-byte frames carrying ids in blocks of 10 and prints one JSON
// line of what it saw.
// Usage: deno run -P=test tests/_journal_full.ts DIR hold|roll
//   hold: append while hasRoom (every write fails); report how much was held and readable
//   roll: append 2000 records (writes fail at the limit, each time in a new segment), close
import { DiskJournal } from "../lib/internal.ts";

const [dir, mode] = Deno.args;
const j = await DiskJournal.open(dir, {
  fsync: "never",
  segmentBytes: 1 << 20,
  cacheBytes: 64 * 1024,
});
const c = j.cursor("a");
const frame = new Uint8Array(1000);
let id = 0;
const block = () => {
  for (let i = 0; i < 10; i++) {
    new DataView(frame.buffer).setUint32(0, id++);
    j.appendFrame(frame, 0, frame.length);
  }
  j.seal();
};
if (mode === "hold") {
  for (let guard = 0; guard < 10_000 && j.hasRoom(10_000); guard++) block();
  let readable = 0;
  for (let b = j.read(c, { maxRecords: Infinity, coalesce: false }); b;) {
    readable += b.count;
    b = j.read(c, { maxRecords: Infinity, coalesce: false }, b);
  }
  const s = j.stats;
  console.log(JSON.stringify({
    held: id,
    readable,
    hasRoom: j.hasRoom(1000),
    writeErrors: s.writeErrors,
    written: s.writtenBytes,
  }));
} else {
  while (id < 2000) block();
  await j.close();
  console.log(JSON.stringify({ appended: id, writeErrors: j.stats.writeErrors }));
}
await j.close();

// The disk journal's append side (issue 12): `deno bench -P=test benches/journal.bench.ts`.
// One iteration appends one read's worth of the realistic mix (scripts/_mix.ts, as
// benches/pipeline.bench.ts: ~435 B frames, 64–512 B payloads, one 256 KiB read) the way the
// router will — every frame of the read, then one seal (one write) — and a cursor that keeps up
// reads and acknowledges it, so segments are deleted and the disk use stays flat. events/s is
// the frame count in the name divided by the time per iteration. The journal lives in a temp
// dir on the machine's disk (fsync=never: fsync is off the append path under `interval`).
// Write amplification (bytes written to segments / bytes of frames) is printed at the start.
import { crc32 } from "node:zlib";
import { crc32c, DiskJournal } from "../lib/internal.ts";
import { MixGenerator } from "../scripts/_mix.ts";

const gen = new MixGenerator({ seed: 7 });
const parts: Uint8Array[] = [];
let size = 0;
for (const kind of gen.kinds(4000)) {
  const f = gen.frame(kind);
  if (size + f.length > 256 * 1024) break;
  parts.push(f);
  size += f.length;
}
const read = new Uint8Array(size);
const starts = new Uint32Array(parts.length);
const ends = new Uint32Array(parts.length);
for (let i = 0, at = 0; i < parts.length; i++) {
  read.set(parts[i], at);
  starts[i] = at + 4;
  ends[i] = at += parts[i].length;
}
const N = parts.length;
const READ = `one read (${(size / 1024).toFixed(0)} KiB, ${N} frames)`;
const ALL = { maxRecords: Infinity, coalesce: false };

const root = Deno.makeTempDirSync({ prefix: "journal_bench_" });
const journal = await DiskJournal.open(`${root}/frames`, { fsync: "never" });
const cursor = journal.cursor("out");
const runJournal = await DiskJournal.open(`${root}/runs`, { fsync: "never" });
const runCursor = runJournal.cursor("out");
const smallJournal = await DiskJournal.open(`${root}/small`, { fsync: "never" });
const smallCursor = smallJournal.cursor("out");

function drain(j: DiskJournal, c: ReturnType<DiskJournal["cursor"]>): void {
  for (let b = j.read(c, ALL); b; b = j.read(c, ALL)) j.ack(c, b);
}

function appendRead(j: DiskJournal, c: ReturnType<DiskJournal["cursor"]>): void {
  for (let i = 0; i < N; i++) j.appendFrame(read, starts[i], ends[i]);
  j.seal();
  drain(j, c);
}

// Write amplification: whole reads, and a read of 16 frames (small reads at low rates).
for (let r = 0; r < 20; r++) appendRead(journal, cursor);
const s = journal.stats;
for (let r = 0; r < 200; r++) {
  for (let i = 0; i < 16; i++) smallJournal.appendFrame(read, starts[i], ends[i]);
  smallJournal.seal();
  drain(smallJournal, smallCursor);
}
const t = smallJournal.stats;
console.log(
  `write amplification: ${(s.writtenBytes / s.frameBytes).toFixed(5)} (${N}-frame reads),` +
    ` ${(t.writtenBytes / t.frameBytes).toFixed(4)} (16-frame reads)`,
);

Deno.bench(`journal appendFrame × ${N} + seal + read/ack: ${READ}`, { group: "journal" }, () => {
  appendRead(journal, cursor);
});

Deno.bench(`journal appendRun + seal + read/ack: ${READ}`, { group: "journal" }, () => {
  runJournal.appendRun(read, 0, size, N);
  runJournal.seal();
  drain(runJournal, runCursor);
});

const syncJournal = await DiskJournal.open(`${root}/sync`, { fsync: "never" });
const syncCursor = syncJournal.cursor("out");
Deno.bench(`journal appendFrame × ${N} + seal + fsync (await sync()): ${READ}`, {
  group: "journal",
}, async () => {
  for (let i = 0; i < N; i++) syncJournal.appendFrame(read, starts[i], ends[i]);
  syncJournal.seal();
  await syncJournal.sync();
  drain(syncJournal, syncCursor);
});

Deno.bench(`crc32c alone (JS; blocks of earlier builds): ${READ}`, { group: "journal" }, () => {
  crc32c(read);
});

Deno.bench(
  `crc32 alone (node:zlib, native; what blocks carry): ${READ}`,
  { group: "journal" },
  () => {
    crc32(read);
  },
);

Deno.bench(`memcpy alone (Uint8Array.set): ${READ}`, { group: "journal" }, () => {
  journalScratch.set(read);
});
const journalScratch = new Uint8Array(size);

globalThis.addEventListener("unload", () => {
  void journal.close();
  void runJournal.close();
  void smallJournal.close();
  void syncJournal.close();
  try {
    Deno.removeSync(root, { recursive: true });
  } catch { /* a temp dir */ }
});

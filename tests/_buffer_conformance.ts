// The conformance suite every Buffer (lib/pipeline/buffer.ts) must pass: the memory store
// (tests/memory_buffer_test.ts) and the disk journal (tests/disk_journal_conformance_test.ts).
// `bufferConformance(name, make)` registers one Deno.test per case, named `<name>: <case>`.
// Multi-cursor cases run only for a buffer declared `multiCursor` (a memory buffer has one reader).
import { assert, assertBytesEqual, assertEquals } from "./_assert.ts";
import type { Buffer, BufferBatch, Cursor, ReadLimits } from "../lib/internal.ts";

/** Makes an empty buffer whose budget is `maxBytes` (a fresh one per case). */
export type MakeBuffer = (maxBytes: number) => Buffer | Promise<Buffer>;

/** What the buffer under test supports beyond the interface's minimum. */
export interface ConformanceOptions {
  /** Several cursors, each reading every record (a shared journal). Default false. */
  readonly multiCursor?: boolean;
}

const ONE: ReadLimits = { maxRecords: Infinity, coalesce: false };
const MERGED: ReadLimits = { maxRecords: Infinity, coalesce: true };
const MIB = 1024 * 1024;

/** Frame `i` of `len` bytes: a pattern of `i` (so an overwritten or misplaced byte shows). */
function frame(i: number, len: number): Uint8Array {
  const f = new Uint8Array(len);
  for (let j = 0; j < len; j++) f[j] = (i * 31 + j * 7 + (i >>> 8)) & 255;
  return f;
}

/** A varied length for frame `i` (1 B … ~2 KiB; every 17th empty). */
const lenOf = (i: number) => (i % 17 === 0 ? 0 : 1 + ((i * 977) % 2048));

/** `frames` laid out as the wire carries them: `[u32 BE length][bytes]` each. */
function wire(frames: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(frames.reduce((n, f) => n + 4 + f.length, 0));
  let p = 0;
  for (const f of frames) {
    new DataView(out.buffer).setUint32(p, f.length);
    out.set(f, p + 4);
    p += 4 + f.length;
  }
  return out;
}

/** The frames of a batch (copies), checking that they fill `bytes` exactly. */
function framesOf(b: BufferBatch): Uint8Array[] {
  const out: Uint8Array[] = [];
  const bytes = b.bytes;
  let p = 0;
  for (let i = 0; i < b.count; i++) {
    assert(p + 4 <= bytes.length, `batch ${b.first}: record ${i} has no length prefix`);
    const n = ((bytes[p] << 24) | (bytes[p + 1] << 16) | (bytes[p + 2] << 8) | bytes[p + 3]) >>> 0;
    assert(p + 4 + n <= bytes.length, `batch ${b.first}: record ${i} runs past the batch`);
    out.push(bytes.slice(p + 4, p + 4 + n));
    p += 4 + n;
  }
  assertEquals(p, bytes.length, `batch ${b.first}: bytes beyond its ${b.count} records`);
  return out;
}

function appendFrames(buf: Buffer, frames: readonly Uint8Array[]): void {
  for (const f of frames) buf.appendFrame(f, 0, f.length);
}

/**
 * Reads and acknowledges everything sealed, one batch at a time: the frames in order, the
 * number of batches and their bytes concatenated.
 */
function drain(
  buf: Buffer,
  c: Cursor,
  limits = ONE,
): { frames: Uint8Array[]; batches: number; bytes: Uint8Array } {
  const frames: Uint8Array[] = [], parts: Uint8Array[] = [];
  let batches = 0, prev: BufferBatch | undefined;
  for (let b = buf.read(c, limits); b; b = buf.read(c, limits)) {
    assert(batches++ < 1_000_000, "drain does not end");
    assert(b.count > 0, `batch ${b.first} is empty`);
    assertEquals(b.next, b.first + b.count, "next = first + count");
    if (prev) assertEquals(b.first, prev.next, "sequence numbers continue from batch to batch");
    frames.push(...framesOf(b));
    parts.push(b.bytes.slice());
    buf.ack(c, b);
    prev = b;
  }
  return { frames, batches, bytes: concat(parts) };
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) out.set(p, at), at += p.length;
  return out;
}

function assertFrames(actual: readonly Uint8Array[], expected: readonly Uint8Array[]): void {
  assertEquals(actual.length, expected.length, "record count");
  for (let i = 0; i < expected.length; i++) {
    assertBytesEqual(actual[i], expected[i], `record ${i} differs`);
  }
}

const wireBytes = (frames: readonly Uint8Array[]) => frames.reduce((n, f) => n + 4 + f.length, 0);

/** Registers the conformance cases for the buffers `make` creates. */
export function bufferConformance(
  name: string,
  make: MakeBuffer,
  options: ConformanceOptions = {},
): void {
  const test = (what: string, fn: (buf: Buffer) => void | Promise<void>, maxBytes = 64 * MIB) =>
    Deno.test(`${name}: ${what}`, async () => {
      const buf = await make(maxBytes);
      try {
        await fn(buf);
      } finally {
        await buf.close();
      }
    });

  test("records come back in order, byte for byte, with continuous sequence numbers", (buf) => {
    const c = buf.cursor("out");
    const frames = Array.from({ length: 500 }, (_, i) => frame(i, lenOf(i)));
    const at = [0, 1, 2, 50, 51, 200, 333, 499];
    for (let i = 0; i < frames.length; i++) {
      buf.appendFrame(frames[i], 0, frames[i].length);
      if (at.includes(i)) buf.seal();
    }
    buf.seal();
    const { frames: got, batches } = drain(buf, c);
    assertFrames(got, frames);
    assert(batches >= at.length, `${batches} batches for ${at.length + 1} seals`);
    assertEquals([buf.records, buf.bytes], [0, 0]);
  });

  test("bytes and records count length prefixes and every unacknowledged record", (buf) => {
    const c = buf.cursor("out");
    // Small enough that the open batch is not sealed early for want of room.
    const open = Array.from({ length: 10 }, (_, i) => frame(i, i * 10));
    appendFrames(buf, open);
    assertEquals([buf.openRecords, buf.openBytes], [10, wireBytes(open)]);
    assertEquals([buf.records, buf.bytes], [10, wireBytes(open)]);
    buf.seal();
    assertEquals([buf.openRecords, buf.openBytes], [0, 0]);
    drain(buf, c);
    const frames = Array.from({ length: 40 }, (_, i) => frame(i, lenOf(i)));
    appendFrames(buf, frames.slice(0, 30));
    assertEquals([buf.records, buf.bytes], [30, wireBytes(frames.slice(0, 30))]);
    buf.seal();
    appendFrames(buf, frames.slice(30));
    assertEquals([buf.records, buf.bytes], [40, wireBytes(frames)]);
    buf.seal();
    const b = buf.read(c, ONE)!;
    buf.ack(c, b);
    assertEquals(buf.records, 40 - b.count);
    assertEquals(buf.bytes, wireBytes(frames) - b.bytes.length);
    drain(buf, c);
    assertEquals([buf.records, buf.bytes], [0, 0]);
  });

  test("a run appended in one piece equals the same frames appended one by one", async (buf) => {
    const frames = Array.from({ length: 64 }, (_, i) => frame(i, lenOf(i + 5)));
    const run = wire(frames);
    const c = buf.cursor("out");
    const pad = new Uint8Array(run.length + 10);
    pad.set(run, 7); // not at offset 0 of its buffer
    buf.appendRun(pad, 7, 7 + run.length, frames.length);
    assertEquals([buf.records, buf.bytes], [frames.length, run.length]);
    buf.seal();
    const viaRun = drain(buf, c).frames;
    const other = await make(64 * MIB);
    try {
      const c2 = other.cursor("out");
      appendFrames(other, frames);
      other.seal();
      assertEquals([other.records, other.bytes], [frames.length, run.length]);
      const oneByOne = drain(other, c2, MERGED).bytes;
      assertBytesEqual(oneByOne, run, "appended one by one, the batches are the run byte for byte");
      assertFrames(viaRun, frames);
    } finally {
      await other.close();
    }
  });

  test("nothing is readable before seal; readable() resolves on seal", async (buf) => {
    const c = buf.cursor("out");
    assertEquals(buf.read(c, ONE), undefined);
    assertEquals(buf.openSince, Infinity, "openSince with nothing open");
    const t0 = performance.now();
    appendFrames(buf, [frame(1, 10), frame(2, 20)]);
    const t1 = performance.now();
    assertEquals(buf.read(c, ONE), undefined, "appended, not sealed: not readable");
    assert(buf.openSince >= t0 && buf.openSince <= t1, `openSince ${buf.openSince}`);
    let woke = false;
    const waiting = buf.readable(c).then(() => woke = true);
    await new Promise((r) => setTimeout(r, 10));
    assertEquals(woke, false, "readable() before any seal");
    buf.seal();
    await waiting;
    const b = buf.read(c, ONE)!;
    assertEquals(b.count, 2);
    assert(b.since >= t0 && b.since <= t1, "since is the first append's time");
    let again = false;
    await buf.readable(c).then(() => again = true); // a sealed batch is waiting: at once
    assert(again);
    buf.ack(c, b);
  });

  test("readable() resolves when the buffer closes", async () => {
    const buf = await make(MIB);
    const c = buf.cursor("out");
    const waiting = buf.readable(c);
    let settled = false;
    waiting.then(() => settled = true);
    await new Promise((r) => setTimeout(r, 10));
    assertEquals(settled, false);
    await buf.close();
    const timeout = new Promise<"timeout">((r) => {
      const t = setTimeout(() => r("timeout"), 2000);
      waiting.then(() => clearTimeout(t));
    });
    assertEquals(await Promise.race([waiting.then(() => "woke" as const), timeout]), "woke");
  });

  test("reading does not move the cursor; after reads beyond batches in flight", (buf) => {
    const c = buf.cursor("out");
    for (let i = 0; i < 3; i++) {
      appendFrames(buf, [frame(i, 100 + i)]);
      buf.seal();
    }
    const b1 = buf.read(c, ONE)!;
    assertEquals(buf.read(c, ONE)!.first, b1.first, "a second read returns the same batch");
    const b2 = buf.read(c, ONE, b1)!;
    assertEquals(b2.first, b1.next);
    const b3 = buf.read(c, ONE, b2)!;
    assertEquals(b3.first, b2.next);
    assertEquals(buf.read(c, ONE, b3), undefined, "nothing beyond the last sealed batch");
    assertFrames(
      [...framesOf(b1), ...framesOf(b2), ...framesOf(b3)],
      [0, 1, 2].map((i) => frame(i, 100 + i)),
    );
    buf.ack(c, b1);
    buf.ack(c, b2);
    buf.ack(c, b3);
    assertEquals(buf.records, 0);
  });

  test("a window of batches in flight: read after read without ack, acknowledged in order while more is appended", (buf) => {
    // What a delivery with `concurrency` 4 does: up to 4 batches read and not acknowledged,
    // the next read after the newest one, the oldest acknowledged first, appends meanwhile
    // (enough to roll chunks, segments and the cache over: ~2 MiB).
    const c = buf.cursor("out");
    const frames = Array.from({ length: 2000 }, (_, i) => frame(i, lenOf(i)));
    const inFlight: { batch: BufferBatch; copy: Uint8Array }[] = [];
    const got: Uint8Array[] = [];
    let appended = 0, held = 0, heldBytes = 0;
    const take = () => {
      const last = inFlight.at(-1)?.batch;
      const b = last ? buf.read(c, ONE, last) : buf.read(c, ONE);
      if (!b) return false;
      if (last) assertEquals(b.first, last.next, "the read after the newest batch in flight");
      inFlight.push({ batch: b, copy: b.bytes.slice() });
      return true;
    };
    for (let turn = 0; turn < 100_000 && (appended < frames.length || inFlight.length); turn++) {
      // Append a few reads' worth, each sealed.
      for (let k = 0; k < 3 && appended < frames.length; k++) {
        const n = Math.min(1 + (turn % 7), frames.length - appended);
        const part = frames.slice(appended, appended + n);
        appendFrames(buf, part);
        buf.seal();
        appended += n;
        held += n;
        heldBytes += wireBytes(part);
      }
      while (inFlight.length < 4 && take());
      assertEquals([buf.records, buf.bytes], [held, heldBytes], "in flight is still held");
      // The oldest batch in flight settles: its bytes are as read, then it is acknowledged.
      const head = inFlight.shift();
      if (!head) continue;
      assertBytesEqual(head.batch.bytes, head.copy, `batch ${head.batch.first} changed in flight`);
      got.push(...framesOf(head.batch));
      buf.ack(c, head.batch);
      held -= head.batch.count;
      heldBytes -= head.batch.bytes.length;
    }
    assertFrames(got, frames);
    assertEquals([buf.records, buf.bytes], [0, 0]);
  });

  test("batches in flight keep their bytes while later ones are appended and read; a later one is not acknowledged first", (buf) => {
    const c = buf.cursor("out");
    const frames = Array.from({ length: 1200 }, (_, i) => frame(i, 1000 + (i % 50)));
    // Four batches read, none acknowledged.
    const first: BufferBatch[] = [];
    for (let i = 0; i < 4; i++) {
      appendFrames(buf, frames.slice(i * 10, i * 10 + 10));
      buf.seal();
      const last = first.at(-1);
      first.push(last ? buf.read(c, ONE, last)! : buf.read(c, ONE)!);
    }
    const copies = first.map((b) => b.bytes.slice());
    // ~1.1 MiB more appended and read (not acknowledged: the oldest is still in flight).
    let last = first[3];
    for (let i = 40; i < frames.length; i += 20) {
      appendFrames(buf, frames.slice(i, i + 20));
      buf.seal();
      last = buf.read(c, ONE, last)!;
      assert(last !== undefined, `the read after batch in flight ${i}`);
    }
    for (let i = 0; i < 4; i++) {
      assertBytesEqual(first[i].bytes, copies[i], `batch ${i} in flight changed`);
    }
    let threw = false;
    try {
      buf.ack(c, first[1]);
    } catch {
      threw = true;
    }
    assert(threw, "a later batch in flight cannot be acknowledged before the oldest");
    for (const b of first) buf.ack(c, b);
    const rest = drain(buf, c).frames;
    assertFrames([...first.flatMap(framesOf), ...rest], frames);
  });

  test("an acknowledgement out of order throws and changes nothing", (buf) => {
    const c = buf.cursor("out");
    appendFrames(buf, [frame(1, 10)]);
    buf.seal();
    appendFrames(buf, [frame(2, 10)]);
    buf.seal();
    const b1 = buf.read(c, ONE)!;
    const b2 = buf.read(c, ONE, b1)!;
    let threw = false;
    try {
      buf.ack(c, b2);
    } catch {
      threw = true;
    }
    assert(threw, "acknowledging the second batch before the first must throw");
    assertEquals(buf.records, 2);
    buf.ack(c, b1);
    buf.ack(c, b2);
    assertEquals(buf.records, 0);
  });

  test("maxRecords bounds a merged read; every record is still read once, in order", (buf) => {
    const c = buf.cursor("out");
    const frames = Array.from({ length: 20 }, (_, i) => frame(i, 50));
    for (const f of frames) {
      buf.appendFrame(f, 0, f.length);
      buf.seal();
    }
    const limits = { maxRecords: 3, coalesce: true };
    const got: Uint8Array[] = [];
    for (let b = buf.read(c, limits), n = 0; b; b = buf.read(c, limits)) {
      assert(n++ < 100, "reads do not end");
      assert(b.count >= 1 && b.count <= 3, `read of ${b.count} records with maxRecords 3`);
      got.push(...framesOf(b));
      buf.ack(c, b);
    }
    assertFrames(got, frames);
  });

  test("a merged read holds back-to-back batches whole; counts and bytes add up", (buf) => {
    const c = buf.cursor("out");
    const frames = Array.from({ length: 30 }, (_, i) => frame(i, 10 + ((i * 37) % 200)));
    for (let i = 0; i < frames.length; i += 5) {
      appendFrames(buf, frames.slice(i, i + 5));
      buf.seal();
    }
    const first = buf.read(c, ONE)!;
    const merged = buf.read(c, MERGED)!;
    assertEquals(merged.first, first.first, "a merged read starts at the oldest batch");
    assert(merged.count >= first.count && merged.count % 5 === 0, `merged ${merged.count}`);
    assertEquals(merged.next, merged.first + merged.count);
    assertFrames(framesOf(merged), frames.slice(0, merged.count));
    buf.ack(c, merged);
    assertEquals(buf.records, frames.length - merged.count);
    assertEquals(buf.bytes, wireBytes(frames.slice(merged.count)));
    const rest = drain(buf, c, MERGED).frames;
    assertFrames(rest, frames.slice(merged.count));
  });

  test("a frame larger than any chunk is stored whole", (buf) => {
    const c = buf.cursor("out");
    const big = frame(7, 3 * MIB + 13);
    appendFrames(buf, [frame(1, 10), big, frame(2, 20)]);
    buf.seal();
    assertFrames(drain(buf, c, MERGED).frames, [frame(1, 10), big, frame(2, 20)]);
  });

  test("hasRoom says exactly whether a record fits the budget", (buf) => {
    const c = buf.cursor("out");
    assertEquals(buf.maxBytes, 100_000);
    assert(buf.hasRoom(100_000) && !buf.hasRoom(100_001), "empty buffer");
    let i = 0;
    while (buf.hasRoom(4 + 1000)) appendFrames(buf, [frame(i++, 1000)]);
    assertEquals(buf.bytes, i * 1004);
    assert(buf.bytes <= buf.maxBytes);
    const left = buf.maxBytes - buf.bytes;
    assert(buf.hasRoom(left) && !buf.hasRoom(left + 1), `at ${buf.bytes} bytes`);
    buf.seal();
    drain(buf, c);
    assert(buf.hasRoom(100_000), "room again once acknowledged");
  }, 100_000);

  test("eventMs is the oldest noted time among a batch's reads; unknown is Infinity", (buf) => {
    const c = buf.cursor("out");
    appendFrames(buf, [frame(0, 10)]);
    buf.seal();
    assertEquals(buf.read(c, ONE)!.eventMs, Infinity, "no time noted");
    buf.ack(c, buf.read(c, ONE)!);
    for (const ms of [5000, 3000, 4000]) { // three reads into one batch
      buf.noteEventTime(ms);
      appendFrames(buf, [frame(ms, 10), frame(ms + 1, 10)]);
    }
    buf.seal();
    buf.noteEventTime(9000);
    appendFrames(buf, [frame(9, 10)]);
    buf.noteEventTime(8000); // a later read into the open batch counts too
    appendFrames(buf, [frame(8, 10)]);
    buf.seal();
    const b1 = buf.read(c, ONE)!;
    assertEquals([b1.count, b1.eventMs], [6, 3000]);
    const b2 = buf.read(c, ONE, b1)!;
    assertEquals([b2.count, b2.eventMs], [2, 8000]);
    assert(b2.since >= b1.since);
    buf.ack(c, b1);
    buf.ack(c, b2);
  });

  test(
    "reused space never corrupts a batch not yet acknowledged (1000 rounds, 4 in flight)",
    (buf) => {
      const c = buf.cursor("out");
      const inFlight: { b: BufferBatch; frames: Uint8Array[] }[] = [];
      let seq = 0, read = 0;
      for (let round = 0; round < 1000; round++) {
        const frames: Uint8Array[] = [];
        const n = 1 + (round % 7);
        for (let k = 0; k < n; k++) {
          frames.push(
            frame(seq++, 200 + ((round * 131 + k * 977) % 3000)),
          );
        }
        appendFrames(buf, frames);
        buf.seal();
        // The round's records, in one batch or several (a buffer may seal early for room).
        const got: Uint8Array[] = [];
        for (let b = buf.read(c, ONE, inFlight.at(-1)?.b); b; b = buf.read(c, ONE, b)) {
          const copy = framesOf(b);
          got.push(...copy);
          inFlight.push({ b, frames: copy });
        }
        assertFrames(got, frames);
        read += got.length;
        while (inFlight.length > 4) {
          const oldest = inFlight.shift()!;
          // Its bytes are still intact after four more rounds of appends into reused space.
          assertFrames(framesOf(oldest.b), oldest.frames);
          buf.ack(c, oldest.b);
        }
      }
      for (const f of inFlight) {
        assertFrames(framesOf(f.b), f.frames);
        buf.ack(c, f.b);
      }
      assertEquals([buf.records, buf.bytes, read], [0, 0, seq]);
    },
    256 * 1024,
  );

  test("close with unacknowledged records resolves and keeps their count", async () => {
    const buf = await make(MIB);
    const c = buf.cursor("out");
    appendFrames(buf, [frame(1, 100), frame(2, 100)]);
    buf.seal();
    appendFrames(buf, [frame(3, 100)]); // open, not sealed
    const b = buf.read(c, ONE)!;
    assertEquals(b.count, 2);
    await buf.sync();
    await buf.close();
    assertEquals([buf.records, buf.bytes], [3, 3 * 104], "unflushed records stay counted");
  });

  if (options.multiCursor) {
    test("each cursor reads every record; space is freed once every cursor acknowledged", (buf) => {
      const a = buf.cursor("a"), b = buf.cursor("b");
      const frames = Array.from({ length: 50 }, (_, i) => frame(i, lenOf(i)));
      appendFrames(buf, frames.slice(0, 25));
      buf.seal();
      appendFrames(buf, frames.slice(25));
      buf.seal();
      const viaA = drain(buf, a).frames;
      assertFrames(viaA, frames);
      assertEquals(buf.records, 50, "b has acknowledged nothing yet");
      assertFrames(drain(buf, b).frames, frames);
      assertEquals([buf.records, buf.bytes], [0, 0]);
    });

    test("a cursor created later starts at the oldest unacknowledged record", (buf) => {
      const a = buf.cursor("a");
      appendFrames(buf, [frame(1, 10)]);
      buf.seal();
      appendFrames(buf, [frame(2, 10)]);
      buf.seal();
      const b1 = buf.read(a, ONE)!;
      const late = buf.cursor("late");
      const first = buf.read(late, ONE)!;
      assertEquals(first.first, b1.first);
      assertEquals(buf.cursor("a"), a, "the same name is the same cursor");
      drain(buf, a);
      drain(buf, late);
    });
  }
}

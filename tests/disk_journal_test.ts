// The disk journal (issue 12 phase 1): append/read/ack with several cursors, segment deletion,
// budgets, saved positions, recovery from each kind of damage (quarantined, the rest replayed),
// directory errors, and a real child process killed with SIGKILL while appending.
import { assert, assertBytesEqual, assertEquals, assertRejects, assertThrows } from "./_assert.ts";
import {
  BLOCK_MAGIC,
  BLOCK_MAGIC_CRC32C,
  blockCrc32,
  HEADER_BYTES,
} from "../lib/pipeline/_journal_format.ts";
import type { BufferBatch, Cursor } from "../lib/pipeline/buffer.ts";
import {
  crc32c,
  DiskJournal,
  type DiskJournalOptions,
  type JournalDamage,
  JournalDirError,
} from "../lib/internal.ts";

const ALL = { maxRecords: Infinity, coalesce: false };

/** A frame body carrying `id` (u32) and `id % 97` filler bytes. */
function body(id: number): Uint8Array {
  const b = new Uint8Array(4 + (id % 97)).fill(id & 0xff);
  new DataView(b.buffer).setUint32(0, id);
  return b;
}

/** The ids of a batch's frames. */
function ids(b: BufferBatch): number[] {
  const out: number[] = [];
  const v = new DataView(b.bytes.buffer, b.bytes.byteOffset, b.bytes.byteLength);
  let p = 0;
  for (let i = 0; i < b.count; i++) {
    const len = v.getUint32(p);
    out.push(len >= 4 ? v.getUint32(p + 4) : -1);
    p += 4 + len;
  }
  assertEquals(p, b.bytes.length, "batch bytes hold exactly count frames");
  return out;
}

/** Appends ids `[from, to)` in blocks of `per`. */
function append(j: DiskJournal, from: number, to: number, per = 10): void {
  for (let id = from; id < to; id++) {
    const b = body(id);
    j.appendFrame(b, 0, b.length);
    if ((id - from + 1) % per === 0) j.seal();
  }
  j.seal();
}

/** Reads (and acks, when `ack`) everything readable for `c`: the ids in order. */
function drain(j: DiskJournal, c: Cursor, ack = true, maxRecords = Infinity): number[] {
  const out: number[] = [];
  let prev: BufferBatch | undefined;
  for (let guard = 0; guard < 1_000_000; guard++) {
    const b = j.read(c, { maxRecords, coalesce: false }, ack ? undefined : prev);
    if (!b) break;
    out.push(...ids(b));
    if (ack) j.ack(c, b);
    prev = b;
  }
  return out;
}

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from }, (_, i) => from + i);
}

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "journal_test_" });
  try {
    await fn(`${dir}/journal`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function open(dir: string, o: DiskJournalOptions = {}, damage: JournalDamage[] = []) {
  return await DiskJournal.open(dir, { fsync: "never", onDamage: (d) => damage.push(d), ...o });
}

async function segmentFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(`${dir}/segments`)) {
    if (e.name.endsWith(".seg")) out.push(e.name);
  }
  return out.sort();
}

Deno.test("crc32c matches the published test vectors (RFC 3720 B.4, '123456789')", () => {
  const enc = new TextEncoder();
  assertEquals(crc32c(enc.encode("123456789")), 0xe3069283);
  assertEquals(crc32c(new Uint8Array(32)), 0x8a9136aa);
  assertEquals(crc32c(new Uint8Array(32).fill(0xff)), 0x62a8ab43);
  assertEquals(crc32c(new Uint8Array(32).map((_, i) => i)), 0x46dd794e);
  assertEquals(crc32c(new Uint8Array(32).map((_, i) => 31 - i)), 0x113fdb5c);
  // Incremental over any split equals one pass.
  const data = new Uint8Array(1000).map((_, i) => (i * 7919) & 0xff);
  for (const cut of [0, 1, 7, 8, 9, 500, 999, 1000]) {
    assertEquals(crc32c(data, cut, 1000, crc32c(data, 0, cut)), crc32c(data));
  }
});

Deno.test("crc32c equals a bit-by-bit reference at every alignment and length (the word path)", () => {
  const ref = (b: Uint8Array) => {
    let c = 0xffffffff;
    for (const x of b) {
      c ^= x;
      for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    }
    return ~c >>> 0;
  };
  let seed = 12345;
  const data = new Uint8Array(5000).map(() => (seed = (seed * 1103515245 + 12345) >>> 0) >>> 24);
  for (const off of [0, 1, 2, 3, 5, 8, 13]) {
    for (const len of [0, 1, 15, 16, 63, 64, 65, 100, 257, 1000, 4096]) {
      const v = data.subarray(off, off + len);
      assertEquals(crc32c(v), ref(v), `offset ${off} length ${len}`);
      assertEquals(crc32c(data, off, off + len), ref(v), `range ${off}+${len}`);
    }
  }
  // 1 MiB of the "123456789" pattern: a long run through the word loop.
  const enc = new TextEncoder().encode("123456789");
  const big = new Uint8Array(9 * 116509).map((_, i) => enc[i % 9]);
  assertEquals(crc32c(big), ref(big));
});

Deno.test("blockCrc32 is CRC-32 (IEEE 802.3 / zlib): the published check value and a bitwise reference", () => {
  assertEquals(blockCrc32(new TextEncoder().encode("123456789")), 0xcbf43926);
  const ref = (v: Uint8Array) => {
    let c = 0xffffffff;
    for (const x of v) {
      c ^= x;
      for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0xedb88320 : c >>> 1;
    }
    return (c ^ 0xffffffff) >>> 0;
  };
  const data = new Uint8Array(700).map((_, i) => (i * 131 + 7) & 0xff);
  for (const [s, e] of [[0, 0], [0, 1], [3, 650], [1, 700], [64, 65]]) {
    assertEquals(blockCrc32(data, s, e), ref(data.subarray(s, e)), `range ${s}..${e}`);
  }
});

/** A copy of tests/fixtures/journal_v1 (written by the CRC-32C build: 300 records, 50 acked). */
async function v1Journal(dir: string): Promise<void> {
  const from = new URL("./fixtures/journal_v1/", import.meta.url).pathname;
  for (const sub of ["segments", "cursors"]) {
    await Deno.mkdir(`${dir}/${sub}`, { recursive: true });
    for await (const e of Deno.readDir(`${from}${sub}`)) {
      await Deno.copyFile(`${from}${sub}/${e.name}`, `${dir}/${sub}/${e.name}`);
    }
  }
}

Deno.test("journal: a journal written by an earlier build (VMQj blocks, CRC-32C) is replayed from its saved position; new blocks are VMQk (CRC-32) and both read back after a reopen", async () => {
  await withDir(async (dir) => {
    await v1Journal(dir);
    const seg = `${dir}/segments/00000000000000000000.seg`;
    const old = await Deno.readFile(seg);
    assertEquals(new DataView(old.buffer).getUint32(0), BLOCK_MAGIC_CRC32C, "the fixture is old");
    const damage: JournalDamage[] = [];
    let j = await open(dir, {}, damage);
    let c = j.cursor("out");
    assertEquals(drain(j, c, false), range(50, 300), "replayed from the saved position");
    assertEquals(damage, []);
    append(j, 300, 320);
    await j.close();
    const segs = await segmentFiles(dir);
    assertEquals(segs.length, 2, "the old segment stays as it was; new blocks go to a new one");
    assertBytesEqual(await Deno.readFile(seg), old);
    const fresh = await Deno.readFile(`${dir}/segments/${segs[1]}`);
    assertEquals(new DataView(fresh.buffer).getUint32(0), BLOCK_MAGIC, "new blocks: VMQk");
    j = await open(dir, { cacheBytes: 0 }, damage);
    c = j.cursor("out");
    assertEquals(drain(j, c), range(50, 320), "old and new blocks read back from disk");
    assertEquals(damage, []);
    await j.close();
  });
});

Deno.test("journal damage: a flipped byte in an earlier build's block (CRC-32C) is still found and quarantined", async () => {
  await withDir(async (dir) => {
    await v1Journal(dir);
    const seg = `${dir}/segments/00000000000000000000.seg`;
    const bytes = await Deno.readFile(seg);
    const v = new DataView(bytes.buffer);
    const offs: number[] = [];
    for (let at = 0; at + HEADER_BYTES <= bytes.length; at += HEADER_BYTES + v.getUint32(at + 4)) {
      offs.push(at);
    }
    bytes[offs[10] + HEADER_BYTES + 17] ^= 0x01; // block 10: ids 100..109
    await Deno.writeFile(seg, bytes);
    const damage: JournalDamage[] = [];
    const j = await open(dir, {}, damage);
    const c = j.cursor("out");
    assertEquals(drain(j, c), [...range(50, 100), ...range(110, 300)]);
    assertEquals(damage.length, 1);
    assertEquals(damage[0].offset, offs[10]);
    assertEquals(damage[0].reason, "checksum mismatch");
    await j.close();
  });
});

Deno.test("journal: sealed blocks read in order with continuous sequence numbers; bytes count prefixes", async () => {
  await withDir(async (dir) => {
    const j = await open(dir);
    const c = j.cursor("a");
    assertEquals(j.read(c, ALL), undefined);
    const b1 = body(1);
    j.appendFrame(b1, 0, b1.length);
    assertEquals(j.openRecords, 1);
    assertEquals(j.openBytes, 4 + b1.length);
    assertEquals(j.read(c, ALL), undefined, "nothing readable before seal");
    j.seal();
    // A run: frames with prefixes, appended in one copy.
    const run = [2, 3, 4].map((id) => {
      const b = body(id);
      const f = new Uint8Array(4 + b.length);
      new DataView(f.buffer).setUint32(0, b.length);
      f.set(b, 4);
      return f;
    });
    const runBytes = new Uint8Array(run.reduce((s, f) => s + f.length, 0));
    run.reduce((at, f) => (runBytes.set(f, at), at + f.length), 0);
    j.appendRun(runBytes, 0, runBytes.length, 3);
    j.seal();
    const expectBytes = [1, 2, 3, 4].reduce((s, id) => s + 4 + body(id).length, 0);
    assertEquals(j.bytes, expectBytes);
    assertEquals(j.records, 4);
    const x = j.read(c, ALL)!;
    assertEquals([x.first, x.next, ids(x)], [0, 1, [1]]);
    const y = j.read(c, ALL, x)!;
    assertEquals([y.first, y.next, ids(y)], [1, 4, [2, 3, 4]]);
    assert(j.read(c, ALL, y) === undefined);
    assertThrows(() => j.ack(c, y), Error); // out of order
    j.ack(c, x);
    j.ack(c, y);
    assertEquals([j.bytes, j.records], [0, 0]);
    await j.close();
  });
});

Deno.test("journal: Buffer semantics — eventMs is the min of a batch's reads, since its oldest append, hasRoom at the edge, readable() on close", async () => {
  await withDir(async (dir) => {
    const j = await open(dir, { maxBytes: 1000 });
    const c = j.cursor("a");
    assertEquals(j.openSince, Infinity);
    const t0 = performance.now();
    j.noteEventTime(5000);
    const f = new Uint8Array(96);
    j.appendFrame(f, 0, 96);
    j.noteEventTime(3000);
    j.appendFrame(f, 0, 96);
    j.noteEventTime(4000);
    assert(j.openSince >= t0 && j.openSince <= performance.now());
    const since = j.openSince;
    j.seal();
    const b = j.read(c, ALL)!;
    assertEquals([b.eventMs, b.since, b.count], [3000, since, 2]);
    // 200 bytes held of 1000: exactly 800 more fit.
    assertEquals(j.bytes, 200);
    assert(j.hasRoom(800) && !j.hasRoom(801));
    assert(j.hasRoomFor(c, 800) && !j.hasRoomFor(c, 801));
    j.appendFrame(f, 0, 96);
    assert(j.hasRoom(700) && !j.hasRoom(701), "the open block counts");
    j.seal();
    const next = j.read(c, ALL, b)!;
    assertEquals(next.eventMs, Infinity, "no event time noted for that read");
    j.ack(c, b);
    j.ack(c, next);
    const waiting = j.readable(c);
    await j.close();
    await waiting; // resolves on close
  });
});

Deno.test("journal: a frame larger than a chunk (5 MiB) is written, read and replayed byte for byte", async () => {
  await withDir(async (dir) => {
    let j = await open(dir);
    let c = j.cursor("a");
    const big = new Uint8Array(5 << 20).map((_, i) => (i * 13) & 0xff);
    const small = body(7);
    j.appendFrame(small, 0, small.length);
    j.seal();
    j.appendFrame(big, 0, big.length);
    j.appendFrame(small, 0, small.length);
    j.seal();
    const check = (x: BufferBatch | undefined) => {
      assert(x && x.count === 2 && x.bytes.length === 8 + big.length + small.length);
      assertBytesEqual(x.bytes.subarray(4, 4 + big.length), big);
    };
    const first = j.read(c, ALL)!;
    check(j.read(c, ALL, first));
    j.ack(c, first);
    await j.close();
    j = await open(dir);
    c = j.cursor("a");
    check(j.read(c, ALL));
    await j.close();
  });
});

Deno.test("journal: maxRecords splits a block; `after` continues inside it", async () => {
  await withDir(async (dir) => {
    const j = await open(dir);
    const c = j.cursor("a");
    append(j, 0, 25, 25);
    assertEquals(drain(j, c, false, 7), range(0, 25));
    assertEquals(drain(j, c, true, 7), range(0, 25));
    await j.close();
  });
});

Deno.test("journal: cursors read independently; a segment is deleted once every cursor is past it", async () => {
  await withDir(async (dir) => {
    const j = await open(dir, { segmentBytes: 4096 });
    const a = j.cursor("a");
    const b = j.cursor("b");
    append(j, 0, 500);
    const segs = (await segmentFiles(dir)).length;
    assert(segs > 5, `several segments (${segs})`);
    assertEquals(drain(j, a), range(0, 500));
    assertEquals((await segmentFiles(dir)).length, segs, "b still needs them all");
    assertEquals(j.cursorStats(b).events, 500);
    assertEquals(drain(j, b, true, 100).slice(0, 3), [0, 1, 2]);
    assertEquals((await segmentFiles(dir)).length, 1, "only the current segment is left");
    assertEquals(j.stats.writtenBytes, j.stats.frameBytes + HEADER_BYTES * 50);
    await j.close();
  });
});

Deno.test("journal: positions are saved; reopen replays each cursor from its own position", async () => {
  await withDir(async (dir) => {
    let j = await open(dir, { segmentBytes: 4096 });
    let a = j.cursor("a");
    let b = j.cursor("b");
    append(j, 0, 300);
    assertEquals(drain(j, a), range(0, 300));
    for (let acked = 0; acked < 120;) {
      const x = j.read(b, { maxRecords: 120 - acked, coalesce: false })!;
      j.ack(b, x);
      acked += x.count;
    }
    await j.close();

    j = await open(dir, { segmentBytes: 4096 });
    a = j.cursor("a");
    b = j.cursor("b");
    append(j, 300, 310);
    assertEquals(drain(j, a), range(300, 310));
    assertEquals(drain(j, b), range(120, 310));
    assertEquals(j.cursorStats(b).replayed, 180);
    assertEquals(j.cursorStats(a).replayed, 0);
    assertEquals(j.stats.replayRecords, 180);
    // A new cursor starts at the oldest record kept.
    await j.close();
  });
});

Deno.test("journal: a saved position survives a session that acknowledges nothing", async () => {
  await withDir(async (dir) => {
    let j = await open(dir);
    let c = j.cursor("a");
    append(j, 0, 40); // 4 blocks: with the creation, 5 saves (an odd count)
    assertEquals(drain(j, c), range(0, 40));
    await j.close();
    j = await open(dir); // a session that only opens the cursor (one save, same position)
    c = j.cursor("a");
    assertEquals(drain(j, c), []);
    await j.close();
    j = await open(dir);
    c = j.cursor("a");
    assertEquals(drain(j, c), [], "nothing replayed: the newest position wins");
    await j.close();
  });
});

Deno.test("journal: forgetting a retired output's cursor frees the segments it pinned", async () => {
  await withDir(async (dir) => {
    let j = await open(dir, { segmentBytes: 4096 });
    j.cursor("kept");
    j.cursor("retired");
    append(j, 0, 300);
    await j.close();
    j = await open(dir, { segmentBytes: 4096 });
    const kept = j.cursor("kept");
    assertEquals(j.unclaimed, ["retired"]);
    assertEquals(drain(j, kept), range(0, 300));
    assert((await segmentFiles(dir)).length > 5, "the retired cursor still pins them");
    j.forget("retired");
    assertEquals((await segmentFiles(dir)).length, 1);
    assertEquals(j.unclaimed, []);
    await j.close();
  });
});

Deno.test("journal: a cursor's budget is its own; drop skips the newest for it only", async () => {
  await withDir(async (dir) => {
    const j = await open(dir, { segmentBytes: 2048 });
    const slow = j.cursor("slow", { maxBytes: 3000 });
    const fast = j.cursor("fast");
    let appended = 0;
    let skipped = 0;
    for (let read = 0; read < 60; read++) {
      if (!j.hasRoomFor(slow, 500)) {
        j.dropOpen(slow);
        skipped += 10;
      }
      append(j, read * 10, read * 10 + 10);
      appended += 10;
      assert(j.hasRoomFor(fast, 500), "the fast output never sees the slow one's backlog");
      drain(j, fast);
    }
    const s = j.cursorStats(slow);
    assert(s.bytes <= 3000 + 10 * (4 + 100), `slow backlog bounded (${s.bytes})`);
    assertEquals(s.dropped, skipped);
    const got = drain(j, slow);
    assertEquals(got.length + skipped, appended, "held + dropped = given");
    assertEquals(got, range(0, got.length), "the oldest are kept, the newest dropped");
    // Segments it skipped entirely were deleted already (tombstones), and reopening finds no damage.
    const damage: JournalDamage[] = [];
    await j.close();
    const k = await open(dir, {}, damage);
    assertEquals(damage, []);
    await k.close();
  });
});

Deno.test("journal: random appends, reads, acks and reopens with 3 cursors match a model", async () => {
  await withDir(async (dir) => {
    let seed = 99;
    const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 8) % n;
    const opts = { segmentBytes: 3000, cacheBytes: 2500 };
    let j = await open(dir, opts);
    const names = ["x", "y", "z"];
    let cursors = names.map((n) => j.cursor(n));
    // Model: every cursor reads every id from its acknowledged position, in order.
    const acked = [0, 0, 0];
    let next = 0;
    for (let round = 0; round < 300; round++) {
      const op = rnd(10);
      if (op < 4) {
        const n = 1 + rnd(30);
        append(j, next, next + n, 1 + rnd(12));
        next += n;
      } else if (op < 9) {
        const k = rnd(3);
        const c = cursors[k];
        // Read a few batches ahead, acknowledge some of them, in order.
        const batches: BufferBatch[] = [];
        let prev: BufferBatch | undefined;
        for (let i = 0, n = 1 + rnd(4); i < n; i++) {
          const b = j.read(c, { maxRecords: 1 + rnd(20), coalesce: false }, prev);
          if (!b) break;
          batches.push(prev = b);
        }
        const got = batches.flatMap(ids);
        assertEquals(
          got,
          range(acked[k], acked[k] + got.length),
          `round ${round} cursor ${names[k]}`,
        );
        for (const b of batches.slice(0, rnd(batches.length + 1))) {
          j.ack(c, b);
          acked[k] += b.count;
        }
        assertEquals(j.cursorStats(c).events, next - acked[k]);
      } else {
        await j.close();
        j = await open(dir, opts);
        cursors = names.map((n) => j.cursor(n));
      }
    }
    for (let k = 0; k < 3; k++) assertEquals(drain(j, cursors[k], true, 7), range(acked[k], next));
    assertEquals(
      (await segmentFiles(dir)).length,
      1,
      "everything acknowledged: only the current segment",
    );
    await j.close();
  });
});

Deno.test("journal: recycled chunks never change a batch still in flight (40 MiB through 4 MiB chunks)", async () => {
  await withDir(async (dir) => {
    const j = await open(dir, { cacheBytes: 64 << 20 });
    const fast = j.cursor("fast");
    const slow = j.cursor("slow");
    const check = (b: BufferBatch) => {
      const v = new DataView(b.bytes.buffer, b.bytes.byteOffset, b.bytes.byteLength);
      for (let i = 0, p = 0; i < b.count; i++, p += 2004) {
        assertEquals(v.getUint32(p), 2000);
        const want = ((b.first + i) * 7) & 0xff;
        for (let k = p + 4; k < p + 2004; k++) {
          if (b.bytes[k] !== want) {
            throw new Error(`record ${b.first + i} changed at byte ${k - p}`);
          }
        }
      }
    };
    let id = 0;
    const frame = new Uint8Array(2000);
    let inflight: BufferBatch | undefined;
    let slowSeen = 0;
    for (let round = 0; round < 80; round++) {
      for (let n = 0; n < 5; n++) { // 0.5 MiB per round, in blocks of 50 frames
        for (let k = 0; k < 50; k++) {
          frame.fill((id++ * 7) & 0xff);
          j.appendFrame(frame, 0, frame.length);
        }
        j.seal();
      }
      for (let b = j.read(fast, ALL); b; b = j.read(fast, ALL)) j.ack(fast, b);
      // The slow cursor keeps one batch in flight for 10 rounds (5 MiB of appends: the chunk
      // that holds it is retired and recycling runs), then acknowledges it and takes the next.
      if (round % 10 === 0) {
        if (inflight) {
          check(inflight);
          j.ack(slow, inflight);
          slowSeen += inflight.count;
        }
        inflight = j.read(slow, ALL);
      }
      check(inflight!);
    }
    check(inflight!);
    j.ack(slow, inflight!);
    slowSeen += inflight!.count;
    for (let b = j.read(slow, ALL); b; b = j.read(slow, ALL)) {
      check(b);
      j.ack(slow, b);
      slowSeen += b.count;
    }
    assertEquals(slowSeen, id);
    await j.close();
  });
});

Deno.test("journal: a cursor behind the in-memory cache reads from disk (readable() reads ahead)", async () => {
  await withDir(async (dir) => {
    const j = await open(dir, { cacheBytes: 2000, segmentBytes: 8192 });
    const c = j.cursor("late");
    append(j, 0, 400);
    await j.readable(c);
    assertEquals(drain(j, c, true, 33), range(0, 400));
    await j.close();
  });
});

Deno.test("journal: fsync=batch makes a block readable only once fsynced; readable() waits for it", async () => {
  await withDir(async (dir) => {
    const durations: number[] = [];
    const j = await open(dir, { fsync: "batch", onFsync: (s) => durations.push(s) });
    const c = j.cursor("a");
    append(j, 0, 5);
    assertEquals(j.read(c, ALL), undefined, "not durable yet");
    await j.readable(c);
    assertEquals(drain(j, c), range(0, 5));
    assert(durations.length >= 1 && j.stats.fsyncs >= 1);
    await j.close();
  });
});

Deno.test("journal: fsync=interval syncs in the background", async () => {
  await withDir(async (dir) => {
    const j = await open(dir, { fsync: "interval", fsyncMs: 20 });
    append(j, 0, 5);
    for (let i = 0; i < 200 && j.stats.fsyncs === 0; i++) {
      await new Promise((r) => setTimeout(r, 10));
    }
    assert(j.stats.fsyncs >= 1, "an fsync ran");
    await j.close();
  });
});

Deno.test("journal: a directory that cannot be created is a JournalDirError saying what to do", async () => {
  await withDir(async (dir) => {
    await Deno.mkdir(dir, { recursive: true });
    await Deno.writeTextFile(`${dir}/file`, "x");
    const e = await assertRejects(() => DiskJournal.open(`${dir}/file/journal`), JournalDirError);
    assert(
      e.message.includes("--data-dir") && e.message.includes(`${dir}/file/journal`),
      e.message,
    );
    const ro = `${dir}/ro`;
    await Deno.mkdir(`${ro}/segments`, { recursive: true });
    await Deno.chmod(`${ro}/segments`, 0o500);
    if (Deno.uid() !== 0) await assertRejects(() => DiskJournal.open(ro), JournalDirError);
    await Deno.chmod(`${ro}/segments`, 0o700);
  });
});

Deno.test("journal: a journal in use by another open is a JournalDirError", async () => {
  await withDir(async (dir) => {
    const j = await open(dir);
    // flock is per open file description: a second open in this process conflicts too.
    const e = await assertRejects(() => open(dir), JournalDirError);
    assert(e.message.includes("in use"), e.message);
    await j.close();
    await (await open(dir)).close();
  });
});

Deno.test("journal: an output that acknowledges nothing (outage) keeps its backlog on disk: the memory held stays bounded by the cache, and every record reads back", async () => {
  await withDir(async (dir) => {
    const j = await open(dir, { cacheBytes: 1 << 20 });
    const c = j.cursor("down");
    const frame = new Uint8Array(1000);
    const view = new DataView(frame.buffer);
    const reads = 1000, perRead = 40; // 40 MB of frames, 40 000 records
    let peak = 0;
    for (let r = 0; r < reads; r++) {
      for (let i = 0; i < perRead; i++) {
        view.setUint32(0, r * perRead + i);
        j.appendFrame(frame, 0, frame.length);
      }
      j.seal();
      peak = Math.max(peak, j.stats.memoryBytes);
    }
    assert(
      peak <= 16 * 2 ** 20,
      `the journal holds ${(peak / 2 ** 20).toFixed(0)} MiB of chunks for a 40 MB backlog ` +
        "(1 MiB cache): the outage must be on disk, not in memory",
    );
    const got: number[] = [];
    await j.readable(c);
    for (let b = j.read(c, { maxRecords: Infinity, coalesce: false }); b;) {
      for (let i = 0, p = 0; i < b.count; i++) {
        got.push(new DataView(b.bytes.buffer, b.bytes.byteOffset).getUint32(p + 4));
        p += 4 + new DataView(b.bytes.buffer, b.bytes.byteOffset).getUint32(p);
      }
      j.ack(c, b);
      b = j.read(c, { maxRecords: Infinity, coalesce: false });
    }
    assertEquals(got.length, reads * perRead);
    assert(got.every((id, i) => id === i), "every record, in order");
    await j.close();
  });
});

/** Runs tests/_journal_full.ts under `ulimit -f blocks` (512-byte blocks), SIGXFSZ ignored. */
async function underFileLimit(dir: string, blocks: number, mode: string) {
  const script = new URL("./_journal_full.ts", import.meta.url).pathname;
  const out = await new Deno.Command("bash", {
    args: [
      "-c",
      `trap '' XFSZ; ulimit -f ${blocks}; exec "$0" run -P=test "$1" "$2" "$3"`,
      Deno.execPath(),
      script,
      dir,
      mode,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  assertEquals(out.code, 0, new TextDecoder().decode(out.stderr));
  return JSON.parse(text.trim().split("\n").pop()!);
}

Deno.test("journal: when no write succeeds (disk full), blocks are held in memory up to a bound, then hasRoom is false", async () => {
  await withDir(async (dir) => {
    const r = await underFileLimit(dir, 1, "hold");
    assert(r.writeErrors > 0 && r.written === 0, JSON.stringify(r));
    assertEquals(r.hasRoom, false, "the outputs' on_full applies");
    assert(r.held >= 60 && r.held <= 90, `held bounded by cacheBytes (64 KiB): ${r.held}`);
    assertEquals(r.readable, r.held, "readers still get every held record");
  });
});

Deno.test("journal: failed writes are retried in a new segment; nothing is lost or damaged", async () => {
  await withDir(async (dir) => {
    const r = await underFileLimit(dir, 64, "roll"); // 32 KiB per file: every segment fills
    assertEquals(r.appended, 2000);
    assert(r.writeErrors >= 10, `writes failed (${r.writeErrors})`);
    const { got, damage, j } = await reopenAll(dir);
    assertEquals(damage, []);
    assertEquals(got.length, 2000);
    assert(got.every((id, i) => id === i), "every record, in order");
    await j.close();
  });
});

// ── Damage ─────────────────────────────────────────────────────────────────────────────────────

/** Writes ids 0..N in blocks of 10 into small segments; returns the segment names. */
async function seeded(dir: string, n = 300): Promise<string[]> {
  const j = await open(dir, { segmentBytes: 4096 });
  j.cursor("a");
  append(j, 0, n);
  await j.close();
  return await segmentFiles(dir);
}

/** Block offsets in a segment file. */
async function blockOffsets(path: string): Promise<number[]> {
  const b = await Deno.readFile(path);
  const v = new DataView(b.buffer);
  const out: number[] = [];
  for (let at = 0; at + HEADER_BYTES <= b.length; at += HEADER_BYTES + v.getUint32(at + 4)) {
    out.push(at);
  }
  return out;
}

async function reopenAll(
  dir: string,
): Promise<{ got: number[]; damage: JournalDamage[]; j: DiskJournal }> {
  const damage: JournalDamage[] = [];
  const j = await open(dir, {}, damage);
  const c = j.cursor("a");
  if (j.stats.replayRecords > 0) await j.readable(c);
  return { got: drain(j, c), damage, j };
}

Deno.test("journal damage: a torn tail is quarantined, everything before it replayed", async () => {
  await withDir(async (dir) => {
    const segs = await seeded(dir);
    const last = `${dir}/segments/${segs[segs.length - 1]}`;
    const offs = await blockOffsets(last);
    const size = (await Deno.stat(last)).size;
    const cut = offs[offs.length - 1] + 20;
    await Deno.truncate(last, cut);
    const { got, damage, j } = await reopenAll(dir);
    assertEquals(damage.length, 1);
    assertEquals([damage[0].file, damage[0].offset, damage[0].reason], [
      last,
      offs[offs.length - 1],
      "torn tail",
    ]);
    assertEquals(
      [damage[0].bytes, damage[0].lostFrom, damage[0].lostTo],
      [20, 290, 290],
      "how many records were torn is unknown",
    );
    assertEquals((await Deno.readFile(damage[0].quarantine)).length, 20);
    assertEquals(got, range(0, 290), "all but the torn block");
    assertEquals(j.stats.quarantinedBytes, 20);
    assert(size > cut);
    await j.close();
    // Reported once: the segment was rewritten without it.
    const again = await reopenAll(dir);
    assertEquals(again.damage, []);
    await again.j.close();
  });
});

Deno.test("journal damage: a tail torn inside a payload counts the torn block's records lost (its header says how many); their numbers are not reused", async () => {
  await withDir(async (dir) => {
    const segs = await seeded(dir);
    const last = `${dir}/segments/${segs[segs.length - 1]}`;
    const offs = await blockOffsets(last);
    await Deno.truncate(last, offs[offs.length - 1] + HEADER_BYTES + 5);
    const { got, damage, j } = await reopenAll(dir);
    assertEquals(damage.map((d) => [d.reason, d.lostFrom, d.lostTo]), [["torn tail", 290, 300]]);
    assertEquals(j.stats.lostRecords, 10, "delivered + lost = appended");
    assertEquals(got, range(0, 290));
    assertEquals(j.replayHead, 300, "new records start past the torn ones");
    await j.close();
  });
});

Deno.test("journal damage: flipped bytes mid-segment lose that block only", async () => {
  await withDir(async (dir) => {
    const segs = await seeded(dir);
    const path = `${dir}/segments/${segs[1]}`;
    const offs = await blockOffsets(path);
    const bytes = await Deno.readFile(path);
    const at = offs[1] + HEADER_BYTES + 30; // inside the second block's payload
    bytes[at] ^= 0x40;
    bytes[at + 1] ^= 0x01;
    await Deno.writeFile(path, bytes);
    const firstId = Number(segs[1].slice(0, 20));
    const { got, damage, j } = await reopenAll(dir);
    assertEquals(damage.length, 1);
    assertEquals([damage[0].file, damage[0].offset, damage[0].reason], [
      path,
      offs[1],
      "checksum mismatch",
    ]);
    assertEquals([damage[0].lostFrom, damage[0].lostTo], [firstId + 10, firstId + 20]);
    const lost = range(firstId + 10, firstId + 20);
    assertEquals(got, range(0, 300).filter((id) => !lost.includes(id)));
    assertEquals(j.stats.lostRecords, 10);
    await j.close();
  });
});

Deno.test("journal damage: a zero-filled block is skipped to the next good header", async () => {
  await withDir(async (dir) => {
    const segs = await seeded(dir);
    const path = `${dir}/segments/${segs[0]}`;
    const offs = await blockOffsets(path);
    const bytes = await Deno.readFile(path);
    // 512 zero bytes from inside block 1 over block 2 (a lost disk block).
    bytes.fill(0, offs[1] + 8, offs[1] + 8 + 512);
    await Deno.writeFile(path, bytes);
    const { got, damage, j } = await reopenAll(dir);
    assert(damage.length >= 1, "damage reported");
    assertEquals(damage[0].file, path);
    assertEquals(damage[0].offset, offs[1]);
    const quarantined = damage.reduce((s, d) => s + d.bytes, 0);
    const goodAfter = offs.find((o) => o >= offs[1] + 8 + 512)!;
    assertEquals(quarantined, goodAfter - offs[1], "exactly the damaged blocks");
    const lostBlocks = offs.filter((o) => o >= offs[1] && o < goodAfter).length;
    assertEquals(got.length, 300 - 10 * lostBlocks);
    assertEquals(got.slice(0, 10), range(0, 10));
    assertEquals(got[got.length - 1], 299);
    await j.close();
  });
});

Deno.test("journal damage: a missing segment is reported; the segments around it are replayed", async () => {
  await withDir(async (dir) => {
    const segs = await seeded(dir);
    const gone = `${dir}/segments/${segs[2]}`;
    const from = Number(segs[2].slice(0, 20));
    const to = Number(segs[3].slice(0, 20));
    await Deno.remove(gone);
    const { got, damage, j } = await reopenAll(dir);
    assertEquals(damage.length, 1);
    assertEquals([damage[0].file, damage[0].reason, damage[0].lostFrom, damage[0].lostTo], [
      gone,
      "missing segment",
      from,
      to,
    ]);
    assertEquals(got, range(0, 300).filter((id) => id < from || id >= to));
    await j.close();
  });
});

Deno.test("journal damage: garbage appended after the tail, and a cursor file torn, never fail open", async () => {
  await withDir(async (dir) => {
    const segs = await seeded(dir);
    const last = `${dir}/segments/${segs[segs.length - 2]}`;
    const f = await Deno.open(last, { append: true });
    await f.write(new Uint8Array(100).fill(0xab));
    f.close();
    const pos = (await Array.fromAsync(Deno.readDir(`${dir}/cursors`)))[0].name;
    const p = await Deno.readFile(`${dir}/cursors/${pos}`);
    p.fill(0xff, 0, 24); // one slot torn: the other holds
    await Deno.writeFile(`${dir}/cursors/${pos}`, p);
    const { got, damage, j } = await reopenAll(dir);
    assertEquals(damage.length, 1);
    assertEquals(damage[0].bytes, 100);
    assertEquals(got, range(0, 300));
    await j.close();
  });
});

Deno.test("journal damage while running: a block that fails its checksum when read back is skipped and reported", async () => {
  await withDir(async (dir) => {
    for (const viaReadable of [false, true]) {
      await Deno.remove(dir, { recursive: true }).catch(() => {});
      const damage: JournalDamage[] = [];
      const j = await open(dir, { cacheBytes: 2000 }, damage);
      const a = j.cursor("a");
      const b = j.cursor("b");
      append(j, 0, 300);
      // Flip a payload byte of the 6th block on disk (it left the in-memory cache long ago).
      const [seg] = await segmentFiles(dir);
      const path = `${dir}/segments/${seg}`;
      const offs = await blockOffsets(path);
      const bytes = await Deno.readFile(path);
      bytes[offs[5] + HEADER_BYTES + 9] ^= 0x10;
      await Deno.writeFile(path, bytes);
      const got: number[] = [];
      for (let guard = 0; guard < 1000; guard++) {
        if (viaReadable) {
          const ready = await Promise.race([
            j.readable(a).then(() => true),
            delay(200).then(() => false),
          ]);
          if (!ready) break;
        }
        const x = j.read(a, { maxRecords: 13, coalesce: false });
        if (!x) break;
        got.push(...ids(x));
        j.ack(a, x);
      }
      const lost = range(50, 60);
      assertEquals(
        got,
        range(0, 300).filter((id) => !lost.includes(id)),
        `viaReadable=${viaReadable}`,
      );
      assertEquals(damage.length, 1);
      assertEquals([damage[0].file, damage[0].offset, damage[0].lostFrom, damage[0].lostTo], [
        path,
        offs[5],
        50,
        60,
      ]);
      assertEquals(
        (await Deno.readFile(damage[0].quarantine)).length,
        offs[6] - offs[5] - HEADER_BYTES,
      );
      assertEquals(j.stats.lostRecords, 10);
      assertEquals([j.cursorStats(a).events, j.cursorStats(a).bytes], [0, 0]);
      // The other cursor skips it too, and its backlog no longer counts it.
      assertEquals(drain(j, b, true, 7), got);
      assertEquals([j.cursorStats(b).events, j.cursorStats(b).bytes], [0, 0]);
      await j.close();
    }
  });
});

function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

// ── kill -9 ────────────────────────────────────────────────────────────────────────────────────

Deno.test("journal: kill -9 while appending and acknowledging loses nothing reported appended; the reader resumes at or past its reported position", async () => {
  await withDir(async (dir) => {
    for (const fsync of ["never", "interval"]) {
      await Deno.remove(dir, { recursive: true }).catch(() => {});
      const child = new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-P=test",
          new URL("./_journal_writer.ts", import.meta.url).pathname,
          dir,
          fsync,
        ],
        stdout: "piped",
        stderr: "inherit",
      }).spawn();
      const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
      let text = "";
      let reported = 0;
      let reportedAcked = 0;
      const deadline = Date.now() + 20_000;
      // Let it append ~150k records (or run out of time), then SIGKILL it mid-stream.
      while (reported < 150_000 && Date.now() < deadline) {
        const r = await reader.read();
        if (r.done) break;
        text += r.value;
        const lines = text.split("\n");
        text = lines.pop()!;
        for (const l of lines) {
          const m = /^(\d+) (\d+)$/.exec(l);
          if (m) [reported, reportedAcked] = [Number(m[1]), Number(m[2])];
        }
      }
      child.kill("SIGKILL");
      await child.status;
      await reader.cancel().catch(() => {});
      assert(reported > 10_000, `the writer appended (${reported})`);
      const damage: JournalDamage[] = [];
      const j = await open(dir, {}, damage);
      // The lagging reader resumes at its saved position: at or past what it reported
      // acknowledged (saved before the report), and reads every record after it, in order.
      const c = j.cursor("w");
      await j.readable(c);
      let expect = -1;
      let resumedAt = -1;
      let prev: BufferBatch | undefined;
      for (let guard = 0; guard < 10_000_000; guard++) {
        const b = j.read(c, ALL, prev);
        if (!b) break;
        for (const id of ids(b)) {
          if (expect < 0) {
            assert(
              id - 1 >= reportedAcked,
              `resumed at ${id - 1}, ${reportedAcked} reported acked`,
            );
            expect = id;
            resumedAt = id - 1;
          }
          assertEquals(id, expect, "ids in order, none missing");
          expect++;
        }
        prev = b;
      }
      assert(
        expect - 1 >= reported,
        `${fsync}: records up to ${expect - 1} after kill -9, ${reported} reported`,
      );
      // Segments the reader had passed were deleted (the oldest kept starts past record 0).
      const oldestSegment = Number((await segmentFiles(dir))[0].slice(0, 20));
      assert(oldestSegment > 0 && oldestSegment <= resumedAt, `oldest segment ${oldestSegment}`);
      // At most a torn tail (the write in progress) is damaged.
      assert(damage.every((d) => d.reason === "torn tail"), JSON.stringify(damage.slice(0, 3)));
      await j.close();
    }
  });
});

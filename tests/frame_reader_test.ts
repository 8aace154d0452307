// Framing: the whole vector stream (with the built multi-MiB frames) under every chunking we
// can think of, over streams, Conn-like readers and real TCP sockets; zero-length frames;
// oversized and truncated frames.
import {
  ByteBuffer,
  decodeEvent,
  DEFAULT_MAX_FRAME_BYTES,
  encodeFrame,
  eventToJson,
  type FrameSource,
  FrameTooLargeError,
  readFrameBatches,
  readFrames,
  type ReadFramesOptions,
  TruncatedFrameError,
  writeFrameJsonCode,
} from "../lib/internal.ts";
import {
  assert,
  assertBytesEqual,
  assertEquals,
  assertRejects,
  assertStrictEquals,
} from "./_assert.ts";
import {
  allVectors,
  concat,
  eventBody,
  fixedChunks,
  fixtureVectors,
  frameOf,
  largeVectors,
  loadVectorDir,
  mulberry32,
  randomBytes,
  randomChunks,
  steppingReader,
  streamBytes,
  streamOf,
  toOurJson,
  UPSTREAM_DIR,
  upstreamAvailable,
  type Vector,
  withTcpStream,
} from "./_vectors.ts";

interface Collected {
  frames: Uint8Array[];
  batches: Uint8Array[][];
  error?: unknown;
}

/** Reads `source` to the end (or the first error), keeping every frame and batch. */
async function collect(source: FrameSource, options?: ReadFramesOptions): Promise<Collected> {
  const got: Collected = { frames: [], batches: [] };
  try {
    for await (const batch of readFrameBatches(source, options)) {
      got.batches.push(batch);
      got.frames.push(...batch);
    }
  } catch (e) {
    got.error = e;
  }
  return got;
}

/** Fails unless `got` holds exactly the bodies of `vectors`, in order, and no error. */
function assertFrames(got: Collected, vectors: readonly Vector[], what: string): void {
  if (got.error) throw new Error(`${what}: unexpected error`, { cause: got.error });
  assertStrictEquals(got.frames.length, vectors.length, `${what}: frame count`);
  for (let i = 0; i < vectors.length; i++) {
    assertBytesEqual(got.frames[i], vectors[i].body, `${what}: frame ${vectors[i].name}`);
  }
}

const all = allVectors();
const stream = streamBytes(all);
const small = fixtureVectors();
const smallStream = streamBytes(small);

Deno.test("the stream holds all 157 frames, 7 of them multi-MiB and one empty", () => {
  assertStrictEquals(all.length, 157);
  assertEquals(all.map((v) => v.no), Array.from({ length: 157 }, (_, i) => i + 1));
  assertStrictEquals(all.filter((v) => v.body.length > 1 << 20).length, 7);
  assertStrictEquals(all.filter((v) => v.body.length === 0).length, 1);
  assert(stream.bytes.length > 15_000_000, `stream of ${stream.bytes.length} bytes`);
});

Deno.test("whole stream in one chunk: ReadableStream and Conn-like reader", async () => {
  assertFrames(await collect(streamOf([stream.bytes])), all, "one-chunk stream");
  assertFrames(await collect(steppingReader(stream.bytes, Infinity)), all, "reader");
  // readFrames is the flattened form.
  const flat: Uint8Array[] = [];
  for await (const f of readFrames(streamOf([stream.bytes]))) flat.push(f);
  assertFrames({ frames: flat, batches: [] }, all, "readFrames");
});

Deno.test("1-byte chunks: every byte its own read", async () => {
  const reader = steppingReader(stream.bytes, 1);
  assertFrames(await collect(reader), all, "1-byte reads");
  assertStrictEquals(reader.reads, stream.bytes.length);
  // And as a ReadableStream of 1-byte chunks (small frames: a chunk object per byte).
  assertFrames(await collect(streamOf(fixedChunks(smallStream.bytes, 1))), small, "1-byte stream");
});

Deno.test("60 seeded random chunkings (1 B..64 KiB, biased to split headers)", async () => {
  for (let seed = 1; seed <= 60; seed++) {
    const rng = mulberry32(seed);
    const chunks = randomChunks(stream.bytes, rng, {
      frameStarts: stream.starts,
      headerBias: seed % 3 === 0 ? 1 : 0.5,
      maxChunk: seed % 10 === 0 ? 64 : 64 * 1024,
    });
    assertStrictEquals(concat(chunks).length, stream.bytes.length);
    const source = seed % 2 ? streamOf(chunks) : chunkReader(chunks);
    assertFrames(
      await collect(source, { maxReadBytes: seed % 5 === 0 ? 16 * 1024 : 1 << 20 }),
      all,
      `seed ${seed}`,
    );
  }
});

/** A Conn-like reader that returns the given chunks, one (or part of one) per read. */
function chunkReader(chunks: readonly Uint8Array[]): FrameSource {
  let i = 0, off = 0;
  return {
    read(p: Uint8Array): Promise<number | null> {
      if (i >= chunks.length) return Promise.resolve(null);
      const c = chunks[i];
      const n = Math.min(p.length, c.length - off);
      p.set(c.subarray(off, off + n));
      off += n;
      if (off === c.length) (i++, off = 0);
      return Promise.resolve(n);
    },
  };
}

Deno.test("every header split point: cuts at offsets 1..3 of each header and right after it", async () => {
  for (let k = 1; k <= 4; k++) {
    const cuts = smallStream.starts.map((s) => s + k);
    const chunks: Uint8Array[] = [];
    let prev = 0;
    for (const c of [...cuts, smallStream.bytes.length]) {
      if (c > prev) chunks.push(smallStream.bytes.subarray(prev, c));
      prev = Math.max(prev, c);
    }
    assertFrames(await collect(streamOf(chunks)), small, `cut at +${k}`);
  }
});

Deno.test("many frames in one chunk come out together as one batch", async () => {
  const got = await collect(streamOf([smallStream.bytes]), { maxReadBytes: 1 << 20 });
  assertFrames(got, small, "one chunk");
  const biggest = Math.max(...got.batches.map((b) => b.length));
  assert(biggest >= 50, `largest batch holds only ${biggest} frames`);
  // 100 copies of a tiny frame in one read.
  const tiny = frameOf(Uint8Array.from([0x0a, 0x00]));
  const many = await collect(streamOf([concat(Array(100).fill(tiny))]));
  assertStrictEquals(many.frames.length, 100);
  assertStrictEquals(many.batches.length, 1);
});

Deno.test("frames stay valid after later reads (no buffer reuse)", async () => {
  const chunks = randomChunks(stream.bytes, mulberry32(99), { maxChunk: 4096 });
  const gen = readFrames(streamOf(chunks));
  const first = (await gen.next()).value as Uint8Array;
  const copy = first.slice();
  const rest: Uint8Array[] = [];
  for await (const f of gen) rest.push(f);
  assertBytesEqual(first, copy, "first frame changed after reading on");
  assertStrictEquals(rest.length, all.length - 1);
});

Deno.test("over a real TCP socket: random chunks, Conn and conn.readable", async () => {
  const chunks = randomChunks(stream.bytes, mulberry32(2024), { frameStarts: stream.starts });
  await withTcpStream(chunks, async (conn, peer) => {
    assertFrames(await collect(conn, { peer }), all, "tcp conn");
  });
  const small = randomChunks(stream.bytes, mulberry32(7), {
    frameStarts: stream.starts,
    maxChunk: 512,
  });
  await withTcpStream(small, async (conn) => {
    assertFrames(await collect(conn.readable), all, "tcp readable");
  });
});

Deno.test("over a real TCP socket: a connection closed mid-frame is a TruncatedFrameError", async () => {
  const body = eventBody("on_publish", {
    timestamp: { seconds: 1, nanos: 2 },
    topic: "t",
    payload: randomBytes(100_000, mulberry32(5)),
  });
  const wire = concat([small[0].wire, frameOf(body)]);
  const cut = wire.subarray(0, wire.length - 1000);
  await withTcpStream(fixedChunks(cut, 8192), async (conn, peer) => {
    const got = await collect(conn, { peer });
    assertStrictEquals(got.frames.length, 1);
    assertBytesEqual(got.frames[0], small[0].body);
    assert(got.error instanceof TruncatedFrameError, `got ${got.error}`);
    assertStrictEquals(got.error.missing, 1000);
    assertStrictEquals(got.error.received, 4 + body.length - 1000);
    assertStrictEquals(got.error.peer, peer);
    assert(got.error.message.includes(peer), got.error.message);
  });
});

Deno.test("zero-length frames are yielded as empty arrays", async () => {
  const a = small[0], b = small[1];
  const zero = new Uint8Array(4);
  const got = await collect(streamOf([concat([a.wire, zero, zero, b.wire, zero])]));
  assertStrictEquals(got.error, undefined);
  assertEquals(got.frames.map((f) => f.length), [a.body.length, 0, 0, b.body.length, 0]);
  // Only zero frames, split inside their headers.
  const zeros = await collect(streamOf(fixedChunks(concat([zero, zero, zero]), 3)));
  assertEquals(zeros.frames.map((f) => f.length), [0, 0, 0]);
  assertStrictEquals(zeros.error, undefined);
  // Vector 079 is the upstream's empty frame: four zero bytes on the wire.
  const v79 = small.find((v) => v.no === 79)!;
  assertEquals([...v79.wire], [0, 0, 0, 0]);
});

Deno.test("an empty stream ends cleanly with no frames", async () => {
  const got = await collect(streamOf([]));
  assertEquals(got.frames, []);
  assertStrictEquals(got.error, undefined);
});

/** A frame header announcing `length` bytes. */
function header(length: number): Uint8Array {
  const h = new Uint8Array(4);
  new DataView(h.buffer).setUint32(0, length);
  return h;
}

Deno.test("a length over the limit is a FrameTooLargeError after the frames before it", async () => {
  const a = small[0], b = small[26];
  const limit = 1000;
  for (const split of [false, true]) {
    const bytes = concat([a.wire, b.wire, header(limit + 1), new Uint8Array(limit + 1)]);
    const source = streamOf(split ? fixedChunks(bytes, 7) : [bytes]);
    const got = await collect(source, { maxFrameBytes: limit, peer: "10.0.0.1:5555" });
    assertStrictEquals(got.frames.length, 2, `split ${split}`);
    assertBytesEqual(got.frames[0], a.body);
    assertBytesEqual(got.frames[1], b.body);
    assert(got.error instanceof FrameTooLargeError, `got ${got.error}`);
    assertStrictEquals(got.error.length, limit + 1);
    assertStrictEquals(got.error.limit, limit);
    assertStrictEquals(got.error.peer, "10.0.0.1:5555");
    assert(got.error.message.includes("10.0.0.1:5555"), got.error.message);
  }
  // Exactly the limit is accepted.
  const exact = frameOf(new Uint8Array(limit).fill(7));
  const ok = await collect(streamOf([exact]), { maxFrameBytes: limit });
  assertStrictEquals(ok.error, undefined);
  assertStrictEquals(ok.frames[0].length, limit);
});

Deno.test("a huge length is rejected from the header alone (no body, default limit)", async () => {
  assertStrictEquals(DEFAULT_MAX_FRAME_BYTES, 64 * 1024 * 1024);
  // Only the header arrives: the error must not wait for (or allocate) 4 GiB.
  const err = await assertRejects(async () => {
    for await (const _ of readFrames(streamOf([header(0xffffffff)]))) { /* none */ }
  }, FrameTooLargeError);
  assertStrictEquals(err.length, 4294967295);
  assertStrictEquals(err.limit, DEFAULT_MAX_FRAME_BYTES);
  assertStrictEquals(err.peer, "");
  const over = await assertRejects(async () => {
    for await (const _ of readFrames(steppingReader(header(DEFAULT_MAX_FRAME_BYTES + 1), 1))) {
      /* none */
    }
  }, FrameTooLargeError);
  assertStrictEquals(over.length, DEFAULT_MAX_FRAME_BYTES + 1);
});

Deno.test("a stream ending inside a header is a TruncatedFrameError", async () => {
  const a = small[0], b = small[1];
  for (let k = 1; k <= 3; k++) {
    for (const chunked of [false, true]) {
      const bytes = concat([a.wire, b.wire.subarray(0, k)]);
      const got = await collect(
        streamOf(chunked ? fixedChunks(bytes, 1) : [bytes]),
        { peer: "p" },
      );
      assertStrictEquals(got.frames.length, 1, `k=${k}`);
      assertBytesEqual(got.frames[0], a.body);
      assert(got.error instanceof TruncatedFrameError, `k=${k}: got ${got.error}`);
      assertStrictEquals(got.error.received, k, `k=${k}: received`);
      assertStrictEquals(got.error.missing, 4 - k, `k=${k}: missing (rest of the header)`);
      assertStrictEquals(got.error.peer, "p");
    }
  }
});

Deno.test("a stream ending inside a body is a TruncatedFrameError with the missing count", async () => {
  const a = small[0];
  const big = largeVectors()[0]; // 1 MiB payload
  for (const v of [small[2], small[26], big]) {
    const n = v.body.length;
    for (const k of [0, 1, Math.floor(n / 2), n - 1]) {
      const bytes = concat([a.wire, v.wire.subarray(0, 4 + k)]);
      const got = await collect(streamOf(fixedChunks(bytes, 3000)));
      assertStrictEquals(got.frames.length, 1, `${v.name} k=${k}`);
      assert(got.error instanceof TruncatedFrameError, `${v.name} k=${k}: got ${got.error}`);
      assertStrictEquals(got.error.received, 4 + k, `${v.name} k=${k}: received`);
      assertStrictEquals(got.error.missing, n - k, `${v.name} k=${k}: missing`);
    }
  }
});

Deno.test("a 32 MiB frame read in 1 KiB chunks completes and is intact", async () => {
  const payload = randomBytes(32 << 20, mulberry32(32));
  const body = eventBody("on_publish", {
    timestamp: { seconds: 1771844336, nanos: 1 },
    client_id: "big",
    topic: "big/1",
    payload,
  });
  const wire = concat([small[0].wire, frameOf(body), small[1].wire]);
  const reader = steppingReader(wire, 1024);
  const got = await collect(reader);
  assertStrictEquals(got.error, undefined);
  assertStrictEquals(got.frames.length, 3);
  assertBytesEqual(got.frames[1], body, "32 MiB frame");
  assert(reader.reads >= wire.length / 1024, "1 KiB reads");
  // And as a stream of 1 KiB chunks.
  const viaStream = await collect(streamOf(fixedChunks(wire, 1024)));
  assertStrictEquals(viaStream.frames.length, 3);
  assertBytesEqual(viaStream.frames[1], body, "32 MiB frame (stream)");
});

Deno.test("stopping early cancels the ReadableStream", async () => {
  let cancelled = false;
  let i = 0;
  const chunks = fixedChunks(smallStream.bytes, 100);
  const source = new ReadableStream<Uint8Array>({
    pull(c) {
      if (i < chunks.length) c.enqueue(chunks[i++]);
      else c.close();
    },
    cancel() {
      cancelled = true;
    },
  });
  for await (const _ of readFrames(source)) break;
  assert(cancelled, "the source stream was not cancelled");
});

Deno.test("encodeFrame writes the 4-byte big-endian length", () => {
  for (const v of small) assertBytesEqual(encodeFrame(v.body), v.wire, v.name);
  assertBytesEqual(encodeFrame(new Uint8Array(0)), new Uint8Array(4));
  const body = new Uint8Array(0x01020304 & 0xffff);
  assertBytesEqual(encodeFrame(body).subarray(0, 4), header(body.length));
});

Deno.test({
  name: "full upstream stream (157 frames, 15.7 MB) frames and converts like the upstream",
  ignore: !upstreamAvailable(),
  async fn() {
    const upstream = loadVectorDir(UPSTREAM_DIR);
    assertStrictEquals(upstream.length, 157);
    const { bytes, starts } = streamBytes(upstream);
    assertStrictEquals(bytes.length, 15_758_359);
    // The in-test large frames mirror the upstream ones in size (same metadata, same encoder
    // layout): the test encoder is faithful to the upstream encoder.
    const byNo = new Map(upstream.map((v) => [v.no, v]));
    for (const v of largeVectors()) {
      assertStrictEquals(v.wire.length, byNo.get(v.no)!.wire.length, v.name);
    }
    for (const seed of [1, 2, 3]) {
      const chunks = randomChunks(bytes, mulberry32(seed), { frameStarts: starts });
      assertFrames(await collect(streamOf(chunks)), upstream, `upstream seed ${seed}`);
    }
    const frames = (await collect(streamOf([bytes]))).frames;
    const out = new ByteBuffer();
    for (let i = 0; i < upstream.length; i++) {
      const v = upstream[i];
      const expected = toOurJson(v.expected);
      out.reset();
      const hook = writeFrameJsonCode(out, frames[i], "base64");
      const r = decodeEvent(frames[i]);
      if (expected === null) {
        assert(hook < 0 && !r.ok && r.error.kind === "empty", v.name);
        continue;
      }
      const text = new TextDecoder().decode(out.bytes());
      assertEquals(JSON.parse(text), expected, v.name);
      assert(r.ok, `${v.name}: decodeEvent failed`);
      assertStrictEquals(eventToJson(r.event), text, `${v.name}: the two JSON paths differ`);
    }
  },
});

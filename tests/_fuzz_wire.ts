// Seeded fuzz of the wire layer, shared by tests/fuzz_test.ts and `deno task fuzz`: the frame
// reader under random chunking, length-field edits and truncations (against an independent
// splitter), and the envelope parser on mutated and random `Any`s (against an independent
// reference reading that applies the same wire rules).
import {
  FrameTooLargeError,
  HOOKS,
  MALFORMED_ENVELOPE,
  parseEnvelopeAt,
  readFrameSlabs,
  TruncatedFrameError,
  typeUrlOf,
  UNKNOWN_TYPE,
} from "../lib/internal.ts";
import { concat, fixtureVectors, mulberry32, randomChunks, streamOf } from "./_vectors.ts";
import { fuzzCase } from "./_fuzz.ts";

type Rng = () => number;
const int = (rng: Rng, n: number) => Math.floor(rng() * n);

/** What an independent splitter expects of a byte stream. */
interface Expected {
  frames: Uint8Array[];
  error: "none" | "too_large" | "truncated";
}

function split(bytes: Uint8Array, max: number): Expected {
  const frames: Uint8Array[] = [];
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let p = 0;
  while (p < bytes.length) {
    if (bytes.length - p < 4) return { frames, error: "truncated" };
    const len = dv.getUint32(p);
    if (len > max) return { frames, error: "too_large" };
    if (bytes.length - p - 4 < len) return { frames, error: "truncated" };
    frames.push(bytes.subarray(p + 4, p + 4 + len));
    p += 4 + len;
  }
  return { frames, error: "none" };
}

/** A stream of frames (vector bodies and fuzzed ones) with one seeded fault, or none. */
function stream(rng: Rng, seed: number, i: number): { bytes: Uint8Array; starts: number[] } {
  const vectors = fixtureVectors();
  const parts: Uint8Array[] = [], starts: number[] = [];
  let at = 0;
  for (let k = 1 + int(rng, 40); k > 0; k--) {
    const body = rng() < 0.7
      ? vectors[int(rng, vectors.length)].body
      : fuzzCase(seed, i * 64 + k).frame;
    const frame = new Uint8Array(4 + body.length);
    new DataView(frame.buffer).setUint32(0, body.length);
    frame.set(body, 4);
    starts.push(at);
    parts.push(frame);
    at += frame.length;
  }
  let bytes = concat(parts);
  const fault = rng();
  if (fault < 0.25) {
    // Length-field edit: one frame's length set to something else.
    const s = starts[int(rng, starts.length)];
    const to = [
      0,
      1,
      3,
      0x7fffffff,
      0xffffffff,
      64 * 1024 + 1,
      int(rng, 600),
      int(rng, 2 ** 32),
    ][int(rng, 8)];
    new DataView(bytes.buffer).setUint32(s, to >>> 0);
  } else if (fault < 0.45) {
    bytes = bytes.subarray(0, int(rng, bytes.length + 1)); // truncation anywhere
  } else if (fault < 0.55) {
    const b = bytes.slice(); // bit flips anywhere (headers included)
    for (let k = 1 + int(rng, 3); k > 0; k--) b[int(rng, b.length)] ^= 1 << int(rng, 8);
    bytes = b;
  }
  return { bytes, starts };
}

/** Checks one frame-reader case; returns what happened, throws on a mismatch or a hang. */
export async function frameReaderCase(seed: number, i: number): Promise<Expected["error"]> {
  const rng = mulberry32((seed ^ 0x5bd1e995) + i * 7919);
  const { bytes, starts } = stream(rng, seed, i);
  const max = 64 * 1024;
  const want = split(bytes, max);
  const chunks = randomChunks(bytes, rng, { maxChunk: 1 + int(rng, 8192), frameStarts: starts });
  const got: Uint8Array[] = [];
  let error: Expected["error"] = "none";
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`seed ${seed} case ${i}: the reader hung`)), 10_000);
  });
  const read = async () => {
    try {
      for await (
        const slab of readFrameSlabs(streamOf(chunks), {
          maxFrameBytes: max,
          maxReadBytes: 16 * 1024,
        })
      ) {
        for (let k = 0; k < slab.count; k++) got.push(slab.buf.slice(slab.starts[k], slab.ends[k]));
      }
    } catch (e) {
      if (e instanceof FrameTooLargeError) error = "too_large";
      else if (e instanceof TruncatedFrameError) error = "truncated";
      else throw e;
    }
  };
  try {
    await Promise.race([read(), deadline]);
  } finally {
    clearTimeout(timer);
  }
  const where = `seed ${seed} case ${i} (${bytes.length} B in ${chunks.length} chunks)`;
  if (error !== want.error) {
    throw new Error(`${where}: reader ended with ${error}, expected ${want.error}`);
  }
  if (got.length !== want.frames.length) {
    throw new Error(`${where}: ${got.length} frames, expected ${want.frames.length}`);
  }
  for (let k = 0; k < got.length; k++) {
    const a = got[k], b = want.frames[k];
    if (a.length !== b.length || a.some((x, j) => x !== b[j])) {
      throw new Error(`${where}: frame ${k} differs`);
    }
  }
  return error;
}

// ---------------------------------------------------------------------------------------------
// Envelope: a reference reading of google.protobuf.Any with the §5.3 rules, written out here.

const TYPE_URLS = HOOKS.map((h) => typeUrlOf(h));
const latin = new TextDecoder("latin1");

function uvarint(b: Uint8Array, p: number, end: number): [bigint, number] | undefined {
  let v = 0n;
  for (let k = 0; k < 10; k++) {
    if (p >= end) return undefined;
    const x = b[p++];
    if (k === 9 && x > 1) return undefined;
    v |= BigInt(x & 0x7f) << BigInt(7 * k);
    if (x < 0x80) return [v, p];
  }
  return undefined;
}

/** Skips one field's value; the new position, or undefined when malformed. */
function skipRef(
  b: Uint8Array,
  p: number,
  end: number,
  no: bigint,
  wt: number,
  depth: number,
): number | undefined {
  switch (wt) {
    case 0:
      return uvarint(b, p, end)?.[1];
    case 1:
      return p + 8 <= end ? p + 8 : undefined;
    case 5:
      return p + 4 <= end ? p + 4 : undefined;
    case 2: {
      const r = uvarint(b, p, end);
      if (!r || r[0] > BigInt(end - r[1])) return undefined;
      return r[1] + Number(r[0]);
    }
    case 3: {
      if (depth > 100) return undefined;
      for (;;) {
        const t = uvarint(b, p, end);
        if (!t) return undefined;
        p = t[1];
        const n = t[0] >> 3n, w = Number(t[0] & 7n);
        if (n === 0n || n >= 2n ** 29n) return undefined;
        if (w === 4) return n === no ? p : undefined;
        const q = skipRef(b, p, end, n, w, depth + 1);
        if (q === undefined) return undefined;
        p = q;
      }
    }
    default:
      return undefined;
  }
}

interface EnvelopeResult {
  code: number;
  url: [number, number];
  value: [number, number];
}

function refEnvelope(b: Uint8Array, start: number, end: number): EnvelopeResult {
  const r: EnvelopeResult = { code: 0, url: [start, start], value: [start, start] };
  let p = start;
  while (p < end) {
    const t = uvarint(b, p, end);
    if (!t) return { ...r, code: MALFORMED_ENVELOPE };
    p = t[1];
    const no = t[0] >> 3n, wt = Number(t[0] & 7n);
    if (no === 0n || no >= 2n ** 29n) return { ...r, code: MALFORMED_ENVELOPE };
    if (no === 1n || no === 2n) {
      if (wt !== 2) return { ...r, code: MALFORMED_ENVELOPE };
      const l = uvarint(b, p, end);
      if (!l || l[0] > BigInt(end - l[1])) return { ...r, code: MALFORMED_ENVELOPE };
      const range: [number, number] = [l[1], l[1] + Number(l[0])];
      if (no === 1n) r.url = range;
      else r.value = range;
      p = range[1];
    } else {
      const q = skipRef(b, p, end, no, wt, 1);
      if (q === undefined) return { ...r, code: MALFORMED_ENVELOPE };
      p = q;
    }
  }
  const url = latin.decode(b.subarray(r.url[0], r.url[1]));
  const hook = TYPE_URLS.indexOf(url);
  return { ...r, code: hook >= 0 ? hook : UNKNOWN_TYPE };
}

const ranges = { typeUrlStart: 0, typeUrlEnd: 0, valueStart: 0, valueEnd: 0 };

/** Checks parseEnvelopeAt on the `i`-th fuzzed `Any`, at a random offset inside a bigger slab. */
export function envelopeCase(seed: number, i: number): number {
  const rng = mulberry32((seed ^ 0x27d4eb2f) + i * 104729);
  let frame = fuzzCase(seed, i).frame;
  if (rng() < 0.3) {
    // Envelope-level edits: unknown fields, repeated/misplaced fields, random bytes.
    const extra = [
      Uint8Array.of(0x18, 0x01), // field 3 varint
      Uint8Array.of(0x0b, 0x0c), // field 1 as a group
      Uint8Array.of(0x1b, 0x24, 0x1c), // group 3 closed by 4
      Uint8Array.of(0x00),
      Uint8Array.of(0x12, 0x00),
      Uint8Array.of(0x0a, 0x00),
      Uint8Array.from({ length: 1 + int(rng, 16) }, () => int(rng, 256)),
    ][int(rng, 7)];
    const at = int(rng, frame.length + 1);
    frame = concat([frame.subarray(0, at), extra, frame.subarray(at)]);
  }
  const pad = int(rng, 8);
  const slab = new Uint8Array(pad + frame.length + 8).fill(0xaa); // bytes after the frame: not its own
  slab.set(frame, pad);
  const start = pad, end = pad + frame.length;
  const got = parseEnvelopeAt(slab, start, end, ranges);
  const want = refEnvelope(slab, start, end);
  const where = `seed ${seed} envelope case ${i}`;
  if (got !== want.code) {
    throw new Error(`${where}: parseEnvelopeAt ${got}, reference ${want.code}`);
  }
  if (got >= 0 || got === UNKNOWN_TYPE) {
    const same = ranges.typeUrlStart === want.url[0] && ranges.typeUrlEnd === want.url[1] &&
      ranges.valueStart === want.value[0] && ranges.valueEnd === want.value[1];
    if (!same) {
      throw new Error(`${where}: ranges ${JSON.stringify(ranges)} vs ${JSON.stringify(want)}`);
    }
  }
  return got;
}

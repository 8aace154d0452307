// Private: the stable event id (docs/outputs.md: the first 128 bits of SHA-256 of the event's
// `Any` bytes, lower-case hex), the same value as `eventId` in options.ts. A batch's ids
// ({@linkcode EventIds}) come from a WebAssembly SHA-256 that hashes four frames at once, one
// per 32-bit lane of v128 (_sha256_wasm.generated.ts, emitted by scripts/gen_sha256_wasm.ts):
// ~3× faster per frame than JavaScript, with no per-call native allocation. Where WebAssembly
// or its SIMD is missing, and for a single frame (`eventIdFast`, `writeEventId`), the SHA-256
// compression function is JavaScript, fully unrolled (constants inline, the message schedule in
// sixteen locals, the working variables renamed per round instead of shifted): ~2× faster than
// the loop in _sha256.ts. Allocates nothing per call but the string (none for `writeEventId`).
// The tests compare both with WebCrypto across block boundaries.
import type { ByteBuffer } from "../codec/byte_buffer.ts";
import { readLength, writeLength } from "../wire/length_prefix.ts";
import {
  SHA256_WASM_BASE64,
  SHA256_WASM_DATA_START,
  SHA256_WASM_MAX_PAGES,
} from "./_sha256_wasm.generated.ts";

const H = new Int32Array(8);
const TAIL = new Uint8Array(128);
const HEX = new Uint8Array(512);
for (let i = 0; i < 256; i++) {
  const s = i.toString(16).padStart(2, "0");
  HEX[2 * i] = s.charCodeAt(0);
  HEX[2 * i + 1] = s.charCodeAt(1);
}
const HEX_STR: string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));

/** Hashes `data` into H (all eight words). */
function sha256(data: Uint8Array): void {
  H[0] = 0x6a09e667;
  H[1] = 0xbb67ae85 | 0;
  H[2] = 0x3c6ef372;
  H[3] = 0xa54ff53a | 0;
  H[4] = 0x510e527f;
  H[5] = 0x9b05688c | 0;
  H[6] = 0x1f83d9ab;
  H[7] = 0x5be0cd19;
  const n = data.length, full = n - (n % 64);
  for (let p = 0; p < full; p += 64) compress(H, data, p);
  const rest = n - full, tailLen = rest < 56 ? 64 : 128;
  TAIL.fill(0);
  TAIL.set(data.subarray(full), 0);
  TAIL[rest] = 0x80;
  const bits = n * 8, hi = Math.floor(bits / 0x100000000);
  TAIL[tailLen - 8] = hi >>> 24;
  TAIL[tailLen - 7] = hi >>> 16;
  TAIL[tailLen - 6] = hi >>> 8;
  TAIL[tailLen - 5] = hi;
  TAIL[tailLen - 4] = bits >>> 24;
  TAIL[tailLen - 3] = bits >>> 16;
  TAIL[tailLen - 2] = bits >>> 8;
  TAIL[tailLen - 1] = bits;
  compress(H, TAIL, 0);
  if (tailLen === 128) compress(H, TAIL, 64);
}

/** Writes the id in H[0..3] as 32 ASCII hex bytes at `buf[p, p + 32)`. */
function putHex(buf: Uint8Array, p: number): void {
  for (let i = 0; i < 4; i++) {
    const v = H[i];
    for (let s = 24; s >= 0; s -= 8) {
      const x = ((v >>> s) & 255) << 1;
      buf[p++] = HEX[x];
      buf[p++] = HEX[x + 1];
    }
  }
}

/** The event id of `frame` (its `Any` bytes): 32 lower-case hex characters. */
export function eventIdFast(frame: Uint8Array): string {
  sha256(frame);
  let out = "";
  for (let i = 0; i < 4; i++) {
    const v = H[i];
    out += HEX_STR[(v >>> 24) & 255] + HEX_STR[(v >>> 16) & 255] + HEX_STR[(v >>> 8) & 255] +
      HEX_STR[v & 255];
  }
  return out;
}

/** Appends the event id of `frame` (32 ASCII hex bytes) to `out`, without a string. */
export function writeEventId(out: ByteBuffer, frame: Uint8Array): void {
  sha256(frame);
  out.ensure(32);
  putHex(out.buf, out.pos);
  out.pos += 32;
}

// ---------------------------------------------------------------------------------------------
// A batch's ids at once: the 4-lane WebAssembly SHA-256.

/** The instantiated module: its memory and `hash(in, count, out)` (see the generator). */
interface Sha256Lanes {
  memory: WebAssembly.Memory;
  hash(input: number, count: number, out: number): void;
  /** A view of the whole memory (made again after it grows). */
  mem: Uint8Array;
}

const PAGE = 64 * 1024;
/** The most the module's memory may hold: frames and their hex, per call. */
const MAX_BYTES = SHA256_WASM_MAX_PAGES * PAGE;
let lanes: Sha256Lanes | null | undefined;
let wasmAllowed = true;

/** The module, instantiated on first use; null where WebAssembly or WASM SIMD is unavailable. */
function wasmLanes(): Sha256Lanes | null {
  if (!wasmAllowed) return null;
  if (lanes !== undefined) return lanes;
  lanes = null;
  try {
    if (typeof WebAssembly !== "object") return null;
    const bytes = Uint8Array.fromBase64(SHA256_WASM_BASE64);
    if (!WebAssembly.validate(bytes)) return null; // no SIMD (or no bulk memory)
    const exports = new WebAssembly.Instance(new WebAssembly.Module(bytes)).exports;
    const memory = exports.memory as WebAssembly.Memory;
    const hash = exports.hash as Sha256Lanes["hash"];
    lanes = { memory, hash, mem: new Uint8Array(memory.buffer) };
  } catch {
    lanes = null;
  }
  return lanes;
}

/**
 * Which SHA-256 {@linkcode EventIds} uses: `"wasm"` (the 4-lane module, the default where
 * WebAssembly SIMD is available) or `"js"` (the fallback). An internal switch for tests and
 * benches: `use` `"js"` forces the fallback, `"wasm"` allows the module again. Returns the one
 * in use afterwards.
 */
export function eventIdBackend(use?: "wasm" | "js"): "wasm" | "js" {
  if (use !== undefined) wasmAllowed = use === "wasm";
  return wasmLanes() ? "wasm" : "js";
}

/** Bytes of the module's memory now (0 before its first use): it grows to the largest call. */
export function eventIdWasmBytes(): number {
  return lanes ? lanes.memory.buffer.byteLength : 0;
}

/**
 * The event ids of a batch of frames, computed together: 32 ASCII hex bytes per frame in one
 * reusable array. The writers compute a batch's ids first, then copy each event's into their
 * output while encoding it ({@linkcode EventIds.write}).
 */
export class EventIds {
  #hex = new Uint8Array(32 * 256);

  /** The ids of the last computation: frame i's at `[32 i, 32 i + 32)`; valid until the next. */
  get hex(): Uint8Array {
    return this.#hex;
  }

  /**
   * Computes the ids of the first `count` frames of `bytes` (length-prefixed frames, as in an
   * `OutputBatch`) and returns {@linkcode EventIds.hex}.
   */
  ofBatch(bytes: Uint8Array, count: number): Uint8Array {
    const hex = this.#room(count), w = wasmLanes();
    // Chunks of whole frames that fit the module's memory with their hex. A frame alone (one
    // lane of four busy: JavaScript is faster), a frame too large for the memory or cut short
    // by the batch's end, and everything without the module are hashed in JavaScript.
    for (let i = 0, p = 0; i < count;) {
      let j = i, q = p;
      if (w !== null) {
        while (j < count) {
          const next = q + 4 + readLength(bytes, q);
          if (next > bytes.length || !fits(next - p, j + 1 - i)) break;
          q = next;
          j++;
        }
      }
      const mem = j - i > 1 ? memoryFor(w!, q - p, j - i) : null;
      if (mem === null) {
        const start = p + 4, end = start + readLength(bytes, p);
        sha256(bytes.subarray(start, end));
        putHex(hex, 32 * i);
        p = end;
        i++;
        continue;
      }
      mem.set(bytes.subarray(p, q), SHA256_WASM_DATA_START);
      run(w!, q - p, j - i, hex, 32 * i);
      i = j;
      p = q;
    }
    return hex;
  }

  /**
   * Computes the ids of `frames` (each an `Any`'s bytes) and returns {@linkcode EventIds.hex}:
   * {@linkcode EventIds.ofBatch} of a copy of them laid out as a batch (for tests and callers
   * that hold separate frames; the writers hash their batch in place).
   */
  of(frames: readonly Uint8Array[]): Uint8Array {
    let size = 0;
    for (const f of frames) size += 4 + f.length;
    const bytes = new Uint8Array(size);
    let at = 0;
    for (const f of frames) {
      writeLength(bytes, at, f.length);
      bytes.set(f, at + 4);
      at += 4 + f.length;
    }
    return this.ofBatch(bytes, frames.length);
  }

  /** Appends frame `i`'s id (32 ASCII hex bytes) from the last computation to `out`. */
  write(out: ByteBuffer, i: number): void {
    out.ensure(32);
    const buf = out.buf, hex = this.#hex, p = out.pos, from = 32 * i;
    for (let k = 0; k < 32; k++) buf[p + k] = hex[from + k];
    out.pos = p + 32;
  }

  #room(count: number): Uint8Array {
    if (this.#hex.length < 32 * count) {
      this.#hex = new Uint8Array(Math.max(32 * count, 2 * this.#hex.length));
    }
    return this.#hex;
  }
}

/** Where the hex of a call with `bytes` bytes of frames goes: after them, 16-byte aligned. */
function hexAt(bytes: number): number {
  return (SHA256_WASM_DATA_START + bytes + 15) & ~15;
}

/** Whether `bytes` bytes of `count` frames and their hex fit the module's largest memory. */
function fits(bytes: number, count: number): boolean {
  return hexAt(bytes) + 32 * count <= MAX_BYTES;
}

/**
 * The module's memory, grown (never past its maximum) to hold a call's frames and hex; null
 * when it cannot grow (out of memory: the caller hashes in JavaScript).
 */
function memoryFor(w: Sha256Lanes, bytes: number, count: number): Uint8Array | null {
  const need = hexAt(bytes) + 32 * count;
  if (need > w.mem.length) {
    try {
      w.memory.grow(Math.ceil((need - w.mem.length) / PAGE));
    } catch {
      return null;
    }
    w.mem = new Uint8Array(w.memory.buffer);
  }
  return w.mem;
}

/** Hashes the `count` frames placed at the data start; their hex to `hex[at, at + 32 count)`. */
function run(w: Sha256Lanes, bytes: number, count: number, hex: Uint8Array, at: number): void {
  const out = hexAt(bytes);
  w.hash(SHA256_WASM_DATA_START, count, out);
  hex.set(w.mem.subarray(out, out + 32 * count), at);
}

// deno-fmt-ignore
function compress(H: Int32Array, m: Uint8Array, p: number): void {
  let a = H[0], b = H[1], c = H[2], d = H[3], e = H[4], f = H[5], g = H[6], h = H[7];
  let t = 0;
  let w0 = (m[p + 0] << 24) | (m[p + 1] << 16) | (m[p + 2] << 8) | m[p + 3];
  let w1 = (m[p + 4] << 24) | (m[p + 5] << 16) | (m[p + 6] << 8) | m[p + 7];
  let w2 = (m[p + 8] << 24) | (m[p + 9] << 16) | (m[p + 10] << 8) | m[p + 11];
  let w3 = (m[p + 12] << 24) | (m[p + 13] << 16) | (m[p + 14] << 8) | m[p + 15];
  let w4 = (m[p + 16] << 24) | (m[p + 17] << 16) | (m[p + 18] << 8) | m[p + 19];
  let w5 = (m[p + 20] << 24) | (m[p + 21] << 16) | (m[p + 22] << 8) | m[p + 23];
  let w6 = (m[p + 24] << 24) | (m[p + 25] << 16) | (m[p + 26] << 8) | m[p + 27];
  let w7 = (m[p + 28] << 24) | (m[p + 29] << 16) | (m[p + 30] << 8) | m[p + 31];
  let w8 = (m[p + 32] << 24) | (m[p + 33] << 16) | (m[p + 34] << 8) | m[p + 35];
  let w9 = (m[p + 36] << 24) | (m[p + 37] << 16) | (m[p + 38] << 8) | m[p + 39];
  let w10 = (m[p + 40] << 24) | (m[p + 41] << 16) | (m[p + 42] << 8) | m[p + 43];
  let w11 = (m[p + 44] << 24) | (m[p + 45] << 16) | (m[p + 46] << 8) | m[p + 47];
  let w12 = (m[p + 48] << 24) | (m[p + 49] << 16) | (m[p + 50] << 8) | m[p + 51];
  let w13 = (m[p + 52] << 24) | (m[p + 53] << 16) | (m[p + 54] << 8) | m[p + 55];
  let w14 = (m[p + 56] << 24) | (m[p + 57] << 16) | (m[p + 58] << 8) | m[p + 59];
  let w15 = (m[p + 60] << 24) | (m[p + 61] << 16) | (m[p + 62] << 8) | m[p + 63];
  t = (h + (((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7))) + ((e & f) ^ (~e & g)) + 1116352408 + w0) | 0;
  d = (d + t) | 0;
  h = (t + (((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10))) + ((a & b) ^ (a & c) ^ (b & c))) | 0;
  t = (g + (((d >>> 6) | (d << 26)) ^ ((d >>> 11) | (d << 21)) ^ ((d >>> 25) | (d << 7))) + ((d & e) ^ (~d & f)) + 1899447441 + w1) | 0;
  c = (c + t) | 0;
  g = (t + (((h >>> 2) | (h << 30)) ^ ((h >>> 13) | (h << 19)) ^ ((h >>> 22) | (h << 10))) + ((h & a) ^ (h & b) ^ (a & b))) | 0;
  t = (f + (((c >>> 6) | (c << 26)) ^ ((c >>> 11) | (c << 21)) ^ ((c >>> 25) | (c << 7))) + ((c & d) ^ (~c & e)) + -1245643825 + w2) | 0;
  b = (b + t) | 0;
  f = (t + (((g >>> 2) | (g << 30)) ^ ((g >>> 13) | (g << 19)) ^ ((g >>> 22) | (g << 10))) + ((g & h) ^ (g & a) ^ (h & a))) | 0;
  t = (e + (((b >>> 6) | (b << 26)) ^ ((b >>> 11) | (b << 21)) ^ ((b >>> 25) | (b << 7))) + ((b & c) ^ (~b & d)) + -373957723 + w3) | 0;
  a = (a + t) | 0;
  e = (t + (((f >>> 2) | (f << 30)) ^ ((f >>> 13) | (f << 19)) ^ ((f >>> 22) | (f << 10))) + ((f & g) ^ (f & h) ^ (g & h))) | 0;
  t = (d + (((a >>> 6) | (a << 26)) ^ ((a >>> 11) | (a << 21)) ^ ((a >>> 25) | (a << 7))) + ((a & b) ^ (~a & c)) + 961987163 + w4) | 0;
  h = (h + t) | 0;
  d = (t + (((e >>> 2) | (e << 30)) ^ ((e >>> 13) | (e << 19)) ^ ((e >>> 22) | (e << 10))) + ((e & f) ^ (e & g) ^ (f & g))) | 0;
  t = (c + (((h >>> 6) | (h << 26)) ^ ((h >>> 11) | (h << 21)) ^ ((h >>> 25) | (h << 7))) + ((h & a) ^ (~h & b)) + 1508970993 + w5) | 0;
  g = (g + t) | 0;
  c = (t + (((d >>> 2) | (d << 30)) ^ ((d >>> 13) | (d << 19)) ^ ((d >>> 22) | (d << 10))) + ((d & e) ^ (d & f) ^ (e & f))) | 0;
  t = (b + (((g >>> 6) | (g << 26)) ^ ((g >>> 11) | (g << 21)) ^ ((g >>> 25) | (g << 7))) + ((g & h) ^ (~g & a)) + -1841331548 + w6) | 0;
  f = (f + t) | 0;
  b = (t + (((c >>> 2) | (c << 30)) ^ ((c >>> 13) | (c << 19)) ^ ((c >>> 22) | (c << 10))) + ((c & d) ^ (c & e) ^ (d & e))) | 0;
  t = (a + (((f >>> 6) | (f << 26)) ^ ((f >>> 11) | (f << 21)) ^ ((f >>> 25) | (f << 7))) + ((f & g) ^ (~f & h)) + -1424204075 + w7) | 0;
  e = (e + t) | 0;
  a = (t + (((b >>> 2) | (b << 30)) ^ ((b >>> 13) | (b << 19)) ^ ((b >>> 22) | (b << 10))) + ((b & c) ^ (b & d) ^ (c & d))) | 0;
  t = (h + (((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7))) + ((e & f) ^ (~e & g)) + -670586216 + w8) | 0;
  d = (d + t) | 0;
  h = (t + (((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10))) + ((a & b) ^ (a & c) ^ (b & c))) | 0;
  t = (g + (((d >>> 6) | (d << 26)) ^ ((d >>> 11) | (d << 21)) ^ ((d >>> 25) | (d << 7))) + ((d & e) ^ (~d & f)) + 310598401 + w9) | 0;
  c = (c + t) | 0;
  g = (t + (((h >>> 2) | (h << 30)) ^ ((h >>> 13) | (h << 19)) ^ ((h >>> 22) | (h << 10))) + ((h & a) ^ (h & b) ^ (a & b))) | 0;
  t = (f + (((c >>> 6) | (c << 26)) ^ ((c >>> 11) | (c << 21)) ^ ((c >>> 25) | (c << 7))) + ((c & d) ^ (~c & e)) + 607225278 + w10) | 0;
  b = (b + t) | 0;
  f = (t + (((g >>> 2) | (g << 30)) ^ ((g >>> 13) | (g << 19)) ^ ((g >>> 22) | (g << 10))) + ((g & h) ^ (g & a) ^ (h & a))) | 0;
  t = (e + (((b >>> 6) | (b << 26)) ^ ((b >>> 11) | (b << 21)) ^ ((b >>> 25) | (b << 7))) + ((b & c) ^ (~b & d)) + 1426881987 + w11) | 0;
  a = (a + t) | 0;
  e = (t + (((f >>> 2) | (f << 30)) ^ ((f >>> 13) | (f << 19)) ^ ((f >>> 22) | (f << 10))) + ((f & g) ^ (f & h) ^ (g & h))) | 0;
  t = (d + (((a >>> 6) | (a << 26)) ^ ((a >>> 11) | (a << 21)) ^ ((a >>> 25) | (a << 7))) + ((a & b) ^ (~a & c)) + 1925078388 + w12) | 0;
  h = (h + t) | 0;
  d = (t + (((e >>> 2) | (e << 30)) ^ ((e >>> 13) | (e << 19)) ^ ((e >>> 22) | (e << 10))) + ((e & f) ^ (e & g) ^ (f & g))) | 0;
  t = (c + (((h >>> 6) | (h << 26)) ^ ((h >>> 11) | (h << 21)) ^ ((h >>> 25) | (h << 7))) + ((h & a) ^ (~h & b)) + -2132889090 + w13) | 0;
  g = (g + t) | 0;
  c = (t + (((d >>> 2) | (d << 30)) ^ ((d >>> 13) | (d << 19)) ^ ((d >>> 22) | (d << 10))) + ((d & e) ^ (d & f) ^ (e & f))) | 0;
  t = (b + (((g >>> 6) | (g << 26)) ^ ((g >>> 11) | (g << 21)) ^ ((g >>> 25) | (g << 7))) + ((g & h) ^ (~g & a)) + -1680079193 + w14) | 0;
  f = (f + t) | 0;
  b = (t + (((c >>> 2) | (c << 30)) ^ ((c >>> 13) | (c << 19)) ^ ((c >>> 22) | (c << 10))) + ((c & d) ^ (c & e) ^ (d & e))) | 0;
  t = (a + (((f >>> 6) | (f << 26)) ^ ((f >>> 11) | (f << 21)) ^ ((f >>> 25) | (f << 7))) + ((f & g) ^ (~f & h)) + -1046744716 + w15) | 0;
  e = (e + t) | 0;
  a = (t + (((b >>> 2) | (b << 30)) ^ ((b >>> 13) | (b << 19)) ^ ((b >>> 22) | (b << 10))) + ((b & c) ^ (b & d) ^ (c & d))) | 0;
  t = w1; w0 = (w0 + w9 + (((t >>> 7) | (t << 25)) ^ ((t >>> 18) | (t << 14)) ^ (t >>> 3)) + (((w14 >>> 17) | (w14 << 15)) ^ ((w14 >>> 19) | (w14 << 13)) ^ (w14 >>> 10))) | 0;
  t = (h + (((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7))) + ((e & f) ^ (~e & g)) + -459576895 + w0) | 0;
  d = (d + t) | 0;
  h = (t + (((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10))) + ((a & b) ^ (a & c) ^ (b & c))) | 0;
  t = w2; w1 = (w1 + w10 + (((t >>> 7) | (t << 25)) ^ ((t >>> 18) | (t << 14)) ^ (t >>> 3)) + (((w15 >>> 17) | (w15 << 15)) ^ ((w15 >>> 19) | (w15 << 13)) ^ (w15 >>> 10))) | 0;
  t = (g + (((d >>> 6) | (d << 26)) ^ ((d >>> 11) | (d << 21)) ^ ((d >>> 25) | (d << 7))) + ((d & e) ^ (~d & f)) + -272742522 + w1) | 0;
  c = (c + t) | 0;
  g = (t + (((h >>> 2) | (h << 30)) ^ ((h >>> 13) | (h << 19)) ^ ((h >>> 22) | (h << 10))) + ((h & a) ^ (h & b) ^ (a & b))) | 0;
  t = w3; w2 = (w2 + w11 + (((t >>> 7) | (t << 25)) ^ ((t >>> 18) | (t << 14)) ^ (t >>> 3)) + (((w0 >>> 17) | (w0 << 15)) ^ ((w0 >>> 19) | (w0 << 13)) ^ (w0 >>> 10))) | 0;
  t = (f + (((c >>> 6) | (c << 26)) ^ ((c >>> 11) | (c << 21)) ^ ((c >>> 25) | (c << 7))) + ((c & d) ^ (~c & e)) + 264347078 + w2) | 0;
  b = (b + t) | 0;
  f = (t + (((g >>> 2) | (g << 30)) ^ ((g >>> 13) | (g << 19)) ^ ((g >>> 22) | (g << 10))) + ((g & h) ^ (g & a) ^ (h & a))) | 0;
  t = w4; w3 = (w3 + w12 + (((t >>> 7) | (t << 25)) ^ ((t >>> 18) | (t << 14)) ^ (t >>> 3)) + (((w1 >>> 17) | (w1 << 15)) ^ ((w1 >>> 19) | (w1 << 13)) ^ (w1 >>> 10))) | 0;
  t = (e + (((b >>> 6) | (b << 26)) ^ ((b >>> 11) | (b << 21)) ^ ((b >>> 25) | (b << 7))) + ((b & c) ^ (~b & d)) + 604807628 + w3) | 0;
  a = (a + t) | 0;
  e = (t + (((f >>> 2) | (f << 30)) ^ ((f >>> 13) | (f << 19)) ^ ((f >>> 22) | (f << 10))) + ((f & g) ^ (f & h) ^ (g & h))) | 0;
  t = w5; w4 = (w4 + w13 + (((t >>> 7) | (t << 25)) ^ ((t >>> 18) | (t << 14)) ^ (t >>> 3)) + (((w2 >>> 17) | (w2 << 15)) ^ ((w2 >>> 19) | (w2 << 13)) ^ (w2 >>> 10))) | 0;
  t = (d + (((a >>> 6) | (a << 26)) ^ ((a >>> 11) | (a << 21)) ^ ((a >>> 25) | (a << 7))) + ((a & b) ^ (~a & c)) + 770255983 + w4) | 0;
  h = (h + t) | 0;
  d = (t + (((e >>> 2) | (e << 30)) ^ ((e >>> 13) | (e << 19)) ^ ((e >>> 22) | (e << 10))) + ((e & f) ^ (e & g) ^ (f & g))) | 0;
  t = w6; w5 = (w5 + w14 + (((t >>> 7) | (t << 25)) ^ ((t >>> 18) | (t << 14)) ^ (t >>> 3)) + (((w3 >>> 17) | (w3 << 15)) ^ ((w3 >>> 19) | (w3 << 13)) ^ (w3 >>> 10))) | 0;
  t = (c + (((h >>> 6) | (h << 26)) ^ ((h >>> 11) | (h << 21)) ^ ((h >>> 25) | (h << 7))) + ((h & a) ^ (~h & b)) + 1249150122 + w5) | 0;
  g = (g + t) | 0;
  c = (t + (((d >>> 2) | (d << 30)) ^ ((d >>> 13) | (d << 19)) ^ ((d >>> 22) | (d << 10))) + ((d & e) ^ (d & f) ^ (e & f))) | 0;
  t = w7; w6 = (w6 + w15 + (((t >>> 7) | (t << 25)) ^ ((t >>> 18) | (t << 14)) ^ (t >>> 3)) + (((w4 >>> 17) | (w4 << 15)) ^ ((w4 >>> 19) | (w4 << 13)) ^ (w4 >>> 10))) | 0;
  t = (b + (((g >>> 6) | (g << 26)) ^ ((g >>> 11) | (g << 21)) ^ ((g >>> 25) | (g << 7))) + ((g & h) ^ (~g & a)) + 1555081692 + w6) | 0;
  f = (f + t) | 0;
  b = (t + (((c >>> 2) | (c << 30)) ^ ((c >>> 13) | (c << 19)) ^ ((c >>> 22) | (c << 10))) + ((c & d) ^ (c & e) ^ (d & e))) | 0;
  t = w8; w7 = (w7 + w0 + (((t >>> 7) | (t << 25)) ^ ((t >>> 18) | (t << 14)) ^ (t >>> 3)) + (((w5 >>> 17) | (w5 << 15)) ^ ((w5 >>> 19) | (w5 << 13)) ^ (w5 >>> 10))) | 0;
  t = (a + (((f >>> 6) | (f << 26)) ^ ((f >>> 11) | (f << 21)) ^ ((f >>> 25) | (f << 7))) + ((f & g) ^ (~f & h)) + 1996064986 + w7) | 0;
  e = (e + t) | 0;
  a = (t + (((b >>> 2) | (b << 30)) ^ ((b >>> 13) | (b << 19)) ^ ((b >>> 22) | (b << 10))) + ((b & c) ^ (b & d) ^ (c & d))) | 0;
  t = w9; w8 = (w8 + w1 + (((t >>> 7) | (t << 25)) ^ ((t >>> 18) | (t << 14)) ^ (t >>> 3)) + (((w6 >>> 17) | (w6 << 15)) ^ ((w6 >>> 19) | (w6 << 13)) ^ (w6 >>> 10))) | 0;
  t = (h + (((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7))) + ((e & f) ^ (~e & g)) + -1740746414 + w8) | 0;
  d = (d + t) | 0;
  h = (t + (((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10))) + ((a & b) ^ (a & c) ^ (b & c))) | 0;
  t = w10; w9 = (w9 + w2 + (((t >>> 7) | (t << 25)) ^ ((t >>> 18) | (t << 14)) ^ (t >>> 3)) + (((w7 >>> 17) | (w7 << 15)) ^ ((w7 >>> 19) | (w7 << 13)) ^ (w7 >>> 10))) | 0;
  t = (g + (((d >>> 6) | (d << 26)) ^ ((d >>> 11) | (d << 21)) ^ ((d >>> 25) | (d << 7))) + ((d & e) ^ (~d & f)) + -1473132947 + w9) | 0;
  c = (c + t) | 0;
  g = (t + (((h >>> 2) | (h << 30)) ^ ((h >>> 13) | (h << 19)) ^ ((h >>> 22) | (h << 10))) + ((h & a) ^ (h & b) ^ (a & b))) | 0;
  t = w11; w10 = (w10 + w3 + (((t >>> 7) | (t << 25)) ^ ((t >>> 18) | (t << 14)) ^ (t >>> 3)) + (((w8 >>> 17) | (w8 << 15)) ^ ((w8 >>> 19) | (w8 << 13)) ^ (w8 >>> 10))) | 0;
  t = (f + (((c >>> 6) | (c << 26)) ^ ((c >>> 11) | (c << 21)) ^ ((c >>> 25) | (c << 7))) + ((c & d) ^ (~c & e)) + -1341970488 + w10) | 0;
  b = (b + t) | 0;
  f = (t + (((g >>> 2) | (g << 30)) ^ ((g >>> 13) | (g << 19)) ^ ((g >>> 22) | (g << 10))) + ((g & h) ^ (g & a) ^ (h & a))) | 0;
  t = w12; w11 = (w11 + w4 + (((t >>> 7) | (t << 25)) ^ ((t >>> 18) | (t << 14)) ^ (t >>> 3)) + (((w9 >>> 17) | (w9 << 15)) ^ ((w9 >>> 19) | (w9 << 13)) ^ (w9 >>> 10))) | 0;
  t = (e + (((b >>> 6) | (b << 26)) ^ ((b >>> 11) | (b << 21)) ^ ((b >>> 25) | (b << 7))) + ((b & c) ^ (~b & d)) + -1084653625 + w11) | 0;
  a = (a + t) | 0;
  e = (t + (((f >>> 2) | (f << 30)) ^ ((f >>> 13) | (f << 19)) ^ ((f >>> 22) | (f << 10))) + ((f & g) ^ (f & h) ^ (g & h))) | 0;
  t = w13; w12 = (w12 + w5 + (((t >>> 7) | (t << 25)) ^ ((t >>> 18) | (t << 14)) ^ (t >>> 3)) + (((w10 >>> 17) | (w10 << 15)) ^ ((w10 >>> 19) | (w10 << 13)) ^ (w10 >>> 10))) | 0;
  t = (d + (((a >>> 6) | (a << 26)) ^ ((a >>> 11) | (a << 21)) ^ ((a >>> 25) | (a << 7))) + ((a & b) ^ (~a & c)) + -958395405 + w12) | 0;
  h = (h + t) | 0;
  d = (t + (((e >>> 2) | (e << 30)) ^ ((e >>> 13) | (e << 19)) ^ ((e >>> 22) | (e << 10))) + ((e & f) ^ (e & g) ^ (f & g))) | 0;
  t = w14; w13 = (w13 + w6 + (((t >>> 7) | (t << 25)) ^ ((t >>> 18) | (t << 14)) ^ (t >>> 3)) + (((w11 >>> 17) | (w11 << 15)) ^ ((w11 >>> 19) | (w11 << 13)) ^ (w11 >>> 10))) | 0;
  t = (c + (((h >>> 6) | (h << 26)) ^ ((h >>> 11) | (h << 21)) ^ ((h >>> 25) | (h << 7))) + ((h & a) ^ (~h & b)) + -710438585 + w13) | 0;
  g = (g + t) | 0;
  c = (t + (((d >>> 2) | (d << 30)) ^ ((d >>> 13) | (d << 19)) ^ ((d >>> 22) | (d << 10))) + ((d & e) ^ (d & f) ^ (e & f))) | 0;
  t = w15; w14 = (w14 + w7 + (((t >>> 7) | (t << 25)) ^ ((t >>> 18) | (t << 14)) ^ (t >>> 3)) + (((w12 >>> 17) | (w12 << 15)) ^ ((w12 >>> 19) | (w12 << 13)) ^ (w12 >>> 10))) | 0;
  t = (b + (((g >>> 6) | (g << 26)) ^ ((g >>> 11) | (g << 21)) ^ ((g >>> 25) | (g << 7))) + ((g & h) ^ (~g & a)) + 113926993 + w14) | 0;
  f = (f + t) | 0;
  b = (t + (((c >>> 2) | (c << 30)) ^ ((c >>> 13) | (c << 19)) ^ ((c >>> 22) | (c << 10))) + ((c & d) ^ (c & e) ^ (d & e))) | 0;
  t = w0; w15 = (w15 + w8 + (((t >>> 7) | (t << 25)) ^ ((t >>> 18) | (t << 14)) ^ (t >>> 3)) + (((w13 >>> 17) | (w13 << 15)) ^ ((w13 >>> 19) | (w13 << 13)) ^ (w13 >>> 10))) | 0;
  t = (a + (((f >>> 6) | (f << 26)) ^ ((f >>> 11) | (f << 21)) ^ ((f >>> 25) | (f << 7))) + ((f & g) ^ (~f & h)) + 338241895 + w15) | 0;
  e = (e + t) | 0;
  a = (t + (((b >>> 2) | (b << 30)) ^ ((b >>> 13) | (b << 19)) ^ ((b >>> 22) | (b << 10))) + ((b & c) ^ (b & d) ^ (c & d))) | 0;
  t = w1; w0 = (w0 + w9 + (((t >>> 7) | (t << 25)) ^ ((t >>> 18) | (t << 14)) ^ (t >>> 3)) + (((w14 >>> 17) | (w14 << 15)) ^ ((w14 >>> 19) | (w14 << 13)) ^ (w14 >>> 10))) | 0;
  t = (h + (((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7))) + ((e & f) ^ (~e & g)) + 666307205 + w0) | 0;
  d = (d + t) | 0;
  h = (t + (((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10))) + ((a & b) ^ (a & c) ^ (b & c))) | 0;
  t = w2; w1 = (w1 + w10 + (((t >>> 7) | (t << 25)) ^ ((t >>> 18) | (t << 14)) ^ (t >>> 3)) + (((w15 >>> 17) | (w15 << 15)) ^ ((w15 >>> 19) | (w15 << 13)) ^ (w15 >>> 10))) | 0;
  t = (g + (((d >>> 6) | (d << 26)) ^ ((d >>> 11) | (d << 21)) ^ ((d >>> 25) | (d << 7))) + ((d & e) ^ (~d & f)) + 773529912 + w1) | 0;
  c = (c + t) | 0;
  g = (t + (((h >>> 2) | (h << 30)) ^ ((h >>> 13) | (h << 19)) ^ ((h >>> 22) | (h << 10))) + ((h & a) ^ (h & b) ^ (a & b))) | 0;
  t = w3; w2 = (w2 + w11 + (((t >>> 7) | (t << 25)) ^ ((t >>> 18) | (t << 14)) ^ (t >>> 3)) + (((w0 >>> 17) | (w0 << 15)) ^ ((w0 >>> 19) | (w0 << 13)) ^ (w0 >>> 10))) | 0;
  t = (f + (((c >>> 6) | (c << 26)) ^ ((c >>> 11) | (c << 21)) ^ ((c >>> 25) | (c << 7))) + ((c & d) ^ (~c & e)) + 1294757372 + w2) | 0;
  b = (b + t) | 0;
  f = (t + (((g >>> 2) | (g << 30)) ^ ((g >>> 13) | (g << 19)) ^ ((g >>> 22) | (g << 10))) + ((g & h) ^ (g & a) ^ (h & a))) | 0;
  t = w4; w3 = (w3 + w12 + (((t >>> 7) | (t << 25)) ^ ((t >>> 18) | (t << 14)) ^ (t >>> 3)) + (((w1 >>> 17) | (w1 << 15)) ^ ((w1 >>> 19) | (w1 << 13)) ^ (w1 >>> 10))) | 0;
  t = (e + (((b >>> 6) | (b << 26)) ^ ((b >>> 11) | (b << 21)) ^ ((b >>> 25) | (b << 7))) + ((b & c) ^ (~b & d)) + 1396182291 + w3) | 0;
  a = (a + t) | 0;
  e = (t + (((f >>> 2) | (f << 30)) ^ ((f >>> 13) | (f << 19)) ^ ((f >>> 22) | (f << 10))) + ((f & g) ^ (f & h) ^ (g & h))) | 0;
  t = w5; w4 = (w4 + w13 + (((t >>> 7) | (t << 25)) ^ ((t >>> 18) | (t << 14)) ^ (t >>> 3)) + (((w2 >>> 17) | (w2 << 15)) ^ ((w2 >>> 19) | (w2 << 13)) ^ (w2 >>> 10))) | 0;
  t = (d + (((a >>> 6) | (a << 26)) ^ ((a >>> 11) | (a << 21)) ^ ((a >>> 25) | (a << 7))) + ((a & b) ^ (~a & c)) + 1695183700 + w4) | 0;
  h = (h + t) | 0;
  d = (t + (((e >>> 2) | (e << 30)) ^ ((e >>> 13) | (e << 19)) ^ ((e >>> 22) | (e << 10))) + ((e & f) ^ (e & g) ^ (f & g))) | 0;
  t = w6; w5 = (w5 + w14 + (((t >>> 7) | (t << 25)) ^ ((t >>> 18) | (t << 14)) ^ (t >>> 3)) + (((w3 >>> 17) | (w3 << 15)) ^ ((w3 >>> 19) | (w3 << 13)) ^ (w3 >>> 10))) | 0;
  t = (c + (((h >>> 6) | (h << 26)) ^ ((h >>> 11) | (h << 21)) ^ ((h >>> 25) | (h << 7))) + ((h & a) ^ (~h & b)) + 1986661051 + w5) | 0;
  g = (g + t) | 0;
  c = (t + (((d >>> 2) | (d << 30)) ^ ((d >>> 13) | (d << 19)) ^ ((d >>> 22) | (d << 10))) + ((d & e) ^ (d & f) ^ (e & f))) | 0;
  t = w7; w6 = (w6 + w15 + (((t >>> 7) | (t << 25)) ^ ((t >>> 18) | (t << 14)) ^ (t >>> 3)) + (((w4 >>> 17) | (w4 << 15)) ^ ((w4 >>> 19) | (w4 << 13)) ^ (w4 >>> 10))) | 0;
  t = (b + (((g >>> 6) | (g << 26)) ^ ((g >>> 11) | (g << 21)) ^ ((g >>> 25) | (g << 7))) + ((g & h) ^ (~g & a)) + -2117940946 + w6) | 0;
  f = (f + t) | 0;
  b = (t + (((c >>> 2) | (c << 30)) ^ ((c >>> 13) | (c << 19)) ^ ((c >>> 22) | (c << 10))) + ((c & d) ^ (c & e) ^ (d & e))) | 0;
  t = w8; w7 = (w7 + w0 + (((t >>> 7) | (t << 25)) ^ ((t >>> 18) | (t << 14)) ^ (t >>> 3)) + (((w5 >>> 17) | (w5 << 15)) ^ ((w5 >>> 19) | (w5 << 13)) ^ (w5 >>> 10))) | 0;
  t = (a + (((f >>> 6) | (f << 26)) ^ ((f >>> 11) | (f << 21)) ^ ((f >>> 25) | (f << 7))) + ((f & g) ^ (~f & h)) + -1838011259 + w7) | 0;
  e = (e + t) | 0;
  a = (t + (((b >>> 2) | (b << 30)) ^ ((b >>> 13) | (b << 19)) ^ ((b >>> 22) | (b << 10))) + ((b & c) ^ (b & d) ^ (c & d))) | 0;
  t = w9; w8 = (w8 + w1 + (((t >>> 7) | (t << 25)) ^ ((t >>> 18) | (t << 14)) ^ (t >>> 3)) + (((w6 >>> 17) | (w6 << 15)) ^ ((w6 >>> 19) | (w6 << 13)) ^ (w6 >>> 10))) | 0;
  t = (h + (((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7))) + ((e & f) ^ (~e & g)) + -1564481375 + w8) | 0;
  d = (d + t) | 0;
  h = (t + (((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10))) + ((a & b) ^ (a & c) ^ (b & c))) | 0;
  t = w10; w9 = (w9 + w2 + (((t >>> 7) | (t << 25)) ^ ((t >>> 18) | (t << 14)) ^ (t >>> 3)) + (((w7 >>> 17) | (w7 << 15)) ^ ((w7 >>> 19) | (w7 << 13)) ^ (w7 >>> 10))) | 0;
  t = (g + (((d >>> 6) | (d << 26)) ^ ((d >>> 11) | (d << 21)) ^ ((d >>> 25) | (d << 7))) + ((d & e) ^ (~d & f)) + -1474664885 + w9) | 0;
  c = (c + t) | 0;
  g = (t + (((h >>> 2) | (h << 30)) ^ ((h >>> 13) | (h << 19)) ^ ((h >>> 22) | (h << 10))) + ((h & a) ^ (h & b) ^ (a & b))) | 0;
  t = w11; w10 = (w10 + w3 + (((t >>> 7) | (t << 25)) ^ ((t >>> 18) | (t << 14)) ^ (t >>> 3)) + (((w8 >>> 17) | (w8 << 15)) ^ ((w8 >>> 19) | (w8 << 13)) ^ (w8 >>> 10))) | 0;
  t = (f + (((c >>> 6) | (c << 26)) ^ ((c >>> 11) | (c << 21)) ^ ((c >>> 25) | (c << 7))) + ((c & d) ^ (~c & e)) + -1035236496 + w10) | 0;
  b = (b + t) | 0;
  f = (t + (((g >>> 2) | (g << 30)) ^ ((g >>> 13) | (g << 19)) ^ ((g >>> 22) | (g << 10))) + ((g & h) ^ (g & a) ^ (h & a))) | 0;
  t = w12; w11 = (w11 + w4 + (((t >>> 7) | (t << 25)) ^ ((t >>> 18) | (t << 14)) ^ (t >>> 3)) + (((w9 >>> 17) | (w9 << 15)) ^ ((w9 >>> 19) | (w9 << 13)) ^ (w9 >>> 10))) | 0;
  t = (e + (((b >>> 6) | (b << 26)) ^ ((b >>> 11) | (b << 21)) ^ ((b >>> 25) | (b << 7))) + ((b & c) ^ (~b & d)) + -949202525 + w11) | 0;
  a = (a + t) | 0;
  e = (t + (((f >>> 2) | (f << 30)) ^ ((f >>> 13) | (f << 19)) ^ ((f >>> 22) | (f << 10))) + ((f & g) ^ (f & h) ^ (g & h))) | 0;
  t = w13; w12 = (w12 + w5 + (((t >>> 7) | (t << 25)) ^ ((t >>> 18) | (t << 14)) ^ (t >>> 3)) + (((w10 >>> 17) | (w10 << 15)) ^ ((w10 >>> 19) | (w10 << 13)) ^ (w10 >>> 10))) | 0;
  t = (d + (((a >>> 6) | (a << 26)) ^ ((a >>> 11) | (a << 21)) ^ ((a >>> 25) | (a << 7))) + ((a & b) ^ (~a & c)) + -778901479 + w12) | 0;
  h = (h + t) | 0;
  d = (t + (((e >>> 2) | (e << 30)) ^ ((e >>> 13) | (e << 19)) ^ ((e >>> 22) | (e << 10))) + ((e & f) ^ (e & g) ^ (f & g))) | 0;
  t = w14; w13 = (w13 + w6 + (((t >>> 7) | (t << 25)) ^ ((t >>> 18) | (t << 14)) ^ (t >>> 3)) + (((w11 >>> 17) | (w11 << 15)) ^ ((w11 >>> 19) | (w11 << 13)) ^ (w11 >>> 10))) | 0;
  t = (c + (((h >>> 6) | (h << 26)) ^ ((h >>> 11) | (h << 21)) ^ ((h >>> 25) | (h << 7))) + ((h & a) ^ (~h & b)) + -694614492 + w13) | 0;
  g = (g + t) | 0;
  c = (t + (((d >>> 2) | (d << 30)) ^ ((d >>> 13) | (d << 19)) ^ ((d >>> 22) | (d << 10))) + ((d & e) ^ (d & f) ^ (e & f))) | 0;
  t = w15; w14 = (w14 + w7 + (((t >>> 7) | (t << 25)) ^ ((t >>> 18) | (t << 14)) ^ (t >>> 3)) + (((w12 >>> 17) | (w12 << 15)) ^ ((w12 >>> 19) | (w12 << 13)) ^ (w12 >>> 10))) | 0;
  t = (b + (((g >>> 6) | (g << 26)) ^ ((g >>> 11) | (g << 21)) ^ ((g >>> 25) | (g << 7))) + ((g & h) ^ (~g & a)) + -200395387 + w14) | 0;
  f = (f + t) | 0;
  b = (t + (((c >>> 2) | (c << 30)) ^ ((c >>> 13) | (c << 19)) ^ ((c >>> 22) | (c << 10))) + ((c & d) ^ (c & e) ^ (d & e))) | 0;
  t = w0; w15 = (w15 + w8 + (((t >>> 7) | (t << 25)) ^ ((t >>> 18) | (t << 14)) ^ (t >>> 3)) + (((w13 >>> 17) | (w13 << 15)) ^ ((w13 >>> 19) | (w13 << 13)) ^ (w13 >>> 10))) | 0;
  t = (a + (((f >>> 6) | (f << 26)) ^ ((f >>> 11) | (f << 21)) ^ ((f >>> 25) | (f << 7))) + ((f & g) ^ (~f & h)) + 275423344 + w15) | 0;
  e = (e + t) | 0;
  a = (t + (((b >>> 2) | (b << 30)) ^ ((b >>> 13) | (b << 19)) ^ ((b >>> 22) | (b << 10))) + ((b & c) ^ (b & d) ^ (c & d))) | 0;
  t = w1; w0 = (w0 + w9 + (((t >>> 7) | (t << 25)) ^ ((t >>> 18) | (t << 14)) ^ (t >>> 3)) + (((w14 >>> 17) | (w14 << 15)) ^ ((w14 >>> 19) | (w14 << 13)) ^ (w14 >>> 10))) | 0;
  t = (h + (((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7))) + ((e & f) ^ (~e & g)) + 430227734 + w0) | 0;
  d = (d + t) | 0;
  h = (t + (((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10))) + ((a & b) ^ (a & c) ^ (b & c))) | 0;
  t = w2; w1 = (w1 + w10 + (((t >>> 7) | (t << 25)) ^ ((t >>> 18) | (t << 14)) ^ (t >>> 3)) + (((w15 >>> 17) | (w15 << 15)) ^ ((w15 >>> 19) | (w15 << 13)) ^ (w15 >>> 10))) | 0;
  t = (g + (((d >>> 6) | (d << 26)) ^ ((d >>> 11) | (d << 21)) ^ ((d >>> 25) | (d << 7))) + ((d & e) ^ (~d & f)) + 506948616 + w1) | 0;
  c = (c + t) | 0;
  g = (t + (((h >>> 2) | (h << 30)) ^ ((h >>> 13) | (h << 19)) ^ ((h >>> 22) | (h << 10))) + ((h & a) ^ (h & b) ^ (a & b))) | 0;
  t = w3; w2 = (w2 + w11 + (((t >>> 7) | (t << 25)) ^ ((t >>> 18) | (t << 14)) ^ (t >>> 3)) + (((w0 >>> 17) | (w0 << 15)) ^ ((w0 >>> 19) | (w0 << 13)) ^ (w0 >>> 10))) | 0;
  t = (f + (((c >>> 6) | (c << 26)) ^ ((c >>> 11) | (c << 21)) ^ ((c >>> 25) | (c << 7))) + ((c & d) ^ (~c & e)) + 659060556 + w2) | 0;
  b = (b + t) | 0;
  f = (t + (((g >>> 2) | (g << 30)) ^ ((g >>> 13) | (g << 19)) ^ ((g >>> 22) | (g << 10))) + ((g & h) ^ (g & a) ^ (h & a))) | 0;
  t = w4; w3 = (w3 + w12 + (((t >>> 7) | (t << 25)) ^ ((t >>> 18) | (t << 14)) ^ (t >>> 3)) + (((w1 >>> 17) | (w1 << 15)) ^ ((w1 >>> 19) | (w1 << 13)) ^ (w1 >>> 10))) | 0;
  t = (e + (((b >>> 6) | (b << 26)) ^ ((b >>> 11) | (b << 21)) ^ ((b >>> 25) | (b << 7))) + ((b & c) ^ (~b & d)) + 883997877 + w3) | 0;
  a = (a + t) | 0;
  e = (t + (((f >>> 2) | (f << 30)) ^ ((f >>> 13) | (f << 19)) ^ ((f >>> 22) | (f << 10))) + ((f & g) ^ (f & h) ^ (g & h))) | 0;
  t = w5; w4 = (w4 + w13 + (((t >>> 7) | (t << 25)) ^ ((t >>> 18) | (t << 14)) ^ (t >>> 3)) + (((w2 >>> 17) | (w2 << 15)) ^ ((w2 >>> 19) | (w2 << 13)) ^ (w2 >>> 10))) | 0;
  t = (d + (((a >>> 6) | (a << 26)) ^ ((a >>> 11) | (a << 21)) ^ ((a >>> 25) | (a << 7))) + ((a & b) ^ (~a & c)) + 958139571 + w4) | 0;
  h = (h + t) | 0;
  d = (t + (((e >>> 2) | (e << 30)) ^ ((e >>> 13) | (e << 19)) ^ ((e >>> 22) | (e << 10))) + ((e & f) ^ (e & g) ^ (f & g))) | 0;
  t = w6; w5 = (w5 + w14 + (((t >>> 7) | (t << 25)) ^ ((t >>> 18) | (t << 14)) ^ (t >>> 3)) + (((w3 >>> 17) | (w3 << 15)) ^ ((w3 >>> 19) | (w3 << 13)) ^ (w3 >>> 10))) | 0;
  t = (c + (((h >>> 6) | (h << 26)) ^ ((h >>> 11) | (h << 21)) ^ ((h >>> 25) | (h << 7))) + ((h & a) ^ (~h & b)) + 1322822218 + w5) | 0;
  g = (g + t) | 0;
  c = (t + (((d >>> 2) | (d << 30)) ^ ((d >>> 13) | (d << 19)) ^ ((d >>> 22) | (d << 10))) + ((d & e) ^ (d & f) ^ (e & f))) | 0;
  t = w7; w6 = (w6 + w15 + (((t >>> 7) | (t << 25)) ^ ((t >>> 18) | (t << 14)) ^ (t >>> 3)) + (((w4 >>> 17) | (w4 << 15)) ^ ((w4 >>> 19) | (w4 << 13)) ^ (w4 >>> 10))) | 0;
  t = (b + (((g >>> 6) | (g << 26)) ^ ((g >>> 11) | (g << 21)) ^ ((g >>> 25) | (g << 7))) + ((g & h) ^ (~g & a)) + 1537002063 + w6) | 0;
  f = (f + t) | 0;
  b = (t + (((c >>> 2) | (c << 30)) ^ ((c >>> 13) | (c << 19)) ^ ((c >>> 22) | (c << 10))) + ((c & d) ^ (c & e) ^ (d & e))) | 0;
  t = w8; w7 = (w7 + w0 + (((t >>> 7) | (t << 25)) ^ ((t >>> 18) | (t << 14)) ^ (t >>> 3)) + (((w5 >>> 17) | (w5 << 15)) ^ ((w5 >>> 19) | (w5 << 13)) ^ (w5 >>> 10))) | 0;
  t = (a + (((f >>> 6) | (f << 26)) ^ ((f >>> 11) | (f << 21)) ^ ((f >>> 25) | (f << 7))) + ((f & g) ^ (~f & h)) + 1747873779 + w7) | 0;
  e = (e + t) | 0;
  a = (t + (((b >>> 2) | (b << 30)) ^ ((b >>> 13) | (b << 19)) ^ ((b >>> 22) | (b << 10))) + ((b & c) ^ (b & d) ^ (c & d))) | 0;
  t = w9; w8 = (w8 + w1 + (((t >>> 7) | (t << 25)) ^ ((t >>> 18) | (t << 14)) ^ (t >>> 3)) + (((w6 >>> 17) | (w6 << 15)) ^ ((w6 >>> 19) | (w6 << 13)) ^ (w6 >>> 10))) | 0;
  t = (h + (((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7))) + ((e & f) ^ (~e & g)) + 1955562222 + w8) | 0;
  d = (d + t) | 0;
  h = (t + (((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10))) + ((a & b) ^ (a & c) ^ (b & c))) | 0;
  t = w10; w9 = (w9 + w2 + (((t >>> 7) | (t << 25)) ^ ((t >>> 18) | (t << 14)) ^ (t >>> 3)) + (((w7 >>> 17) | (w7 << 15)) ^ ((w7 >>> 19) | (w7 << 13)) ^ (w7 >>> 10))) | 0;
  t = (g + (((d >>> 6) | (d << 26)) ^ ((d >>> 11) | (d << 21)) ^ ((d >>> 25) | (d << 7))) + ((d & e) ^ (~d & f)) + 2024104815 + w9) | 0;
  c = (c + t) | 0;
  g = (t + (((h >>> 2) | (h << 30)) ^ ((h >>> 13) | (h << 19)) ^ ((h >>> 22) | (h << 10))) + ((h & a) ^ (h & b) ^ (a & b))) | 0;
  t = w11; w10 = (w10 + w3 + (((t >>> 7) | (t << 25)) ^ ((t >>> 18) | (t << 14)) ^ (t >>> 3)) + (((w8 >>> 17) | (w8 << 15)) ^ ((w8 >>> 19) | (w8 << 13)) ^ (w8 >>> 10))) | 0;
  t = (f + (((c >>> 6) | (c << 26)) ^ ((c >>> 11) | (c << 21)) ^ ((c >>> 25) | (c << 7))) + ((c & d) ^ (~c & e)) + -2067236844 + w10) | 0;
  b = (b + t) | 0;
  f = (t + (((g >>> 2) | (g << 30)) ^ ((g >>> 13) | (g << 19)) ^ ((g >>> 22) | (g << 10))) + ((g & h) ^ (g & a) ^ (h & a))) | 0;
  t = w12; w11 = (w11 + w4 + (((t >>> 7) | (t << 25)) ^ ((t >>> 18) | (t << 14)) ^ (t >>> 3)) + (((w9 >>> 17) | (w9 << 15)) ^ ((w9 >>> 19) | (w9 << 13)) ^ (w9 >>> 10))) | 0;
  t = (e + (((b >>> 6) | (b << 26)) ^ ((b >>> 11) | (b << 21)) ^ ((b >>> 25) | (b << 7))) + ((b & c) ^ (~b & d)) + -1933114872 + w11) | 0;
  a = (a + t) | 0;
  e = (t + (((f >>> 2) | (f << 30)) ^ ((f >>> 13) | (f << 19)) ^ ((f >>> 22) | (f << 10))) + ((f & g) ^ (f & h) ^ (g & h))) | 0;
  t = w13; w12 = (w12 + w5 + (((t >>> 7) | (t << 25)) ^ ((t >>> 18) | (t << 14)) ^ (t >>> 3)) + (((w10 >>> 17) | (w10 << 15)) ^ ((w10 >>> 19) | (w10 << 13)) ^ (w10 >>> 10))) | 0;
  t = (d + (((a >>> 6) | (a << 26)) ^ ((a >>> 11) | (a << 21)) ^ ((a >>> 25) | (a << 7))) + ((a & b) ^ (~a & c)) + -1866530822 + w12) | 0;
  h = (h + t) | 0;
  d = (t + (((e >>> 2) | (e << 30)) ^ ((e >>> 13) | (e << 19)) ^ ((e >>> 22) | (e << 10))) + ((e & f) ^ (e & g) ^ (f & g))) | 0;
  t = w14; w13 = (w13 + w6 + (((t >>> 7) | (t << 25)) ^ ((t >>> 18) | (t << 14)) ^ (t >>> 3)) + (((w11 >>> 17) | (w11 << 15)) ^ ((w11 >>> 19) | (w11 << 13)) ^ (w11 >>> 10))) | 0;
  t = (c + (((h >>> 6) | (h << 26)) ^ ((h >>> 11) | (h << 21)) ^ ((h >>> 25) | (h << 7))) + ((h & a) ^ (~h & b)) + -1538233109 + w13) | 0;
  g = (g + t) | 0;
  c = (t + (((d >>> 2) | (d << 30)) ^ ((d >>> 13) | (d << 19)) ^ ((d >>> 22) | (d << 10))) + ((d & e) ^ (d & f) ^ (e & f))) | 0;
  t = w15; w14 = (w14 + w7 + (((t >>> 7) | (t << 25)) ^ ((t >>> 18) | (t << 14)) ^ (t >>> 3)) + (((w12 >>> 17) | (w12 << 15)) ^ ((w12 >>> 19) | (w12 << 13)) ^ (w12 >>> 10))) | 0;
  t = (b + (((g >>> 6) | (g << 26)) ^ ((g >>> 11) | (g << 21)) ^ ((g >>> 25) | (g << 7))) + ((g & h) ^ (~g & a)) + -1090935817 + w14) | 0;
  f = (f + t) | 0;
  b = (t + (((c >>> 2) | (c << 30)) ^ ((c >>> 13) | (c << 19)) ^ ((c >>> 22) | (c << 10))) + ((c & d) ^ (c & e) ^ (d & e))) | 0;
  t = w0; w15 = (w15 + w8 + (((t >>> 7) | (t << 25)) ^ ((t >>> 18) | (t << 14)) ^ (t >>> 3)) + (((w13 >>> 17) | (w13 << 15)) ^ ((w13 >>> 19) | (w13 << 13)) ^ (w13 >>> 10))) | 0;
  t = (a + (((f >>> 6) | (f << 26)) ^ ((f >>> 11) | (f << 21)) ^ ((f >>> 25) | (f << 7))) + ((f & g) ^ (~f & h)) + -965641998 + w15) | 0;
  e = (e + t) | 0;
  a = (t + (((b >>> 2) | (b << 30)) ^ ((b >>> 13) | (b << 19)) ^ ((b >>> 22) | (b << 10))) + ((b & c) ^ (b & d) ^ (c & d))) | 0;
  H[0] = (H[0] + a) | 0;
  H[1] = (H[1] + b) | 0;
  H[2] = (H[2] + c) | 0;
  H[3] = (H[3] + d) | 0;
  H[4] = (H[4] + e) | 0;
  H[5] = (H[5] + f) | 0;
  H[6] = (H[6] + g) | 0;
  H[7] = (H[7] + h) | 0;
}

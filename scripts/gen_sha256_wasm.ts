/**
 * Generator of the WebAssembly SHA-256 behind the event id (lib/outputs/_event_id.ts): emits
 * the module's bytes directly (no WAT toolchain needed) and writes them, base64, into
 * `lib/outputs/_sha256_wasm.generated.ts`.
 *
 *   deno run scripts/gen_sha256_wasm.ts            write the module (also: `deno task gen`)
 *   deno run scripts/gen_sha256_wasm.ts --check    exit 1 when the committed module is stale
 *
 * The module hashes 4 messages at once, one per 32-bit lane of v128 (multi-buffer hashing, as
 * Intel's isa-l does): `hash(in, count, out)` reads `count` frames laid out as the plugin sends
 * them (u32 big-endian length + bytes) from `in`, and writes 32 lower-case hex bytes (the first
 * 128 bits of each SHA-256) per frame at `out + 32 i`. Each lane takes the next frame when its
 * own ends; a frame's last block(s) are padded in a per-lane tail area, so the input needs no
 * room between frames. Memory layout (bytes):
 *
 *   0     64 zero bytes (what an idle lane hashes)
 *   64    per lane (16 bytes): block pointer, where the tail starts, blocks left, frame index
 *   128   the state H0..H7, one v128 each (lane j = frame in lane j)
 *   256   per lane (128 bytes): the padded tail (last partial block, 0x80, zeros, bit length)
 *   768   "0123456789abcdef"
 *   1024  the round constants K, each in all four lanes (64 × 16 bytes)
 *   2048  the message schedule (16 words, v128 each)
 *   2304  the frames (`in`), then the hex (`out`): placed by the caller
 *
 * @module
 */

import { SHA256_IV, SHA256_K } from "../lib/internal.ts";

/** Where the generated module is written, relative to the repository root. */
export const SHA256_WASM_FILE = "lib/outputs/_sha256_wasm.generated.ts";

/** First byte the caller may use for frames and hex. */
export const DATA_START = 2304;
/** The memory's maximum, in 64 KiB pages (4 MiB): a frame larger than that is hashed in JS. */
export const MAX_PAGES = 64;

const ZERO = 0, LANES = 64, HST = 128, TAIL = 256, HEXT = 768, KT = 1024, WS = 2048;
const IV = SHA256_IV, K = SHA256_K;

// --- encoding ---------------------------------------------------------------------------------

function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n !== 0) b |= 0x80;
    out.push(b);
  } while (n !== 0);
  return out;
}

function sleb(n: number): number[] {
  const out: number[] = [];
  n |= 0;
  for (;;) {
    const b = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (b & 0x40) === 0) || (n === -1 && (b & 0x40) !== 0)) {
      out.push(b);
      return out;
    }
    out.push(b | 0x80);
  }
}

const vec = (items: number[][]): number[] => [...uleb(items.length), ...items.flat()];
const name = (s: string): number[] => vec([...new TextEncoder().encode(s)].map((b) => [b]));
const section = (id: number, body: number[]): number[] => [id, ...uleb(body.length), ...body];

const I32 = 0x7f, V128 = 0x7b, VOID = 0x40;

/** One function body being emitted: its locals and instructions. */
class Fn {
  readonly code: number[] = [];
  readonly #locals: number[] = [];
  readonly #params: number;

  constructor(params: number) {
    this.#params = params;
  }

  /** A new local of `type`; returns its index. */
  local(type: number): number {
    this.#locals.push(type);
    return this.#params + this.#locals.length - 1;
  }

  op(...bytes: number[]): this {
    this.code.push(...bytes);
    return this;
  }

  simd(opcode: number, ...imm: number[]): this {
    return this.op(0xfd, ...uleb(opcode), ...imm);
  }

  get(i: number): this {
    return this.op(0x20, ...uleb(i));
  }
  set(i: number): this {
    return this.op(0x21, ...uleb(i));
  }
  gget(i: number): this {
    return this.op(0x23, ...uleb(i));
  }
  gset(i: number): this {
    return this.op(0x24, ...uleb(i));
  }
  i32(n: number): this {
    return this.op(0x41, ...sleb(n));
  }
  load(offset = 0): this {
    return this.op(0x28, 2, ...uleb(offset));
  }
  load8(offset = 0): this {
    return this.op(0x2d, 0, ...uleb(offset));
  }
  store(offset = 0): this {
    return this.op(0x36, 2, ...uleb(offset));
  }
  store8(offset = 0): this {
    return this.op(0x3a, 0, ...uleb(offset));
  }
  add(): this {
    return this.op(0x6a);
  }
  sub(): this {
    return this.op(0x6b);
  }
  and(): this {
    return this.op(0x71);
  }
  or(): this {
    return this.op(0x72);
  }
  shl(): this {
    return this.op(0x74);
  }
  shrU(): this {
    return this.op(0x76);
  }
  call(f: number): this {
    return this.op(0x10, ...uleb(f));
  }
  end(): this {
    return this.op(0x0b);
  }

  vload(offset = 0): this {
    return this.simd(0x00, 0, ...uleb(offset));
  }
  vstore(offset = 0): this {
    return this.simd(0x0b, 0, ...uleb(offset));
  }
  /** v128.const with the same 32-bit value in every lane. */
  vsplat(n: number): this {
    const b = [n & 255, (n >>> 8) & 255, (n >>> 16) & 255, (n >>> 24) & 255];
    return this.simd(0x0c, ...b, ...b, ...b, ...b);
  }
  shuffle(lanes: number[]): this {
    if (lanes.length !== 16) throw new Error("a shuffle has 16 lanes");
    return this.simd(0x0d, ...lanes);
  }
  vadd(): this {
    return this.simd(0xae);
  }
  vxor(): this {
    return this.simd(0x51);
  }
  vor(): this {
    return this.simd(0x50);
  }
  vand(): this {
    return this.simd(0x4e);
  }
  bitselect(): this {
    return this.simd(0x52);
  }
  vshrU(n: number): this {
    return this.i32(n).simd(0xad);
  }
  vshl(n: number): this {
    return this.i32(n).simd(0xab);
  }
  /** Pushes `x` rotated right by `n` bits (every lane). */
  rotr(x: number, n: number): this {
    return this.get(x).vshrU(n).get(x).vshl(32 - n).vor();
  }

  body(): number[] {
    const groups: number[][] = [];
    for (const t of this.#locals) {
      const last = groups[groups.length - 1];
      if (last && last[1] === t) last[0]++;
      else groups.push([1, t]);
    }
    const b = [
      ...uleb(groups.length),
      ...groups.flatMap(([n, t]) => [...uleb(n), t]),
      ...this.code,
    ];
    return [...uleb(b.length), ...b];
  }
}

// --- the functions ----------------------------------------------------------------------------

const F_HASH = 0, F_ASSIGN = 1, F_BLOCK = 2, F_FINISH = 3;
const G_CURSOR = 0, G_NEXT = 1, G_COUNT = 2, G_OUT = 3;

/** block(p0, p1, p2, p3): one 64-byte block of each lane's message into the state at HST. */
function blockFn(): Fn {
  const f = new Fn(4);
  const s = Array.from({ length: 8 }, () => f.local(V128));
  const [q0, q1, q2, q3, t1, x] = Array.from({ length: 6 }, () => f.local(V128));
  // The message words, lane j from p_j: 4 words of each lane per load, transposed (and made
  // big-endian) by two rounds of shuffles, stored at WS (16 words, reused as the schedule).
  const lo = [3, 2, 1, 0, 19, 18, 17, 16, 7, 6, 5, 4, 23, 22, 21, 20];
  const hi = [11, 10, 9, 8, 27, 26, 25, 24, 15, 14, 13, 12, 31, 30, 29, 28];
  const first = [0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23];
  const second = [8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31];
  const wAt = (i: number) => WS + 16 * (i % 16);
  for (let g = 0; g < 4; g++) {
    const o = 16 * g;
    f.get(0).vload(o).set(q0).get(1).vload(o).set(q1).get(2).vload(o).set(q2);
    f.get(3).vload(o).set(q3);
    f.get(q0).get(q1).shuffle(lo).set(t1).get(q2).get(q3).shuffle(lo).set(x);
    f.i32(0).get(t1).get(x).shuffle(first).vstore(wAt(4 * g));
    f.i32(0).get(t1).get(x).shuffle(second).vstore(wAt(4 * g + 1));
    f.get(q0).get(q1).shuffle(hi).set(t1).get(q2).get(q3).shuffle(hi).set(x);
    f.i32(0).get(t1).get(x).shuffle(first).vstore(wAt(4 * g + 2));
    f.i32(0).get(t1).get(x).shuffle(second).vstore(wAt(4 * g + 3));
  }
  for (let k = 0; k < 8; k++) f.i32(0).vload(HST + 16 * k).set(s[k]);
  // v = [a, b, c, d, e, f, g, h]: the locals renamed per round instead of moved.
  let v = [...s];
  for (let i = 0; i < 64; i++) {
    if (i >= 16) {
      // W[i] = W[i-16] + σ0(W[i-15]) + W[i-7] + σ1(W[i-2])
      f.i32(0);
      f.i32(0).vload(wAt(i)).i32(0).vload(wAt(i + 9)).vadd();
      f.i32(0).vload(wAt(i + 1)).set(x);
      f.rotr(x, 7).rotr(x, 18).vxor().get(x).vshrU(3).vxor().vadd();
      f.i32(0).vload(wAt(i + 14)).set(x);
      f.rotr(x, 17).rotr(x, 19).vxor().get(x).vshrU(10).vxor().vadd();
      f.vstore(wAt(i));
    }
    const [a, b, c, d, e, ff, g, h] = v;
    // T1 = h + W[i] + K[i] + Ch(e, f, g) + Σ1(e)
    f.get(h).i32(0).vload(wAt(i)).vadd().i32(0).vload(KT + 16 * i).vadd();
    f.get(ff).get(g).get(e).bitselect().vadd(); // Ch: f where e, else g
    f.rotr(e, 6).rotr(e, 11).vxor().rotr(e, 25).vxor().vadd().set(t1);
    f.get(d).get(t1).vadd().set(d); // the new e
    // a = T1 + Maj(a, b, c) + Σ0(a)
    f.get(t1);
    f.get(c).get(b).get(a).get(b).vxor().bitselect().vadd(); // Maj: c where a ≠ b, else b
    f.rotr(a, 2).rotr(a, 13).vxor().rotr(a, 22).vxor().vadd();
    f.set(h);
    v = [h, a, b, c, d, e, ff, g];
  }
  for (let k = 0; k < 8; k++) {
    f.i32(0).i32(0).vload(HST + 16 * k).get(v[k]).vadd().vstore(HST + 16 * k);
  }
  return f.end();
}

/** assign(j): lane j takes the frame at the cursor (its tail padded), with a fresh state. */
function assignFn(): Fn {
  const f = new Fn(1);
  const len = f.local(I32), s = f.local(I32), full = f.local(I32), rest = f.local(I32);
  const tb = f.local(I32), t = f.local(I32), e = f.local(I32), lane = f.local(I32);
  const c = f.local(I32);
  f.gget(G_CURSOR).set(c);
  f.get(c).load8(0).i32(24).shl();
  f.get(c).load8(1).i32(16).shl().or();
  f.get(c).load8(2).i32(8).shl().or();
  f.get(c).load8(3).or().set(len);
  f.get(c).i32(4).add().set(s);
  f.get(s).get(len).add().gset(G_CURSOR);
  f.get(len).i32(6).shrU().set(full);
  f.get(len).i32(63).and().set(rest);
  f.i32(1).i32(2).get(rest).i32(56).op(0x49 /* lt_u */).op(0x1b /* select */).set(tb);
  f.get(0).i32(7).shl().i32(TAIL).add().set(t);
  f.get(t).i32(0).i32(128).op(0xfc, 11, 0); // memory.fill
  f.get(t).get(s).get(full).i32(6).shl().add().get(rest).op(0xfc, 10, 0, 0); // memory.copy
  f.get(t).get(rest).add().i32(0x80).store8();
  // The bit length, big-endian, in the last 8 bytes of the tail (len < 2^32: at most 35 bits,
  // so the first three bytes stay 0): bytes -5..-1 from e = where the tail's last block ends.
  f.get(t).get(tb).i32(6).shl().add().i32(5).sub().set(e);
  f.get(e).get(len).i32(29).shrU().store8(0);
  f.get(e).get(len).i32(21).shrU().store8(1);
  f.get(e).get(len).i32(13).shrU().store8(2);
  f.get(e).get(len).i32(5).shrU().store8(3);
  f.get(e).get(len).i32(3).shl().store8(4);
  f.get(0).i32(4).shl().i32(LANES).add().set(lane);
  f.get(lane).get(s).get(t).get(full).op(0x1b /* select */).store(0);
  f.get(lane).get(s).get(full).i32(6).shl().add().store(4);
  f.get(lane).get(full).get(tb).add().store(8);
  f.get(lane).gget(G_NEXT).store(12);
  f.gget(G_NEXT).i32(1).add().gset(G_NEXT);
  for (let k = 0; k < 8; k++) f.get(0).i32(2).shl().i32(IV[k]).store(HST + 16 * k);
  return f.end();
}

/** finish(j): the first 16 bytes of lane j's digest as 32 hex bytes at out + 32 · index. */
function finishFn(): Fn {
  const f = new Fn(1);
  const off = f.local(I32), x = f.local(V128), dst = f.local(I32);
  f.get(0).i32(2).shl().set(off);
  f.get(off).load(HST).simd(0x11); // i32x4.splat
  for (let k = 1; k < 4; k++) f.get(off).load(HST + 16 * k).simd(0x1c, k); // replace_lane
  f.set(x);
  const bswap = [3, 2, 1, 0, 7, 6, 5, 4, 11, 10, 9, 8, 15, 14, 13, 12];
  f.get(x).get(x).shuffle(bswap).set(x);
  f.gget(G_OUT).get(0).i32(4).shl().i32(LANES + 12).add().load().i32(5).shl().add().set(dst);
  const interleave = (from: number) =>
    Array.from({ length: 16 }, (_, i) => (i & 1 ? 16 : 0) + from + (i >> 1));
  for (const [half, from] of [[0, 0], [16, 8]]) {
    f.get(dst);
    f.i32(0).vload(HEXT);
    f.get(x).i32(4).simd(0x6d); // i8x16.shr_u: high nibbles
    f.get(x).vsplat(0x0f0f0f0f).vand(); // low nibbles
    f.shuffle(interleave(from));
    f.simd(0x0e); // i8x16.swizzle: the hex digits
    f.vstore(half);
  }
  return f.end();
}

/** hash(in, count, out): the ids of `count` length-prefixed frames at `in`, hex at `out`. */
function hashFn(): Fn {
  const f = new Fn(3);
  const active = f.local(I32), rem = f.local(I32), ptr = f.local(I32);
  f.get(0).gset(G_CURSOR).i32(0).gset(G_NEXT).get(1).gset(G_COUNT).get(2).gset(G_OUT);
  f.i32(0).set(active);
  const next_lt_count = () => f.gget(G_NEXT).gget(G_COUNT).op(0x49 /* lt_u */);
  for (let j = 0; j < 4; j++) {
    next_lt_count().op(0x04, VOID);
    f.i32(j).call(F_ASSIGN).get(active).i32(1).add().set(active);
    f.op(0x05); // else: idle
    f.i32(0).i32(ZERO).store(LANES + 16 * j).i32(0).i32(0).store(LANES + 16 * j + 8);
    f.end();
  }
  f.op(0x02, VOID).op(0x03, VOID); // block $exit, loop $next
  f.get(active).op(0x45 /* eqz */).op(0x0d, 1); // br_if $exit
  for (let j = 0; j < 4; j++) f.i32(0).load(LANES + 16 * j);
  f.call(F_BLOCK);
  for (let j = 0; j < 4; j++) {
    const L = LANES + 16 * j;
    f.i32(0).load(L + 8).set(rem);
    f.get(rem).op(0x04, VOID); // the lane is busy
    f.get(rem).i32(1).sub().set(rem);
    f.i32(0).get(rem).store(L + 8);
    f.get(rem).op(0x45).op(0x04, VOID); // its frame is done
    f.i32(j).call(F_FINISH);
    next_lt_count().op(0x04, VOID);
    f.i32(j).call(F_ASSIGN);
    f.op(0x05);
    f.get(active).i32(1).sub().set(active);
    f.i32(0).i32(ZERO).store(L);
    f.end();
    f.op(0x05); // more blocks: the next one, the tail after the last full one
    f.i32(0).load(L).i32(64).add().set(ptr);
    f.get(ptr).i32(0).load(L + 4).op(0x46 /* eq */).op(0x04, VOID);
    f.i32(TAIL + 128 * j).set(ptr);
    f.end();
    f.i32(0).get(ptr).store(L);
    f.end();
    f.end();
  }
  f.op(0x0c, 0); // br $next
  f.end().end(); // loop, block
  return f.end();
}

/** The module's bytes (deterministic). */
export function buildSha256Wasm(): Uint8Array {
  const fns = [hashFn(), assignFn(), blockFn(), finishFn()];
  const types = [
    [0x60, ...vec([[I32], [I32], [I32]]), 0],
    [0x60, ...vec([[I32]]), 0],
    [0x60, ...vec([[I32], [I32], [I32], [I32]]), 0],
  ];
  const fnTypes = [0, 1, 2, 1];
  const globals = [G_CURSOR, G_NEXT, G_COUNT, G_OUT].map(() => [I32, 1, 0x41, 0, 0x0b]);
  const hexDigits = [...new TextEncoder().encode("0123456789abcdef")].map((b) => [b]);
  const kTable = K.flatMap((k) => {
    const b = [[k & 255], [(k >>> 8) & 255], [(k >>> 16) & 255], [(k >>> 24) & 255]];
    return [...b, ...b, ...b, ...b];
  });
  const bytes = [
    0x00,
    0x61,
    0x73,
    0x6d,
    1,
    0,
    0,
    0,
    ...section(1, vec(types)),
    ...section(3, vec(fnTypes.map((t) => uleb(t)))),
    ...section(5, vec([[0x01, ...uleb(1), ...uleb(MAX_PAGES)]])),
    ...section(6, vec(globals)),
    ...section(7, vec([[...name("memory"), 2, 0], [...name("hash"), 0, F_HASH]])),
    ...section(10, vec(fns.map((f) => f.body()))),
    ...section(
      11,
      vec([
        [0, 0x41, ...sleb(HEXT), 0x0b, ...vec(hexDigits)],
        [0, 0x41, ...sleb(KT), 0x0b, ...vec(kTable)],
      ]),
    ),
  ];
  return new Uint8Array(bytes);
}

/** Renders the generated module's full text (deterministic). */
export function renderSha256WasmModule(): string {
  const b64 = buildSha256Wasm().toBase64();
  const lines: string[] = [];
  for (let i = 0; i < b64.length; i += 96) lines.push(`  "${b64.slice(i, i + 96)}"`);
  return [
    "// GENERATED by scripts/gen_sha256_wasm.ts. DO NOT EDIT.",
    "// Regenerate with `deno task gen`; `deno task gen --check` fails when this file is stale.",
    "",
    "/**",
    " * The 4-lane WebAssembly SHA-256 of the event id (exports `memory` and",
    " * `hash(in, count, out)`; layout in scripts/gen_sha256_wasm.ts), base64.",
    " */",
    "export const SHA256_WASM_BASE64: string =",
    `${lines.join(" +\n")};`,
    "",
    "/** First byte of the module's memory free for frames and hex. */",
    `export const SHA256_WASM_DATA_START = ${DATA_START};`,
    "/** The module's memory maximum, in 64 KiB pages. */",
    `export const SHA256_WASM_MAX_PAGES = ${MAX_PAGES};`,
    "",
  ].join("\n");
}

if (import.meta.main) {
  const target = new URL(`../${SHA256_WASM_FILE}`, import.meta.url);
  const text = renderSha256WasmModule();
  if (Deno.args.includes("--check")) {
    const current = await Deno.readTextFile(target).catch(() => "");
    if (current !== text) {
      console.error(`${SHA256_WASM_FILE} is stale: run \`deno task gen\``);
      Deno.exit(1);
    }
    console.log(`${SHA256_WASM_FILE} is up to date`);
  } else {
    await Deno.writeTextFile(target, text);
    console.log(`wrote ${SHA256_WASM_FILE}`);
  }
}

// Seeded fuzz inputs for the decoder-of-record tests (differential_test, fuzz_test) and the long
// runs of `deno task fuzz`: frame bodies (`Any` bytes) made by mutating valid vector frames
// (bit flips, byte edits, truncations, length-field edits, duplicated/reordered fields, unknown
// fields of every wire type, nested groups with matching and mismatching end tags, over-long
// varints, field numbers 0 / 2²⁹−1 / 2²⁹, known numbers with wrong wire types, huge lengths),
// plus random values under valid type_urls and random envelopes. Independent of the code
// under test: the field splitter below is written out here.
import { concat, EXPECTED_HOOKS, fixtureVectors, type HookName, typeUrlFor } from "./_vectors.ts";
import { mulberry32 } from "./_vectors.ts";

/** One generated frame body and how it was made. */
export interface FuzzCase {
  /** The `Any` bytes (no length prefix). */
  frame: Uint8Array;
  /** The mutation that made it, for counts and repro lines. */
  kind: string;
}

type Rng = () => number;
const utf8 = new TextEncoder();
const HOOK_NAMES = Object.keys(EXPECTED_HOOKS) as HookName[];

/** Varint bytes of `v` (a non-negative number or any bigint, two's complement 64-bit). */
function varint(value: number | bigint): number[] {
  if (typeof value === "number" && value >= 0 && value < 2 ** 31) {
    const out: number[] = [];
    while (value >= 0x80) out.push((value & 0x7f) | 0x80), value >>>= 7;
    out.push(value);
    return out;
  }
  let v = BigInt.asUintN(64, BigInt(value));
  const out: number[] = [];
  while (v >= 0x80n) {
    out.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  out.push(Number(v));
  return out;
}

/** `v` as a varint padded to `width` bytes (≥ its natural width; may exceed 10). */
function paddedVarint(value: number | bigint, width: number): number[] {
  const out = varint(value);
  while (out.length < width) {
    out[out.length - 1] |= 0x80;
    out.push(0);
  }
  return out;
}

function tag(no: number, wt: number): number[] {
  return varint(no < 2 ** 27 ? no * 8 + wt : BigInt(no) * 8n + BigInt(wt));
}

function lenField(no: number, data: Uint8Array): Uint8Array {
  return concat([Uint8Array.from([...tag(no, 2), ...varint(data.length)]), data]);
}

/** An `Any` around `value` (type_url first), like the plugin writes it. */
export function wrapAny(typeUrl: string, value: Uint8Array): Uint8Array {
  let url = urlFields.get(typeUrl);
  if (!url) urlFields.set(typeUrl, url = lenField(1, utf8.encode(typeUrl)));
  const len = varint(value.length),
    out = new Uint8Array(url.length + 1 + len.length + value.length);
  out.set(url);
  out[url.length] = 0x12;
  out.set(len, url.length + 1);
  out.set(value, url.length + 1 + len.length);
  return out;
}
const urlFields = new Map<string, Uint8Array>();

/** A top-level field of a valid message: where its tag, value and end are. */
interface Span {
  start: number;
  valueStart: number;
  end: number;
  no: number;
  wt: number;
  /** For wire type 2: where the length varint starts. */
  lenStart: number;
}

function readVarint(b: Uint8Array, p: number): [value: bigint, next: number] {
  let v = 0n, shift = 0n;
  for (;;) {
    if (p >= b.length) throw new Error("truncated");
    const x = b[p++];
    v |= BigInt(x & 0x7f) << shift;
    if (x < 0x80) return [v, p];
    shift += 7n;
  }
}

/** The top-level fields of a well-formed message (the vectors are). */
function spans(b: Uint8Array): Span[] {
  const out: Span[] = [];
  let p = 0;
  while (p < b.length) {
    const start = p;
    const [t, q] = readVarint(b, p);
    const no = Number(t >> 3n), wt = Number(t & 7n);
    p = q;
    let lenStart = -1, valueStart = p;
    if (wt === 0) p = readVarint(b, p)[1];
    else if (wt === 1) p += 8;
    else if (wt === 5) p += 4;
    else if (wt === 2) {
      lenStart = p;
      const [n, r] = readVarint(b, p);
      valueStart = r;
      p = r + Number(n);
    } else throw new Error(`wire type ${wt} in a vector`);
    out.push({ start, valueStart, end: p, no, wt, lenStart });
  }
  return out;
}

/** A base frame: a valid event value and its type_url. */
interface Base {
  typeUrl: string;
  value: Uint8Array;
  fields: Span[];
}

let bases: Base[] | undefined;
function baseFrames(): Base[] {
  return bases ??= fixtureVectors().filter((v) => v.expected.hook !== null).map((v) => {
    const any = spans(v.body);
    const url = any.find((s) => s.no === 1)!, val = any.find((s) => s.no === 2);
    const value = val ? v.body.slice(val.valueStart, val.end) : new Uint8Array(0);
    return {
      typeUrl: new TextDecoder().decode(v.body.subarray(url.valueStart, url.end)),
      value,
      fields: spans(value),
    };
  });
}

const pick = <T>(rng: Rng, xs: readonly T[]): T => xs[Math.floor(rng() * xs.length)];
const int = (rng: Rng, n: number) => Math.floor(rng() * n);

function randomBytes(rng: Rng, n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = int(rng, 256);
  return out;
}

/** An unknown field of wire type `wt` (number 12..2²⁹−1: no event message has those). */
function unknownField(rng: Rng, wt: number): Uint8Array {
  const no = rng() < 0.5 ? 12 + int(rng, 100) : 12 + int(rng, (1 << 29) - 13);
  switch (wt) {
    case 0:
      return Uint8Array.from([...tag(no, 0), ...varint(BigInt(int(rng, 2 ** 31)) << 20n)]);
    case 1:
      return Uint8Array.from([...tag(no, 1), ...randomBytes(rng, 8)]);
    case 2:
      return lenField(no, randomBytes(rng, int(rng, 20)));
    case 5:
      return Uint8Array.from([...tag(no, 5), ...randomBytes(rng, 4)]);
    default:
      return groups(rng, 1 + int(rng, 3), rng() < 0.5);
  }
}

/** Nested unknown groups `depth` deep; `mismatch`: one end tag names another number. */
function groups(rng: Rng, depth: number, mismatch: boolean): Uint8Array {
  const nos = Array.from({ length: depth }, () => 12 + int(rng, 2000));
  const bad = mismatch ? int(rng, depth) : -1;
  const open = nos.flatMap((no) => tag(no, 3));
  const inner = rng() < 0.5 ? [...tag(13, 0), 1] : [];
  const close = nos.slice().reverse().flatMap((no, i) =>
    tag(depth - 1 - i === bad ? no + 1 : no, 4)
  );
  return Uint8Array.from([...open, ...inner, ...close]);
}

type Mutation = (rng: Rng, b: Base) => Uint8Array; // returns a new value

function splice(value: Uint8Array, at: number, remove: number, insert: Uint8Array | number[]) {
  const ins = insert instanceof Uint8Array ? insert : Uint8Array.from(insert);
  return concat([value.subarray(0, at), ins, value.subarray(at + remove)]);
}

/** Value mutations (the Any around stays correct). */
const VALUE_MUTATIONS: Record<string, Mutation> = {
  bit_flip(rng, b) {
    const v = b.value.slice();
    for (let k = 1 + int(rng, 4); k > 0 && v.length; k--) v[int(rng, v.length)] ^= 1 << int(rng, 8);
    return v;
  },
  byte_insert: (rng, b) => splice(b.value, int(rng, b.value.length + 1), 0, [int(rng, 256)]),
  byte_delete: (rng, b) => splice(b.value, int(rng, b.value.length + 1), 1, []),
  byte_overwrite(rng, b) {
    const v = b.value.slice();
    if (v.length) v[int(rng, v.length)] = pick(rng, [0, 0x7f, 0x80, 0xff, int(rng, 256)]);
    return v;
  },
  truncate: (rng, b) => b.value.slice(0, int(rng, b.value.length + 1)),
  length_edit(rng, b) {
    const lens = b.fields.filter((f) => f.wt === 2);
    if (!lens.length) return b.value;
    const f = pick(rng, lens), n = f.end - f.valueStart;
    const to = pick(rng, [
      0,
      n - 1,
      n + 1,
      n + int(rng, 100),
      2 ** 31 - 1,
      2 ** 31,
      2 ** 32 + n, // wraps to n in 32 bits: must still be refused
      2n ** 63n + BigInt(n),
    ]);
    return splice(b.value, f.lenStart, f.valueStart - f.lenStart, varint(to < 0 ? 0 : to));
  },
  duplicate_field(rng, b) {
    if (!b.fields.length) return b.value;
    const f = pick(rng, b.fields);
    return splice(b.value, pick(rng, b.fields).start, 0, b.value.slice(f.start, f.end));
  },
  reorder_fields(rng, b) {
    const parts = b.fields.map((f) => b.value.slice(f.start, f.end));
    for (let i = parts.length - 1; i > 0; i--) {
      const j = int(rng, i + 1);
      [parts[i], parts[j]] = [parts[j], parts[i]];
    }
    return concat(parts);
  },
  unknown_field(rng, b) {
    const at = b.fields.length ? pick(rng, [...b.fields.map((f) => f.start), b.value.length]) : 0;
    return splice(b.value, at, 0, unknownField(rng, pick(rng, [0, 1, 2, 3, 5])));
  },
  deep_groups(rng, b) {
    const depth = pick(rng, [1, 2, 50, 99, 100, 101, 150, 1 + int(rng, 150)]);
    return concat([b.value, groups(rng, depth, rng() < 0.3)]);
  },
  stray_end_group: (rng, b) => concat([b.value, Uint8Array.from(tag(12 + int(rng, 50), 4))]),
  wire_type_6_7: (rng, b) => concat([b.value, Uint8Array.from([...tag(3, 6 + int(rng, 2)), 1])]),
  long_varint(rng, b) {
    const vs = b.fields.filter((f) => f.wt === 0);
    const width = pick(rng, [6, 9, 10, 10, 11, 12]);
    const tenth2 = rng() < 0.3; // a 10-byte varint whose 10th byte is 0x02 (beyond 64 bits)
    if (!vs.length) {
      const v = tenth2 ? [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02] : [];
      return concat([b.value, Uint8Array.from([...tag(3 + int(rng, 6), 0), ...v, 1])]);
    }
    const f = pick(rng, vs);
    const [value] = readVarint(b.value, f.valueStart);
    const bytes = tenth2
      ? [...paddedVarint(value, 9).map((x) => x | 0x80), 0x02]
      : paddedVarint(value, width);
    return splice(b.value, f.valueStart, f.end - f.valueStart, bytes);
  },
  long_tag(rng, b) {
    if (!b.fields.length) return b.value;
    const f = pick(rng, b.fields);
    const width = pick(rng, [2, 5, 6, 10, 11]);
    const tagEnd = f.wt === 2 ? f.lenStart : f.valueStart;
    return splice(b.value, f.start, tagEnd - f.start, paddedVarint(f.no * 8 + f.wt, width));
  },
  field_number_edge(rng, b) {
    const no = pick(rng, [0, 0, (1 << 29) - 1, 1 << 29, 2 ** 31, 2 ** 32]);
    const wt = pick(rng, [0, 2, 5]);
    const data = wt === 0 ? [1] : wt === 2 ? [1, 0x41] : [0, 0, 0, 0];
    return concat([b.value, Uint8Array.from([...tag(no, wt), ...data])]);
  },
  wrong_wire_type(rng, b) {
    if (!b.fields.length) return b.value;
    const f = pick(rng, b.fields);
    const wt = pick(rng, [0, 1, 2, 5].filter((w) => w !== f.wt));
    const data = wt === 0
      ? [5]
      : wt === 1
      ? [1, 2, 3, 4, 5, 6, 7, 8]
      : wt === 2
      ? [1, 0x61]
      : [1, 2, 3, 4];
    return splice(b.value, f.start, 0, [...tag(f.no, wt), ...data]);
  },
  huge_length(rng, b) {
    const no = pick(rng, [2, 3, 4, 5, 13]);
    return concat([
      b.value,
      Uint8Array.from([...tag(no, 2), ...varint(pick(rng, [2 ** 28, 2 ** 31, 2 ** 35]))]),
    ]);
  },
  nested_mutation(rng, b) {
    // A change inside a sub-message (timestamp, matched_acl, topics, user_properties).
    const subs = b.fields.filter((f) => f.wt === 2 && f.end - f.valueStart > 1);
    if (!subs.length) return b.value;
    const f = pick(rng, subs);
    const inner = b.value.slice(f.valueStart, f.end);
    const at = int(rng, inner.length);
    const ins = pick(rng, [[0x00], [0x80], [0x0b], [0x0c], [0x7f], [...tag(1, 7)], [0x0a, 0x7f]]);
    const changed = splice(inner, at, rng() < 0.5 ? 1 : 0, ins);
    return splice(b.value, f.lenStart, f.end - f.lenStart, [...varint(changed.length), ...changed]);
  },
};
const VALUE_KINDS = Object.keys(VALUE_MUTATIONS);

/** Mutations of the whole `Any` bytes. */
function mutateEnvelope(rng: Rng, b: Base): Uint8Array {
  const frame = wrapAny(b.typeUrl, b.value);
  switch (int(rng, 5)) {
    case 0: // truncate the Any
      return frame.slice(0, int(rng, frame.length + 1));
    case 1: { // flip bits in the envelope header
      const f = frame.slice();
      const n = Math.min(f.length, 2 + b.typeUrl.length + 4);
      f[int(rng, n)] ^= 1 << int(rng, 8);
      return f;
    }
    case 2: // value before type_url, or an unknown field in the Any
      return rng() < 0.5
        ? concat([lenField(2, b.value), lenField(1, utf8.encode(b.typeUrl))])
        : concat([frame, unknownField(rng, pick(rng, [0, 1, 2, 3, 5]))]);
    case 3: // a type_url one letter off, or of another package
      return wrapAny(
        rng() < 0.5 ? b.typeUrl.slice(0, -1) : b.typeUrl.replace("v1", "v2"),
        b.value,
      );
    default: // random bytes
      return randomBytes(rng, int(rng, 64));
  }
}

/**
 * The `i`-th fuzz case of `seed` (deterministic: the same seed and index give the same frame,
 * so a failure is reproduced from its seed and index alone).
 */
export function fuzzCase(seed: number, i: number): FuzzCase {
  const rng = mulberry32((seed * 0x9e3779b1 + i * 0x85ebca77) >>> 0);
  const all = baseFrames();
  const b = all[int(rng, all.length)];
  const r = rng();
  if (r < 0.05) return { frame: mutateEnvelope(rng, b), kind: "envelope" };
  if (r < 0.25) {
    // Random value under a valid type_url; sometimes a random run of plausible tags.
    const hook = pick(rng, HOOK_NAMES);
    const value = rng() < 0.5 ? randomBytes(rng, int(rng, 80)) : Uint8Array.from(
      Array.from({ length: 1 + int(rng, 12) }, () => [
        ...tag(1 + int(rng, 12), pick(rng, [0, 0, 2, 2, 1, 5, 3, 4])),
        int(rng, 4),
      ]).flat(),
    );
    return { frame: wrapAny(typeUrlFor(hook), value), kind: "random_value" };
  }
  const kind = pick(rng, VALUE_KINDS);
  let value = VALUE_MUTATIONS[kind](rng, b);
  // Sometimes stack a second mutation on the first.
  if (rng() < 0.2) {
    const second = pick(rng, VALUE_KINDS);
    value = VALUE_MUTATIONS[second](rng, { ...b, value, fields: safeSpans(value) ?? [] });
  }
  return { frame: wrapAny(b.typeUrl, value), kind };
}

function safeSpans(value: Uint8Array): Span[] | undefined {
  try {
    const s = spans(value);
    return s.every((f) => f.end <= value.length) ? s : undefined;
  } catch {
    return undefined;
  }
}

/** Hex of `bytes`, for one-line repros. */
export function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (x) => x.toString(16).padStart(2, "0")).join("");
}

/** Bytes of a hex string. */
export function unhex(s: string): Uint8Array {
  const out = new Uint8Array(s.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(s.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** The seed of this run: `VMQ_SIDECAR_FUZZ_SEED` when set, else `fallback`. */
export function fuzzSeed(fallback: number): number {
  const s = envGet("VMQ_SIDECAR_FUZZ_SEED");
  return s ? Number(s) >>> 0 : fallback;
}

/** The case count of this run: `VMQ_SIDECAR_FUZZ_N` when set, else `fallback`. */
export function fuzzCount(fallback: number): number {
  const s = envGet("VMQ_SIDECAR_FUZZ_N");
  return s ? Math.max(1, Number(s) | 0) : fallback;
}

function envGet(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined;
  }
}

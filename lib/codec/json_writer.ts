/**
 * The JSON form of an event, written straight from the wire bytes (the hot path): one object,
 * `"hook"` first, then every field under its proto name with defaults filled in. No
 * intermediate objects or strings for ASCII text; see {@linkcode writeFrameJson}.
 *
 * @module
 */
import { ByteBuffer } from "./byte_buffer.ts";
import { encodeEvent, hookIndexOf } from "./event_encoder.ts";
import type { SidecarEvent } from "../schema/events.ts";
import { type EnvelopeRanges, MALFORMED_ENVELOPE, parseEnvelopeAt } from "../wire/envelope.ts";
import { type Hook, HOOKS } from "../schema/hooks.ts";
import type { DecodeErrorKind } from "./event_decoder.ts";
import { type FieldTable, Kind } from "../schema/tables.ts";
import { WireError } from "../wire/cursor.ts";
import {
  parseEvent,
  parseSlots,
  RangeList,
  readMapEntries,
  readTimestamp,
  type Slots,
  type TimestampParts,
} from "./slots.ts";
import { writeBase64 } from "./_base64.ts";
import { writeTimestamp } from "./_timestamp.ts";

/**
 * How `bytes` fields (`payload`) appear in JSON:
 * - `base64` (default): standard padded base64.
 * - `utf8`: the text itself when the payload is valid UTF-8, else base64; every event that has
 *   a payload field then ends with `"payload_encoding":"utf8"` or `"payload_encoding":"base64"`
 *   so a consumer always knows which — invalid UTF-8 is never altered.
 * - `omit`: the `payload` key is left out.
 */
export type PayloadMode = "base64" | "utf8" | "omit";

/** The payload modes, for validation. */
export const PAYLOAD_MODES: readonly PayloadMode[] = ["base64", "utf8", "omit"];

/** {@linkcode writeFrameJson} result: the `Any` is fine but the event inside is not decodable. */
export const MALFORMED_VALUE: -3 = -3;

const enc = new TextEncoder();
const utf8Lenient = new TextDecoder("utf-8", { ignoreBOM: true });
const utf8Strict = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

const HOOK_PREFIX = HOOKS.map((h) => enc.encode(`{"hook":"${h}"`));
const PAYLOAD_ENCODING_UTF8 = enc.encode(`,"payload_encoding":"utf8"`);
const PAYLOAD_ENCODING_BASE64 = enc.encode(`,"payload_encoding":"base64"`);
const EMPTY_STRING = enc.encode(`""`);
const TRUE = enc.encode("true");
const FALSE = enc.encode("false");

const ranges: EnvelopeRanges = { typeUrlStart: 0, typeUrlEnd: 0, valueStart: 0, valueEnd: 0 };
let src: Uint8Array = new Uint8Array(0);
let payloadMode: PayloadMode = "base64";
let payloadWasBase64 = false;

function writeFields(out: ByteBuffer, s: Slots, nested: boolean): void {
  const fields = s.table.fields, keys = nested ? s.nestedKeys : s.keys;
  for (let i = 0; i < fields.length; i++) {
    const f = fields[i];
    if (f.kind === Kind.Bytes && payloadMode === "omit") continue;
    out.write(keys[i]);
    writeValue(out, s, i, f);
  }
}

function writeValue(out: ByteBuffer, s: Slots, i: number, f: FieldTable): void {
  switch (f.kind) {
    case Kind.String:
      if (s.b[i] < 0) out.write(EMPTY_STRING);
      else writeString(out, s.a[i], s.b[i], false);
      return;
    case Kind.Bytes: {
      const start = s.b[i] < 0 ? 0 : s.a[i], end = s.b[i] < 0 ? 0 : s.b[i];
      if (payloadMode === "utf8" && writeString(out, start, end, true)) return;
      payloadWasBase64 = true;
      writeBase64(out, src, start, end);
      return;
    }
    case Kind.Int32:
      writeInt(out, s.b[i] < 0 ? 0 : s.a[i]);
      return;
    case Kind.Bool:
      out.write(s.b[i] >= 0 && s.a[i] !== 0 ? TRUE : FALSE);
      return;
    case Kind.Enum: {
      const v = s.b[i] < 0 ? 0 : s.a[i];
      const name = f.enumJson!.get(v);
      if (name) out.write(name);
      else writeInt(out, v); // unknown enum number: kept (proto3 open enums)
      return;
    }
    case Kind.Timestamp:
      writeTimestampField(out, s.lists[i]);
      return;
    case Kind.Message: {
      const sub = s.subs[i]!;
      parseSlots(src, sub, s.lists[i]);
      out.byte(0x7b);
      writeFields(out, sub, true);
      out.byte(0x7d);
      return;
    }
    case Kind.RepeatedString: {
      const list = s.lists[i].v, n = s.lists[i].n;
      out.byte(0x5b);
      for (let r = 0; r < n; r += 2) {
        if (r > 0) out.byte(0x2c);
        writeString(out, list[r], list[r + 1], false);
      }
      out.byte(0x5d);
      return;
    }
    case Kind.RepeatedMessage: {
      const list = s.lists[i], sub = s.subs[i]!;
      out.byte(0x5b);
      for (let r = 0; r < list.n; r += 2) {
        if (r > 0) out.byte(0x2c);
        parseSlots(src, sub, list, r, r + 2);
        out.byte(0x7b);
        writeFields(out, sub, true);
        out.byte(0x7d);
      }
      out.byte(0x5d);
      return;
    }
    case Kind.MapStringString:
      writeMap(out, s.lists[i]);
      return;
  }
}

const ts: TimestampParts = { seconds: 0, nanos: 0 };
function writeTimestampField(out: ByteBuffer, ranges: RangeList): void {
  readTimestamp(src, ranges, ts);
  writeTimestamp(out, ts.seconds, ts.nanos);
}

// Map entries: key/value ranges, reused.
const mkl = new RangeList(), mvl = new RangeList();
function writeMap(out: ByteBuffer, ranges: RangeList): void {
  readMapEntries(src, ranges, mkl, mvl);
  // Duplicate keys: the first occurrence's position, the last occurrence's value.
  out.byte(0x7b);
  let first = true;
  const mk = mkl.v, mv = mvl.v, mn = mkl.n;
  next: for (let i = 0; i < mn; i += 2) {
    for (let j = 0; j < i; j += 2) if (sameBytes(mk[i], mk[i + 1], mk[j], mk[j + 1])) continue next;
    let v = i;
    for (let j = i + 2; j < mn; j += 2) {
      if (sameBytes(mk[i], mk[i + 1], mk[j], mk[j + 1])) v = j;
    }
    if (!first) out.byte(0x2c);
    first = false;
    writeString(out, mk[i], mk[i + 1], false);
    out.byte(0x3a);
    writeString(out, mv[v], mv[v + 1], false);
  }
  out.byte(0x7d);
}

function sameBytes(as: number, ae: number, bs: number, be: number): boolean {
  if (ae - as !== be - bs) return false;
  for (let k = 0; k < ae - as; k++) if (src[as + k] !== src[bs + k]) return false;
  return true;
}

function writeInt(out: ByteBuffer, v: number): void {
  if (v >= 0 && v < 10) out.byte(0x30 + v);
  else out.writeAscii(String(v));
}

const ESCAPES: Uint8Array = (() => {
  const e = new Uint8Array(128);
  for (let c = 0; c < 0x20; c++) e[c] = 0x75; // \u00XX
  e[0x08] = 0x62, e[0x09] = 0x74, e[0x0a] = 0x6e, e[0x0c] = 0x66, e[0x0d] = 0x72;
  e[0x22] = 0x22, e[0x5c] = 0x5c;
  return e;
})();
const HEX = enc.encode("0123456789abcdef");
/** 1 for bytes a JSON string takes as they are: ASCII other than controls, `"` and `\`. */
const PLAIN: Uint8Array = (() => {
  const t = new Uint8Array(256);
  for (let c = 0x20; c < 0x80; c++) t[c] = ESCAPES[c] === 0 ? 1 : 0;
  return t;
})();

/**
 * Writes `src[start, end)` as a JSON string. ASCII is copied/escaped in place; other text goes
 * through TextDecoder (invalid UTF-8 becomes U+FFFD unless `strict`, which returns false and
 * writes nothing instead).
 */
function writeString(out: ByteBuffer, start: number, end: number, strict: boolean): boolean {
  // Small strings reserve the worst case (6 bytes per escaped byte); large ones take the text
  // path as soon as one byte needs escaping, so a 64 MiB payload never reserves 384 MiB.
  const small = end - start <= 8192;
  out.ensure(small ? (end - start) * 6 + 2 : end - start + 2);
  const buf = out.buf, plain = PLAIN, s = src;
  const begin = out.pos;
  let p = begin;
  buf[p++] = 0x22;
  let i = start;
  while (i < end && plain[s[i]] === 1) buf[p++] = s[i++]; // the common case: plain ASCII
  for (; i < end; i++) {
    const c = s[i];
    if (c >= 0x80) return writeTextString(out, begin, start, end, strict);
    const e = ESCAPES[c];
    if (e === 0) buf[p++] = c;
    else if (!small) return writeTextString(out, begin, start, end, strict);
    else if (e !== 0x75) (buf[p++] = 0x5c), (buf[p++] = e);
    else {
      buf[p++] = 0x5c, buf[p++] = 0x75, buf[p++] = 0x30, buf[p++] = 0x30;
      buf[p++] = HEX[c >> 4], buf[p++] = HEX[c & 15];
    }
  }
  buf[p++] = 0x22;
  out.pos = p;
  return true;
}

function writeTextString(
  out: ByteBuffer,
  begin: number,
  start: number,
  end: number,
  strict: boolean,
): boolean {
  let text: string;
  try {
    text = (strict ? utf8Strict : utf8Lenient).decode(src.subarray(start, end));
  } catch {
    out.pos = begin;
    return false;
  }
  const json = JSON.stringify(text);
  out.pos = begin;
  out.ensure(json.length * 3);
  out.pos += enc.encodeInto(json, out.buf.subarray(begin)).written;
  return true;
}

/**
 * What {@linkcode writeFrameJson} did: the event's hook when its JSON was written, else why
 * nothing was written. The results are shared frozen objects (one per hook and per reason), so
 * writing allocates nothing for them; compare fields, not identity.
 */
export type FrameJsonResult =
  | { readonly ok: true; readonly hook: Hook }
  | { readonly ok: false; readonly error: DecodeErrorKind };

const WRITTEN: readonly FrameJsonResult[] = HOOKS.map((hook) =>
  Object.freeze({ ok: true as const, hook })
);
const notWritten = (error: DecodeErrorKind): FrameJsonResult =>
  Object.freeze({ ok: false as const, error });
const NOT_WRITTEN = {
  empty: notWritten("empty"),
  unknownType: notWritten("unknown_type"),
  malformedEnvelope: notWritten("malformed_envelope"),
  malformedValue: notWritten("malformed_value"),
};

/**
 * Appends the JSON form of the event in `frame` (the `Any` bytes of one frame, without the
 * length prefix) to `out`, without a trailing newline. Says which hook it was, or why nothing
 * was written (the same failure kinds {@linkcode decodeEvent} reports for the same frame).
 *
 * @example
 * ```ts
 * import { ByteBuffer, writeFrameJson } from "../mod.ts";
 * const out = new ByteBuffer();
 * const frameBody = new Uint8Array(0); // the Any bytes of one frame
 * const r = writeFrameJson(out, frameBody, "base64");
 * if (r.ok) console.log(r.hook, new TextDecoder().decode(out.bytes()));
 * else console.log(r.error); // "empty"
 * ```
 */
export function writeFrameJson(
  out: ByteBuffer,
  frame: Uint8Array,
  payload: PayloadMode,
): FrameJsonResult {
  const code = writeFrameJsonAt(out, frame, 0, frame.length, payload);
  if (code >= 0) return WRITTEN[code];
  if (code === MALFORMED_VALUE) return NOT_WRITTEN.malformedValue;
  if (code === MALFORMED_ENVELOPE) return NOT_WRITTEN.malformedEnvelope;
  return frame.length === 0 ? NOT_WRITTEN.empty : NOT_WRITTEN.unknownType;
}

/**
 * {@linkcode writeFrameJson} with the numeric result of the hot path: the hook index (into
 * `HOOKS`), else `UNKNOWN_TYPE`, `MALFORMED_ENVELOPE` or {@linkcode MALFORMED_VALUE}, in which
 * case nothing was written. Internal (lib/internal.ts).
 *
 * @example
 * ```ts
 * import { ByteBuffer, writeFrameJsonCode } from "../internal.ts";
 * console.log(writeFrameJsonCode(new ByteBuffer(), new Uint8Array(0), "base64")); // -1
 * ```
 */
export function writeFrameJsonCode(
  out: ByteBuffer,
  frame: Uint8Array,
  payload: PayloadMode,
): number {
  return writeFrameJsonAt(out, frame, 0, frame.length, payload);
}

/**
 * {@linkcode writeFrameJson} for the frame `buf[start, end)` (no view needed).
 *
 * @example
 * ```ts
 * import { ByteBuffer, writeFrameJsonAt } from "../internal.ts";
 * const slab = new Uint8Array([0, 0, 0, 0]); // a length prefix, then an empty frame
 * console.log(writeFrameJsonAt(new ByteBuffer(), slab, 4, 4, "base64")); // -1: not an event
 * ```
 */
export function writeFrameJsonAt(
  out: ByteBuffer,
  buf: Uint8Array,
  start: number,
  end: number,
  payload: PayloadMode,
): number {
  const hook = parseEnvelopeAt(buf, start, end, ranges);
  if (hook < 0) return hook;
  return writeEventJson(out, buf, hook, ranges.valueStart, ranges.valueEnd, payload);
}

/**
 * Appends the JSON form of an event whose envelope is already parsed: hook index `hook` and the
 * encoded message in `buf[valueStart, valueEnd)`. Returns `hook`, or
 * {@linkcode MALFORMED_VALUE} (nothing written).
 *
 * @example
 * ```ts
 * import { ByteBuffer, HOOKS, writeEventJson } from "../internal.ts";
 * const out = new ByteBuffer();
 * writeEventJson(out, new Uint8Array(0), HOOKS.indexOf("on_client_wakeup"), 0, 0, "base64");
 * console.log(new TextDecoder().decode(out.bytes())); // every field at its default
 * ```
 */
export function writeEventJson(
  out: ByteBuffer,
  buf: Uint8Array,
  hook: number,
  valueStart: number,
  valueEnd: number,
  payload: PayloadMode,
): number {
  const begin = out.pos;
  src = buf;
  payloadMode = payload;
  payloadWasBase64 = false;
  try {
    const s = parseEvent(buf, hook, valueStart, valueEnd);
    out.write(HOOK_PREFIX[hook]);
    writeFields(out, s, false);
    if (payload === "utf8" && s.table.bytesField >= 0) {
      out.write(payloadWasBase64 ? PAYLOAD_ENCODING_BASE64 : PAYLOAD_ENCODING_UTF8);
    }
    out.byte(0x7d);
    return hook;
  } catch (e) {
    out.pos = begin;
    if (e instanceof WireError) return MALFORMED_VALUE;
    throw e;
  } finally {
    src = EMPTY;
  }
}
const EMPTY = new Uint8Array(0);

/** Options of {@linkcode eventToJson}. */
export interface EventJsonOptions {
  /** How `payload` appears; default `base64`. */
  payload?: PayloadMode;
}

const eventOut = new ByteBuffer(4096);
const text = new TextDecoder();

/**
 * Renders a typed `event` in the sidecar's JSON form (one line, no trailing newline): the
 * event is encoded as the plugin would ({@linkcode encodeEvent}) and written by the same
 * writer as the wire path, so both give the same bytes.
 *
 * @example
 * ```ts
 * import { eventToJson } from "../mod.ts";
 * const json = eventToJson({
 *   hook: "on_session_expired", timestamp: { seconds: 0n, nanos: 1 },
 *   client_id: "c", mountpoint: "", session_id: "s",
 * });
 * console.log(json);
 * ```
 */
export function eventToJson(event: SidecarEvent, options: EventJsonOptions = {}): string {
  const value = encodeEvent(event);
  const hook = hookIndexOf(event);
  eventOut.reset();
  if (writeEventJson(eventOut, value, hook, 0, value.length, options.payload ?? "base64") < 0) {
    throw new Error(`eventToJson: the encoding of a ${event.hook} event did not parse back`);
  }
  return text.decode(eventOut.bytes());
}

/**
 * Typed decoding of frames: `Any` envelope → a {@linkcode SidecarEvent} with proto3 defaults
 * filled in. Built on the same slot parser as the JSON writer (codec/slots.ts), so the two
 * accept exactly the same frames and read the same values. Never throws on bad input.
 *
 * @module
 */
import { type EnvelopeRanges, MALFORMED_ENVELOPE, parseEnvelope } from "../wire/envelope.ts";
import { HOOKS } from "../schema/hooks.ts";
import type { SidecarEvent } from "../schema/events.ts";
import { Kind } from "../schema/tables.ts";
import { WireError } from "../wire/cursor.ts";
import {
  decodeText,
  parseEvent,
  parseSlots,
  RangeList,
  readMapEntries,
  readTimestampExact,
  type Slots,
} from "./slots.ts";

/** Why a frame did not decode to an event. */
export type DecodeErrorKind = "empty" | "malformed_envelope" | "unknown_type" | "malformed_value";

/** A frame that is not a decodable event; carries the raw bytes for dead-lettering. */
export class DecodeError extends Error {
  /** What went wrong. */
  readonly kind: DecodeErrorKind;
  /** The `type_url` of the `Any`, `""` when absent or unreadable. */
  readonly typeUrl: string;
  /** The frame's `Any` bytes as received. */
  readonly raw: Uint8Array;
  /** Creates the error. */
  constructor(kind: DecodeErrorKind, typeUrl: string, raw: Uint8Array, detail?: string) {
    super(
      {
        empty: "empty frame (the plugin could not encode an event)",
        malformed_envelope: "frame is not a valid google.protobuf.Any",
        unknown_type: `unknown type_url ${JSON.stringify(typeUrl)}`,
        malformed_value: `undecodable ${typeUrl}${detail ? `: ${detail}` : ""}`,
      }[kind],
    );
    this.name = "DecodeError";
    this.kind = kind;
    this.typeUrl = typeUrl;
    this.raw = raw;
  }
}

/** The outcome of {@linkcode decodeEvent}. */
export type DecodeResult =
  | { ok: true; event: SidecarEvent }
  | { ok: false; error: DecodeError };

const ranges: EnvelopeRanges = { typeUrlStart: 0, typeUrlEnd: 0, valueStart: 0, valueEnd: 0 };
const text = new TextDecoder("utf-8", { ignoreBOM: true });

/**
 * Decodes one frame body (the `Any` bytes, without the length prefix) into a typed event.
 * `bytes` fields (`payload`) are views into `frame`, not copies.
 *
 * @example
 * ```ts
 * import { decodeEvent } from "../mod.ts";
 * const r = decodeEvent(new Uint8Array(0));
 * if (!r.ok) console.log(r.error.kind); // "empty"
 * ```
 */
export function decodeEvent(frame: Uint8Array): DecodeResult {
  if (frame.length === 0) return fail("empty", "", frame);
  const hook = parseEnvelope(frame, ranges);
  if (hook === MALFORMED_ENVELOPE) return fail("malformed_envelope", "", frame);
  const typeUrl = text.decode(frame.subarray(ranges.typeUrlStart, ranges.typeUrlEnd));
  if (hook < 0) return fail("unknown_type", typeUrl, frame);
  try {
    const s = parseEvent(frame, hook, ranges.valueStart, ranges.valueEnd);
    const event = build(frame, s, { hook: HOOKS[hook] }) as SidecarEvent;
    return { ok: true, event };
  } catch (e) {
    if (e instanceof WireError) return fail("malformed_value", typeUrl, frame, e.message);
    throw e;
  }
}

function fail(kind: DecodeErrorKind, typeUrl: string, raw: Uint8Array, detail?: string) {
  // The error describes the data, not a code path: no stack trace (capturing one would cost
  // more than decoding the frame, and a hostile peer sends many bad frames).
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    return { ok: false as const, error: new DecodeError(kind, typeUrl, raw, detail) };
  } finally {
    Error.stackTraceLimit = limit;
  }
}

// deno-lint-ignore no-explicit-any
type Obj = Record<string, any>;
const NO_BYTES = new Uint8Array(0);
const mapKeys = new RangeList(), mapValues = new RangeList();

/** The object of a parsed message; sub-messages are parsed (and checked) on the way. */
function build(buf: Uint8Array, s: Slots, o: Obj = {}): Obj {
  const fields = s.table.fields, a = s.a, b = s.b;
  for (let i = 0; i < fields.length; i++) {
    const f = fields[i];
    switch (f.kind) {
      case Kind.String:
        o[f.name] = b[i] < 0 ? "" : decodeText(buf, a[i], b[i]);
        break;
      case Kind.Bytes:
        o[f.name] = b[i] < 0 ? NO_BYTES : buf.subarray(a[i], b[i]);
        break;
      case Kind.Int32:
        o[f.name] = b[i] < 0 ? 0 : a[i];
        break;
      case Kind.Bool:
        o[f.name] = b[i] >= 0 && a[i] !== 0;
        break;
      case Kind.Enum: {
        const v = b[i] < 0 ? 0 : a[i];
        o[f.name] = f.enumNames!.get(v) ?? v; // unknown numbers kept (proto3 open enums)
        break;
      }
      case Kind.Timestamp:
        o[f.name] = readTimestampExact(buf, s.lists[i]);
        break;
      case Kind.Message: {
        const sub = s.subs[i]!;
        parseSlots(buf, sub, s.lists[i]);
        o[f.name] = build(buf, sub);
        break;
      }
      case Kind.RepeatedString: {
        const list = s.lists[i], v = list.v, out: string[] = [];
        for (let r = 0; r < list.n; r += 2) out.push(decodeText(buf, v[r], v[r + 1]));
        o[f.name] = out;
        break;
      }
      case Kind.RepeatedMessage: {
        const list = s.lists[i], sub = s.subs[i]!, out: Obj[] = [];
        for (let r = 0; r < list.n; r += 2) {
          parseSlots(buf, sub, list, r, r + 2);
          out.push(build(buf, sub));
        }
        o[f.name] = out;
        break;
      }
      case Kind.MapStringString: {
        readMapEntries(buf, s.lists[i], mapKeys, mapValues);
        const m: Record<string, string> = Object.create(null), k = mapKeys.v, v = mapValues.v;
        for (let r = 0; r < mapKeys.n; r += 2) {
          m[decodeText(buf, k[r], k[r + 1])] = decodeText(buf, v[r], v[r + 1]);
        }
        o[f.name] = m; // duplicate keys: the first one's position, the last one's value
        break;
      }
    }
  }
  return o;
}

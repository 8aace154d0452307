/**
 * Typed decoding of frames with protobufjs and the baked descriptors: `Any` envelope → a
 * {@linkcode SidecarEvent} with proto3 defaults filled in. Never throws on bad input.
 *
 * @module
 */
import { protobuf } from "../_deps/protobufjs.ts";
import { Long } from "../_deps/long.ts";
import { SCHEMA_JSON } from "../schema/_generated.ts";
import { type EnvelopeRanges, MALFORMED_ENVELOPE, parseEnvelope } from "../wire/envelope.ts";
import { HOOKS, MESSAGE_NAMES } from "../schema/hooks.ts";
import type { SidecarEvent } from "../schema/events.ts";
import { HOOK_TABLES, Kind, type MessageTable } from "../schema/tables.ts";

// int64 (Timestamp.seconds) must not lose precision: give protobufjs a Long implementation.
protobuf.util.Long = Long;
protobuf.configure();

// Strings decode like the JSON path (WHATWG: invalid UTF-8 becomes U+FFFD) instead of
// protobufjs 8's proto3 default of rejecting the whole message (utf8_validation = VERIFY).
const lenientUtf8 = new TextDecoder("utf-8", { ignoreBOM: true });
function readString(this: protobuf.Reader): string {
  return lenientUtf8.decode(this.bytes());
}
for (const reader of [protobuf.Reader.prototype, protobuf.BufferReader.prototype]) {
  const r = reader as unknown as Record<string, unknown>;
  r.string = readString;
  r.stringVerify = readString;
}

const root = protobuf.Root.fromJSON(SCHEMA_JSON as unknown as protobuf.INamespace);
const TYPES = HOOKS.map((h) => root.lookupType(`eventssidecar.v1.${MESSAGE_NAMES[h]}`));

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
    const msg = TYPES[hook].decode(frame.subarray(ranges.valueStart, ranges.valueEnd));
    const event = convert(HOOK_TABLES[hook], msg as unknown as Record<string, unknown>);
    event.hook = HOOKS[hook];
    return { ok: true, event: event as unknown as SidecarEvent };
  } catch (e) {
    return fail("malformed_value", typeUrl, frame, e instanceof Error ? e.message : String(e));
  }
}

function fail(kind: DecodeErrorKind, typeUrl: string, raw: Uint8Array, detail?: string) {
  return { ok: false as const, error: new DecodeError(kind, typeUrl, raw, detail) };
}

// deno-lint-ignore no-explicit-any
type Obj = Record<string, any>;
const NO_BYTES = new Uint8Array(0);

function convert(table: MessageTable, m: Obj | undefined | null): Obj {
  const o: Obj = { hook: undefined };
  for (const f of table.fields) {
    const v = m?.[f.name];
    switch (f.kind) {
      case Kind.String:
        o[f.name] = v ?? "";
        break;
      case Kind.Bytes:
        o[f.name] = v ? new Uint8Array(v.buffer, v.byteOffset, v.length) : NO_BYTES;
        break;
      case Kind.Int32:
        o[f.name] = v ?? 0;
        break;
      case Kind.Bool:
        o[f.name] = v ?? false;
        break;
      case Kind.Enum:
        o[f.name] = f.enumNames!.get(v ?? 0) ?? v;
        break;
      case Kind.Timestamp:
        o[f.name] = { seconds: toBigInt(v?.seconds), nanos: v?.nanos ?? 0 };
        break;
      case Kind.Message:
        o[f.name] = withoutHook(convert(f.sub!, v));
        break;
      case Kind.RepeatedString:
        o[f.name] = [...(v ?? [])];
        break;
      case Kind.RepeatedMessage:
        o[f.name] = (v ?? []).map((x: Obj) => withoutHook(convert(f.sub!, x)));
        break;
      case Kind.MapStringString:
        o[f.name] = Object.assign(Object.create(null), v ?? {});
        break;
    }
  }
  return o;
}

function withoutHook(o: Obj): Obj {
  delete o.hook;
  return o;
}

function toBigInt(v: unknown): bigint {
  if (v === undefined || v === null) return 0n;
  if (typeof v === "number") return BigInt(v);
  const l = v as Long;
  return BigInt.asIntN(64, (BigInt(l.high >>> 0) << 32n) | BigInt(l.low >>> 0));
}

/**
 * The one protobuf writer: a typed {@linkcode SidecarEvent} → the event message bytes exactly as
 * the plugin encodes them (fields in schema order, proto3 defaults left out, `timestamp` and
 * every `matched_acl` always present). Table-driven from the same schema tables as the reader.
 *
 * @module
 */
import type { SidecarEvent } from "../schema/events.ts";
import { HOOKS, typeUrlOf } from "../schema/hooks.ts";
import { HOOK_TABLES, Kind, type MessageTable } from "../schema/tables.ts";
import { ByteBuffer } from "./byte_buffer.ts";
import { FRAME_HEADER, writeLength } from "../wire/length_prefix.ts";

const utf8 = new TextEncoder();
const enumNumbers = new Map<Map<number, string>, Map<string, number>>();

// deno-lint-ignore no-explicit-any
type Obj = Record<string, any>;

/** Appends `v` (a safe integer or bigint, two's complement 64-bit when negative) as a varint. */
function varint(out: ByteBuffer, v: number | bigint): void {
  if (typeof v === "number" && v >= 0 && v <= 0x7fffffff) {
    out.ensure(5);
    while (v >= 0x80) out.byte((v & 0x7f) | 0x80), v >>>= 7;
    out.byte(v);
    return;
  }
  let x = BigInt.asUintN(64, BigInt(v));
  out.ensure(10);
  while (x >= 0x80n) out.byte(Number(x & 0x7fn) | 0x80), x >>= 7n;
  out.byte(Number(x));
}

function lenField(out: ByteBuffer, no: number, bytes: Uint8Array): void {
  varint(out, (no << 3) | 2);
  varint(out, bytes.length);
  out.write(bytes);
}

// Scratch buffers for sub-messages, one per nesting depth (events nest three deep).
const scratch: ByteBuffer[] = [];
let depth = 0;

/** A message field: encoded into a scratch buffer first, for its length. */
function messageField(out: ByteBuffer, no: number, write: (sub: ByteBuffer) => void): void {
  const sub = scratch[depth] ??= new ByteBuffer(256);
  sub.reset();
  depth++;
  try {
    write(sub);
  } finally {
    depth--;
  }
  lenField(out, no, sub.bytes());
}

function fail(path: string, what: string): never {
  throw new TypeError(`encodeEvent: ${path} ${what}`);
}

function writeFields(out: ByteBuffer, table: MessageTable, o: Obj, path: string): void {
  for (const f of table.fields) {
    const v = o?.[f.name], at = `${path}.${f.name}`;
    switch (f.kind) {
      case Kind.String:
        if (v === undefined || v === null || v === "") break;
        if (typeof v !== "string") fail(at, "must be a string");
        lenField(out, f.no, utf8.encode(v));
        break;
      case Kind.Bytes:
        if (v === undefined || v === null) break;
        if (!(v instanceof Uint8Array)) fail(at, "must be a Uint8Array");
        if (v.length > 0) lenField(out, f.no, v);
        break;
      case Kind.Int32:
      case Kind.Enum: {
        let n = v ?? 0;
        if (f.kind === Kind.Enum && typeof n === "string") {
          let byName = enumNumbers.get(f.enumNames!);
          if (!byName) {
            byName = new Map([...f.enumNames!].map(([k, s]) => [s, k]));
            enumNumbers.set(f.enumNames!, byName);
          }
          const k = byName.get(n);
          if (k === undefined) fail(at, `has no value named ${JSON.stringify(n)}`);
          n = k;
        }
        if (!Number.isInteger(n) || n < -(2 ** 31) || n >= 2 ** 31) fail(at, "must be an int32");
        if (n !== 0) varint(out, (f.no << 3) | 0), varint(out, n);
        break;
      }
      case Kind.Bool:
        if (v) varint(out, (f.no << 3) | 0), out.byte(1);
        break;
      case Kind.Timestamp:
        messageField(out, f.no, (sub) => {
          const seconds = v?.seconds ?? 0n, nanos = v?.nanos ?? 0;
          if (typeof seconds !== "bigint" && !Number.isSafeInteger(seconds)) {
            fail(`${at}.seconds`, "must be a bigint");
          }
          if (BigInt(seconds) !== 0n) sub.byte(0x08), varint(sub, BigInt(seconds));
          if (nanos !== 0) sub.byte(0x10), varint(sub, nanos);
        });
        break;
      case Kind.Message:
        messageField(out, f.no, (sub) => writeFields(sub, f.sub!, v ?? {}, at));
        break;
      case Kind.RepeatedString:
        for (const s of v ?? []) {
          if (typeof s !== "string") fail(at, "must hold strings");
          lenField(out, f.no, utf8.encode(s));
        }
        break;
      case Kind.RepeatedMessage:
        for (const x of v ?? []) {
          messageField(out, f.no, (sub) => writeFields(sub, f.sub!, x, `${at}[]`));
        }
        break;
      case Kind.MapStringString:
        // Entries in the object's key order (JavaScript lists integer-like keys first).
        for (const k of Object.keys(v ?? {})) {
          const value = v[k];
          if (typeof value !== "string") fail(`${at}[${JSON.stringify(k)}]`, "must be a string");
          messageField(out, f.no, (sub) => {
            lenField(sub, 1, utf8.encode(k));
            lenField(sub, 2, utf8.encode(value));
          });
        }
        break;
    }
  }
}

/** The hook index of `event`, or a TypeError naming what is wrong. */
export function hookIndexOf(event: SidecarEvent): number {
  const hook = HOOKS.indexOf(event?.hook);
  if (hook < 0) fail("event.hook", `is not a hook: ${JSON.stringify(event?.hook)}`);
  return hook;
}

/**
 * Encodes `event` as its protobuf message — the `value` of the frame's `Any` — exactly as the
 * plugin does. Absent fields count as their default. Throws a TypeError naming the field when
 * a value has the wrong type.
 *
 * @example
 * ```ts
 * import { encodeEvent } from "../testing.ts";
 * const value = encodeEvent({
 *   hook: "on_session_expired", timestamp: { seconds: 1700000000n, nanos: 0 },
 *   client_id: "c1", mountpoint: "", session_id: "s1",
 * });
 * console.log(value.length); // 16
 * ```
 */
export function encodeEvent(event: SidecarEvent): Uint8Array {
  const hook = hookIndexOf(event);
  const out = top;
  out.reset();
  writeFields(out, HOOK_TABLES[hook], event as unknown as Obj, "event");
  return out.bytes().slice();
}
const top = new ByteBuffer(1024);

/**
 * The frame of `event` as the plugin sends it: the 4-byte big-endian length, then a
 * `google.protobuf.Any` with the event's `type_url` and {@linkcode encodeEvent}'s bytes.
 * `frameOf(e).subarray(4)` is the frame body that `decodeEvent` takes.
 *
 * @example
 * ```ts
 * import { decodeEvent } from "../mod.ts";
 * import { frameOf } from "../testing.ts";
 * const frame = frameOf({
 *   hook: "on_client_wakeup", timestamp: { seconds: 1700000000n, nanos: 0 },
 *   client_id: "c1", mountpoint: "", session_id: "s1",
 * });
 * console.log(decodeEvent(frame.subarray(4)).ok); // true
 * ```
 */
export function frameOf(event: SidecarEvent): Uint8Array {
  const hook = hookIndexOf(event);
  const value = encodeEvent(event);
  const out = new ByteBuffer(value.length + 128);
  out.ensure(FRAME_HEADER);
  out.pos = FRAME_HEADER;
  lenField(out, 1, utf8.encode(typeUrlOf(HOOKS[hook])));
  lenField(out, 2, value);
  const frame = out.bytes().slice();
  writeLength(frame, 0, frame.length - FRAME_HEADER);
  return frame;
}

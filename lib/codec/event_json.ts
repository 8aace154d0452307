/**
 * The JSON form of a typed event (the slow path, for handlers that hold a
 * {@linkcode SidecarEvent}). Produces exactly what `writeFrameJson` writes from the wire.
 *
 * @module
 */
import type { SidecarEvent, Timestamp } from "../schema/events.ts";
import { HOOKS } from "../schema/hooks.ts";
import type { PayloadMode } from "./json.ts";
import { HOOK_TABLES, Kind, type MessageTable } from "../schema/tables.ts";
import { ByteBuffer } from "./byte_buffer.ts";
import { writeTimestamp } from "./_timestamp.ts";

/** Options of {@linkcode eventToJson}. */
export interface EventJsonOptions {
  /** How `payload` appears; default `base64`. */
  payload?: PayloadMode;
}

const strict = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const scratch = new ByteBuffer(64);
const latin = new TextDecoder("latin1");

/**
 * Renders `event` in the sidecar's JSON form (one line, no trailing newline).
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
  const mode = options.payload ?? "base64";
  const table = HOOK_TABLES[HOOKS.indexOf(event.hook)];
  const state = { base64: false };
  let s = `{"hook":${JSON.stringify(event.hook)}`;
  s += fields(table, event as unknown as Record<string, unknown>, mode, state, false);
  if (mode === "utf8" && table.bytesField >= 0) {
    s += `,"payload_encoding":"${state.base64 ? "base64" : "utf8"}"`;
  }
  return s + "}";
}

function fields(
  table: MessageTable,
  // deno-lint-ignore no-explicit-any
  o: Record<string, any>,
  mode: PayloadMode,
  state: { base64: boolean },
  nested: boolean,
): string {
  let s = "";
  table.fields.forEach((f, i) => {
    if (f.kind === Kind.Bytes && mode === "omit") return;
    s += `${nested && i === 0 ? "" : ","}${JSON.stringify(f.name)}:`;
    const v = o[f.name];
    switch (f.kind) {
      case Kind.String:
      case Kind.Int32:
      case Kind.Bool:
      case Kind.RepeatedString:
      case Kind.MapStringString:
      case Kind.Enum:
        s += JSON.stringify(v);
        break;
      case Kind.Bytes: {
        if (mode === "utf8") {
          try {
            s += JSON.stringify(strict.decode(v));
            break;
          } catch { /* not UTF-8: base64 below */ }
        }
        state.base64 = true;
        s += JSON.stringify(base64(v));
        break;
      }
      case Kind.Timestamp:
        s += timestamp(v);
        break;
      case Kind.Message:
        s += `{${fields(f.sub!, v, mode, state, true)}}`;
        break;
      case Kind.RepeatedMessage:
        s += `[${v.map((x: unknown) => `{${fields(f.sub!, x as object, mode, state, true)}}`)}]`;
        break;
    }
  });
  return s;
}

function timestamp(t: Timestamp): string {
  scratch.reset();
  writeTimestamp(scratch, Number(t.seconds), t.nanos);
  return latin.decode(scratch.bytes());
}

function base64(bytes: Uint8Array): string {
  let bin = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(bin);
}

// The differential check of the decoder of record: for one frame and payload mode, the typed
// decoder and the JSON writer must agree on accept/reject and the failure kind, write nothing
// on failure, and on success eventToJson(decoded) — encodeEvent + the same writer — must be
// byte-identical to the writer's output, the slots accessors must read what the typed event
// holds, and the event must survive encodeEvent → decodeEvent unchanged.
import {
  ByteBuffer,
  type DecodeErrorKind,
  decodeEvent,
  eventTimeMs,
  eventToJson,
  forEachTopic,
  HOOKS,
  MALFORMED_ENVELOPE,
  MALFORMED_VALUE,
  parseEnvelope,
  type PayloadMode,
  type SidecarEvent,
  stringField,
  UNKNOWN_TYPE,
  writeFrameJsonCode,
} from "../lib/internal.ts";
import { frameOf } from "../lib/testing.ts";

const out = new ByteBuffer(1 << 16);
const enc = new TextEncoder();
const ranges = { typeUrlStart: 0, typeUrlEnd: 0, valueStart: 0, valueEnd: 0 };

/** What one frame gave: `ok` or the failure kind. */
export type Outcome = "ok" | DecodeErrorKind;

function writerKind(code: number, frame: Uint8Array): Outcome {
  if (code >= 0) return "ok";
  if (code === MALFORMED_VALUE) return "malformed_value";
  if (code === MALFORMED_ENVELOPE) return "malformed_envelope";
  if (code === UNKNOWN_TYPE) return frame.length === 0 ? "empty" : "unknown_type";
  return `code ${code}` as Outcome;
}

/**
 * Checks `frame` in `mode`; returns the outcome, or throws an Error naming the disagreement.
 * `deep: false` skips the accessor and round-trip checks of an accepted frame.
 */
export function differential(frame: Uint8Array, mode: PayloadMode, deep = true): Outcome {
  out.reset();
  out.write(SENTINEL);
  const code = writeFrameJsonCode(out, frame, mode);
  const j = writerKind(code, frame);
  const t = decodeEvent(frame);
  const tk: Outcome = t.ok ? "ok" : t.error.kind;
  if (j !== tk) throw new Error(`writer says ${j}, decoder says ${tk}`);
  if (!t.ok) {
    if (out.pos !== SENTINEL.length) throw new Error(`writer wrote ${out.pos - 1} bytes on ${j}`);
    return j;
  }
  const written = out.bytes().subarray(SENTINEL.length);
  const typed = enc.encode(eventToJson(t.event, { payload: mode }));
  if (!sameBytes(written, typed)) {
    throw new Error(
      `JSON differs:\n  writer:      ${new TextDecoder().decode(written)}\n` +
        `  eventToJson: ${new TextDecoder().decode(typed)}`,
    );
  }
  if (deep === false) return "ok";
  checkAccessors(frame, code, t.event);
  // Round trip: the plugin-exact encoding of the decoded event decodes to the same event.
  const again = decodeEvent(frameOf(t.event).subarray(4));
  if (!again.ok) throw new Error(`the re-encoded event does not decode: ${again.error.message}`);
  const diff = difference(again.event, t.event, "event");
  if (diff) throw new Error(`round trip changed ${diff}`);
  return "ok";
}

/** Where `a` and `b` differ (plain objects, arrays, strings, numbers, bigints, bytes), or "". */
function difference(a: unknown, b: unknown, path: string): string {
  if (a === b) return "";
  if (a instanceof Uint8Array && b instanceof Uint8Array) {
    return sameBytes(a, b) ? "" : path;
  }
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return path;
  if (Array.isArray(a) !== Array.isArray(b)) return path;
  const ka = Object.keys(a), kb = Object.keys(b);
  if (ka.length !== kb.length) return `${path} (keys)`;
  for (let i = 0; i < ka.length; i++) {
    if (ka[i] !== kb[i]) return `${path} (key order)`;
    const d = difference((a as Json)[ka[i]], (b as Json)[ka[i]], `${path}.${ka[i]}`);
    if (d) return d;
  }
  return "";
}
const SENTINEL = Uint8Array.of(0x23);

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

// deno-lint-ignore no-explicit-any
type Json = any;

function checkAccessors(frame: Uint8Array, hook: number, event: SidecarEvent): void {
  if (parseEnvelope(frame, ranges) !== hook || HOOKS[hook] !== event.hook) {
    throw new Error("envelope parsed differently the second time");
  }
  const { valueStart: vs, valueEnd: ve } = ranges;
  const e = event as Json;
  for (const name of ["client_id", "mountpoint", "username", "session_id", "topic"]) {
    const want = typeof e[name] === "string" ? e[name] : "";
    const got = stringField(frame, hook, vs, ve, name);
    if (got !== want) {
      throw new Error(`stringField ${name}: ${JSON.stringify(got)} vs ${JSON.stringify(want)}`);
    }
  }
  const topics: string[] = [];
  const scan = forEachTopic(frame, hook, vs, ve, (t) => (topics.push(t), false));
  const want: string[] | undefined = "topic" in e
    ? [e.topic]
    : "topics" in e
    ? e.topics.map((t: Json) => (typeof t === "string" ? t : t.topic))
    : undefined;
  if (
    want === undefined
      ? scan !== "no_topics"
      : scan !== "unmatched" || topics.join("\0") !== want.join("\0")
  ) {
    throw new Error(`forEachTopic: ${scan} ${JSON.stringify(topics)} vs ${JSON.stringify(want)}`);
  }
  const s = e.timestamp.seconds as bigint, n = e.timestamp.nanos as number;
  const ms = s > 0n ? Number(s) * 1000 + n / 1e6 : Infinity;
  const got = eventTimeMs(frame, hook, vs, ve);
  if (!(got === ms || Math.abs(got - ms) <= Math.abs(ms) * 1e-15)) {
    throw new Error(`eventTimeMs: ${got} vs ${ms}`);
  }
}

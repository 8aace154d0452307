// Shared test helpers: the conformance vectors, the mapping from the upstream expectation form
// to our JSON / typed forms, a test-only protobuf encoder, seeded randomness, chunked sources
// (in-memory readers, ReadableStreams and real TCP sockets).
//
// Everything expected here is derived from protocol.md and the upstream vectors, never from
// the code under test: the schema table is written out by hand, timestamps are formatted by an
// independent civil-calendar routine, base64 comes from btoa/atob, and frames are encoded with
// protobufjs from proto/ (or byte by byte with the raw wire writer below).
import { rng32 } from "../scripts/_mix.ts";
import protobuf from "protobufjs";

// ---------------------------------------------------------------------------------------------
// The schema as protocol.md states it (hand-written; tests/schema_test.ts compares the
// generated descriptors with it, the JSON tests take field order from it).

/** A field type as protocol.md names it. */
export type FieldType =
  | "Timestamp"
  | "string"
  | "int32"
  | "bool"
  | "bytes"
  | "MatchedACL"
  | "Reason"
  | "RegistrationFailureReason"
  | "repeated string"
  | "repeated TopicInfo"
  | "map<string,string>";

/** `[field number, proto name, type]`. */
export type FieldSpec = readonly [no: number, name: string, type: FieldType];

const delivery: readonly FieldSpec[] = [
  [1, "timestamp", "Timestamp"],
  [2, "username", "string"],
  [3, "client_id", "string"],
  [4, "mountpoint", "string"],
  [5, "topic", "string"],
  [6, "qos", "int32"],
  [7, "is_retain", "bool"],
  [8, "payload", "bytes"],
  [9, "matched_acl", "MatchedACL"],
  [10, "persisted", "bool"],
  [11, "session_id", "string"],
];
const disconnect: readonly FieldSpec[] = [
  [1, "timestamp", "Timestamp"],
  [2, "client_id", "string"],
  [3, "mountpoint", "string"],
  [4, "reason", "Reason"],
  [5, "username", "string"],
  [6, "session_id", "string"],
];
const session: readonly FieldSpec[] = [
  [1, "timestamp", "Timestamp"],
  [2, "client_id", "string"],
  [3, "mountpoint", "string"],
  [4, "session_id", "string"],
];

/** Every message of package eventssidecar.v1 with its fields, from protocol.md. */
export const EXPECTED_MESSAGES: Readonly<Record<string, readonly FieldSpec[]>> = {
  MatchedACL: [[1, "name", "string"], [2, "pattern", "string"]],
  TopicInfo: [[1, "topic", "string"], [2, "qos", "int32"], [3, "matched_acl", "MatchedACL"]],
  OnRegister: [
    [1, "timestamp", "Timestamp"],
    [2, "peer_addr", "string"],
    [3, "peer_port", "int32"],
    [4, "username", "string"],
    [5, "mountpoint", "string"],
    [6, "client_id", "string"],
    [7, "user_properties", "map<string,string>"],
    [8, "session_id", "string"],
  ],
  OnRegisterFailed: [
    [1, "timestamp", "Timestamp"],
    [2, "mountpoint", "string"],
    [3, "client_id", "string"],
    [4, "peer_addr", "string"],
    [5, "peer_port", "int32"],
    [6, "username", "string"],
    [7, "clean_session", "bool"],
    [8, "reason", "RegistrationFailureReason"],
  ],
  OnPublish: [
    [1, "timestamp", "Timestamp"],
    [2, "username", "string"],
    [3, "client_id", "string"],
    [4, "mountpoint", "string"],
    [5, "qos", "int32"],
    [6, "topic", "string"],
    [7, "payload", "bytes"],
    [8, "retain", "bool"],
    [9, "matched_acl", "MatchedACL"],
    [10, "session_id", "string"],
  ],
  OnSubscribe: [
    [1, "timestamp", "Timestamp"],
    [2, "client_id", "string"],
    [3, "mountpoint", "string"],
    [4, "username", "string"],
    [5, "topics", "repeated TopicInfo"],
    [6, "session_id", "string"],
  ],
  OnUnsubscribe: [
    [1, "timestamp", "Timestamp"],
    [2, "username", "string"],
    [3, "client_id", "string"],
    [4, "mountpoint", "string"],
    [5, "topics", "repeated string"],
    [6, "session_id", "string"],
  ],
  OnDeliver: delivery,
  OnDeliveryComplete: delivery,
  OnOfflineMessage: [
    [1, "timestamp", "Timestamp"],
    [2, "client_id", "string"],
    [3, "mountpoint", "string"],
    [4, "qos", "int32"],
    [5, "topic", "string"],
    [6, "payload", "bytes"],
    [7, "retain", "bool"],
    [8, "session_id", "string"],
  ],
  OnClientWakeUp: session,
  OnClientOffline: disconnect,
  OnClientGone: disconnect,
  OnSessionExpired: session,
  OnMessageDrop: [
    [1, "timestamp", "Timestamp"],
    [2, "client_id", "string"],
    [3, "mountpoint", "string"],
    [4, "qos", "int32"],
    [5, "topic", "string"],
    [6, "payload", "bytes"],
    [7, "reason", "string"],
    [8, "matched_acl", "MatchedACL"],
    [9, "session_id", "string"],
  ],
};

/** Hook → message name, from protocol.md's table (note OnClientWakeUp). */
export const EXPECTED_HOOKS = {
  on_register: "OnRegister",
  on_register_failed: "OnRegisterFailed",
  on_publish: "OnPublish",
  on_subscribe: "OnSubscribe",
  on_unsubscribe: "OnUnsubscribe",
  on_deliver: "OnDeliver",
  on_delivery_complete: "OnDeliveryComplete",
  on_offline_message: "OnOfflineMessage",
  on_client_wakeup: "OnClientWakeUp",
  on_client_offline: "OnClientOffline",
  on_client_gone: "OnClientGone",
  on_session_expired: "OnSessionExpired",
  on_message_drop: "OnMessageDrop",
} as const;

/** A hook name as the tests know it. */
export type HookName = keyof typeof EXPECTED_HOOKS;

/** Enum value names by number, from protocol.md. */
export const EXPECTED_ENUMS: Readonly<Record<string, readonly string[]>> = {
  Reason: [
    "REASON_UNSPECIFIED",
    "REASON_NOT_AUTHORIZED",
    "REASON_NORMAL_DISCONNECT",
    "REASON_SESSION_TAKEN_OVER",
    "REASON_ADMINISTRATIVE_ACTION",
    "REASON_DISCONNECT_KEEP_ALIVE",
    "REASON_DISCONNECT_MIGRATION",
    "REASON_BAD_AUTHENTICATION_METHOD",
    "REASON_REMOTE_SESSION_TAKEN_OVER",
    "REASON_MQTT_CLIENT_DISCONNECT",
    "REASON_RECEIVE_MAX_EXCEEDED",
    "REASON_PROTOCOL_ERROR",
    "REASON_PUBLISH_AUTH_ERROR",
    "REASON_INVALID_PUBREC_ERROR",
    "REASON_INVALID_PUBCOMP_ERROR",
    "REASON_UNEXPECTED_FRAME_TYPE",
    "REASON_EXIT_SIGNAL_RECEIVED",
    "REASON_TCP_CLOSED",
  ],
  RegistrationFailureReason: [
    "REASON_UNSPECIFIED",
    "REASON_NO_MATCHING_HOOK_FOUND",
    "REASON_INVALID_CREDENTIALS",
    "REASON_NOT_AUTHORIZED",
    "REASON_STALE_REQUEST",
    "REASON_INVALID_SIGNATURE",
    "REASON_USERNAME_RID_MISMATCH",
  ],
};

/** The `type_url` of a hook's message. */
export function typeUrlFor(hook: HookName): string {
  return `type.googleapis.com/eventssidecar.v1.${EXPECTED_HOOKS[hook]}`;
}

/** The hooks whose message has a `bytes` field. */
export const PAYLOAD_HOOKS: readonly HookName[] = (Object.keys(EXPECTED_HOOKS) as HookName[])
  .filter((h) => EXPECTED_MESSAGES[EXPECTED_HOOKS[h]].some((f) => f.at(2) === "bytes"));

// ---------------------------------------------------------------------------------------------
// Vectors.

// deno-lint-ignore no-explicit-any
type Json = any;

/** A `.json` expectation as the upstream decoder reads a frame. */
export interface UpstreamExpectation {
  type_url: string;
  type: string | null;
  hook: HookName | null;
  event: Record<string, Json> | null;
}

/** One frame with its expectation. */
export interface Vector {
  /** The NNN number. */
  no: number;
  /** File name without extension, e.g. `027_on_publish_typical`. */
  name: string;
  /** The exact bytes on the wire, length prefix included. */
  wire: Uint8Array;
  /** The frame body (the `Any` bytes), a view into `wire`. */
  body: Uint8Array;
  /** What the upstream decoder reads. */
  expected: UpstreamExpectation;
  /** Built by the tests (large payload frames) rather than read from a file. */
  built: boolean;
}

/** The fixture directory of the repository. */
export const FIXTURE_DIR: URL = new URL("./fixtures/vectors/", import.meta.url);

/** Where the full upstream set (with the 1 MiB / 5 MiB frames) lives on a dev machine. */
export const UPSTREAM_DIR: string = envOr("VMQ_SIDECAR_VECTORS_DIR", "/work/shared/vectors/frames");

function envOr(name: string, fallback: string): string {
  try {
    return Deno.env.get(name) ?? fallback;
  } catch {
    return fallback; // no env permission
  }
}

/** Whether the full upstream vector set is present on this machine. */
export function upstreamAvailable(): boolean {
  try {
    return Deno.statSync(UPSTREAM_DIR).isDirectory;
  } catch {
    return false;
  }
}

/** The NNN numbers of the large frames that are not in the repository and are built here. */
export const LARGE_VECTOR_NUMBERS: readonly number[] = [34, 35, 66, 67, 78, 89, 156];

/** Reads every `NNN_name.bin` / `.json` pair of `dir`, in NNN order. */
export function loadVectorDir(dir: string | URL): Vector[] {
  const base = typeof dir === "string" ? new URL(`file://${dir.replace(/\/?$/, "/")}`) : dir;
  const names = [...Deno.readDirSync(base)]
    .map((e) => e.name)
    .filter((n) => /^\d{3}_.+\.bin$/.test(n))
    .map((n) => n.slice(0, -4))
    .sort();
  return names.map((name) => {
    const wire = Deno.readFileSync(new URL(`${name}.bin`, base));
    const expected = JSON.parse(Deno.readTextFileSync(new URL(`${name}.json`, base)));
    const length = new DataView(wire.buffer, wire.byteOffset).getUint32(0);
    if (length !== wire.length - 4) throw new Error(`${name}: length prefix ${length} is wrong`);
    return {
      no: Number(name.slice(0, 3)),
      name,
      wire,
      body: wire.subarray(4),
      expected,
      built: false,
    };
  });
}

let fixtureCache: Vector[] | undefined;
/** The repository's fixture vectors (150 frames, without the large ones), in NNN order. */
export function fixtureVectors(): Vector[] {
  return fixtureCache ??= loadVectorDir(FIXTURE_DIR);
}

let largeCache: Vector[] | undefined;
/**
 * The large-payload frames (1 MiB and 5 MiB payloads) built in-test with the metadata of the
 * upstream vectors 034, 035, 066, 067, 078, 089 and 156 and seeded random payloads.
 */
export function largeVectors(): Vector[] {
  return largeCache ??= LARGE_SPECS.map(([no, name, hook, size, event]) => {
    const payload = randomBytes(size, mulberry32(no));
    const fullEvent: Record<string, Json> = { ...event, payload: toBase64(payload) };
    // Field order of the expectation follows the message, like the upstream .json files.
    const ordered: Record<string, Json> = {};
    for (const [, field] of EXPECTED_MESSAGES[EXPECTED_HOOKS[hook]]) {
      ordered[field] = fullEvent[field];
    }
    const body = eventBody(hook, { ...ordered, payload });
    const wire = frameOf(body);
    const expected: UpstreamExpectation = {
      type_url: typeUrlFor(hook),
      type: EXPECTED_HOOKS[hook],
      hook,
      event: ordered,
    };
    return { no, name, wire, body: wire.subarray(4), expected, built: true };
  });
}

/** Fixture vectors plus the built large ones: all 157 frames in NNN order. */
export function allVectors(): Vector[] {
  return [...fixtureVectors(), ...largeVectors()].sort((a, b) => a.no - b.no);
}

/** Concatenates byte arrays. */
export function concat(parts: readonly Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** The byte stream of `vectors` as one connection would carry it, and each frame's offset. */
export function streamBytes(vectors: readonly Vector[]): { bytes: Uint8Array; starts: number[] } {
  const starts: number[] = [];
  let at = 0;
  for (const v of vectors) {
    starts.push(at);
    at += v.wire.length;
  }
  return { bytes: concat(vectors.map((v) => v.wire)), starts };
}

const ACL = (name: string, pattern: string) => ({ name, pattern });
type LargeSpec = [
  no: number,
  name: string,
  hook: HookName,
  size: number,
  event: Record<string, Json>,
];
const MiB = 1024 * 1024;
// Metadata copied from the upstream vectors; payloads are seeded random bytes of the same size.
const LARGE_SPECS: LargeSpec[] = [
  [34, "034_on_publish_payload_1mib", "on_publish", MiB, {
    timestamp: { seconds: 1759970310, nanos: 293864964 },
    username: "driver-80015",
    client_id: "fb8a2b7f",
    mountpoint: "",
    qos: 1,
    topic: "devices/60f76240/telemetry",
    retain: false,
    matched_acl: ACL("fleet-28ed", "devices/%c/#"),
    session_id: "3c39f716-b06a-41ec-94bf-5e6c44168955",
  }],
  [35, "035_on_publish_payload_5mib", "on_publish", 5 * MiB, {
    timestamp: { seconds: 1753040695, nanos: 144084466 },
    username: "alice-16635",
    client_id: "car-12aa53e6a6a7",
    mountpoint: "",
    qos: 0,
    topic: "devices/1ec0/telemetry",
    retain: false,
    matched_acl: ACL("devices-f380", "fleet/+/location"),
    session_id: "da10bd1b-2088-4cfb-8b39-90f8ec6fcd77",
  }],
  [66, "066_on_deliver_payload_1mib", "on_deliver", MiB, {
    timestamp: { seconds: 1714558190, nanos: 889645091 },
    username: "svc-ingest-47923",
    client_id: "sensor_48ebf4b043",
    mountpoint: "",
    topic: "devices/0fd9edb200/telemetry",
    qos: 1,
    is_retain: false,
    matched_acl: ACL("default-5181", "devices/%c/#"),
    persisted: true,
    session_id: "ce0503c6-ea0c-46a3-97d7-9b03e67ff086",
  }],
  [67, "067_on_deliver_payload_5mib", "on_deliver", 5 * MiB, {
    timestamp: { seconds: 1781113319, nanos: 817862517 },
    username: "alice-94633",
    client_id: "car-694fe16eba0f",
    mountpoint: "",
    topic: "devices/8711ca/status",
    qos: 0,
    is_retain: false,
    matched_acl: ACL("devices-9e92", "#"),
    persisted: false,
    session_id: "fd5da950-15ee-4bc9-9213-1202df4b48b6",
  }],
  [78, "078_on_delivery_complete_payload_1mib", "on_delivery_complete", MiB, {
    timestamp: { seconds: 1789240393, nanos: 514840141 },
    username: "fleet-29898",
    client_id: "car-920bbd8e5b49",
    mountpoint: "",
    topic: "devices/57c58a24d776/telemetry",
    qos: 1,
    is_retain: false,
    matched_acl: ACL("fleet-4884", "#"),
    persisted: true,
    session_id: "2c346e7b-9eaf-4bee-b26a-38c236a83036",
  }],
  [89, "089_on_offline_message_payload_1mib", "on_offline_message", MiB, {
    timestamp: { seconds: 1722913816, nanos: 114520125 },
    client_id: "8462aafdff19a6",
    mountpoint: "",
    qos: 1,
    topic: "fleet/2424be93a2/location",
    retain: false,
    session_id: "0da60730-cb26-4e1c-9c86-7fd9337147e4",
  }],
  [156, "156_on_message_drop_payload_1mib", "on_message_drop", MiB, {
    timestamp: { seconds: 1704700205, nanos: 31651828 },
    client_id: "sensor_e7d2f8961032a42f",
    mountpoint: "",
    qos: 1,
    topic: "fleet/379352704ce2/location",
    reason: "queue_full",
    matched_acl: ACL("fleet-c70c", ""),
    session_id: "3e3d38af-35eb-45ff-a61b-e258223005af",
  }],
];

// ---------------------------------------------------------------------------------------------
// Upstream expectation → our forms.

/** How payloads appear in our JSON (mirrors the product's PayloadMode). */
export type Mode = "base64" | "utf8" | "omit";

const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * Our JSON form of an upstream expectation, as a plain object with keys in output order:
 * `hook`, then the message's fields in proto order (timestamps as RFC 3339 strings), then
 * `payload_encoding` in utf8 mode for messages with a payload. `null` for the empty frame.
 */
export function toOurJson(exp: UpstreamExpectation, mode: Mode = "base64"): Json {
  if (exp.hook === null) return null;
  const out: Record<string, Json> = { hook: exp.hook };
  let encoding: string | undefined;
  for (const [, name, type] of EXPECTED_MESSAGES[EXPECTED_HOOKS[exp.hook]]) {
    const v = exp.event![name];
    if (v === undefined) throw new Error(`expectation of ${exp.hook} lacks ${name}`);
    if (type === "bytes") {
      if (mode === "omit") continue;
      encoding = "base64";
      out[name] = v;
      if (mode === "utf8") {
        try {
          out[name] = strictUtf8.decode(fromBase64(v));
          encoding = "utf8";
        } catch { /* not UTF-8: stays base64 */ }
      }
      continue;
    }
    out[name] = jsonValue(type, v);
  }
  if (mode === "utf8" && encoding) out.payload_encoding = encoding;
  return out;
}

function jsonValue(type: FieldType, v: Json): Json {
  switch (type) {
    case "Timestamp":
      return rfc3339(BigInt(v.seconds ?? 0), v.nanos ?? 0);
    case "MatchedACL":
      return subMessage("MatchedACL", v);
    case "repeated TopicInfo":
      return v.map((t: Json) => subMessage("TopicInfo", t));
    case "repeated string":
      return [...v];
    case "map<string,string>":
      return copyMap(v);
    default:
      return v;
  }
}

function subMessage(name: string, v: Json): Json {
  const out: Record<string, Json> = {};
  for (const [, field, type] of EXPECTED_MESSAGES[name]) {
    if (v[field] === undefined) throw new Error(`expectation of ${name} lacks ${field}`);
    out[field] = jsonValue(type, v[field]);
  }
  return out;
}

function copyMap(v: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of Object.keys(v)) {
    Object.defineProperty(out, k, {
      value: v[k],
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return out;
}

/** The typed event (as decodeEvent should give it) of an upstream expectation. */
export function toTypedEvent(exp: UpstreamExpectation): Json {
  if (exp.hook === null) return null;
  return { hook: exp.hook, ...typedFields(EXPECTED_HOOKS[exp.hook], exp.event!) };
}

function typedFields(message: string, v: Json): Record<string, Json> {
  const out: Record<string, Json> = {};
  for (const [, name, type] of EXPECTED_MESSAGES[message]) {
    const x = v[name];
    if (x === undefined) throw new Error(`expectation of ${message} lacks ${name}`);
    switch (type) {
      case "Timestamp":
        out[name] = { seconds: BigInt(x.seconds ?? 0), nanos: x.nanos ?? 0 };
        break;
      case "bytes":
        out[name] = fromBase64(x);
        break;
      case "MatchedACL":
        out[name] = typedFields("MatchedACL", x);
        break;
      case "repeated TopicInfo":
        out[name] = x.map((t: Json) => typedFields("TopicInfo", t));
        break;
      case "repeated string":
        out[name] = [...x];
        break;
      case "map<string,string>":
        out[name] = copyMap(x);
        break;
      default:
        out[name] = x;
    }
  }
  return out;
}

/**
 * RFC 3339 UTC with exactly 9 fractional digits, computed with Howard Hinnant's
 * civil-from-days algorithm on bigints (no Date). Years outside 0000..9999 use the ISO 8601
 * expanded form `±YYYYYY`, as JavaScript does.
 */
export function rfc3339(seconds: bigint, nanos: number): string {
  const floorDiv = (a: bigint, b: bigint) => (a >= 0n ? a / b : -((-a + b - 1n) / b));
  const days = floorDiv(seconds, 86400n);
  const secOfDay = Number(seconds - days * 86400n);
  const z = days + 719468n;
  const era = floorDiv(z, 146097n);
  const doe = z - era * 146097n;
  const yoe = (doe - doe / 1460n + doe / 36524n - doe / 146096n) / 365n;
  const doy = doe - (365n * yoe + yoe / 4n - yoe / 100n);
  const mp = (5n * doy + 2n) / 153n;
  const d = doy - (153n * mp + 2n) / 5n + 1n;
  const m = mp < 10n ? mp + 3n : mp - 9n;
  const y = yoe + era * 400n + (m <= 2n ? 1n : 0n);
  const p = (n: number | bigint, w: number) => String(n).padStart(w, "0");
  const year = y >= 0n && y <= 9999n ? p(y, 4) : `${y < 0n ? "-" : "+"}${p(y < 0n ? -y : y, 6)}`;
  const hh = Math.floor(secOfDay / 3600), mm = Math.floor(secOfDay / 60) % 60, ss = secOfDay % 60;
  return `${year}-${p(m, 2)}-${p(d, 2)}T${p(hh, 2)}:${p(mm, 2)}:${p(ss, 2)}.${p(nanos, 9)}Z`;
}

/** Standard padded base64 (btoa), any size. */
export function toBase64(bytes: Uint8Array): string {
  let bin = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(bin);
}

/** Decodes standard padded base64 (atob). */
export function fromBase64(s: string): Uint8Array {
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

const MAP_FIELDS = new Set(
  Object.values(EXPECTED_MESSAGES).flat().filter((f) => f[2].startsWith("map<")).map((f) => f[1]),
);

/**
 * Key paths of a JSON value in order, to compare key order (deep equality ignores it). The
 * keys of map fields are sorted: map order is not part of the contract (the upstream
 * expectations list them sorted, the wire carries them in the broker's order).
 */
export function keyOrder(v: Json, path = ""): string[] {
  if (Array.isArray(v)) return v.flatMap((x, i) => keyOrder(x, `${path}[${i}]`));
  if (v === null || typeof v !== "object") return [];
  const isMap = MAP_FIELDS.has(path.slice(path.lastIndexOf(".") + 1)) &&
    path.split(".").length === 2;
  const keys = isMap ? Object.keys(v).sort() : Object.keys(v);
  return keys.flatMap((k) => [`${path}.${k}`, ...keyOrder(v[k], `${path}.${k}`)]);
}

// ---------------------------------------------------------------------------------------------
// Encoding for tests: protobufjs on proto/ for well-formed events, a raw writer for the rest.

function buildRoot(): protobuf.Root {
  const root = new protobuf.Root();
  const text = Deno.readTextFileSync(
    new URL("../proto/eventssidecar/v1/events.proto", import.meta.url),
  );
  protobuf.parse(text, root, { keepCase: true });
  root.addJSON(protobuf.common.get("google/protobuf/timestamp.proto")!.nested!);
  root.resolveAll();
  return root;
}
const protoRoot = buildRoot();

/** Options of {@linkcode encodeEvent}. */
export interface EncodeOptions {
  /**
   * Keep default values on the wire (protobufjs writes every set field). By default they are
   * dropped like the upstream encoder does, which always keeps `timestamp` and `matched_acl`.
   */
  keepDefaults?: boolean;
}

/**
 * Encodes an event given in the upstream expectation form (timestamp `{seconds, nanos}`, bytes
 * as base64 or Uint8Array, enums by name or number, maps as objects) with protobufjs.
 */
export function encodeEvent(
  hook: HookName,
  event: Record<string, Json>,
  options: EncodeOptions = {},
): Uint8Array {
  const message = EXPECTED_HOOKS[hook];
  const type = protoRoot.lookupType(`eventssidecar.v1.${message}`);
  const obj = options.keepDefaults ? event : withoutDefaults(message, event, true);
  return type.encode(type.fromObject(obj)).finish();
}

function isDefault(v: Json): boolean {
  if (v === "" || v === 0 || v === false || v === null || v === undefined) return true;
  if (v === "REASON_UNSPECIFIED") return true;
  if (Array.isArray(v)) return v.length === 0;
  if (v instanceof Uint8Array) return v.length === 0;
  return false;
}

function withoutDefaults(message: string, v: Json, top: boolean): Record<string, Json> {
  const out: Record<string, Json> = {};
  for (const [, name, type] of EXPECTED_MESSAGES[message]) {
    const x = v[name];
    if (x === undefined) continue;
    if (type === "Timestamp") {
      out[name] = {};
      if (!isDefault(x.seconds) && x.seconds !== "0") out[name].seconds = x.seconds;
      if (!isDefault(x.nanos)) out[name].nanos = x.nanos;
    } else if (type === "MatchedACL") {
      // The upstream encoder always sends matched_acl at the top level of an event.
      const sub = withoutDefaults("MatchedACL", x, false);
      if (top || Object.keys(sub).length > 0) out[name] = sub;
    } else if (type === "repeated TopicInfo") {
      if (x.length) out[name] = x.map((t: Json) => withoutDefaults("TopicInfo", t, true));
    } else if (type === "map<string,string>") {
      if (Object.keys(x).length) out[name] = x;
    } else if (!isDefault(x)) out[name] = x;
  }
  return out;
}

const utf8 = new TextEncoder();

/** The varint bytes of an unsigned or negative (two's complement, 64-bit) integer. */
export function varint(value: number | bigint): number[] {
  let v = BigInt.asUintN(64, BigInt(value));
  const out: number[] = [];
  while (v >= 0x80n) {
    out.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  out.push(Number(v));
  return out;
}

/** A field tag: `(no << 3) | wireType`. */
export function tag(no: number, wireType: number): number[] {
  return varint((no << 3) | wireType);
}

/**
 * One raw protobuf field: a number/bigint/boolean is a varint (wire type 0), a string is UTF-8
 * and a Uint8Array is raw bytes (wire type 2, length-delimited).
 */
export function field(
  no: number,
  value: number | bigint | boolean | string | Uint8Array,
): Uint8Array {
  if (typeof value === "boolean") value = value ? 1 : 0;
  if (typeof value === "number" || typeof value === "bigint") {
    return Uint8Array.from([...tag(no, 0), ...varint(value)]);
  }
  const data = typeof value === "string" ? utf8.encode(value) : value;
  return concat([Uint8Array.from([...tag(no, 2), ...varint(data.length)]), data]);
}

/** A raw message: the concatenation of fields. */
export function message(...fields: Uint8Array[]): Uint8Array {
  return concat(fields);
}

/** A raw `Timestamp` message (defaults omitted). */
export function timestampMsg(seconds: number | bigint, nanos = 0): Uint8Array {
  const parts: Uint8Array[] = [];
  if (BigInt(seconds) !== 0n) parts.push(field(1, seconds));
  if (nanos !== 0) parts.push(field(2, nanos));
  return message(...parts);
}

/** A `google.protobuf.Any` with `type_url` and `value`, encoded by hand. */
export function anyOf(typeUrl: string | Uint8Array, value: Uint8Array): Uint8Array {
  return message(field(1, typeUrl), field(2, value));
}

/** The frame body (Any) of an event given in the upstream form. */
export function eventBody(
  hook: HookName,
  event: Record<string, Json>,
  options?: EncodeOptions,
): Uint8Array {
  return anyOf(typeUrlFor(hook), encodeEvent(hook, event, options));
}

/** A frame on the wire: 4-byte big-endian length, then `body`. */
export function frameOf(body: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + body.length);
  out[0] = body.length >>> 24;
  out[1] = (body.length >>> 16) & 255;
  out[2] = (body.length >>> 8) & 255;
  out[3] = body.length & 255;
  out.set(body, 4);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Seeded randomness and chunked sources.

/** mulberry32: a tiny seeded PRNG returning floats in [0, 1) (the load generator's). */
export const mulberry32: (seed: number) => () => number = rng32;

/** `n` pseudo-random bytes. */
export function randomBytes(n: number, rng: () => number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (rng() * 256) | 0;
  return out;
}

/** Options of {@linkcode randomChunks}. */
export interface ChunkOptions {
  /** Largest chunk (default 64 KiB); sizes are log-uniform in [1, maxChunk]. */
  maxChunk?: number;
  /** Frame start offsets; with probability `headerBias` a cut is forced inside each header. */
  frameStarts?: readonly number[];
  /** Probability of a forced cut 1..4 bytes after a frame start (default 0.5). */
  headerBias?: number;
}

/** Splits `data` into seeded random chunks (views into `data`). */
export function randomChunks(
  data: Uint8Array,
  rng: () => number,
  options: ChunkOptions = {},
): Uint8Array[] {
  const maxChunk = options.maxChunk ?? 64 * 1024;
  const bias = options.headerBias ?? 0.5;
  const cuts = new Set<number>();
  for (let at = 0; at < data.length;) {
    at += Math.max(1, Math.min(maxChunk, Math.floor(Math.exp(rng() * Math.log(maxChunk + 1)))));
    cuts.add(Math.min(at, data.length));
  }
  for (const s of options.frameStarts ?? []) {
    if (rng() < bias) cuts.add(Math.min(data.length, s + 1 + Math.floor(rng() * 4)));
  }
  cuts.add(data.length);
  const sorted = [...cuts].sort((a, b) => a - b);
  const chunks: Uint8Array[] = [];
  let prev = 0;
  for (const c of sorted) {
    if (c > prev) chunks.push(data.subarray(prev, c));
    prev = c;
  }
  return chunks;
}

/** Splits `data` into chunks of `size` bytes (views). */
export function fixedChunks(data: Uint8Array, size: number): Uint8Array[] {
  const chunks: Uint8Array[] = [];
  for (let i = 0; i < data.length; i += size) chunks.push(data.subarray(i, i + size));
  return chunks;
}

/** A ReadableStream that delivers `chunks` one per read. */
export function streamOf(chunks: readonly Uint8Array[]): ReadableStream<Uint8Array> {
  let i = 0;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (i < chunks.length) controller.enqueue(chunks[i++]);
      else controller.close();
    },
  }, { highWaterMark: 0 });
}

/**
 * A `Deno.Conn`-like reader over `data` that returns at most `step` bytes per read (and never
 * more than the caller's buffer), like a socket delivering small segments.
 */
export function steppingReader(
  data: Uint8Array,
  step: number,
): { read(p: Uint8Array): Promise<number | null>; reads: number } {
  let at = 0;
  const r = {
    reads: 0,
    read(p: Uint8Array): Promise<number | null> {
      if (at >= data.length) return Promise.resolve(null);
      const n = Math.min(step, p.length, data.length - at);
      p.set(data.subarray(at, at + n));
      at += n;
      r.reads++;
      return Promise.resolve(n);
    },
  };
  return r;
}

async function writeAll(conn: Deno.Conn, data: Uint8Array): Promise<void> {
  for (let at = 0; at < data.length;) at += await conn.write(data.subarray(at));
}

/**
 * Serves `chunks` over a real TCP connection on 127.0.0.1 (one write per chunk, Nagle off, then
 * close) and runs `fn` on the client end. Both ends are closed afterwards.
 */
export async function withTcpStream<T>(
  chunks: readonly Uint8Array[],
  fn: (conn: Deno.TcpConn, peer: string) => Promise<T>,
): Promise<T> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const accepted = listener.accept();
  const client = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
  const server = await accepted;
  listener.close();
  server.setNoDelay(true);
  const served = (async () => {
    try {
      for (const c of chunks) await writeAll(server, c);
    } finally {
      server.close();
    }
  })();
  const local = client.localAddr;
  try {
    return await fn(client, `${local.hostname}:${local.port}`);
  } finally {
    try {
      client.close();
    } catch { /* already closed */ }
    await served.catch(() => {}); // the client may have stopped reading early
  }
}

/**
 * An on_publish of client `c<client>` (mountpoint "") at 1_700_000_000 s + `ms` ms with `topic`
 * and a payload of `payloadBytes` zeros: the events of the per-client order tests.
 */
export function clientPublish(
  client: number,
  ms: number,
  topic: string,
  payloadBytes = 8,
): Uint8Array {
  return eventBody("on_publish", {
    timestamp: { seconds: 1_700_000_000 + Math.floor(ms / 1000), nanos: (ms % 1000) * 1e6 },
    client_id: `c${client}`,
    mountpoint: "",
    username: "u",
    qos: 0,
    topic,
    payload: new Uint8Array(payloadBytes),
    retain: false,
    matched_acl: { name: "", pattern: "" },
    session_id: "s",
  });
}

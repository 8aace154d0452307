// The JSON form of events: both writers (wire → JSON and typed event → JSON) against the
// upstream vectors mapped to our contract, payload modes, escaping, enums, timestamps, maps.
import {
  ByteBuffer,
  decodeEvent,
  eventToJson,
  HOOKS,
  MALFORMED_VALUE,
  type PayloadMode,
  writeFrameJson,
  writeFrameJsonCode,
} from "../lib/internal.ts";
import { assert, assertEquals, assertStrictEquals } from "./_assert.ts";
import {
  allVectors,
  anyOf,
  encodeEvent,
  eventBody,
  field,
  fixtureVectors,
  fromBase64,
  type HookName,
  keyOrder,
  largeVectors,
  message,
  mulberry32,
  PAYLOAD_HOOKS,
  randomBytes,
  rfc3339,
  timestampMsg,
  toBase64,
  toOurJson,
  typeUrlFor,
  type Vector,
} from "./_vectors.ts";

const MODES: readonly PayloadMode[] = ["base64", "utf8", "omit"];
const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const utf8 = new TextEncoder();

/** writeFrameJsonCode into a fresh buffer: the hook index and the text (undefined on failure). */
function wireJson(body: Uint8Array, mode: PayloadMode = "base64"): { hook: number; text?: string } {
  const out = new ByteBuffer(64);
  const hook = writeFrameJsonCode(out, body, mode);
  if (hook < 0) {
    assertStrictEquals(out.pos, 0, "nothing may be written on failure");
    return { hook };
  }
  // The output must be valid UTF-8: decode strictly.
  return { hook, text: strictUtf8.decode(out.bytes()) };
}

/** decodeEvent then eventToJson; throws when the frame does not decode. */
function typedJson(body: Uint8Array, mode: PayloadMode = "base64"): string {
  const r = decodeEvent(body);
  if (!r.ok) throw new Error(`decodeEvent failed: ${r.error.kind}: ${r.error.message}`);
  return eventToJson(r.event, { payload: mode });
}

/** Both paths on `body`: asserts they are byte-identical and valid JSON; returns the text. */
function bothPaths(body: Uint8Array, mode: PayloadMode = "base64", what = "frame"): string {
  const wire = wireJson(body, mode);
  assert(wire.text !== undefined, `${what}: writeFrameJsonCode failed with ${wire.hook}`);
  const typed = typedJson(body, mode);
  assertStrictEquals(typed, wire.text, `${what} (${mode}): the two JSON paths differ`);
  JSON.parse(wire.text); // valid JSON
  return wire.text;
}

function checkVector(v: Vector, mode: PayloadMode): void {
  const expected = toOurJson(v.expected, mode);
  const wire = wireJson(v.body, mode);
  if (expected === null) {
    assert(wire.hook < 0, `${v.name}: the empty frame is not an event`);
    return;
  }
  assert(wire.text !== undefined, `${v.name}: writeFrameJsonCode failed with ${wire.hook}`);
  assertStrictEquals(HOOKS[wire.hook], v.expected.hook, `${v.name}: hook index`);
  const parsed = JSON.parse(wire.text);
  assertEquals(parsed, expected, `${v.name} (${mode}): fields`);
  assertEquals(keyOrder(parsed), keyOrder(expected), `${v.name} (${mode}): key order`);
  const typed = typedJson(v.body, mode);
  assertStrictEquals(typed, wire.text, `${v.name} (${mode}): the two JSON paths differ`);
}

for (const mode of MODES) {
  Deno.test(`every vector: both JSON paths equal the mapped expectation (${mode})`, () => {
    const vectors = allVectors();
    assertStrictEquals(vectors.length, 157);
    for (const v of vectors) checkVector(v, mode);
  });
}

Deno.test("protocol.md examples, byte for byte", () => {
  const byName = new Map(fixtureVectors().map((v) => [v.name, v]));
  const examples: [string, string][] = [
    [
      "027_on_publish_typical",
      `{"hook":"on_publish","timestamp":"2026-02-23T10:58:56.146092036Z","username":"driver-24069","client_id":"dev-3b0325803cc0b2de","mountpoint":"","qos":1,"topic":"devices/a2d5ac/telemetry","payload":"eyJzZXEiOjM2NTE3OSwidGVtcCI6LTEuNywiaWQiOiJlZTcyODM2NiJ9","retain":false,"matched_acl":{"name":"default-9869","pattern":"cmd/%u/req/+"},"session_id":"cb8b5426-c10f-4f40-beb7-562fcf2a542b"}`,
    ],
    [
      "101_on_client_offline_reason_normal_disconnect",
      `{"hook":"on_client_offline","timestamp":"2026-07-22T01:02:05.423008373Z","client_id":"710e2405ac","mountpoint":"","reason":"REASON_NORMAL_DISCONNECT","username":"svc-ingest-46320","session_id":"7b61c91a-d1ca-49af-b4ad-b852fbdbf487"}`,
    ],
  ];
  for (const [name, line] of examples) {
    const v = byName.get(name)!;
    assertStrictEquals(wireJson(v.body).text, line, name);
    assertStrictEquals(typedJson(v.body), line, name);
    assertStrictEquals(JSON.stringify(toOurJson(v.expected)), line, `${name}: mapping`);
  }
});

Deno.test("writeFrameJsonCode appends: two events in one buffer are the two outputs back to back", () => {
  const [a, b] = fixtureVectors().filter((v) => v.no === 27 || v.no === 101);
  const out = new ByteBuffer(16);
  out.writeAscii("prefix\n");
  assert(writeFrameJsonCode(out, a.body, "base64") >= 0);
  out.byte(0x0a);
  assert(writeFrameJsonCode(out, b.body, "base64") >= 0);
  const text = new TextDecoder().decode(out.bytes());
  assertStrictEquals(text, `prefix\n${wireJson(a.body).text}\n${wireJson(b.body).text}`);
});

Deno.test("payload modes: utf8 text, base64 fallback for invalid UTF-8, omit", () => {
  const byNo = new Map(fixtureVectors().map((v) => [v.no, v]));
  // 027: a JSON text payload.
  const text = JSON.parse(wireJson(byNo.get(27)!.body, "utf8").text!);
  assertStrictEquals(text.payload, `{"seq":365179,"temp":-1.7,"id":"ee728366"}`);
  assertStrictEquals(text.payload_encoding, "utf8");
  assertStrictEquals(Object.keys(text).at(-1), "payload_encoding");
  // 033: an empty payload is valid (empty) text.
  const empty = JSON.parse(wireJson(byNo.get(33)!.body, "utf8").text!);
  assertStrictEquals(empty.payload, "");
  assertStrictEquals(empty.payload_encoding, "utf8");
  // Invalid UTF-8 payloads of every hook with a payload: base64, never altered.
  for (const no of [32, 64, 76, 87, 154]) {
    const v = byNo.get(no)!;
    const raw = fromBase64(v.expected.event!.payload);
    let valid = true;
    try {
      strictUtf8.decode(raw);
    } catch {
      valid = false;
    }
    assert(!valid, `${v.name}: the payload is meant to be invalid UTF-8`);
    const utf8Mode = JSON.parse(bothPaths(v.body, "utf8", v.name));
    assertStrictEquals(utf8Mode.payload, v.expected.event!.payload, v.name);
    assertStrictEquals(utf8Mode.payload_encoding, "base64", v.name);
    const b64 = JSON.parse(bothPaths(v.body, "base64", v.name));
    assertStrictEquals(b64.payload, v.expected.event!.payload, v.name);
    assert(!("payload_encoding" in b64), `${v.name}: no payload_encoding in base64 mode`);
    const omit = JSON.parse(bothPaths(v.body, "omit", v.name));
    assert(!("payload" in omit) && !("payload_encoding" in omit), `${v.name}: omit`);
  }
  // Events without a payload field never get payload_encoding.
  for (const v of fixtureVectors()) {
    if (v.expected.hook === null || PAYLOAD_HOOKS.includes(v.expected.hook)) continue;
    assert(!wireJson(v.body, "utf8").text!.includes("payload_encoding"), v.name);
  }
});

Deno.test("payload modes: a 1 MiB text payload with escapes and multi-byte characters", () => {
  const unit = `{"k":"v\\"q\\\\"}\n\té ✓ 🚗 \u2028 \u0001`;
  const payloadText = unit.repeat(Math.ceil((1 << 20) / unit.length));
  const payload = utf8.encode(payloadText);
  for (const hook of PAYLOAD_HOOKS) {
    const body = eventBody(hook, publishLike(hook, { payload }));
    const parsed = JSON.parse(bothPaths(body, "utf8", hook));
    assertStrictEquals(parsed.payload, payloadText, hook);
    assertStrictEquals(parsed.payload_encoding, "utf8", hook);
    assertStrictEquals(JSON.parse(bothPaths(body, "base64", hook)).payload, toBase64(payload));
  }
});

/** A typical event of a payload hook, in the upstream form, with overrides. */
function publishLike(hook: HookName, over: Record<string, unknown> = {}): Record<string, unknown> {
  const base: Record<string, unknown> = {
    timestamp: { seconds: 1771844336, nanos: 146092036 },
    username: "u",
    client_id: "c",
    mountpoint: "",
    qos: 1,
    topic: "t/1",
    payload: new Uint8Array([1, 2, 3]),
    retain: true,
    is_retain: true,
    persisted: true,
    reason: "queue_full",
    matched_acl: { name: "acl", pattern: "t/#" },
    session_id: "s",
  };
  const fields: Record<string, string[]> = {
    on_publish: ["is_retain", "persisted", "reason"],
    on_deliver: ["retain", "reason"],
    on_delivery_complete: ["retain", "reason"],
    on_offline_message: ["is_retain", "persisted", "reason", "matched_acl", "username"],
    on_message_drop: ["retain", "is_retain", "persisted", "username"],
  };
  for (const k of fields[hook]) delete base[k];
  return { ...base, ...over };
}

Deno.test("large payload frames (1 MiB, 5 MiB) round-trip in every mode", () => {
  const large = largeVectors();
  assertStrictEquals(large.length, 7);
  for (const v of large) {
    const size = fromBase64(v.expected.event!.payload).length;
    assert(size === 1 << 20 || size === 5 << 20, `${v.name}: payload size ${size}`);
    assert(v.body.length > size, v.name);
    for (const mode of MODES) checkVector(v, mode);
    const parsed = JSON.parse(wireJson(v.body).text!);
    assertStrictEquals(parsed.payload, v.expected.event!.payload, `${v.name}: base64 payload`);
  }
});

// A raw OnRegister value with the given string fields (bytes allowed, to send invalid UTF-8).
function rawRegister(fields: Record<number, string | Uint8Array>): Uint8Array {
  const parts = [field(1, timestampMsg(1771844336, 5))];
  for (const [no, v] of Object.entries(fields)) parts.push(field(Number(no), v));
  return anyOf(typeUrlFor("on_register"), message(...parts));
}

Deno.test("strings: control characters, quotes, U+2028/U+2029 and emoji give valid JSON", () => {
  let ctrl = "";
  for (let c = 0; c < 0x20; c++) ctrl += String.fromCharCode(c);
  const samples = [
    ctrl,
    '"\\/\u007f',
    "line\u2028sep\u2029para",
    "é✓🚗👍🏽键",
    "\u0000mixed é\n\u2028",
    // Longer than 8 KiB: the writer switches strategies for big strings.
    `${"a".repeat(9000)}\u0001"`,
    `${"é".repeat(5000)}\n`,
    "x".repeat(20000),
  ];
  for (const s of samples) {
    const body = rawRegister({ 4: s, 6: s, 8: s });
    const parsed = JSON.parse(bothPaths(body, "base64", JSON.stringify(s.slice(0, 20))));
    assertStrictEquals(parsed.username, s);
    assertStrictEquals(parsed.client_id, s);
    assertStrictEquals(parsed.session_id, s);
  }
});

Deno.test("strings: invalid UTF-8 in string fields does not crash and gives valid JSON", () => {
  const invalid = [
    [0xff],
    [0x61, 0xc3, 0x28, 0x62], // bad continuation
    [0xc0, 0xaf], // overlong "/"
    [0xed, 0xa0, 0x80], // UTF-16 surrogate encoded in UTF-8
    [0xf4, 0x90, 0x80, 0x80], // beyond U+10FFFF
    [0x61, 0xe2, 0x82], // truncated at the end
    [0x22, 0x5c, 0x0a, 0xfe, 0x22], // escapes around an invalid byte
  ].map((b) => Uint8Array.from(b));
  const lenient = new TextDecoder("utf-8", { ignoreBOM: true });
  for (const bytes of invalid) {
    const body = rawRegister({ 6: bytes, 7: message(field(1, bytes), field(2, bytes)) });
    const wire = wireJson(body);
    assert(wire.text !== undefined, `client_id ${bytes}: not written (${wire.hook})`);
    const parsed = JSON.parse(wire.text);
    // Invalid sequences become U+FFFD (WHATWG decoding); nothing else is altered.
    const text = lenient.decode(bytes);
    assertStrictEquals(parsed.client_id, text, `client_id ${bytes}`);
    assertEquals({ ...parsed.user_properties }, { [text]: text }, `user_properties ${bytes}`);
    // The typed path must not throw (see the ignored test below for what it should return).
    const r = decodeEvent(body);
    if (!r.ok) assertStrictEquals(r.error.kind, "malformed_value");
  }
});

// protobufjs 8 rejects invalid UTF-8 in proto3 strings by default (utf8_validation = VERIFY);
// lib/codec/event_decoder.ts makes it decode like the wire path (U+FFFD), and the two paths must agree.
Deno.test({
  name: "strings: invalid UTF-8 decodes the same on the typed path as on the wire path",
  fn() {
    for (const bytes of [[0xff], [0x61, 0xc3, 0x28, 0x62], [0xed, 0xa0, 0x80]]) {
      const b = Uint8Array.from(bytes);
      bothPaths(rawRegister({ 6: b, 7: message(field(1, b), field(2, b)) }), "base64", `${b}`);
    }
  },
});

Deno.test("enums: names, and unknown numbers kept as numbers", () => {
  const offline = (reason: number) =>
    anyOf(
      typeUrlFor("on_client_offline"),
      message(field(1, timestampMsg(1, 2)), field(2, "c"), field(4, reason), field(6, "s")),
    );
  assertStrictEquals(JSON.parse(bothPaths(offline(17))).reason, "REASON_TCP_CLOSED");
  assertStrictEquals(JSON.parse(bothPaths(offline(99))).reason, 99);
  assertStrictEquals(JSON.parse(bothPaths(offline(-1))).reason, -1);
  assertStrictEquals(JSON.parse(bothPaths(offline(2 ** 31 - 1))).reason, 2 ** 31 - 1);
  const failed = anyOf(
    typeUrlFor("on_register_failed"),
    message(field(1, timestampMsg(1)), field(3, "c"), field(7, true), field(8, 99)),
  );
  const parsed = JSON.parse(bothPaths(failed));
  assertStrictEquals(parsed.reason, 99);
  assertStrictEquals(parsed.clean_session, true);
  const r = decodeEvent(failed);
  assert(r.ok && r.event.hook === "on_register_failed");
  assertStrictEquals(r.event.reason, 99);
  // Same number, other enum: 1 is NOT_AUTHORIZED for Reason, NO_MATCHING_HOOK_FOUND here.
  const failed1 = anyOf(typeUrlFor("on_register_failed"), message(field(8, 1)));
  assertStrictEquals(JSON.parse(bothPaths(failed1)).reason, "REASON_NO_MATCHING_HOOK_FOUND");
  assertStrictEquals(JSON.parse(bothPaths(offline(1))).reason, "REASON_NOT_AUTHORIZED");
});

Deno.test("timestamps: RFC 3339 UTC with 9 digits, large and negative int64 seconds", () => {
  const byNo = new Map(fixtureVectors().map((v) => [v.no, v]));
  // Literal expectations for the vectors (independent of the mapping helper).
  assertStrictEquals(
    JSON.parse(wireJson(byNo.get(97)!.body).text!).timestamp,
    "2100-01-01T00:00:00.999999999Z",
  );
  assertStrictEquals(
    JSON.parse(wireJson(byNo.get(98)!.body).text!).timestamp,
    "1970-01-01T00:00:00.000000001Z",
  );
  // The helper against known instants.
  assertStrictEquals(rfc3339(0n, 0), "1970-01-01T00:00:00.000000000Z");
  assertStrictEquals(rfc3339(951782400n, 7), "2000-02-29T00:00:00.000000007Z");
  assertStrictEquals(rfc3339(-1n, 5), "1969-12-31T23:59:59.000000005Z");
  assertStrictEquals(rfc3339(253402300799n, 0), "9999-12-31T23:59:59.000000000Z");
  const cases: [bigint, number, string][] = [
    [0n, 0, "1970-01-01T00:00:00.000000000Z"],
    [1n, 0, "1970-01-01T00:00:01.000000000Z"],
    [4102444800n, 999999999, "2100-01-01T00:00:00.999999999Z"],
    [2n ** 32n, 1, rfc3339(2n ** 32n, 1)], // 2106, past uint32
    [2n ** 40n, 123456789, rfc3339(2n ** 40n, 123456789)], // year 36812
    [-1n, 5, "1969-12-31T23:59:59.000000005Z"],
    [-62135596800n, 0, "0001-01-01T00:00:00.000000000Z"],
    [253402300799n, 999999999, "9999-12-31T23:59:59.999999999Z"],
  ];
  assert(rfc3339(2n ** 40n, 0).startsWith("+036812-"), rfc3339(2n ** 40n, 0));
  for (const [seconds, nanos, text] of cases) {
    const body = anyOf(
      typeUrlFor("on_session_expired"),
      message(field(1, timestampMsg(seconds, nanos)), field(2, "c")),
    );
    assertStrictEquals(JSON.parse(bothPaths(body)).timestamp, text, `seconds ${seconds}`);
    const r = decodeEvent(body);
    assert(r.ok);
    assertStrictEquals(r.event.timestamp.seconds, seconds);
    assertStrictEquals(r.event.timestamp.nanos, nanos);
  }
  // Absent timestamp, empty timestamp: the epoch.
  for (const value of [message(field(2, "c")), message(field(1, new Uint8Array(0)))]) {
    const body = anyOf(typeUrlFor("on_session_expired"), value);
    assertStrictEquals(JSON.parse(bothPaths(body)).timestamp, "1970-01-01T00:00:00.000000000Z");
  }
});

Deno.test("maps: duplicate keys (last wins), missing key or value, awkward keys", () => {
  const entry = (k?: string, v?: string) =>
    field(
      7,
      message(...(k === undefined ? [] : [field(1, k)]), ...(v === undefined ? [] : [field(2, v)])),
    );
  const body = anyOf(
    typeUrlFor("on_register"),
    message(
      field(1, timestampMsg(1)),
      entry("a", "1"),
      entry("b", "2"),
      entry("a", "3"),
      entry(undefined, "no-key"),
      entry("no-value", undefined),
      entry("b", "4"),
      entry("a", "5"),
      entry("constructor", "c"),
      entry("é 🚗", "\u2028"),
    ),
  );
  const parsed = JSON.parse(bothPaths(body));
  assertEquals({ ...parsed.user_properties }, {
    a: "5",
    b: "4",
    "": "no-key",
    "no-value": "",
    constructor: "c",
    "é 🚗": "\u2028",
  });
  // Vector 007 carries a duplicate key on the wire.
  const v7 = fixtureVectors().find((v) => v.no === 7)!;
  assertEquals({ ...JSON.parse(bothPaths(v7.body)).user_properties }, {
    dup: "last-c4",
    other: "a2f9",
  });
});

Deno.test("maps: a __proto__ key is kept like any other key", () => {
  // JSON.parse makes "__proto__" an own property, so it compares like any key.
  const body = anyOf(
    typeUrlFor("on_register"),
    message(
      field(1, timestampMsg(1)),
      field(7, message(field(1, "__proto__"), field(2, "p"))),
      field(7, message(field(1, "k"), field(2, "v"))),
    ),
  );
  const wire = JSON.parse(wireJson(body).text!);
  assertEquals(Object.keys(wire.user_properties), ["__proto__", "k"]);
  assertStrictEquals(
    Object.getOwnPropertyDescriptor(wire.user_properties, "__proto__")?.value,
    "p",
  );
  const typed = JSON.parse(typedJson(body));
  assertEquals(
    Object.keys(typed.user_properties),
    ["__proto__", "k"],
    "typed path drops __proto__",
  );
});

Deno.test("wire variations: explicit defaults, reversed field order, unknown fields", () => {
  const rng = mulberry32(7);
  for (const v of fixtureVectors()) {
    if (v.expected.hook === null) continue;
    const hook = v.expected.hook;
    const expected = JSON.stringify(toOurJson(v.expected));
    // Explicit defaults on the wire read the same as absent fields. (Map vectors excluded:
    // protobufjs encodes the de-duplicated map, the expected form is the same anyway.)
    const explicit = eventBody(hook, v.expected.event!, { keepDefaults: true });
    assertEquals(JSON.parse(bothPaths(explicit, "base64", v.name)), JSON.parse(expected));
    // Fields in descending number order (repeated ones keep their relative order), and unknown
    // fields of every wire type sprinkled in.
    const value = encodeEvent(hook, v.expected.event!);
    const fields = splitFields(value).sort((a, b) => b[0] - a[0]).map((f) => f[1]);
    const unknown = [
      field(99, 12345),
      field(100, randomBytes(5, rng)),
      Uint8Array.from([0xa5, 0x06, 1, 2, 3, 4]), // field 100, fixed32
      Uint8Array.from([0xa1, 0x06, 1, 2, 3, 4, 5, 6, 7, 8]), // field 100, fixed64
    ];
    const shuffled = message(...fields.flatMap((f, i) => [f, unknown[i % unknown.length]]));
    const envelope = message(
      field(3, "ignored envelope field"),
      field(1, typeUrlFor(hook)),
      field(2, shuffled),
    );
    const parsed = JSON.parse(bothPaths(envelope, "base64", v.name));
    assertEquals(parsed, JSON.parse(expected), `${v.name}: reordered`);
    assertEquals(keyOrder(parsed), keyOrder(JSON.parse(expected)), `${v.name}: key order`);
  }
});

/** Splits an encoded message into its top-level fields: [field number, raw bytes]. */
function splitFields(msg: Uint8Array): [number, Uint8Array][] {
  const out: [number, Uint8Array][] = [];
  let pos = 0;
  const varint = () => {
    let v = 0, shift = 0, b = 0;
    do {
      b = msg[pos++];
      v += (b & 0x7f) * 2 ** shift;
      shift += 7;
    } while (b & 0x80);
    return v;
  };
  while (pos < msg.length) {
    const start = pos;
    const t = varint();
    if ((t & 7) === 0) varint();
    else if ((t & 7) === 2) {
      const n = varint(); // (not `pos += varint()`: that reads pos before varint moves it)
      pos += n;
    } else throw new Error(`unexpected wire type ${t & 7}`);
    out.push([Math.floor(t / 8), msg.subarray(start, pos)]);
  }
  return out;
}

Deno.test("an Any without value is an event with every field at its default", () => {
  const body = anyOf(typeUrlFor("on_publish"), new Uint8Array(0));
  const onlyUrl = message(field(1, typeUrlFor("on_publish")));
  const expected = {
    hook: "on_publish",
    timestamp: "1970-01-01T00:00:00.000000000Z",
    username: "",
    client_id: "",
    mountpoint: "",
    qos: 0,
    topic: "",
    payload: "",
    retain: false,
    matched_acl: { name: "", pattern: "" },
    session_id: "",
  };
  for (const b of [body, onlyUrl]) {
    const text = bothPaths(b);
    assertStrictEquals(text, JSON.stringify(expected));
  }
});

Deno.test("subscriptions: refused topics (qos 128) and empty matched_acl", () => {
  const topic = (t: string, qos: number, acl?: [string, string]) =>
    field(
      5,
      message(
        field(1, t),
        ...(qos ? [field(2, qos)] : []),
        ...(acl ? [field(3, message(field(1, acl[0]), field(2, acl[1])))] : []),
      ),
    );
  const body = anyOf(
    typeUrlFor("on_subscribe"),
    message(
      field(1, timestampMsg(10, 20)),
      field(2, "c"),
      topic("a/#", 1, ["n", "a/#"]),
      topic("denied", 128),
      topic("zero", 0, ["", ""]),
    ),
  );
  assertEquals(JSON.parse(bothPaths(body)).topics, [
    { topic: "a/#", qos: 1, matched_acl: { name: "n", pattern: "a/#" } },
    { topic: "denied", qos: 128, matched_acl: { name: "", pattern: "" } },
    { topic: "zero", qos: 0, matched_acl: { name: "", pattern: "" } },
  ]);
});

Deno.test("a value that is not an event is MALFORMED_VALUE for the JSON writer", () => {
  // Detailed bad-input coverage lives in event_decoder_test.ts; this pins the exported constant.
  const body = anyOf(typeUrlFor("on_publish"), Uint8Array.from([0x0a, 0x05, 0x01]));
  const out = new ByteBuffer(8);
  assertStrictEquals(writeFrameJsonCode(out, body, "base64"), MALFORMED_VALUE);
  assertStrictEquals(out.pos, 0);
});

Deno.test("writeFrameJson (public): a typed result — the hook, or the same failure kind decodeEvent reports — and the same bytes as the numeric path, from shared frozen results", () => {
  const frames: Uint8Array[] = [
    ...fixtureVectors().map((v) => v.body),
    new Uint8Array(0), // empty
    anyOf("type.googleapis.com/other.v1.Thing", new Uint8Array([8, 1])), // unknown type
    new Uint8Array([0x0a, 0x7f]), // malformed envelope (length past the end)
    anyOf(typeUrlFor("on_publish"), new Uint8Array([0x40, 0x80])), // malformed value
  ];
  const seen = new Map<string, unknown>();
  let failures = 0;
  for (const frame of frames) {
    const typed = new ByteBuffer(), numeric = new ByteBuffer();
    const r = writeFrameJson(typed, frame, "base64");
    const code = writeFrameJsonCode(numeric, frame, "base64");
    assertEquals(typed.bytes(), numeric.bytes());
    const d = decodeEvent(frame);
    assertEquals(r.ok, d.ok, "writer and decoder accept the same frames");
    if (r.ok) {
      assertEquals(r.hook, HOOKS[code]);
      assertEquals(d.ok && d.event.hook, r.hook);
    } else {
      failures++;
      assertEquals(typed.pos, 0, "nothing written");
      assertEquals(r.error, d.ok ? "" : d.error.kind);
    }
    assert(Object.isFrozen(r));
    const key = r.ok ? r.hook : r.error;
    if (seen.has(key)) assertStrictEquals(r, seen.get(key), "one shared result per hook/reason");
    seen.set(key, r);
  }
  assert(failures >= 4, `failures: ${failures}`); // the four built above (and any refusing vector)
  assertEquals(
    [...seen.keys()].filter((k) => !(HOOKS as readonly string[]).includes(k)).sort(),
    ["empty", "malformed_envelope", "malformed_value", "unknown_type"],
  );
});

// Typed decoding: every vector to the expected typed event; bad inputs of every kind, for
// decodeEvent and writeFrameJsonCode; the decoder stays usable after errors.
import {
  ByteBuffer,
  DecodeError,
  type DecodeErrorKind,
  decodeEvent,
  MALFORMED_ENVELOPE,
  MALFORMED_VALUE,
  UNKNOWN_TYPE,
  writeFrameJsonCode,
} from "../lib/internal.ts";
import { assert, assertBytesEqual, assertEquals, assertStrictEquals } from "./_assert.ts";
import {
  allVectors,
  anyOf,
  encodeEvent,
  eventBody,
  EXPECTED_HOOKS,
  EXPECTED_MESSAGES,
  field,
  fixtureVectors,
  type HookName,
  message,
  timestampMsg,
  toOurJson,
  toTypedEvent,
  typeUrlFor,
  type Vector,
} from "./_vectors.ts";

// deno-lint-ignore no-explicit-any
type Json = any;

/** The event with its map fields as plain objects (their prototype is not part of the API). */
function plain(event: Json): Json {
  const out = { ...event };
  if (event.user_properties !== undefined) {
    const proto = Object.getPrototypeOf(event.user_properties);
    assert(proto === null || proto === Object.prototype, "user_properties is a plain record");
    out.user_properties = {};
    for (const k of Object.keys(event.user_properties)) {
      Object.defineProperty(out.user_properties, k, {
        value: event.user_properties[k],
        enumerable: true,
        writable: true,
        configurable: true,
      });
    }
  }
  return out;
}

function checkTyped(v: Vector): void {
  const r = decodeEvent(v.body);
  if (v.expected.hook === null) {
    assert(!r.ok, `${v.name}: the empty frame is not an event`);
    assertStrictEquals(r.error.kind, "empty");
    return;
  }
  assert(r.ok, `${v.name}: ${!r.ok && r.error.message}`);
  const expected = toTypedEvent(v.expected);
  assertEquals(plain(r.event), expected, v.name);
  assertEquals(Object.keys(r.event), Object.keys(expected), `${v.name}: key order`);
  assertStrictEquals(typeof r.event.timestamp.seconds, "bigint", `${v.name}: seconds`);
  if ("payload" in r.event) assert(r.event.payload instanceof Uint8Array, `${v.name}: payload`);
}

Deno.test("every vector decodes to the expected typed event", () => {
  const vectors = allVectors();
  assertStrictEquals(vectors.length, 157);
  for (const v of vectors) checkTyped(v);
});

Deno.test("typed events: payload bytes and int64 seconds are exact", () => {
  const v34 = allVectors().find((v) => v.no === 34)!;
  const r = decodeEvent(v34.body);
  assert(r.ok && r.event.hook === "on_publish");
  assertStrictEquals(r.event.payload.length, 1 << 20);
  assertBytesEqual(r.event.payload, toTypedEvent(v34.expected).payload);
  const big = anyOf(
    typeUrlFor("on_session_expired"),
    message(field(1, timestampMsg(2n ** 40n + 1n, 999_999_999))),
  );
  const b = decodeEvent(big);
  assert(b.ok);
  assertEquals(b.event.timestamp, { seconds: 2n ** 40n + 1n, nanos: 999_999_999 });
  const negative = decodeEvent(
    anyOf(typeUrlFor("on_session_expired"), message(field(1, timestampMsg(-5n, 1)))),
  );
  assert(negative.ok);
  assertEquals(negative.event.timestamp, { seconds: -5n, nanos: 1 });
});

Deno.test("the test encoder reproduces the upstream bytes (maps aside)", () => {
  // protobufjs on proto/ with defaults dropped gives the upstream encoder's exact bytes; only
  // maps differ (the upstream .json lists map keys sorted and collapses duplicates).
  let checked = 0;
  for (const v of fixtureVectors()) {
    if (v.expected.hook === null) continue;
    if (Object.keys(v.expected.event!.user_properties ?? {}).length > 1) continue;
    assertBytesEqual(eventBody(v.expected.hook, v.expected.event!), v.body, v.name);
    checked++;
  }
  assert(checked >= 140, `only ${checked} vectors compared`);
});

interface Bad {
  what: string;
  frame: Uint8Array;
  kind: DecodeErrorKind;
  typeUrl: string;
  code: number;
}

const b = (...bytes: number[]) => Uint8Array.from(bytes);

/** Garbage that is not a google.protobuf.Any. */
const BAD_ENVELOPES: Bad[] = [
  ["truncated tag varint", b(0xff)],
  ["type_url longer than the frame", b(0x0a, 0x05, 0x61)],
  ["value longer than the frame", concat2(field(1, typeUrlFor("on_publish")), b(0x12, 0x10, 0x0a))],
  ["type_url as a varint", b(0x08, 0x01)],
  ["value as a varint", concat2(field(1, typeUrlFor("on_publish")), b(0x10, 0x01))],
  ["field number 0", b(0x00, 0x01)],
  ["truncated value length", concat2(field(1, typeUrlFor("on_publish")), b(0x12, 0x80))],
  ["invalid wire type 7", b(0x0f)],
  ["unknown field with invalid wire type 6", concat2(field(1, typeUrlFor("on_publish")), b(0x1e))],
  ["truncated fixed64 unknown field", b(0x19, 0x01, 0x02)],
].map(([what, frame]) => ({
  what: what as string,
  frame: frame as Uint8Array,
  kind: "malformed_envelope",
  typeUrl: "",
  code: MALFORMED_ENVELOPE,
}));

function concat2(a: Uint8Array, c: Uint8Array): Uint8Array {
  return message(a, c);
}

/** A valid Any around bytes that are not the announced message. */
const BAD_VALUES: Bad[] = (Object.keys(EXPECTED_HOOKS) as HookName[]).flatMap((hook) =>
  [
    ["truncated timestamp", b(0x0a, 0x05, 0x01)],
    ["truncated varint", b(0x10 | 0x08, 0xff)], // field 3 varint, unfinished
    ["invalid wire type 7", b(0x0f)],
    ["string longer than the message", b(0x0a, 0x00, 0x12, 0x7f, 0x41)],
    ["varint of 11 bytes", b(0x0a, 0x02, 0x08, ...Array(10).fill(0xff), 0x01)],
    ["garbage inside the timestamp", b(0x0a, 0x02, 0xff, 0xff)],
    ["garbage", b(0xff, 0xff, 0xff, 0xff)],
  ].map(([what, value]) => ({
    what: `${hook}: ${what}`,
    frame: anyOf(typeUrlFor(hook), value as Uint8Array),
    kind: "malformed_value" as const,
    typeUrl: typeUrlFor(hook),
    code: MALFORMED_VALUE,
  }))
);

/** Garbage inside nested messages of the hooks that have them. */
const BAD_NESTED: Bad[] = [
  ["on_publish", 9], // matched_acl
  ["on_deliver", 9],
  ["on_message_drop", 8],
  ["on_subscribe", 5], // topics
  ["on_register", 7], // user_properties entry
].map(([hook, no]) => ({
  what: `${hook}: garbage in field ${no}`,
  frame: anyOf(
    typeUrlFor(hook as HookName),
    message(field(1, timestampMsg(1)), field(no as number, b(0x0a, 0x05, 0x61))),
  ),
  kind: "malformed_value",
  typeUrl: typeUrlFor(hook as HookName),
  code: MALFORMED_VALUE,
}));

const PUBLISH_VALUE = message(field(1, timestampMsg(1, 1)), field(3, "c"), field(6, "t"));
const BAD_TYPES: Bad[] = [
  "type.googleapis.com/eventssidecar.v1.OnAuthM5",
  "type.googleapis.com/eventssidecar.v1.onpublish",
  "type.googleapis.com/eventssidecar.v2.OnPublish",
  "type.googleapis.com/eventssidecar.v1.OnPublish ",
  "type.googleapis.com/eventssidecar.v1.MatchedACL",
  "type.googleapis.com/google.protobuf.Timestamp",
  "OnPublish",
  "",
].map((url) => ({
  what: `type_url ${JSON.stringify(url)}`,
  frame: url === "" ? message(field(2, PUBLISH_VALUE)) : anyOf(url, PUBLISH_VALUE),
  kind: "unknown_type",
  typeUrl: url,
  code: UNKNOWN_TYPE,
}));

const EMPTY: Bad = {
  what: "empty frame",
  frame: new Uint8Array(0),
  kind: "empty",
  typeUrl: "",
  code: UNKNOWN_TYPE,
};

const ALL_BAD: Bad[] = [...BAD_ENVELOPES, ...BAD_VALUES, ...BAD_NESTED, ...BAD_TYPES, EMPTY];

function checkBad(bad: Bad): void {
  const r = decodeEvent(bad.frame);
  assert(!r.ok, `${bad.what}: decoded as ${r.ok && r.event.hook}`);
  assert(r.error instanceof DecodeError && r.error instanceof Error, bad.what);
  assertStrictEquals(r.error.name, "DecodeError", bad.what);
  assertStrictEquals(r.error.kind, bad.kind, `${bad.what}: kind`);
  assertStrictEquals(r.error.typeUrl, bad.typeUrl, `${bad.what}: typeUrl`);
  assertBytesEqual(r.error.raw, bad.frame, `${bad.what}: raw`);
  // The JSON writer: the matching code, and the buffer exactly as it was.
  const out = new ByteBuffer(16);
  out.writeAscii("kept\n");
  const before = out.bytes().slice();
  assertStrictEquals(writeFrameJsonCode(out, bad.frame, "base64"), bad.code, `${bad.what}: code`);
  assertStrictEquals(out.pos, before.length, `${bad.what}: bytes written`);
  assertBytesEqual(out.bytes(), before, `${bad.what}: buffer`);
}

Deno.test("garbage Any: malformed_envelope / MALFORMED_ENVELOPE", () => {
  BAD_ENVELOPES.forEach(checkBad);
});

Deno.test("valid Any with garbage inside: malformed_value / MALFORMED_VALUE, buffer untouched", () => {
  BAD_VALUES.forEach(checkBad);
  BAD_NESTED.forEach(checkBad);
});

Deno.test("unknown type_url: unknown_type with the type_url and raw bytes kept", () => {
  BAD_TYPES.forEach(checkBad);
  const r = decodeEvent(BAD_TYPES[0].frame);
  assert(!r.ok);
  assert(r.error.message.includes("OnAuthM5"), r.error.message);
});

Deno.test("empty frame: empty", () => {
  checkBad(EMPTY);
});

Deno.test("the decoder and the JSON writer stay usable after every kind of error", () => {
  const good = fixtureVectors().filter((v) => v.expected.hook !== null);
  const out = new ByteBuffer(64);
  ALL_BAD.forEach((bad, i) => {
    checkBad(bad);
    const v = good[i % good.length];
    checkTyped(v);
    out.reset();
    const hook = writeFrameJsonCode(out, v.body, "utf8");
    assert(hook >= 0, `${v.name} after ${bad.what}`);
    assertEquals(
      JSON.parse(new TextDecoder().decode(out.bytes())),
      toOurJson(v.expected, "utf8"),
      `${v.name} after ${bad.what}`,
    );
  });
});

Deno.test("a value cut anywhere: both paths agree, never throw, never write on failure", () => {
  // Every prefix of every vector's event message, re-wrapped in a correct Any: a cut at a
  // field boundary is a valid event with fewer fields, any other cut is malformed_value.
  for (const v of fixtureVectors()) {
    if (v.expected.hook === null) continue;
    const value = encodeEvent(v.expected.hook, v.expected.event!);
    let events = 0;
    for (let n = 0; n < value.length; n++) {
      const frame = anyOf(typeUrlFor(v.expected.hook), value.subarray(0, n));
      const r = decodeEvent(frame);
      const out = new ByteBuffer(64);
      const code = writeFrameJsonCode(out, frame, "base64");
      assertStrictEquals(r.ok, code >= 0, `${v.name} cut at ${n}: paths disagree`);
      if (!r.ok) {
        assertStrictEquals(r.error.kind, "malformed_value", `${v.name} cut at ${n}`);
        assertStrictEquals(code, MALFORMED_VALUE, `${v.name} cut at ${n}`);
        assertStrictEquals(out.pos, 0, `${v.name} cut at ${n}: wrote on failure`);
      } else events++;
    }
    assert(events >= 1, `${v.name}: no cut at a field boundary decoded`);
  }
});

Deno.test("every message of the schema has a decodable all-defaults form", () => {
  for (const hook of Object.keys(EXPECTED_HOOKS) as HookName[]) {
    const r = decodeEvent(anyOf(typeUrlFor(hook), new Uint8Array(0)));
    assert(r.ok, hook);
    const fields = EXPECTED_MESSAGES[EXPECTED_HOOKS[hook]].map((f) => f[1]);
    assertEquals(Object.keys(r.event), ["hook", ...fields], hook);
  }
});

// A known field with the wrong wire type, or an unknown field encoded as a group (wire types
// 3/4), is skipped as unknown (as protoc-generated parsers and protobufjs do) by both paths.
Deno.test({
  name: "wire-type mismatches and unknown groups: both paths agree",
  fn() {
    const cases: [HookName, Uint8Array][] = [
      ["on_session_expired", message(field(1, timestampMsg(1)), b(0x10, 0x00))], // client_id as varint
      ["on_publish", message(field(5, "x"))], // qos as bytes
      ["on_unsubscribe", message(field(5, 3))], // topics as varint
      ["on_session_expired", message(field(1, timestampMsg(1)), b(0x7b, 0x08, 0x01, 0x7c))], // group
    ];
    for (const [hook, value] of cases) {
      const frame = anyOf(typeUrlFor(hook), value);
      const out = new ByteBuffer(64);
      const code = writeFrameJsonCode(out, frame, "base64");
      assertStrictEquals(decodeEvent(frame).ok, code >= 0, `${hook} ${value}`);
    }
  },
});

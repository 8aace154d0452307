// The one protobuf writer: encodeEvent / frameOf give the plugin's exact bytes for every
// vector, eventToJson (encode + the one JSON writer) equals the wire path, and bad typed input
// is refused with the field named.
import { decodeEvent, eventToJson, type SidecarEvent } from "../lib/mod.ts";
import { encodeEvent, frameOf } from "../lib/testing.ts";
import { ByteBuffer, PAYLOAD_MODES, writeFrameJsonCode } from "../lib/internal.ts";
import {
  assert,
  assertBytesEqual,
  assertEquals,
  assertStrictEquals,
  assertThrows,
} from "./_assert.ts";
import {
  allVectors,
  anyOf,
  field,
  message,
  timestampMsg,
  toTypedEvent,
  typeUrlFor,
} from "./_vectors.ts";

// deno-lint-ignore no-explicit-any
type Json = any;

function decoded(body: Uint8Array): SidecarEvent {
  const r = decodeEvent(body);
  if (!r.ok) throw r.error;
  return r.event;
}

Deno.test("encodeEvent/frameOf: every vector's frame, byte for byte, from its decoded event", () => {
  let same = 0;
  for (const v of allVectors()) {
    if (v.expected.hook === null) continue;
    const event = decoded(v.body);
    const keys = Object.keys((v.expected.event as Json).user_properties ?? {});
    const wireEntries = v.name.includes("duplicate_user_property_keys");
    if (wireEntries) {
      // Duplicate map keys collapse in the typed form: the re-encoding decodes to the same event.
      assertEquals(decoded(frameOf(event).subarray(4)), event, v.name);
      assert(keys.length > 0);
      continue;
    }
    assertBytesEqual(frameOf(event), v.wire, v.name);
    same++;
  }
  assert(same >= 150, `${same} vectors byte-identical`);
});

Deno.test("encodeEvent: the upstream expectation's typed form encodes to the vector's value", () => {
  let checked = 0;
  for (const v of allVectors()) {
    if (v.expected.hook === null) continue;
    if (Object.keys(v.expected.event!.user_properties ?? {}).length > 1) continue; // sorted in .json
    const value = encodeEvent(toTypedEvent(v.expected));
    assertBytesEqual(anyOf(typeUrlFor(v.expected.hook), value), v.body, v.name);
    checked++;
  }
  assert(checked >= 140, `${checked} vectors`);
});

Deno.test("eventToJson is the wire writer's output on every vector, in every payload mode", () => {
  const out = new ByteBuffer(1 << 20);
  for (const v of allVectors()) {
    if (v.expected.hook === null) continue;
    const event = decoded(v.body);
    for (const payload of PAYLOAD_MODES) {
      out.reset();
      assert(writeFrameJsonCode(out, v.body, payload) >= 0);
      assertStrictEquals(
        eventToJson(event, { payload }),
        new TextDecoder().decode(out.bytes()),
        `${v.name} ${payload}`,
      );
    }
  }
});

Deno.test("encodeEvent: int64 seconds, negative int32, unknown enum numbers and empty sub-messages", () => {
  const event = {
    hook: "on_client_offline",
    timestamp: { seconds: -(2n ** 63n), nanos: -1 },
    client_id: "c",
    mountpoint: "",
    reason: 99,
    username: "",
    session_id: "",
  } as unknown as SidecarEvent;
  const value = encodeEvent(event);
  const again = decoded(anyOf(typeUrlFor("on_client_offline"), value));
  assertEquals(again, event);
  // timestamp is always sent (here with both fields), reason 99 as a varint.
  assertBytesEqual(
    value,
    message(field(1, message(field(1, -(2n ** 63n)), field(2, -1))), field(2, "c"), field(4, 99)),
  );
  const wakeup = { hook: "on_client_wakeup", timestamp: { seconds: 0n, nanos: 0 } } as SidecarEvent;
  assertBytesEqual(
    encodeEvent(wakeup),
    message(field(1, timestampMsg(0))),
    "absent fields are defaults",
  );
  const publish = {
    hook: "on_publish",
    timestamp: { seconds: 1n, nanos: 0 },
    qos: -2,
  } as unknown as SidecarEvent;
  // matched_acl is always present, like the plugin sends it.
  assertBytesEqual(
    encodeEvent(publish),
    message(field(1, timestampMsg(1)), field(5, -2), field(9, new Uint8Array(0))),
  );
});

Deno.test("encodeEvent: wrong types are refused with the field named", () => {
  const base = { hook: "on_publish", timestamp: { seconds: 1n, nanos: 0 } };
  const bad: [Json, string][] = [
    [{ ...base, hook: "on_nothing" }, "event.hook"],
    [{ ...base, client_id: 5 }, "event.client_id"],
    [{ ...base, payload: "text" }, "event.payload"],
    [{ ...base, qos: 1.5 }, "event.qos"],
    [{ ...base, qos: 2 ** 31 }, "event.qos"],
    [{ ...base, matched_acl: { name: 1 } }, "event.matched_acl.name"],
    [{ ...base, timestamp: { seconds: 1.5, nanos: 0 } }, "event.timestamp.seconds"],
    [
      { hook: "on_client_offline", timestamp: base.timestamp, reason: "REASON_NOPE" },
      "event.reason",
    ],
    [
      { hook: "on_register", timestamp: base.timestamp, user_properties: { a: 1 } },
      'event.user_properties["a"]',
    ],
  ];
  for (const [event, path] of bad) {
    const e = assertThrows(() => encodeEvent(event), TypeError);
    assert(e.message.includes(path), `${e.message} names ${path}`);
  }
});

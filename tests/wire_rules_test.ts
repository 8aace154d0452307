// The wire rules of issue 11 §5.3 (decided once, in wire/cursor.ts, after protobuf-go's
// protowire): both paths — decodeEvent and writeFrameJsonCode — accept or refuse each case alike.
import { ByteBuffer, decodeEvent, MALFORMED_VALUE, writeFrameJsonCode } from "../lib/internal.ts";
import { assertEquals, assertStrictEquals } from "./_assert.ts";
import { anyOf, field, message, typeUrlFor } from "./_vectors.ts";

const b = (...x: number[]) => Uint8Array.from(x);
/** on_session_expired: 1 timestamp, 2 client_id, 3 mountpoint, 4 session_id. */
const URL = typeUrlFor("on_session_expired");

/** What both paths make of `value`: "ok" or "malformed_value" (they must agree). */
function outcome(value: Uint8Array): string {
  const frame = anyOf(URL, value);
  const out = new ByteBuffer(64);
  const code = writeFrameJsonCode(out, frame, "base64");
  const r = decodeEvent(frame);
  const writer = code >= 0 ? "ok" : code === MALFORMED_VALUE ? "malformed_value" : `${code}`;
  const decoder = r.ok ? "ok" : r.error.kind;
  assertStrictEquals(writer, decoder, `writer ${writer} vs decoder ${decoder} on ${value}`);
  if (code < 0) assertStrictEquals(out.pos, 0);
  return writer;
}

function clientId(value: Uint8Array): string {
  const r = decodeEvent(anyOf(URL, value));
  if (!r.ok) throw r.error;
  return (r.event as { client_id: string }).client_id;
}

const c = field(2, "c"); // client_id "c"
const groupOf = (nos: number[], ends = nos.slice().reverse()) =>
  b(...nos.flatMap((n) => varintOf(n * 8 + 3)), ...ends.flatMap((n) => varintOf(n * 8 + 4)));
function varintOf(v: number): number[] {
  const out: number[] = [];
  while (v >= 0x80) out.push((v & 0x7f) | 0x80), v = Math.floor(v / 128);
  return [...out, v];
}

Deno.test("wire rules: a varint is at most 10 bytes and its 10th byte holds only bit 63", () => {
  const nine = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff];
  // Unknown field 9 (varint) carrying -1 in ten bytes: fine; 0x02 in the 10th byte: not.
  assertEquals(outcome(message(c, b(0x48, ...nine, 0x01))), "ok");
  assertEquals(outcome(message(c, b(0x48, ...nine, 0x02))), "malformed_value");
  assertEquals(outcome(message(c, b(0x48, ...nine, 0x80, 0x00))), "malformed_value"); // 11 bytes
  // A padded tag (unknown field 9, varint 1): ten bytes fine, eleven not.
  const pad = (n: number) => Array.from({ length: n }, () => 0x80);
  assertEquals(outcome(message(c, b(0xc8, ...pad(8), 0x00, 0x01))), "ok");
  assertEquals(outcome(message(c, b(0xc8, ...pad(9), 0x00, 0x01))), "malformed_value");
});

Deno.test("wire rules: a length is read with all 64 bits (2³² + n is not n)", () => {
  // client_id with length 2³² + 1 followed by one byte: a 32-bit reading would see length 1.
  assertEquals(outcome(b(0x12, 0x81, 0x80, 0x80, 0x80, 0x10, 0x63)), "malformed_value");
  assertEquals(outcome(b(0x12, 0x81, 0x80, 0x80, 0x80, 0x00, 0x63)), "ok"); // padded 1
  assertEquals(clientId(b(0x12, 0x81, 0x80, 0x80, 0x80, 0x00, 0x63)), "c");
});

Deno.test("wire rules: groups end with their own number, nested at most 100 deep", () => {
  assertEquals(outcome(message(c, groupOf([12]))), "ok");
  assertEquals(outcome(message(c, groupOf([12, 13], [13, 12]))), "ok");
  assertEquals(outcome(message(c, groupOf([12], [13]))), "malformed_value"); // mismatched end
  assertEquals(outcome(message(c, groupOf([12, 13], [12, 13]))), "malformed_value");
  const deep = (n: number) => groupOf(Array.from({ length: n }, (_, i) => 12 + i));
  assertEquals(outcome(message(c, deep(100))), "ok");
  assertEquals(outcome(message(c, deep(101))), "malformed_value");
  assertEquals(outcome(message(c, b(0x64))), "malformed_value"); // an end-group without a start
  assertEquals(outcome(message(c, b(0x63))), "malformed_value"); // unterminated
  assertEquals(clientId(message(c, deep(100))), "c");
});

Deno.test("wire rules: field numbers are 1..2²⁹−1; wire types 6 and 7 are malformed", () => {
  assertEquals(outcome(message(c, b(0x00, 0x01))), "malformed_value"); // field 0, varint
  assertEquals(outcome(message(c, b(0x02, 0x00))), "malformed_value"); // field 0, bytes
  assertEquals(outcome(message(c, b(0x80, 0x00, 0x01))), "malformed_value"); // field 0, padded tag
  assertEquals(outcome(message(c, b(...varintOf((2 ** 29 - 1) * 8), 0x01))), "ok");
  assertEquals(outcome(message(c, b(...varintOf(2 ** 29 * 8), 0x01))), "malformed_value");
  assertEquals(
    outcome(message(c, b(...varintOf(2 ** 32 * 8 + 2 * 8 + 2), 0x00))),
    "malformed_value",
  );
  assertEquals(outcome(message(c, b(0x4e, 0x01))), "malformed_value"); // wire type 6
  assertEquals(outcome(message(c, b(0x4f, 0x01))), "malformed_value"); // wire type 7
});

Deno.test("wire rules: a known number with another wire type is an unknown field (skipped)", () => {
  assertEquals(outcome(message(c, b(0x10, 0x05))), "ok"); // client_id as a varint
  assertEquals(clientId(message(c, b(0x10, 0x05))), "c");
  assertEquals(clientId(message(c, b(0x15, 1, 2, 3, 4), b(0x13, 0x14))), "c"); // i32, group
});

Deno.test("wire rules: bool is any non-zero 64-bit varint; int32 takes the low 32 bits, signed", () => {
  const publish = typeUrlFor("on_publish"); // 5 qos (int32), 8 retain (bool)
  const decode = (value: Uint8Array) => {
    const r = decodeEvent(anyOf(publish, value));
    if (!r.ok) throw r.error;
    return r.event as unknown as { qos: number; retain: boolean };
  };
  assertEquals(decode(b(0x40, 0x80, 0x80, 0x80, 0x80, 0x10)).retain, true); // 2³²: low bits 0
  assertEquals(decode(b(0x28, ...varintOf(2 ** 32 + 7))).qos, 7);
  assertEquals(decode(b(0x28, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01)).qos, -1);
  const out = new ByteBuffer(256);
  writeFrameJsonCode(out, anyOf(publish, b(0x40, 0x80, 0x80, 0x80, 0x80, 0x10)), "omit");
  assertStrictEquals(JSON.parse(new TextDecoder().decode(out.bytes())).retain, true);
});

// The slots accessors (stringField, forEachTopic, eventTimeMs) read what the JSON writer
// writes: on every vector, on merged/duplicated fields and on malformed values.
import {
  ByteBuffer,
  eventTimeMs,
  forEachTopic,
  HOOK_TABLES,
  HOOKS,
  Kind,
  NameTemplate,
  parseEnvelope,
  stringField,
  topicFilter,
  writeFrameJsonCode,
} from "../lib/internal.ts";
import { assert, assertEquals, assertStrictEquals } from "./_assert.ts";
import {
  allVectors,
  anyOf,
  field,
  type HookName,
  message,
  timestampMsg,
  typeUrlFor,
} from "./_vectors.ts";

// deno-lint-ignore no-explicit-any
type Json = any;
const ranges = { typeUrlStart: 0, typeUrlEnd: 0, valueStart: 0, valueEnd: 0 };

/** The writer's JSON of `frame` as an object (null when it does not write one). */
function json(frame: Uint8Array): Json {
  const out = new ByteBuffer();
  return writeFrameJsonCode(out, frame, "base64") >= 0
    ? JSON.parse(new TextDecoder().decode(out.bytes()))
    : null;
}

function topicsOf(frame: Uint8Array, hook: number): string[] | string {
  const seen: string[] = [];
  assertStrictEquals(parseEnvelope(frame, ranges), hook);
  const r = forEachTopic(frame, hook, ranges.valueStart, ranges.valueEnd, (t) => {
    seen.push(t);
    return false;
  });
  return r === "unmatched" ? seen : r;
}

function msOf(iso: string): number {
  // RFC 3339 with 9 digits: Date keeps milliseconds, the rest is added back.
  const whole = Date.parse(iso.replace(/\.\d+Z$/, "Z"));
  const frac = Number(`0.${iso.match(/\.(\d+)Z$/)![1]}`);
  return whole + frac * 1000;
}

Deno.test("slots accessors: every vector's strings, topics and event time equal the JSON writer's", () => {
  let checked = 0;
  for (const v of allVectors()) {
    const j = json(v.body);
    if (!j) continue;
    const hook = HOOKS.indexOf(j.hook);
    assertStrictEquals(parseEnvelope(v.body, ranges), hook);
    const { valueStart: vs, valueEnd: ve } = ranges;
    for (const f of HOOK_TABLES[hook].fields) {
      const expected = f.kind === Kind.String ? j[f.name] : ""; // only string fields are read
      assertStrictEquals(
        stringField(v.body, hook, vs, ve, f.name),
        expected,
        `${v.name}.${f.name}`,
      );
    }
    assertStrictEquals(stringField(v.body, hook, vs, ve, "no_such_field"), "");
    const expectedTopics = "topic" in j
      ? [j.topic]
      : "topics" in j
      ? j.topics.map((t: Json) => typeof t === "string" ? t : t.topic)
      : "no_topics";
    assertEquals(topicsOf(v.body, hook), expectedTopics, v.name);
    const ms = eventTimeMs(v.body, hook, vs, ve);
    const expectedMs = j.timestamp.startsWith("1970-01-01T00:00:00") ? Infinity : msOf(j.timestamp);
    assert(
      ms === expectedMs || Math.abs(ms - expectedMs) < 1e-3,
      `${v.name}: ${ms} vs ${expectedMs}`,
    );
    checked++;
  }
  assert(checked > 140, `checked ${checked} vectors`);
});

function frame(hook: HookName, ...fields: Uint8Array[]): Uint8Array {
  return anyOf(typeUrlFor(hook), message(...fields));
}

Deno.test("slots accessors: repeated fields merge like the writer (last string wins, timestamps merge)", () => {
  const hook = HOOKS.indexOf("on_publish");
  // on_publish: 1 timestamp, 3 client_id, 4 mountpoint, 6 topic.
  const f = frame(
    "on_publish",
    field(1, timestampMsg(1_700_000_000, 5_000_000)),
    field(3, "first"),
    field(6, "a/b"),
    field(3, "second"),
    field(1, message(field(2, 250_000_000))), // merges: seconds stay, nanos replaced
    field(6, "c/d"),
  );
  const j = json(f);
  parseEnvelope(f, ranges);
  const { valueStart: vs, valueEnd: ve } = ranges;
  assertStrictEquals(j.client_id, "second");
  assertStrictEquals(stringField(f, hook, vs, ve, "client_id"), "second");
  assertEquals(topicsOf(f, hook), ["c/d"]);
  assertStrictEquals(j.timestamp, "2023-11-14T22:13:20.250000000Z");
  assertStrictEquals(eventTimeMs(f, hook, vs, ve), 1_700_000_000_250);
  const t = new NameTemplate("subject", "x.{mountpoint}.{client_id}.{hook}");
  assertStrictEquals(t.render(hook, f), "x..second.on_publish");
});

Deno.test("slots accessors: a known number with another wire type is skipped, as by the writer", () => {
  const hook = HOOKS.indexOf("on_publish");
  const f = frame("on_publish", field(3, "c1"), field(3, 7), field(6, 9), field(6, "t"));
  parseEnvelope(f, ranges);
  assertStrictEquals(json(f).client_id, "c1");
  assertStrictEquals(stringField(f, hook, ranges.valueStart, ranges.valueEnd, "client_id"), "c1");
  assertEquals(topicsOf(f, hook), ["t"]);
});

Deno.test("slots accessors: subscribe topics come from each TopicInfo; none means no match", () => {
  const hook = HOOKS.indexOf("on_subscribe");
  const info = (topic: string) => field(5, message(field(1, topic), field(2, 1)));
  const f = frame("on_subscribe", info("a/1"), field(5, message(field(2, 0))), info("b/#"));
  assertEquals(topicsOf(f, hook), ["a/1", "", "b/#"]);
  const empty = frame("on_subscribe", field(2, "c"));
  assertEquals(topicsOf(empty, hook), []);
  assertStrictEquals(topicFilter(["#"])(empty, hook), false);
  assertStrictEquals(topicFilter(["b/#"])(f, hook), true);
  assertStrictEquals(topicFilter(["z"])(f, hook), false);
});

Deno.test("slots accessors: a malformed value gives the documented fallbacks", () => {
  const hook = HOOKS.indexOf("on_publish");
  // client_id, then a length running past the end of the message.
  const f = frame("on_publish", field(3, "c1"), Uint8Array.of(0x32, 0x7f));
  assertStrictEquals(json(f), null);
  parseEnvelope(f, ranges);
  const { valueStart: vs, valueEnd: ve } = ranges;
  assertStrictEquals(stringField(f, hook, vs, ve, "client_id"), "");
  assertStrictEquals(eventTimeMs(f, hook, vs, ve), Infinity);
  assertStrictEquals(forEachTopic(f, hook, vs, ve, () => false), "malformed");
  assertStrictEquals(topicFilter(["nothing"])(f, hook), true); // counted as undecodable later
  const wakeup = HOOKS.indexOf("on_client_wakeup");
  assertStrictEquals(forEachTopic(f, wakeup, vs, ve, () => true), "no_topics");
});

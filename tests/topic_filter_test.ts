// MQTT topic filters (lib/pipeline/topic_filter.ts): matching per the MQTT 3.1.1/5 specification (section 4.7)
// and the frame filter the pipeline applies per output, checked against the fixture vectors.
import { assert, assertEquals } from "./_assert.ts";
import { anyOf, eventBody, fixtureVectors, mulberry32, typeUrlFor } from "./_vectors.ts";
import { HOOKS, topicFilter, topicMatches } from "../lib/internal.ts";

// [filter, topic, matches], the spec's examples first.
const CASES: [string, string, boolean][] = [
  ["sport/tennis/player1/#", "sport/tennis/player1", true],
  ["sport/tennis/player1/#", "sport/tennis/player1/ranking", true],
  ["sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon", true],
  ["sport/#", "sport", true],
  ["#", "sport/tennis", true],
  ["#", "/", true],
  ["sport/tennis/+", "sport/tennis/player1", true],
  ["sport/tennis/+", "sport/tennis/player2", true],
  ["sport/tennis/+", "sport/tennis/player1/ranking", false],
  ["sport/+", "sport", false],
  ["sport/+", "sport/", true],
  ["+/+", "/finance", true],
  ["/+", "/finance", true],
  ["+", "/finance", false],
  ["+/tennis/#", "sport/tennis/x", true],
  ["sport/tennis#", "sport/tennis", false], // not a valid filter; never matches
  ["#", "$SYS/monitor/Clients", false],
  ["+/monitor/Clients", "$SYS/monitor/Clients", false],
  ["$SYS/#", "$SYS/monitor/Clients", true],
  ["$SYS/monitor/+", "$SYS/monitor/Clients", true],
  ["a/+/b", "a//b", true],
  ["a/b", "a/b", true],
  ["a/b", "a/b/", false],
  ["a/b", "A/b", false],
  ["a/b/#", "a/b/", true],
  ["+", "", true],
  ["#", "", true],
  ["a", "", false],
  ["devices/+/telemetry", "devices/a2d5ac/telemetry", true],
  ["devices/+/telemetry", "devices/a2d5ac/status", false],
];

Deno.test("topicMatches: the MQTT specification's examples and edge cases", () => {
  for (const [filter, topic, want] of CASES) {
    assertEquals(topicMatches(filter, topic), want, `${filter} vs ${JSON.stringify(topic)}`);
  }
});

/** The same rules as a regular expression (an independent formulation of section 4.7). */
function reference(filter: string, topic: string): boolean {
  const levels = filter.split("/");
  if (
    levels.some((l, i) =>
      (l.includes("#") && (l !== "#" || i < levels.length - 1)) ||
      (l.includes("+") && l !== "+")
    )
  ) return false;
  if (topic.startsWith("$") && (levels[0] === "+" || levels[0] === "#")) return false;
  let re = "";
  levels.forEach((l, i) => {
    if (l === "#") re += i === 0 ? ".*" : "(/.*)?";
    else {re += (i === 0 ? "" : "/") +
        (l === "+" ? "[^/]*" : l.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));}
  });
  return new RegExp(`^${re}$`, "s").test(topic);
}

Deno.test("topicMatches agrees with a regular-expression reference on 20000 seeded random pairs", () => {
  const rng = mulberry32(7);
  const words = ["a", "b", "", "$SYS", "dev", "x y", "ü"];
  const pick = <T>(xs: T[]) => xs[Math.floor(rng() * xs.length)];
  const topic = () =>
    Array.from({ length: 1 + Math.floor(rng() * 4) }, () => pick(words)).join("/");
  const filter = () => {
    const n = 1 + Math.floor(rng() * 4);
    return Array.from({ length: n }, (_, i) => {
      const r = rng();
      return r < 0.2 ? "+" : r < 0.3 && i === n - 1 ? "#" : pick(words);
    }).join("/");
  };
  for (let i = 0; i < 20000; i++) {
    const f = filter(), t = topic();
    assertEquals(topicMatches(f, t), reference(f, t), `${f} vs ${JSON.stringify(t)}`);
  }
});

/** The topics of an event in the upstream expectation form (none for topic-less events). */
// deno-lint-ignore no-explicit-any
function topicsOf(event: any): string[] | null {
  if (typeof event.topic === "string") return [event.topic];
  if (Array.isArray(event.topics)) {
    // deno-lint-ignore no-explicit-any
    return event.topics.map((t: any) => (typeof t === "string" ? t : t.topic));
  }
  return null;
}

Deno.test("topicFilter on the fixture frames: topic-bearing events pass when any topic matches, others always", () => {
  const vectors = fixtureVectors().filter((v) => v.expected.hook !== null);
  const filterSets = [["#"], ["devices/#"], ["+/+/telemetry", "cmd/#"], ["nothing/matches"], ["+"]];
  let passed = 0, blocked = 0;
  for (const filters of filterSets) {
    const accept = topicFilter(filters);
    for (const v of vectors) {
      const hook = HOOKS.indexOf(v.expected.hook!);
      const topics = topicsOf(v.expected.event);
      const want = topics === null || topics.some((t) => filters.some((f) => reference(f, t)));
      assertEquals(accept(v.body, hook), want, `${filters} on ${v.name}`);
      want ? passed++ : blocked++;
    }
  }
  assert(passed > 100 && blocked > 100, `both outcomes exercised (${passed} / ${blocked})`);
});

Deno.test("topicFilter: a subscribe/unsubscribe without topics is filtered out; a broken value passes (counted later)", () => {
  const accept = topicFilter(["#"]);
  const sub = HOOKS.indexOf("on_subscribe"), unsub = HOOKS.indexOf("on_unsubscribe");
  assertEquals(accept(eventBody("on_subscribe", { client_id: "c", topics: [] }), sub), false);
  assertEquals(accept(eventBody("on_unsubscribe", { client_id: "c", topics: [] }), unsub), false);
  assertEquals(
    accept(eventBody("on_unsubscribe", { client_id: "c", topics: ["x/y"] }), unsub),
    true,
  );
  // Field 6 (topic) of OnPublish announced longer than the message: not decodable.
  const broken = anyOf(typeUrlFor("on_publish"), Uint8Array.of(0x32, 0x7f, 0x61));
  assertEquals(topicFilter(["nothing"])(broken, HOOKS.indexOf("on_publish")), true);
});

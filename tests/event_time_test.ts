// EventTime (lib/handlers/timestamps.ts): exact nanoseconds and a Date from every vector's
// timestamp, checked against the upstream expectations with an independent formatter
// (tests/_vectors.ts rfc3339: civil-from-days on bigints, no Date).
import { assert, assertEquals, assertThrows } from "./_assert.ts";
import { fixtureVectors, mulberry32, rfc3339 } from "./_vectors.ts";
import { decodeEvent, EventTime } from "../lib/internal.ts";

Deno.test("EventTime: every vector's timestamp as exact nanoseconds, Date and RFC 3339", () => {
  let checked = 0;
  for (const v of fixtureVectors()) {
    if (v.expected.event === null) continue;
    const r = decodeEvent(v.body);
    assert(r.ok, v.name);
    const ts = v.expected.event.timestamp;
    const seconds = BigInt(ts.seconds ?? 0), nanos: number = ts.nanos ?? 0;
    const t = EventTime.of(r.event);
    assertEquals(t.epochNanos, seconds * 1_000_000_000n + BigInt(nanos), v.name);
    assertEquals(EventTime.nanos(r.event), t.epochNanos, v.name);
    assert(t instanceof Date, v.name);
    // The Date part: milliseconds, rounded down (never a later time than the event).
    assertEquals(t.getTime(), Number(seconds) * 1000 + Math.floor(nanos / 1e6), v.name);
    assertEquals(t.toRfc3339(), rfc3339(seconds, nanos), v.name);
    assertEquals(t.toTimestamp(), { seconds, nanos }, v.name);
    checked++;
  }
  assertEquals(checked, 149);
});

Deno.test("EventTime: the edge vectors (0, 1 ns, whole second, year 2100)", () => {
  const byName = (part: string) => {
    const v = fixtureVectors().find((x) => x.name.includes(part))!;
    const r = decodeEvent(v.body);
    assert(r.ok);
    return EventTime.of(r.event);
  };
  const zero = byName("092_on_client_wakeup_zero");
  assertEquals(zero.epochNanos, 0n);
  assertEquals(zero.toRfc3339(), "1970-01-01T00:00:00.000000000Z");
  const oneNs = byName("098_on_client_wakeup_ts_one_nanosecond");
  assertEquals(oneNs.epochNanos % 1_000_000_000n, 1n);
  assertEquals(oneNs.getTime() % 1000, 0); // 1 ns is below the Date's resolution
  assert(oneNs.isAfter({ seconds: oneNs.toTimestamp().seconds, nanos: 0 }));
  assertEquals(byName("097_on_client_wakeup_ts_year_2100").getUTCFullYear(), 2100);
  assertEquals(byName("013_on_register_ts_whole_second").epochNanos % 1_000_000_000n, 0n);
});

Deno.test("EventTime.compare: exact below a millisecond, a sort comparator, events and timestamps alike", () => {
  const base = 1_764_620_157n;
  const a = { timestamp: { seconds: base, nanos: 100 } };
  const b = { timestamp: { seconds: base, nanos: 101 } }; // 1 ns later: same Date
  assertEquals(EventTime.of(a).getTime(), EventTime.of(b).getTime());
  assertEquals(EventTime.compare(a, b), -1);
  assertEquals(EventTime.compare(b, a), 1);
  assertEquals(EventTime.compare(a, a.timestamp), 0);
  assertEquals(EventTime.compare(EventTime.of(b), a), 1);
  assert(EventTime.of(a).isBefore(b) && !EventTime.of(a).isAfter(b));
  assert(EventTime.of(a).equals({ seconds: base, nanos: 100 }));

  // Seconds beyond 2^53 (a double cannot tell them apart) still compare exactly.
  const big = 2n ** 60n;
  assertEquals(EventTime.compare({ seconds: big, nanos: 0 }, { seconds: big + 1n, nanos: 0 }), -1);
  const far = EventTime.of({ seconds: big, nanos: 0 });
  assert(Number.isNaN(far.getTime()), "outside the Date range: an invalid Date");
  assertEquals(far.epochNanos, big * 1_000_000_000n);

  // Sorting random times gives the order of their exact nanoseconds.
  const rng = mulberry32(14);
  const events = Array.from({ length: 500 }, () => ({
    timestamp: { seconds: base + BigInt(Math.floor(rng() * 3)), nanos: Math.floor(rng() * 1e9) },
  }));
  const sorted = [...events].sort(EventTime.compare).map((e) => EventTime.nanos(e));
  for (let i = 1; i < sorted.length; i++) assert(sorted[i - 1] <= sorted[i], `at ${i}`);
});

Deno.test("EventTime: negative times round down; nanos outside [0, 1e9) still sum exactly", () => {
  const t = EventTime.of({ seconds: -1n, nanos: 999_999_999 }); // 1 ns before the epoch
  assertEquals(t.epochNanos, -1n);
  assertEquals(t.getTime(), -1);
  assertEquals(t.toTimestamp(), { seconds: -1n, nanos: 999_999_999 });
  assertEquals(t.toRfc3339(), "1969-12-31T23:59:59.999999999Z");
  assertEquals(EventTime.nanos({ seconds: 1n, nanos: 1_500_000_000 }), 2_500_000_000n);
});

Deno.test("EventTime is immutable: Date setters throw", () => {
  const t = EventTime.of({ seconds: 10n, nanos: 5 });
  assertThrows(() => t.setTime(0), TypeError);
  assertThrows(() => t.setUTCFullYear(2000), TypeError);
  assertEquals(t.getTime(), 10_000);
  // Still a Date everywhere a Date goes.
  assertEquals(JSON.stringify({ t }), '{"t":"1970-01-01T00:00:10.000Z"}');
});

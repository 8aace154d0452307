// The router's per-read event time (eventTimeMs) scans only the timestamp out of the event: it
// must read exactly what the decoder of record reads — a full parse of the slots, then the
// merged timestamp (parseEvent + readTimestamp) — on the vectors, every prefix cut of their
// values, and seeded fuzzed frames (accept/reject and value).
import {
  eventTimeMs,
  HOOK_TABLES,
  HOOKS,
  Kind,
  parseEnvelope,
  parseEvent,
  readTimestamp,
} from "../lib/internal.ts";
import { assert, assertStrictEquals } from "./_assert.ts";
import { fuzzCase, fuzzCount, fuzzSeed, hex, wrapAny } from "./_fuzz.ts";
import { allVectors, encodeEvent, fixtureVectors, typeUrlFor } from "./_vectors.ts";

const ranges = { typeUrlStart: 0, typeUrlEnd: 0, valueStart: 0, valueEnd: 0 };
const TIMESTAMP_INDEX = HOOK_TABLES.map((t) =>
  t.fields.findIndex((f) => f.name === "timestamp" && f.kind === Kind.Timestamp)
);
const ts = { seconds: 0, nanos: 0 };

/** The event time as the full parse reads it (what eventTimeMs did before its scan). */
function reference(buf: Uint8Array, hook: number, vs: number, ve: number): number {
  const i = TIMESTAMP_INDEX[hook];
  if (i < 0) return Infinity;
  try {
    readTimestamp(buf, parseEvent(buf, hook, vs, ve).lists[i], ts);
  } catch (e) {
    if ((e as Error).name === "WireError") return Infinity;
    throw e;
  }
  return ts.seconds > 0 ? ts.seconds * 1000 + ts.nanos / 1e6 : Infinity;
}

/** Checks one frame; returns whether it had a finite event time. */
function check(frame: Uint8Array, what: string): boolean {
  const hook = parseEnvelope(frame, ranges);
  if (hook < 0) return false;
  const { valueStart: vs, valueEnd: ve } = ranges;
  const want = reference(frame, hook, vs, ve);
  const got = eventTimeMs(frame, hook, vs, ve);
  assertStrictEquals(got, want, `${what} (${HOOKS[hook]}): ${hex(frame)}`);
  return Number.isFinite(got);
}

Deno.test("eventTimeMs: the full parse's value on every vector and every prefix cut of its value", () => {
  let finite = 0, cuts = 0;
  for (const v of allVectors()) if (check(v.body, v.name)) finite++;
  for (const v of fixtureVectors()) {
    if (v.expected.hook === null) continue;
    const value = encodeEvent(v.expected.hook, v.expected.event!);
    for (let n = 0; n <= value.length; n++) {
      check(wrapAny(typeUrlFor(v.expected.hook), value.subarray(0, n)), `${v.name} cut at ${n}`);
      cuts++;
    }
  }
  assert(finite > 100 && cuts > 1000, `${finite} vectors with a time, ${cuts} cuts`);
});

Deno.test("eventTimeMs: the full parse's value on 30 000 seeded fuzzed frames", () => {
  const seed = fuzzSeed(20261201), count = fuzzCount(30_000);
  let finite = 0, infinite = 0;
  for (let i = 0; i < count; i++) {
    const c = fuzzCase(seed, i);
    const hook = parseEnvelope(c.frame, ranges);
    if (hook < 0) continue;
    if (check(c.frame, `seed ${seed} index ${i} (${c.kind})`)) finite++;
    else infinite++;
  }
  // Both kinds of answer are well represented (times read, and malformed or absent ones).
  assert(finite > count / 10 && infinite > count / 20, `${finite} finite, ${infinite} not`);
});

// Fuzzing the wire layer (issue 15 item 4): seeded cases of the frame reader (random chunking,
// length-field edits, truncations, bit flips; compared with an independent splitter) and of
// the envelope parser (mutated and random `Any`s at random offsets; compared with a reference
// reading). No uncaught exception, no hang (each reader case has a deadline), bounded memory.
// Long runs: `deno task fuzz --seed N --seconds S`.
import { assert } from "./_assert.ts";
import { envelopeCase, frameReaderCase } from "./_fuzz_wire.ts";
import { fuzzCount, fuzzSeed } from "./_fuzz.ts";

Deno.test("fuzz: the frame reader yields exactly the frames before the first fault, then the right error", async () => {
  const seed = fuzzSeed(20261201), count = Math.ceil(fuzzCount(100_000) / 50); // 2000 streams
  const rssBefore = Deno.memoryUsage().rss;
  const seen: Record<string, number> = {};
  for (let i = 0; i < count; i++) {
    const r = await frameReaderCase(seed, i);
    seen[r] = (seen[r] ?? 0) + 1;
  }
  const grown = (Deno.memoryUsage().rss - rssBefore) / 2 ** 20;
  console.log(
    `seed ${seed}, ${count} streams:`,
    JSON.stringify(seen),
    `rss +${grown.toFixed(0)} MiB`,
  );
  assert(
    seen.none > count / 10 && seen.truncated > count / 20 && seen.too_large > count / 50,
    JSON.stringify(seen),
  );
  assert(grown < 512, `rss grew by ${grown} MiB`); // generous: the reader never allocates a claimed length
});

Deno.test("fuzz: the envelope parser agrees with a reference reading on 20 000 fuzzed Anys", () => {
  const seed = fuzzSeed(20261201), count = Math.ceil(fuzzCount(100_000) / 5);
  const seen: Record<string, number> = {};
  for (let i = 0; i < count; i++) {
    const code = envelopeCase(seed, i);
    const k = code >= 0 ? "event" : code === -1 ? "unknown_type" : "malformed_envelope";
    seen[k] = (seen[k] ?? 0) + 1;
  }
  console.log(`seed ${seed}, ${count} envelopes:`, JSON.stringify(seen));
  assert(
    seen.event > count / 2 && seen.malformed_envelope > 0 && seen.unknown_type > 0,
    JSON.stringify(seen),
  );
});

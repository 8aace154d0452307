// One decoder of record (issue 11 item 5, issue 15 item 4): the typed decoder (decodeEvent)
// and the JSON writer (writeFrameJson) agree on every input — the vectors, every prefix cut
// of every vector's value, the regression inputs in tests/fixtures/fuzz/, and ≥ 100 000 seeded
// fuzzed frames per run (VMQ_SIDECAR_FUZZ_SEED / VMQ_SIDECAR_FUZZ_N for other runs; `deno task
// fuzz` for long ones). A failure prints seed, index and hex: a one-line repro.
import { PAYLOAD_MODES } from "../lib/internal.ts";
import { assert, assertEquals } from "./_assert.ts";
import { differential, type Outcome } from "./_differential.ts";
import { fuzzCase, fuzzCount, fuzzSeed, hex, wrapAny } from "./_fuzz.ts";
import { allVectors, encodeEvent, fixtureVectors, typeUrlFor } from "./_vectors.ts";

const FUZZ_DIR = new URL("./fixtures/fuzz/", import.meta.url);

Deno.test("differential: every vector, in every payload mode", () => {
  let ok = 0;
  for (const v of allVectors()) {
    for (const mode of PAYLOAD_MODES) {
      const r = differential(v.body, mode);
      assertEquals(r, v.expected.hook === null ? "empty" : "ok", `${v.name} (${mode})`);
      if (r === "ok") ok++;
    }
  }
  assert(ok >= 3 * 150, `${ok} vector decodes`);
});

Deno.test("differential: every prefix cut of every vector's value, re-wrapped in a correct Any", () => {
  const seen: Record<string, number> = {};
  for (const v of fixtureVectors()) {
    if (v.expected.hook === null) continue;
    const value = encodeEvent(v.expected.hook, v.expected.event!);
    for (let n = 0; n <= value.length; n++) {
      const frame = wrapAny(typeUrlFor(v.expected.hook), value.subarray(0, n));
      let r: Outcome;
      try {
        r = differential(frame, PAYLOAD_MODES[n % 3]);
      } catch (e) {
        throw new Error(`${v.name} cut at ${n} (${hex(frame)}): ${(e as Error).message}`);
      }
      seen[r] = (seen[r] ?? 0) + 1;
    }
  }
  assert(seen.ok > 150 && seen.malformed_value > 1000, JSON.stringify(seen));
});

Deno.test("differential: the regression inputs of tests/fixtures/fuzz/ (found by fuzzing)", () => {
  let n = 0;
  for (const e of Deno.readDirSync(FUZZ_DIR)) {
    if (!e.name.endsWith(".hex")) continue;
    const [line, expected] = Deno.readTextFileSync(new URL(e.name, FUZZ_DIR)).trim().split(/\s+/);
    for (const mode of PAYLOAD_MODES) {
      assertEquals(differential(unhexLine(line), mode), expected, `${e.name} (${mode})`);
    }
    n++;
  }
  assert(n > 0, "no regression inputs");
});

function unhexLine(s: string): Uint8Array {
  return Uint8Array.from(s.match(/../g) ?? [], (x) => parseInt(x, 16));
}

Deno.test("differential: ≥ 100 000 seeded fuzzed frames agree (accept/reject, kind, bytes)", () => {
  const seed = fuzzSeed(20261201), count = fuzzCount(100_000);
  const outcomes: Record<string, number> = {}, kinds: Record<string, number> = {};
  for (let i = 0; i < count; i++) {
    const c = fuzzCase(seed, i);
    let r: Outcome;
    try {
      r = differential(c.frame, PAYLOAD_MODES[i % 3], i % 4 === 0); // deep checks on a quarter
    } catch (e) {
      throw new Error(
        `seed ${seed} index ${i} (${c.kind}, ${PAYLOAD_MODES[i % 3]}): ${(e as Error).message}\n` +
          `  frame ${hex(c.frame)}`,
      );
    }
    outcomes[r] = (outcomes[r] ?? 0) + 1;
    kinds[`${c.kind}:${r === "ok" ? "ok" : "rejected"}`] =
      (kinds[`${c.kind}:${r === "ok" ? "ok" : "rejected"}`] ?? 0) + 1;
  }
  console.log(`seed ${seed}, ${count} frames:`, JSON.stringify(outcomes));
  // Both outcomes are well represented: the mutations are neither all fatal nor all harmless.
  assert(outcomes.ok > count / 10 && outcomes.malformed_value > count / 10, JSON.stringify(kinds));
});

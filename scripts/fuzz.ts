/**
 * Long fuzz runs of the decoder of record and the wire layer (issue 15 item 4): the same seeded
 * cases as tests/differential_test.ts and tests/fuzz_test.ts, for as long as asked.
 *
 *   deno task fuzz [--seed N] [--seconds S] [--max-rss-mib M]
 *
 * Per round: one fuzzed frame through the differential check in every payload mode (typed
 * decoder vs JSON writer, eventToJson bytes, accessors, round trip), one envelope against the
 * reference reading, and every 50th round one framed stream through the frame reader (random
 * chunking, length edits, truncation). Prints counts every 10 s; stops at the first failure
 * with a one-line repro and the input written to tests/fixtures/fuzz/found-SEED-INDEX.hex
 * (add the expected outcome after the hex to keep it as a regression input). Exit 0 when the
 * time is up without a failure, 1 on a failure or when RSS exceeded the bound.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { PAYLOAD_MODES } from "../lib/internal.ts";
import { differential } from "../tests/_differential.ts";
import { fuzzCase, hex } from "../tests/_fuzz.ts";
import { envelopeCase, frameReaderCase } from "../tests/_fuzz_wire.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    seed: { type: "string", default: String(Date.now() % 2 ** 31) },
    seconds: { type: "string", default: "60" },
    "max-rss-mib": { type: "string", default: "1024" },
    help: { type: "boolean", default: false },
  },
});
if (values.help) {
  console.log("usage: deno task fuzz [--seed N] [--seconds S] [--max-rss-mib M]");
  Deno.exit(0);
}
const seed = Number(values.seed) >>> 0, seconds = Number(values.seconds);
const maxRss = Number(values["max-rss-mib"]) * 2 ** 20;
if (!Number.isFinite(seconds) || seconds <= 0 || !Number.isFinite(maxRss)) {
  console.error("fuzz: --seconds and --max-rss-mib take positive numbers");
  Deno.exit(2);
}

const FOUND = new URL("../tests/fixtures/fuzz/", import.meta.url);
const started = performance.now(), until = started + seconds * 1000;
const counts: Record<string, number> = {};
let rounds = 0, peakRss = 0, nextReport = started + 10_000;
const count = (k: string) => (counts[k] = (counts[k] ?? 0) + 1);

function report(final: boolean): void {
  const s = ((performance.now() - started) / 1000).toFixed(0);
  console.log(
    `${final ? "done" : "…"} seed ${seed}: ${rounds} rounds in ${s} s, peak rss ${
      (peakRss / 2 ** 20).toFixed(0)
    } MiB; ${JSON.stringify(counts)}`,
  );
}

function failed(what: string, i: number, frame: Uint8Array | undefined, e: unknown): never {
  console.error(`fuzz: ${what} failed at seed ${seed} index ${i}: ${(e as Error).message}`);
  if (frame) {
    const file = new URL(`found-${seed}-${i}.hex`, FOUND);
    Deno.writeTextFileSync(file, `${hex(frame)}\n`);
    console.error(`  frame ${hex(frame)}\n  written to ${file.pathname}`);
  }
  console.error(`  repro: VMQ_SIDECAR_FUZZ_SEED=${seed} deno task fuzz --seed ${seed}`);
  report(true);
  Deno.exit(1);
}

for (let i = 0; performance.now() < until; i++, rounds++) {
  const c = fuzzCase(seed, i);
  for (const mode of PAYLOAD_MODES) {
    try {
      count(differential(c.frame, mode));
    } catch (e) {
      failed(`differential (${c.kind}, ${mode})`, i, c.frame, e);
    }
  }
  try {
    envelopeCase(seed, i);
  } catch (e) {
    failed("envelope", i, undefined, e);
  }
  if (i % 50 === 0) {
    try {
      count(`stream_${await frameReaderCase(seed, i / 50)}`);
    } catch (e) {
      failed("frame reader", i / 50, undefined, e);
    }
  }
  if (i % 256 === 0) {
    peakRss = Math.max(peakRss, Deno.memoryUsage().rss);
    if (peakRss > maxRss) {
      failed("memory bound", i, undefined, new Error(`rss ${peakRss} > ${maxRss} bytes`));
    }
    if (performance.now() >= nextReport) {
      report(false);
      nextReport += 10_000;
    }
  }
}
report(true);

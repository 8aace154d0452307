/**
 * Memory soak of the NATS output: starts nats-server (JetStream, file storage), the real
 * main.ts (start task's flags) with one `nats://` output (`on_full=block`, so nothing is
 * dropped), streams distinct events into it with the load generator and prints the sidecar's
 * RSS and V8 heap (from its `/metrics`) every `--step` events the output
 * acknowledged, then once more after `--idle-ms` idle. At the end it counts the messages in
 * the stream (every event has its own `Nats-Msg-Id`, so that is the unique events stored).
 *
 *   deno run -P=bench scripts/nats_soak.ts --events 1200000 --rate 20000
 *   deno run -P=bench scripts/nats_soak.ts --format protobuf --rate 0 --options queue_bytes=4MiB
 *
 * @module
 */
import { parseArgs } from "node:util";
import { runLoadgen } from "./loadgen.ts";
import { writeFramesFile } from "./mkframes.ts";
import { natsClient, startNats, streamCount } from "../tests/_servers.ts";
import { scrape, spawnSidecar } from "../tests/_ops.ts";
import { valueOf } from "../tests/_prom.ts";

/** Options of {@linkcode runNatsSoak}. */
export interface NatsSoakOptions {
  /** Events to send (default 1,200,000). */
  events?: number;
  /** Events per second; 0 = as fast as the sidecar takes them (default 20,000). */
  rate?: number;
  /** Sample every this many acknowledged events (default 100,000). */
  step?: number;
  /** `json` (default) or `protobuf`. */
  format?: "json" | "protobuf";
  /** Idle time before the last sample, in ms (default 5000). */
  idleMs?: number;
  /** More options of the output, e.g. `queue_bytes=4MiB` (default none). */
  outputOptions?: string;
  /** Called with each sample as it is taken. */
  onSample?: (s: SoakSample) => void;
}

/** One measurement of the sidecar process. */
export interface SoakSample {
  /** Events the NATS output had acknowledged. */
  sent: number;
  /** Resident set size, bytes. */
  rss: number;
  /** V8 heap in use, bytes. */
  heap: number;
  /** Whether this is the sample after the idle period. */
  idle: boolean;
}

/** What {@linkcode runNatsSoak} measured. */
export interface NatsSoakResult {
  /** One sample per step, then the idle one. */
  samples: SoakSample[];
  /** Events the load generator sent. */
  sent: number;
  /** Messages in the stream at the end. */
  stored: number;
  /** The sidecar's stderr. */
  stderr: string;
}

const WORK = "/tmp/vmq-sidecar/bench";

/** A frames file of `n` distinct mix events (made once, then reused). */
export async function distinctFramesFile(n: number): Promise<string> {
  await Deno.mkdir(WORK, { recursive: true });
  const path = `${WORK}/mix-${n}.bin`, done = `${path}.frames`;
  try {
    if (Number(await Deno.readTextFile(done)) === n) return path;
  } catch { /* make it */ }
  const w = await writeFramesFile(path, { kind: "mix", n });
  await Deno.writeTextFile(done, String(w.frames));
  return path;
}

/** Runs the soak (see the module doc); stops everything it started. */
export async function runNatsSoak(o: NatsSoakOptions = {}): Promise<NatsSoakResult> {
  const events = o.events ?? 1_200_000, step = o.step ?? 100_000;
  const file = await distinctFramesFile(events);
  await using nats = await startNats();
  const stream = "SOAK";
  const out = `nats://127.0.0.1:${nats.port}?create_stream=${stream}&on_full=block` +
    `&format=${o.format ?? "json"}${o.outputOptions ? `&${o.outputOptions}` : ""}`;
  const s = await spawnSidecar(
    ["--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--out", out],
    {
      stdout: "null",
    },
  );
  const samples: SoakSample[] = [];
  try {
    const sentNow = async () => {
      const m = await scrape(s.adminPort);
      return {
        sent: valueOf(m, "vmq_sidecar_output_events_sent_total", {
          output: `nats://127.0.0.1:${nats.port}`,
        }) ?? 0,
        heap: valueOf(m, "vmq_sidecar_process_heap_used_bytes") ?? 0,
        rss: valueOf(m, "vmq_sidecar_process_resident_memory_bytes") ?? 0,
      };
    };
    const sample = async (idle: boolean) => {
      const { sent, heap, rss } = await sentNow();
      const x = { sent, rss, heap, idle };
      samples.push(x);
      o.onSample?.(x);
      return x;
    };
    await sample(false);
    let loadDone = false;
    const load = runLoadgen({ addr: `127.0.0.1:${s.port}`, file, events, rate: o.rate ?? 20_000 })
      .finally(() => loadDone = true);
    let next = step;
    const until = Date.now() + 30 * 60_000;
    while (next <= events) {
      if (Date.now() > until) throw new Error("soak: timed out");
      const { sent } = await sentNow();
      if (sent >= next) {
        await sample(false);
        next = (Math.floor(sent / step) + 1) * step;
      } else if (loadDone && sent >= events) break;
      else await new Promise((r) => setTimeout(r, 100));
    }
    const r = await load;
    const ackDeadline = Date.now() + 60_000;
    while ((await sentNow()).sent < r.events && Date.now() < ackDeadline) {
      await new Promise((r) => setTimeout(r, 100));
    }
    await new Promise((r) => setTimeout(r, o.idleMs ?? 5000));
    await sample(true);
    const nc = await natsClient(nats.port);
    let stored: number;
    try {
      stored = await streamCount(nc, stream);
    } finally {
      await nc.close();
    }
    s.kill("SIGTERM");
    const w = await s.wait();
    return { samples, sent: r.events, stored, stderr: w.stderr };
  } catch (e) {
    s.kill("SIGKILL");
    await s.wait();
    throw e;
  }
}

const MiB = 1024 * 1024;

if (import.meta.main) {
  const v = parseArgs({
    args: Deno.args,
    options: {
      events: { type: "string", default: "1200000" },
      rate: { type: "string", default: "20000" },
      step: { type: "string", default: "100000" },
      format: { type: "string", default: "json" },
      "idle-ms": { type: "string", default: "5000" },
      options: { type: "string" },
    },
  }).values;
  if (v.format !== "json" && v.format !== "protobuf") throw new Error("--format json|protobuf");
  console.log("acked_events rss_mib heap_mib");
  const r = await runNatsSoak({
    events: Number(v.events),
    rate: Number(v.rate),
    step: Number(v.step),
    format: v.format,
    idleMs: Number(v["idle-ms"]),
    outputOptions: v.options,
    onSample: (x) =>
      console.log(
        `${x.sent} ${(x.rss / MiB).toFixed(1)} ${(x.heap / MiB).toFixed(1)}${
          x.idle ? " (idle)" : ""
        }`,
      ),
  });
  console.log(`sent=${r.sent} stored_unique=${r.stored}`);
}

/**
 * Memory and file descriptors of the real main.ts before and after load that should leave
 * nothing behind: many plugin connections opened, fed and closed (`conns`), and a big Redis
 * output queue filled while redis-server is stopped, then drained once it is back (`queue`).
 * Prints one line per phase: RSS, V8 heap and open fds at idle before, at the peak, and at
 * idle after (after `--settle-ms` of quiet).
 *
 *   deno run -P=bench scripts/churn.ts                       # both phases, issue-10 sizes
 *   deno run -P=bench scripts/churn.ts --phase conns --cycles 10000 --concurrency 100
 *   deno run -P=bench scripts/churn.ts --phase queue --queue-mib 512
 *   deno run -P=bench scripts/churn.ts --phase queue --redis-options format=protobuf
 *
 * Spawns main.ts the way `deno task start` does (tests/_ops.ts) and a redis-server
 * (tests/_servers.ts); needs `redis-server` on the PATH for the queue phase.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { type Ops, scrape, spawnSidecar } from "../tests/_ops.ts";
import { valueOf } from "../tests/_prom.ts";
import { readLength } from "../lib/internal.ts";
import { distinctFrames, startRedis, type TestServer } from "../tests/_servers.ts";

/** Memory and descriptors of the sidecar at one moment. */
export interface Probe {
  /** Resident set size, bytes. */
  rss: number;
  /** V8 heap in use, bytes. */
  heap: number;
  /** Open file descriptors. */
  fds: number;
  /** Plugin connections open. */
  open: number;
}

/** Idle before, peak during and idle after a phase. */
export interface PhaseResult {
  /** Phase name. */
  phase: string;
  /** At idle before the load. */
  before: Probe;
  /** Highest RSS seen during the load. */
  peak: Probe;
  /** At idle after the load (after the settle time). */
  after: Probe;
}

const MIB = 1024 * 1024;

/** Reads RSS and heap from `/metrics` and counts `/proc/PID/fd` (with `ls`: Deno reads /proc only with all permissions). */
export async function probe(s: Ops): Promise<Probe> {
  const m = await scrape(s.adminPort);
  const r = await new Deno.Command("ls", { args: [`/proc/${s.proc.pid}/fd`], stdin: "null" })
    .output();
  return {
    rss: valueOf(m, "vmq_sidecar_process_resident_memory_bytes") ?? NaN,
    heap: valueOf(m, "vmq_sidecar_process_heap_used_bytes") ?? NaN,
    fds: new TextDecoder().decode(r.stdout).split("\n").filter(Boolean).length,
    open: valueOf(m, "vmq_sidecar_connections_open") ?? NaN,
  };
}

/** Waits `ms` while taking probes; returns the last one. */
async function settle(s: Ops, ms: number): Promise<Probe> {
  const until = performance.now() + ms;
  let p = await probe(s);
  while (performance.now() < until) {
    await new Promise((r) => setTimeout(r, Math.min(500, Math.max(0, until - performance.now()))));
    p = await probe(s);
  }
  return p;
}

/** `frames` concatenated. */
function concatFrames(frames: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(frames.reduce((n, f) => n + f.length, 0));
  let at = 0;
  for (const f of frames) out.set(f, at), at += f.length;
  return out;
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let at = 0; at < bytes.length;) at += await conn.write(bytes.subarray(at));
}

/** Options of {@linkcode churnConnections}. */
export interface ChurnOptions {
  /** Connections opened, fed and closed (default 10,000). */
  cycles?: number;
  /** Open at once (default 100). */
  concurrency?: number;
  /** Bytes each connection sends (default 64 KiB: its read buffer grows to the maximum). */
  bytesPerConn?: number;
  /** Quiet time before the after-probe (default 5 s). */
  settleMs?: number;
}

/**
 * Phase `conns` against a running sidecar (admin listener on): `cycles` connections, each
 * sending `bytesPerConn` of events and closing, `concurrency` at a time.
 */
export async function churnConnections(s: Ops, o: ChurnOptions = {}): Promise<PhaseResult> {
  const cycles = o.cycles ?? 10_000, concurrency = o.concurrency ?? 100;
  const block = concatFrames(distinctFrames("churn", 200)); // ~80 KiB of events
  const per = block.subarray(0, Math.min(block.length, o.bytesPerConn ?? 64 * 1024));
  // Cut at a frame boundary: whole events only.
  let cut = 0;
  while (cut + 4 <= per.length) {
    const len = readLength(per, cut);
    if (cut + 4 + len > per.length) break;
    cut += 4 + len;
  }
  const bytes = per.subarray(0, cut);
  const before = await settle(s, 1000);
  let peak = before, next = 0;
  const worker = async () => {
    while (next < cycles) {
      next++;
      const conn = await Deno.connect({ hostname: "127.0.0.1", port: s.port });
      try {
        await writeAll(conn, bytes);
      } finally {
        conn.close();
      }
    }
  };
  const sampler = setInterval(async () => {
    const p = await probe(s).catch(() => undefined);
    if (p && p.rss > peak.rss) peak = p;
  }, 500);
  try {
    await Promise.all(Array.from({ length: concurrency }, worker));
  } finally {
    clearInterval(sampler);
  }
  // The sidecar may still be reading what closed peers sent: idle means none open.
  const until = performance.now() + 120_000;
  while ((await probe(s)).open > 0 && performance.now() < until) {
    await new Promise((r) => setTimeout(r, 100));
  }
  const after = await settle(s, o.settleMs ?? 5000);
  return { phase: `conns (${cycles} cycles, ${concurrency} at a time)`, before, peak, after };
}

/** Options of {@linkcode fillAndDrain}. */
export interface QueueChurnOptions {
  /** Bytes of events queued while Redis is down (default: the queue's size, 512 MiB). */
  fillBytes?: number;
  /** Quiet time before the after-probe (default 5 s). */
  settleMs?: number;
  /** Longest wait for the queue to drain (default 5 min). */
  drainTimeoutMs?: number;
}

/**
 * Phase `queue` against a running sidecar whose only output is a Redis one on `redis`
 * (`on_full=block`): stops redis-server, sends `fillBytes` of events (reading pauses when the
 * queue is full), starts it again and waits until the queue is empty.
 */
export async function fillAndDrain(
  s: Ops,
  redis: TestServer,
  o: QueueChurnOptions = {},
): Promise<PhaseResult> {
  const before = await settle(s, 1000);
  const fill = o.fillBytes ?? 512 * MIB;
  const block = concatFrames(distinctFrames("queue", 10_000)); // ~4 MiB of events
  await redis.stop();
  let peak = before;
  const queued = async () =>
    valueOf(await scrape(s.adminPort), "vmq_sidecar_output_queue_bytes", {
      output: `redis://127.0.0.1:${redis.port}/0`,
    }) ?? 0;
  // Four connections, like a small pool; stop writing once `fill` bytes are in.
  let sent = 0;
  const conns = await Promise.all(
    Array.from({ length: 4 }, () => Deno.connect({ hostname: "127.0.0.1", port: s.port })),
  );
  const writers = conns.map(async (c) => {
    while (sent < fill) {
      const n = Math.min(block.length, fill - sent);
      sent += n;
      await writeAll(c, block.subarray(0, n));
    }
  });
  // Whole frames only: the last write of each connection may cut one; closing after the
  // drain is fine (a truncated frame is counted, not queued).
  const until = performance.now() + (o.drainTimeoutMs ?? 300_000);
  while (performance.now() < until && (await queued()) < fill * 0.95) {
    const p = await probe(s);
    if (p.rss > peak.rss) peak = p;
    await new Promise((r) => setTimeout(r, 250));
  }
  const p = await probe(s);
  if (p.rss > peak.rss) peak = p;
  await redis.start();
  while (performance.now() < until && (await queued()) > 0) {
    await new Promise((r) => setTimeout(r, 250));
  }
  for (const c of conns) c.close();
  await Promise.allSettled(writers);
  if ((await queued()) > 0) throw new Error("the Redis queue did not drain in time");
  const after = await settle(s, o.settleMs ?? 5000);
  return { phase: `queue (${(fill / MIB).toFixed(0)} MiB through Redis)`, before, peak, after };
}

/** One line of a {@linkcode PhaseResult}. */
export function formatPhase(r: PhaseResult): string {
  const m = (b: number) => `${(b / MIB).toFixed(0)} MiB`;
  const p = (x: Probe) => `rss=${m(x.rss)} heap=${m(x.heap)} fds=${x.fds} conns=${x.open}`;
  return `${r.phase}: before ${p(r.before)} | peak ${p(r.peak)} | after ${p(r.after)}`;
}

/** Spawns main.ts with `outs`, admin and plugin listeners on free ports. */
export function spawnWith(outs: string[]): Promise<Ops> {
  return spawnSidecar(
    ["--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0", ...outs.flatMap((o) => ["--out", o])],
    { stdout: "null" },
  );
}

async function stop(s: Ops): Promise<void> {
  s.kill("SIGTERM");
  const r = await s.wait();
  if (r.code !== 0) throw new Error(`sidecar exited ${r.code}:\n${r.stderr.slice(-4000)}`);
}

if (import.meta.main) {
  const { values: v } = parseArgs({
    args: Deno.args,
    options: {
      phase: { type: "string", default: "all" },
      cycles: { type: "string", default: "10000" },
      concurrency: { type: "string", default: "100" },
      "queue-mib": { type: "string", default: "512" },
      "settle-ms": { type: "string", default: "5000" },
      "redis-options": { type: "string", default: "" },
    },
  });
  const settleMs = Number(v["settle-ms"]);
  if (v.phase === "all" || v.phase === "conns") {
    const s = await spawnWith(["stdout?format=protobuf"]);
    try {
      const r = await churnConnections(s, {
        cycles: Number(v.cycles),
        concurrency: Number(v.concurrency),
        settleMs,
      });
      console.log(formatPhase(r));
    } finally {
      await stop(s);
    }
  }
  if (v.phase === "all" || v.phase === "queue") {
    await using redis = await startRedis();
    const mib = Number(v["queue-mib"]);
    const extra = v["redis-options"] ? `&${v["redis-options"]}` : "";
    const s = await spawnWith([`redis://127.0.0.1:${redis.port}?queue_bytes=${mib}MiB${extra}`]);
    try {
      console.log(formatPhase(await fillAndDrain(s, redis, { fillBytes: mib * MIB, settleMs })));
    } finally {
      await stop(s);
    }
  }
}

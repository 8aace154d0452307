// One peer flooding as fast as loopback allows must not starve the other 99 (issue 15 item 3):
// the slow peers' events keep arriving while the flood runs, not only after it. Real main.ts,
// real sockets; the flooder writes from a Worker (its own thread), the slow peers from here.
import { assert, assertEquals } from "./_assert.ts";
import { spawnSidecar } from "./_ops.ts";
import { distinctFrames } from "./_servers.ts";
import { concat, eventBody, fixtureVectors, frameOf } from "./_vectors.ts";
import { DELIVERED, IngestServer, Router } from "../lib/internal.ts";

/** The frame reader's largest read (its `maxReadBytes` default). */
const MAX_READ = 64 * 1024;

const SLOW = 99;
const ROUNDS = 20;
const EVERY_MS = 100;

interface FloodReport {
  bytes: number;
  done: boolean;
  error?: string;
}

/** The flood worker's reports: its first round written, and its end (bounded waits). */
function floodReports(worker: Worker): { started: Promise<void>; stopped: Promise<FloodReport> } {
  let start!: () => void, stop!: (r: FloodReport) => void;
  const started = new Promise<void>((r) => start = r);
  const stopped = new Promise<FloodReport>((r) => stop = r);
  worker.onmessage = (e: MessageEvent<FloodReport>) => e.data.done ? stop(e.data) : start();
  const bound = <T>(p: Promise<T>, what: string) => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    return Promise.race([
      p,
      new Promise<never>((_, reject) =>
        timer = setTimeout(() => reject(new Error(`flood worker: ${what} within 60 s`)), 60_000)
      ),
    ]).finally(() => clearTimeout(timer));
  };
  return { started: bound(started, "no first round"), stopped: bound(stopped, "no stop") };
}

Deno.test("read budget: 99 slow peers' events keep arriving while one peer floods", async () => {
  const template = fixtureVectors().find((v) =>
    v.name === "101_on_client_offline_reason_normal_disconnect"
  )!;
  // Only the slow peers' hook is written out: the flood is read and routed, not printed.
  const s = await spawnSidecar([
    "--listen",
    "127.0.0.1:0",
    "--admin",
    "127.0.0.1:0",
    "--out",
    "stdout?hooks=on_client_offline",
  ]);
  const sentAt = new Map<string, number>();
  const seen = new Set<string>();
  let flooding = true, duringFlood = 0;
  const latencies: number[] = [];
  const reader = (async () => {
    const dec = new TextDecoder();
    let rest = "";
    for await (const chunk of s.proc.stdout) {
      rest += dec.decode(chunk, { stream: true });
      const lines = rest.split("\n");
      rest = lines.pop()!;
      for (const l of lines) {
        const id = JSON.parse(l).client_id as string;
        assert(!seen.has(id), `${id} delivered twice`);
        seen.add(id);
        if (flooding) duringFlood++, latencies.push(performance.now() - sentAt.get(id)!);
      }
    }
  })();
  const worker = new Worker(new URL("./_flood_worker.ts", import.meta.url), { type: "module" });
  const slow: Deno.TcpConn[] = [];
  try {
    for (let i = 0; i < SLOW; i++) {
      slow.push(await Deno.connect({ hostname: "127.0.0.1", port: s.port }));
    }
    const { started, stopped } = floodReports(worker);
    worker.postMessage({ port: s.port, bytes: concat(distinctFrames("flood", 10_000)) });
    await started; // the flood runs before the slow peers start
    const t0 = performance.now();
    let firstHalf = 0, firstHalfDelivered = 0;
    for (let k = 0; k < ROUNDS; k++) {
      await Promise.all(slow.map(async (c, i) => {
        const id = `slow-${i}-${k}`;
        const frame = frameOf(
          eventBody("on_client_offline", { ...template.expected.event, client_id: id }),
        );
        sentAt.set(id, performance.now());
        for (let at = 0; at < frame.length;) at += await c.write(frame.subarray(at));
      }));
      if (k === ROUNDS / 2 - 1) firstHalf = sentAt.size;
      await new Promise((r) => setTimeout(r, EVERY_MS));
    }
    for (const id of sentAt.keys()) {
      if (Number(id.split("-")[2]) < ROUNDS / 2 && seen.has(id)) firstHalfDelivered++;
    }
    flooding = false;
    worker.postMessage("stop");
    const flood = await stopped;
    const secs = (performance.now() - t0) / 1000;
    assertEquals(flood.error, undefined);
    assert(flood.bytes >= 20e6, `the flood sent only ${flood.bytes} bytes`);
    latencies.sort((a, b) => a - b);
    const q = (p: number) =>
      latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))]?.toFixed(0);
    console.log(
      `flood: ${(flood.bytes / 1e6).toFixed(0)} MB in ${
        secs.toFixed(1)
      } s; slow events: ${sentAt.size} sent, ${duringFlood} delivered during the flood (first half: ${firstHalfDelivered} of ${firstHalf}); latency during the flood p50 ${
        q(0.5)
      } p99 ${q(0.99)} max ${q(1)} ms`,
    );
    // Starved peers' events would come only after the flood: at least half of the first
    // half's (sent a second or more before the flood stopped) arrived while it ran.
    assert(
      firstHalfDelivered >= firstHalf / 2,
      `${firstHalfDelivered} of ${firstHalf} slow events arrived during the flood`,
    );
    for (const c of slow) c.close();
    slow.length = 0;
    s.kill("SIGTERM");
    assertEquals((await s.proc.status).code, 0, s.stderr());
    await reader;
    assertEquals(seen.size, sentAt.size, "every slow event arrived exactly once");
  } finally {
    worker.terminate();
    for (const c of slow) c.close();
    try {
      s.kill("SIGKILL");
    } catch { /* exited */ }
    await s.proc.status;
    await reader.catch(() => {});
  }
});

Deno.test("read budget: a flooding connection gets one read (at most 64 KiB) per event-loop turn", async () => {
  // The real server and pipeline in this process, over real TCP; the output only counts.
  let sent = 0;
  const p = new Router([{
    sink: {
      name: "count",
      send: (b) => (sent += b.count, Promise.resolve(DELIVERED)),
      close: () => Promise.resolve(),
    },
  }]);
  const server = new IngestServer(p, {
    hostname: "127.0.0.1",
    port: 0,
    maxFrameBytes: 1 << 20,
    maxConnections: 10,
  });
  const { port } = server.listen();
  // A message loop: one message per event-loop turn. The bytes received between two messages
  // are what the readers took in one turn (with one peer: what that connection took).
  const ch = new MessageChannel();
  let running = true, last = 0, most = 0, turns = 0;
  ch.port1.onmessage = () => {
    most = Math.max(most, p.bytesReceived - last);
    last = p.bytesReceived;
    turns++;
    if (running) ch.port2.postMessage(0);
  };
  ch.port2.postMessage(0);
  const worker = new Worker(new URL("./_flood_worker.ts", import.meta.url), { type: "module" });
  try {
    const { stopped } = floodReports(worker);
    worker.postMessage({ port, bytes: concat(distinctFrames("flood", 10_000)) });
    const until = performance.now() + 4_000; // the message loop keeps a core busy: short
    while (p.bytesReceived < 4e6 && performance.now() < until) {
      await new Promise((r) => setTimeout(r, 50));
    }
    worker.postMessage("stop");
    assertEquals((await stopped).error, undefined);
    console.log(
      `received ${(p.bytesReceived / 1e6).toFixed(1)} MB over ${turns} turns; at most ${
        (most / 1024).toFixed(1)
      } KiB in one turn`,
    );
    assert(p.bytesReceived >= 512 * 1024, `the flood got ${p.bytesReceived} bytes in`);
    // One read per connection per turn, of at most MAX_READ bytes, plus the start of a frame
    // that read completed (frames here are < 1 KiB).
    assert(most <= MAX_READ + 1024, `${most} bytes taken in by one turn (one read: ${MAX_READ})`);
  } finally {
    running = false;
    worker.terminate();
    await server.shutdown(2000);
    await p.close(2000);
    ch.port1.close();
    ch.port2.close();
  }
  assert(sent > 0);
});

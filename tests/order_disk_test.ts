// Per-client order for buffer=disk outputs (`order=client` read from the shared journal, issue
// 14 item 2), end to end: the real main.ts with a --data-dir, a real redis-server, the
// plugin-like sender over 100 connections with each client's events shuffled; and a kill -9
// mid-stream: every event at least once, each client's events in order before the crash and
// in order in the replay after it.
import { assert, assertEquals } from "./_assert.ts";
import { clientPublish, mulberry32 } from "./_vectors.ts";
import { type Ops, scrape, spawnSidecar } from "./_ops.ts";
import { valueOf } from "./_prom.ts";
import { redisClient, startRedis, xlen, xrange } from "./_servers.ts";
import { sidecarTempDir, waitFor } from "./_sidecar.ts";
import { PluginSender } from "../lib/testing.ts";

const utf8 = new TextDecoder();

/** An on_publish of `client` at BASE + `ms` ms, its topic `t/CLIENT/SEQ`. */
function publish(client: number, ms: number): Uint8Array {
  return clientPublish(client, ms, `t/${client}/${ms}`);
}

/** Every client's events in rounds; in each round all clients' events in one shuffled order. */
function shuffledRounds(clients: number, rounds: number, k: number, seed: number): number[][] {
  const rng = mulberry32(seed), out: number[][] = [];
  for (let r = 0; r < rounds; r++) {
    const round: number[][] = [];
    for (let c = 0; c < clients; c++) for (let i = 0; i < k; i++) round.push([c, r * k + i]);
    for (let i = round.length - 1; i > 0; i--) {
      const j = Math.floor(rng() * (i + 1));
      [round[i], round[j]] = [round[j], round[i]];
    }
    out.push(...round);
  }
  return out;
}

/** (client, seq) of each stream entry, in stream order. */
function entriesOf(got: { fields: Record<string, Uint8Array> }[]): [number, number][] {
  return got.map((e) => {
    const [, c, seq] = (JSON.parse(utf8.decode(e.fields.event)).topic as string).split("/");
    return [Number(c), Number(seq)];
  });
}

/** Per client, how many of its events come after a later one. */
function inversions(entries: [number, number][]): { clients: number; inverted: number } {
  const last = new Map<number, number>(), bad = new Set<number>();
  let inverted = 0;
  for (const [c, seq] of entries) {
    if (seq < (last.get(c) ?? -1)) {
      inverted++;
      bad.add(c);
    } else last.set(c, seq);
  }
  return { clients: bad.size, inverted };
}

function start(dataDir: string, outs: string[]): Promise<Ops> {
  return spawnSidecar([
    "--listen",
    "127.0.0.1:0",
    "--admin",
    "127.0.0.1:0",
    "--data-dir",
    dataDir,
    ...outs.flatMap((o) => ["--out", o]),
  ], { stdout: "null" });
}

async function metric(s: Ops, name: string, labels: Record<string, string>): Promise<number> {
  return valueOf(await scrape(s.adminPort), name, labels) ?? 0;
}

async function sendAll(s: Ops, events: number[][], seed: number): Promise<void> {
  const sender = await PluginSender.connect({ port: s.port, connections: 100, seed, jitterMs: 1 });
  // Every connection accepted first: a frame on one accepted later would wait past the window.
  await waitFor(
    async () => await metric(s, "vmq_sidecar_connections_open", {}) === 100,
    "100 connections open",
    30_000,
  );
  for (const [c, seq] of events) await sender.send(publish(c, seq));
  await sender.close({ timeoutMs: 30_000 });
}

Deno.test("order=client with buffer=disk (redis): each client's events in broker-time order over 100 connections; the unordered key beside it is not; counters add up", async () => {
  const dir = await sidecarTempDir();
  await using redis = await startRedis();
  const client = await redisClient(redis.port);
  const CLIENTS = 100, ROUNDS = 5, K = 5, N = CLIENTS * ROUNDS * K;
  const ordered = `redis://127.0.0.1:${redis.port}?key=ordered&order=client&order_window_ms=1000`;
  const s = await start(dir, [ordered, `redis://127.0.0.1:${redis.port}?key=plain`]);
  try {
    await sendAll(s, shuffledRounds(CLIENTS, ROUNDS, K, 14), 14);
    await waitFor(
      async () => await xlen(client, "ordered") >= N && await xlen(client, "plain") >= N,
      `${N} entries in both keys`,
      60_000,
    );
    const label = { output: `redis://127.0.0.1:${redis.port}/0` };
    const m = await scrape(s.adminPort);
    assertEquals(valueOf(m, "vmq_sidecar_reorder_held_events", label), 0);
    assertEquals(valueOf(m, "vmq_sidecar_reorder_early_total", label), 0);
    const o = entriesOf(await xrange(client, "ordered"));
    const p = entriesOf(await xrange(client, "plain"));
    assertEquals(o.length, N);
    assertEquals(inversions(o), { clients: 0, inverted: 0 }, "order=client key");
    assert(inversions(p).clients > CLIENTS / 2, "the key without order=client is in order");
    s.kill("SIGTERM");
    const { code, stderr } = await s.wait();
    assertEquals(code, 0, stderr);
    assert(
      stderr.includes(`given=${N} sent=${N} dead-lettered=0 lost=0 dropped=0 unflushed=0`),
      stderr.slice(-2000),
    );
  } finally {
    try {
      s.kill("SIGKILL");
    } catch { /* exited */ }
    await s.wait().catch(() => {});
    client.destroy();
  }
});

Deno.test("order=client with buffer=disk (redis): kill -9 mid-stream — after the replay every event is there, each client's events in order before the crash and in the replay", async () => {
  const dir = await sidecarTempDir();
  await using redis = await startRedis();
  const client = await redisClient(redis.port);
  const CLIENTS = 100, ROUNDS = 6, K = 5, N = CLIENTS * ROUNDS * K;
  const out = `redis://127.0.0.1:${redis.port}?key=k&order=client&order_window_ms=1000`;
  const label = { output: `redis://127.0.0.1:${redis.port}/0` };
  const s1 = await start(dir, [out]);
  let before = 0;
  try {
    await sendAll(s1, shuffledRounds(CLIENTS, ROUNDS, K, 7), 7);
    await waitFor(
      async () => await metric(s1, "vmq_sidecar_output_events_received_total", label) >= N,
      `${N} events journaled`,
      30_000,
    );
    // Killed once the first are delivered, while most are still held for their window (1 s).
    await waitFor(async () => await xlen(client, "k") > 0, "the first delivered", 30_000);
    s1.kill("SIGKILL");
    await s1.wait();
    await new Promise((r) => setTimeout(r, 200)); // a transaction sent before the kill lands
    before = await xlen(client, "k");
  } finally {
    try {
      s1.kill("SIGKILL");
    } catch { /* killed above */ }
  }
  assert(0 < before && before < N, `the kill came mid-stream (${before} of ${N} delivered)`);
  const s2 = await start(dir, [out]);
  try {
    await waitFor(
      async () => await metric(s2, "vmq_sidecar_buffer_events", label) === 0,
      "the replay drained",
      60_000,
    );
    await waitFor(async () => await xlen(client, "k") >= N, `at least ${N} entries`, 30_000);
    const all = entriesOf(await xrange(client, "k"));
    const seen = new Set(all.map(([c, seq]) => `${c}/${seq}`));
    assertEquals(seen.size, N, `${N - seen.size} events missing after the replay`);
    // Before the crash: in order per client; the replay (from the oldest block with an event
    // not yet delivered; what of it was delivered before comes again): in order per client.
    assertEquals(inversions(all.slice(0, before)), { clients: 0, inverted: 0 }, "before");
    const late = await metric(s2, "vmq_sidecar_reorder_late_total", label);
    assertEquals(
      inversions(all.slice(before)),
      { clients: 0, inverted: 0 },
      `the replay (${late} late)`,
    );
    assert(all.length - N <= before, `${all.length - N} duplicates`);
    console.log(`kill -9 after ${before} of ${N}; ${all.length - N} sent again after the restart`);
  } finally {
    s2.kill("SIGKILL");
    await s2.wait().catch(() => {});
    client.destroy();
  }
});

// RedisSink (lib/outputs/redis/sink.ts) used directly, against a real redis-server: several
// batches in flight (`send` called again before the earlier calls settled), each settled by its
// own EXEC reply; the server stopped with sends outstanding and restarted (every batch left
// unanswered is looked up in order, nothing lost, nothing stored twice); the lookup is not fooled
// by an identical event stored earlier.
import { bounded } from "./_sidecar.ts";
import { assert, assertEquals } from "./_assert.ts";
import { concat } from "./_vectors.ts";
import { distinctFrames, redisClient, sha256Id, startRedis, xlen, xrange } from "./_servers.ts";
import { factoryOf, type OutputBatch, type SendResult, type Sink } from "../lib/internal.ts";

const utf8 = new TextDecoder();

/** A Redis output's sink (as main.ts creates it) for `redis://127.0.0.1:<port>/0`. */
async function redisSink(port: number, options: Record<string, unknown> = {}): Promise<Sink> {
  const spec = {
    kind: "redis" as const,
    target: `redis://127.0.0.1:${port}/0`,
    format: "json" as const,
    payload: "base64" as const,
    hooks: null,
    topics: null,
    queueBytes: 1 << 24,
    onFull: "block" as const,
    options: { key: "ev", ...options },
  };
  const { sink } = await factoryOf(spec, "--out").create(spec, "--out");
  return sink;
}

/** `batches` batches of `size` distinct events (client ids `<tag>-<i>`, in order). */
function batchesOf(tag: string, batches: number, size: number): OutputBatch[] {
  const frames = distinctFrames(tag, batches * size);
  return Array.from({ length: batches }, (_, b) => ({
    bytes: concat(frames.slice(b * size, (b + 1) * size)),
    count: size,
  }));
}

type Client = Awaited<ReturnType<typeof redisClient>>;

/** The client ids of stream `ev`, in stream order. */
async function storedIds(client: Client): Promise<string[]> {
  return (await xrange(client, "ev")).map((e) =>
    JSON.parse(utf8.decode(e.fields.event)).client_id as string
  );
}

/**
 * Sends every batch as Delivery with several in flight does: all calls made at once, then the
 * ones answered `retry` again, in order (all at once again), until all are delivered.
 */
async function deliverAll(sink: Sink, batches: OutputBatch[], rounds = 200): Promise<number> {
  let pending = batches.map((_, i) => i), retries = 0;
  for (let round = 0; round < rounds && pending.length > 0; round++) {
    const results = await bounded(
      Promise.all(pending.map((i) => sink.send(batches[i]))),
      30_000,
      "a round of sends",
    );
    const next = pending.filter((_, k) => results[k].outcome === "retry");
    for (const r of results) assert(r.outcome !== "rejected", JSON.stringify(r));
    retries += next.length;
    pending = next;
    if (pending.length > 0) await new Promise((r) => setTimeout(r, 50));
  }
  assertEquals(pending.length, 0, `batches still not delivered: ${pending}`);
  return retries;
}

for (const [sends, size] of [[16, 250], [4, 1000]]) {
  Deno.test(`redis sink: ${sends} sends of ${size} events without awaiting — each settled delivered by its own EXEC, every id stored once, in call order`, async () => {
    await using redis = await startRedis();
    const client = await redisClient(redis.port);
    const sink = await redisSink(redis.port);
    try {
      const total = sends * size, batches = batchesOf("r", sends, size);
      const results: SendResult[] = await bounded(
        Promise.all(batches.map((b) => sink.send(b))),
        30_000,
        `${sends} sends`,
      );
      for (const r of results) assertEquals(r.outcome, "delivered", JSON.stringify(r));
      const entries = await xrange(client, "ev");
      assertEquals(entries.length, total);
      const want = distinctFrames("r", total);
      for (let i = 0; i < total; i += 397) { // the stable id of a sample, byte for byte
        assertEquals(utf8.decode(entries[i].fields.id), await sha256Id(want[i].subarray(4)));
      }
      const ids = entries.map((e) => JSON.parse(utf8.decode(e.fields.event)).client_id as string);
      assertEquals(ids, Array.from({ length: total }, (_, i) => `r-${i}`));
    } finally {
      await sink.close();
      client.destroy();
    }
  });
}

Deno.test("redis sink: server stopped cleanly (SIGTERM) with sends outstanding, 3 times, and restarted: every batch delivered, every event stored exactly once, in order", async () => {
  await using redis = await startRedis(["--appendonly", "yes", "--appendfsync", "always"]);
  const client = await redisClient(redis.port);
  const sink = await redisSink(redis.port);
  try {
    const batches = batchesOf("s", 24, 500);
    let retries = 0;
    for (let round = 0; round < 3; round++) {
      const mine = batches.slice(round * 8, (round + 1) * 8);
      const sending = deliverAll(sink, mine);
      // Stop once the server has stored part of this round: sends are outstanding then.
      const until = Date.now() + 20_000, floor = round * 4000 + 500;
      while (await xlen(client, "ev") < floor && Date.now() < until) {
        await new Promise((r) => setTimeout(r, 2));
      }
      await redis.stop();
      await new Promise((r) => setTimeout(r, 200));
      await redis.start();
      retries += await sending;
    }
    const ids = await storedIds(client);
    assertEquals(new Set(ids).size, 12_000, "every event stored");
    assertEquals(ids.length - 12_000, 0, `${ids.length - 12_000} duplicates`);
    assertEquals(ids, Array.from({ length: 12_000 }, (_, i) => `s-${i}`), "in order");
    console.log(`redis sink restarts: ${retries} batch retries, 0 duplicates`);
  } finally {
    await sink.close();
    client.destroy();
  }
});

Deno.test("redis sink: an unanswered batch whose last event was stored earlier (an identical frame) is sent again, not taken as stored", async () => {
  await using redis = await startRedis();
  const client = await redisClient(redis.port);
  // A short reply timeout: a paused server leaves the batch unanswered, the connection drops.
  const sink = await redisSink(redis.port, { timeout_ms: 300 });
  try {
    const frames = distinctFrames("d", 5);
    const last = frames[4];
    // The batch's last event, alone, stored first (the plugin sent the same frame twice).
    assertEquals((await sink.send({ bytes: last, count: 1 })).outcome, "delivered");
    const batch = { bytes: concat(frames), count: 5 };
    await client.sendCommand(["CLIENT", "PAUSE", "1500", "ALL"]);
    const first = await bounded(sink.send(batch), 5000, "the paused send");
    assertEquals(first.outcome, "retry", "no EXEC reply within 300 ms");
    // The paused server never ran the dropped connection's transaction; once it is back the
    // batch goes again (the lookup sees its last id but not its first one before it).
    let r: SendResult = first;
    for (let i = 0; i < 100 && r.outcome === "retry"; i++) {
      await new Promise((res) => setTimeout(res, 100));
      r = await bounded(sink.send(batch), 5000, "a retry");
    }
    assertEquals(r.outcome, "delivered");
    const ids = await storedIds(client);
    assertEquals(ids, ["d-4", "d-0", "d-1", "d-2", "d-3", "d-4"]);
  } finally {
    await client.sendCommand(["CLIENT", "UNPAUSE"]).catch(() => {});
    await sink.close();
    client.destroy();
  }
});

/**
 * A TCP relay between the sink and redis-server that can swallow the server's replies (the
 * commands still reach the server): a reply lost after the server ran the `EXEC`.
 */
function replyEater(upstream: number) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns: Deno.Conn[] = [];
  const state = { swallow: false };
  const pump = async (from: Deno.Conn, to: Deno.Conn, replies: boolean) => {
    const buf = new Uint8Array(64 * 1024);
    try {
      for (;;) {
        const n = await from.read(buf);
        if (n === null) break;
        if (replies && state.swallow) continue;
        for (let p = 0; p < n;) p += await to.write(buf.subarray(p, n));
      }
    } catch { /* closed */ }
    for (const c of [from, to]) {
      try {
        c.close();
      } catch { /* closed already */ }
    }
  };
  const accepting = (async () => {
    for await (const down of listener) {
      const up = await Deno.connect({ hostname: "127.0.0.1", port: upstream });
      conns.push(down, up);
      pump(down, up, false);
      pump(up, down, true);
    }
  })().catch(() => {});
  return {
    port: (listener.addr as Deno.NetAddr).port,
    state,
    async close() {
      listener.close();
      for (const c of conns) {
        try {
          c.close();
        } catch { /* closed already */ }
      }
      await accepting;
    },
  };
}

Deno.test("redis sink: 4 batches in flight stored but their EXEC replies lost — each is looked up in order on the new connection and not sent again (no duplicate)", async () => {
  await using redis = await startRedis();
  const relay = replyEater(redis.port);
  const client = await redisClient(redis.port);
  const sink = await redisSink(relay.port, { timeout_ms: 500 });
  try {
    const batches = batchesOf("l", 4, 1000);
    relay.state.swallow = true;
    const first = await bounded(Promise.all(batches.map((b) => sink.send(b))), 10_000, "sends");
    for (const r of first) assertEquals(r.outcome, "retry", "no EXEC reply reached the sink");
    const until = Date.now() + 10_000;
    while (await xlen(client, "ev") < 4000 && Date.now() < until) {
      await new Promise((r) => setTimeout(r, 20));
    }
    assertEquals(await xlen(client, "ev"), 4000, "the server ran every EXEC");
    relay.state.swallow = false;
    await deliverAll(sink, batches);
    const ids = await storedIds(client);
    assertEquals(ids.length - 4000, 0, `${ids.length - 4000} duplicates`);
    assertEquals(ids, Array.from({ length: 4000 }, (_, i) => `l-${i}`));
  } finally {
    await sink.close();
    await relay.close();
    client.destroy();
  }
});

// NatsSink (lib/outputs/nats/sink.ts) used directly, against a real nats-server -js: several
// batches in flight (`send` called again before the earlier calls settled), each with its own
// buffer and acknowledgements; messages above max_payload refused per batch; the server stopped
// with sends outstanding and restarted (nothing lost, Nats-Msg-Id dedupe keeps one copy).
import { assert, assertEquals } from "./_assert.ts";
import { concat, eventBody, fixtureVectors, frameOf } from "./_vectors.ts";
import { bounded, sidecarTempDir } from "./_sidecar.ts";
import {
  addStream,
  distinctFrames,
  natsClient,
  sha256Id,
  startNats,
  streamCount,
  streamEvents,
} from "./_servers.ts";
import { factoryOf, type OutputBatch, type SendResult, type Sink } from "../lib/internal.ts";

const utf8 = new TextDecoder();

/** A NATS output's sink (as main.ts creates it) for `nats://127.0.0.1:<port>`. */
async function natsSink(port: number, dir: string, options: Record<string, unknown> = {}) {
  const spec = {
    kind: "nats" as const,
    target: `nats://127.0.0.1:${port}`,
    format: "json" as const,
    payload: "base64" as const,
    hooks: null,
    topics: null,
    queueBytes: 1 << 24,
    onFull: "block" as const,
    options: { dead_letter: `${dir}/dead.ndjson`, ...options },
  };
  const { sink } = await factoryOf(spec, "--out").create(spec, "--out");
  return sink;
}

/** `batches` batches of `size` distinct events (client ids `<tag>-<i>`, in order). */
function batchesOf(frames: Uint8Array[], batches: number): OutputBatch[] {
  const size = frames.length / batches;
  return Array.from({ length: batches }, (_, b) => ({
    bytes: concat(frames.slice(b * size, (b + 1) * size)),
    count: size,
  }));
}

/** A send whose rejection (the sink throws to retry) is a `retry` result, as Delivery takes it. */
function send(sink: Sink, batch: OutputBatch): Promise<SendResult> {
  return sink.send(batch).catch((e) => ({ outcome: "retry", reason: (e as Error).message }));
}

/**
 * Sends every batch as Delivery with several in flight does: all calls made at once, then the
 * ones answered `retry` again, in order (all at once again), until all are delivered.
 */
async function deliverAll(sink: Sink, batches: OutputBatch[], rounds = 300): Promise<number> {
  let pending = batches.map((_, i) => i), retries = 0;
  for (let round = 0; round < rounds && pending.length > 0; round++) {
    const results = await bounded(
      Promise.all(pending.map((i) => send(sink, batches[i]))),
      30_000,
      "a round of sends",
    );
    for (const r of results) assert(r.outcome !== "rejected", JSON.stringify(r));
    pending = pending.filter((_, k) => results[k].outcome === "retry");
    retries += pending.length;
    if (pending.length > 0) await new Promise((r) => setTimeout(r, 50));
  }
  assertEquals(pending.length, 0, `batches still not delivered: ${pending}`);
  return retries;
}

for (const [sends, size, create] of [[16, 125, false], [4, 500, true]] as const) {
  Deno.test(
    `nats sink: ${sends} sends of ${size} events without awaiting${
      create ? " on a new sink with create_stream" : ""
    } — each delivered, every event stored once with its Nats-Msg-Id, in call order`,
    async () => {
      await using nats = await startNats();
      const dir = await sidecarTempDir();
      const nc = await natsClient(nats.port);
      const sink = await natsSink(nats.port, dir, create ? { create_stream: "EV" } : {});
      try {
        if (!create) await addStream(nc, "EV", ["vmq.events.>"]);
        const total = sends * size, frames = distinctFrames("n", total);
        const results = await bounded(
          Promise.all(batchesOf(frames, sends).map((b) => sink.send(b))),
          30_000,
          `${sends} sends`,
        );
        for (const r of results) assertEquals(r.outcome, "delivered", JSON.stringify(r));
        const got = await streamEvents(nc, "EV");
        assertEquals(got.length, total);
        const ids = got.map((m) => JSON.parse(utf8.decode(m.data)).client_id as string);
        assertEquals(ids, Array.from({ length: total }, (_, i) => `n-${i}`));
        for (let i = 0; i < total; i += 97) {
          assertEquals(got[i].msgId, await sha256Id(frames[i].subarray(4)));
        }
      } finally {
        await sink.close();
        await nc.close();
        await Deno.remove(dir, { recursive: true });
      }
    },
  );
}

Deno.test("nats sink: 6 batches in flight with events above max_payload — each batch's own too-large events are refused (dead letters), the rest stored once", async () => {
  await using nats = await startNats({ config: "max_payload: 2048\n" });
  const dir = await sidecarTempDir();
  const nc = await natsClient(nats.port);
  const sink = await natsSink(nats.port, dir);
  try {
    await addStream(nc, "EV", ["vmq.events.>"]);
    const template = fixtureVectors().find((v) => v.name === "027_on_publish_typical")!;
    // Batch b has b + 1 events of 3000 payload bytes (above 2048 in JSON), among 50 small ones.
    const batches: OutputBatch[] = [], big: string[][] = [];
    for (let b = 0; b < 6; b++) {
      const frames: Uint8Array[] = [];
      big.push([]);
      for (let i = 0; i < 50; i++) {
        const large = i % 10 === 3 && big[b].length <= b;
        const id = `b${b}-${i}`;
        if (large) big[b].push(id);
        frames.push(frameOf(eventBody("on_publish", {
          ...template.expected.event,
          client_id: id,
          payload: new Uint8Array(large ? 3000 : 100).fill(0x41 + i % 26),
        })));
      }
      batches.push({ bytes: concat(frames), count: 50 });
    }
    const results = await bounded(Promise.all(batches.map((b) => sink.send(b))), 30_000, "sends");
    for (let b = 0; b < 6; b++) {
      const r = results[b];
      assert(r.outcome === "delivered", JSON.stringify(r));
      const refused = (r.rejected ?? []).map((d) =>
        JSON.parse(utf8.decode(d.body)).client_id as string
      );
      assertEquals(refused, big[b], `batch ${b}: its own large events`);
      for (const d of r.rejected ?? []) assert(/max_payload/.test(d.reason), d.reason);
    }
    const stored = (await streamEvents(nc, "EV")).map((m) =>
      JSON.parse(utf8.decode(m.data)).client_id as string
    );
    const refusedAll = new Set(big.flat());
    const want = batches.flatMap((_, b) =>
      Array.from({ length: 50 }, (_, i) => `b${b}-${i}`).filter((id) => !refusedAll.has(id))
    );
    assertEquals(stored, want);
  } finally {
    await sink.close();
    await nc.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("nats sink: server stopped (SIGTERM) with sends outstanding, twice, and restarted — every batch delivered, every event stored exactly once (Nats-Msg-Id dedupe)", async () => {
  await using nats = await startNats();
  const dir = await sidecarTempDir();
  const nc = await natsClient(nats.port);
  const sink = await natsSink(nats.port, dir, { ack_timeout_ms: 2000 });
  try {
    await addStream(nc, "EV", ["vmq.events.>"]);
    const rounds = 2, perRound = 2000, frames = distinctFrames("s", rounds * perRound);
    let retries = 0;
    for (let round = 0; round < rounds; round++) {
      const mine = batchesOf(frames.slice(round * perRound, (round + 1) * perRound), 8);
      const sending = deliverAll(sink, mine);
      const until = Date.now() + 20_000, floor = round * perRound + 200;
      while (await streamCount(nc, "EV") < floor && Date.now() < until) {
        await new Promise((r) => setTimeout(r, 5));
      }
      await nats.stop();
      await new Promise((r) => setTimeout(r, 200));
      await nats.start();
      retries += await sending;
    }
    const until = Date.now() + 20_000;
    while (await streamCount(nc, "EV") < rounds * perRound && Date.now() < until) {
      await new Promise((r) => setTimeout(r, 50));
    }
    const ids = (await streamEvents(nc, "EV")).map((m) =>
      JSON.parse(utf8.decode(m.data)).client_id as string
    );
    assertEquals(ids.length - rounds * perRound, 0, `${ids.length - rounds * perRound} extra`);
    assertEquals(new Set(ids).size, rounds * perRound, "every event stored");
    console.log(`nats sink restarts: ${retries} batch retries, 0 duplicates`);
  } finally {
    await sink.close();
    await nc.close();
    await Deno.remove(dir, { recursive: true });
  }
});

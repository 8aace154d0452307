// The handler API (issue 14 phase 2): handlers as output instances behind the same buffer, run
// by a real Sidecar on real sockets, driven by the plugin-like sender (events of one client
// spread over many connections at random).
import { assert, assertEquals } from "./_assert.ts";
import {
  defineHandler,
  type Handler,
  loadConfig,
  type OnPublishEvent,
  Reject,
  Sidecar,
} from "../lib/mod.ts";
import { frameOf, PluginSender, startTestSidecar } from "../lib/testing.ts";
import { WRITABLE_TMP } from "./_sidecar.ts";
import { DiskJournal } from "../lib/internal.ts";

const T0 = 1_764_620_000n;

function publish(client: string, i: number, topic = `t/${client}`): OnPublishEvent {
  return {
    hook: "on_publish",
    timestamp: { seconds: T0 + BigInt(Math.floor(i / 1000)), nanos: (i % 1000) * 1000 },
    username: "u",
    client_id: client,
    mountpoint: "",
    qos: 1,
    topic,
    payload: new TextEncoder().encode(String(i)),
    retain: false,
    matched_acl: { name: "", pattern: "" },
    session_id: `s-${client}`,
  };
}

async function start(handlers: Handler[]): Promise<{ sidecar: Sidecar; sender: PluginSender }> {
  const config = {
    ...loadConfig({ flags: ["--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0"] }),
    outputs: [],
    logLevel: "error" as const,
  };
  const sidecar = await Sidecar.start({ config, handlers });
  const sender = await PluginSender.connect({
    port: sidecar.addr.port,
    connections: 16,
    seed: 7,
    jitterMs: 2,
  });
  return { sidecar, sender };
}

async function until(what: string, ok: () => boolean, timeoutMs = 20_000): Promise<void> {
  const end = performance.now() + timeoutMs;
  while (!ok()) {
    if (performance.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

Deno.test("handlers: per-hook and catch-all functions get typed events; counters add up", async () => {
  const topics: string[] = [];
  const others: string[] = [];
  let lateSeen = 0;
  const h = defineHandler({
    name: "typed",
    onPublish(e, ctx) {
      topics.push(e.topic);
      assert(e.payload instanceof Uint8Array);
      assertEquals(
        ctx.time.epochNanos,
        e.timestamp.seconds * 1_000_000_000n + BigInt(e.timestamp.nanos),
      );
      if (ctx.late) lateSeen++;
    },
    async onEvent(e) {
      await new Promise((r) => setTimeout(r, 1));
      others.push(e.hook);
    },
  });
  const { sidecar, sender } = await start([h]);
  try {
    for (let i = 0; i < 200; i++) await sender.send(frameOf(publish(`c${i % 10}`, i)).subarray(4));
    await sender.send(
      frameOf({
        hook: "on_client_wakeup",
        timestamp: { seconds: T0, nanos: 5 },
        client_id: "c1",
        mountpoint: "",
        session_id: "s",
      }).subarray(4),
    );
    await sender.close();
    await until("all events", () => topics.length + others.length === 201);
    assertEquals(others, ["on_client_wakeup"]);
    assertEquals(lateSeen, 0);
  } finally {
    const s = await sidecar.close();
    const t = s.outputs["typed"];
    assertEquals(t.given, 201);
    assertEquals(t.sent, 201);
    assertEquals(t.unflushed, 0);
  }
});

Deno.test("handlers: per-client order within the window, across 16 connections with jitter", async () => {
  const seen = new Map<string, number[]>();
  let overlap = 0;
  const running = new Set<string>();
  const h = defineHandler({
    name: "ordered",
    concurrency: 8,
    async onPublish(e) {
      if (running.has(e.client_id)) overlap++;
      running.add(e.client_id);
      await new Promise((r) => setTimeout(r, Math.random() * 2));
      running.delete(e.client_id);
      const list = seen.get(e.client_id) ?? [];
      list.push(Number(new TextDecoder().decode(e.payload)));
      seen.set(e.client_id, list);
    },
  });
  const { sidecar, sender } = await start([h]);
  try {
    const n = 600;
    for (let i = 0; i < n; i++) await sender.send(frameOf(publish(`c${i % 6}`, i)).subarray(4));
    await sender.close();
    await until("all events", () => [...seen.values()].reduce((a, l) => a + l.length, 0) === n);
    const late =
      (sidecar.pipeline.queues[0] as unknown as { stage?: { late: number } }).stage?.late ?? 0;
    for (const [client, list] of seen) {
      // Arrival order over 16 jittered connections is shuffled; handling order is sorted
      // unless an event came later than the window (then flagged late and counted).
      if (late === 0) assertEquals(list, [...list].sort((a, b) => a - b), client);
    }
    assertEquals(overlap, 0, "calls for one client overlapped");
  } finally {
    await sidecar.close();
  }
});

Deno.test("handlers: a throw retries with backoff, Reject dead-letters, never fatal, others unaffected", async () => {
  const deadLetter = `${WRITABLE_TMP}/handlers-test-${crypto.randomUUID()}.ndjson`;
  const thrown = new Set<number>();
  const handled: number[] = [];
  let peak = 0, inFlight = 0;
  const flaky = defineHandler({
    name: "flaky",
    deadLetter,
    concurrency: 4,
    retry: { initialMs: 10, maxMs: 50, maxAttempts: 5 },
    async onPublish(e, ctx) {
      inFlight++;
      peak = Math.max(peak, inFlight);
      try {
        await new Promise((r) => setTimeout(r, 1));
        const i = Number(new TextDecoder().decode(e.payload));
        if (i % 10 === 3) throw new Reject(`bad ${i}`);
        if (i % 7 === 0 && !thrown.has(i)) {
          thrown.add(i);
          assertEquals(ctx.attempt, 1);
          throw new Error(`transient ${i}`);
        }
        if (i === 50) throw new Error("always"); // given up after maxAttempts → dead letter
        handled.push(i);
      } finally {
        inFlight--;
      }
    },
  });
  let calm = 0;
  const steady = defineHandler({ name: "steady", onPublish: () => void calm++ });
  const { sidecar, sender } = await start([flaky, steady]);
  try {
    const n = 100;
    for (let i = 0; i < n; i++) await sender.send(frameOf(publish(`c${i % 20}`, i)).subarray(4));
    await sender.close();
    const rejected = [...Array(n).keys()].filter((i) => i % 10 === 3);
    await until("flaky settles", () => {
      const t = sidecar.summary().outputs["flaky"];
      return t.sent + t.deadLettered + t.lost === n;
    });
    assertEquals(calm, n);
    assertEquals(handled.length, n - rejected.length - 1);
    assert(peak <= 4, `concurrency 4 exceeded: ${peak}`);
    const t = sidecar.summary().outputs["flaky"];
    assertEquals(t.deadLettered, rejected.length + 1);
    const lines = (await Deno.readTextFile(deadLetter)).trim().split("\n").map((l) =>
      JSON.parse(l)
    );
    assertEquals(lines.length, rejected.length + 1);
    assert(
      lines.some((l) => l.reason === "handler threw 5 times: always"),
      JSON.stringify(lines[0]),
    );
    assert(lines.some((l) => l.reason === "bad 3" && l.output === "flaky" && l.body_base64));
    const metrics = await (await fetch(`http://127.0.0.1:${sidecar.adminAddr!.port}/metrics`))
      .text();
    assert(/vmq_sidecar_handler_errors_total\{output="flaky"\} (\d+)/.test(metrics), metrics);
    assert(metrics.includes('vmq_sidecar_output_events_sent_total{output="steady"} 100'));
  } finally {
    const s = await sidecar.close();
    assertEquals(s.outputs["flaky"].unflushed, 0);
    await Deno.remove(deadLetter).catch(() => {});
  }
});

Deno.test("handlers: filters by hook and MQTT topic; reload keeps handlers; close() from code", async () => {
  const got: string[] = [];
  const h = defineHandler({
    name: "filtered",
    topics: ["a/+/x", "b/#"],
    onPublish: (e) => void got.push(e.topic),
  });
  const { sidecar, sender } = await start([h]);
  try {
    const topics = ["a/1/x", "a/1/y", "b", "b/c/d", "c/a/x", "a/2/x"];
    for (const [i, t] of topics.entries()) {
      await sender.send(frameOf(publish("c", i, t)).subarray(4));
    }
    await sender.flush();
    await until("filtered events", () => got.length === 4);
    assert(await sidecar.reload({ ...sidecar.config, shutdownGraceMs: 4000 }));
    assertEquals(sidecar.pipeline.queues.map((q) => q.sink.name), ["filtered"]);
    await sender.send(frameOf(publish("c", 10, "b/after")).subarray(4));
    await sender.close();
    await until("after reload", () => got.length === 5);
    assertEquals(got.sort(), ["a/1/x", "a/2/x", "b", "b/after", "b/c/d"]);
    assert(sidecar.readiness().ready, sidecar.readiness().reasons.join("; "));
  } finally {
    const s = await sidecar.close();
    assertEquals(s.outputs["filtered"].given, 5);
  }
});

Deno.test("test kit: startTestSidecar runs handlers on port 0 and close() delivers everything sent", async () => {
  const seen: string[] = [];
  const t = await startTestSidecar({
    handlers: [defineHandler({ name: "kit", onPublish: (e) => void seen.push(e.topic) })],
    connections: 8,
  });
  for (let i = 0; i < 50; i++) await t.send(publish(`c${i % 5}`, i, `k/${i}`));
  const metricsText = await t.metrics();
  assert(metricsText.includes("vmq_sidecar_reorder_late_total"), metricsText.slice(0, 500));
  const summary = await t.close();
  assertEquals(seen.length, 50);
  assertEquals(summary.outputs.kit.sent, 50);
  assertEquals(t.sender.framesWritten, 50);
  assertEquals(await t.close(), summary); // idempotent
});

Deno.test("handlers: on a disk journal (handlerBuffer), events not acknowledged at stop are handled after a restart", async () => {
  const dir = await Deno.makeTempDir({ dir: WRITABLE_TMP, prefix: "handler-journal-" });
  try {
    const journal1 = await DiskJournal.open(dir, { fsync: "batch" });
    let calls = 0;
    const down = defineHandler({
      name: "replay",
      retry: { initialMs: 20, maxMs: 50, maxAttempts: Infinity },
      onPublish() {
        calls++;
        throw new Error("destination down");
      },
    });
    const t1 = await startTestSidecar({
      handlers: [down],
      handlerBuffer: () => journal1,
      config: { shutdownGraceMs: 300 },
    });
    for (let i = 0; i < 60; i++) await t1.send(publish(`c${i % 4}`, i));
    await until("calls", () => calls >= 4);
    const s1 = await t1.close();
    assertEquals(s1.outputs.replay.sent, 0);
    assertEquals(s1.outputs.replay.unflushed, 60);

    const handled = new Set<number>();
    const up = defineHandler({
      name: "replay",
      onPublish: (e) => void handled.add(Number(new TextDecoder().decode(e.payload))),
    });
    const journal2 = await DiskJournal.open(dir, { fsync: "batch" });
    const t2 = await startTestSidecar({ handlers: [up], handlerBuffer: () => journal2 });
    await until("replayed events", () => handled.size === 60);
    const s2 = await t2.close();
    assertEquals(s2.outputs.replay.unflushed, 0);
    assertEquals([...handled].sort((a, b) => a - b), [...Array(60).keys()]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

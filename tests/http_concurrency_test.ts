// `concurrency` end to end on the HTTP output (issue 13): the real main.ts, a real receiver on
// 127.0.0.1 that answers slowly and counts the requests open at once, unique ids counted at the
// receiver; kill -9 under load with buffer=disk and 4 requests in flight, then a restart.
import { assert, assertEquals } from "./_assert.ts";
import { sendChunks, sidecarTempDir, TEST_DEAD_LETTER, waitFor } from "./_sidecar.ts";
import { factoryOf, OUTPUT_KINDS } from "../lib/internal.ts";
import { type Ops, scrape, spawnSidecar } from "./_ops.ts";
import { valueOf } from "./_prom.ts";
import { distinctFrames, freePort } from "./_servers.ts";

const utf8 = new TextDecoder();

/**
 * A webhook receiver answering each request after `delayMs`; counts requests open at once.
 * Requests for which `refuse(index)` is true are answered 503 (their events not stored).
 */
function slowReceiver(
  delayMs: number,
  port = 0,
  refuse: (index: number) => boolean = () => false,
  refuseStatus = 503,
) {
  const ids = new Map<string, number>();
  const state = { open: 0, maxOpen: 0, requests: 0, first: 0, last: 0, refused: 0, index: 0 };
  const server = Deno.serve({ hostname: "127.0.0.1", port, onListen() {} }, async (req) => {
    state.open++;
    if (state.first === 0) state.first = performance.now();
    state.maxOpen = Math.max(state.maxOpen, state.open);
    try {
      const index = state.index++;
      const body = utf8.decode(await req.arrayBuffer());
      await new Promise((r) => setTimeout(r, delayMs));
      if (refuse(index)) {
        state.refused++;
        return new Response("busy", { status: refuseStatus });
      }
      for (const line of body.split("\n")) {
        if (line === "") continue;
        const id = JSON.parse(line).client_id as string;
        ids.set(id, (ids.get(id) ?? 0) + 1);
      }
      state.requests++;
      state.last = performance.now();
      return new Response(null, { status: 204 });
    } finally {
      state.open--;
    }
  });
  return {
    port: server.addr.port,
    ids,
    state,
    [Symbol.asyncDispose]: () => server.shutdown(),
  };
}

function start(dataDir: string, out: string): Promise<Ops> {
  return spawnSidecar(
    ["--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--data-dir", dataDir, "--out", out],
    { stdout: "null" },
  );
}

async function metric(s: Ops, name: string, labels: Record<string, string>): Promise<number> {
  return valueOf(await scrape(s.adminPort), name, labels) ?? 0;
}

/** `frames` over `conns` connections, 2000 each, in writes of 100 frames. */
function sendOverConnections(port: number, frames: Uint8Array[], conns: number): Promise<unknown> {
  return Promise.all(Array.from({ length: conns }, (_, c) => {
    const mine = frames.slice(c * 2000, (c + 1) * 2000);
    const chunks = Array.from({ length: 20 }, (_, i) => concat(mine.slice(i * 100, i * 100 + 100)));
    return sendChunks(port, chunks);
  }));
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) out.set(p, at), at += p.length;
  return out;
}

for (const buffer of ["disk", "memory"]) {
  Deno.test(`http concurrency (buffer=${buffer}): a receiver answering in 20 ms has 4 requests open at once; every id delivered once`, async () => {
    const dir = await sidecarTempDir();
    await using receiver = slowReceiver(20);
    const base = `http://127.0.0.1:${receiver.port}/events`;
    const out = `${base}?concurrency=4&batch_events=50&buffer=${buffer}`;
    const s = await start(dir, out);
    try {
      const frames = distinctFrames("cc", 8000);
      // Four connections, 2000 events each, in chunks of 100.
      await sendOverConnections(s.port, frames, 4);
      await waitFor(
        async () =>
          await metric(s, "vmq_sidecar_output_events_sent_total", { output: base }) >= 8000,
        "every event sent",
        60_000,
      );
      console.log(
        `buffer=${buffer}: ${receiver.state.requests} requests, at most ${receiver.state.maxOpen} open at once, ${
          Math.round(8000 / ((receiver.state.last - receiver.state.first) / 1000))
        } events/s`,
      );
      assertEquals(receiver.ids.size, 8000, "every unique id delivered");
      assert([...receiver.ids.values()].every((n) => n === 1), "each once");
      assertEquals(
        receiver.state.maxOpen,
        4,
        `requests open at once (${receiver.state.requests} requests)`,
      );
    } finally {
      s.kill("SIGKILL");
      await s.wait();
    }
  });
}

Deno.test("http concurrency: 503s mid-window are retried in order; every id delivered exactly once", async () => {
  const dir = await sidecarTempDir();
  // Every 9th request refused: with 4 in flight, later batches succeed before the failed one.
  await using receiver = slowReceiver(10, 0, (i) => i % 9 === 4);
  const base = `http://127.0.0.1:${receiver.port}/events`;
  const s = await start(dir, `${base}?concurrency=4&batch_events=50`);
  try {
    const frames = distinctFrames("r", 6000);
    await sendOverConnections(s.port, frames, 3);
    await waitFor(
      async () => await metric(s, "vmq_sidecar_output_events_sent_total", { output: base }) >= 6000,
      "every event sent",
      60_000,
    );
    assert(receiver.state.refused >= 5, `${receiver.state.refused} requests refused`);
    assertEquals(receiver.ids.size, 6000, "every unique id delivered");
    const twice = [...receiver.ids.entries()].filter(([, n]) => n > 1).map(([id]) => id);
    assertEquals(twice.slice(0, 5), [], `${twice.length} ids delivered more than once`);
    assertEquals(await metric(s, "vmq_sidecar_buffer_events", { output: base }), 0);
    assertEquals(receiver.state.maxOpen, 4);
  } finally {
    s.kill("SIGKILL");
    await s.wait();
  }
});

Deno.test("http concurrency: 400s mid-window go to the dead-letter file intact while later bodies are encoded (pooled body buffers): every id stored or dead-lettered exactly once", async () => {
  const dir = await sidecarTempDir();
  await using receiver = slowReceiver(5, 0, (i) => i % 5 === 2, 400);
  const base = `http://127.0.0.1:${receiver.port}/events`;
  const dead = `${dir}/dead.ndjson`;
  const s = await start(dir, `${base}?concurrency=4&batch_events=50&dead_letter=${dead}`);
  try {
    const frames = distinctFrames("d", 6000);
    await sendOverConnections(s.port, frames, 3);
    const settled = async () =>
      await metric(s, "vmq_sidecar_output_events_sent_total", { output: base }) +
      await metric(s, "vmq_sidecar_output_events_dead_lettered_total", { output: base });
    await waitFor(async () => await settled() >= 6000, "every event settled", 60_000);
    const deadIds = new Map<string, number>();
    for (const line of Deno.readTextFileSync(dead).split("\n")) {
      if (line === "") continue;
      const letter = JSON.parse(line) as { body: string; events: number };
      const body = letter.body.split("\n").filter((l) => l !== "");
      assertEquals(body.length, letter.events, "a letter's body holds its events");
      for (const e of body) {
        const id = JSON.parse(e).client_id as string;
        deadIds.set(id, (deadIds.get(id) ?? 0) + 1);
      }
    }
    assert(deadIds.size >= 250, `${deadIds.size} events dead-lettered`);
    const both = [...deadIds.keys()].filter((id) => receiver.ids.has(id));
    assertEquals(both.slice(0, 5), [], `${both.length} ids both stored and dead-lettered`);
    assertEquals(receiver.ids.size + deadIds.size, 6000, "every id stored or dead-lettered");
    const twice = [...receiver.ids.values(), ...deadIds.values()].filter((n) => n > 1);
    assertEquals(twice.length, 0, "each once");
  } finally {
    s.kill("SIGKILL");
    await s.wait();
  }
});

Deno.test("http concurrency: kill -9 under load with buffer=disk and 4 requests in flight; after a restart every id the metrics counted as taken is delivered", async () => {
  const dir = await sidecarTempDir();
  await using receiver = slowReceiver(5);
  const base = `http://127.0.0.1:${receiver.port}/events`;
  const out = `${base}?concurrency=4&batch_events=100`;
  const output = { output: base };
  const frames = distinctFrames("kill", 60_000);
  const s1 = await start(dir, out);
  let taken = 0, openAtKill = 0;
  try {
    // One connection, paced: the kill comes while events arrive and requests are open.
    const sending = (async () => {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port: s1.port });
      try {
        for (let i = 0; i < frames.length; i += 200) {
          const c = concat(frames.slice(i, i + 200));
          for (let at = 0; at < c.length;) at += await conn.write(c.subarray(at));
          await new Promise((r) => setTimeout(r, 3));
        }
      } finally {
        conn.close();
      }
    })().catch(() => {});
    await waitFor(
      async () =>
        await metric(s1, "vmq_sidecar_output_events_received_total", output) >= 10_000 &&
        receiver.state.open >= 2,
      "10000 events taken, requests in flight",
      30_000,
    );
    taken = await metric(s1, "vmq_sidecar_output_events_received_total", output);
    openAtKill = receiver.state.open;
    s1.kill("SIGKILL");
    await s1.wait();
    await sending;
  } finally {
    try {
      s1.kill("SIGKILL");
    } catch { /* killed above */ }
  }
  assert(taken < frames.length, `the kill came before the end of the load (${taken} taken)`);
  const s2 = await start(dir, out);
  try {
    await waitFor(
      async () => await metric(s2, "vmq_sidecar_buffer_events", output) === 0,
      "the replay drained",
      60_000,
    );
    const missing: number[] = [];
    for (let i = 0; i < taken; i++) if (!receiver.ids.has(`kill-${i}`)) missing.push(i);
    assertEquals(
      missing.slice(0, 10),
      [],
      `${missing.length} of the ${taken} taken events missing`,
    );
    let duplicates = 0;
    for (const n of receiver.ids.values()) duplicates += n - 1;
    // At most what was in flight at the kill is sent again: 4 batches of 100.
    assert(duplicates <= 400, `${duplicates} duplicates: at most the 4 batches in flight`);
    console.log(
      `kill -9 with ${openAtKill} requests open: ${taken} taken, all delivered after restart, ${duplicates} duplicates`,
    );
  } finally {
    s2.kill("SIGKILL");
    await s2.wait();
  }
});

// Redis and NATS sinks take one send at a time until they are made safe for concurrent sends:
// their kinds cap `concurrency` at 1 (the option is accepted).
Deno.test("http concurrency: the option is range-checked, defaults to 4, and is capped by what the kind's sink supports", async () => {
  const spec = {
    kind: "http" as const,
    target: `http://127.0.0.1:${freePort()}/x`,
    format: "json" as const,
    payload: "base64" as const,
    hooks: null,
    topics: null,
    queueBytes: 1 << 20,
    onFull: "block" as const,
    options: { concurrency: 200, dead_letter: TEST_DEAD_LETTER } as Record<string, unknown>,
  };
  let error = "";
  try {
    await factoryOf(spec, "--out").create(spec, "--out");
  } catch (e) {
    error = (e as Error).message;
  }
  assert(error.includes("concurrency"), `200 is out of range: ${error}`);
  for (const [given, want] of [[8, 8], [undefined, 4], [64, 64]] as const) {
    const s = { ...spec, options: { dead_letter: TEST_DEAD_LETTER, concurrency: given } };
    const made = await factoryOf(s, "--out").create(s, "--out");
    assertEquals(made.queue.concurrency, want, `concurrency=${given}`);
    await made.sink.close();
  }
  const kinds = Object.fromEntries(OUTPUT_KINDS.map((k) => [k.kind, k]));
  assertEquals(kinds.redis.maxConcurrency, 64);
  assertEquals(kinds.nats.maxConcurrency, 64);
  assert("concurrency" in kinds.redis.options && "concurrency" in kinds.nats.options);
  assert(!("concurrency" in kinds.file.options), "local outputs have no window");
});

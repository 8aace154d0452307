// Fan-out: several outputs of the real main.ts at once, each with its own bounded queue and
// filters; an output whose server is dead neither stalls nor slows the others, keeps its own
// events (or drops and counts them, on_full=drop), and delivers them once the server is there.
import { assert, assertEquals } from "./_assert.ts";
import { fixtureVectors, toOurJson } from "./_vectors.ts";
import { jsonLines, sendChunks, sidecarTempDir, waitFor } from "./_sidecar.ts";
import { fileLines, fixtureStream, scrape, spawnSidecar } from "./_ops.ts";
import { valueOf } from "./_prom.ts";
import {
  distinctFrames,
  freePort,
  natsClient,
  redisClient,
  runOutputs,
  startNats,
  startReceiver,
  startRedis,
  streamCount,
  streamEvents,
  xlen,
  xrange,
} from "./_servers.ts";

const utf8 = new TextDecoder();

Deno.test("fan-out: a file output completes while the NATS output's server is dead; NATS then gets every event once", async () => {
  const dir = await sidecarTempDir();
  const file = `${dir}/events.jsonl`;
  const natsPort = freePort(); // nothing listens here yet
  const s = await runOutputs([`file:${file}`, `nats://127.0.0.1:${natsPort}?create_stream=EV`]);
  const n = 5000;
  await sendChunks(s.port, distinctFrames("f", n));
  // The file has everything while NATS is still unreachable (no timing: completeness).
  await waitFor(() => fileLines(file).length >= n, `${n} lines in the file`);
  assertEquals(
    fileLines(file).map((l) => JSON.parse(l).client_id),
    Array.from({ length: n }, (_, i) => `f-${i}`),
  );
  assert(/nats:\/\/127\.0\.0\.1:\d+ failed, retrying/.test(s.stderr()), s.stderr());
  // The server appears: the NATS queue kept the events and delivers them.
  await using nats = await startNats({ port: natsPort });
  const nc = await natsClient(nats.port);
  try {
    await waitFor(async () => await streamCount(nc, "EV") >= n, `${n} events in EV`, 60_000);
    s.kill("SIGTERM");
    const r = await s.wait();
    assertEquals(r.code, 0, r.stderr);
    const got = (await streamEvents(nc, "EV")).map((m) =>
      JSON.parse(utf8.decode(m.data)).client_id
    );
    assertEquals(got, Array.from({ length: n }, (_, i) => `f-${i}`), "all, once, in order");
  } finally {
    await nc.close();
    await Deno.remove(dir, { recursive: true });
  }
});

/** Our independent reading of MQTT topic matching (see topic_filter_test.ts for the cases). */
function matches(filter: string, topic: string): boolean {
  const f = filter.split("/"), t = topic.split("/");
  if (topic.startsWith("$") && /^[+#]$/.test(f[0])) return false;
  for (let i = 0; i < f.length; i++) {
    if (f[i] === "#") return true;
    if (i >= t.length || (f[i] !== "+" && f[i] !== t[i])) return false;
  }
  return f.length === t.length;
}

Deno.test("fan-out: four outputs with their own hooks and topic filters each get exactly their events; a dead HTTP output holds none back", async () => {
  const dir = await sidecarTempDir();
  const file = `${dir}/all.jsonl`;
  await using nats = await startNats();
  await using redis = await startRedis();
  const nc = await natsClient(nats.port);
  const rc = await redisClient(redis.port);
  const deadHttp = freePort();
  try {
    const s = await runOutputs([
      `file:${file}`,
      `nats://127.0.0.1:${nats.port}?hooks=on_publish,on_deliver&create_stream=EV`,
      // In a URL query "+" means a space: the filter's + is written %2B.
      `redis://127.0.0.1:${redis.port}?topics=devices/%2B/telemetry,cmd/%23&key=ev`,
      `http://127.0.0.1:${deadHttp}/?hooks=on_publish`,
    ], { flags: ["--shutdown-grace", "300"] });
    await sendChunks(s.port, [fixtureStream().bytes]);
    const all = fixtureVectors().filter((v) => v.expected.hook !== null);
    const wantNats = all.filter((v) => ["on_publish", "on_deliver"].includes(v.expected.hook!));
    const wantRedis = all.filter((v) => {
      // deno-lint-ignore no-explicit-any
      const e: any = v.expected.event;
      const topics: string[] | null = typeof e.topic === "string"
        ? [e.topic]
        : Array.isArray(e.topics)
        ? e.topics.map((t: string | { topic: string }) => (typeof t === "string" ? t : t.topic))
        : null;
      return topics === null ||
        topics.some((t) => matches("devices/+/telemetry", t) || matches("cmd/#", t));
    });
    assert(wantRedis.length < all.length && wantRedis.length > 0, "the topic filter selects");
    await waitFor(async () =>
      fileLines(file).length >= all.length &&
      await streamCount(nc, "EV") >= wantNats.length &&
      await xlen(rc, "ev") >= wantRedis.length, "file, NATS and Redis complete");
    s.kill("SIGTERM");
    const r = await s.wait();
    assertEquals(r.code, 1, "the dead HTTP output cannot be flushed: exit 1");
    assert(/unflushed outputs: http:\/\/127\.0\.0\.1:\d+/.test(r.stderr), r.stderr);
    assertEquals(jsonLines(Deno.readTextFileSync(file)), all.map((v) => toOurJson(v.expected)));
    assertEquals(
      (await streamEvents(nc, "EV")).map((m) => JSON.parse(utf8.decode(m.data))),
      wantNats.map((v) => toOurJson(v.expected)),
    );
    assertEquals(
      (await xrange(rc, "ev")).map((e) => JSON.parse(utf8.decode(e.fields.event))),
      wantRedis.map((v) => toOurJson(v.expected)),
    );
  } finally {
    await nc.close();
    rc.destroy();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("fan-out: on_full=drop (network default) drops and counts a dead output's overflow; the file output gets all; /readyz names it", async () => {
  const dir = await sidecarTempDir();
  const file = `${dir}/events.jsonl`;
  await using rx = startReceiver();
  const dead = freePort();
  const s = await spawnSidecar([
    "--listen",
    "127.0.0.1:0",
    "--admin",
    "127.0.0.1:0",
    "--shutdown-grace",
    "300",
    "--out",
    `file:${file}`,
    "--out",
    `nats://127.0.0.1:${dead}?buffer=memory&queue_bytes=64KiB`,
    "--out",
    `http://127.0.0.1:${rx.port}/?linger_ms=0`,
  ], { stdout: "null" });
  try {
    const n = 3000;
    await sendChunks(s.port, distinctFrames("o", n));
    await waitFor(() => fileLines(file).length >= n, `${n} lines`);
    await waitFor(() => rx.requests.flatMap((r) => jsonLines(r.body)).length >= n, `${n} POSTed`);
    const natsName = `nats://127.0.0.1:${dead}`;
    const m = await scrape(s.adminPort);
    const dropped = valueOf(m, "vmq_sidecar_output_events_dropped_total", { output: natsName }) ??
      0;
    const queued = valueOf(m, "vmq_sidecar_output_queue_events", { output: natsName }) ?? -1;
    assert(dropped > 0, `dropped ${dropped}`);
    assertEquals(dropped + queued, n, "each event dropped (counted) or still queued");
    assert(queued * 200 <= 64 * 1024, `queue bounded: ${queued} events held`);
    for (const healthy of [`file:${file}`, `http://127.0.0.1:${rx.port}`]) {
      assertEquals(valueOf(m, "vmq_sidecar_output_events_dropped_total", { output: healthy }), 0);
      assertEquals(valueOf(m, "vmq_sidecar_output_events_sent_total", { output: healthy }), n);
    }
    const ready = await fetch(`http://127.0.0.1:${s.adminPort}/readyz`);
    const text = await ready.text();
    assertEquals(ready.status, 503);
    assert(text.includes(`output ${natsName}: not connected`), text);
    assert(!text.includes(`output http://127.0.0.1:${rx.port}`), text);
  } finally {
    s.kill("SIGTERM");
    await s.wait();
    await Deno.remove(dir, { recursive: true });
  }
});

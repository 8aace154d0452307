// The disk journal behind the network outputs (issue 12 phase 2), end to end: the real main.ts
// with a --data-dir, real redis-server, unique ids counted at the destination. kill -9 with
// the output down and up (fsync=interval and batch), one journal shared by outputs with
// different selections (written once), a budget reached (on_full=drop: that output only,
// counters add up), damage quarantined at restart (flipped bytes, a torn tail, a zero-filled
// block, a missing segment), an unusable data dir (exit 1). The 60 s outages of NATS, Redis
// and HTTP are tests/journal_outage_test.ts; a disk that stays full, journal_disk_full_test.ts.
import { assert, assertEquals } from "./_assert.ts";
import { runSidecar, sendChunks, sidecarTempDir, waitFor } from "./_sidecar.ts";
import { adminGet, type Ops, scrape, spawnSidecar } from "./_ops.ts";
import { valueOf } from "./_prom.ts";
import {
  distinctFrames,
  freePort,
  redisClient,
  startReceiver,
  startRedis,
  xlen,
  xrange,
} from "./_servers.ts";

const utf8 = new TextDecoder();

type Client = Awaited<ReturnType<typeof redisClient>>;

/** The client ids of the events in stream `key`, and how many entries it holds. */
async function idsIn(client: Client, key: string): Promise<{ ids: Set<string>; entries: number }> {
  const got = await xrange(client, key);
  const ids = new Set<string>();
  for (const e of got) {
    const m = /"client_id":"([^"]+)"/.exec(utf8.decode(e.fields.event));
    assert(m, `entry ${e.id} has no client_id`);
    ids.add(m[1]);
  }
  return { ids, entries: got.length };
}

/** main.ts with `outs`, a data dir, admin on a free port. */
function start(dataDir: string, outs: string[], flags: string[] = []): Promise<Ops> {
  return spawnSidecar(
    [
      "--listen",
      "127.0.0.1:0",
      "--admin",
      "127.0.0.1:0",
      "--data-dir",
      dataDir,
      ...flags,
      ...outs.flatMap((o) => ["--out", o]),
    ],
    { stdout: "null" },
  );
}

async function metric(s: Ops, name: string, labels: Record<string, string> = {}): Promise<number> {
  return valueOf(await scrape(s.adminPort), name, labels) ?? 0;
}

async function killed(s: Ops): Promise<void> {
  s.kill("SIGKILL");
  await s.wait();
}

/** Bytes of the segment files of the journal in `dataDir`. */
async function segmentBytes(dataDir: string): Promise<number> {
  let n = 0;
  for await (const e of Deno.readDir(`${dataDir}/journal/segments`)) {
    if (e.name.endsWith(".seg")) {
      n += (await Deno.stat(`${dataDir}/journal/segments/${e.name}`)).size;
    }
  }
  return n;
}

const wireBytes = (frames: readonly Uint8Array[]) => frames.reduce((n, f) => n + f.length, 0);

Deno.test("journal e2e: kill -9 with the output down, restart with it up: every event delivered, each id once", async () => {
  const dir = await sidecarTempDir();
  const port = freePort();
  const out = `redis://127.0.0.1:${port}?key=ev`;
  const output = { output: `redis://127.0.0.1:${port}/0` };
  const frames = distinctFrames("down", 5000);
  const s1 = await start(dir, [out]);
  try {
    await sendChunks(s1.port, frames);
    await waitFor(
      async () => await metric(s1, "vmq_sidecar_output_events_received_total", output) >= 5000,
      "5000 events taken",
    );
    assertEquals(
      await metric(s1, "vmq_sidecar_buffer_events", output),
      5000,
      "held in the journal",
    );
    assert(await metric(s1, "vmq_sidecar_buffer_bytes", output) > 5000 * 300, "its bytes");
  } finally {
    await killed(s1);
  }
  // `decode` reads a segment: every journaled event, checksums checked.
  const segs = `${dir}/journal/segments`;
  const seg = [...Deno.readDirSync(segs)].map((e) => e.name).filter((n) => n.endsWith(".seg"));
  const decoded = await Promise.all(seg.map((n) => runSidecar(["decode", `${segs}/${n}`])));
  assertEquals(decoded.map((r) => r.code), seg.map(() => 0), decoded.map((r) => r.stderr).join());
  const lines = decoded.flatMap((r) => r.stdout.split("\n").filter((l) => l));
  assertEquals(new Set(lines.map((l) => JSON.parse(l).client_id)).size, 5000);
  await using redis = await startRedis([], undefined, port);
  const client = await redisClient(redis.port);
  const s2 = await start(dir, [out]);
  try {
    await waitFor(async () => await xlen(client, "ev") >= 5000, "5000 events delivered", 30_000);
    await waitFor(
      async () => await metric(s2, "vmq_sidecar_output_events_sent_total", output) >= 5000,
      "5000 counted sent",
    );
    const { ids, entries } = await idsIn(client, "ev");
    assertEquals([ids.size, entries], [5000, 5000], "every id once");
    assertEquals(
      await metric(s2, "vmq_sidecar_output_events_received_total", output),
      5000,
      "replayed = given",
    );
    assertEquals(await metric(s2, "vmq_sidecar_buffer_replayed_events_total", output), 5000);
    assertEquals(await metric(s2, "vmq_sidecar_buffer_events", output), 0, "backlog drained");
  } finally {
    await killed(s2);
    client.destroy();
  }
});

Deno.test("journal e2e: two outputs with different hooks read one journal, each its own selection; every event written once", async () => {
  const dir = await sidecarTempDir();
  await using redis = await startRedis();
  const client = await redisClient(redis.port);
  const frames = distinctFrames("sel", 3000);
  const s = await start(dir, [
    `redis://127.0.0.1:${redis.port}/0?key=all`,
    `redis://127.0.0.1:${redis.port}/1?key=none&hooks=on_subscribe`,
  ]);
  try {
    await sendChunks(s.port, frames);
    await waitFor(async () => await xlen(client, "all") >= 3000, "3000 events in all");
    const { ids } = await idsIn(client, "all");
    assertEquals(ids.size, 3000);
    const names = [`redis://127.0.0.1:${redis.port}/0`, `redis://127.0.0.1:${redis.port}/1`];
    const given = await Promise.all(
      names.map((output) => metric(s, "vmq_sidecar_output_events_received_total", { output })),
    );
    assertEquals(given, [3000, 0], "each output given what it selects");
    const written = await segmentBytes(dir);
    const bytes = wireBytes(frames);
    assert(
      written >= bytes && written < bytes * 1.1,
      `segments hold ${written} bytes for ${bytes} bytes of frames: written once, not per output`,
    );
  } finally {
    await killed(s);
    client.destroy();
  }
});

Deno.test("journal e2e: a budget reached with on_full=drop drops for that output only; counters add up", async () => {
  const dir = await sidecarTempDir();
  await using redis = await startRedis();
  const client = await redisClient(redis.port);
  const down = `redis://127.0.0.1:${freePort()}`;
  const frames = distinctFrames("full", 20_000); // ≈ 8 MB: 8× the 1 MiB budget
  const s = await start(dir, [
    `${down}?buffer_bytes=1MiB&on_full=drop`,
    `redis://127.0.0.1:${redis.port}?key=up`,
  ]);
  try {
    await sendChunks(s.port, frames);
    await waitFor(
      async () => await xlen(client, "up") >= 20_000,
      "20000 events to the live output",
    );
    const m = await scrape(s.adminPort);
    const v = (name: string) => valueOf(m, name, { output: `${down}/0` }) ?? 0;
    const given = v("vmq_sidecar_output_events_received_total");
    const dropped = v("vmq_sidecar_output_events_dropped_total");
    const held = v("vmq_sidecar_output_queue_events");
    assertEquals(given, 20_000, "the full output is given every event");
    assert(dropped > 10_000, `dropped ${dropped}: most of 8 MB beyond a 1 MiB budget`);
    assertEquals(
      given,
      dropped + held + v("vmq_sidecar_output_events_sent_total"),
      "given = dropped + held + sent",
    );
    const bytes = v("vmq_sidecar_buffer_bytes");
    assertEquals(bytes, v("vmq_sidecar_output_queue_bytes"));
    assert(
      bytes > 0.9 * 1024 * 1024 && bytes <= 1024 * 1024 + 512 * 1024,
      `backlog ${bytes} bytes: the budget, plus at most one read`,
    );
    const ready = await adminGet(s.adminPort, "/readyz");
    assertEquals(ready.status, 503, ready.body);
    assert(ready.body.includes(`output ${down}/0: queue at`), ready.body);
    const { ids } = await idsIn(client, "up");
    assertEquals(ids.size, 20_000, "the other output lost nothing");
  } finally {
    await killed(s);
    client.destroy();
  }
});

Deno.test("journal e2e: a data dir that cannot be created is exit 1 saying what to do", async () => {
  const dir = await sidecarTempDir();
  const file = `${dir}/not-a-dir`;
  await Deno.writeTextFile(file, "");
  const r = await runSidecar([
    "--listen",
    "127.0.0.1:0",
    "--admin",
    "off",
    "--data-dir",
    file,
    "--out",
    `redis://127.0.0.1:${freePort()}`,
  ]);
  assertEquals(r.code, 1, r.stderr);
  assert(r.stderr.includes(`${file}/journal`) && r.stderr.includes("--data-dir"), r.stderr);
});

Deno.test("journal e2e: kill -9 under load with the output up: every event the metrics counted as taken before the kill is delivered after restart", async () => {
  const dir = await sidecarTempDir();
  await using redis = await startRedis();
  const client = await redisClient(redis.port);
  const out = `redis://127.0.0.1:${redis.port}?key=load`;
  const output = { output: `redis://127.0.0.1:${redis.port}/0` };
  const frames = distinctFrames("load", 150_000);
  const s1 = await start(dir, [out]);
  let taken = 0;
  try {
    // One connection: events are read, journaled and counted in the order sent.
    // Paced (a pause between chunks) so that the load outlasts a metrics poll on a fast, idle
    // machine: the kill must come while events are still arriving (asserted below).
    const sending = sendPaced(s1.port, [...chunked(frames, 500)], 3).catch(() => {});
    await waitFor(
      async () => await metric(s1, "vmq_sidecar_output_events_received_total", output) >= 20_000,
      "20000 events taken",
    );
    taken = await metric(s1, "vmq_sidecar_output_events_received_total", output);
    s1.kill("SIGKILL");
    await s1.wait();
    await sending;
  } finally {
    try {
      s1.kill("SIGKILL");
    } catch { /* killed above */ }
  }
  assert(taken < frames.length, `the kill came before the end of the load (${taken} taken)`);
  const s2 = await start(dir, [out]);
  try {
    await waitFor(
      async () => await metric(s2, "vmq_sidecar_buffer_events", output) === 0,
      "the replay drained",
      60_000,
    );
    const { ids, entries } = await idsIn(client, "load");
    const missing: number[] = [];
    for (let i = 0; i < taken; i++) if (!ids.has(`load-${i}`)) missing.push(i);
    assertEquals(
      missing.slice(0, 10),
      [],
      `${missing.length} of the ${taken} taken events missing`,
    );
    // At most the batches in flight at the kill are sent again: `concurrency` (default 4) of
    // ≤ 1000 of these events each (256 KiB batches). One batch before concurrency existed.
    assert(
      entries - ids.size <= 4 * 1000,
      `${entries - ids.size} duplicates: at most the 4 batches in flight`,
    );
  } finally {
    await killed(s2);
    client.destroy();
  }
});

Deno.test("journal e2e: a damaged journal (flipped bytes mid-segment, a torn tail) starts, quarantines and counts the damage, delivers the rest", async () => {
  const dir = await sidecarTempDir();
  const port = freePort();
  const out = `redis://127.0.0.1:${port}?key=dmg`;
  const output = { output: `redis://127.0.0.1:${port}/0` };
  const frames = distinctFrames("dmg", 4000);
  const s1 = await start(dir, [out]);
  try {
    // 40 writes of 100 events, each read before the next: ≥ 40 blocks (the unit of damage).
    for (let i = 0; i < 40; i++) {
      await sendChunks(s1.port, [concatBytes(frames.slice(i * 100, i * 100 + 100))]);
      await waitFor(
        async () =>
          await metric(s1, "vmq_sidecar_output_events_received_total", output) >= (i + 1) * 100,
        `read ${i + 1}`,
      );
    }
  } finally {
    await killed(s1);
  }
  const segs = `${dir}/journal/segments`;
  const seg = [...Deno.readDirSync(segs)].map((e) => e.name).filter((n) => n.endsWith(".seg"))
    .sort()[0];
  const bytes = Deno.readFileSync(`${segs}/${seg}`);
  const middle = Math.floor(bytes.length / 2);
  for (let i = 0; i < 16; i++) bytes[middle + i] ^= 0xff;
  Deno.writeFileSync(`${segs}/${seg}`, bytes.subarray(0, bytes.length - 1000)); // torn tail
  await using redis = await startRedis([], undefined, port);
  const client = await redisClient(redis.port);
  const s2 = await start(dir, [out]);
  try {
    await waitFor(
      async () => await metric(s2, "vmq_sidecar_buffer_events", output) === 0,
      "the replay drained",
      30_000,
    );
    await waitFor(async () => await xlen(client, "dmg") >= 3700, "the rest delivered");
    const lost = await metric(s2, "vmq_sidecar_buffer_lost_events_total");
    const quarantined = await metric(s2, "vmq_sidecar_buffer_quarantined_bytes_total");
    const { ids, entries } = await idsIn(client, "dmg");
    // Whole blocks (a read each: up to 100 events here, fewer when a read got part of a write).
    assert(lost > 0 && lost <= 400, `lost ${lost}: the damaged and the torn block, whole`);
    assert(quarantined >= 1000, `quarantined ${quarantined} bytes`);
    assertEquals(
      ids.size + lost,
      4000,
      `delivered + lost = journaled (lost ${lost}):\n${s2.stderr()}`,
    );
    assertEquals(entries, ids.size, "each once");
    const kept = [...Deno.readDirSync(`${dir}/journal/quarantine`)].length;
    assert(kept >= 2, `${kept} files in quarantine/`);
    assert(/torn tail/.test(s2.stderr()) && s2.stderr().includes(seg), s2.stderr());
  } finally {
    await killed(s2);
    client.destroy();
  }
});

function* chunked(frames: readonly Uint8Array[], per: number): Generator<Uint8Array> {
  for (let i = 0; i < frames.length; i += per) yield concatBytes(frames.slice(i, i + per));
}

function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) out.set(p, at), at += p.length;
  return out;
}

/** Writes `chunks` on one connection with `pauseMs` between them; rejects at the first failed write. */
async function sendPaced(port: number, chunks: readonly Uint8Array[], pauseMs: number) {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  conn.setNoDelay(true);
  try {
    for (const c of chunks) {
      for (let at = 0; at < c.length;) at += await conn.write(c.subarray(at));
      await new Promise((r) => setTimeout(r, pauseMs));
    }
  } finally {
    conn.close();
  }
}

/**
 * Runs main.ts on `dir` with the output down (`out`), sends `reads` writes of 100 events
 * (ids `tag-from…`), each read before the next, then kill -9: `reads` blocks in one segment.
 */
async function journaledRun(
  dir: string,
  out: string,
  output: Record<string, string>,
  frames: readonly Uint8Array[],
  from: number,
  reads: number,
): Promise<void> {
  const s = await start(dir, [out]);
  try {
    const before = await metric(s, "vmq_sidecar_buffer_events", output);
    assertEquals(before, from, "the earlier runs' records are held");
    for (let i = 0; i < reads; i++) {
      const at = from + i * 100;
      await sendChunks(s.port, [concatBytes(frames.slice(at, at + 100))]);
      await waitFor(
        async () => await metric(s, "vmq_sidecar_buffer_events", output) >= at + 100,
        `read ${i + 1}`,
      );
    }
  } finally {
    await killed(s);
  }
}

Deno.test("journal e2e: a zero-filled disk block and a missing segment: startup not blocked, damage logged with file and offset, quarantined and counted, the rest delivered once", async () => {
  const dir = await sidecarTempDir();
  const port = freePort();
  const out = `redis://127.0.0.1:${port}?key=zero`;
  const output = { output: `redis://127.0.0.1:${port}/0` };
  const frames = distinctFrames("zero", 9000);
  // Three starts, each appending to a segment of its own: 3 × 3000 events.
  for (let run = 0; run < 3; run++) await journaledRun(dir, out, output, frames, run * 3000, 30);
  const segs = `${dir}/journal/segments`;
  const names = [...Deno.readDirSync(segs)].map((e) => e.name).filter((n) => n.endsWith(".seg"))
    .sort();
  assertEquals(names.length, 3, names.join());
  // The middle segment goes missing; a 4 KiB disk block in the middle of the first reads zero.
  Deno.removeSync(`${segs}/${names[1]}`);
  const first = Deno.readFileSync(`${segs}/${names[0]}`);
  const zeroAt = Math.floor(first.length / 2 / 4096) * 4096;
  first.fill(0, zeroAt, zeroAt + 4096);
  Deno.writeFileSync(`${segs}/${names[0]}`, first);
  await using redis = await startRedis([], undefined, port);
  const client = await redisClient(redis.port);
  const s = await start(dir, [out]); // resolves once it listens: the damage never blocks start-up
  try {
    await waitFor(
      async () => await metric(s, "vmq_sidecar_buffer_events", output) === 0,
      "the replay drained",
      30_000,
    );
    const lost = await metric(s, "vmq_sidecar_buffer_lost_events_total");
    const quarantined = await metric(s, "vmq_sidecar_buffer_quarantined_bytes_total");
    const { ids, entries } = await idsIn(client, "zero");
    // The missing segment's 3000 and the block(s) the zeroed 4 KiB touch (a block is one read:
    // ≤ 100 events here, fewer when a read got part of a write; at most two blocks).
    assert(lost > 3000 && lost <= 3200, `lost ${lost}`);
    assert(quarantined >= 4096, `quarantined ${quarantined} bytes`);
    assertEquals(ids.size + lost, 9000, `delivered + lost = journaled:\n${s.stderr()}`);
    assertEquals(entries, ids.size, "each once");
    for (let i = 3000; i < 6000; i++) {
      assert(!ids.has(`zero-${i}`), `zero-${i}: in the missing segment`);
    }
    for (let i = 6000; i < 9000; i++) assert(ids.has(`zero-${i}`), `zero-${i}: after the gap`);
    assertEquals(
      await metric(s, "vmq_sidecar_output_events_received_total", output),
      await metric(s, "vmq_sidecar_output_events_sent_total", output),
      "received (replayed) = sent",
    );
    const err = s.stderr();
    const zeroLine = err.split("\n").find((l) => l.includes(names[0]) && /offset \d+/.test(l));
    assert(zeroLine, `no damage line naming ${names[0]} and an offset:\n${err}`);
    const offset = Number(/offset (\d+)/.exec(zeroLine)![1]);
    assert(
      offset <= zeroAt && offset > zeroAt - 100 * 1024,
      `offset ${offset} vs zeroed ${zeroAt}`,
    );
    assert(/missing segment/.test(err) && err.includes(names[1]), err);
    const kept = [...Deno.readDirSync(`${dir}/journal/quarantine`)].map((e) => e.name);
    assert(kept.includes(`${names[0]}.${offset}.bad`), kept.join());
  } finally {
    await killed(s);
    client.destroy();
  }
});

Deno.test("journal e2e: fsync=batch, kill -9 under load with the output up: every event counted as taken before the kill is delivered after restart", async () => {
  const dir = await sidecarTempDir();
  await using redis = await startRedis();
  const client = await redisClient(redis.port);
  const out = `redis://127.0.0.1:${redis.port}?key=batch`;
  const output = { output: `redis://127.0.0.1:${redis.port}/0` };
  const frames = distinctFrames("batch", 100_000);
  const s1 = await start(dir, [out], ["--fsync", "batch"]);
  let taken = 0, sentBefore = 0;
  try {
    // Paced (≈ 30k events/s) so that the kill comes while events still arrive (asserted below).
    const sending = sendPaced(s1.port, [...chunked(frames, 500)], 15).catch(() => {});
    await waitFor(
      async () => await metric(s1, "vmq_sidecar_output_events_received_total", output) >= 20_000,
      "20000 events taken",
    );
    const m = await scrape(s1.adminPort);
    taken = valueOf(m, "vmq_sidecar_output_events_received_total", output) ?? 0;
    sentBefore = valueOf(m, "vmq_sidecar_output_events_sent_total", output) ?? 0;
    const fsyncs = valueOf(m, "vmq_sidecar_buffer_fsync_seconds_count") ?? 0;
    s1.kill("SIGKILL");
    await s1.wait();
    await sending;
    assert(fsyncs > 0, "fsyncs observed");
  } finally {
    try {
      s1.kill("SIGKILL");
    } catch { /* killed above */ }
  }
  assert(taken < frames.length, `the kill came before the end of the load (${taken} taken)`);
  const s2 = await start(dir, [out], ["--fsync", "batch"]);
  try {
    await waitFor(
      async () => await metric(s2, "vmq_sidecar_buffer_events", output) === 0,
      "the replay drained",
      60_000,
    );
    const { ids, entries } = await idsIn(client, "batch");
    const missing: number[] = [];
    for (let i = 0; i < taken; i++) if (!ids.has(`batch-${i}`)) missing.push(i);
    assertEquals(missing.slice(0, 10), [], `${missing.length} of the ${taken} taken missing`);
    assert(ids.size >= sentBefore, `${ids.size} delivered, ${sentBefore} counted sent before`);
    assert(entries - ids.size <= 1000, `${entries - ids.size} duplicates: the batch in flight`);
    console.log(
      `fsync=batch kill -9: ${taken} taken (${sentBefore} sent) before the kill; ` +
        `${ids.size} delivered after, ${entries - ids.size} duplicates`,
    );
  } finally {
    await killed(s2);
    client.destroy();
  }
});

Deno.test("journal e2e: a backlog of many small reads goes out in batches of up to batch_bytes, not one request per read", async () => {
  const dir = await sidecarTempDir();
  const port = freePort(); // the receiver comes up once the backlog is journaled
  const url = `http://127.0.0.1:${port}/events`;
  const output = { output: url };
  const frames = distinctFrames("small", 2000);
  const s = await start(dir, [url]);
  try {
    // 200 reads of 10 events: 200 blocks of ≈ 4.4 KB, ≈ 880 KB in all.
    for (let i = 0; i < 200; i++) {
      await sendChunks(s.port, [concatBytes(frames.slice(i * 10, i * 10 + 10))]);
      await waitFor(
        async () => await metric(s, "vmq_sidecar_buffer_events", output) >= (i + 1) * 10,
        `read ${i + 1}`,
      );
    }
    await using receiver = startReceiver(undefined, port);
    await waitFor(
      async () => await metric(s, "vmq_sidecar_output_events_sent_total", output) >= 2000,
      "the backlog sent",
      60_000,
    );
    const ids = new Set<string>();
    let lines = 0;
    for (const r of receiver.requests) {
      for (const l of utf8.decode(r.body).split("\n").filter((l) => l)) {
        ids.add(JSON.parse(l).client_id);
        lines++;
      }
    }
    assertEquals([ids.size, lines], [2000, 2000], "every event once");
    // batch_bytes (256 KiB of frames) per request: ≈ 4 requests, plus the first read's
    // batch that was failing when the receiver came up — not ~200.
    const requests = receiver.requests.filter((r) => r.status === 204).length;
    assert(requests <= 12, `${requests} requests for 200 journaled reads`);
    console.log(`200 journaled reads of 10 events: ${requests} requests`);
  } finally {
    await killed(s);
  }
});

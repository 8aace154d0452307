// Redis Streams output, end to end: the real main.ts (default permissions) receives frames
// over TCP and appends them to a real redis-server; the test reads the streams back with the
// Redis client library.
import { assert, assertEquals } from "./_assert.ts";
import { fixtureVectors, toOurJson, type Vector } from "./_vectors.ts";
import { runSidecar, sendChunks, sidecarTempDir, waitFor } from "./_sidecar.ts";
import { fixtureStream } from "./_ops.ts";
import {
  distinctFrames,
  makeCertificates,
  redisClient,
  runOutputs,
  sha256Id,
  startRedis,
  stopOutputs,
  xlen,
  xrange,
} from "./_servers.ts";
import { HOOKS } from "../lib/mod.ts";

const events = (): Vector[] => fixtureVectors().filter((v) => v.expected.hook !== null);
const utf8 = new TextDecoder();

async function totalLen(client: Awaited<ReturnType<typeof redisClient>>, prefix: string) {
  let n = 0;
  for (const h of HOOKS) n += await xlen(client, `${prefix}${h}`);
  return n;
}

Deno.test("redis: every fixture event lands in vmq:events:<hook> with hook, id and JSON event fields, in order", async () => {
  await using redis = await startRedis();
  const client = await redisClient(redis.port);
  try {
    const s = await runOutputs([`redis://127.0.0.1:${redis.port}`]);
    await sendChunks(s.port, [fixtureStream().bytes]);
    const want = events();
    await waitFor(async () => await totalLen(client, "vmq:events:") >= want.length, "all events");
    await stopOutputs(s);
    assertEquals(await totalLen(client, "vmq:events:"), want.length, "one entry per event");
    for (const hook of HOOKS) {
      const mine = want.filter((v) => v.expected.hook === hook);
      const got = await xrange(client, `vmq:events:${hook}`);
      assertEquals(got.length, mine.length, hook);
      for (const [i, v] of mine.entries()) {
        const f = got[i].fields;
        assertEquals(Object.keys(f), ["hook", "id", "event"], v.name);
        assertEquals(utf8.decode(f.hook), hook, v.name);
        assertEquals(utf8.decode(f.id), await sha256Id(v.body), v.name);
        assertEquals(JSON.parse(utf8.decode(f.event)), toOurJson(v.expected), v.name);
      }
    }
  } finally {
    client.destroy();
  }
});

Deno.test("redis: format=protobuf into one stream (key without placeholder) round-trips the Any bytes, database from the path", async () => {
  await using redis = await startRedis();
  const client = await redisClient(redis.port, 3);
  try {
    const s = await runOutputs([`redis://127.0.0.1:${redis.port}/3?format=protobuf&key=vmq:all`]);
    await sendChunks(s.port, [fixtureStream().bytes]);
    const want = events();
    await waitFor(async () => await xlen(client, "vmq:all") >= want.length, "all events");
    await stopOutputs(s);
    const got = await xrange(client, "vmq:all");
    assertEquals(got.length, want.length);
    for (const [i, v] of want.entries()) {
      assertEquals(Object.keys(got[i].fields), ["hook", "id", "frame"], v.name);
      assertEquals(utf8.decode(got[i].fields.hook), v.expected.hook, v.name);
      assertEquals(got[i].fields.frame, v.body, v.name);
    }
  } finally {
    client.destroy();
  }
});

Deno.test("redis: maxlen=N trims the stream approximately (MAXLEN ~), keeping the newest", async () => {
  await using redis = await startRedis();
  const client = await redisClient(redis.port);
  try {
    const s = await runOutputs([`redis://127.0.0.1:${redis.port}?maxlen=100&key=capped`]);
    const n = 3000;
    await sendChunks(s.port, distinctFrames("m", n));
    await waitFor(async () => {
      const last = (await xrange(client, "capped")).at(-1);
      return !!last && JSON.parse(utf8.decode(last.fields.event)).client_id === `m-${n - 1}`;
    }, "the last event");
    await stopOutputs(s);
    const len = await xlen(client, "capped");
    assert(
      len >= 100 && len < 1000,
      `XLEN ${len}: expected about 100 (at least 100, far below ${n})`,
    );
  } finally {
    client.destroy();
  }
});

Deno.test("redis: server stopped mid-stream and restarted: every event arrives at least once (duplicates counted)", async () => {
  await using redis = await startRedis(["--appendonly", "yes", "--appendfsync", "always"]);
  const client = await redisClient(redis.port);
  try {
    const s = await runOutputs([`redis://127.0.0.1:${redis.port}?key=ev`]);
    const n = 4000;
    const frames = distinctFrames("r", n);
    const sending = (async () => {
      for (let i = 0; i < n / 2; i += 50) await sendChunks(s.port, frames.slice(i, i + 50));
    })();
    await waitFor(async () => await xlen(client, "ev") >= 200, "some events stored");
    await redis.stop();
    await sending;
    await sendChunks(s.port, frames.slice(n / 2));
    await new Promise((r) => setTimeout(r, 500)); // let a few retries fail
    await redis.start();
    const ids = async () =>
      (await xrange(client, "ev").catch(() => [])).map((e) =>
        JSON.parse(utf8.decode(e.fields.event)).client_id as string
      );
    await waitFor(async () => new Set(await ids()).size >= n, `${n} distinct events`, 60_000);
    const stderr = await stopOutputs(s);
    const all = await ids();
    const distinct = new Set(all);
    assertEquals(distinct.size, n);
    for (let i = 0; i < n; i++) assert(distinct.has(`r-${i}`), `r-${i} missing`);
    console.log(
      `redis restart: ${all.length} entries for ${n} events, ${all.length - n} duplicates`,
    );
    const failed = stderr.match(/failed, retrying/g)?.length ?? 0;
    const recovered = stderr.match(/recovered after/g)?.length ?? 0;
    assert(
      failed >= 1 && failed === recovered,
      `failed ${failed}, recovered ${recovered}:\n${stderr}`,
    );
  } finally {
    client.destroy();
  }
});

Deno.test("redis: server stopped cleanly (SIGTERM) mid-stream, 3 times: every event stored exactly once (each batch is one MULTI/EXEC)", async () => {
  await using redis = await startRedis(["--appendonly", "yes", "--appendfsync", "always"]);
  const client = await redisClient(redis.port);
  try {
    const s = await runOutputs([`redis://127.0.0.1:${redis.port}?key=ev`]);
    const n = 6000, rounds = 3, frames = distinctFrames("c", n);
    const sending = (async () => {
      for (let i = 0; i < n; i += 50) await sendChunks(s.port, frames.slice(i, i + 50));
    })();
    for (let round = 1; round <= rounds; round++) {
      const want = (round * n) / (rounds + 1);
      await waitFor(async () => await xlen(client, "ev") >= want, `${want} events stored`, 30_000);
      await redis.stop(); // SIGTERM: the server shuts down cleanly, mid-batch
      await new Promise((r) => setTimeout(r, 200));
      await redis.start();
    }
    await sending;
    const ids = async () =>
      (await xrange(client, "ev").catch(() => [])).map((e) =>
        JSON.parse(utf8.decode(e.fields.event)).client_id as string
      );
    await waitFor(async () => new Set(await ids()).size >= n, `${n} distinct events`, 60_000);
    await stopOutputs(s);
    const all = await ids();
    assertEquals(new Set(all).size, n);
    assertEquals(all.length - n, 0, `${all.length - n} duplicates after ${rounds} clean stops`);
  } finally {
    client.destroy();
  }
});

Deno.test("redis: password from a VMQ_SIDECAR_* variable (requirepass); never in names or logs", async () => {
  const password = "pw-51d0-secret";
  await using redis = await startRedis(["--requirepass", password]);
  const client = await redisClient(redis.port, 0, password);
  try {
    const s = await runOutputs([
      `redis://127.0.0.1:${redis.port}/0?password_env=VMQ_SIDECAR_REDIS_PASSWORD&key=ev`,
    ], { env: { VMQ_SIDECAR_REDIS_PASSWORD: password } });
    await sendChunks(s.port, distinctFrames("p", 10));
    await waitFor(async () => await xlen(client, "ev") >= 10, "10 events");
    const stderr = await stopOutputs(s);
    assert(!stderr.includes("secret"), stderr);
    assert(stderr.includes(`redis://127.0.0.1:${redis.port}/0`), stderr);
  } finally {
    client.destroy();
  }
});

Deno.test("redis: bad options exit 2 with one line naming the option", async () => {
  const bad: [string, RegExp][] = [
    ["redis://127.0.0.1:6379/abc", /the path of a redis:\/\/ URL is the database number/],
    ["redis://127.0.0.1:6379?maxlen=0", /maxlen: expected a whole number from 1/],
    ["redis://127.0.0.1:6379?key=x:{payload}", /key: unknown placeholder \{payload\}/],
    ["redis://127.0.0.1:6379?tls_ca=/etc/ssl/ca.pem", /tls_ca: tls_ca needs a rediss:\/\/ URL/],
    ["redis://127.0.0.1:6379?db=1", /db: unknown option for redis output; accepted: key,/],
    ["redis://127.0.0.1:6379?password_env=PATH", /password_env: .*rename PATH/],
  ];
  for (const [out, message] of bad) {
    const r = await runSidecar(["--listen", "127.0.0.1:0", "--out", out]);
    assertEquals(r.code, 2, `${out}: ${r.stderr}`);
    assertEquals(r.stderr.trimEnd().split("\n").length, 1, r.stderr);
    assert(message.test(r.stderr), `${out}: ${r.stderr}`);
  }
});

Deno.test("redis: rediss:// with tls_ca verifies the server against that CA", async () => {
  const dir = await sidecarTempDir();
  const tls = await makeCertificates(dir);
  await using redis = await startRedis([], tls);
  const client = await redisClient(redis.port, 0, undefined, tls);
  try {
    const s = await runOutputs([`rediss://127.0.0.1:${redis.port}?tls_ca=${tls.ca}&key=ev`]);
    await sendChunks(s.port, distinctFrames("t", 20));
    await waitFor(async () => await xlen(client, "ev") >= 20, "20 events over TLS");
    const stderr = await stopOutputs(s);
    assert(stderr.includes(`rediss://127.0.0.1:${redis.port}/0`), stderr);
    const ids = (await xrange(client, "ev")).map((e) =>
      JSON.parse(utf8.decode(e.fields.event)).client_id
    );
    assertEquals(ids, Array.from({ length: 20 }, (_, i) => `t-${i}`));
  } finally {
    client.destroy();
    await Deno.remove(dir, { recursive: true });
  }
});

// RedisPipelineConnection (lib/outputs/redis/_pipeline_connection.ts) against a real
// redis-server: handshake (AUTH, ACL user, SELECT), pipelined batches within the window, errors
// per entry, reply timeout, and the server killed mid-pipeline (every batch is either
// acknowledged and stored, or reported "retry").
import { bounded } from "./_sidecar.ts";
import { assert, assertEquals, assertRejects } from "./_assert.ts";
import { concat } from "./_vectors.ts";
import {
  distinctFrames,
  freePort,
  makeCertificates,
  redisClient,
  sha256Id,
  startRedis,
  xrange,
} from "./_servers.ts";
import {
  ByteBuffer,
  EXEC,
  MULTI,
  NameTemplate,
  type PipelineResult,
  RedisPipelineConnection,
  RedisPipelineError,
  type RedisPipelineOptions,
  writeCommand,
  XaddEncoder,
} from "../lib/internal.ts";

const utf8 = new TextDecoder();

function options(port: number, extra: Partial<RedisPipelineOptions> = {}): RedisPipelineOptions {
  return { name: `redis://127.0.0.1:${port}/0`, host: "127.0.0.1", port, database: 0, ...extra };
}

/** Batch `b` of `n` distinct on_publish events as encoded XADDs into `key`, with their ids. */
async function encodedBatch(tag: string, n: number, key = "s:{hook}") {
  const frames = distinctFrames(tag, n);
  const wire = { bytes: concat(frames), count: n };
  const e = new XaddEncoder("test", {
    format: "json",
    payload: "base64",
    key: new NameTemplate("key", key),
    maxLen: 0,
  });
  const out = new ByteBuffer(1024);
  assertEquals(e.encode(wire, out), n);
  const ids = await Promise.all(frames.map((f) => sha256Id(f.subarray(4))));
  return { bytes: out.bytes().slice(), count: n, ids };
}

Deno.test("redis pipeline: AUTH with the right password connects and stores; wrong or missing password fails with the server's reason", async () => {
  await using redis = await startRedis(["--requirepass", "s3cret"]);
  const conn = await RedisPipelineConnection.connect(options(redis.port, { password: "s3cret" }));
  const b = await encodedBatch("auth", 3);
  const r = await conn.send(b.bytes, b.count).result;
  assert(r.ok && r.errors.length === 0, JSON.stringify(r));
  await conn.close();
  const wrong = await assertRejects(
    () => RedisPipelineConnection.connect(options(redis.port, { password: "nope" })),
    RedisPipelineError,
  );
  assert(/AUTH refused: WRONGPASS/.test(wrong.message), wrong.message);
  const none = await assertRejects(
    () => RedisPipelineConnection.connect(options(redis.port)),
    RedisPipelineError,
  );
  assert(/NOAUTH/.test(none.message), none.message);
  const client = await redisClient(redis.port, 0, "s3cret");
  try {
    assertEquals(
      (await xrange(client, "s:on_publish")).map((e) => utf8.decode(e.fields.id)),
      b.ids,
    );
  } finally {
    client.destroy();
  }
});

Deno.test("redis pipeline: ACL user + password, SELECT database; refused connection and wrong user fail with RedisPipelineError", async () => {
  await using redis = await startRedis(["--user", "relay", "on", ">pw", "~*", "&*", "+@all"]);
  const conn = await RedisPipelineConnection.connect(
    options(redis.port, { username: "relay", password: "pw", database: 5 }),
  );
  const b = await encodedBatch("acl", 2);
  assert((await conn.send(b.bytes, b.count).result).ok);
  await conn.close();
  const client = await redisClient(redis.port, 5);
  try {
    assertEquals((await xrange(client, "s:on_publish")).length, 2, "stored in database 5");
  } finally {
    client.destroy();
  }
  const wrong = await assertRejects(
    () =>
      RedisPipelineConnection.connect(options(redis.port, { username: "other", password: "pw" })),
    RedisPipelineError,
  );
  assert(/WRONGPASS/.test(wrong.message), wrong.message);
  const refused = await assertRejects(
    () => RedisPipelineConnection.connect(options(freePort())),
    RedisPipelineError,
  );
  assert(/cannot connect/.test(refused.message), refused.message);
});

Deno.test("redis pipeline: 40 batches through a window of 4 — never more in flight, all stored in order; an error reply is reported for its entry only", async () => {
  await using redis = await startRedis();
  const conn = await RedisPipelineConnection.connect(options(redis.port, { window: 4 }));
  const batches = await Promise.all(
    Array.from({ length: 40 }, (_, i) => encodedBatch(`w${i}`, 50)),
  );
  let peak = 0;
  const results: Promise<PipelineResult>[] = [];
  for (const b of batches) {
    await conn.whenWritable();
    results.push(conn.send(b.bytes, b.count).result);
    peak = Math.max(peak, conn.inFlight);
  }
  results.push(conn.send(new Uint8Array(0), 0).result); // an empty batch settles at once
  const rs = await bounded(Promise.all(results), 30_000, "40 batches");
  assertEquals(rs.pop(), { ok: true, replies: 0, errors: [] });
  assert(rs.every((r) => r.ok && r.errors.length === 0 && r.replies === 50));
  assert(peak <= 4 && peak >= 2, `peak in flight ${peak}`);
  const client = await redisClient(redis.port);
  try {
    const got = (await xrange(client, "s:on_publish")).map((e) => utf8.decode(e.fields.id));
    assertEquals(got, batches.flatMap((b) => b.ids), "every event once, in order");
    // One entry's key holds a string: WRONGTYPE for that entry, the others are stored.
    await client.sendCommand(["SET", "bad:on_publish", "x"]);
    const good = await encodedBatch("e1", 3), bad = await encodedBatch("e2", 1, "bad:{hook}");
    const mixed = concat([good.bytes.subarray(0, good.bytes.length), bad.bytes]);
    const r = await conn.send(mixed, 4).result;
    assert(r.ok, JSON.stringify(r));
    assertEquals(r.errors.length, 1);
    assertEquals(r.errors[0].index, 3);
    assert(/^WRONGTYPE/.test(r.errors[0].message), r.errors[0].message);
    assertEquals((await xrange(client, "s:on_publish")).length, 40 * 50 + 3);
  } finally {
    client.destroy();
    await conn.close();
  }
});

Deno.test("redis pipeline: no reply within the timeout (CLIENT PAUSE) — every outstanding batch is reported retry, later sends too", async () => {
  await using redis = await startRedis();
  const conn = await RedisPipelineConnection.connect(
    options(redis.port, { replyTimeoutMs: 300, window: 8 }),
  );
  const client = await redisClient(redis.port);
  try {
    await client.sendCommand(["CLIENT", "PAUSE", "3000", "ALL"]);
    const t0 = Date.now();
    const rs = await bounded(
      Promise.all([0, 1, 2].map(async (i) => {
        const b = await encodedBatch(`t${i}`, 5);
        return conn.send(b.bytes, b.count).result;
      })),
      5_000,
      "timeouts",
    );
    assert(Date.now() - t0 < 2500, "failed before the pause ended");
    for (const r of rs) {
      assert(!r.ok, JSON.stringify(r));
      assert(/no reply to a batch of 5 commands within 300 ms/.test(r.error.message));
    }
    assert(conn.failure !== undefined);
    assertEquals(conn.inFlight, 0);
    const later = await encodedBatch("t9", 1);
    assert(!(await conn.send(later.bytes, 1).result).ok, "a failed connection sends nothing");
    await bounded(conn.closed, 1000, "closed");
  } finally {
    await client.sendCommand(["CLIENT", "UNPAUSE"]).catch(() => {});
    client.destroy();
    conn.destroy();
  }
});

Deno.test("redis pipeline: server killed (SIGKILL) mid-pipeline — every batch settles; every acknowledged one is stored, nothing else but a prefix of a failed one", async () => {
  await using redis = await startRedis(["--appendonly", "yes", "--appendfsync", "always"]);
  const conn = await RedisPipelineConnection.connect(options(redis.port, { window: 4 }));
  const batches = await Promise.all(
    Array.from({ length: 30 }, (_, i) => encodedBatch(`k${i}`, 100)),
  );
  const results: Promise<PipelineResult>[] = [];
  let killed: Promise<void> | undefined;
  for (const [i, b] of batches.entries()) {
    await conn.whenWritable();
    const r = conn.send(b.bytes, b.count).result;
    results.push(r);
    if (i === 6) r.then(() => killed = redis.stop("SIGKILL"));
  }
  const rs = await bounded(Promise.all(results), 20_000, "every batch settles");
  await bounded(conn.closed, 5_000, "connection closed");
  await killed;
  const acked = rs.flatMap((r, i) => (r.ok ? [i] : []));
  const failed = rs.flatMap((r, i) => (r.ok ? [] : [i]));
  assert(acked.length >= 7 && failed.length >= 1, `acked ${acked.length}, failed ${failed.length}`);
  assertEquals(acked, acked.map((_, i) => i), "acknowledged batches are a prefix (order kept)");
  for (const i of failed) {
    assert(/closed|reset|broken/i.test((rs[i] as { error: Error }).error.message));
  }

  await redis.start(); // same directory: the append-only file is loaded
  const client = await redisClient(redis.port);
  try {
    const stored = (await xrange(client, "s:on_publish")).map((e) => utf8.decode(e.fields.id));
    const sentIds = batches.flatMap((b) => b.ids);
    const ackedIds = acked.flatMap((i) => batches[i].ids);
    assertEquals(stored.slice(0, ackedIds.length), ackedIds, "every acknowledged event stored");
    // After them only what the server had applied of the first failed batches, in order.
    assertEquals(stored, sentIds.slice(0, stored.length), "nothing out of order or foreign");
    assertEquals(new Set(stored).size, stored.length, "no duplicates");
    console.log(
      `acked ${acked.length} batches (${ackedIds.length} events), failed ${failed.length}, stored ${stored.length}`,
    );
  } finally {
    client.destroy();
  }
});

Deno.test("redis pipeline: TLS (rediss) with the test CA stores the batch; without trusting the CA the connection fails", async () => {
  const dir = await Deno.makeTempDir({ prefix: "vmq-sidecar-pipeline-tls-" });
  try {
    const certs = await makeCertificates(dir);
    await using redis = await startRedis([], certs);
    const conn = await RedisPipelineConnection.connect(
      options(redis.port, { tls: { ca: certs.caPem } }),
    );
    const b = await encodedBatch("tls", 4);
    const r = await conn.send(b.bytes, b.count).result;
    assert(r.ok && r.replies === 4, JSON.stringify(r));
    await conn.close();
    const untrusted = await assertRejects(
      () => RedisPipelineConnection.connect(options(redis.port, { tls: true })),
      RedisPipelineError,
    );
    assert(
      /cannot connect|closed|certificate|UnknownIssuer/i.test(untrusted.message),
      untrusted.message,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("redis pipeline: a transaction batch (MULTI … EXEC) — errors per entry from EXEC (WRONGTYPE, the rest stored) or from queueing (NOPERM: aborted, nothing stored); values only when asked", async () => {
  await using redis = await startRedis(
    [
      "--user",
      "w",
      "on",
      ">pw",
      "~s:*",
      "+@all",
      "--user",
      "default",
      "on",
      "nopass",
      "~*",
      "+@all",
    ],
  );
  const conn = await RedisPipelineConnection.connect(
    options(redis.port, { username: "w", password: "pw" }),
  );
  const client = await redisClient(redis.port);
  const tx = (...parts: Uint8Array[]) => concat([MULTI, ...parts, EXEC]);
  try {
    const good = await encodedBatch("t1", 3);
    const r1 = await conn.send(tx(good.bytes), 3, { transaction: true }).result;
    assertEquals(r1, { ok: true, replies: 5, errors: [] });
    // A runtime error: only that entry fails, the others are stored.
    await client.sendCommand(["SET", "s:bad", "x"]);
    const wrong = await encodedBatch("t2", 1, "s:bad"), more = await encodedBatch("t3", 2);
    const r2 = await conn.send(tx(more.bytes, wrong.bytes), 3, { transaction: true }).result;
    assert(r2.ok && r2.aborted === undefined, JSON.stringify(r2));
    assertEquals(r2.errors.map((e) => e.index), [2]);
    assert(/^WRONGTYPE/.test(r2.errors[0].message), r2.errors[0].message);
    assertEquals((await xrange(client, "s:on_publish")).length, 5);
    // A queueing error (the ACL user may not write x:*): EXECABORT, nothing of the batch stored.
    const denied = await encodedBatch("t4", 1, "x:{hook}"), rest = await encodedBatch("t5", 2);
    const r3 = await conn.send(tx(rest.bytes, denied.bytes), 3, { transaction: true }).result;
    assert(r3.ok && /^EXECABORT/.test(r3.aborted ?? ""), JSON.stringify(r3));
    assertEquals(r3.errors.map((e) => e.index), [2]);
    assert(/^NOPERM/.test(r3.errors[0].message), r3.errors[0].message);
    assertEquals((await xrange(client, "s:on_publish")).length, 5, "nothing of the aborted batch");
    // Bulk replies are kept only when asked for.
    const q = new ByteBuffer(64);
    writeCommand(q, ["GET", "s:bad"]);
    const plain = await conn.send(q.bytes().slice(), 1).result;
    assert(plain.ok && plain.values === undefined);
    const kept = await conn.send(q.bytes().slice(), 1, { values: true }).result;
    assert(kept.ok);
    assertEquals(kept.values, [new TextEncoder().encode("x")]);
  } finally {
    client.destroy();
    await conn.close();
  }
});

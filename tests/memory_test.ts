// Memory of the real main.ts returns near its start after load that leaves nothing behind
// (scripts/churn.ts, which prints the same figures): connection churn, and a Redis output's
// queue filled while redis-server is down, then drained. RSS, not just the V8 heap.
import { assert, assertEquals } from "./_assert.ts";
import { churnConnections, fillAndDrain, formatPhase, spawnWith } from "../scripts/churn.ts";
import { startRedis } from "./_servers.ts";

const MIB = 1024 * 1024;

Deno.test("5,000 plugin connections opened, fed and closed: RSS and fds return near their start", async () => {
  const s = await spawnWith(["stdout?format=protobuf"]);
  try {
    const r = await churnConnections(s, { cycles: 5000, concurrency: 100, settleMs: 6000 });
    // Before the fix: after ≈ before + 140 MiB (read buffers freed to glibc's heap stay
    // resident). What remains now is V8/allocator high water of the connection peak.
    assert(r.after.rss - r.before.rss < 100 * MIB, formatPhase(r));
    assert(r.after.fds <= r.before.fds + 3, formatPhase(r)); // ± the admin scrape's connection
  } finally {
    s.kill("SIGTERM");
    assertEquals((await s.wait()).code, 0);
  }
});

Deno.test("a 192 MiB Redis queue filled while redis-server is down, then drained: RSS returns near its start", async () => {
  await using redis = await startRedis();
  const s = await spawnWith([`redis://127.0.0.1:${redis.port}?buffer=memory&queue_bytes=192MiB`]);
  try {
    const r = await fillAndDrain(s, redis, { fillBytes: 192 * MIB, settleMs: 6000 });
    assert(r.peak.rss - r.before.rss > 150 * MIB, `the queue did not fill: ${formatPhase(r)}`);
    // Before the fix: after ≥ peak (the batch buffers freed to glibc's heap stay resident).
    // What remains now is the Redis client's and V8's own high water of the drain.
    assert(r.after.rss - r.before.rss < 150 * MIB, formatPhase(r));
    assert(r.after.fds <= r.before.fds + 3, formatPhase(r)); // ± the admin scrape's connection
  } finally {
    s.kill("SIGTERM");
    assertEquals((await s.wait()).code, 0);
  }
});

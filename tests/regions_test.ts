// lib/_regions.ts: buffers carved out of 32 MiB regions, handed back, regions released once
// unused; and an idle Delivery gives its pooled batch buffers back to them.
import { assert, assertEquals, assertThrows } from "./_assert.ts";
import {
  DELIVERED,
  Delivery,
  pooledSize,
  REGION_BYTES,
  REGION_IDLE_MS,
  regionBytes,
  releaseBuffer,
  takeBuffer,
} from "../lib/internal.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

Deno.test("regions: buffers in use never overlap, come back for reuse, and an unused region is released", async () => {
  const size = 16 * 1024;
  const n = Math.floor(REGION_BYTES / size) + 10; // one region full, a second one started
  const bufs = Array.from({ length: n }, () => takeBuffer(size));
  assertEquals(regionBytes(), 2 * REGION_BYTES);
  const seen = new Set<string>();
  for (const [i, b] of bufs.entries()) {
    assertEquals(b.length, size);
    const key = `${b.buffer === bufs[0].buffer ? 0 : 1}:${b.byteOffset}`;
    assert(!seen.has(key), `buffer ${i} overlaps another`);
    seen.add(key);
    b.fill(i & 255);
  }
  for (const [i, b] of bufs.entries()) {
    assertEquals(b[size - 1], i & 255, `buffer ${i} was overwritten`);
  }
  // The second region empties out: released after the idle time, the first one stays.
  for (const b of bufs.splice(n - 10)) releaseBuffer(b);
  const again = takeBuffer(size); // reuses a slot of the second region meanwhile
  assertEquals(regionBytes(), 2 * REGION_BYTES);
  releaseBuffer(again);
  await sleep(2 * REGION_IDLE_MS + 500);
  assertEquals(regionBytes(), REGION_BYTES);
  for (const b of bufs) releaseBuffer(b);
  await sleep(2 * REGION_IDLE_MS + 500);
  assertEquals(regionBytes(), 0);
  // Sizes above a quarter of a region are plain allocations, and releasing them is a no-op.
  const big = takeBuffer(REGION_BYTES / 2);
  assertEquals(regionBytes(), 0);
  releaseBuffer(big);
  releaseBuffer(new Uint8Array(size)); // not from a region: ignored
});

Deno.test("a Delivery idle for 2 s gives its pooled batch buffers back", async () => {
  const q = new Delivery({
    name: "t",
    send: () => Promise.resolve(DELIVERED),
    close: async () => {},
  }, {
    batchBytes: 64 * 1024,
  });
  const frame = new Uint8Array(1000).fill(7);
  for (let i = 0; i < 5000; i++) q.push(frame); // ~5 MiB: many batch buffers
  q.kick();
  assert(await q.flush(5000));
  assert(regionBytes() > 0, "batch buffers come from regions");
  await sleep(2000 + 2 * REGION_IDLE_MS + 500);
  assertEquals(regionBytes(), 0);
  // And it works on afterwards.
  for (let i = 0; i < 10; i++) q.push(frame);
  q.kick();
  assert(await q.flush(5000));
  assertEquals(q.stats.sent, 5010);
  await q.close();
  await sleep(2 * REGION_IDLE_MS + 500);
  assertEquals(regionBytes(), 0);
});

Deno.test("pooledSize: a power of two while pooled, the exact size beyond (a 64 MiB frame is not doubled)", () => {
  assertEquals(pooledSize(70_000), 131_072);
  assertEquals(pooledSize(16_384), 16_384);
  assertEquals(pooledSize(REGION_BYTES / 4), REGION_BYTES / 4);
  assertEquals(pooledSize(REGION_BYTES / 4 + 1), REGION_BYTES / 4 + 1);
  assertEquals(pooledSize(64 * 1024 * 1024 + 4), 64 * 1024 * 1024 + 4);
});

Deno.test("a queue closed while failing, events still held, gives its region buffers back", async () => {
  const before = regionBytes();
  const q = new Delivery({
    name: "down",
    send: () => Promise.reject(new Error("destination down")),
    close: () => Promise.resolve(),
  }, { retryInitialMs: 10, retryMaxMs: 10 });
  for (let i = 0; i < 2000; i++) q.push(new Uint8Array(1000));
  q.kick();
  assertEquals(await q.flush(100), false);
  await q.close(); // what ConfigReloader.#retire does for a removed output
  assertEquals(q.events, 2000, "the unflushed count stays");
  await sleep(2 * REGION_IDLE_MS + 200);
  assertEquals(regionBytes(), before, "region memory still held after close");
});

Deno.test("releaseBuffer: a double release or a view that is not a whole slot throws", () => {
  const a = takeBuffer(16 * 1024);
  assert(
    /not a slot in use/.test(assertThrows(() => releaseBuffer(a.subarray(100)), Error).message),
  );
  releaseBuffer(a);
  assert(/not a slot in use/.test(assertThrows(() => releaseBuffer(a), Error).message));
  const b = takeBuffer(16 * 1024), c = takeBuffer(16 * 1024);
  assert(b.byteOffset !== c.byteOffset || b.buffer !== c.buffer, "one slot handed out twice");
  releaseBuffer(b);
  releaseBuffer(c);
});

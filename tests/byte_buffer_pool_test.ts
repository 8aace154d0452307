// ByteBufferPool (lib/codec/byte_buffer_pool.ts): the buffers the Redis, NATS and HTTP outputs
// encode one batch in flight each into, kept for reuse within their bounds.
import { assert, assertEquals } from "./_assert.ts";
import { ByteBufferPool } from "../lib/internal.ts";

Deno.test("ByteBufferPool: a buffer given back is taken again empty, its grown storage kept; beyond maxBytes or keep it goes; a larger need gets a new one", () => {
  const pool = new ByteBufferPool(1024, 2, 8192);
  const a = pool.take();
  assertEquals([a.pos, a.buf.length], [0, 1024]);
  a.write(new Uint8Array(3000)); // grows to 4096
  const grown = a.buf;
  pool.give(a);
  const again = pool.take();
  assert(again === a && again.buf === grown, "the same buffer, storage kept");
  assertEquals(again.pos, 0);
  // Over maxBytes: not kept.
  again.write(new Uint8Array(10_000));
  pool.give(again);
  assert(pool.take() !== again, "a buffer over maxBytes is not kept");
  // At most `keep`.
  const [x, y, z] = [pool.take(), pool.take(), pool.take()];
  pool.give(x), pool.give(y), pool.give(z);
  const taken = [pool.take(), pool.take(), pool.take()];
  assertEquals(taken.filter((b) => b === x || b === y || b === z).length, 2);
  // A kept buffer smaller than the need is not handed out.
  pool.give(taken[0]);
  const big = pool.take(5000);
  assert(big !== taken[0] && big.buf.length >= 5000);
});

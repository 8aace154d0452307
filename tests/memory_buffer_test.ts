// MemoryBuffer (lib/pipeline/memory_buffer.ts): the Buffer conformance suite, with small chunks
// (space reused often, frames bigger than a chunk, early seals for room) and with the chunks of
// a coalescing local output; plus what only the memory store has (one reader, tail/commit).
import { assert, assertBytesEqual, assertEquals } from "./_assert.ts";
import { bufferConformance } from "./_buffer_conformance.ts";
import { ByteBuffer, MemoryBuffer } from "../lib/internal.ts";

bufferConformance(
  "memory buffer, 8 KiB chunks",
  (maxBytes) => new MemoryBuffer({ maxBytes, chunkBytes: 8 * 1024 }),
);
bufferConformance(
  "memory buffer, 1 MiB chunks",
  (maxBytes) => new MemoryBuffer({ maxBytes, chunkBytes: 1024 * 1024 }),
);

const ONE = { maxRecords: Infinity, coalesce: false };

Deno.test("memory buffer: one reader; a second name is refused with what to do", async () => {
  const b = new MemoryBuffer({ maxBytes: 1 << 20 });
  const c = b.cursor("file:/a");
  assert(b.cursor("file:/a") === c, "the same name is the same cursor");
  let message = "";
  try {
    b.cursor("nats://b");
  } catch (e) {
    message = (e as Error).message;
  }
  assert(message.includes("file:/a") && message.includes("nats://b"), message);
  assert(message.includes("disk buffer"), message);
  await b.close();
});

Deno.test("memory buffer: tail/commit encode in place; a grown encoding replaces the open chunk, sealed batches keep their bytes", async () => {
  const b = new MemoryBuffer({ maxBytes: 1 << 30, chunkBytes: 4096 * 4 });
  const c = b.cursor("local");
  const out = new ByteBuffer(0);
  const line = (n: number, fill: number) => new Uint8Array(n).fill(fill);
  // Two records written in place, sealed.
  for (const fill of [0x61, 0x62]) {
    const o = b.tail(out, 100);
    o.write(line(100, fill));
    b.commit(o, 1);
  }
  b.seal();
  const sealed = b.read(c, ONE)!;
  // The next record outgrows the chunk while written: the encoder's buffer grows.
  const o = b.tail(out, 10);
  o.write(line(50_000, 0x63));
  b.commit(o, 1);
  // A record the encoder gave up on (0 records) adds nothing.
  const skipped = b.tail(out, 10);
  skipped.write(line(30, 0x7a));
  b.commit(skipped, 0);
  assertEquals([b.records, b.bytes], [3, 50_200]);
  b.seal();
  assertBytesEqual(sealed.bytes, new Uint8Array([...line(100, 0x61), ...line(100, 0x62)]));
  b.ack(c, sealed);
  const grown = b.read(c, { maxRecords: Infinity, coalesce: true })!;
  assertEquals(grown.count, 1);
  assertBytesEqual(grown.bytes, line(50_000, 0x63), "the skipped record left nothing behind");
  b.ack(c, grown);
  assertEquals([b.records, b.bytes], [0, 0]);
  await b.close();
});

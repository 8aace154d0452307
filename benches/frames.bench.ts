// Framing throughput: `deno bench -P=test benches/` (task bench:micro). Throughput in MB/s is
// the stream size in each bench's name divided by its time per iteration.
import { readFrameBatches } from "../lib/mod.ts";
import {
  concat,
  fixedChunks,
  fixtureVectors,
  largeVectors,
  steppingReader,
  streamBytes,
  streamOf,
} from "../tests/_vectors.ts";

const small = streamBytes(fixtureVectors()).bytes;
const REPEAT = 128;
const smallStream = concat(Array(REPEAT).fill(small));
const smallFrames = fixtureVectors().length * REPEAT;
const big = largeVectors().filter((v) => v.body.length > 5_000_000).map((v) => v.wire);
const bigStream = concat(big);

const mb = (n: number) => `${(n / 1e6).toFixed(2)} MB`;
const SMALL = `small frames (${mb(smallStream.length)}, ${smallFrames} frames)`;
const BIG = `5 MiB frames (${mb(bigStream.length)}, ${big.length} frames)`;

// Bench functions must be `async` functions: deno bench times a plain function returning a
// promise as synchronous (it would not wait for the read to finish).
async function drain(source: Parameters<typeof readFrameBatches>[0], expected: number) {
  let n = 0;
  for await (const batch of readFrameBatches(source, { maxReadBytes: 1 << 20 })) n += batch.length;
  if (n !== expected) throw new Error(`read ${n} frames, expected ${expected}`);
}

const chunks64k = fixedChunks(smallStream, 64 * 1024);
const chunks1500 = fixedChunks(smallStream, 1500);
const bigChunks = fixedChunks(bigStream, 64 * 1024);

Deno.bench({
  name: `${SMALL}: Conn-like reader, full reads`,
  group: "framing small frames",
  baseline: true,
  fn: async () => await drain(steppingReader(smallStream, Infinity), smallFrames),
});
Deno.bench({
  name: `${SMALL}: Conn-like reader, 64 KiB reads`,
  group: "framing small frames",
  fn: async () => await drain(steppingReader(smallStream, 64 * 1024), smallFrames),
});
Deno.bench({
  name: `${SMALL}: ReadableStream, 64 KiB chunks`,
  group: "framing small frames",
  fn: async () => await drain(streamOf(chunks64k), smallFrames),
});
Deno.bench({
  name: `${SMALL}: ReadableStream, 1500 B chunks`,
  group: "framing small frames",
  fn: async () => await drain(streamOf(chunks1500), smallFrames),
});
Deno.bench({
  name: `${BIG}: Conn-like reader, 64 KiB reads`,
  group: "framing large frames",
  baseline: true,
  fn: async () => await drain(steppingReader(bigStream, 64 * 1024), big.length),
});
Deno.bench({
  name: `${BIG}: ReadableStream, 64 KiB chunks`,
  group: "framing large frames",
  fn: async () => await drain(streamOf(bigChunks), big.length),
});

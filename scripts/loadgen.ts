/**
 * Load generator that behaves like the vmq_events_sidecar plugin: N TCP connections (default
 * 100) that only write frames, as fast as possible or at a fixed total rate.
 *
 * Frames come from a frames file (`--file`, e.g. from scripts/mkframes.ts or the Go peer's
 * mkstream), the conformance vectors (`--vectors`), or a generated realistic mix (default:
 * a pool of `--pool` frames cycled). Events are spread over the connections: each connection
 * takes the next frame-aligned chunk when its previous write finished, so a slow connection
 * never holds the others up and memory stays bounded (the pool or a 4 MiB read window, plus
 * one chunk in flight per connection).
 *
 *   deno run -P=bench scripts/loadgen.ts --addr 127.0.0.1:8890 --events 1000000
 *   deno run -P=bench scripts/loadgen.ts --file /tmp/vmq-sidecar/mix.bin --conns 100
 *   deno run -P=bench scripts/loadgen.ts --rate 100000 --events 2000000 --stamp
 *
 * `--stamp` writes the send time into each frame's timestamp (frames from the generator or
 * mkframes.ts only), so a consumer can measure latency from the event's own timestamp.
 * Prints `events=… bytes=… seconds=… events_per_s=…` (or one JSON object with `--json`).
 *
 * @module
 */
import { parseArgs } from "node:util";
import { MixGenerator, stampAt, timestampOffset } from "./_mix.ts";
import { writeFramesFile } from "./mkframes.ts";
import {
  type ChunkSource,
  countFileFrames,
  countFrames,
  FileSource,
  frameLen,
  type LoadOptions,
  type LoadResult,
  MemorySource,
  nowMs,
  runLoad,
} from "../lib/internal.ts";

/** Options of {@linkcode runLoadgen}. */
export interface LoadgenOptions extends Omit<LoadOptions, "transform"> {
  /** Frames file; when absent a generated mix (or the vectors) is used. */
  file?: string;
  /** Use the conformance vectors instead of the mix. */
  vectors?: boolean;
  /** Total events to send (default: one pass over the file, or 1,000,000). */
  events?: number;
  /** Frames in the generated pool (default 20,000). */
  pool?: number;
  /** Payload size range of the generated mix. */
  payloadMin?: number;
  /** Payload size range of the generated mix. */
  payloadMax?: number;
  /** Stamp the send time into each frame's timestamp. */
  stamp?: boolean;
}

async function sourceOf(o: LoadgenOptions): Promise<ChunkSource> {
  if (o.file) {
    const size = (await Deno.stat(o.file)).size;
    if (size <= 64 << 20) {
      const data = await Deno.readFile(o.file);
      return new MemorySource(data, o.events ?? countFrames(data));
    }
    return new FileSource(o.file, o.events ?? await countFileFrames(o.file));
  }
  if (o.vectors) {
    const tmp = await Deno.makeTempFile({ prefix: "vectors-", suffix: ".bin" });
    try {
      await writeFramesFile(tmp, { kind: "vectors" });
      const data = await Deno.readFile(tmp);
      return new MemorySource(data, o.events ?? countFrames(data));
    } finally {
      await Deno.remove(tmp);
    }
  }
  const gen = new MixGenerator({ payloadMin: o.payloadMin, payloadMax: o.payloadMax });
  const parts = gen.kinds(o.pool ?? 20_000).map((k) => gen.frame(k));
  const data = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let off = 0;
  for (const p of parts) (data.set(p, off), off += p.length);
  return new MemorySource(data, o.events ?? 1_000_000);
}

function stampChunk(bytes: Uint8Array): Uint8Array {
  const b = bytes.slice();
  const now = nowMs();
  for (let p = 0; p < b.length; p += 4 + frameLen(b, p)) {
    const off = timestampOffset(b, p);
    if (off >= 0) stampAt(b, off, now);
  }
  return b;
}

/** Connects, sends, closes; resolves with what was sent. */
export async function runLoadgen(o: LoadgenOptions): Promise<LoadResult> {
  return await runLoad({ ...o, transform: o.stamp ? stampChunk : undefined }, await sourceOf(o));
}

const USAGE = "usage: loadgen.ts [--addr HOST:PORT] [--conns N] [--file FRAMES | --vectors]\n" +
  "                  [--events N] [--rate EVENTS_PER_S] [--chunk BYTES] [--pool N]\n" +
  "                  [--payload-min B] [--payload-max B] [--stamp] [--json]";

function parseLoadgenArgs() {
  return parseArgs({
    args: Deno.args,
    strict: true,
    options: {
      addr: { type: "string", default: "127.0.0.1:8890" },
      conns: { type: "string", default: "100" },
      file: { type: "string" },
      vectors: { type: "boolean" },
      events: { type: "string" },
      rate: { type: "string", default: "0" },
      chunk: { type: "string", default: "65536" },
      pool: { type: "string", default: "20000" },
      "payload-min": { type: "string" },
      "payload-max": { type: "string" },
      stamp: { type: "boolean" },
      json: { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
  }).values;
}

if (import.meta.main) {
  let parsed;
  try {
    parsed = parseLoadgenArgs();
  } catch (e) {
    console.error(`loadgen: ${(e as Error).message}\n${USAGE}`);
    Deno.exit(2);
  }
  const v = parsed;
  if (v.help) {
    console.log(USAGE);
    Deno.exit(0);
  }
  const num = (s: string | undefined) => s === undefined ? undefined : Number(s);
  let r;
  try {
    r = await runLoadgen({
      addr: v.addr,
      conns: num(v.conns),
      file: v.file,
      vectors: v.vectors,
      events: num(v.events),
      rate: num(v.rate),
      chunkBytes: num(v.chunk),
      pool: num(v.pool),
      payloadMin: num(v["payload-min"]),
      payloadMax: num(v["payload-max"]),
      stamp: v.stamp,
    });
  } catch (e) {
    console.error(`loadgen: ${(e as Error).message}`);
    Deno.exit(1);
  }
  if (v.json) console.log(JSON.stringify(r));
  else {
    console.log(
      `events=${r.events} bytes=${r.bytes} seconds=${r.seconds.toFixed(3)} events_per_s=${
        Math.round(r.eventsPerSec)
      }`,
    );
  }
}

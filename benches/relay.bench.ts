// Network protocol writers (issue 13 phase 1): `deno bench -P=test benches/relay.bench.ts`.
// Each iteration handles one batch of 1000 on_publish events (~350-byte frames, ~500-byte
// JSON): divide the time per iteration by 1000 for µs/event. Starts its own redis-server and
// nats-server on free loopback ports.
//
// On a loaded machine run the A/B comparison interleaved instead (every variant once per
// round, medians over the rounds): `deno run -P=test benches/relay.bench.ts --ab [rounds]`.
import { hash } from "node:crypto";
import { Buffer } from "node:buffer";
import { createClient } from "@redis/client";
import encoder from "@redis/client/dist/lib/RESP/encoder.js";
import { connect, headers } from "@nats-io/transport-node";
import {
  ByteBuffer,
  encodeFrame,
  eventIdBackend,
  eventIdFast,
  EventIds,
  forEachFrame,
  HOOKS,
  HpubEncoder,
  NameTemplate,
  RedisPipelineConnection,
  sha256Hex,
  writeFrameJsonCode,
  XaddEncoder,
} from "../lib/internal.ts";
import { concat } from "../tests/_vectors.ts";
import { distinctFrames, startNats, startRedis } from "../tests/_servers.ts";

// The client's own RESP encoder (CommonJS default export).
const encodeCommand = (encoder as unknown as { default: (args: (string | Buffer)[]) => unknown })
  .default;

const N = 1000;
const frames = distinctFrames("bench", N);
const batch = { bytes: concat(frames), count: N };
const bodies = frames.map((f) => f.subarray(4));
const format = { format: "json" as const, payload: "base64" as const };
const MAXLEN = 100_000; // keeps the server's streams bounded over long runs

// --- what RedisSink and NatsSink do per event today (JSON into a buffer, the id, arguments) ---

const json = new ByteBuffer(N * 1024);
const ids = new EventIds();
// 650-byte bodies (the size issue 13 measures with), their batch.
const bodies650 = Array.from(
  { length: N },
  (_, i) => new Uint8Array(650).fill(i & 255).fill(7, 0, 4),
);
const batch650 = concat(bodies650.map((b) => encodeFrame(b)));
const HOOK_ARGS = HOOKS.map((h) => Buffer.from(h));

/** RedisSink's per-event arguments (as it passes them to `multi.addCommand`). */
function sinkArgs(): (string | Buffer)[][] {
  json.reset();
  const all: (string | Buffer)[][] = [];
  forEachFrame(batch, (frame) => {
    const start = json.pos, hook = writeFrameJsonCode(json, frame, "base64");
    const body = json.buf.subarray(start, json.pos);
    all.push([
      "XADD",
      `bench:${HOOKS[hook]}`,
      "MAXLEN",
      "~",
      String(MAXLEN),
      "*",
      "hook",
      HOOK_ARGS[hook],
      "id",
      sha256Hex(frame, 4),
      "event",
      Buffer.from(body.buffer, body.byteOffset, body.length),
    ]);
  });
  return all;
}

const xadd = new XaddEncoder("bench", {
  ...format,
  key: new NameTemplate("key", "bench:{hook}"),
  maxLen: MAXLEN,
});
const resp = new ByteBuffer(N * 1024);

// --- servers -----------------------------------------------------------------------------------

const redis = await startRedis();
const client = createClient({
  socket: { host: "127.0.0.1", port: redis.port },
  RESP: 2,
  maintNotifications: "disabled",
});
client.on("error", () => {});
await client.connect();
const pipe = await RedisPipelineConnection.connect({
  name: "bench",
  host: "127.0.0.1",
  port: redis.port,
  database: 0,
  window: 4,
});

const nats = await startNats();
const nc = await connect({ servers: `127.0.0.1:${nats.port}` });
const raw = await Deno.connect({ hostname: "127.0.0.1", port: nats.port });
await writeAll(
  raw,
  new TextEncoder().encode(
    'CONNECT {"verbose":false,"pedantic":false,"headers":true,"protocol":1}\r\n',
  ),
);
(async () => { // drain INFO/PING from the server (nobody subscribes: no messages come back)
  const b = new Uint8Array(4096);
  try {
    for (let n; (n = await raw.read(b)) !== null;) {
      if (new TextDecoder().decode(b.subarray(0, n)).includes("PING")) {
        await writeAll(raw, new TextEncoder().encode("PONG\r\n"));
      }
    }
  } catch { /* closed at exit */ }
})();
const hpub = new HpubEncoder("bench", {
  ...format,
  subject: new NameTemplate("s", "bench.{hook}"),
});
hpub.inbox = "_INBOX.bench";
const hpubOut = new ByteBuffer(N * 1024);
let gen = 0;

async function writeAll(conn: Deno.Conn, b: Uint8Array): Promise<void> {
  for (let p = 0; p < b.length;) p += await conn.write(b.subarray(p));
}

// --- the variants, by group ---------------------------------------------------------------------

type Variant = {
  name: string;
  group: string;
  baseline?: boolean;
  /** Batches of N events per call (default 1). */
  batches?: number;
  fn: () => void | Promise<unknown>;
};

const variants: Variant[] = [
  // Event id, 1000 frames.
  {
    group: "event id",
    name: "sha256Hex (JS, today's eventId)",
    baseline: true,
    fn: () => {
      for (const b of bodies) sha256Hex(b, 4);
    },
  },
  {
    group: "event id",
    name: "eventIdFast (JS, unrolled; what the new writers use)",
    fn: () => {
      for (const b of bodies) eventIdFast(b);
    },
  },
  {
    group: "event id",
    name: "EventIds.ofBatch (WebAssembly, 4 lanes; what the writers use)",
    fn: () => {
      eventIdBackend("wasm");
      ids.ofBatch(batch.bytes, N);
    },
  },
  {
    group: "event id",
    name: "EventIds.ofBatch (its JS fallback)",
    fn: () => {
      eventIdBackend("js");
      ids.ofBatch(batch.bytes, N);
      eventIdBackend("wasm");
    },
  },
  {
    group: "event id",
    name: "node:crypto hash() per event",
    fn: () => {
      for (const b of bodies) hash("sha256", b, "hex").slice(0, 32);
    },
  },
  {
    group: "event id",
    name: "WebCrypto digest per event (all awaited together)",
    fn: () =>
      Promise.all(bodies.map((b) => crypto.subtle.digest("SHA-256", b as Uint8Array<ArrayBuffer>))),
  },
  // Event id, 1000 frames of 650 bytes.
  {
    group: "event id, 650 B",
    name: "eventIdFast (JS, unrolled)",
    baseline: true,
    fn: () => {
      for (const b of bodies650) eventIdFast(b);
    },
  },
  {
    group: "event id, 650 B",
    name: "EventIds.ofBatch (WebAssembly, 4 lanes)",
    fn: () => {
      eventIdBackend("wasm");
      ids.ofBatch(batch650, N);
    },
  },
  {
    group: "event id, 650 B",
    name: "EventIds.ofBatch (its JS fallback)",
    fn: () => {
      eventIdBackend("js");
      ids.ofBatch(batch650, N);
      eventIdBackend("wasm");
    },
  },
  // Encoding a batch of XADDs, no socket.
  {
    group: "redis encode",
    name: "floor: JSON + sha256Hex only (what every variant below also does)",
    fn: () => {
      json.reset();
      forEachFrame(batch, (frame) => {
        writeFrameJsonCode(json, frame, "base64");
        sha256Hex(frame, 4);
      });
    },
  },
  {
    group: "redis encode",
    name: "sink arguments + the client's encodeCommand (today)",
    baseline: true,
    fn: () => {
      for (const args of sinkArgs()) encodeCommand(args);
    },
  },
  {
    group: "redis encode",
    name: "XaddEncoder into one ByteBuffer",
    fn: () => {
      resp.reset();
      xadd.encode(batch, resp);
    },
  },
  // A batch to redis-server and back.
  {
    group: "redis round trip",
    name: "@redis/client MULTI/EXEC of 1000 XADD (today)",
    baseline: true,
    fn: async () => {
      const multi = client.multi();
      for (const args of sinkArgs()) multi.addCommand(args);
      await multi.exec();
    },
  },
  {
    group: "redis round trip",
    name: "XaddEncoder + RedisPipelineConnection, 1 batch",
    fn: async () => {
      resp.reset();
      const n = xadd.encode(batch, resp);
      const r = await pipe.send(resp.bytes(), n).result;
      if (!r.ok) throw r.error;
    },
  },
  {
    group: "redis round trip",
    name: "XaddEncoder + RedisPipelineConnection, 4 batches in flight",
    batches: 4,
    fn: async () => {
      const results = [];
      for (let k = 0; k < 4; k++) {
        await pipe.whenWritable();
        resp.reset();
        const n = xadd.encode(batch, resp);
        const sent = pipe.send(resp.bytes(), n);
        await sent.written; // the buffer is reused for the next batch
        results.push(sent.result);
      }
      for (const r of await Promise.all(results)) if (!r.ok) throw r.error;
    },
  },
  // Publishing a batch (no stream: the server takes and drops them; no acks).
  {
    group: "nats publish",
    name: "NatsSink's loop: JSON, headers(), eventId, nc.publish (today)",
    baseline: true,
    fn: async () => {
      json.reset();
      gen++;
      let i = 0;
      forEachFrame(batch, (frame) => {
        const start = json.pos, hook = writeFrameJsonCode(json, frame, "base64");
        const h = headers();
        h.set("Nats-Msg-Id", sha256Hex(frame, 4));
        nc.publish(`bench.${HOOKS[hook]}`, json.buf.subarray(start, json.pos), {
          reply: `_INBOX.bench.${gen}_${i++}`,
          headers: h,
        });
      });
      await nc.flush();
    },
  },
  {
    group: "nats publish",
    name: "HpubEncoder into one ByteBuffer + one socket write",
    fn: async () => {
      hpubOut.reset();
      hpub.encode(batch, ++gen, hpubOut);
      await writeAll(raw, hpubOut.bytes());
    },
  },
];

if (Deno.args[0] === "--ab") {
  const rounds = Number(Deno.args[1] ?? 15);
  const times = new Map<Variant, number[]>();
  for (const v of variants) await v.fn(); // warm up
  for (let r = 0; r < rounds; r++) {
    for (const v of variants) {
      const per = v.batches ?? 1, reps = 4 / per;
      const t0 = performance.now();
      for (let k = 0; k < reps; k++) await v.fn();
      const us = (performance.now() - t0) * 1000 / reps / (N * per);
      times.set(v, [...(times.get(v) ?? []), us]);
    }
  }
  console.log(`µs/event, median (min) of ${rounds} interleaved rounds, ${N}-event batches:`);
  let group = "";
  for (const v of variants) {
    if (v.group !== group) console.log(`${group = v.group}:`);
    const t = times.get(v)!.sort((a, b) => a - b);
    console.log(`  ${t[t.length >> 1].toFixed(2).padStart(7)} (${t[0].toFixed(2)})  ${v.name}`);
  }
  await shutdown();
} else {
  for (const v of variants) {
    Deno.bench({
      ...v,
      name: `${v.name} [${N * (v.batches ?? 1)} events]`,
      fn: async () => void await v.fn(),
    });
  }
  // deno bench has no "after all" hook: the servers stop when the bench process exits.
  globalThis.addEventListener("unload", () => void shutdown());
}

async function shutdown(): Promise<void> {
  pipe.destroy();
  client.destroy();
  raw.close();
  await nc.close();
  await redis[Symbol.asyncDispose]();
  await nats[Symbol.asyncDispose]();
}

// The pipeline's hot path, piece by piece: `deno bench -P=test benches/` (task bench:micro).
// One iteration handles one read's worth of a realistic mix (scripts/_mix.ts: ~435 B frames,
// 64–512 B payloads); events/s is the frame count in the name divided by the time per
// iteration. A sink that acknowledges at once stands in for the output.
import {
  ByteBuffer,
  DELIVERED,
  type Delivery,
  deliveryOf,
  frameEncoder,
  type FrameSlab,
  type OutputBatch,
  readFrameSlabs,
  Router,
  type SendResult,
  type Sink,
} from "../lib/internal.ts";
import { MixGenerator } from "../scripts/_mix.ts";

// One 256 KiB read of the mix, as the server sees it.
const gen = new MixGenerator({ seed: 7 });
const parts: Uint8Array[] = [];
let size = 0;
for (const kind of gen.kinds(4000)) {
  const f = gen.frame(kind);
  if (size + f.length > 256 * 1024) break;
  parts.push(f);
  size += f.length;
}
const read = new Uint8Array(size);
const slab: FrameSlab = {
  buf: read,
  starts: new Uint32Array(parts.length),
  ends: new Uint32Array(parts.length),
  count: parts.length,
};
for (let i = 0, at = 0; i < parts.length; i++) {
  read.set(parts[i], at);
  slab.starts[i] = at + 4;
  slab.ends[i] = at += parts[i].length;
}
const N = slab.count;
const READ = `one read (${(size / 1024).toFixed(0)} KiB, ${N} frames)`;

/** Acknowledges at once (synchronously too), counting what it got. */
class NullSink implements Sink {
  readonly name = "null";
  events = 0;
  constructor(readonly encoder?: ReturnType<typeof frameEncoder>) {}
  send(batch: OutputBatch): Promise<SendResult> {
    this.sendSync(batch);
    return Promise.resolve(DELIVERED);
  }
  sendSync(batch: OutputBatch): void {
    this.events += batch.count;
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

/**
 * Lets the queues send and acknowledge what one iteration queued, as the event loop does
 * between two reads (sends are asynchronous while a sink keeps up).
 */
async function settle(...queues: Delivery[]): Promise<void> {
  for (const q of queues) await q.flush(10_000);
}

// -- output buffer ----------------------------------------------------------------------------

const out = new ByteBuffer(1 << 20);
const key = new TextEncoder().encode(`,"client_id":`);
const payload = parts[0].subarray(0, 300);

Deno.bench({
  name: "ByteBuffer.write: 10,000 × 14-byte key",
  group: "output buffer",
  baseline: true,
  fn: () => {
    out.pos = 0;
    for (let i = 0; i < 10_000; i++) out.write(key);
  },
});

Deno.bench({
  name: "ByteBuffer.write: 1,000 × 300-byte payload",
  group: "output buffer",
  fn: () => {
    out.pos = 0;
    for (let i = 0; i < 1_000; i++) out.write(payload);
  },
});

Deno.bench({
  name: "ByteBuffer.byte: 100,000 bytes",
  group: "output buffer",
  fn: () => {
    out.pos = 0;
    for (let i = 0; i < 100_000; i++) out.byte(0x2c);
  },
});

// -- queue push ---------------------------------------------------------------------------------

function queueOf(sink: NullSink): Delivery {
  return deliveryOf(sink, { maxBytes: 1 << 30 });
}

const rawQueue = queueOf(new NullSink());
const jsonQueue = queueOf(new NullSink(frameEncoder({ format: "json", payload: "base64" }, "x")));
const pbQueue = queueOf(new NullSink(frameEncoder({ format: "protobuf", payload: "base64" }, "x")));

Deno.bench({
  name: `queue pushAt, frames copied (no encoder): ${READ}`,
  group: "queue push",
  baseline: true,
  fn: async () => {
    for (let i = 0; i < N; i++) rawQueue.pushAt(read, slab.starts[i], slab.ends[i]);
    rawQueue.kick();
    await settle(rawQueue);
  },
});

Deno.bench({
  name: `queue pushRun, one run (file passthrough): ${READ}`,
  group: "queue push",
  fn: async () => {
    pbQueue.pushRun(read, 0, size, N);
    pbQueue.kick();
    await settle(pbQueue);
  },
});

Deno.bench({
  name: `queue pushAt, JSON encoded at enqueue: ${READ}`,
  group: "queue push",
  fn: async () => {
    for (let i = 0; i < N; i++) jsonQueue.pushAt(read, slab.starts[i], slab.ends[i]);
    jsonQueue.kick();
    await settle(jsonQueue);
  },
});

// -- dispatch -----------------------------------------------------------------------------------

const pipelines = {
  json: new Router(
    [{
      sink: new NullSink(frameEncoder({ format: "json", payload: "base64" }, "json")),
      queue: { maxBytes: 1 << 30 },
    }],
    undefined,
    deliveryOf,
  ),
  protobuf: new Router(
    [{
      sink: new NullSink(frameEncoder({ format: "protobuf", payload: "base64" }, "pb")),
      queue: { maxBytes: 1 << 30 },
    }],
    undefined,
    deliveryOf,
  ),
  none: new Router([]),
};

Deno.bench({
  name: `dispatchSlab, no output (envelope + count): ${READ}`,
  group: "dispatch",
  baseline: true,
  fn: () => {
    pipelines.none.dispatchSlab(slab);
  },
});

Deno.bench({
  name: `dispatchSlab → protobuf output: ${READ}`,
  group: "dispatch",
  fn: async () => {
    pipelines.protobuf.dispatchSlab(slab);
    await settle(...pipelines.protobuf.queues);
  },
});

Deno.bench({
  name: `dispatchSlab → JSON output: ${READ}`,
  group: "dispatch",
  fn: async () => {
    pipelines.json.dispatchSlab(slab);
    await settle(...pipelines.json.queues);
  },
});

const views = Array.from({ length: N }, (_, i) => read.subarray(slab.starts[i], slab.ends[i]));
Deno.bench({
  name: `dispatch (frame views) → JSON output: ${READ}`,
  group: "dispatch",
  fn: async () => {
    pipelines.json.dispatch(views);
    await settle(...pipelines.json.queues);
  },
});

// -- framing a read -----------------------------------------------------------------------------

Deno.bench({
  name: `readFrameSlabs: cut 16 reads like ${READ} (reused buffer)`,
  group: "framing",
  async fn() {
    let left = 16 * size, at = 0;
    const source = {
      read(p: Uint8Array): Promise<number | null> {
        if (left === 0) return Promise.resolve(null);
        const n = Math.min(p.length, size - at, left);
        p.set(read.subarray(at, at + n));
        at = (at + n) % size;
        left -= n;
        return Promise.resolve(n);
      },
    };
    let frames = 0;
    for await (const s of readFrameSlabs(source)) frames += s.count;
    if (frames !== 16 * N) throw new Error(`${frames} frames`);
  },
});

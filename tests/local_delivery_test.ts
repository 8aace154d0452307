// LocalDelivery (lib/outputs/local/local_delivery.ts): the file/stdout fast path — encoding at
// enqueue, coalesced sends, synchronous writes once behind, part-way retries as they were.
import { assert, assertEquals } from "./_assert.ts";
import {
  DELIVERED,
  Delivery,
  deliveryOf,
  type EncodingSink,
  forEachFrame,
  frameEncoder,
  LocalDelivery,
  MemoryBudget,
  type OutputBatch,
  releaseBuffer,
  type SendResult,
  type SyncSink,
  takeBuffer,
} from "../lib/internal.ts";
import { concat, eventBody } from "./_vectors.ts";
import { clientIds, publish, RecordingSink } from "./_delivery_kit.ts";

/** A {@linkcode RecordingSink} that can also write synchronously, counting each way. */
class SyncRecordingSink extends RecordingSink implements SyncSink {
  syncWrites = 0;
  syncFailures = 0;
  sendSync(batch: OutputBatch): void {
    this.syncWrites++;
    if (this.syncFailures > 0) {
      this.syncFailures--;
      throw new Error("disk full");
    }
    forEachFrame(batch, (f) => this.frames.push(f.slice()));
  }
}

/** Pushes numbered ~1 KB events into `q` until it holds `bytes`, then kicks it. */
function filler(q: LocalDelivery): { pushUntil: (bytes: number) => void; pushed: () => number } {
  let next = 0;
  return {
    pushUntil: (bytes) => {
      while (q.bytes < bytes) q.push(publish(next++, 1000));
      q.kick();
    },
    pushed: () => next,
  };
}

Deno.test("local: a sync-capable sink is sent asynchronously while it keeps up, synchronously once behind", async () => {
  const sink = new SyncRecordingSink();
  const q = new LocalDelivery(sink, { maxBytes: 64 * 1024, batchBytes: 4096, retryInitialMs: 5 });
  const { pushUntil, pushed } = filler(q);
  // Keeping up: each batch goes out through send() (off the caller's thread in a real sink).
  let release!: () => void;
  sink.gate = new Promise((r) => release = r);
  pushUntil(4096);
  assertEquals([sink.attempts, sink.syncWrites], [1, 0]);
  // The destination is slow: the queue grows past a quarter of maxBytes while that send is
  // pending. Readers are asked to pause (full), nothing is written synchronously before the
  // send completes (order), then the backlog is.
  assert(!q.full);
  pushUntil(20 * 1024);
  assert(q.full && q.congested, "behind with a write in flight: readers pause");
  assertEquals(sink.syncWrites, 0);
  let resumed = false;
  const waiting = q.writable().then(() => resumed = true);
  release();
  sink.gate = undefined;
  await new Promise((r) => setTimeout(r, 10));
  assert(sink.syncWrites > 0, "the backlog is written synchronously");
  assertEquals(q.bytes, 0);
  await waiting;
  assert(resumed && !q.full);
  // Caught up: asynchronous again.
  const attempts = sink.attempts, syncWrites = sink.syncWrites;
  pushUntil(4096);
  assert(await q.flush(5000));
  assert(sink.attempts > attempts);
  assertEquals(sink.syncWrites, syncWrites);
  // A failed synchronous write is retried (through send, with backoff): nothing lost.
  sink.syncFailures = 1;
  sink.gate = new Promise((r) => release = r);
  pushUntil(4096);
  pushUntil(20 * 1024);
  release();
  sink.gate = undefined;
  assert(await q.flush(5000));
  assertEquals(q.stats.errors, 1);
  assertEquals(clientIds(sink.frames), Array.from({ length: pushed() }, (_, i) => `q-${i}`));
  assertEquals(q.stats.sent, pushed());
  await q.close();
});

/**
 * An encoding, sync-capable sink that writes like FileSink: a write that fails part-way keeps
 * how far it got, and the retry of that same batch resumes there.
 */
class ResumingSink implements SyncSink {
  readonly name = "resuming";
  readonly encoder = frameEncoder({ format: "protobuf", payload: "base64" }, "resuming");
  readonly written: Uint8Array[] = [];
  failNextSync = false;
  gate: Promise<void> | undefined;
  #partial: { batch: OutputBatch; off: number } | undefined;
  #write(batch: OutputBatch, fail: boolean): void {
    const off = this.#partial?.batch === batch ? this.#partial.off : 0;
    this.#partial = undefined;
    const end = fail ? off + ((batch.bytes.length - off) >> 1) : batch.bytes.length;
    this.written.push(batch.bytes.slice(off, end));
    if (fail) {
      this.#partial = { batch, off: end };
      throw new Error("disk full");
    }
  }
  sendSync(batch: OutputBatch): void {
    const fail = this.failNextSync;
    this.failNextSync = false;
    this.#write(batch, fail);
  }
  async send(batch: OutputBatch): Promise<SendResult> {
    if (this.gate) await this.gate;
    this.#write(batch, false);
    return DELIVERED;
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

Deno.test("local: a batch whose synchronous write failed part-way is retried as it was: nothing written twice", async () => {
  const sink = new ResumingSink();
  const q = new LocalDelivery(sink, { maxBytes: 64 * 1024, batchBytes: 4096, retryInitialMs: 5 });
  const { pushUntil, pushed } = filler(q);
  let release!: () => void;
  sink.gate = new Promise((r) => release = r);
  pushUntil(4096); // in flight, held
  pushUntil(30 * 1024); // behind: batches back to back in one buffer, written synchronously next
  sink.failNextSync = true;
  sink.gate = undefined;
  release();
  assert(await q.flush(5000));
  assertEquals(q.stats.errors, 1);
  const all = concat(sink.written);
  const frames: Uint8Array[] = [];
  forEachFrame({ bytes: all, count: pushed() }, (f) => frames.push(f));
  assertEquals(clientIds(frames), Array.from({ length: pushed() }, (_, i) => `q-${i}`));
  assertEquals(all.length, frames.reduce((n, f) => n + 4 + f.length, 0));
  await q.close();
});

Deno.test("local: coalesced batches of a chunk the encoder grew keep their bytes (real JSON encoder, slot not at offset 0)", async () => {
  const other = takeBuffer(1024 * 1024); // slot 0 of the 1 MiB pool is taken by someone else
  let release!: () => void;
  const gate = new Promise<void>((r) => release = r);
  const out: Uint8Array[] = [];
  const sink: EncodingSink = {
    name: "file:/coalesce",
    encoder: frameEncoder({ format: "json", payload: "utf8" }, "file:/coalesce"),
    async send(b: OutputBatch) {
      if (out.length === 0) await gate;
      out.push(b.bytes.slice());
      return DELIVERED;
    },
    close: () => Promise.resolve(),
  };
  const q = new LocalDelivery(sink, { maxBytes: 64 << 20 }); // batchBytes 256 KiB, chunk 1 MiB
  const pub = (seq: number, payload: Uint8Array) =>
    eventBody("on_publish", {
      timestamp: { seconds: 1700000000, nanos: 0 },
      client_id: `c${seq}`,
      topic: `t/${seq}`,
      payload,
    });
  const text = new Uint8Array(64 * 1024).fill(0x61);
  let seq = 0;
  for (let i = 0; i < 12; i++) { // 3 batches of 4 events (the first in flight, two queued)
    q.push(pub(seq++, text));
    if (i === 3) q.kick();
  }
  // ~600 KiB of JSON (each byte escaped as \u0001): the encoder grows the chunk.
  q.push(pub(seq++, new Uint8Array(100 * 1024).fill(0x01)));
  release();
  assertEquals(await q.flush(5000), true);
  const lines = new TextDecoder().decode(concat(out)).split("\n").filter((l) => l !== "");
  const ids = lines.map((l) => {
    try {
      return JSON.parse(l).client_id as string;
    } catch {
      return "<not JSON>";
    }
  });
  assertEquals(ids, Array.from({ length: seq }, (_, i) => `c${i}`));
  await q.close();
  releaseBuffer(other);
});

Deno.test("local: deliveryOf gives encoding or sync-capable sinks the local fast path, the others the generic delivery", async () => {
  const encoding: EncodingSink = {
    name: "enc",
    encoder: frameEncoder({ format: "json", payload: "base64" }, "enc"),
    send: () => Promise.resolve(DELIVERED),
    close: () => Promise.resolve(),
  };
  const plain = new RecordingSink("plain");
  const sync = new SyncRecordingSink("sync");
  const made = [deliveryOf(encoding, {}), deliveryOf(sync, {}), deliveryOf(plain, {})];
  assertEquals(made.map((d) => d instanceof LocalDelivery), [true, true, false]);
  assert(made[2] instanceof Delivery);
  // The generic one keeps frames as received; the JSON one encodes them.
  const frame = publish(1);
  for (const d of [made[0], made[2]]) {
    d.push(frame);
    assert(await d.flush(5000));
  }
  assertEquals(plain.frames.length, 1);
  assertEquals(made[0].stats.sent, 1);
  for (const d of made) await d.close();
});

Deno.test("local: an on_full=drop JSON output whose sink never answers stays within half of the shared budget (readers paused until half is free cannot wait for ever behind it)", async () => {
  const budget = new MemoryBudget({ capacity: 256 * 1024 });
  let answer: (r: SendResult) => void = () => {};
  const stuck: EncodingSink = {
    name: "stuck",
    encoder: frameEncoder({ format: "json", payload: "base64" }, "stuck"),
    send: () => new Promise<SendResult>((r) => answer = r),
    close: () => Promise.resolve(),
  };
  const q = deliveryOf(stuck, { onFull: "drop", maxBytes: 64 << 20, budget });
  assert(q instanceof LocalDelivery);
  let dropped = 0;
  for (let i = 0; i < 2000; i++) if (!q.push(publish(i, 3000))) dropped++;
  q.kick();
  assert(dropped > 0, "beyond half of the budget it drops");
  assert(budget.held <= budget.capacity / 2, `the drop output holds ${budget.held} bytes`);
  answer(DELIVERED);
  await q.close();
});

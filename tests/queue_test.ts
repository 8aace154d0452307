// OutputQueue and Pipeline semantics: bounded, acknowledged, retried, block vs drop, order.
import { assert, assertEquals } from "./_assert.ts";
import {
  type DeadLetter,
  DeadLetterFile,
  type DeadLetterWriter,
  DELIVERED,
  DISPATCH_BACKPRESSURE,
  DISPATCH_MALFORMED,
  DISPATCH_OK,
  type EncodingSink,
  forEachFrame,
  type FrameBatch,
  frameEncoder,
  Metrics,
  OutputQueue,
  Pipeline,
  releaseBuffer,
  type SendResult,
  type Sink,
  type SyncSink,
  takeBuffer,
} from "../lib/internal.ts";
import { concat, eventBody, fixtureVectors } from "./_vectors.ts";

/** A sink that records what it acknowledged; `gate` makes sends wait, `failures` makes them fail. */
class RecordingSink implements Sink {
  readonly name: string;
  readonly frames: Uint8Array[] = [];
  attempts = 0;
  failures = 0;
  gate: Promise<void> | undefined;
  closed = false;
  constructor(name = "recording") {
    this.name = name;
  }
  async send(batch: FrameBatch): Promise<SendResult> {
    this.attempts++;
    if (this.gate) await this.gate;
    if (this.failures > 0) {
      this.failures--;
      throw new Error("destination unavailable");
    }
    forEachFrame(batch, (f) => this.frames.push(f.slice()));
    return DELIVERED;
  }
  close(): Promise<void> {
    this.closed = true;
    return Promise.resolve();
  }
}

function publish(i: number, payloadBytes = 100): Uint8Array {
  const e = fixtureVectors().find((v) => v.name === "027_on_publish_typical")!.expected.event!;
  return eventBody("on_publish", {
    ...e,
    client_id: `q-${i}`,
    payload: new Uint8Array(payloadBytes),
  });
}

const clientIds = (frames: Uint8Array[]) =>
  frames.map((f) => /q-\d+/.exec(new TextDecoder().decode(f))![0]);

/** A refusal of `events` events (body: as many JSON lines). */
function letter(events: number, reason = "HTTP 400 Bad Request"): DeadLetter {
  return {
    reason,
    status: 400,
    events,
    contentType: "application/x-ndjson",
    body: new TextEncoder().encode("{}\n".repeat(events)),
  };
}

/** `file`, except that appending a refusal of one event fails (a disk full, for that one). */
function failingOneEventLetters(file: DeadLetterFile): DeadLetterWriter {
  return {
    path: file.path,
    checkPermission: () => file.checkPermission(),
    append: (d) => d.events === 1 ? Promise.reject(new Error("disk full")) : file.append(d),
    close: () => file.close(),
  };
}

/** The records of a dead-letter file. */
function deadLetters(path: string): { events: number; reason: string }[] {
  return Deno.readTextFileSync(path).split("\n").filter((l) => l !== "").map((l) => JSON.parse(l));
}

Deno.test("queue: frames are acknowledged in order, then forgotten", async () => {
  const sink = new RecordingSink();
  const q = new OutputQueue(sink, { batchBytes: 1024 });
  for (let i = 0; i < 100; i++) assert(q.push(publish(i)));
  q.kick();
  assert(await q.flush(5000));
  assertEquals(clientIds(sink.frames), Array.from({ length: 100 }, (_, i) => `q-${i}`));
  assertEquals(q.events, 0);
  assertEquals(q.bytes, 0);
  assertEquals(q.stats.sent, 100);
  assert(sink.attempts > 1, "small batchBytes must split into several batches");
  await q.close();
  assert(sink.closed);
});

Deno.test("queue: a failing sink is retried with backoff until it acknowledges; nothing lost or duplicated", async () => {
  const sink = new RecordingSink();
  sink.failures = 3;
  const q = new OutputQueue(sink, { retryInitialMs: 5, retryMaxMs: 20 });
  for (let i = 0; i < 10; i++) q.push(publish(i));
  q.kick();
  assert(await q.flush(5000));
  assertEquals(clientIds(sink.frames), Array.from({ length: 10 }, (_, i) => `q-${i}`));
  assertEquals(q.stats.errors, 3);
  assertEquals(q.stats.retries, 3);
  assertEquals(q.failing, false);
  await q.close();
});

/** A {@linkcode RecordingSink} that can also write synchronously, counting each way. */
class SyncRecordingSink extends RecordingSink implements SyncSink {
  syncWrites = 0;
  syncFailures = 0;
  sendSync(batch: FrameBatch): void {
    this.syncWrites++;
    if (this.syncFailures > 0) {
      this.syncFailures--;
      throw new Error("disk full");
    }
    forEachFrame(batch, (f) => this.frames.push(f.slice()));
  }
}

/** Pushes numbered ~1 KB events into `q` until it holds `bytes`, then kicks it. */
function filler(q: OutputQueue): { pushUntil: (bytes: number) => void; pushed: () => number } {
  let next = 0;
  return {
    pushUntil: (bytes) => {
      while (q.bytes < bytes) q.push(publish(next++, 1000));
      q.kick();
    },
    pushed: () => next,
  };
}

Deno.test("queue: a sync-capable sink is sent asynchronously while it keeps up, synchronously once behind", async () => {
  const sink = new SyncRecordingSink();
  const q = new OutputQueue(sink, { maxBytes: 64 * 1024, batchBytes: 4096, retryInitialMs: 5 });
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
  #partial: { batch: FrameBatch; off: number } | undefined;
  #write(batch: FrameBatch, fail: boolean): void {
    const off = this.#partial?.batch === batch ? this.#partial.off : 0;
    this.#partial = undefined;
    const end = fail ? off + ((batch.bytes.length - off) >> 1) : batch.bytes.length;
    this.written.push(batch.bytes.slice(off, end));
    if (fail) {
      this.#partial = { batch, off: end };
      throw new Error("disk full");
    }
  }
  sendSync(batch: FrameBatch): void {
    const fail = this.failNextSync;
    this.failNextSync = false;
    this.#write(batch, fail);
  }
  async send(batch: FrameBatch): Promise<SendResult> {
    if (this.gate) await this.gate;
    this.#write(batch, false);
    return DELIVERED;
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

Deno.test("queue: a batch whose synchronous write failed part-way is retried as it was: nothing written twice", async () => {
  const sink = new ResumingSink();
  const q = new OutputQueue(sink, { maxBytes: 64 * 1024, batchBytes: 4096, retryInitialMs: 5 });
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

Deno.test("queue: on_full=drop drops beyond maxBytes and counts; memory stays bounded", async () => {
  const sink = new RecordingSink();
  let release!: () => void;
  sink.gate = new Promise((r) => release = r);
  const frame = publish(0, 1000);
  const q = new OutputQueue(sink, { maxBytes: 64 * 1024, onFull: "drop" });
  let accepted = 0;
  for (let i = 0; i < 1000; i++) if (q.push(frame)) accepted++;
  assert(q.bytes <= 64 * 1024, `held ${q.bytes} bytes`);
  assertEquals(accepted + q.stats.dropped, 1000);
  assert(q.stats.dropped > 900, `dropped ${q.stats.dropped}`);
  q.kick();
  release();
  assert(await q.flush(5000));
  assertEquals(sink.frames.length, accepted);
  await q.close();
});

Deno.test("pipeline: a full blocking output asks the reader to wait, and lets it go at half", async () => {
  const sink = new RecordingSink();
  let release!: () => void;
  sink.gate = new Promise((r) => release = r);
  const p = new Pipeline([{ sink, queue: { maxBytes: 64 * 1024, onFull: "block" } }]);
  const frame = publish(0, 1000);
  let r = DISPATCH_OK;
  let dispatched = 0;
  while (r === DISPATCH_OK && dispatched < 1000) {
    r = p.dispatch([frame]);
    dispatched++;
  }
  assertEquals(r, DISPATCH_BACKPRESSURE);
  assert(dispatched < 100, `blocked only after ${dispatched} frames`);
  let resumed = false;
  const waiting = p.writable().then(() => resumed = true);
  await new Promise((r) => setTimeout(r, 20));
  assertEquals(resumed, false);
  release();
  await waiting;
  assert(await p.close(5000));
  assertEquals(sink.frames.length, dispatched);
});

Deno.test("pipeline: a dead output with on_full=drop never blocks a healthy one", async () => {
  const healthy = new RecordingSink("healthy");
  const dead = new RecordingSink("dead");
  dead.gate = new Promise(() => {}); // never acknowledges
  const p = new Pipeline([
    { sink: healthy },
    { sink: dead, queue: { maxBytes: 64 * 1024, onFull: "drop" } },
  ]);
  for (let i = 0; i < 2000; i++) assertEquals(p.dispatch([publish(i)]), DISPATCH_OK);
  await p.queues[0].flush(5000);
  assertEquals(healthy.frames.length, 2000);
  assert(p.queues[1].stats.dropped > 0);
  assert(p.queues[1].bytes <= 64 * 1024);
});

Deno.test("pipeline: hooks filter per output; empty, unknown and malformed frames are counted", async () => {
  const all = new RecordingSink("all");
  const subs = new RecordingSink("subs");
  const p = new Pipeline([{ sink: all }, {
    sink: subs,
    hooks: new Set(["on_subscribe"] as const),
  }]);
  const vectors = fixtureVectors();
  const frames = vectors.map((v) => v.body);
  assertEquals(p.dispatch(frames), DISPATCH_OK);
  const unknown = new Uint8Array([0x0a, 3, 0x61, 0x62, 0x63]); // type_url "abc"
  assertEquals(p.dispatch([unknown]), DISPATCH_OK);
  assertEquals(p.dispatch([new Uint8Array([0x0a, 9, 1])]), DISPATCH_MALFORMED);
  assert(await p.close(5000));
  const events = vectors.filter((v) => v.expected.hook !== null);
  assertEquals(all.frames.length, events.length);
  assertEquals(subs.frames.length, events.filter((v) => v.expected.hook === "on_subscribe").length);
  assertEquals(p.emptyFrames, 1);
  assertEquals(p.unknownType, 1);
  assertEquals(p.malformed, 1);
  assertEquals(p.totalReceived, events.length);
});

Deno.test("queue: a sink's onReady ends the backoff at once; a typed result splits sent, dead-lettered and lost", async () => {
  let ready = () => {};
  const sink = new RecordingSink();
  sink.failures = 3;
  const dir = await Deno.makeTempDir();
  const reporting: Sink = {
    name: "reporting",
    send: async (batch) => {
      await sink.send(batch);
      return { outcome: "delivered", rejected: [letter(2), letter(1)] };
    },
    close: () => Promise.resolve(),
    onReady: (cb) => ready = cb,
    deadLetter: failingOneEventLetters(new DeadLetterFile(`${dir}/dead.ndjson`, "reporting")),
  };
  // A backoff of at least 5 s per retry: only the wake-up can deliver within the wait below.
  const q = new OutputQueue(reporting, { retryInitialMs: 10_000, retryMaxMs: 10_000 });
  for (let i = 0; i < 10; i++) assert(q.push(publish(i)));
  q.kick();
  for (let failed = 1; failed <= 3; failed++) {
    for (let i = 0; i < 100 && sink.attempts < failed; i++) {
      await new Promise((r) => setTimeout(r, 10));
    }
    assertEquals(sink.attempts, failed, `attempts after ${failed} failures`);
    assert(q.failing);
    if (failed < 3) ready(); // the destination is back (and fails once more)
  }
  await new Promise((r) => setTimeout(r, 200));
  assertEquals(sink.attempts, 3, "no retry before the backoff ends or the sink is ready");
  ready();
  for (let i = 0; i < 200 && q.events > 0; i++) await new Promise((r) => setTimeout(r, 10));
  assertEquals(q.events, 0, "delivered right after the wake-up");
  assertEquals(
    { ...q.stats, errors: 0, retries: 0 },
    {
      received: 10,
      sent: 7,
      deadLettered: 2,
      undecodable: 0,
      lost: 1,
      dropped: 0,
      errors: 0,
      retries: 0,
    },
  );
  assertEquals(q.stats.errors, 3);
  await q.close();
  assertEquals(deadLetters(`${dir}/dead.ndjson`).map((r) => r.events), [2]);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("queue: coalesced batches of a chunk the encoder grew keep their bytes (real JSON encoder, slot not at offset 0)", async () => {
  const other = takeBuffer(1024 * 1024); // slot 0 of the 1 MiB pool is taken by someone else
  let release!: () => void;
  const gate = new Promise<void>((r) => release = r);
  const out: Uint8Array[] = [];
  const sink: EncodingSink = {
    name: "file:/coalesce",
    encoder: frameEncoder({ format: "json", payload: "utf8" }, "file:/coalesce"),
    async send(b: FrameBatch) {
      if (out.length === 0) await gate;
      out.push(b.bytes.slice());
      return DELIVERED;
    },
    close: () => Promise.resolve(),
  };
  const q = new OutputQueue(sink, { maxBytes: 64 << 20 }); // batchBytes 256 KiB, chunk 1 MiB
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

Deno.test("pipeline metrics: every term of received = sent + dead_lettered + lost + dropped + queued is a per-output counter of the Pipeline", async () => {
  const m = new Metrics();
  const dir = await Deno.makeTempDir();
  const reporting: Sink = {
    name: "reporting",
    send: () => Promise.resolve({ outcome: "delivered", rejected: [letter(2), letter(1)] }),
    close: () => Promise.resolve(),
    deadLetter: failingOneEventLetters(new DeadLetterFile(`${dir}/dead.ndjson`, "reporting")),
  };
  const p = new Pipeline([{ sink: reporting }], m);
  p.dispatch(Array.from({ length: 10 }, (_, i) => publish(i)));
  assert(await p.queues[0].flush(5000));
  const text = m.render();
  const value = (name: string) =>
    Number(new RegExp(`^${name}\\{output="reporting"[^}]*\\} (\\S+)$`, "m").exec(text)?.[1]);
  assertEquals(value("vmq_sidecar_output_events_received_total"), 10);
  assertEquals(value("vmq_sidecar_output_events_sent_total"), 7);
  assertEquals(value("vmq_sidecar_output_events_dead_lettered_total"), 2);
  assertEquals(value("vmq_sidecar_output_events_lost_total"), 1);
  assertEquals(value("vmq_sidecar_output_events_dropped_total"), 0);
  assert(!text.includes("vmq_sidecar_output_dead_lettered_total"), "old name gone");
  await p.close(1000);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("queue: counters add up after mixed outcomes — received = sent + dead-lettered + undecodable + dropped + lost + held, per output instance", async () => {
  const dir = await Deno.makeTempDir();
  // One scripted result per attempt, batches of 4 events.
  let release!: () => void;
  const held = new Promise<void>((r) => release = r);
  const script: (() => Promise<SendResult>)[] = [
    () => Promise.reject(new Error("connection reset")), // retried
    () => Promise.resolve({ outcome: "retry", reason: "HTTP 503", retryAfterMs: 5 }), // retried
    () => Promise.resolve(DELIVERED), // 4 sent
    () => Promise.resolve({ outcome: "delivered", undecodable: 1 }), // 3 sent, 1 undecodable
    () => Promise.resolve({ outcome: "delivered", rejected: [letter(2, "too large")] }), // 2 + 2
    () => Promise.resolve({ outcome: "rejected", letter: letter(3), undecodable: 1 }), // 3 dl, 1 u
    () => Promise.resolve({ outcome: "rejected", letter: letter(1, "one") }), // 4 lost (fails)
    () => held.then(() => DELIVERED), // in flight at the check: 4 held
  ];
  let attempt = 0;
  const path = `${dir}/dead.ndjson`;
  const sink: Sink = {
    name: "same-name",
    send: () => script[Math.min(attempt++, script.length - 1)](),
    close: () => Promise.resolve(),
    deadLetter: {
      path,
      checkPermission() {},
      // The real file, except that the refusal named "one" cannot be written.
      append: (d) =>
        d.reason === "one"
          ? Promise.reject(new Error("disk full"))
          : new DeadLetterFile(path, "same-name").append(d),
      close() {},
    },
  };
  const q = new OutputQueue(sink, {
    batchEvents: 4,
    retryInitialMs: 5,
    retryMaxMs: 10,
    onFull: "drop",
    maxBytes: 65536,
  });
  // A second instance with the same name: a JSON output whose encoder skips a bad event.
  const local: EncodingSink = {
    name: "same-name",
    encoder: frameEncoder({ format: "json", payload: "base64" }, "same-name"),
    send: () => Promise.resolve(DELIVERED),
    close: () => Promise.resolve(),
  };
  const q2 = new OutputQueue(local);
  for (let i = 0; i < 24; i++) assert(q.push(publish(i)));
  // Fill to the budget while the head is retried: the rest is dropped.
  let dropped = 0;
  for (let i = 0; i < 200; i++) if (!q.push(publish(100 + i, 1000))) dropped++;
  assert(dropped > 0, "some events dropped");
  q.kick();
  // A valid on_publish envelope whose value is cut short: it does not decode.
  const typeUrl = publish(0).subarray(0, 2 + publish(0)[1]);
  const bad = new Uint8Array([...typeUrl, 0x12, 2, 0x0a, 0x05]);
  q2.push(publish(1));
  q2.push(bad);
  q2.push(publish(2));
  q2.kick();
  assert(await q2.flush(5000));
  const identity = (s: typeof q.stats, heldNow: number) =>
    s.sent + s.deadLettered + s.undecodable + s.dropped + s.lost + heldNow;
  // Wait (bounded) until the scripted results are settled and the last batch is in flight.
  for (let i = 0; i < 500 && attempt < script.length; i++) {
    await new Promise((r) => setTimeout(r, 10));
  }
  await new Promise((r) => setTimeout(r, 20));
  const s = { ...q.stats };
  assertEquals(s.received, 224);
  assertEquals(identity(s, q.events), s.received, JSON.stringify({ ...s, held: q.events }));
  assertEquals(
    { sent: s.sent, deadLettered: s.deadLettered, undecodable: s.undecodable, lost: s.lost },
    { sent: 4 + 3 + 2, deadLettered: 2 + 3, undecodable: 1 + 1, lost: 4 },
  );
  assertEquals(s.dropped, dropped);
  assertEquals([s.errors, s.retries], [2, 2]);
  assert(q.events >= 4, `the batch in flight is held: ${q.events}`);
  assertEquals(deadLetters(path).map((r) => [r.reason, r.events]), [["too large", 2], [
    "HTTP 400 Bad Request",
    3,
  ]]);
  // The other instance of the same name counts only its own: 1 undecodable, 2 sent.
  assertEquals([q2.stats.received, q2.stats.sent, q2.stats.undecodable], [3, 2, 1]);
  assertEquals(identity(q2.stats, q2.events), q2.stats.received);
  release();
  assert(await q.flush(5000));
  assertEquals(identity(q.stats, q.events), q.stats.received);
  assertEquals(q.events, 0);
  await q.close();
  await q2.close();
  await Deno.remove(dir, { recursive: true });
});

// Delivery (lib/pipeline/delivery.ts): bounded, acknowledged, retried, typed results,
// dead-lettered once per output instance, counters that add up.
import { assert, assertEquals } from "./_assert.ts";
import {
  DeadLetterFile,
  DELIVERED,
  Delivery,
  type EncodingSink,
  frameEncoder,
  LocalDelivery,
  MemoryBuffer,
  type SendResult,
  type Sink,
} from "../lib/internal.ts";
import {
  clientIds,
  deadLetters,
  failingOneEventLetters,
  letter,
  publish,
  RecordingSink,
} from "./_delivery_kit.ts";

Deno.test("delivery: frames are acknowledged in order, then forgotten", async () => {
  const sink = new RecordingSink();
  const q = new Delivery(sink, { batchBytes: 1024 });
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

Deno.test("delivery: a failing sink is retried with backoff until it acknowledges; nothing lost or duplicated", async () => {
  const sink = new RecordingSink();
  sink.failures = 3;
  const q = new Delivery(sink, { retryInitialMs: 5, retryMaxMs: 20 });
  for (let i = 0; i < 10; i++) q.push(publish(i));
  q.kick();
  assert(await q.flush(5000));
  assertEquals(clientIds(sink.frames), Array.from({ length: 10 }, (_, i) => `q-${i}`));
  assertEquals(q.stats.errors, 3);
  assertEquals(q.stats.retries, 3);
  assertEquals(q.failing, false);
  await q.close();
});

Deno.test("delivery: on_full=drop drops beyond maxBytes and counts; memory stays bounded", async () => {
  const sink = new RecordingSink();
  let release!: () => void;
  sink.gate = new Promise((r) => release = r);
  const frame = publish(0, 1000);
  const q = new Delivery(sink, { maxBytes: 64 * 1024, onFull: "drop" });
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

Deno.test("delivery: a sink's onReady ends the backoff at once; a typed result splits sent, dead-lettered and lost", async () => {
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
  const q = new Delivery(reporting, { retryInitialMs: 10_000, retryMaxMs: 10_000 });
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

Deno.test("delivery: counters add up after mixed outcomes — received = sent + dead-lettered + undecodable + dropped + lost + held, per output instance", async () => {
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
  const q = new Delivery(sink, {
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
  const q2 = new LocalDelivery(local);
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

Deno.test("an unexpected error inside the pump (here: the buffer's read throws) is logged and counted, never an unhandled rejection; the next kick sends", async () => {
  // Before: the pump's rejection reached the top level (the test failed with an uncaught error).
  let calls = 0;
  class FlakyBuffer extends MemoryBuffer {
    override read(...args: Parameters<MemoryBuffer["read"]>): ReturnType<MemoryBuffer["read"]> {
      // The 1st read is kick's look for a sealed batch; the 2nd is the pump's.
      if (++calls === 2) throw new Error("read failed (test)");
      return super.read(...args);
    }
  }
  const sink = new RecordingSink();
  const d = new Delivery(sink, {}, new FlakyBuffer({ maxBytes: 1 << 20, chunkBytes: 64 * 1024 }));
  for (let i = 0; i < 5; i++) d.push(publish(i));
  d.buffer.seal();
  d.kick();
  await new Promise((r) => setTimeout(r, 20));
  assertEquals(sink.frames.length, 0);
  assertEquals(d.stats.errors, 1);
  d.kick();
  assert(await d.flush(5000));
  assertEquals(clientIds(sink.frames), ["q-0", "q-1", "q-2", "q-3", "q-4"]);
  await d.close();
});

Deno.test("counters add up while a batch's second dead letter is still being written (the first one's events are not counted twice)", async () => {
  let release = () => {};
  const gate = new Promise<void>((r) => release = r);
  let appends = 0;
  const sink: Sink = {
    name: "two-letters",
    send: () =>
      Promise.resolve({
        outcome: "delivered" as const,
        rejected: [letter(2), letter(3)],
        undecodable: 0,
      }),
    close: () => Promise.resolve(),
    deadLetter: {
      path: "(test)",
      checkPermission: () => {},
      append: () => ++appends === 1 ? Promise.resolve() : gate,
      close: () => Promise.resolve(),
    },
  };
  const d = new Delivery(sink, {});
  for (let i = 0; i < 10; i++) d.push(publish(i));
  d.kick();
  const until = Date.now() + 5000;
  while (appends < 2 && Date.now() < until) await new Promise((r) => setTimeout(r, 1));
  assertEquals(appends, 2, "the second letter is being written");
  await new Promise((r) => setTimeout(r, 10)); // what a scrape would see now
  const s = d.stats;
  // Before: deadLettered was 2 already while all 10 were still held (received 10 ≠ 2 + 10).
  assertEquals(s.received, s.sent + s.deadLettered + s.undecodable + s.dropped + s.lost + d.events);
  release();
  assert(await d.flush(5000));
  assertEquals([s.sent, s.deadLettered, s.lost, d.events], [5, 5, 0, 0]);
  await d.close();
});

// The delivery window (`concurrency`): several batches in flight, settled and acknowledged in
// order. The sink is a scripted test double of the Sink interface (the seam under test): each
// send waits until the test answers it, so completion order is the test's choice.
import { assert, assertEquals } from "./_assert.ts";
import {
  Delivery,
  type DeliveryOptions,
  forEachFrame,
  HOOKS,
  JournalDelivery,
  JournalPort,
  type OutputBatch,
  retryLater,
  type SendResult,
  type Sink,
} from "../lib/internal.ts";
import { letter, publish } from "./_delivery_kit.ts";
import { eventBody, fixtureVectors } from "./_vectors.ts";

interface Send {
  readonly ids: string[];
  answered: boolean;
  answer(r: SendResult): void;
}

const DELIVERED_RESULT: SendResult = { outcome: "delivered" };

/** Each send waits for the test's answer (or `auto`: delivered at once). */
class ScriptedSink implements Sink {
  constructor(readonly name = "scripted") {}
  readonly sends: Send[] = [];
  readonly delivered: string[] = [];
  outstanding = 0;
  maxOutstanding = 0;
  auto = false;
  closed = false;
  send(batch: OutputBatch): Promise<SendResult> {
    const ids: string[] = [];
    forEachFrame(batch, (f) => ids.push(/[qs]-\d+/.exec(new TextDecoder().decode(f))![0]));
    this.outstanding++;
    this.maxOutstanding = Math.max(this.maxOutstanding, this.outstanding);
    return new Promise((resolve) => {
      const s: Send = {
        ids,
        answered: false,
        answer: (r) => {
          if (s.answered) return;
          s.answered = true;
          this.outstanding--;
          if (r.outcome === "delivered") this.delivered.push(...ids);
          resolve(r);
        },
      };
      this.sends.push(s);
      if (this.auto) s.answer(DELIVERED_RESULT);
    });
  }
  /** Sends not answered yet, oldest first. */
  get open(): Send[] {
    return this.sends.filter((s) => !s.answered);
  }
  close(): Promise<void> {
    this.closed = true;
    // Like a client closing its connection: what is in flight fails.
    for (const s of this.open) s.answer(retryLater("closed"));
    return Promise.resolve();
  }
}

const ids = (from: number, to: number) =>
  Array.from({ length: to - from }, (_, i) => `q-${from + i}`);

async function until(what: string, cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 1));
  }
}

/** A few turns of the event loop (for asserting that nothing more happens). */
const settle = () => new Promise((r) => setTimeout(r, 20));

function assertAddsUp(d: Delivery): void {
  const s = d.stats;
  assertEquals(
    s.received,
    s.sent + s.deadLettered + s.undecodable + s.dropped + s.lost + d.events,
    `counters add up: ${JSON.stringify(s)}, held ${d.events}`,
  );
}

const WINDOW: Partial<DeliveryOptions> = {
  concurrency: 4,
  batchEvents: 10,
  retryInitialMs: 1,
  retryMaxMs: 5,
};

function memoryDelivery(sink: Sink, frames: number, options: Partial<DeliveryOptions> = {}) {
  const d = new Delivery(sink, { ...WINDOW, ...options });
  for (let i = 0; i < frames; i++) d.push(publish(i, 10));
  d.kick();
  return d;
}

Deno.test("window: 4 sends outstanding at once; out-of-order completion is acknowledged in order", async () => {
  const sink = new ScriptedSink();
  const d = memoryDelivery(sink, 100);
  const acks: number[] = [];
  d.onAck = (_s, count) => acks.push(count);
  await until("4 sends", () => sink.sends.length === 4);
  await settle();
  assertEquals(sink.sends.length, 4, "never more than concurrency sends");
  assertEquals(sink.sends.map((s) => s.ids), [ids(0, 10), ids(10, 20), ids(20, 30), ids(30, 40)]);
  // The later three complete first: nothing is acknowledged before the first one.
  for (const i of [3, 2, 1]) sink.sends[i].answer(DELIVERED_RESULT);
  await settle();
  assertEquals(d.stats.sent, 0);
  assertEquals(d.events, 100, "the buffer still holds every unsettled batch");
  assertEquals(sink.sends.length, 4, "the window counts batches not acknowledged");
  assertAddsUp(d);
  sink.sends[0].answer(DELIVERED_RESULT);
  await until("the next window", () => sink.sends.length === 8);
  assertEquals(d.stats.sent, 40);
  assertEquals(d.events, 60);
  assertEquals(acks, [10, 10, 10, 10]);
  assertAddsUp(d);
  sink.auto = true;
  for (const s of sink.open) s.answer(DELIVERED_RESULT);
  assert(await d.flush(5000), "flushed");
  assertEquals(sink.delivered.toSorted(), ids(0, 100).toSorted());
  assertEquals(sink.sends.length, 10, "each batch sent once");
  assertEquals(sink.maxOutstanding, 4);
  assertEquals(acks.length, 10);
  assertAddsUp(d);
  await d.close();
});

Deno.test("window: a retry mid-window stops new sends, delivers the failed batch once more, later ones not twice", async () => {
  const sink = new ScriptedSink();
  const d = memoryDelivery(sink, 100);
  await until("4 sends", () => sink.sends.length === 4);
  sink.sends[1].answer(retryLater("HTTP 503"));
  sink.sends[3].answer(DELIVERED_RESULT); // a later one succeeds: delivered, acked after #1
  await settle();
  assertEquals(sink.sends.length, 4, "no new send while a retry is pending");
  sink.sends[0].answer(DELIVERED_RESULT);
  await settle();
  assertEquals(d.stats.sent, 10, "acknowledged up to the failed batch only");
  assertEquals(sink.sends.length, 4, "the retry waits for the others in flight");
  sink.sends[2].answer(DELIVERED_RESULT);
  await until("the retry", () => sink.sends.length === 5);
  assertEquals(sink.sends[4].ids, ids(10, 20), "the failed batch, as it was");
  assertEquals(d.stats.sent, 10, "the cursor never passes the unsettled batch");
  assertEquals(d.events, 90);
  assertAddsUp(d);
  sink.sends[4].answer(retryLater("HTTP 503 again"));
  await until("a second retry", () => sink.sends.length === 6);
  await settle();
  assertEquals(sink.sends.length, 6, "retries go one at a time");
  assertEquals(sink.sends[5].ids, ids(10, 20));
  sink.sends[5].answer(DELIVERED_RESULT);
  await until("the window open again", () => sink.sends.length === 10);
  assertEquals(d.stats.sent, 40);
  assertEquals(sink.sends.slice(6).map((s) => s.ids[0]), ["q-40", "q-50", "q-60", "q-70"]);
  assertEquals(d.stats.errors, 2);
  assertEquals(d.stats.retries, 2);
  assert(!d.failing, "recovered");
  sink.auto = true;
  for (const s of sink.open) s.answer(DELIVERED_RESULT);
  assert(await d.flush(5000));
  const counts = new Map<string, number>();
  for (const id of sink.delivered) counts.set(id, (counts.get(id) ?? 0) + 1);
  assertEquals(counts.size, 100);
  assert([...counts.values()].every((n) => n === 1), "every event delivered exactly once");
  assertAddsUp(d);
  await d.close();
});

Deno.test("window: two failed batches in one window are retried in order; a rejected one is counted", async () => {
  const sink = new ScriptedSink();
  const d = memoryDelivery(sink, 50); // 4 sealed batches, and 10 events not sealed yet
  await until("4 sends", () => sink.sends.length === 4);
  sink.sends[2].answer(retryLater("down"));
  sink.sends[0].answer(retryLater("down"));
  sink.sends[1].answer({ outcome: "rejected", letter: letter(10) }); // no dead-letter file: lost
  sink.sends[3].answer(DELIVERED_RESULT);
  await until("the first retry", () => sink.sends.length === 5);
  assertEquals(sink.sends[4].ids, ids(0, 10));
  await settle();
  assertEquals(sink.sends.length, 5);
  sink.sends[4].answer(DELIVERED_RESULT);
  // #1 settles (lost), then #2 goes again at once after the recovery.
  await until("the second retry", () => sink.sends.length === 6);
  assertEquals(sink.sends[5].ids, ids(20, 30));
  assertEquals(d.stats.sent, 10);
  assertEquals(d.stats.lost, 10);
  assertAddsUp(d);
  sink.auto = true;
  sink.sends[5].answer(DELIVERED_RESULT);
  assert(await d.flush(5000));
  assertEquals(d.stats.sent, 40);
  assertEquals(d.stats.lost, 10);
  assertEquals(d.events, 0);
  assertAddsUp(d);
  await d.close();
});

Deno.test("window: flush waits for every batch in flight; close waits for the pump, the rest stays unflushed", async () => {
  const sink = new ScriptedSink();
  const d = memoryDelivery(sink, 45); // 4 sealed batches, and 5 events not sealed yet
  await until("4 sends", () => sink.sends.length === 4);
  let flushed: boolean | undefined;
  sink.auto = true; // the flushed partial batch
  d.flush(5000).then((ok) => flushed = ok);
  sink.sends[0].answer(DELIVERED_RESULT);
  sink.sends[1].answer(DELIVERED_RESULT);
  sink.sends[3].answer(DELIVERED_RESULT);
  await settle();
  assertEquals(flushed, undefined, "one batch still in flight");
  sink.sends[2].answer(DELIVERED_RESULT);
  await until("flushed", () => flushed !== undefined);
  assertEquals(flushed, true);
  assertEquals(d.stats.sent, 45, "the partial batch too");
  await d.close();

  // Closed with sends outstanding: settled ones are counted, the others stay held.
  const sink2 = new ScriptedSink();
  const d2 = memoryDelivery(sink2, 100);
  await until("4 sends", () => sink2.sends.length === 4);
  sink2.sends[0].answer(DELIVERED_RESULT);
  sink2.sends[2].answer(DELIVERED_RESULT);
  await settle();
  assertEquals(sink2.sends.length, 5, "#0 acknowledged: #4 went");
  await d2.close(); // the sink's close fails #1, #3 and #4
  assertEquals(d2.stats.sent, 10);
  assertEquals(d2.events, 90, "unflushed");
  assertEquals(sink2.sends.length, 5, "no send after the close");
  assertAddsUp(d2);
});

const SKIP = new TextEncoder().encode("s-");
/** Whether `f` is of a client `s-N` (the frames the journal tests' reader does not select). */
function hasSkip(f: Uint8Array): boolean {
  for (let i = 0; i + 1 < f.length; i++) {
    if (f[i] === SKIP[0] && f[i + 1] === SKIP[1]) return true;
  }
  return false;
}

/** An on_publish frame of client `s-N` (not selected by the filter of the journal test). */
function other(i: number): Uint8Array {
  const e = fixtureVectors().find((v) => v.name === "027_on_publish_typical")!.expected.event!;
  return eventBody("on_publish", { ...e, client_id: `s-${i}`, payload: new Uint8Array(10) });
}

Deno.test("window: a journal reader acknowledges in order (blocks it skips included); a restart resends from the oldest unsettled batch", async () => {
  const dir = await Deno.makeTempDir({ prefix: "vmq-window-" });
  try {
    const sink = new ScriptedSink();
    const port = new JournalPort({ dir, fsync: "never" });
    const d = new JournalDelivery(sink, { ...WINDOW, buffer: "disk" }, port);
    // Another output of the journal takes the frames this one does not select.
    const otherSink = new ScriptedSink("other");
    otherSink.auto = true;
    const o = new JournalDelivery(otherSink, { buffer: "disk" }, port);
    d.selects(new Uint8Array(HOOKS.length).fill(1), (f) => !hasSkip(f));
    o.selects(new Uint8Array(HOOKS.length).fill(1), hasSkip);
    // Blocks (one per read): 10 selected frames, then 3 not selected, ... 8 times; journaled
    // before the reader is kicked (a journal reader fills its window when a send settles, or
    // at a kick with nothing in flight).
    for (let b = 0; b < 8; b++) {
      for (let i = 0; i < 10; i++) {
        const f = publish(b * 10 + i, 10);
        d.pushAt(f, 0, f.length);
      }
      port.seal();
      for (let i = 0; i < 3; i++) {
        const f = other(b * 3 + i);
        o.pushAt(f, 0, f.length);
      }
      o.kick();
    }
    d.kick();
    const backlog = () => port.journal!.cursorStats(d.cursorHandle).events;
    await until("4 sends", () => sink.sends.length === 4);
    await settle();
    assertEquals(sink.sends.length, 4);
    assertEquals(sink.sends.map((s) => s.ids[0]), ["q-0", "q-10", "q-20", "q-30"]);
    assert(sink.sends.every((s) => s.ids.length === 10), "only its own frames");
    for (const i of [3, 2, 1]) sink.sends[i].answer(DELIVERED_RESULT);
    await settle();
    assertEquals(backlog(), 104, "the cursor stays at the oldest unsettled batch");
    assertEquals(d.stats.sent, 0);
    sink.sends[0].answer(DELIVERED_RESULT);
    await until("the next window", () => sink.sends.length === 8);
    // Acknowledged: 4 selected blocks and the 4 skipped ones after them (the 3 between them
    // with the batch after each; the 4th read at the cursor once the window was empty).
    assertEquals(backlog(), 104 - 40 - 12);
    assertEquals(d.stats.sent, 40);
    // #4 stays unsettled, #5..#7 are delivered; then the process "stops" (close: nothing more
    // is acknowledged), and a new reader of the same journal resends from #4.
    for (const i of [5, 6, 7]) sink.sends[i].answer(DELIVERED_RESULT);
    await settle();
    assertEquals(d.stats.sent, 40);
    assertAddsUp(d);
    await d.close();
    assertEquals(d.stats.sent, 40);
    assert(await o.flush(5000));
    assertEquals(otherSink.delivered.length, 24);
    await o.close();

    const again = new ScriptedSink();
    again.auto = true;
    const port2 = new JournalPort({ dir, fsync: "never" });
    const d2 = new JournalDelivery(again, { ...WINDOW, buffer: "disk" }, port2);
    d2.selects(new Uint8Array(HOOKS.length).fill(1), (f) => !hasSkip(f));
    await until("the replay", () => again.delivered.length === 40);
    assertEquals(
      again.delivered.toSorted(),
      ids(40, 80).toSorted(),
      "resent from #4, none skipped",
    );
    assert(await d2.flush(5000));
    assertEquals(port2.journal!.cursorStats(d2.cursorHandle).events, 0);
    assertAddsUp(d2);
    await d2.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("window: a journal reader's retry mid-window keeps the saved position at the failed batch; each event delivered once", async () => {
  const dir = await Deno.makeTempDir({ prefix: "vmq-window-" });
  try {
    const sink = new ScriptedSink();
    const port = new JournalPort({ dir, fsync: "never" });
    const d = new JournalDelivery(sink, { ...WINDOW, buffer: "disk" }, port);
    for (let b = 0; b < 6; b++) {
      for (let i = 0; i < 10; i++) {
        const f = publish(b * 10 + i, 10);
        d.pushAt(f, 0, f.length);
      }
      port.seal();
    }
    d.kick();
    const backlog = () => port.journal!.cursorStats(d.cursorHandle).events;
    await until("4 sends", () => sink.sends.length === 4);
    sink.sends[1].answer(retryLater("down"));
    for (const i of [3, 2, 0]) sink.sends[i].answer(DELIVERED_RESULT);
    await until("the retry", () => sink.sends.length === 5);
    assertEquals(sink.sends[4].ids, ids(10, 20));
    assertEquals(backlog(), 50, "acknowledged up to the failed batch only");
    assertEquals(d.stats.sent, 10);
    assertAddsUp(d);
    sink.auto = true;
    sink.sends[4].answer(DELIVERED_RESULT);
    assert(await d.flush(5000));
    assertEquals(backlog(), 0);
    assertEquals(sink.delivered.toSorted(), ids(0, 60).toSorted(), "each event once");
    assertAddsUp(d);
    await d.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("window: an order=client delivery sends one batch at a time whatever its concurrency", async () => {
  const sink = new ScriptedSink();
  sink.auto = false;
  const d = memoryDelivery(sink, 100, { order: "client" });
  await until("a send", () => sink.sends.length === 1);
  await settle();
  assertEquals(sink.sends.length, 1, "one in flight");
  sink.auto = true;
  sink.sends[0].answer(DELIVERED_RESULT);
  assert(await d.flush(5000));
  assertEquals(sink.maxOutstanding, 1);
  assertEquals(sink.delivered, ids(0, 100), "in order");
  await d.close();
});

Deno.test("window: a journal reader carries at most batch_bytes of blocks it skips in a batch in flight (they may be read back from disk); beyond, the window waits and they are acknowledged one by one", async () => {
  const dir = await Deno.makeTempDir({ prefix: "vmq-window-" });
  try {
    // What each send holds of blocks with none of its frames (its `sources` other than its own).
    const carried: number[] = [];
    class CarriedSink extends ScriptedSink {
      override send(batch: OutputBatch): Promise<SendResult> {
        const sources = (batch as { sources?: { bytes: Uint8Array }[] }).sources ?? [];
        carried.push(sources.reduce((n, s) => n + s.bytes.length, 0));
        return super.send(batch);
      }
    }
    const sink = new CarriedSink();
    // A 1 MiB cache: the skipped blocks behind it are read back from disk, each its own buffer.
    const port = new JournalPort({ dir, fsync: "never", journal: { cacheBytes: 1 << 20 } });
    const d = new JournalDelivery(sink, { ...WINDOW, buffer: "disk" }, port);
    const otherSink = new ScriptedSink("other");
    otherSink.auto = true;
    const o = new JournalDelivery(otherSink, { buffer: "disk" }, port);
    d.selects(new Uint8Array(HOOKS.length).fill(1), (f) => !hasSkip(f));
    o.selects(new Uint8Array(HOOKS.length).fill(1), hasSkip);
    const selected = (from: number) => {
      for (let i = 0; i < 10; i++) {
        const f = publish(from + i, 10);
        d.pushAt(f, 0, f.length);
      }
      port.seal();
    };
    selected(0);
    selected(10);
    // 800 blocks of 8 events of ~1 KiB the reader does not select (~6.6 MB), then its 3rd batch.
    const e = fixtureVectors().find((v) => v.name === "027_on_publish_typical")!.expected.event!;
    for (let b = 0; b < 800; b++) {
      for (let i = 0; i < 8; i++) {
        const f = eventBody("on_publish", {
          ...e,
          client_id: `s-${b * 8 + i}`,
          payload: new Uint8Array(1000),
        });
        o.pushAt(f, 0, f.length);
      }
      o.kick();
    }
    selected(20);
    d.kick();
    await until("2 sends", () => sink.sends.length === 2);
    await settle();
    // Before: the 3rd batch went out at once, carrying all 800 skipped blocks (6.6 MB) until
    // its acknowledgement. Now it waits for the window to empty.
    assertEquals(sink.sends.length, 2);
    for (const s of sink.open) s.answer(DELIVERED_RESULT);
    await until("the 3rd batch", () => sink.sends.length === 3, 20_000);
    sink.sends[2].answer(DELIVERED_RESULT);
    assert(await d.flush(20_000), "flushed");
    assert(await o.flush(60_000), "the other output flushed");
    assertEquals(sink.delivered, ids(0, 30));
    for (const c of carried) {
      assert(c <= 256 * 1024, `a batch carried ${c} bytes of skipped blocks`);
    }
    assertEquals(port.journal!.cursorStats(d.cursorHandle).events, 0);
    assertAddsUp(d);
    await d.close();
    await o.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

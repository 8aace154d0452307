/**
 * Per-client order for the built-in outputs (`order=client`): an {@linkcode OrderedFront} sits
 * between the router and an output's {@linkcode Delivery}; it holds each frame in a
 * {@linkcode ReorderStage} for the window and gives the delivery the frames of one
 * `(mountpoint, client_id)` in broker-timestamp order. {@linkcode orderedDeliveries} puts one
 * in front of every delivery whose options say `order: "client"`.
 *
 * @module
 */
import { getLogger } from "../_deps/logtape.ts";
import type { Delivery, DeliveryFactory, DeliveryFront } from "../pipeline/delivery.ts";
import { readLength } from "../wire/length_prefix.ts";
import { OrderedJournalDelivery } from "./ordered_journal.ts";
import { ReorderStage } from "./reorder.ts";

const log = getLogger(["vmq_sidecar", "output"]);

/** Most bytes an output's ordering stage holds (beyond: the oldest go early, counted). */
const MAX_HELD_BYTES = 32 << 20;

/**
 * The ordering stage in front of one output's delivery. Frames wait out the window in memory
 * (copied; charged to the delivery's shared budget, `max_queued_bytes`, while held), then go
 * to the delivery, which counts them as `received` from then on; what the
 * stage holds is `held` (`vmq_sidecar_reorder_held_events`). A flush or close of the delivery
 * releases everything held first, so no event is stranded in the stage.
 *
 * @example
 * ```ts
 * import { DELIVERED, Delivery } from "../internal.ts";
 * import { OrderedFront } from "./ordered_front.ts";
 * const d = new Delivery({ name: "demo", send: () => Promise.resolve(DELIVERED), close: async () => {} });
 * d.front = new OrderedFront(d, 100);
 * await d.flush(1000);
 * await d.close();
 * ```
 */
export class OrderedFront implements DeliveryFront {
  /** The ordering stage (its counters: `late`, `early`, `held`, `unordered`). */
  readonly stage: ReorderStage;
  readonly #delivery: Delivery;
  /** Inside a call that kicks the delivery itself afterwards. */
  #inCall = false;
  #kickQueued = false;

  /** The front of `delivery`, holding each frame for `windowMs`. */
  constructor(delivery: Delivery, windowMs: number) {
    this.#delivery = delivery;
    this.stage = new ReorderStage({
      windowMs,
      copy: true, // the router's read buffer is reused after the dispatch
      budget: delivery.options.budget, // what the stage holds counts in max_queued_bytes
      maxBytes: Math.max(1 << 20, Math.min(MAX_HELD_BYTES, delivery.options.maxBytes / 2)),
      release: (frame) => this.#give(frame),
      onError: (e) =>
        log.error("output {output}: ordering failed: {error}", {
          output: delivery.sink.name,
          error: e instanceof Error ? (e.stack ?? e.message) : String(e),
        }),
    });
  }

  /** Events held now (not yet given to the delivery). */
  get held(): number {
    return this.stage.held;
  }

  /** Frames are held one by one (never taken as whole runs). */
  get takesRuns(): boolean {
    return false;
  }

  /** The delivery's policy. */
  get blocking(): boolean {
    return this.#delivery.blocking;
  }

  /** The delivery's. */
  get full(): boolean {
    return this.#delivery.full;
  }

  /** The delivery's. */
  get congested(): boolean {
    return this.#delivery.congested;
  }

  /** The delivery's. */
  writable(): Promise<void> {
    return this.#delivery.writable();
  }

  /** Passed to the delivery (its latency figures). */
  noteEventTime(ms: number): void {
    this.#delivery.noteEventTime(ms);
  }

  /** Holds a copy of the frame `buf[start, end)` (true: never dropped here). */
  pushAt(buf: Uint8Array, start: number, end: number): boolean {
    this.#inCall = true;
    try {
      this.stage.push(buf.subarray(start, end));
    } finally {
      this.#inCall = false;
    }
    return true;
  }

  /** Holds each of the `count` frames (length-prefixed) in `buf[start, end)`. */
  pushRun(buf: Uint8Array, start: number, end: number, count: number): void {
    for (let i = 0, p = start; i < count && p + 4 <= end; i++) {
      const len = readLength(buf, p);
      this.pushAt(buf, p + 4, p + 4 + len);
      p += 4 + len;
    }
  }

  /** After a read: releases what is due, then kicks the delivery. */
  kick(): void {
    this.#inCall = true;
    try {
      this.stage.poll();
    } finally {
      this.#inCall = false;
    }
    this.#delivery.kick();
  }

  /** Gives the delivery everything held (in order per client). */
  release(): void {
    this.#inCall = true;
    try {
      this.stage.flush();
    } finally {
      this.#inCall = false;
    }
  }

  /** Releases everything held and stops the stage's timer. */
  close(): void {
    this.#inCall = true;
    try {
      this.stage.close();
    } finally {
      this.#inCall = false;
    }
  }

  /** A released frame goes to the delivery; released by the stage's timer, it is kicked soon. */
  #give(frame: Uint8Array): void {
    this.#delivery.pushAt(frame, 0, frame.length);
    if (this.#inCall || this.#kickQueued) return;
    this.#kickQueued = true;
    queueMicrotask(() => {
      this.#kickQueued = false;
      this.#delivery.kick();
    });
  }
}

/**
 * `factory`, with an {@linkcode OrderedFront} in front of every delivery whose options say
 * `order: "client"` (window `orderWindowMs`, default 100 ms).
 */
export function orderedDeliveries(factory: DeliveryFactory): DeliveryFactory {
  return (sink, options) => {
    const d = factory(sink, options);
    if (
      options.order === "client" && d.front === undefined && !(d instanceof OrderedJournalDelivery)
    ) {
      d.front = new OrderedFront(d, options.orderWindowMs ?? 100);
    }
    return d;
  };
}

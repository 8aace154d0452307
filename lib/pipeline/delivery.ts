/**
 * Delivery of one output: frames are copied into batches held by a {@linkcode Buffer}, sent one
 * batch at a time (or up to `concurrency` at once, acknowledged in order), retried with backoff
 * ({@linkcode Backoff}) until the sink settles them (delivered, refused for good —
 * dead-lettered here, once, per output instance — or skipped as undecodable), and forgotten
 * only then. Generic: what the local outputs add (encoding at
 * enqueue, synchronous writes, coalesced sends) lives in outputs/local/local_delivery.ts.
 *
 * @module
 */
import { getLogger } from "../_deps/logtape.ts";
import type { DeadLetter, Delivered, Rejected, SendResult, Sink } from "../outputs/contract.ts";
import type { Buffer, BufferBatch, Cursor, ReadLimits } from "./buffer.ts";
import { MemoryBuffer } from "./memory_buffer.ts";
import type { MemoryBudget } from "../memory_budget.ts";
import { Backoff } from "./backoff.ts";
import { LineThrottle } from "../_log_limiter.ts";
import type { OutputPort } from "./output_port.ts";

/** What happens when a queue holds `maxBytes`: pause reading sockets, or drop and count. */
export type OnFull = "block" | "drop";

/** Options of a {@linkcode Delivery}. */
export interface DeliveryOptions {
  /** Most bytes held: frames with length prefixes, or an encoding sink's output (default 64 MiB). */
  maxBytes: number;
  /** Behaviour at `maxBytes` (default `block`). */
  onFull: OnFull;
  /** Target batch size in bytes (default 256 KiB; a bigger frame makes its own batch). */
  batchBytes: number;
  /** Most frames per batch (default unlimited). */
  batchEvents: number;
  /** How long a partly filled batch may wait for more frames, in ms (default 0). */
  lingerMs: number;
  /** First retry delay in ms (default 100). */
  retryInitialMs: number;
  /** Longest retry delay in ms (default 30 s). */
  retryMaxMs: number;
  /**
   * Where a network output keeps its backlog (`buffer`, default `memory` here; the
   * application's delivery factory gives `disk` outputs a `JournalDelivery`).
   */
  buffer: "disk" | "memory";
  /** Disk budget of a `buffer=disk` output's backlog (`buffer_bytes`, default 1 GiB). */
  bufferBytes: number;
  /**
   * The budget shared by every in-memory output buffer of the sidecar (`max_queued_bytes`;
   * none by default): the memory buffer charges its bytes to it, and an `onFull: "drop"` output
   * drops while more than half of it is held (see {@linkcode Delivery.overBudget}).
   */
  budget?: MemoryBudget;
  /**
   * `client`: per-client broker-time order (`order`, default `none`); the application's
   * delivery factory puts a {@linkcode DeliveryFront} in front of the delivery for it.
   */
  order: "client" | "none";
  /** The ordering window in ms (`order_window_ms`, default 100). */
  orderWindowMs: number;
  /**
   * Batches sent and not yet settled, at most (`concurrency`; default 1: one at a time).
   * Results are acknowledged in order, so the cursor never passes an unsettled batch.
   */
  concurrency: number;
}

/**
 * A stage in front of a {@linkcode Delivery} (per-client ordering): the router pushes into it
 * instead of the delivery, and it pushes into the delivery what it releases.
 */
export interface DeliveryFront extends OutputPort {
  /** Events it holds now (given to it, not yet to the delivery). */
  readonly held: number;
  /** Gives the delivery everything held now (before a flush). */
  release(): void;
  /** Releases everything and stops (before the delivery closes). */
  close(): void;
}

/** Defaults of {@linkcode DeliveryOptions}. */
export const DEFAULT_DELIVERY_OPTIONS: Readonly<DeliveryOptions> = {
  maxBytes: 64 * 1024 * 1024,
  onFull: "block",
  batchBytes: 256 * 1024,
  batchEvents: Infinity,
  lingerMs: 0,
  retryInitialMs: 100,
  retryMaxMs: 30_000,
  buffer: "memory",
  bufferBytes: 1024 ** 3,
  order: "none",
  orderWindowMs: 100,
  concurrency: 1,
};

/**
 * Counters of one queue (one output instance), read by the metrics collector and the summary.
 * Every frame given is, once settled, counted once in `sent`, `deadLettered`, `undecodable`,
 * `lost` or `dropped`; until then it is held ({@linkcode Delivery.events}):
 * `received = sent + deadLettered + undecodable + dropped + lost + events`.
 */
export interface OutputCounters {
  /** Frames given to the queue (pushed), dropped ones included. */
  received: number;
  /** Frames acknowledged by the destination as delivered. */
  sent: number;
  /** Frames the destination refused for good, appended to the dead-letter file. */
  deadLettered: number;
  /** Frames skipped because the event inside did not decode (JSON outputs). */
  undecodable: number;
  /** Frames neither delivered nor dead-lettered (the dead-letter file failed): dropped. */
  lost: number;
  /** Frames dropped because the queue was full (`onFull: "drop"`). */
  dropped: number;
  /** Failed send attempts. */
  errors: number;
  /** Send attempts that were retries. */
  retries: number;
}

/** The result of a `send` that threw (counted and logged as it was caught). */
const THROWN: SendResult = Object.freeze({ outcome: "retry" as const, reason: "" });

/** A batch sent by the windowed pump, and what the sink said (undefined: not settled yet). */
interface InFlight {
  readonly batch: BufferBatch;
  result: SendResult | undefined;
}

/** Reads of one batch as sealed. */
export const ONE_BATCH: ReadLimits = { maxRecords: Infinity, coalesce: false };

const log = getLogger(["vmq_sidecar", "output"]);

/** Makes the delivery of a sink (the router's choice of class is the application's). */
export type DeliveryFactory = (sink: Sink, options: Partial<DeliveryOptions>) => Delivery;

/**
 * The delivery of one output (a network sink, or any sink that takes frames as received).
 *
 * @example
 * ```ts
 * import { DELIVERED, Delivery } from "../internal.ts";
 * const q = new Delivery({ name: "demo", send: () => Promise.resolve(DELIVERED), close: async () => {} });
 * q.push(new Uint8Array(0));
 * await q.flush(1000);
 * await q.close();
 * ```
 */
export class Delivery implements OutputPort {
  /** The destination. */
  readonly sink: Sink;
  /** Effective options. */
  readonly options: DeliveryOptions;
  /** Counters of this output instance (no state shared with any other). */
  readonly stats: OutputCounters = {
    received: 0,
    sent: 0,
    deadLettered: 0,
    undecodable: 0,
    lost: 0,
    dropped: 0,
    errors: 0,
    retries: 0,
  };
  /** The storage of what the output holds (queued and in flight). */
  readonly buffer: Buffer;
  /**
   * Called per acknowledged batch with the seconds from queueing its oldest frame, its event
   * count, and the seconds from the broker timestamp of its oldest event (NaN: unknown; see
   * {@linkcode Delivery.noteEventTime}).
   */
  onAck?: (seconds: number, count: number, eventSeconds: number) => void;
  /** What the router pushes into instead of this delivery, when set (see {@linkcode DeliveryFront}). */
  front: DeliveryFront | undefined = undefined;

  /** The reader's position in `buffer`. */
  protected readonly cursor: Cursor;
  /** A send is in progress (the pump runs). */
  protected sending = false;
  /** The next batch read failed before: back off before sending it (as it is). */
  protected retryFirst = false;
  protected closed = false;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #failing = false;
  #dropping = false;
  #waiters: (() => void)[] = [];
  #idle: (() => void)[] = [];
  /** Waiting for the pump in progress to end (see {@linkcode Delivery.close}). */
  #pumpEnded: (() => void)[] = [];
  /** Wakes the windowed pump waiting for a result, a kick, a flush or a close. */
  #wakePump: (() => void) | undefined;
  readonly #backoff: Backoff;
  /** The shared budget its memory buffer charges (undefined: none, or not in memory). */
  readonly #budget: MemoryBudget | undefined;
  /** "dropping: over the shared budget" lines: at most one per 10 s. */
  readonly #budgetLines = new LineThrottle();
  /** "events lost" lines: at most one per 10 s, counting the events lost meanwhile. */
  readonly #lostLines = new LineThrottle();
  /** "sending stopped by an unexpected error" lines: at most one per 10 s. */
  readonly #pumpLines = new LineThrottle();

  /**
   * Creates the delivery of `sink`, storing in `buffer` (default: a {@linkcode MemoryBuffer} of
   * `maxBytes` in chunks of `batchBytes`) and reading it as `cursorName` (default the sink's name).
   */
  constructor(
    sink: Sink,
    options: Partial<DeliveryOptions> = {},
    buffer?: Buffer,
    cursorName: string = sink.name,
  ) {
    this.sink = sink;
    this.options = { ...DEFAULT_DELIVERY_OPTIONS, ...options };
    sink.onReady?.(() => this.#destinationReady());
    this.buffer = buffer ?? new MemoryBuffer({
      maxBytes: this.options.maxBytes,
      chunkBytes: this.options.batchBytes,
      budget: this.options.budget,
    });
    this.#budget = this.buffer instanceof MemoryBuffer ? this.buffer.budget : undefined;
    this.cursor = this.buffer.cursor(cursorName);
    this.#backoff = new Backoff(this.options.retryInitialMs, this.options.retryMaxMs);
  }

  /** Bytes held (queued and in flight), as counted against `maxBytes`. */
  get bytes(): number {
    return this.buffer.bytes;
  }

  /** Frames held (queued and in flight). */
  get events(): number {
    return this.buffer.records;
  }

  /** Whether it pauses readers when full (`onFull: "block"`). */
  get blocking(): boolean {
    return this.options.onFull === "block";
  }

  /** Whether blocking outputs should pause reading: open and holding `maxBytes` or more. */
  get full(): boolean {
    return !this.closed && (this.bytes >= this.options.maxBytes || this.pausing);
  }

  /** Whether paused readers must still wait: over half full (or pausing, see `full`). */
  get congested(): boolean {
    return !this.closed && (this.bytes > this.options.maxBytes / 2 || this.pausing);
  }

  /** Readers pause for another reason than a full buffer (none here). */
  protected get pausing(): boolean {
    return false;
  }

  /** Whether the last send attempt failed (the output is retrying). */
  get failing(): boolean {
    return this.#failing;
  }

  /**
   * Notes the broker time (ms since the epoch) of the first event of the read whose frames are
   * pushed next: a batch's event latency is taken from the oldest such time among its reads
   * (one timestamp per read, not per event; Infinity: unknown).
   */
  noteEventTime(ms: number): void {
    this.buffer.noteEventTime(ms);
  }

  /**
   * Copies `frame` (the `Any` bytes) into the buffer. Returns false when it was dropped because
   * the buffer is full and `onFull` is `drop`. Call {@linkcode Delivery.kick} after a run of
   * pushes.
   */
  push(frame: Uint8Array): boolean {
    return this.pushAt(frame, 0, frame.length);
  }

  /**
   * {@linkcode Delivery.push} for the frame `buf[start, end)`. The router passes what it parsed
   * of the envelope (hook index, event value range) for outputs that encode; `hook` < 0 means
   * not parsed.
   */
  pushAt(
    buf: Uint8Array,
    start: number,
    end: number,
    _hook = -1,
    _valueStart = 0,
    _valueEnd = 0,
  ): boolean {
    const buffer = this.buffer;
    this.stats.received++;
    if (this.options.onFull === "drop") {
      const need = 4 + end - start;
      if (!buffer.hasRoom(need)) return this.drop();
      if (this.overBudget(need)) return this.drop(true);
    }
    if (buffer.openRecords >= this.options.batchEvents) buffer.seal();
    buffer.appendFrame(buf, start, end);
    if (buffer.openBytes >= this.options.batchBytes) buffer.seal();
    return true;
  }

  /** Acknowledges `batch` in the buffer (a filtered view: the batch it was read as). */
  protected release(batch: BufferBatch): void {
    this.buffer.ack(this.cursor, batch);
  }

  /**
   * Whether `need` more bytes would take the shared budget's holdings over half its capacity:
   * an `onFull: "drop"` output then drops. Drop outputs together thus never hold more than half
   * of it, so a dead destination of one cannot keep the budget full: readers, paused at the
   * full budget until half of it is free, always resume once the blocking outputs drain.
   */
  protected overBudget(need: number): boolean {
    const b = this.#budget;
    return b !== undefined && b.held + need > b.capacity / 2;
  }

  /**
   * Counts (and logs, once per full period) an event dropped by a full buffer — or, with
   * `budget`, by the shared budget (logged at most once per 10 s per output); false.
   */
  protected drop(budget = false): false {
    this.stats.dropped++;
    if (budget) {
      this.#budgetDrop();
      return false;
    }
    if (!this.#dropping) {
      this.#dropping = true;
      log.warn("output {output} queue full ({bytes} bytes): dropping events", {
        output: this.sink.name,
        bytes: this.bytes,
      });
    }
    return false;
  }

  #budgetDrop(): void {
    const more = this.#budgetLines.take();
    if (more === undefined) return;
    const b = this.#budget!;
    log.warn(
      "output {output}: dropping events: the outputs' in-memory queues hold {held} of {capacity} bytes of {budget} (on_full=drop outputs drop beyond half of it){more}",
      {
        output: this.sink.name,
        held: b.held,
        capacity: b.capacity,
        budget: b.name,
        more: more > 0 ? `; ${more} more dropped since the last such line` : "",
      },
    );
  }

  /**
   * Whether {@linkcode Delivery.pushRun} may be used: frames are kept as received, the output
   * blocks when full and has no per-batch event limit.
   */
  get takesRuns(): boolean {
    return this.options.onFull === "block" && this.options.batchEvents === Infinity;
  }

  /**
   * Takes `count` consecutive frames, length prefixes included, from `buf[start, end)` in one
   * piece (see {@linkcode Delivery.takesRuns}), copied like {@linkcode Delivery.pushAt}.
   */
  pushRun(buf: Uint8Array, start: number, end: number, count: number): void {
    const buffer = this.buffer;
    this.stats.received += count;
    buffer.appendRun(buf, start, end, count);
    if (buffer.openBytes >= this.options.batchBytes) buffer.seal();
  }

  /**
   * Starts sending: at once when a batch is sealed (the sink sends up to its first await),
   * after `lingerMs` for a partial one.
   */
  kick(): void {
    if (this.closed) return;
    if (this.sending) {
      if (this.fillsOnKick) this.#wake();
      return;
    }
    if (this.lingerOver()) {
      if (this.sendNow()) return;
    }
    this.armLinger();
  }

  /**
   * Seals a partial batch whose linger is over (under a steady stream of reads the event loop
   * runs timers late — measured: 30–80 ms late at 400k events/s —, kicks come on time); whether
   * a sealed batch is waiting.
   */
  protected lingerOver(): boolean {
    const linger = this.options.lingerMs, buffer = this.buffer;
    const sealed = buffer.read(this.cursor, ONE_BATCH) !== undefined;
    if (
      !sealed && buffer.openRecords > 0 && linger > 0 &&
      performance.now() - buffer.openSince >= linger
    ) {
      buffer.seal();
      return true;
    }
    return sealed;
  }

  /** A sealed batch is waiting: starts the pump; true (nothing else for `kick` to do). */
  protected sendNow(): boolean {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.startPump();
    return true;
  }

  /** One linger timer for a partial batch, when none is pending and nothing is sending. */
  protected armLinger(): void {
    if (this.sending || this.#timer !== undefined || this.buffer.openRecords === 0) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.startPump();
    }, this.options.lingerMs);
  }

  /** Resolves once no longer {@linkcode Delivery.congested} (for blocking outputs). */
  writable(): Promise<void> {
    if (!this.congested) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  /**
   * Sends everything held, the partial batch included, and resolves true once all of it is
   * acknowledged, or false when `timeoutMs` passes first (retries then stop waiting for it).
   */
  async flush(timeoutMs: number): Promise<boolean> {
    this.front?.release();
    this.buffer.seal();
    if (this.unsettled === 0) return true;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const done = new Promise<boolean>((resolve) => this.#idle.push(() => resolve(true)));
    const expired = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), timeoutMs);
    });
    this.#backoff.wake(false); // a backoff in progress retries now
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    this.startPump();
    this.#wake();
    const ok = await Promise.race([done, expired]);
    clearTimeout(timer);
    return ok;
  }

  /** Stops sending and closes the sink. Call {@linkcode Delivery.flush} first. */
  async close(): Promise<void> {
    this.front?.close();
    this.closed = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#backoff.wake(true);
    for (const w of this.#waiters.splice(0)) w();
    this.#wake();
    await this.sink.close();
    this.sink.deadLetter?.close();
    // Once no send can still read a batch (the sink is closed and the pump has ended), the
    // buffer gives its memory back; `events` and `bytes` stay (the unflushed count).
    if (this.sending) await new Promise<void>((r) => this.#pumpEnded.push(r));
    await this.releaseStorage();
  }

  /** Gives the buffer's storage back once nothing can read it (a shared journal: its own rule). */
  protected async releaseStorage(): Promise<void> {
    await this.buffer.close();
  }

  /** What a flush waits for: events held (a journal reader: also its backlog not read yet). */
  protected get unsettled(): number {
    return this.events;
  }

  /** Resolves the flushes waiting once nothing is held. */
  protected settleIdle(): void {
    if (this.unsettled === 0) { for (const w of this.#idle.splice(0)) w(); }
  }

  /**
   * The router's selection of this output (hook mask by `HOOKS` index, optional filter), given
   * at every (re)configuration; a reader of a shared journal applies it to what it reads.
   */
  selects(
    _hookMask: Uint8Array,
    _filter: ((frame: Uint8Array, hookIndex: number) => boolean) | undefined,
  ): void {}

  /**
   * The next batch to send (sealing the open one when nothing else is sealed), or undefined.
   * A batch whose delivery failed is sent again as it was (the sink may resume it part-way).
   */
  protected next(): BufferBatch | undefined {
    const buffer = this.buffer, cursor = this.cursor;
    const batch = buffer.read(cursor, ONE_BATCH);
    if (batch !== undefined) return batch;
    buffer.seal();
    return buffer.read(cursor, ONE_BATCH);
  }

  /**
   * How many batches it may have in flight (`concurrency`); 1 with `order: "client"` (a retry
   * mid-window would deliver later batches of a client before an earlier one), and for a
   * subclass whose batches must settle one by one.
   */
  protected get window(): number {
    return this.options.order === "client" ? 1 : Math.max(1, this.options.concurrency);
  }

  /**
   * Whether a kick while batches are in flight looks for another one to send at once (cheap
   * for a memory buffer: sealed batches only); otherwise the window fills when a send settles.
   */
  protected get fillsOnKick(): boolean {
    return true;
  }

  /**
   * The next sealed batch after `after` (a batch in flight), or undefined: the windowed pump's
   * read beyond its oldest batch in flight. Only a sealed batch (full, or sealed by a linger or
   * a flush) — a partial one waits until the window is empty, as with one batch in flight.
   */
  protected nextAfter(after: BufferBatch): BufferBatch | undefined {
    return this.buffer.read(this.cursor, ONE_BATCH, after);
  }

  /**
   * Runs {@linkcode Delivery.pump} without awaiting it: an unexpected error of the buffer or the
   * output's own code (not a send, which is caught as a retry) is logged — at most one line per
   * 10 s per output — and counted as a failed attempt; the next kick or flush starts it again.
   */
  protected startPump(): void {
    this.pump().catch((e) => {
      this.stats.errors++;
      const more = this.#pumpLines.take();
      if (more === undefined) return;
      log.error("output {output}: sending stopped by an unexpected error: {error}{more}", {
        output: this.sink.name,
        error: e instanceof Error ? (e.stack ?? e.message) : String(e),
        more: more > 0 ? `; ${more} more since the last such line` : "",
      });
    });
  }

  /** Sends the batches held (one at a time, or windowed) until none is left or it closes. */
  protected async pump(): Promise<void> {
    if (this.sending) return;
    this.sending = true;
    try {
      if (this.window > 1) return await this.#pumpWindow();
      while (!this.closed) {
        const batch = this.next();
        if (!batch) break;
        const result = await this.#deliver(batch, this.retryFirst);
        if (result === null) return;
        this.retryFirst = false;
        const settling = this.#settle(batch, result);
        if (settling) await settling;
      }
    } finally {
      this.sending = false;
      for (const w of this.#pumpEnded.splice(0)) w();
      this.#wakeWriters();
      this.settleIdle();
    }
  }

  #wake(): void {
    const w = this.#wakePump;
    this.#wakePump = undefined;
    w?.();
  }

  /**
   * The windowed pump: up to `window` sends outstanding, started in buffer order; results are
   * counted and acknowledged in that order (a later batch that settles first waits for the
   * earlier ones). A send that says retry stops new sends; once the others in flight settled,
   * the failed batch(es) are retried in order, one at a time, with the backoff; then the window
   * opens again. After a close, settled batches are still counted, retries are not made.
   */
  async #pumpWindow(): Promise<void> {
    const inFlight: InFlight[] = [];
    const max = this.window;
    const unsettled = () => inFlight.some((f) => f.result === undefined);
    let retrying = false;
    const failed = () => retrying = true;
    for (;;) {
      // Settle the prefix of the window whose sends are done, in order.
      let recovered = false;
      while (inFlight.length > 0 && inFlight[0].result !== undefined) {
        const head = inFlight[0];
        let result = head.result!;
        if (result.outcome === "retry") {
          if (this.closed || unsettled()) break;
          // After a retried batch went through, the next failed one goes at once.
          const again = recovered
            ? await this.#deliver(head.batch, false)
            : await this.#deliver(head.batch, true, result.retryAfterMs ?? 0);
          if (again === null) break; // closed
          result = again;
          recovered = true;
        }
        inFlight.shift();
        const settling = this.#settle(head.batch, result as Delivered | Rejected);
        if (settling) await settling;
      }
      if (retrying && !inFlight.some((f) => f.result?.outcome === "retry")) retrying = false;
      if (this.closed) {
        if (!unsettled()) return;
      } else if (!retrying) {
        // Fill the window: the oldest batch (a partial one sealed, as with one in flight) when
        // nothing is in flight, sealed batches after the newest one in flight otherwise.
        while (inFlight.length < max) {
          const batch = inFlight.length === 0
            ? this.next()
            : this.nextAfter(inFlight[inFlight.length - 1].batch);
          if (batch === undefined) break;
          const f: InFlight = { batch, result: undefined };
          inFlight.push(f);
          this.#start(f, failed);
        }
        if (inFlight.length === 0) return;
      }
      // Checked with nothing awaited since the window was last looked at: no wake is missed.
      const head = inFlight[0];
      const ready = head.result !== undefined &&
        (head.result.outcome !== "retry" || (!this.closed && !unsettled()));
      if (!ready) await new Promise<void>((resolve) => this.#wakePump = resolve);
    }
  }

  /**
   * Sends `f.batch` (the sink runs up to its first await now, so sends start in order) and
   * records what it said; `failed` runs when it says retry.
   */
  #start(f: InFlight, failed: () => void): void {
    let sent: Promise<SendResult>;
    try {
      sent = this.sink.send(f.batch);
    } catch (e) {
      sent = Promise.reject(e);
    }
    sent.then((result) => {
      if (result.outcome === "retry") {
        this.failed(result.reason);
        failed();
      }
      f.result = result;
      this.#wake();
    }, (e) => {
      this.failed(e);
      failed();
      f.result = THROWN;
      this.#wake();
    });
  }

  /**
   * A batch settled for good: dead-lettered (what was refused), counted, acknowledged. Refused
   * events are dead-lettered before the batch is acknowledged (its bytes stay valid meanwhile):
   * a promise then; the fast path (delivered) is synchronous — no await per batch.
   */
  #settle(batch: BufferBatch, result: Delivered | Rejected): Promise<void> | undefined {
    if (result.outcome === "rejected" || result.rejected !== undefined) {
      return this.#deadLetter(batch, result).then(() => this.acked(batch));
    }
    this.count(batch, result.undecodable ?? 0, 0);
    this.acked(batch);
  }

  /** Counts a settled batch: `undecodable` and `refused` (counted already) of it, the rest sent. */
  protected count(batch: BufferBatch, undecodable: number, refused: number): void {
    this.stats.undecodable += undecodable;
    this.stats.sent += batch.count - undecodable - refused;
  }

  /**
   * Appends what the destination refused to the output's dead-letter file and counts it
   * (dead-lettered, or lost when the file cannot be written or the output has none).
   */
  async #deadLetter(batch: BufferBatch, r: Delivered | Rejected): Promise<void> {
    const undecodable = r.undecodable ?? 0;
    let refused = 0, dead = 0;
    if (r.outcome === "rejected") {
      refused = batch.count - undecodable;
      if (await this.#append(r.letter, refused)) dead += refused;
    } else {
      for (const letter of r.rejected ?? []) {
        refused += letter.events;
        if (await this.#append(letter, letter.events)) dead += letter.events;
      }
    }
    // Counted together with the rest of the batch, right before it is acknowledged: while
    // letters are still being written, all of its events count as held (the counters add up
    // at every scrape).
    this.stats.deadLettered += dead;
    this.stats.lost += refused - dead;
    this.count(batch, undecodable, refused);
  }

  /** Appends `letter` to the dead-letter file: true when written (false: lost, logged). */
  async #append(letter: DeadLetter, events: number): Promise<boolean> {
    const writer = this.sink.deadLetter;
    let error = "the output has no dead-letter file";
    if (writer) {
      try {
        await writer.append(letter);
        return true;
      } catch (e) {
        error = e instanceof Error ? e.message : String(e);
      }
    }
    // At most one line per 10 s per output; the events lost meanwhile are counted in it.
    const more = this.#lostLines.take(events);
    if (more === undefined) return false;
    log.error("output {output}: {events} events refused ({reason}) and dropped: {error}{more}", {
      output: this.sink.name,
      events,
      reason: letter.reason,
      error,
      more: more > 0 ? `; ${more} more lost since the last such line` : "",
    });
    return false;
  }

  /** Done with `batch` (counted): acknowledged in the buffer, latency observed, writers woken. */
  protected acked(batch: BufferBatch): void {
    this.release(batch);
    if (this.onAck) {
      const now = performance.now();
      const age = batch.eventMs === Infinity
        ? NaN
        : Math.max(0, (performance.timeOrigin + now - batch.eventMs) / 1000);
      this.onAck((now - batch.since) / 1000, batch.count, age);
    }
    if (this.#dropping && this.bytes <= this.options.maxBytes / 2) {
      this.#dropping = false;
      log.info("output {output} queue has room again", { output: this.sink.name });
    }
    this.#wakeWriters();
  }

  #wakeWriters(): void {
    if (this.#waiters.length > 0 && !this.congested) {
      for (const w of this.#waiters.splice(0)) w();
    }
  }

  /** Counts a failed attempt (logged when the output starts failing). */
  protected failed(e: unknown): void {
    this.stats.errors++;
    if (!this.#failing) {
      this.#failing = true;
      log.warn("output {output} failed, retrying with backoff: {error}", {
        output: this.sink.name,
        error: e instanceof Error ? e.message : String(e),
      });
    }
  }

  /**
   * The sink says its destination is back (see {@linkcode Sink.onReady}): a backoff in progress
   * ends now, and the next one starts again from `retryInitialMs`.
   */
  #destinationReady(): void {
    if (!this.#failing) return;
    this.#backoff.ready();
  }

  /**
   * Sends `batch` until settled (after a backoff first when it `failedBefore`); what the sink
   * said, or null when the queue closed meanwhile.
   */
  async #deliver(
    batch: BufferBatch,
    failedBefore: boolean,
    retryAfterMs = 0,
  ): Promise<Delivered | Rejected | null> {
    const backoff = this.#backoff;
    backoff.reset();
    for (let attempt = failedBefore ? 1 : 0;; attempt++) {
      if (attempt > 0) {
        if (this.closed) return null;
        // Cut short when the destination is back, for a flush or a close — but never before
        // the time it asked for (Retry-After), unless the queue closes.
        await backoff.wait(retryAfterMs);
        if (this.closed) return null;
        this.stats.retries++;
      }
      // `sink.send` awaited here, not in a helper: one async frame less per batch (measured
      // on the file path, where a sink that keeps up gets a batch per socket read).
      let result: SendResult;
      try {
        result = await this.sink.send(batch);
      } catch (e) {
        this.failed(e);
        result = THROWN;
      }
      if (result.outcome === "retry") {
        if (result !== THROWN) this.failed(result.reason);
        retryAfterMs = result.retryAfterMs ?? 0;
        continue;
      }
      if (this.#failing) {
        this.#failing = false;
        backoff.recovered();
        log.info("output {output} recovered after {attempts} attempts", {
          output: this.sink.name,
          attempts: attempt + 1,
        });
      }
      return result;
    }
  }
}

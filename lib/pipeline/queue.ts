/**
 * A bounded, acknowledged queue in front of one {@linkcode Sink}: frames are copied into
 * wire-format batches (or encoded into them, for an {@linkcode EncodingSink}) held by a
 * {@linkcode MemoryBuffer}, sent one batch at a time, retried with exponential backoff and
 * jitter until acknowledged, and forgotten only then.
 *
 * @module
 */
import { getLogger } from "../_deps/logtape.ts";
import { ByteBuffer } from "../codec/byte_buffer.ts";
import type {
  DeadLetter,
  Delivered,
  FrameBatch,
  Rejected,
  SendResult,
  Sink,
} from "../outputs/contract.ts";
import type { BufferBatch, Cursor, ReadLimits } from "./buffer.ts";
import { MemoryBuffer } from "./memory_buffer.ts";
import { Backoff } from "./backoff.ts";
import type { OutputPort } from "./output_port.ts";

/**
 * Encodes events for an {@linkcode EncodingSink} when they are queued, straight from the read
 * buffer: the queue then holds (and counts in `maxBytes`) the encoded bytes.
 */
export interface FrameEncoder {
  /**
   * Appends the output form of the frame `buf[start, end)` (the `Any` bytes) to `out`; `hook`
   * and `buf[valueStart, valueEnd)` are its parsed envelope (`hook` < 0: not parsed yet).
   * Returns false when the event is skipped, nothing written (the encoder counts it).
   */
  encode(
    out: ByteBuffer,
    buf: Uint8Array,
    start: number,
    end: number,
    hook: number,
    valueStart: number,
    valueEnd: number,
  ): boolean;
  /** Room to reserve for the encoding of a frame of `frameBytes` (may grow when short). */
  sizeHint(frameBytes: number): number;
  /**
   * True when the encoding is the frame as received (length prefix and `Any`): consecutive
   * frames are then taken as they are, in one piece ({@linkcode OutputQueue.pushRun}).
   */
  readonly raw?: boolean;
}

/**
 * A sink that encodes events at enqueue time ({@linkcode FrameEncoder}): the batches its queue
 * sends it hold that encoding, `count` events of it, instead of frames.
 */
export interface EncodingSink extends Sink {
  /** The encoder its queue uses. */
  readonly encoder: FrameEncoder;
}

/**
 * A sink that can also deliver a batch synchronously (a file). Its queue sends batches
 * asynchronously (`send`, e.g. a write off the main thread, so short disk stalls do not hold up
 * reading) while the sink keeps up. Once the queue holds a quarter of its `maxBytes`, reading
 * pauses until the write in flight is done, and the backlog then goes out with `sendSync`:
 * cheaper than stop-and-go at a full queue when the input outruns the disk for good.
 */
export interface SyncSink extends Sink {
  /** Delivers a batch before returning; throws when it was not (all) delivered. */
  sendSync(batch: FrameBatch): void;
}

/** What happens when a queue holds `maxBytes`: pause reading sockets, or drop and count. */
export type OnFull = "block" | "drop";

/** Options of an {@linkcode OutputQueue}. */
export interface QueueOptions {
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
}

/** Defaults of {@linkcode QueueOptions}. */
export const DEFAULT_QUEUE_OPTIONS: Readonly<QueueOptions> = {
  maxBytes: 64 * 1024 * 1024,
  onFull: "block",
  batchBytes: 256 * 1024,
  batchEvents: Infinity,
  lingerMs: 0,
  retryInitialMs: 100,
  retryMaxMs: 30_000,
};

/**
 * Counters of one queue (one output instance), read by the metrics collector and the summary.
 * Every frame given is, once settled, counted once in `sent`, `deadLettered`, `undecodable`,
 * `lost` or `dropped`; until then it is held ({@linkcode OutputQueue.events}):
 * `received = sent + deadLettered + undecodable + dropped + lost + events`.
 */
export interface QueueStats {
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

/**
 * Batch buffers of an encoding sink's queue hold this many batches: its sends carry all the
 * batches queued back to back in one buffer (one write per event-loop turn must keep up with
 * everything read in that turn).
 */
const COALESCE_BATCHES = 4;

/** The result of a `send` that threw (counted and logged as it was caught). */
const THROWN: SendResult = Object.freeze({ outcome: "retry" as const, reason: "" });

/** Reads of a queue whose sends carry one batch as sealed. */
const ONE_BATCH: ReadLimits = { maxRecords: Infinity, coalesce: false };
/** Reads of an encoding sink's queue: everything back to back in one buffer. */
const COALESCED: ReadLimits = { maxRecords: Infinity, coalesce: true };

const log = getLogger(["vmq_sidecar", "output"]);

/**
 * The queue of one output.
 *
 * @example
 * ```ts
 * import { DELIVERED, OutputQueue } from "../internal.ts";
 * const q = new OutputQueue({ name: "demo", send: () => Promise.resolve(DELIVERED), close: async () => {} });
 * q.push(new Uint8Array(0));
 * await q.flush(1000);
 * await q.close();
 * ```
 */
export class OutputQueue implements OutputPort {
  /** The destination. */
  readonly sink: Sink;
  /** Effective options. */
  readonly options: QueueOptions;
  /** Counters. */
  readonly stats: QueueStats = {
    received: 0,
    sent: 0,
    deadLettered: 0,
    undecodable: 0,
    lost: 0,
    dropped: 0,
    errors: 0,
    retries: 0,
  };
  /** The storage of what the queue holds (queued and in flight). */
  readonly buffer: MemoryBuffer;
  /**
   * Called per acknowledged batch with the seconds from queueing its oldest frame, its event
   * count, and the seconds from the broker timestamp of its oldest event (NaN: unknown; see
   * {@linkcode OutputQueue.noteEventTime}).
   */
  onAck?: (seconds: number, count: number, eventSeconds: number) => void;

  readonly #encoder: FrameEncoder | undefined;
  readonly #syncSink: SyncSink | undefined;
  /** An encoding sink: batches back to back are sent as one. */
  readonly #coalesce: boolean;
  /** Bytes held from which a {@linkcode SyncSink} is written synchronously. */
  readonly #syncBacklog: number;
  readonly #limits: ReadLimits;
  readonly #cursor: Cursor;
  readonly #out = new ByteBuffer(0);
  #sending = false;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #failing = false;
  #dropping = false;
  #closed = false;
  #waiters: (() => void)[] = [];
  #idle: (() => void)[] = [];
  /** Waiting for the pump in progress to end (see {@linkcode OutputQueue.close}). */
  #pumpEnded: (() => void)[] = [];
  readonly #backoff: Backoff;
  /** When the last "events lost" line was logged, and events lost since that were not. */
  #lostLoggedAt = -Infinity;
  #lostUnlogged = 0;

  /** Creates the queue for `sink`. */
  constructor(sink: Sink, options: Partial<QueueOptions> = {}) {
    this.sink = sink;
    this.options = { ...DEFAULT_QUEUE_OPTIONS, ...options };
    this.#encoder = (sink as Partial<EncodingSink>).encoder;
    if (typeof (sink as Partial<SyncSink>).sendSync === "function") {
      this.#syncSink = sink as SyncSink;
    }
    this.#coalesce = this.#encoder !== undefined;
    this.#limits = this.#coalesce ? COALESCED : ONE_BATCH;
    sink.onReady?.(() => this.#destinationReady());
    this.buffer = new MemoryBuffer({
      maxBytes: this.options.maxBytes,
      chunkBytes: this.options.batchBytes * (this.#coalesce ? COALESCE_BATCHES : 1),
    });
    this.#cursor = this.buffer.cursor(sink.name);
    this.#syncBacklog = this.options.maxBytes / 4;
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

  /**
   * Whether blocking outputs should pause reading: the queue is open and holds `maxBytes` or
   * more — or a {@linkcode SyncSink} fell behind while a write is in flight (it catches up with
   * synchronous writes once that one is done).
   */
  get full(): boolean {
    return !this.#closed && (this.bytes >= this.options.maxBytes || this.#pausing);
  }

  /** Whether paused readers must still wait: over half full, or behind (see `full`). */
  get congested(): boolean {
    return !this.#closed && (this.bytes > this.options.maxBytes / 2 || this.#pausing);
  }

  /** Behind with a write in flight (not while retrying a failed one: that fills the queue). */
  get #pausing(): boolean {
    return this.#sending && !this.#failing && this.#syncSink !== undefined && this.#behind;
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
   * Copies `frame` (the `Any` bytes) into the queue — or, for an {@linkcode EncodingSink}, its
   * encoding. Returns false when it was dropped because the queue is full and `onFull` is
   * `drop`. Call {@linkcode OutputQueue.kick} after a run of pushes.
   */
  push(frame: Uint8Array): boolean {
    return this.pushAt(frame, 0, frame.length);
  }

  /**
   * {@linkcode OutputQueue.push} for the frame `buf[start, end)`. The pipeline passes what it
   * parsed of the envelope — the hook index and the range of the event message in `buf` — so
   * an encoder does not parse it again; `hook` < 0 means not parsed.
   */
  pushAt(
    buf: Uint8Array,
    start: number,
    end: number,
    hook = -1,
    valueStart = 0,
    valueEnd = 0,
  ): boolean {
    const encoder = this.#encoder, buffer = this.buffer;
    this.stats.received++;
    // An encoding's size is known only once written: an encoding queue takes events until it
    // is full (at most one event over `maxBytes`).
    const need = encoder ? 1 : 4 + end - start;
    if (this.options.onFull === "drop" && !buffer.hasRoom(need)) {
      this.stats.dropped++;
      if (!this.#dropping) {
        this.#dropping = true;
        log.warn("output {output} queue full ({bytes} bytes): dropping events", {
          output: this.sink.name,
          bytes: this.bytes,
        });
      }
      return false;
    }
    if (buffer.openRecords >= this.options.batchEvents) buffer.seal();
    if (encoder) {
      const out = buffer.tail(this.#out, encoder.sizeHint(end - start));
      const ok = encoder.encode(out, buf, start, end, hook, valueStart, valueEnd);
      buffer.commit(out, ok ? 1 : 0);
      if (!ok) {
        this.stats.undecodable++; // skipped (and logged) by the encoder: settled
        return true;
      }
    } else buffer.appendFrame(buf, start, end);
    if (buffer.openBytes >= this.options.batchBytes) buffer.seal();
    return true;
  }

  /**
   * Whether {@linkcode OutputQueue.pushRun} may be used: the queue holds frames as received
   * (no encoder, or a raw one), blocks when full and has no per-batch event limit.
   */
  get takesRuns(): boolean {
    return (!this.#encoder || this.#encoder.raw === true) &&
      this.options.onFull === "block" && this.options.batchEvents === Infinity;
  }

  /**
   * Takes `count` consecutive frames, length prefixes included, from `buf[start, end)` in one
   * piece (see {@linkcode OutputQueue.takesRuns}), copied like {@linkcode OutputQueue.pushAt}.
   */
  pushRun(buf: Uint8Array, start: number, end: number, count: number): void {
    const buffer = this.buffer;
    this.stats.received += count;
    buffer.appendRun(buf, start, end, count);
    if (buffer.openBytes >= this.options.batchBytes) buffer.seal();
  }

  /**
   * Starts sending: at once when a batch is full (a {@linkcode SyncSink} that fell behind
   * writes before `kick` returns unless a write is in flight; other sinks send up to their first
   * await), after `lingerMs` for a partial one.
   */
  kick(): void {
    if (this.#sending || this.#closed) return;
    // A partial batch whose linger is over goes now: under a steady stream of reads the event
    // loop runs timers late (measured: 30–80 ms late at 400k events/s), kicks come on time.
    const linger = this.options.lingerMs, buffer = this.buffer;
    if (
      buffer.openRecords > 0 && linger > 0 && !buffer.hasSealed &&
      performance.now() - buffer.openSince >= linger
    ) buffer.seal();
    if (buffer.hasSealed) {
      if (this.#syncSink && !this.#failing && this.#behind) {
        if (!this.#deliverSync(this.#syncSink)) this.#pump(true);
      } else {
        if (this.#timer !== undefined) clearTimeout(this.#timer);
        this.#timer = undefined;
        this.#pump();
        return;
      }
    }
    if (this.#sending || this.#timer !== undefined || buffer.openRecords === 0) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#pump();
    }, this.options.lingerMs);
  }

  /** Resolves once the queue is no longer {@linkcode OutputQueue.congested} (for blocking outputs). */
  writable(): Promise<void> {
    if (!this.congested) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  /**
   * Sends everything held, the partial batch included, and resolves true once all of it is
   * acknowledged, or false when `timeoutMs` passes first (retries then stop waiting for it).
   */
  async flush(timeoutMs: number): Promise<boolean> {
    this.buffer.seal();
    if (this.events === 0) return true;
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
    this.#pump();
    const ok = await Promise.race([done, expired]);
    clearTimeout(timer);
    return ok;
  }

  /** Stops sending and closes the sink. Call {@linkcode OutputQueue.flush} first. */
  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#backoff.wake(true);
    for (const w of this.#waiters.splice(0)) w();
    await this.sink.close();
    this.sink.deadLetter?.close();
    // Once no send can still read a batch (the sink is closed and the pump has ended), the
    // buffer gives its memory back; `events` and `bytes` stay (the unflushed count).
    if (this.#sending) await new Promise<void>((r) => this.#pumpEnded.push(r));
    await this.buffer.close();
  }

  /**
   * Whether a {@linkcode SyncSink} fell behind: it then writes on this thread, which pauses
   * reading meanwhile (backpressure) and keeps the queue short.
   */
  get #behind(): boolean {
    return this.bytes >= this.#syncBacklog;
  }

  /**
   * Writes the sealed batches through a {@linkcode SyncSink}, acknowledging each; false when a
   * write failed (counted; the batch stays first for a retry).
   */
  #deliverSync(sink: SyncSink): boolean {
    const buffer = this.buffer, cursor = this.#cursor;
    for (
      let batch = buffer.read(cursor, ONE_BATCH);
      batch;
      batch = buffer.read(cursor, ONE_BATCH)
    ) {
      try {
        sink.sendSync(batch);
      } catch (e) {
        this.#failed(e);
        return false;
      }
      this.#count(batch, 0, 0);
      this.#acked(batch);
    }
    if (this.events === 0) { for (const w of this.#idle.splice(0)) w(); }
    return true;
  }

  async #pump(failedBefore = false): Promise<void> {
    if (this.#sending) return;
    this.#sending = true;
    try {
      const buffer = this.buffer, cursor = this.#cursor;
      while (!this.#closed) {
        if (!buffer.hasSealed || this.#coalesce) buffer.seal();
        const sync = this.#syncSink;
        if (sync && !failedBefore && this.#behind && buffer.hasSealed) {
          failedBefore = !this.#deliverSync(sync);
          continue;
        }
        // A batch whose delivery failed is retried as it was (the sink may resume it part-way).
        const batch = buffer.read(cursor, failedBefore ? ONE_BATCH : this.#limits);
        if (!batch) break;
        const result = await this.#deliver(batch, failedBefore);
        if (result === null) return;
        failedBefore = false;
        // Refused events are dead-lettered before the batch is acknowledged (its bytes stay
        // valid meanwhile); the fast path (DELIVERED) does not wait.
        if (result.outcome === "rejected" || result.rejected !== undefined) {
          await this.#deadLetter(batch, result);
        } else this.#count(batch, result.undecodable ?? 0, 0);
        this.#acked(batch);
      }
    } finally {
      this.#sending = false;
      for (const w of this.#pumpEnded.splice(0)) w();
      this.#wakeWriters();
      if (this.events === 0) { for (const w of this.#idle.splice(0)) w(); }
    }
  }

  /** Counts a settled batch: `undecodable` and `refused` (counted already) of it, the rest sent. */
  #count(batch: BufferBatch, undecodable: number, refused: number): void {
    this.stats.undecodable += undecodable;
    this.stats.sent += batch.count - undecodable - refused;
  }

  /**
   * Appends what the destination refused to the output's dead-letter file and counts it
   * (dead-lettered, or lost when the file cannot be written or the output has none).
   */
  async #deadLetter(batch: BufferBatch, r: Delivered | Rejected): Promise<void> {
    const undecodable = r.undecodable ?? 0;
    let refused = 0;
    if (r.outcome === "rejected") {
      refused = batch.count - undecodable;
      await this.#append(r.letter, refused);
    } else {
      for (const letter of r.rejected ?? []) {
        refused += letter.events;
        await this.#append(letter, letter.events);
      }
    }
    this.#count(batch, undecodable, refused);
  }

  async #append(letter: DeadLetter, events: number): Promise<void> {
    const writer = this.sink.deadLetter;
    let error = "the output has no dead-letter file";
    if (writer) {
      try {
        await writer.append(letter);
        this.stats.deadLettered += events;
        return;
      } catch (e) {
        error = e instanceof Error ? e.message : String(e);
      }
    }
    this.stats.lost += events;
    // At most one line per 10 s per output; the events lost meanwhile are counted in it.
    const now = performance.now();
    if (now - this.#lostLoggedAt < 10_000) {
      this.#lostUnlogged += events;
      return;
    }
    log.error("output {output}: {events} events refused ({reason}) and dropped: {error}{more}", {
      output: this.sink.name,
      events,
      reason: letter.reason,
      error,
      more: this.#lostUnlogged > 0
        ? `; ${this.#lostUnlogged} more lost since the last such line`
        : "",
    });
    this.#lostLoggedAt = now;
    this.#lostUnlogged = 0;
  }

  #acked(batch: BufferBatch): void {
    this.buffer.ack(this.#cursor, batch);
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

  #failed(e: unknown): void {
    this.stats.errors++;
    if (!this.#failing) {
      this.#failing = true;
      log.warn("output {output} failed, retrying with backoff: {error}", {
        output: this.sink.name,
        error: e instanceof Error ? e.message : String(e),
      });
    }
  }

  /** `sink.send`, a throw taken as a retry. */
  async #send(batch: BufferBatch): Promise<SendResult> {
    try {
      return await this.sink.send(batch);
    } catch (e) {
      this.#failed(e);
      return THROWN;
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
  async #deliver(batch: BufferBatch, failedBefore: boolean): Promise<Delivered | Rejected | null> {
    const backoff = this.#backoff;
    backoff.reset();
    let retryAfterMs = 0;
    for (let attempt = failedBefore ? 1 : 0;; attempt++) {
      if (attempt > 0) {
        if (this.#closed) return null;
        // Cut short when the destination is back, for a flush or a close — but never before
        // the time it asked for (Retry-After), unless the queue closes.
        await backoff.wait(retryAfterMs);
        if (this.#closed) return null;
        this.stats.retries++;
      }
      const result = await this.#send(batch);
      if (result.outcome === "retry") {
        if (result !== THROWN) this.#failed(result.reason);
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

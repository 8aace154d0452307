/**
 * A bounded, acknowledged queue in front of one {@linkcode Sink}: frames are copied into
 * wire-format batches, sent one batch at a time, retried with exponential backoff and jitter
 * until acknowledged, and forgotten only then.
 *
 * @module
 */
import { getLogger } from "@logtape/logtape";
import type { FrameBatch, Sink } from "./output.ts";

/** What happens when a queue holds `maxBytes`: pause reading sockets, or drop and count. */
export type OnFull = "block" | "drop";

/** Options of an {@linkcode OutputQueue}. */
export interface QueueOptions {
  /** Most frame bytes held (default 64 MiB). */
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

/** Counters of one queue, read by the metrics collector. */
export interface QueueStats {
  /** Frames acknowledged by the sink. */
  sent: number;
  /** Frames dropped because the queue was full (`onFull: "drop"`). */
  dropped: number;
  /** Failed send attempts. */
  errors: number;
  /** Send attempts that were retries. */
  retries: number;
}

interface PendingBatch extends FrameBatch {
  /** When the oldest frame of the batch was queued (performance.now()). */
  since: number;
}

const log = getLogger(["vmq_sidecar", "output"]);

/**
 * The queue of one output.
 *
 * @example
 * ```ts
 * import { OutputQueue } from "./mod.ts";
 * const q = new OutputQueue({ name: "demo", send: async () => {}, close: async () => {} });
 * q.push(new Uint8Array(0));
 * await q.flush(1000);
 * await q.close();
 * ```
 */
export class OutputQueue {
  /** The destination. */
  readonly sink: Sink;
  /** Effective options. */
  readonly options: QueueOptions;
  /** Counters. */
  readonly stats: QueueStats = { sent: 0, dropped: 0, errors: 0, retries: 0 };
  /** Frame bytes held (queued and in flight). */
  bytes = 0;
  /** Frames held (queued and in flight). */
  events = 0;
  /** Called with (seconds from queueing to acknowledgement of a batch's oldest frame, count). */
  onAck?: (seconds: number, count: number) => void;

  readonly #sealed: PendingBatch[] = [];
  #cur = new Uint8Array(0);
  #curStart = 0;
  #curPos = 0;
  #curCount = 0;
  #curSince = 0;
  #sending = false;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #failing = false;
  #dropping = false;
  #closed = false;
  #waiters: (() => void)[] = [];
  #idle: (() => void)[] = [];
  #retryWake: (() => void) | undefined;

  /** Creates the queue for `sink`. */
  constructor(sink: Sink, options: Partial<QueueOptions> = {}) {
    this.sink = sink;
    this.options = { ...DEFAULT_QUEUE_OPTIONS, ...options };
  }

  /** Whether the queue holds `maxBytes` or more (blocking outputs then pause the sockets). */
  get full(): boolean {
    return this.bytes >= this.options.maxBytes;
  }

  /** Whether the last send attempt failed (the output is retrying). */
  get failing(): boolean {
    return this.#failing;
  }

  /**
   * Copies `frame` (the `Any` bytes) into the queue. Returns false when it was dropped because
   * the queue is full and `onFull` is `drop`. Call {@linkcode OutputQueue.kick} after a run of
   * pushes.
   */
  push(frame: Uint8Array): boolean {
    const need = 4 + frame.length;
    if (this.options.onFull === "drop" && this.bytes + need > this.options.maxBytes) {
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
    if (this.#curCount >= this.options.batchEvents) this.#seal();
    if (this.#cur.length - this.#curPos < need) {
      this.#seal();
      this.#cur = new Uint8Array(Math.max(this.options.batchBytes, need));
      this.#curStart = this.#curPos = 0;
    }
    const b = this.#cur;
    let p = this.#curPos;
    const n = frame.length;
    b[p] = n >>> 24, b[p + 1] = (n >>> 16) & 255, b[p + 2] = (n >>> 8) & 255, b[p + 3] = n & 255;
    b.set(frame, p + 4);
    p += need;
    this.#curPos = p;
    if (this.#curCount++ === 0) this.#curSince = performance.now();
    this.bytes += need;
    this.events++;
    if (p - this.#curStart >= this.options.batchBytes) this.#seal();
    return true;
  }

  /** Schedules sending: at once for full batches, after `lingerMs` for a partial one. */
  kick(): void {
    if (this.#sending || this.#timer !== undefined || this.#closed) return;
    if (this.#sealed.length === 0 && this.#curCount === 0) return;
    const delay = this.#sealed.length > 0 ? 0 : this.options.lingerMs;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#pump();
    }, delay);
  }

  /** Resolves once the queue is at most half full (for blocking outputs). */
  writable(): Promise<void> {
    if (this.bytes <= this.options.maxBytes / 2) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  /**
   * Sends everything held, the partial batch included, and resolves true once all of it is
   * acknowledged, or false when `timeoutMs` passes first (retries then stop waiting for it).
   */
  async flush(timeoutMs: number): Promise<boolean> {
    this.#seal();
    if (this.events === 0) return true;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const done = new Promise<boolean>((resolve) => this.#idle.push(() => resolve(true)));
    const expired = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), timeoutMs);
    });
    this.#retryWake?.(); // a backoff in progress retries now
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
    this.#retryWake?.();
    for (const w of this.#waiters.splice(0)) w();
    await this.sink.close();
  }

  #seal(): void {
    if (this.#curCount === 0) return;
    this.#sealed.push({
      bytes: this.#cur.subarray(this.#curStart, this.#curPos),
      count: this.#curCount,
      since: this.#curSince,
    });
    this.#curStart = this.#curPos;
    this.#curCount = 0;
    if (this.#cur.length - this.#curPos < 4096) {
      this.#cur = new Uint8Array(0);
      this.#curStart = this.#curPos = 0;
    }
  }

  async #pump(): Promise<void> {
    if (this.#sending) return;
    this.#sending = true;
    try {
      while (!this.#closed) {
        if (this.#sealed.length === 0) this.#seal();
        const batch = this.#sealed[0];
        if (!batch) break;
        if (!await this.#deliver(batch)) return;
        this.#sealed.shift();
        this.bytes -= batch.bytes.length;
        this.events -= batch.count;
        this.stats.sent += batch.count;
        this.onAck?.((performance.now() - batch.since) / 1000, batch.count);
        if (this.#dropping && this.bytes <= this.options.maxBytes / 2) {
          this.#dropping = false;
          log.info("output {output} queue has room again", { output: this.sink.name });
        }
        if (this.bytes <= this.options.maxBytes / 2) {
          for (const w of this.#waiters.splice(0)) w();
        }
      }
    } finally {
      this.#sending = false;
      if (this.events === 0) { for (const w of this.#idle.splice(0)) w(); }
    }
  }

  /** Sends `batch` until acknowledged; false when the queue closed meanwhile. */
  async #deliver(batch: PendingBatch): Promise<boolean> {
    let delay = this.options.retryInitialMs;
    for (let attempt = 0;; attempt++) {
      if (attempt > 0) this.stats.retries++;
      try {
        await this.sink.send(batch);
        if (this.#failing) {
          this.#failing = false;
          log.info("output {output} recovered after {attempts} attempts", {
            output: this.sink.name,
            attempts: attempt + 1,
          });
        }
        return true;
      } catch (e) {
        this.stats.errors++;
        if (!this.#failing) {
          this.#failing = true;
          log.warn("output {output} failed, retrying with backoff: {error}", {
            output: this.sink.name,
            error: e instanceof Error ? e.message : String(e),
          });
        }
        if (this.#closed) return false;
        const wait = delay * (0.5 + Math.random() / 2);
        delay = Math.min(delay * 2, this.options.retryMaxMs);
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, wait);
          this.#retryWake = () => {
            clearTimeout(t);
            resolve();
          };
        });
        this.#retryWake = undefined;
        if (this.#closed) return false;
      }
    }
  }
}

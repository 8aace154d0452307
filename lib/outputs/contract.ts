/**
 * The output contract: every destination (file, stdout, NATS, Redis, HTTP, a user handler) is
 * a {@linkcode Sink} fed batches of frames by its own bounded queue, with explicit
 * acknowledgement: a typed {@linkcode SendResult} per batch.
 *
 * @module
 */
export { forEachFrame } from "../wire/length_prefix.ts";
import type { FrameEncoder } from "./encoding.ts";

/**
 * Frames in wire format — `[u32 big-endian length][Any bytes]`, `count` times — exactly as the
 * plugin sent them. The same layout a disk buffer stores.
 */
export interface OutputBatch {
  /** The concatenated frames. */
  readonly bytes: Uint8Array;
  /** How many frames `bytes` holds. */
  readonly count: number;
}

/** What a destination refused for good; Delivery appends it to the output's dead-letter file. */
export interface DeadLetter {
  /** Why, e.g. `HTTP 400 Bad Request` or `message of 2000000 bytes exceeds max_payload`. */
  readonly reason: string;
  /** HTTP status, when there is one. */
  readonly status?: number;
  /** The start of the destination's answer (at most 1 KiB), when there is one. */
  readonly response?: string;
  /** Events in `body`. */
  readonly events: number;
  /** Media type of `body`: `application/x-ndjson` or `application/x-protobuf`. */
  readonly contentType: string;
  /** What was sent: JSON lines (kept as text) or protobuf frames (kept as base64). */
  readonly body: Uint8Array;
  /** The NATS subject or Redis key, when there is one. */
  readonly destination?: string;
}

/** Every event of the batch is settled: acknowledged, except those refused or skipped. */
export interface Delivered {
  /** `"delivered"`. */
  readonly outcome: "delivered";
  /** Events the destination refused for good (to dead-letter), when some were. */
  readonly rejected?: readonly DeadLetter[];
  /** Events the sink skipped because they did not decode (its encoder logged them). */
  readonly undecodable?: number;
}

/** Nothing is acknowledged: Delivery sends the same batch again after its backoff. */
export interface RetryLater {
  /** `"retry"`. */
  readonly outcome: "retry";
  /** Why, for the log (e.g. `HTTP 503 Service Unavailable`). */
  readonly reason: string;
  /** Wait at least this long before the retry (e.g. from `Retry-After`). */
  readonly retryAfterMs?: number;
}

/** The whole batch is refused for good (but its undecodable events): dead-lettered. */
export interface Rejected {
  /** `"rejected"`. */
  readonly outcome: "rejected";
  /** What was refused and why. */
  readonly letter: DeadLetter;
  /** Events the sink skipped because they did not decode (not in `letter`). */
  readonly undecodable?: number;
}

/** What {@linkcode Sink.send} did with a batch. */
export type SendResult = Delivered | RetryLater | Rejected;

/** Every event of the batch delivered: the one result of the fast path (no allocation). */
export const DELIVERED: Delivered = Object.freeze({ outcome: "delivered" as const });

/** A {@linkcode RetryLater} result. */
export function retryLater(reason: string, retryAfterMs?: number): RetryLater {
  return retryAfterMs === undefined ? { outcome: "retry", reason } : {
    outcome: "retry",
    reason,
    retryAfterMs,
  };
}

/** Where Delivery puts the events an output's destination refused (outputs/dead_letter.ts). */
export interface DeadLetterWriter {
  /** The file. */
  readonly path: string;
  /** Throws with what to do when this process may not write the file. */
  checkPermission(): void;
  /** Appends one record; rejects when the write fails (the events are then lost). */
  append(d: DeadLetter): Promise<void>;
  /** Closes the file (a later append opens it again). */
  close(): void;
}

/**
 * A destination of events. Its queue calls {@linkcode Sink.send} with one batch at a time —
 * or, when its kind declares `maxConcurrency` > 1, with up to the output's `concurrency`
 * batches outstanding, started in order (a sink must then keep no per-send state between
 * calls) — and keeps each batch until its promise settles (the queue reuses `batch.bytes`
 * afterwards: a sink must not keep a reference to them). The result says
 * what became of the batch ({@linkcode SendResult}); a `send` that throws counts as
 * {@linkcode RetryLater} with the error's message. The queue counts every event once: sent,
 * dead-lettered (or lost, when the dead-letter file cannot be written), or undecodable.
 * Retries of a batch are cut short when the sink signals, through {@linkcode Sink.onReady},
 * that its destination is back.
 */
export interface Sink {
  /** Name for logs and metrics, e.g. `file:/var/log/vmq/events.jsonl` (no secrets). */
  readonly name: string;
  /** Delivers a batch; see the interface for the acknowledgement contract. */
  send(batch: OutputBatch): Promise<SendResult>;
  /** Flushes and releases resources; called once, after the last send settled. */
  close(): Promise<void>;
  /**
   * Where the queue appends what the destination refused (absent: refused events are lost,
   * logged and counted as such). Closed by the queue after {@linkcode Sink.close}.
   */
  readonly deadLetter?: DeadLetterWriter;
  /** Reopens files (SIGHUP, for logrotate). Optional. */
  reopen?(): Promise<void>;
  /** Whether the destination is currently reachable (for readiness). Optional. */
  connected?(): boolean;
  /**
   * Registers `ready`, to be called whenever the destination may take events again after a
   * failure (a reconnect, a successful probe): the queue then retries at once instead of
   * waiting out its backoff. Optional; called once, by the sink's queue.
   */
  onReady?(ready: () => void): void;
  /** Why it is not reachable, for readiness (e.g. credentials refused); `""` when unknown. Optional. */
  notReadyReason?(): string;
}

/**
 * A sink that encodes events at enqueue time ({@linkcode FrameEncoder}): the batches its delivery
 * sends it hold that encoding, `count` events of it, instead of frames.
 */
export interface EncodingSink extends Sink {
  /** The encoder its delivery uses. */
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
  sendSync(batch: OutputBatch): void;
}

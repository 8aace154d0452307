/**
 * The output contract: every destination (file, stdout, NATS, Redis, HTTP, a user handler) is
 * a {@linkcode Sink} fed batches of frames by its own bounded queue, with explicit
 * acknowledgement.
 *
 * @module
 */
export { forEachFrame } from "../wire/length_prefix.ts";

/**
 * Frames in wire format — `[u32 big-endian length][Any bytes]`, `count` times — exactly as the
 * plugin sent them. The same layout a disk buffer stores.
 */
export interface FrameBatch {
  /** The concatenated frames. */
  readonly bytes: Uint8Array;
  /** How many frames `bytes` holds. */
  readonly count: number;
}

/**
 * What a resolved {@linkcode Sink.send} did with the events of its batch that were not
 * delivered (absent or zero: all were delivered). The queue counts the rest as sent.
 */
export interface SendReport {
  /** Events the destination refused for good, appended to the dead-letter file. */
  deadLettered?: number;
  /**
   * Events neither delivered nor dead-lettered (refused, and the dead-letter file could not
   * be written): dropped, logged and counted as lost so that they never block later events.
   */
  lost?: number;
}

/**
 * A destination of events. The queue calls {@linkcode Sink.send} with one batch at a time
 * (never concurrently) and keeps the batch until the returned promise settles (the queue
 * reuses `batch.bytes` afterwards: a sink must not keep a reference to them):
 * - resolve: every frame of the batch is acknowledged (delivered, dead-lettered or lost as the
 *   {@linkcode SendReport} says, or deliberately skipped and counted by the sink, e.g. an
 *   undecodable event), and the queue forgets it;
 * - reject: nothing is acknowledged; the queue retries the same batch with backoff (cut short
 *   when the sink signals, through {@linkcode Sink.onReady}, that its destination is back).
 */
export interface Sink {
  /** Name for logs and metrics, e.g. `file:/var/log/vmq/events.jsonl` (no secrets). */
  readonly name: string;
  /** Delivers a batch; see the interface for the acknowledgement contract. */
  send(batch: FrameBatch): Promise<SendReport | void>;
  /** Flushes and releases resources; called once, after the last send settled. */
  close(): Promise<void>;
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

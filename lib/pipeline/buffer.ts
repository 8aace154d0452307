/**
 * The storage seam between the router and delivery: a {@linkcode Buffer} holds the records an
 * output has been given and not yet acknowledged. The in-memory store and the disk journal both
 * implement it; delivery (batching, backoff, acknowledgement, dead-letter) is written against
 * this interface only, so a buffer can be swapped without touching any sink.
 *
 * Records are frames `[u32 big-endian length][Any bytes]` (or a local output's own encoding).
 *
 * @module
 */
import type { OutputBatch } from "../outputs/contract.ts";

/** One reader's position in a {@linkcode Buffer} (a memory buffer has exactly one). */
export interface Cursor {
  /** The reader's name (the output's name; the disk journal keys its saved position by it). */
  readonly name: string;
}

/** A sealed run of records, as read from a {@linkcode Buffer}. */
export interface BufferBatch extends OutputBatch {
  /** Sequence number of its first record (monotonic per buffer, never reused). */
  readonly first: number;
  /** `first + count`: the sequence number the next batch starts at. */
  readonly next: number;
  /** `performance.now()` when its oldest record was appended. */
  readonly since: number;
  /** Broker time (ms since the epoch) of the first event of its oldest read; `Infinity`: unknown. */
  readonly eventMs: number;
}

/** Limits of one {@linkcode Buffer.read}. */
export interface ReadLimits {
  /** Most records in the batch returned (delivery's `batch_events`; `Infinity`: no limit). */
  readonly maxRecords: number;
  /** Merge sealed batches that lie back to back in memory into one (local outputs). */
  readonly coalesce: boolean;
}

/**
 * Storage for one output's (or, for the disk journal, several outputs') unacknowledged records.
 *
 * The append side is synchronous: it is called inside the dispatch of one socket read and never
 * awaits. The read side never blocks either: {@linkcode Buffer.readable} says when to read again.
 */
export interface Buffer {
  /** Where records are kept. */
  readonly kind: "memory" | "disk";
  /** The budget in bytes (`queue_bytes` / `buffer_bytes`). */
  readonly maxBytes: number;
  /** Bytes appended and not yet acknowledged by every cursor (length prefixes included). */
  readonly bytes: number;
  /** Records appended and not yet acknowledged by every cursor. */
  readonly records: number;

  /** Broker time (ms since the epoch) of the first event of the read about to be appended. */
  noteEventTime(ms: number): void;
  /** Whether `bytes` more fit in the budget (what to do when not is the caller's policy). */
  hasRoom(bytes: number): boolean;
  /**
   * Appends one frame: a length prefix and `src[start, end)` (the `Any` bytes). The buffer may
   * seal the open batch first (e.g. when its storage for the open batch is full).
   */
  appendFrame(src: Uint8Array, start: number, end: number): void;
  /** Appends `count` frames lying, with their length prefixes, in `src[start, end)` — one copy. */
  appendRun(src: Uint8Array, start: number, end: number, count: number): void;
  /** Records appended since the last {@linkcode Buffer.seal}. */
  readonly openRecords: number;
  /** Bytes appended since the last {@linkcode Buffer.seal}. */
  readonly openBytes: number;
  /** `performance.now()` of the first append since the last seal (`Infinity` when none). */
  readonly openSince: number;
  /** Makes the records appended since the last seal readable, as one batch. */
  seal(): void;

  /**
   * The cursor named `name` (created at the oldest unacknowledged record when new). A buffer
   * with one reader (memory) throws for a second name.
   */
  cursor(name: string): Cursor;
  /**
   * The first sealed batch after `after` (or after `c`'s acknowledged position), or undefined.
   * Never blocks; reading does not move the cursor.
   */
  read(c: Cursor, limits: ReadLimits, after?: BufferBatch): BufferBatch | undefined;
  /** Resolves once {@linkcode Buffer.read} may return a batch for `c`, or the buffer closes. */
  readable(c: Cursor): Promise<void>;
  /**
   * Done with `b` for `c` (delivered, dead-lettered or given up): its space may be reused once
   * every cursor is past it. Batches are acknowledged in order per cursor; out of order throws.
   */
  ack(c: Cursor, b: BufferBatch): void;
  /** The durability point (disk: the fsync policy); a memory buffer resolves at once. */
  sync(): Promise<void>;
  /**
   * Releases the storage (unacknowledged records stay on disk for a disk buffer); `bytes` and
   * `records` keep counting what was not acknowledged (the unflushed count).
   */
  close(): Promise<void>;
}

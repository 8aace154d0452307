/**
 * The file/stdout fast path: a {@linkcode Delivery} that encodes events when they are queued,
 * straight from the read buffer into its {@linkcode MemoryBuffer} (the buffer then holds, and
 * counts in `maxBytes`, the encoded bytes); sends every batch lying back to back in one chunk
 * as one write; and, for a {@linkcode SyncSink} that falls behind, writes synchronously.
 *
 * @module
 */
import { ByteBuffer } from "../../codec/byte_buffer.ts";
import type { EncodingSink, Sink, SyncSink } from "../contract.ts";
import type { FrameEncoder } from "../encoding.ts";
import type { BufferBatch, ReadLimits } from "../../pipeline/buffer.ts";
import { MemoryBuffer } from "../../pipeline/memory_buffer.ts";
import {
  DEFAULT_DELIVERY_OPTIONS,
  Delivery,
  type DeliveryFactory,
  type DeliveryOptions,
  ONE_BATCH,
} from "../../pipeline/delivery.ts";

/**
 * Chunks of an encoding output hold this many batches: its sends carry all the batches queued
 * back to back in one chunk (one write per event-loop turn must keep up with everything read in
 * that turn).
 */
const COALESCE_BATCHES = 4;

/** Reads of an encoding output: everything back to back in one chunk. */
const COALESCED: ReadLimits = { maxRecords: Infinity, coalesce: true };

/**
 * The delivery of a local output: an {@linkcode EncodingSink} (encoded at enqueue, coalesced
 * sends) and/or a {@linkcode SyncSink}. A sync-capable sink is sent batches asynchronously
 * while it keeps up; once a quarter of `maxBytes` is held, reading pauses until the write in
 * flight is done, and the backlog then goes out with `sendSync`.
 *
 * @example
 * ```ts
 * import { DELIVERED, frameEncoder, LocalDelivery } from "../../internal.ts";
 * const sink = {
 *   name: "demo",
 *   encoder: frameEncoder({ format: "json", payload: "base64" }, "demo"),
 *   send: () => Promise.resolve(DELIVERED),
 *   close: async () => {},
 * };
 * const d = new LocalDelivery(sink);
 * await d.flush(1000);
 * await d.close();
 * ```
 */
export class LocalDelivery extends Delivery {
  /** The buffer, with its zero-copy encoding entry points. */
  readonly memory: MemoryBuffer;
  readonly #encoder: FrameEncoder | undefined;
  readonly #syncSink: SyncSink | undefined;
  /** Bytes held from which a {@linkcode SyncSink} is written synchronously. */
  readonly #syncBacklog: number;
  readonly #limits: ReadLimits;
  readonly #out = new ByteBuffer(0);

  /** Creates the delivery of `sink` (an encoding and/or sync-capable one). */
  constructor(sink: Sink | EncodingSink | SyncSink, options: Partial<DeliveryOptions> = {}) {
    const encoder = (sink as Partial<EncodingSink>).encoder;
    const o = { ...DEFAULT_DELIVERY_OPTIONS, ...options };
    const memory = new MemoryBuffer({
      maxBytes: o.maxBytes,
      chunkBytes: o.batchBytes * (encoder ? COALESCE_BATCHES : 1),
      budget: o.budget,
    });
    super(sink, options, memory);
    this.memory = memory;
    this.#encoder = encoder;
    if (typeof (sink as Partial<SyncSink>).sendSync === "function") {
      this.#syncSink = sink as SyncSink;
    }
    this.#limits = encoder ? COALESCED : ONE_BATCH;
    this.#syncBacklog = this.options.maxBytes / 4;
  }

  /**
   * Encodes the frame `buf[start, end)` into the open chunk (`hook` and `buf[valueStart,
   * valueEnd)` are its parsed envelope, so the encoder does not parse it again). An event that
   * does not decode is counted as undecodable. False when dropped (full, `onFull: "drop"`).
   */
  override pushAt(
    buf: Uint8Array,
    start: number,
    end: number,
    hook = -1,
    valueStart = 0,
    valueEnd = 0,
  ): boolean {
    const encoder = this.#encoder;
    if (!encoder) return super.pushAt(buf, start, end, hook, valueStart, valueEnd);
    const memory = this.memory;
    this.stats.received++;
    // An encoding's size is known only once written: take events until full (at most one
    // event over `maxBytes`).
    if (this.options.onFull === "drop") {
      if (!memory.hasRoom(1)) return this.drop();
      // The budget by the room reserved for the encoding, not 1 byte: drop outputs together
      // must stay within half of it, or readers paused until half is free could wait for ever
      // behind a stuck drop output (review finding).
      if (this.overBudget(encoder.sizeHint(end - start))) return this.drop(true);
    }
    if (memory.openRecords >= this.options.batchEvents) memory.seal();
    const out = memory.tail(this.#out, encoder.sizeHint(end - start));
    const ok = encoder.encode(out, buf, start, end, hook, valueStart, valueEnd);
    memory.commit(out, ok ? 1 : 0);
    if (!ok) {
      this.stats.undecodable++; // skipped (and logged) by the encoder: settled
      return true;
    }
    if (memory.openBytes >= this.options.batchBytes) memory.seal();
    return true;
  }

  /** Frames kept as received (no encoder, or a raw one), blocking, no batch event limit. */
  override get takesRuns(): boolean {
    return (!this.#encoder || this.#encoder.raw === true) && super.takesRuns;
  }

  /**
   * Behind with a write in flight (not while retrying a failed one: that fills the buffer):
   * readers pause; the backlog is written synchronously once that write is done.
   */
  protected override get pausing(): boolean {
    return this.sending && !this.failing && this.#syncSink !== undefined && this.#behind;
  }

  /** Whether a {@linkcode SyncSink} fell behind (a quarter of `maxBytes` held). */
  get #behind(): boolean {
    return this.bytes >= this.#syncBacklog;
  }

  /** A sync-capable sink that fell behind writes before `kick` returns (no write in flight). */
  protected override sendNow(): boolean {
    const sync = this.#syncSink;
    if (sync && !this.failing && this.#behind) {
      if (!this.#deliverSync(sync)) {
        this.retryFirst = true;
        this.startPump();
      }
      return false;
    }
    return super.sendNow();
  }

  /**
   * The next batch: everything sealed back to back in one chunk (the open batch sealed first),
   * the backlog of a sync-capable sink that fell behind written synchronously meanwhile.
   */
  protected override next(): BufferBatch | undefined {
    const memory = this.memory, sync = this.#syncSink;
    for (;;) {
      if (this.#encoder || !memory.hasSealed) memory.seal();
      if (sync && !this.retryFirst && this.#behind && memory.hasSealed) {
        this.retryFirst = !this.#deliverSync(sync);
        if (this.closed) return undefined;
        continue;
      }
      // A batch whose delivery failed is sent again as it was (never merged further: the sink
      // resumes it part-way, no byte written twice).
      return memory.read(this.cursor, this.retryFirst ? ONE_BATCH : this.#limits);
    }
  }

  /**
   * Writes the sealed batches through the {@linkcode SyncSink}, acknowledging each; false when a
   * write failed (counted; the batch stays first for a retry).
   */
  #deliverSync(sink: SyncSink): boolean {
    const memory = this.memory, cursor = this.cursor;
    for (
      let batch = memory.read(cursor, ONE_BATCH);
      batch;
      batch = memory.read(cursor, ONE_BATCH)
    ) {
      try {
        sink.sendSync(batch);
      } catch (e) {
        this.failed(e);
        return false;
      }
      this.count(batch, 0, 0);
      this.acked(batch);
    }
    this.settleIdle();
    return true;
  }
}

/**
 * The delivery for a sink: a {@linkcode LocalDelivery} for one that encodes at enqueue or
 * writes synchronously (file, stdout), a generic {@linkcode Delivery} for the others.
 */
export const deliveryOf: DeliveryFactory = (sink, options) =>
  "encoder" in sink || "sendSync" in sink
    ? new LocalDelivery(sink, options)
    : new Delivery(sink, options);

/**
 * Per-client order for `buffer=disk` outputs (`order=client`): an
 * {@linkcode OrderedJournalDelivery} orders on the read side of its cursor in the shared
 * journal. What it reads waits out the window in a {@linkcode ReorderStage} timed on each
 * block's stored append time, goes to the sink in `(mountpoint, client_id)` broker-time order,
 * and the cursor is acknowledged only up to the blocks whose every frame was delivered.
 *
 * @module
 */
import { getLogger } from "../_deps/logtape.ts";
import type { Sink } from "../outputs/contract.ts";
import type { BufferBatch } from "../pipeline/buffer.ts";
import type { DeliveryOptions } from "../pipeline/delivery.ts";
import {
  JournalDelivery,
  type JournalPort,
  type JournalReaderFactory,
} from "../pipeline/journal_delivery.ts";
import { forEachFrame, writeLength } from "../wire/length_prefix.ts";
import { type ReorderClock, ReorderStage } from "./reorder.ts";

const log = getLogger(["vmq_sidecar", "output"]);

/** Most bytes the stage holds (beyond: the oldest go early, counted). */
const MAX_HELD_BYTES = 32 << 20;
/** Most released frames waiting to be sent before it stops reading ahead. */
const MAX_READY = 50_000;
/**
 * Most bytes of blocks read ahead and not acknowledged (each read batch keeps its block until
 * every earlier one is settled): a filtered output behind one held frame would otherwise keep
 * reading the whole backlog into memory (review finding).
 */
const MAX_READ_AHEAD_BYTES = 64 << 20;

/** A journal batch read ahead: acknowledged once none of its frames is held or unsent. */
interface ReadBatch {
  readonly source: BufferBatch;
  pending: number;
}

/** A frame released by the stage, waiting to be sent. */
interface Ready {
  readonly frame: Uint8Array;
  readonly from: ReadBatch;
  readonly since: number;
}

/** A batch of released frames, as given to the sink. */
interface OrderedBatch extends BufferBatch {
  readonly frames: readonly Ready[];
}

/**
 * The delivery of a `buffer=disk` output with `order=client`. It reads its cursor ahead (the
 * blocks stay unacknowledged), holds each frame for the window after its block's append time
 * (the journal's stored `Date.now()` at append, so a replay after a restart decides as the live
 * run did), and sends what the stage releases. A kill -9 replays from the oldest block with a
 * frame not yet delivered: at-least-once; the frames of it delivered before are sent again.
 */
export class OrderedJournalDelivery extends JournalDelivery {
  /** The ordering stage (counters `late`, `early`, `held`, `unordered`). */
  readonly stage: ReorderStage;
  readonly #read: ReadBatch[] = [];
  #readHead = 0;
  /** Records of the batches read ahead and not acknowledged. */
  #readRecords = 0;
  /** Bytes of the batches read ahead and not acknowledged (bounded by MAX_READ_AHEAD_BYTES). */
  #readBytes = 0;
  /** The last batch read ahead (reading goes on after it). */
  #last: BufferBatch | undefined;
  /**
   * While a batch's frames are pushed: its append time (the stage's clock; negative for a
   * block appended before this process started), else undefined.
   */
  #pushing: number | undefined;
  #ready: Ready[] = [];
  #readyHead = 0;
  #flushing = false;
  #poll: ReturnType<typeof setTimeout> | undefined;
  #kickQueued = false;

  /** The ordered delivery of `sink` reading `port`'s journal as `cursorName`. */
  constructor(
    sink: Sink,
    options: Partial<DeliveryOptions>,
    port: JournalPort,
    cursorName: string = sink.name,
  ) {
    super(sink, options, port, cursorName);
    this.stage = new ReorderStage({
      windowMs: options.orderWindowMs ?? 100,
      copy: false, // each frame is copied here (the journal's read bytes are not kept)
      maxBytes: Math.max(1 << 20, Math.min(MAX_HELD_BYTES, this.options.maxBytes / 2)),
      clock: this.#horizonClock(),
      // Timed on stored append times only, so that a replay decides exactly as the live run
      // did (a stall taken out of the windows live could not be known at the replay).
      stallMs: 0,
      release: (frame) => this.#released(frame),
      onError: (e) =>
        log.error("output {output}: ordering failed: {error}", {
          output: sink.name,
          error: e instanceof Error ? (e.stack ?? e.message) : String(e),
        }),
    });
  }

  /**
   * The read horizon: real time once nothing readable is left unread, else the append time of
   * what is read next — a reader behind does not end windows before it has read what arrived
   * within them.
   */
  #horizonClock(): ReorderClock {
    return {
      now: () => {
        const now = performance.now();
        if (this.closed || this.#flushing) return now;
        if (this.#pushing !== undefined) return Math.min(now, this.#pushing);
        // Reading ahead stopped at its byte bound: what is unread cannot hold windows back (it
        // is read only once something is acknowledged, which needs windows to end).
        if (this.#readBytes >= MAX_READ_AHEAD_BYTES) return now;
        const unread = this.journal.read(this.cursor, ONE, this.#last ?? undefined);
        if (unread) return Math.min(now, appendedAt(unread));
        // Records not readable yet (a replay's blocks still loading, a block not yet sealed or
        // written): nothing later than what was read may end a window.
        if (this.#last && this.journal.cursorStats(this.cursor).events > this.#readRecords) {
          return Math.min(now, appendedAt(this.#last));
        }
        return now;
      },
      setTimeout: (fn, ms) => setTimeout(fn, ms),
      clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
    };
  }

  /** Released frames wait here for the pump. */
  #released(frame: Uint8Array): void {
    const from = this.#owner.get(frame);
    if (!from) return; // not one of its frames (cannot happen)
    this.#owner.delete(frame);
    this.#ready.push({ frame, from, since: from.source.since });
    if (this.#inPump || this.#kickQueued) return;
    this.#kickQueued = true;
    queueMicrotask(() => {
      this.#kickQueued = false;
      if (!this.closed && !this.sending) this.kick();
    });
  }

  /** The read batch each frame held came from (keyed by its copy). */
  readonly #owner = new Map<Uint8Array, ReadBatch>();
  #inPump = false;

  /** One batch in flight: its read-ahead and release bookkeeping assume sends settle in order. */
  protected override get window(): number {
    return 1;
  }

  /** Reads ahead into the stage, then the next batch of what it released (in client order). */
  protected override next(): BufferBatch | undefined {
    this.#inPump = true;
    try {
      this.#readAhead();
      this.stage.poll();
      if (this.#flushing) this.stage.flush();
    } finally {
      this.#inPump = false;
    }
    this.#ackDone();
    return this.#take();
  }

  #readAhead(): void {
    const stage = this.stage;
    for (let guard = 0; guard < 100_000; guard++) {
      if (this.#ready.length - this.#readyHead >= MAX_READY) return;
      if (this.#readBytes >= MAX_READ_AHEAD_BYTES) return;
      const r = this.readSelected(this.#last);
      if (r === undefined) return;
      this.#last = r.source;
      const rb: ReadBatch = { source: r.source, pending: r.selected?.count ?? 0 };
      this.#read.push(rb);
      this.#readRecords += r.source.count;
      this.#readBytes += r.source.bytes.length;
      if (!r.selected) continue;
      const arrived = appendedAt(r.source);
      this.#pushing = arrived;
      try {
        forEachFrame(r.selected, (view) => {
          const frame = view.slice();
          this.#owner.set(frame, rb);
          stage.push(frame, arrived);
        });
      } finally {
        this.#pushing = undefined;
      }
    }
  }

  /** The next batch of released frames (up to `batch_events` / `batch_bytes`), or undefined. */
  #take(): OrderedBatch | undefined {
    const ready = this.#ready;
    let end = this.#readyHead, bytes = 0;
    const maxEvents = this.options.batchEvents, maxBytes = this.options.batchBytes;
    while (end < ready.length && end - this.#readyHead < maxEvents) {
      const n = 4 + ready[end].frame.length;
      if (bytes > 0 && bytes + n > maxBytes) break;
      bytes += n;
      end++;
    }
    if (end === this.#readyHead) return undefined;
    const frames = ready.slice(this.#readyHead, end);
    this.#readyHead = end;
    if (this.#readyHead > 1024 && this.#readyHead * 2 > ready.length) {
      this.#ready = ready.slice(this.#readyHead);
      this.#readyHead = 0;
    }
    const out = new Uint8Array(bytes);
    let at = 0, since = Infinity;
    for (const r of frames) {
      writeLength(out, at, r.frame.length);
      out.set(r.frame, at + 4);
      at += 4 + r.frame.length;
      if (r.since < since) since = r.since;
    }
    return {
      bytes: out,
      count: frames.length,
      first: -1,
      next: -1,
      since,
      eventMs: Infinity,
      frames,
    };
  }

  /** Delivered (or settled): its frames are done; the blocks now complete are acknowledged. */
  protected override release(batch: BufferBatch): void {
    for (const r of (batch as OrderedBatch).frames) r.from.pending--;
    this.#ackDone();
  }

  /** Acknowledges, in order, the read-ahead batches with nothing held or unsent. */
  #ackDone(): void {
    const read = this.#read;
    while (this.#readHead < read.length && read[this.#readHead].pending === 0) {
      const done = read[this.#readHead++].source;
      this.#readRecords -= done.count;
      this.#readBytes -= done.bytes.length;
      this.journal.ack(this.cursor, done);
    }
    if (this.#readHead > 1024 && this.#readHead * 2 > read.length) {
      this.#read.splice(0, this.#readHead);
      this.#readHead = 0;
    }
  }

  /**
   * Idle: the stage's timer kicks once it releases; new appends kick it; a block sealed but
   * not yet readable (written or fsynced later) is polled for.
   */
  protected override waitForMore(): void {
    if (this.closed) return;
    if (this.#readHead === this.#read.length) return super.waitForMore(); // nothing read ahead
    if (this.#poll !== undefined) return;
    if (this.journal.cursorStats(this.cursor).events <= this.#readRecords) return; // all read
    this.#poll = setTimeout(() => {
      this.#poll = undefined;
      if (!this.closed && !this.sending) this.kick();
    }, 5);
  }

  /** Releases what the stage holds, then waits for all of it to be delivered. */
  override async flush(timeoutMs: number): Promise<boolean> {
    this.#flushing = true;
    try {
      this.stage.flush();
      return await super.flush(timeoutMs);
    } finally {
      this.#flushing = false;
    }
  }

  /** Stops the stage (what it held stays unacknowledged in the journal), then closes. */
  override async close(): Promise<void> {
    if (this.#poll !== undefined) clearTimeout(this.#poll);
    this.#poll = undefined;
    this.stage.close();
    await super.close();
  }
}

const ONE = { maxRecords: 1, coalesce: false };

/**
 * When `b`'s block was appended, on the `performance.now()` clock: from the block's stored
 * `Date.now()` (the same figure live and at a replay after a restart), else its `since`.
 */
function appendedAt(b: BufferBatch): number {
  const wallMs = (b as { readonly block?: { readonly wallMs?: number } }).block?.wallMs;
  return wallMs === undefined ? b.since : wallMs - performance.timeOrigin;
}

/** The reader of an `order=client` `buffer=disk` output: an {@linkcode OrderedJournalDelivery}. */
export const orderedJournalReader: JournalReaderFactory = (sink, options, port, name) =>
  new OrderedJournalDelivery(sink, options, port, name);

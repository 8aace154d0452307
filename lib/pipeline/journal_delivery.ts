/**
 * Network outputs behind the disk journal (issue 12 phase 2): one {@linkcode DiskJournal} per
 * sidecar, shared by every `buffer=disk` output. {@linkcode JournalPort} owns it and its append
 * side — a frame that several outputs select is written once per read — and
 * {@linkcode JournalDelivery} is one output's {@linkcode Delivery} reading its own cursor, with
 * its own budget (`buffer_bytes`) and `on_full` policy, applying its hook and topic selection
 * to what it reads (the journal holds what any of them selected).
 *
 * @module
 */
import { getLogger } from "../_deps/logtape.ts";
import type {
  HistogramMetric as Histogram,
  MetricsRegistry as Metrics,
} from "../metrics_registry.ts";
import type { Sink } from "../outputs/contract.ts";
import { type EnvelopeRanges, parseEnvelopeAt } from "../wire/envelope.ts";
import { readLength } from "../wire/length_prefix.ts";
import type { BufferBatch, Cursor, ReadLimits } from "./buffer.ts";
import {
  DEFAULT_DELIVERY_OPTIONS,
  Delivery,
  type DeliveryFactory,
  type DeliveryOptions,
} from "./delivery.ts";
import {
  DiskJournal,
  type DiskJournalOptions,
  type FsyncPolicy,
  JournalDirError,
} from "./disk_journal.ts";

const log = getLogger(["vmq_sidecar", "journal"]);

/** How often a paused input retries the journal's held writes (a disk that stays full). */
export const WRITE_RETRY_MS = 250;

/** Makes the reader of one `buffer=disk` output of a {@linkcode JournalPort} (its cursor named `cursorName`). */
export type JournalReaderFactory = (
  sink: Sink,
  options: Partial<DeliveryOptions>,
  port: JournalPort,
  cursorName: string,
) => JournalDelivery;

/** Options of a {@linkcode JournalPort}. */
export interface JournalPortOptions {
  /** The journal directory (`<data_dir>/journal`). */
  readonly dir: string;
  /** The fsync policy (default `interval`). */
  readonly fsync?: FsyncPolicy;
  /** The `interval` period in ms (default 500). */
  readonly fsyncMs?: number;
  /** Called with the seconds of each fsync (the fsync duration histogram). */
  readonly onFsync?: (seconds: number) => void;
  /** Further journal options (tests: segment and cache sizes). */
  readonly journal?: DiskJournalOptions;
}

/**
 * The sidecar's one journal and its append side. Opened on first use ({@linkcode JournalPort.open}),
 * closed when its last reader closes; records not acknowledged stay on disk for the next start.
 */
export class JournalPort {
  /** The journal directory. */
  readonly dir: string;
  readonly #options: JournalPortOptions;
  #journal: DiskJournal | undefined;
  readonly #members = new Set<JournalDelivery>();
  // The frame last appended (a frame several outputs select is written once).
  #lastBuf: Uint8Array | undefined;
  #lastStart = -1;
  #frame = 0;
  #fsyncSeconds: Histogram | undefined;
  #metrics: Metrics | undefined;
  #registered = false;
  /** Journal-wide totals of journals closed before (a reload can close and reopen it). */
  #before = { quarantinedBytes: 0, lostRecords: 0, writeErrors: 0 };

  /** A port for the journal in `options.dir` (nothing is opened yet). */
  constructor(options: JournalPortOptions) {
    this.dir = options.dir;
    this.#options = options;
  }

  /** The open journal, if any. */
  get journal(): DiskJournal | undefined {
    return this.#journal;
  }

  /** The readers (one per `buffer=disk` output). */
  get members(): readonly JournalDelivery[] {
    return [...this.#members];
  }

  /**
   * The journal, opened (and recovered) when not open yet. Throws {@linkcode JournalDirError}
   * when the directory cannot be created, written or locked (the message says what to do).
   */
  open(): DiskJournal {
    if (this.#journal) return this.#journal;
    if (this.#metrics && !this.#registered) {
      this.#registered = true;
      this.#register(this.#metrics);
    }
    const o = this.#options;
    this.#journal = DiskJournal.openSync(this.dir, {
      ...o.journal,
      fsync: o.fsync ?? "interval",
      fsyncMs: o.fsyncMs ?? 500,
      onFsync: (seconds) => {
        this.#fsyncSeconds?.observe([], seconds);
        o.onFsync?.(seconds);
      },
    });
    return this.#journal;
  }

  /**
   * The delivery factory: outputs whose options say `buffer: "disk"` read the journal; the
   * others (local outputs, `buffer=memory`) get `fallback`'s; those with `order: "client"` get
   * `ordered`'s, when given (a reader ordering what it reads). A journal that cannot be opened
   * at a reload (the start checked it) gives that output a memory queue, with an error logged.
   */
  factory(fallback: DeliveryFactory, ordered?: JournalReaderFactory): DeliveryFactory {
    return (sink, options) => {
      if (options.buffer !== "disk") return fallback(sink, options);
      try {
        this.open();
      } catch (e) {
        if (!(e instanceof JournalDirError)) throw e;
        log.error("output {output}: {error}; its events are buffered in memory instead", {
          output: sink.name,
          error: e.message,
        });
        return fallback(sink, { ...options, buffer: "memory" });
      }
      // The cursor is the output's identity across restarts: its name, made unique in
      // configuration order when two outputs share one (two keys on one Redis server).
      const taken = new Set(this.members.map((m) => m.cursorName));
      let name = sink.name;
      for (let n = 2; taken.has(name); n++) name = `${sink.name}#${n}`;
      return options.order === "client" && ordered
        ? ordered(sink, options, this, name)
        : new JournalDelivery(sink, options, this, name);
    };
  }

  /**
   * Forgets the saved positions no output claims (outputs removed from the configuration, or
   * changed: a new identity starts at the oldest record): the segments only they pinned go.
   * Returns their names.
   */
  forgetUnclaimed(): string[] {
    const j = this.#journal;
    if (!j) return [];
    const names = j.unclaimed;
    for (const n of names) {
      log.info("journal: forgetting the position of {name}, an output no longer configured", {
        name: n,
      });
      j.forget(n);
    }
    return names;
  }

  /** @internal `m` joins (its constructor). */
  join(m: JournalDelivery): void {
    this.#members.add(m);
  }

  /** @internal `m` takes the frame `buf[start, end)`: appended unless it is the one just appended for another output. */
  take(m: JournalDelivery, buf: Uint8Array, start: number, end: number): void {
    if (buf !== this.#lastBuf || start !== this.#lastStart || m.lastFrame === this.#frame) {
      this.#journal!.appendFrame(buf, start, end);
      this.#frame++;
      this.#lastBuf = buf;
      this.#lastStart = start;
    }
    m.lastFrame = this.#frame;
  }

  /** @internal The read's frames are all taken: one block, one write. */
  seal(): void {
    this.#lastBuf = undefined;
    this.#journal?.seal();
  }

  /** @internal `m` closed; the last one closes the journal. */
  async leave(m: JournalDelivery): Promise<void> {
    this.#members.delete(m);
    if (this.#members.size === 0) await this.close();
  }

  /** Closes the journal (unacknowledged records stay on disk). */
  async close(): Promise<void> {
    const j = this.#journal;
    this.#journal = undefined;
    if (j) {
      const st = j.stats, b = this.#before;
      b.quarantinedBytes += st.quarantinedBytes;
      b.lostRecords += st.lostRecords;
      b.writeErrors += st.writeErrors;
    }
    await j?.close();
  }

  /**
   * Registers the journal's series (issue 12 item 5): per output `vmq_sidecar_buffer_bytes`,
   * `_events`, `_oldest_seconds`, `_replayed_events_total`; journal-wide
   * `vmq_sidecar_buffer_quarantined_bytes_total`, `_lost_events_total`, `_write_errors_total`,
   * `_disk_bytes` and the `vmq_sidecar_buffer_fsync_seconds` histogram — from the first
   * {@linkcode JournalPort.open} on (a sidecar without `buffer=disk` outputs exports none).
   */
  registerMetrics(m: Metrics): void {
    this.#metrics = m;
  }

  #register(m: Metrics): void {
    const perOutput = (name: string, help: string, kind: "gauge" | "counter") =>
      kind === "gauge" ? m.gauge(name, help, ["output"]) : m.counter(name, help, ["output"]);
    const bytes = perOutput(
      "vmq_sidecar_buffer_bytes",
      "Bytes of a buffer=disk output's backlog in the journal (not acknowledged), against its buffer_bytes.",
      "gauge",
    );
    const events = perOutput(
      "vmq_sidecar_buffer_events",
      "Records of a buffer=disk output's backlog in the journal (held, not yet acknowledged).",
      "gauge",
    );
    const oldest = perOutput(
      "vmq_sidecar_buffer_oldest_seconds",
      "Age of the oldest record a buffer=disk output has not acknowledged (0: none).",
      "gauge",
    );
    const replayed = perOutput(
      "vmq_sidecar_buffer_replayed_events_total",
      "Records acknowledged by a buffer=disk output that were on disk when the journal opened (replayed after a restart).",
      "counter",
    );
    const quarantined = m.counter(
      "vmq_sidecar_buffer_quarantined_bytes_total",
      "Damaged journal bytes moved to quarantine/ at start-up or when read back.",
    );
    const lost = m.counter(
      "vmq_sidecar_buffer_lost_events_total",
      "Journal records lost to damage (their block failed its checksum, or a segment is missing).",
    );
    const writeErrors = m.counter(
      "vmq_sidecar_buffer_write_errors_total",
      "Failed journal segment writes (disk full, I/O error); the block stays in memory and is retried.",
    );
    const disk = m.gauge(
      "vmq_sidecar_buffer_disk_bytes",
      "Bytes of journal segment files on disk.",
    );
    this.#fsyncSeconds = m.histogram(
      "vmq_sidecar_buffer_fsync_seconds",
      "Duration of each journal fsync (segments and cursor positions).",
      [],
      [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    );
    this.#fsyncSeconds.init([]);
    m.onCollect(() => {
      for (const g of [bytes, events, oldest]) g.values.clear();
      const j = this.#journal, b = this.#before;
      const st = j?.stats;
      quarantined.values.set("", b.quarantinedBytes + (st?.quarantinedBytes ?? 0));
      lost.values.set("", b.lostRecords + (st?.lostRecords ?? 0));
      writeErrors.values.set("", b.writeErrors + (st?.writeErrors ?? 0));
      disk.values.set("", st?.diskBytes ?? 0);
      if (!j) return;
      for (const d of this.#members) {
        const c = j.cursorStats(d.cursorHandle), name = d.sink.name;
        bytes.values.set(name, c.bytes);
        events.values.set(name, c.events);
        oldest.values.set(name, c.oldestSeconds);
        replayed.values.set(name, c.replayed);
      }
    });
  }
}

/** A batch read from the journal with only this output's frames: acknowledged as `source`. */
interface SelectedBatch extends BufferBatch {
  readonly source: BufferBatch;
}

/** The frames of several blocks read back to back: acknowledged as each of `sources`. */
interface MergedBatch extends BufferBatch {
  readonly sources: readonly BufferBatch[];
}

/** A batch in flight whose bytes it owns (a buffer taken from the pool, given back at its ack). */
interface OwningBatch extends BufferBatch {
  readonly owned?: Uint8Array<ArrayBuffer>;
}

/** Merge buffers kept for reuse by batches in flight (more, or over 2 × `batch_bytes`: garbage). */
const POOL_BUFFERS = 8;

/**
 * The delivery of a `buffer=disk` network output: the router's pushes go to the shared
 * journal (once per frame, whichever outputs select it), the pump reads this output's cursor.
 * `maxBytes` is its `buffer_bytes`; `bytes` its backlog in the journal; `events` what it was
 * given and has not settled (`received = sent + deadLettered + undecodable + lost + dropped +
 * events`; records replayed after a restart are counted as given when first read).
 */
export class JournalDelivery extends Delivery {
  /** The shared journal. */
  readonly journal: DiskJournal;
  /** @internal The frame number it last took ({@linkcode JournalPort.take}). */
  lastFrame = -1;
  readonly #port: JournalPort;
  readonly #limits: ReadLimits;
  #mask: Uint8Array | undefined;
  #filter: ((frame: Uint8Array, hookIndex: number) => boolean) | undefined;
  /** The room check of the current read is done; `#dropRead`: its frames are dropped. */
  #decided = false;
  #dropRead = false;
  /** Replayed records up to here are counted in `received`. */
  #countedTo = 0;
  #watching = false;
  #out = new Uint8Array(64 * 1024);
  #merged = new Uint8Array(64 * 1024);
  /** Buffers given back by acknowledged batches that owned them (windowed sends). */
  readonly #pool: Uint8Array<ArrayBuffer>[] = [];
  /** The last {@linkcode JournalDelivery.#extend} stopped at `batch_bytes` / `batch_events`. */
  #full = false;
  readonly #ranges: EnvelopeRanges = { typeUrlStart: 0, typeUrlEnd: 0, valueStart: 0, valueEnd: 0 };

  /** Creates the delivery of `sink` reading `port`'s journal (opened when not yet). */
  constructor(
    sink: Sink,
    options: Partial<DeliveryOptions>,
    port: JournalPort,
    cursorName: string = sink.name,
  ) {
    const journal = port.open();
    const maxBytes = options.bufferBytes ?? DEFAULT_DELIVERY_OPTIONS.bufferBytes;
    super(sink, { ...options, maxBytes, buffer: "disk" }, journal, cursorName);
    this.journal = journal;
    this.#port = port;
    journal.cursor(this.cursor.name, { maxBytes });
    this.#limits = { maxRecords: this.options.batchEvents, coalesce: false };
    port.join(this);
    this.#watch(); // a backlog on disk is replayed before anything new is read
  }

  /** @internal Its cursor (metrics). */
  get cursorHandle(): Cursor {
    return this.cursor;
  }

  /** Its cursor's name in the journal (its identity across restarts). */
  get cursorName(): string {
    return this.cursor.name;
  }

  /** Its backlog in the journal, in bytes (against `buffer_bytes`). */
  override get bytes(): number {
    return this.journal.cursorStats(this.cursor).bytes;
  }

  /** Events given and not settled yet (see the class). */
  override get events(): number {
    const s = this.stats;
    return s.received - s.sent - s.deadLettered - s.undecodable - s.lost - s.dropped;
  }

  /** A flush waits for the cursor to catch up with everything in the journal. */
  protected override get unsettled(): number {
    return this.journal.cursorStats(this.cursor).events;
  }

  /**
   * `on_full=block` and the journal holds more unwritten blocks than its memory bound (a disk
   * that stays full): readers pause, so memory stays bounded and backpressure reaches the
   * plugin's connections.
   */
  protected override get pausing(): boolean {
    return this.blocking && this.journal.writesHeld;
  }

  /**
   * Resolves once there is room: while the disk is full, the held blocks are retried every
   * {@linkcode WRITE_RETRY_MS} (no read seals anything meanwhile), then as a memory delivery.
   */
  override async writable(): Promise<void> {
    while (this.journal.writesHeld && !this.closed) {
      await new Promise((r) => setTimeout(r, WRITE_RETRY_MS));
      this.journal.retryWrites();
    }
    return super.writable();
  }

  /** Frames go through {@linkcode JournalDelivery.pushAt} (one append for all outputs). */
  override get takesRuns(): boolean {
    return false;
  }

  /** The hooks and topic filter it reads (what the router gives it). */
  override selects(
    hookMask: Uint8Array,
    filter: ((frame: Uint8Array, hookIndex: number) => boolean) | undefined,
  ): void {
    this.#mask = hookMask.every((m) => m === 1) && !filter ? undefined : hookMask;
    this.#filter = filter;
  }

  /**
   * Takes the frame into the journal. The first frame of a read checks this output's budget:
   * no room and `on_full=drop` — this read's frames are dropped for it (counted), never for
   * another output.
   */
  override pushAt(buf: Uint8Array, start: number, end: number): boolean {
    this.stats.received++;
    if (!this.#decided) {
      this.#decided = true;
      if (
        this.options.onFull === "drop" && !this.journal.hasRoomFor(this.cursor, 4 + end - start)
      ) {
        this.#dropRead = true;
        this.journal.dropOpen(this.cursor);
      }
    }
    if (this.#dropRead) return this.drop();
    this.#port.take(this, buf, start, end);
    return true;
  }

  /** Seals the read's block (once for all outputs), then starts sending. */
  override kick(): void {
    this.#port.seal();
    this.#decided = false;
    this.#dropRead = false;
    super.kick();
  }

  /**
   * The next batch of its frames (batches with none of them are acknowledged on the way): the
   * frames of the blocks readable back to back, up to `batch_bytes` / `batch_events` — as the
   * memory queue batches across reads; a block is one read, often a few events with many
   * connections, and a send per block cost NATS ~20 % more CPU per event.
   */
  protected override next(): BufferBatch | undefined {
    const journal = this.journal;
    for (let guard = 0; guard < 1_000_000; guard++) {
      const b = journal.read(this.cursor, this.#limits);
      if (b === undefined) return undefined;
      const selected = this.#mask ? this.#select(b) : b;
      this.#countReplayed(b, selected);
      if (selected) return this.#own(this.#extend(b, selected, []));
      journal.ack(this.cursor, b);
    }
    return undefined;
  }

  /**
   * The windowed pump's next batch after `after` (in flight): a full one only (`batch_bytes`
   * or `batch_events` reached; a partial one waits for the window to empty). Blocks with none
   * of its frames cannot be acknowledged before `after` is: they go into the batch's sources —
   * at most `batch_bytes` of them (each may be a block read back from disk, held until the
   * batch is acknowledged); beyond, the window waits to empty and `next` acknowledges them as
   * it reads them, holding one at a time.
   */
  protected override nextAfter(after: BufferBatch): BufferBatch | undefined {
    const journal = this.journal;
    const sources = (after as Partial<MergedBatch>).sources;
    let last = sources ? sources[sources.length - 1] : (after as Partial<SelectedBatch>).source ??
      after;
    const skipped: BufferBatch[] = [];
    let skippedBytes = 0;
    for (let guard = 0; guard < 1_000_000; guard++) {
      const b = journal.read(this.cursor, this.#limits, last);
      if (b === undefined) return undefined;
      const selected = this.#mask ? this.#select(b) : b;
      this.#countReplayed(b, selected);
      if (selected) {
        const batch = this.#extend(b, selected, skipped);
        return this.#full ? this.#own(batch) : undefined;
      }
      skippedBytes += b.bytes.length;
      if (skippedBytes > this.options.batchBytes) return undefined;
      skipped.push(b);
      last = b;
    }
    return undefined;
  }

  /**
   * A kick does not look for a batch beyond those in flight: reading ahead merges the blocks
   * readable after them, and doing that per read (per kick) would copy a partial batch again
   * and again; the window fills when a send settles.
   */
  protected override get fillsOnKick(): boolean {
    return false;
  }

  /**
   * `batch`, owning its bytes when they lie in a buffer the next read reuses and several
   * batches may be in flight: that buffer goes with it (back to the pool at its ack).
   */
  #own(batch: BufferBatch): BufferBatch {
    if (this.window <= 1) return batch;
    const buf = batch.bytes.buffer;
    let owned: Uint8Array<ArrayBuffer>;
    if (buf === this.#merged.buffer) {
      owned = this.#merged;
      this.#merged = this.#pool.pop() ?? new Uint8Array(64 * 1024);
    } else if (buf === this.#out.buffer) {
      owned = this.#out;
      this.#out = this.#pool.pop() ?? new Uint8Array(64 * 1024);
    } else return batch;
    const out: OwningBatch = { ...batch, owned };
    return out;
  }

  /** Replayed records are counted as given when first read. */
  #countReplayed(b: BufferBatch, selected: BufferBatch | undefined): void {
    if (b.first < this.journal.replayHead && b.first >= this.#countedTo) {
      this.stats.received += selected?.count ?? 0;
      this.#countedTo = b.next;
    }
  }

  /**
   * `first` (read as `source`, after the blocks `skipped` with none of its frames) and the frames
   * of the blocks readable after it, in one batch; sets `#full` when it stopped at a limit.
   */
  #extend(source: BufferBatch, first: BufferBatch, skipped: BufferBatch[]): BufferBatch {
    const maxBytes = this.options.batchBytes, maxRecords = this.options.batchEvents;
    // `scanned`: bytes of the blocks read for it (frames it does not select included), so a
    // batch never reads more than `batch_bytes` of journal however little it selects.
    let count = first.count, at = first.bytes.length, scanned = source.bytes.length;
    this.#full = true;
    if (scanned >= maxBytes || count >= maxRecords) return this.#after(skipped, first, [source]);
    this.#full = false;
    let out: Uint8Array | undefined, since = first.since, eventMs = first.eventMs;
    const sources = [source];
    for (let last = source; count < maxRecords;) {
      const b = this.journal.read(
        this.cursor,
        { maxRecords: maxRecords - count, coalesce: false },
        last,
      );
      if (b === undefined) break;
      if (scanned + b.bytes.length > maxBytes) {
        this.#full = true;
        break;
      }
      scanned += b.bytes.length;
      if (!out) {
        out = this.#mergeRoom(at + b.bytes.length);
        out.set(first.bytes, 0); // before #select reuses its buffer
      }
      const selected = this.#mask ? this.#select(b) : b;
      this.#countReplayed(b, selected);
      sources.push(b);
      last = b;
      if (!selected) continue;
      out = this.#mergeRoom(at + selected.bytes.length);
      out.set(selected.bytes, at);
      at += selected.bytes.length;
      count += selected.count;
      if (selected.since < since) since = selected.since;
      if (selected.eventMs < eventMs) eventMs = selected.eventMs;
    }
    if (count >= maxRecords) this.#full = true;
    if (sources.length === 1) return this.#after(skipped, first, sources);
    const merged: MergedBatch = {
      bytes: out!.subarray(0, at),
      count,
      first: source.first,
      next: sources[sources.length - 1].next,
      since,
      eventMs,
      sources,
    };
    return this.#after(skipped, merged, sources);
  }

  /** `batch` (read as `sources`), acknowledged after the blocks `skipped` before it. */
  #after(skipped: BufferBatch[], batch: BufferBatch, sources: BufferBatch[]): BufferBatch {
    if (skipped.length === 0) return batch;
    const merged: MergedBatch = {
      ...batch,
      first: skipped[0].first,
      sources: [...skipped, ...sources],
    };
    return merged;
  }

  #mergeRoom(need: number): Uint8Array {
    if (need <= this.#merged.length) return this.#merged;
    const bigger = new Uint8Array(Math.max(need, this.#merged.length * 2));
    bigger.set(this.#merged);
    this.#merged = bigger;
    return bigger;
  }

  /**
   * Reads the batch after `after` (default: at its acknowledged position) and selects its
   * frames: the batch as read (`source`, what to acknowledge) and this output's frames of it
   * (`selected`, undefined when none; its bytes valid until the next read); replayed records
   * are counted as given when first read.
   */
  protected readSelected(
    after?: BufferBatch,
  ): { source: BufferBatch; selected: BufferBatch | undefined } | undefined {
    const b = this.journal.read(this.cursor, this.#limits, after);
    if (b === undefined) return undefined;
    const selected = this.#mask ? this.#select(b) : b;
    this.#countReplayed(b, selected);
    return { source: b, selected };
  }

  /** Acknowledges the batch(es) it was read as, in order. */
  protected override release(batch: BufferBatch): void {
    const sources = (batch as Partial<MergedBatch>).sources;
    if (sources) { for (const b of sources) this.journal.ack(this.cursor, b); }
    else this.journal.ack(this.cursor, (batch as Partial<SelectedBatch>).source ?? batch);
    const owned = (batch as OwningBatch).owned;
    // Kept only up to twice a batch: one grown for a large frame goes (garbage), not pooled.
    if (
      owned && this.#pool.length < POOL_BUFFERS &&
      owned.length <= Math.max(64 * 1024, 2 * this.options.batchBytes)
    ) this.#pool.push(owned);
  }

  /** Resolves flushes; then waits (off the pump) for the journal to have more for it. */
  protected override settleIdle(): void {
    super.settleIdle();
    this.waitForMore();
  }

  /** Once idle: waits (off the pump) for the journal to have a batch at its position. */
  protected waitForMore(): void {
    this.#watch();
  }

  /** Leaves the journal (the last output closes it). */
  protected override async releaseStorage(): Promise<void> {
    await this.#port.leave(this);
  }

  /** Kicks the pump once the journal has a batch for it (replay, fsync=batch, read-ahead). */
  #watch(): void {
    if (this.#watching || this.closed) return;
    this.#watching = true;
    this.journal.readable(this.cursor).then(() => {
      this.#watching = false;
      if (!this.closed && !this.sending) this.kick();
    }, () => {
      this.#watching = false;
    });
  }

  /** `b` with only the frames this output selects: `b` itself, a copy, or undefined (none). */
  #select(b: BufferBatch): BufferBatch | undefined {
    const bytes = b.bytes, mask = this.#mask!, filter = this.#filter, r = this.#ranges;
    let out: Uint8Array | undefined, at = 0, count = 0;
    for (let i = 0, p = 0; i < b.count; i++) {
      const start = p + 4, end = start + readLength(bytes, p);
      const hook = parseEnvelopeAt(bytes, start, end, r);
      const take = hook >= 0 && mask[hook] === 1 &&
        (!filter || filter(bytes.subarray(start, end), hook));
      if (take) {
        if (out) {
          out = this.#room(out, at + end - p);
          out.set(bytes.subarray(p, end), at);
          at += end - p;
        }
        count++;
      } else if (!out) {
        out = this.#room(this.#out, p);
        out.set(bytes.subarray(0, p), 0); // the frames before it were all taken
        at = p;
      }
      p = end;
    }
    if (!out) return b;
    if (count === 0) return undefined;
    const selected: SelectedBatch = { ...b, bytes: out.subarray(0, at), count, source: b };
    return selected;
  }

  #room(out: Uint8Array, need: number): Uint8Array {
    if (need <= out.length) return out;
    const bigger = new Uint8Array(Math.max(need, out.length * 2));
    bigger.set(out);
    this.#out = bigger;
    return bigger;
  }
}

/**
 * Handlers as an output instance: {@linkcode HandlerDelivery} is a {@linkcode Delivery} (the
 * same {@linkcode Buffer}, counters, backpressure and metrics as every output) whose reader
 * reads the buffer ahead, decodes each frame once, orders the frames of each client through a
 * {@linkcode ReorderStage}, runs the handler's functions in per-client lanes with bounded
 * concurrency, and acknowledges batches in buffer order once every event of a batch is settled.
 *
 * @module
 */
import { getLogger } from "../_deps/logtape.ts";
import type { DeadLetterWriter, Sink } from "../outputs/contract.ts";
import type { Buffer, BufferBatch, Cursor } from "../pipeline/buffer.ts";
import {
  DEFAULT_DELIVERY_OPTIONS,
  Delivery,
  type DeliveryOptions,
  ONE_BATCH,
} from "../pipeline/delivery.ts";
import { forEachFrame } from "../wire/length_prefix.ts";
import { decodeEvent } from "../codec/event_decoder.ts";
import type { SidecarEvent } from "../schema/events.ts";
import type { MetricsRegistry as Metrics } from "../metrics_registry.ts";
import { type ReorderClock, ReorderStage } from "./reorder.ts";
import { OrderedFront } from "./ordered_front.ts";
import { OrderedJournalDelivery } from "./ordered_journal.ts";
import { EventTime } from "./timestamps.ts";
import { type Handler, type HandlerContext, Reject } from "./handler.ts";

const log = getLogger(["vmq_sidecar", "handler"]);

/** The sink side of a handler output: its name, dead-letter file and the handler (no `send`). */
export class HandlerSink implements Sink {
  /** The handler's name. */
  readonly name: string;
  /** The handler. */
  readonly handler: Handler;
  /** Where rejected and given-up events go. */
  readonly deadLetter?: DeadLetterWriter;

  /** The sink of `handler`, dead-lettering to `deadLetter`. */
  constructor(handler: Handler, deadLetter?: DeadLetterWriter) {
    this.name = handler.spec.name;
    this.handler = handler;
    this.deadLetter = deadLetter;
  }

  /** Never called: a {@linkcode HandlerDelivery} runs the handler itself. */
  send(): never {
    throw new Error("HandlerSink.send: handlers are run by HandlerDelivery");
  }

  /** Nothing to release. */
  close(): Promise<void> {
    return Promise.resolve();
  }
}

/** One read batch: acknowledged once `pending` reaches 0 and every earlier batch is acked. */
interface BatchState {
  readonly batch: BufferBatch;
  pending: number;
  handled: number;
  deadLettered: number;
  lost: number;
  undecodable: number;
}

/** One event between read and settlement. */
interface Task {
  readonly frame: Uint8Array;
  readonly batch: BatchState;
  event?: SidecarEvent;
  late: boolean;
  attempt: number;
  lane?: Lane;
}

/** The events of one client, handled one at a time. */
interface Lane {
  readonly key: string;
  readonly tasks: Task[];
  /** Its head is running or waiting for a retry. */
  busy: boolean;
}

/** Counters of a handler beyond {@linkcode Delivery.stats}. */
export interface HandlerCounters {
  /** Handler calls that threw (each retry counted). */
  threw: number;
  /** Events handled flagged late (past the ordering window). */
  late: number;
  /** Calls running now. */
  inFlight: number;
  /** Most calls that ran at once. */
  maxInFlightSeen: number;
}

/**
 * The delivery of a {@linkcode HandlerSink}.
 *
 * @example
 * ```ts
 * import { defineHandler } from "../mod.ts";
 * import { HandlerDelivery, HandlerSink } from "./handler_delivery.ts";
 * const d = new HandlerDelivery(new HandlerSink(defineHandler({ name: "h", onEvent() {} })));
 * await d.flush(1000);
 * await d.close();
 * ```
 */
export class HandlerDelivery extends Delivery {
  /** Counters of the handler's calls. */
  readonly handlerStats: HandlerCounters = { threw: 0, late: 0, inFlight: 0, maxInFlightSeen: 0 };
  /** The ordering stage (undefined with `order: "none"`). */
  readonly stage: ReorderStage | undefined;
  readonly #handler: Handler;
  readonly #concurrency: number;
  readonly #maxInFlight: number;
  readonly #retryInitialMs: number;
  readonly #retryMaxMs: number;
  readonly #maxAttempts: number;
  readonly #batches: BatchState[] = [];
  readonly #tasks = new Map<Uint8Array, Task>();
  readonly #lanes = new Map<string, Lane>();
  /** Tasks (heads of lanes, or lane-less) waiting for a call slot. */
  readonly #ready: Task[] = [];
  #readyHead = 0;
  readonly #timers = new Set<ReturnType<typeof setTimeout>>();
  readonly #abort = new AbortController();
  #last: BufferBatch | undefined;
  #readAhead = 0;
  #lastThrowLog = -Infinity;
  #throwsUnlogged = 0;
  #retrying = 0;
  #flushing = false;
  #waiting = false;
  /**
   * While a batch's frames are pushed into the stage: its append time (else undefined; a block
   * appended before a restart has a negative time on this process's clock, so no number can
   * mark "not pushing").
   */
  #pushing: number | undefined;

  /** The delivery of `sink`'s handler, storing in `buffer` (default: a memory buffer). */
  constructor(sink: HandlerSink, options: Partial<DeliveryOptions> = {}, buffer?: Buffer) {
    super(sink, options, buffer);
    const spec = sink.handler.spec;
    this.#handler = sink.handler;
    this.#concurrency = spec.concurrency ?? 64;
    this.#maxInFlight = spec.maxInFlight ?? 10_000;
    this.#retryInitialMs = spec.retry?.initialMs ?? 100;
    this.#retryMaxMs = spec.retry?.maxMs ?? 30_000;
    this.#maxAttempts = spec.retry?.maxAttempts ?? 10;
    if (!(this.#maxAttempts >= 1)) {
      throw new RangeError(`handler ${sink.name}: retry.maxAttempts must be ≥ 1`);
    }
    if ((spec.order ?? "client") === "client") {
      const clock = this.#horizonClock();
      this.stage = new ReorderStage({
        windowMs: spec.orderWindowMs ?? 100,
        copy: false, // this delivery copies each frame itself (a buffer may reuse its bytes)
        clock,
        release: (frame, late) => this.#released(frame, late),
        onError: (e) =>
          log.error("handler {handler}: ordering failed: {error}", {
            handler: sink.name,
            error: String(e),
          }),
      });
    }
    // What the buffer holds already (a disk journal after a restart) is counted as given (the
    // counters add up across a restart) and read at once.
    this.stats.received += this.buffer.records;
    queueMicrotask(() => this.#read());
  }

  /**
   * The stage's clock: the read horizon — real time while nothing sealed is unread, else the
   * append time of the oldest unread batch — so that a reader that falls behind does not end
   * windows before it has seen the events that arrived within them.
   */
  #horizonClock(): ReorderClock {
    return {
      now: () => {
        const now = performance.now();
        if (this.closed || this.#flushing) return now;
        if (this.#pushing !== undefined) return Math.min(now, this.#pushing);
        const unread = this.buffer.read(this.cursor, ONE_BATCH, this.#last);
        if (unread) return Math.min(now, unread.since);
        return now;
      },
      setTimeout: (fn, ms) => setTimeout(fn, ms),
      clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
    };
  }

  /** Events in a call now or waiting (read from the buffer and not yet settled). */
  get inFlight(): number {
    return this.#readAhead;
  }

  /** Retrying an event whose call threw (for readiness). */
  override get failing(): boolean {
    return this.#retrying > 0;
  }

  /** After a read: what it appended becomes readable and is read ahead. */
  override kick(): void {
    if (this.closed) return;
    if (this.buffer.openRecords > 0) this.buffer.seal();
    this.#read();
  }

  /** Reads ahead (the generic pump is not used). */
  protected override pump(): Promise<void> {
    if (!this.closed) {
      if (this.buffer.openRecords > 0) this.buffer.seal();
      this.#read();
    }
    return Promise.resolve();
  }

  /** Sends everything held, the events the stage holds included, within `timeoutMs`. */
  override flush(timeoutMs: number): Promise<boolean> {
    this.#flushing = true;
    const done = super.flush(timeoutMs);
    this.stage?.flush();
    return done.finally(() => this.#flushing = false);
  }

  /** Stops calling the handler (calls running are abandoned: their events stay unflushed). */
  override async close(): Promise<void> {
    this.#abort.abort(new Error(`handler ${this.sink.name}: the sidecar is stopping`));
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
    this.stage?.close();
    await super.close();
  }

  #read(): void {
    if (this.closed) return;
    const buffer = this.buffer, cursor: Cursor = this.cursor;
    while (this.#readAhead < this.#maxInFlight) {
      const batch = buffer.read(cursor, ONE_BATCH, this.#last);
      if (!batch) {
        this.#waitReadable();
        break;
      }
      this.#last = batch;
      const state: BatchState = {
        batch,
        pending: batch.count,
        handled: 0,
        deadLettered: 0,
        lost: 0,
        undecodable: 0,
      };
      this.#batches.push(state);
      this.#readAhead += batch.count;
      const stage = this.stage;
      this.#pushing = batch.since;
      try {
        forEachFrame(batch, (view) => {
          const frame = view.slice();
          const task: Task = { frame, batch: state, late: false, attempt: 0 };
          if (stage) {
            this.#tasks.set(frame, task);
            stage.push(frame, batch.since);
          } else this.#start(task);
        });
      } finally {
        this.#pushing = undefined;
      }
      if (this.#flushing) stage?.flush();
      if (batch.count === 0) this.#ackDone();
    }
    this.stage?.poll();
    this.#dispatch();
  }

  /**
   * Records sealed but not readable yet (a disk journal makes a block readable once written or
   * fsynced; at start, what a previous run left): read again once they are.
   */
  #waitReadable(): void {
    if (this.#waiting || this.closed) return;
    const buffer = this.buffer;
    if (buffer.records - this.#readAhead - buffer.openRecords <= 0) return;
    this.#waiting = true;
    const again = () => {
      this.#waiting = false;
      this.#read();
    };
    if (this.#readAhead === 0) {
      buffer.readable(this.cursor).then(again, again);
      return;
    }
    // `readable` is about the acknowledged position, which a reader ahead is past: poll.
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      again();
    }, 2);
    this.#timers.add(timer);
  }

  /** The stage released `frame`: into its client's lane. */
  #released(frame: Uint8Array, late: boolean): void {
    const task = this.#tasks.get(frame);
    if (!task) return;
    this.#tasks.delete(frame);
    task.late = late;
    this.#start(task);
  }

  #start(task: Task): void {
    const r = decodeEvent(task.frame);
    if (!r.ok) {
      task.batch.undecodable++;
      this.#settle(task);
      return;
    }
    task.event = r.event;
    if (task.late) this.handlerStats.late++;
    if (this.stage) {
      const e = r.event as { mountpoint?: string; client_id?: string };
      if (e.client_id !== undefined) {
        const key = `${e.mountpoint ?? ""}\u0000${e.client_id}`;
        let lane = this.#lanes.get(key);
        if (!lane) this.#lanes.set(key, lane = { key, tasks: [], busy: false });
        task.lane = lane;
        lane.tasks.push(task);
        if (!lane.busy) {
          lane.busy = true;
          this.#ready.push(task);
        }
        this.#dispatch();
        return;
      }
    }
    this.#ready.push(task);
    this.#dispatch();
  }

  /** Starts waiting calls while slots are free. */
  #dispatch(): void {
    const st = this.handlerStats;
    while (st.inFlight < this.#concurrency && this.#readyHead < this.#ready.length) {
      const task = this.#ready[this.#readyHead++];
      this.#call(task).catch((e) =>
        log.error("handler {handler}: internal error: {error}", {
          handler: this.sink.name,
          error: e instanceof Error ? (e.stack ?? e.message) : String(e),
        })
      );
    }
    if (this.#readyHead > 1024 && this.#readyHead * 2 > this.#ready.length) {
      this.#ready.splice(0, this.#readyHead);
      this.#readyHead = 0;
    }
  }

  async #call(task: Task): Promise<void> {
    if (this.closed) return;
    const st = this.handlerStats;
    st.inFlight++;
    if (st.inFlight > st.maxInFlightSeen) st.maxInFlightSeen = st.inFlight;
    const event = task.event!;
    task.attempt++;
    const ctx: HandlerContext = {
      time: EventTime.of(event),
      late: task.late,
      attempt: task.attempt,
      signal: this.#abort.signal,
      handler: this.sink.name,
    };
    let error: unknown, threw = false;
    try {
      const fn = this.#handler.fnOf(event.hook);
      if (fn) await fn(event, ctx);
    } catch (e) {
      threw = true;
      error = e;
    }
    st.inFlight--;
    if (this.closed) return;
    if (!threw) {
      if (task.attempt > 1) this.#retrying--;
      task.batch.handled++;
      this.#next(task);
      return;
    }
    if (error instanceof Reject) {
      if (task.attempt > 1) this.#retrying--;
      await this.#deadLetter(task, error.message);
      this.#next(task);
      return;
    }
    st.threw++;
    this.stats.errors++;
    this.#logThrow(error, task);
    if (task.attempt >= this.#maxAttempts) {
      if (task.attempt > 1) this.#retrying--;
      await this.#deadLetter(
        task,
        `handler threw ${task.attempt} times: ${error instanceof Error ? error.message : error}`,
      );
      this.#next(task);
      return;
    }
    if (task.attempt === 1) this.#retrying++;
    const base = Math.min(this.#retryMaxMs, this.#retryInitialMs * 2 ** (task.attempt - 1));
    const delay = base / 2 + Math.random() * base / 2;
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      if (this.closed) return;
      this.stats.retries++;
      this.#ready.push(task); // its lane stays busy meanwhile: the client waits, others go on
      this.#dispatch();
    }, delay);
    this.#timers.add(timer);
    this.#dispatch();
  }

  /** `task` is settled: its lane's next event may run, its batch may be acked. */
  #next(task: Task): void {
    const lane = task.lane;
    if (lane) {
      lane.tasks.shift();
      if (lane.tasks.length > 0) this.#ready.push(lane.tasks[0]);
      else {
        lane.busy = false;
        this.#lanes.delete(lane.key);
      }
    }
    this.#settle(task);
    this.#dispatch();
  }

  #settle(task: Task): void {
    task.batch.pending--;
    if (task.batch.pending === 0) this.#ackDone();
  }

  /** Acknowledges the done prefix of read batches, counting them; reads more. */
  #ackDone(): void {
    const batches = this.#batches;
    let acked = false;
    while (batches.length > 0 && batches[0].pending === 0) {
      const s = batches.shift()!;
      const st = this.stats;
      st.sent += s.handled;
      st.deadLettered += s.deadLettered;
      st.lost += s.lost;
      st.undecodable += s.undecodable;
      this.#readAhead -= s.batch.count;
      this.acked(s.batch);
      acked = true;
    }
    if (!acked) return;
    this.settleIdle();
    // More room for reading ahead; not from inside a release of the stage.
    queueMicrotask(() => this.#read());
  }

  async #deadLetter(task: Task, reason: string): Promise<void> {
    const writer = this.sink.deadLetter;
    let error = "the handler has no dead-letter file";
    if (writer) {
      const body = new Uint8Array(task.frame.length + 4);
      new DataView(body.buffer).setUint32(0, task.frame.length);
      body.set(task.frame, 4);
      try {
        await writer.append({
          reason,
          events: 1,
          contentType: "application/x-protobuf",
          body,
          destination: this.sink.name,
        });
        task.batch.deadLettered++;
        return;
      } catch (e) {
        error = e instanceof Error ? e.message : String(e);
      }
    }
    task.batch.lost++;
    log.error("handler {handler}: event dead-lettered ({reason}) but lost: {error}", {
      handler: this.sink.name,
      reason,
      error,
    });
  }

  /** At most one line per 10 s per handler; the throws meanwhile are counted in it. */
  #logThrow(error: unknown, task: Task): void {
    const now = performance.now();
    if (now - this.#lastThrowLog < 10_000) {
      this.#throwsUnlogged++;
      return;
    }
    log.warn("handler {handler} threw on {hook} (attempt {attempt}, retrying): {error}{more}", {
      handler: this.sink.name,
      hook: task.event?.hook ?? "?",
      attempt: task.attempt,
      error: error instanceof Error ? (error.stack ?? error.message) : String(error),
      more: this.#throwsUnlogged > 0
        ? `; ${this.#throwsUnlogged} more throws since the last line`
        : "",
    });
    this.#lastThrowLog = now;
    this.#throwsUnlogged = 0;
  }
}

/** Default buffer budget of a handler. */
export const HANDLER_BUFFER_BYTES = DEFAULT_DELIVERY_OPTIONS.maxBytes;

/**
 * Registers the handler metrics (`vmq_sidecar_handler_*`, by `output`) for the deliveries
 * `list` returns at each scrape.
 */
export function registerHandlerMetrics(m: Metrics, list: () => HandlerDelivery[]): void {
  const threw = m.counter(
    "vmq_sidecar_handler_errors_total",
    "Handler calls that threw (each retry counted), by handler.",
    ["output"],
  );
  const calls = m.gauge("vmq_sidecar_handler_in_flight", "Handler calls running now.", ["output"]);
  m.onCollect(() => {
    for (const d of list()) {
      const name = d.sink.name;
      threw.values.set(name, d.handlerStats.threw);
      calls.values.set(name, d.handlerStats.inFlight);
    }
  });
}

const reorderRegistered = new WeakSet<Metrics>();

/**
 * Registers the ordering metrics (`vmq_sidecar_reorder_*`, by `output`) of the deliveries
 * `list` returns at each scrape that order (handlers with `order: "client"`, outputs with
 * `order=client`); once per registry, later calls do nothing.
 */
export function registerReorderMetrics(m: Metrics, list: () => readonly Delivery[]): void {
  if (reorderRegistered.has(m)) return; // once per registry (the start and any reload may ask)
  reorderRegistered.add(m);
  const held = m.gauge(
    "vmq_sidecar_reorder_held_events",
    "Events held for per-client order (waiting for their window), by output.",
    ["output"],
  );
  const late = m.counter(
    "vmq_sidecar_reorder_late_total",
    "Events that arrived later than the ordering window (delivered flagged late), by output.",
    ["output"],
  );
  const early = m.counter(
    "vmq_sidecar_reorder_early_total",
    "Events released before their window ended because the ordering stage was full, by output.",
    ["output"],
  );
  m.onCollect(() => {
    // Outputs removed by a reload disappear (each series is set again from its stage's totals).
    held.values.clear();
    late.values.clear();
    early.values.clear();
    for (const d of list()) {
      const stage = d instanceof HandlerDelivery
        ? d.stage
        : d.front instanceof OrderedFront
        ? d.front.stage
        : d instanceof OrderedJournalDelivery
        ? d.stage
        : undefined;
      if (!stage && !(d instanceof HandlerDelivery)) continue; // an output that does not order
      const name = d.sink.name;
      held.values.set(name, stage?.held ?? 0);
      late.values.set(name, stage?.late ?? 0);
      early.values.set(name, stage?.early ?? 0);
    }
  });
}

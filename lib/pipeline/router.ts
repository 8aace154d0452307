/**
 * The pipeline every connection feeds: frames → envelope → per-output filter → per-output
 * bounded queue → sink. Dispatch is synchronous per read (no await per event).
 *
 * @module
 */
import { getLogger } from "../_deps/logtape.ts";
import { type EnvelopeRanges, MALFORMED_ENVELOPE, parseEnvelopeAt } from "../wire/envelope.ts";
import { eventTimeMs } from "../codec/slots.ts";
import { warmCache } from "../wire/warm_cache.ts";
import type { FrameSlab } from "../wire/frame_reader.ts";
import { type Hook, HOOKS } from "../schema/hooks.ts";
import type {
  HistogramMetric as Histogram,
  MetricsRegistry as Metrics,
} from "../metrics_registry.ts";
import type { Sink } from "../outputs/contract.ts";
import { Delivery, type DeliveryFactory, type DeliveryOptions } from "./delivery.ts";
import type { OutputPort } from "./output_port.ts";
import type { MemoryBudget } from "../memory_budget.ts";
import { LineThrottle } from "../_log_limiter.ts";

/** One output of the pipeline: a sink, what it receives, and its queue settings. */
export interface OutputConfig {
  /** The destination. */
  sink: Sink;
  /** Hooks this output receives; all when absent. */
  hooks?: ReadonlySet<Hook>;
  /** Further filter (e.g. MQTT topic filters): false skips the frame for this output. */
  filter?: (frame: Uint8Array, hookIndex: number) => boolean;
  /** Delivery settings (batching, limits, retries). */
  queue?: Partial<DeliveryOptions>;
}

/** {@linkcode Router.dispatch} result: all frames taken. */
export const DISPATCH_OK = 0;
/** {@linkcode Router.dispatch} result: taken; wait for {@linkcode Router.writable} before reading more. */
export const DISPATCH_BACKPRESSURE = 1;
/** {@linkcode Router.dispatch} result: a frame is not a valid `Any`; close the connection. */
export const DISPATCH_MALFORMED = 2;

/** What the ingest server calls: one read's frames in, backpressure out. */
export interface RouterPort {
  /**
   * Routes the frames of one read: {@linkcode DISPATCH_OK}, {@linkcode DISPATCH_BACKPRESSURE}
   * or {@linkcode DISPATCH_MALFORMED}.
   */
  dispatchSlab(slab: FrameSlab): number;
  /**
   * Whether a blocking output is full (or the shared queued-bytes budget): readers wait for
   * {@linkcode RouterPort.writable} first.
   */
  readonly blocked: boolean;
  /** Resolves when every blocking output (and the shared budget) has room again. */
  writable(): Promise<void>;
}

interface Output {
  /** What the hot path calls. */
  port: OutputPort;
  /** The same object, for what the application reads (counters, flush, close). */
  queue: Delivery;
  hookMask: Uint8Array;
  filter?: (frame: Uint8Array, hookIndex: number) => boolean;
  blocking: boolean;
  /** Takes every event as the frame received: fed whole runs of frames by dispatchSlab. */
  runs: boolean;
}

const log = getLogger(["vmq_sidecar", "pipeline"]);

/**
 * Routes frames to outputs.
 *
 * @example
 * ```ts
 * import { DELIVERED, Router } from "../internal.ts";
 * const seen: number[] = [];
 * const sink = { name: "count", send: async (b: { count: number }) => (seen.push(b.count), DELIVERED), close: async () => {} };
 * const p = new Router([{ sink }]);
 * p.dispatch([new Uint8Array(0)]); // an empty frame: counted, not forwarded
 * await p.close(1000);
 * ```
 */
export class Router implements RouterPort {
  /** Events received per hook (index into `HOOKS`). */
  readonly received: Float64Array = new Float64Array(HOOKS.length);
  /** Frame bytes received (the `Any` bytes, length prefixes included). */
  bytesReceived = 0;
  /** Zero-length frames (events the plugin could not encode). */
  emptyFrames = 0;
  /** Valid `Any` frames of an unknown `type_url` (not forwarded). */
  unknownType = 0;
  /** Frames that are not a valid `Any` (their connection is closed). */
  malformed = 0;
  #outputs: Output[];
  readonly #deliver: DeliveryFactory;
  readonly #ranges: EnvelopeRanges = { typeUrlStart: 0, typeUrlEnd: 0, valueStart: 0, valueEnd: 0 };
  #unknownLogged = 0;
  #latency: Histogram | undefined;
  #eventLatency: Histogram | undefined;
  /** The next event routed is the first of its read: note its broker time. */
  #firstOfRead = false;
  /** The budget of every output's in-memory queue together (`max_queued_bytes`), if any. */
  readonly #budget: MemoryBudget | undefined;
  /** Whether an output blocks when full (only then does a full budget pause readers). */
  #anyBlocking = false;
  /** The one wait for the budget to be half free, shared by every paused reader. */
  #budgetRoom: Promise<void> | undefined;
  /** Times readers were paused because the budget was full. */
  budgetWaits = 0;
  /** "paused for the budget" lines: at most one per 10 s, counting the pauses meanwhile. */
  readonly #budgetLines = new LineThrottle();

  /**
   * Creates the pipeline; `metrics` (optional) gets the pipeline's and outputs' metrics;
   * `deliver` makes each output's delivery (default: a generic {@linkcode Delivery}; the
   * application passes `deliveryOf` from outputs/local/local_delivery.ts, which gives file and
   * stdout sinks their fast path). `budget` (optional) is shared by every output's in-memory
   * buffer, now and after a reload: while it is full, blocking outputs pause the readers until
   * half of it is free (drop outputs drop beyond half of it; see `Delivery.overBudget`).
   */
  constructor(
    outputs: readonly OutputConfig[],
    metrics?: Metrics,
    deliver: DeliveryFactory = (sink, options) => new Delivery(sink, options),
    budget?: MemoryBudget,
  ) {
    this.#budget = budget;
    this.#deliver = budget ? (sink, options) => deliver(sink, { ...options, budget }) : deliver;
    this.#outputs = outputs.map((o) => outputOf(o, this.#deliver(o.sink, o.queue ?? {})));
    this.#anyBlocking = this.#outputs.some((o) => o.blocking);
    if (metrics) this.#registerMetrics(metrics);
  }

  /** The budget shared by the outputs' in-memory buffers, if any. */
  get budget(): MemoryBudget | undefined {
    return this.#budget;
  }

  /**
   * Replaces the outputs (config reload). Takes effect between two reads, never inside one:
   * {@linkcode Router.dispatch} sees the old or the new set. An output whose `sink` is
   * already in the pipeline keeps its queue and what it holds (its hooks and filter are
   * replaced; its queue options stay); other sinks get new queues. Returns the queues no
   * longer used, still holding their events: flush and close them.
   */
  reconfigure(outputs: readonly OutputConfig[]): Delivery[] {
    const old = new Map(this.#outputs.map((o) => [o.queue.sink, o]));
    const next = outputs.map((o) => {
      const kept = old.get(o.sink);
      old.delete(o.sink);
      if (kept) return outputOf(o, kept.queue);
      const queue = this.#deliver(o.sink, o.queue ?? {});
      this.#observe(queue);
      return outputOf(o, queue);
    });
    this.#outputs = next;
    this.#anyBlocking = next.some((o) => o.blocking);
    return [...old.values()].map((o) => o.queue);
  }

  /** The queues, in output order. */
  get queues(): Delivery[] {
    return this.#outputs.map((o) => o.queue);
  }

  /**
   * Routes the frames of one read. Returns {@linkcode DISPATCH_OK},
   * {@linkcode DISPATCH_BACKPRESSURE} or {@linkcode DISPATCH_MALFORMED} (frames after the bad
   * one are not taken). The queues copy what they keep: the frames may be reused afterwards.
   */
  dispatch(frames: readonly Uint8Array[]): number {
    let result = DISPATCH_OK;
    this.#firstOfRead = true;
    for (let i = 0; i < frames.length; i++) {
      const frame = frames[i];
      if (this.#route(frame, 0, frame.length, false) < 0) {
        result = DISPATCH_MALFORMED;
        break;
      }
    }
    return this.#kick(result);
  }

  /**
   * {@linkcode Router.dispatch} for the frames of one {@linkcode FrameSlab} (the hot path:
   * no per-frame objects).
   */
  dispatchSlab(slab: FrameSlab): number {
    const buf = slab.buf, starts = slab.starts, ends = slab.ends, n = slab.count;
    if (n > 0) warmCache(buf, starts[0] - 4, ends[n - 1]);
    let result = DISPATCH_OK;
    this.#firstOfRead = true;
    // Outputs that take frames as received get whole runs of consecutive events (length
    // prefixes included) in one piece; a skipped frame ends a run.
    let runStart = 0, runEnd = 0, runCount = 0;
    for (let i = 0; i < n; i++) {
      const start = starts[i], end = ends[i];
      const r = this.#route(buf, start, end, true);
      if (r > 0) {
        if (runCount++ === 0) runStart = start - 4;
        runEnd = end;
        continue;
      }
      if (runCount > 0) this.#run(buf, runStart, runEnd, runCount);
      runCount = 0;
      if (r < 0) {
        result = DISPATCH_MALFORMED;
        break;
      }
    }
    if (runCount > 0) this.#run(buf, runStart, runEnd, runCount);
    return this.#kick(result);
  }

  #run(buf: Uint8Array, start: number, end: number, count: number): void {
    const outputs = this.#outputs;
    for (let o = 0; o < outputs.length; o++) {
      const out = outputs[o];
      if (!out.runs) continue;
      out.port.pushRun(buf, start, end, count);
    }
  }

  /**
   * Routes the frame `buf[start, end)`: 1 an event, 0 skipped (empty or unknown type), -1 not
   * a valid `Any`. With `runs`, outputs that take runs are left to {@linkcode Router.#run}.
   */
  #route(buf: Uint8Array, start: number, end: number, runs: boolean): number {
    this.bytesReceived += end - start + 4;
    if (end === start) {
      this.emptyFrames++;
      return 0;
    }
    const ranges = this.#ranges;
    const hook = parseEnvelopeAt(buf, start, end, ranges);
    if (hook < 0) {
      if (hook === MALFORMED_ENVELOPE) {
        this.malformed++;
        return -1;
      }
      this.#unknown(buf, end - start);
      return 0;
    }
    this.received[hook]++;
    const outputs = this.#outputs;
    if (this.#firstOfRead) {
      this.#firstOfRead = false;
      const ms = eventTimeMs(buf, hook, ranges.valueStart, ranges.valueEnd);
      for (let o = 0; o < outputs.length; o++) outputs[o].port.noteEventTime(ms);
    }
    for (let o = 0; o < outputs.length; o++) {
      const out = outputs[o];
      if ((runs && out.runs) || out.hookMask[hook] === 0) continue;
      if (out.filter && !out.filter(buf.subarray(start, end), hook)) continue;
      out.port.pushAt(buf, start, end, hook, ranges.valueStart, ranges.valueEnd);
    }
    return 1;
  }

  #kick(result: number): number {
    const outputs = this.#outputs;
    for (let o = 0; o < outputs.length; o++) {
      const out = outputs[o];
      out.port.kick();
      if (out.blocking && out.port.full && result === DISPATCH_OK) result = DISPATCH_BACKPRESSURE;
    }
    if (result === DISPATCH_OK && this.#budgetFull) result = DISPATCH_BACKPRESSURE;
    return result;
  }

  /**
   * Whether readers must pause for the shared budget: it is full (or a paused reader's wait for
   * half of it is still pending) and an output blocks.
   */
  get #budgetFull(): boolean {
    const b = this.#budget;
    return b !== undefined && this.#anyBlocking && (b.full || this.#budgetRoom !== undefined);
  }

  /**
   * Whether a blocking output's queue is full, or the shared budget: readers should await
   * {@linkcode Router.writable}.
   */
  get blocked(): boolean {
    const outputs = this.#outputs;
    for (let o = 0; o < outputs.length; o++) {
      if (outputs[o].blocking && outputs[o].port.full) return true;
    }
    return this.#budgetFull;
  }

  /**
   * Resolves when every blocking queue has room again and, when the shared budget is full,
   * once half of it is free.
   */
  async writable(): Promise<void> {
    // Each queue once, as before; the outputs are re-read each round because a reload may
    // have removed (and closed) the queues not yet waited for.
    const waited = new Set<OutputPort>();
    for (;;) {
      const o = this.#outputs.find((o) => o.blocking && !waited.has(o.port) && o.port.congested);
      if (!o) break;
      waited.add(o.port);
      await o.port.writable();
    }
    const b = this.#budget;
    if (b === undefined || !this.#anyBlocking) return;
    if (this.#budgetRoom === undefined) {
      // Only a full budget pauses the readers (then until half is free): one congested output
      // while more than half is held is that output's own wait above, not everyone's.
      if (!b.full) return;
      this.budgetWaits++;
      this.#logBudgetWait(b);
      // One waiter in the budget for all readers, resolved (in order with any other waiter)
      // once half of it is free: the acknowledgements of the outputs' deliveries free it.
      const room = b.whenAvailable(b.capacity / 2).finally(() => {
        if (this.#budgetRoom === room) this.#budgetRoom = undefined;
      });
      this.#budgetRoom = room;
    }
    await this.#budgetRoom;
  }

  /** Logs a pause for the budget: at most one line per 10 s, counting the pauses not logged. */
  #logBudgetWait(b: MemoryBudget): void {
    const more = this.#budgetLines.take();
    if (more === undefined) return;
    log.warn(
      "plugin connections are not read until half of {budget} is free: the outputs' in-memory queues hold {held} of {capacity} bytes{more}",
      {
        budget: b.name,
        held: b.held,
        capacity: b.capacity,
        more: more > 0 ? `; ${more} more pauses since the last such line` : "",
      },
    );
  }

  /** Total events received (all hooks). */
  get totalReceived(): number {
    return this.received.reduce((a, b) => a + b, 0);
  }

  /** Flushes every queue (bounded by `timeoutMs`) and closes the sinks; false if any timed out. */
  async close(timeoutMs: number): Promise<boolean> {
    const flushed = await Promise.all(this.#outputs.map((o) => o.queue.flush(timeoutMs)));
    await Promise.all(this.#outputs.map((o) => o.queue.close()));
    return flushed.every(Boolean);
  }

  /** Reopens the sinks that support it (SIGHUP). */
  async reopen(): Promise<void> {
    await Promise.all(this.#outputs.map((o) => o.queue.sink.reopen?.()));
  }

  #observe(queue: Delivery): void {
    const latency = this.#latency, eventLatency = this.#eventLatency, label = [queue.sink.name];
    if (!latency || !eventLatency) return;
    latency.init(label); // exported at 0 before the first acknowledgement
    eventLatency.init(label);
    queue.onAck = (seconds, count, eventSeconds) => {
      latency.observe(label, seconds, count);
      if (eventSeconds === eventSeconds) eventLatency.observe(label, eventSeconds, count);
    };
  }

  #unknown(buf: Uint8Array, bytes: number): void {
    this.unknownType++;
    // Logged with a cap: a newer plugin sending a new hook must not flood the log.
    if (this.#unknownLogged++ < 10) {
      const r = this.#ranges;
      const typeUrl = new TextDecoder().decode(buf.subarray(r.typeUrlStart, r.typeUrlEnd));
      log.warn("skipping frame of unknown type_url {typeUrl} ({bytes} bytes){more}", {
        typeUrl,
        bytes,
        more: this.#unknownLogged === 10 ? "; further ones are only counted" : "",
      });
    }
  }

  #registerMetrics(m: Metrics): void {
    const events = m.counter(
      "vmq_sidecar_events_received_total",
      "Events received from the broker, by hook.",
      ["hook"],
    );
    const bytes = m.counter("vmq_sidecar_received_bytes_total", "Frame bytes received.");
    const rejected = m.counter(
      "vmq_sidecar_frames_rejected_total",
      "Frames not forwarded, by reason (empty, unknown_type, malformed_envelope; framing errors are in vmq_sidecar_connection_errors_total).",
      ["reason"],
    );
    const given = m.counter(
      "vmq_sidecar_output_events_received_total",
      "Events given to each output (its hooks and topics), dropped ones included: received = sent + dead_lettered + undecodable + lost + dropped + queued.",
      ["output"],
    );
    const sent = m.counter(
      "vmq_sidecar_output_events_sent_total",
      "Events each output's destination acknowledged; dead-lettered, undecodable and lost events are not in it.",
      ["output"],
    );
    const deadLettered = m.counter(
      "vmq_sidecar_output_events_dead_lettered_total",
      "Events an output's destination refused for good, appended to its dead-letter file.",
      ["output"],
    );
    const lost = m.counter(
      "vmq_sidecar_output_events_lost_total",
      "Events an output dropped because they could be neither delivered nor dead-lettered (reason dead_letter_failed: the dead-letter file could not be written).",
      ["output", "reason"],
    );
    const dropped = m.counter(
      "vmq_sidecar_output_events_dropped_total",
      "Events dropped because an output's queue was full (on_full=drop).",
      ["output"],
    );
    const errors = m.counter(
      "vmq_sidecar_output_errors_total",
      "Failed send attempts per output.",
      ["output"],
    );
    const retries = m.counter("vmq_sidecar_output_retries_total", "Send retries per output.", [
      "output",
    ]);
    const depth = m.gauge("vmq_sidecar_output_queue_events", "Events queued per output.", [
      "output",
    ]);
    const depthBytes = m.gauge("vmq_sidecar_output_queue_bytes", "Bytes queued per output.", [
      "output",
    ]);
    const buckets = [0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
    this.#latency = m.histogram(
      "vmq_sidecar_output_latency_seconds",
      "Time from receiving an event to its acknowledgement by the output (per batch, oldest event).",
      ["output"],
      buckets,
    );
    this.#eventLatency = m.histogram(
      "vmq_sidecar_event_latency_seconds",
      "Time from an event's broker timestamp to its acknowledgement by the output (per batch, the first event of its oldest read).",
      ["output"],
      buckets,
    );
    for (const o of this.#outputs) this.#observe(o.queue);
    const budget = this.#budget;
    if (budget) {
      const held = m.gauge(
        "vmq_sidecar_queued_bytes",
        "Bytes held by every output's in-memory queue together, counted against max_queued_bytes.",
      );
      const limit = m.gauge("vmq_sidecar_queued_limit_bytes", "max_queued_bytes.");
      const waits = m.counter(
        "vmq_sidecar_queued_budget_waits_total",
        "Times plugin connections stopped being read until half of max_queued_bytes was free.",
      );
      m.onCollect(() => {
        held.values.set("", budget.held);
        limit.values.set("", budget.capacity);
        waits.values.set("", this.budgetWaits);
      });
    }
    m.onCollect(() => {
      HOOKS.forEach((h, i) => events.values.set(h, this.received[i]));
      bytes.values.set("", this.bytesReceived);
      rejected.values.set("empty", this.emptyFrames);
      rejected.values.set("unknown_type", this.unknownType);
      rejected.values.set("malformed_envelope", this.malformed);
      depth.values.clear(); // gauges of outputs removed by a reload disappear
      depthBytes.values.clear();
      for (const o of this.#outputs) {
        const name = o.queue.sink.name, s = o.queue.stats;
        given.values.set(name, s.received);
        sent.values.set(name, s.sent);
        deadLettered.values.set(name, s.deadLettered);
        lost.values.set(`${name}\u0000dead_letter_failed`, s.lost);
        dropped.values.set(name, s.dropped);
        errors.values.set(name, s.errors);
        retries.values.set(name, s.retries);
        depth.values.set(name, o.queue.events);
        depthBytes.values.set(name, o.queue.bytes);
      }
    });
  }
}

function outputOf(o: OutputConfig, queue: Delivery): Output {
  const hookMask = new Uint8Array(HOOKS.length);
  HOOKS.forEach((h, i) => hookMask[i] = !o.hooks || o.hooks.has(h) ? 1 : 0);
  queue.selects(hookMask, o.filter);
  const port: OutputPort = queue.front ?? queue;
  return {
    port,
    queue,
    hookMask,
    filter: o.filter,
    blocking: port.blocking,
    runs: port.takesRuns && !o.filter && hookMask.every((m) => m === 1),
  };
}

/**
 * A running sidecar: outputs, pipeline and server wired from a {@linkcode SidecarConfig}.
 * The CLI is a thin shell around {@linkcode Sidecar.start} and {@linkcode Sidecar.stop}.
 *
 * @module
 */
import { getLogger } from "../_deps/logtape.ts";
import type { SidecarConfig } from "./config.ts";
import { StartupError } from "../errors.ts";
import { HOOKS } from "../schema/hooks.ts";
import { Metrics } from "./metrics.ts";
import type { Sink } from "../outputs/contract.ts";
import { type OutputConfig, Pipeline } from "../pipeline/router.ts";
import { SidecarServer, type SocketDiscards } from "../ingest/server.ts";
import type { OutputQueue } from "../pipeline/queue.ts";
import { deliveryOf } from "../outputs/local/local_delivery.ts";
import { factoryOf } from "../outputs/registry.ts";
import { topicFilter } from "../pipeline/topic_filter.ts";
import { permissionHint } from "../_permissions.ts";

const log = getLogger(["vmq_sidecar"]);

/** What a stopped sidecar did, for the one-line summary. */
export interface Summary {
  /** Events received by hook (only hooks with events). */
  events: Record<string, number>;
  /** Total events received. */
  total: number;
  /** Empty frames. */
  empty: number;
  /** Frames of unknown type. */
  unknownType: number;
  /** Frames that were not a valid Any. */
  malformed: number;
  /** Connection errors by reason. */
  connectionErrors: Record<string, number>;
  /** Events dropped by full queues, by output. */
  dropped: Record<string, number>;
  /** Events skipped as undecodable, by output. */
  undecodable: Record<string, number>;
  /** Events refused by their destination and appended to a dead-letter file, by output. */
  deadLettered: Record<string, number>;
  /** Outputs that could not be flushed within the grace period. */
  unflushed: string[];
  /** Events still queued at exit (not delivered), by output; only outputs with some. */
  unflushedEvents: Record<string, number>;
  /** What became of the events each output was given, by output (every output). */
  outputs: Record<string, OutputTally>;
  /** What the stop read from connections but did not deliver (see {@linkcode SocketDiscards}). */
  discarded: SocketDiscards;
  /** Whether the stop lost events: some unflushed, or bytes discarded from connections. */
  lostAtStop: boolean;
}

/**
 * One output's events: `given` = `sent` + `deadLettered` + `undecodable` + `lost` + `dropped` +
 * `unflushed` (at the end of a stop; while running, `unflushed` is what its queue holds).
 */
export interface OutputTally {
  /** Events the pipeline gave its queue. */
  given: number;
  /** Acknowledged by the destination. */
  sent: number;
  /** Refused by the destination and appended to its dead-letter file. */
  deadLettered: number;
  /** Neither delivered nor dead-lettered (the dead-letter file could not be written). */
  lost: number;
  /** Dropped because its queue was full (`on_full=drop`). */
  dropped: number;
  /** Still queued: not delivered. */
  unflushed: number;
  /** Skipped because the event inside the frame did not decode (JSON outputs). */
  undecodable: number;
}

/**
 * A running sidecar.
 *
 * @example
 * ```ts ignore
 * const sidecar = await Sidecar.start(config);
 * console.log(sidecar.addr);
 * const summary = await sidecar.stop();
 * ```
 */
export class Sidecar {
  /** Metrics of this sidecar. */
  readonly metrics: Metrics;
  /**
   * The pipeline (internal: the CLI wires admin and reload to it; not a stable API).
   * @ignore
   */
  readonly pipeline: Pipeline;
  /**
   * The plugin-facing server (internal, like {@linkcode Sidecar.pipeline}).
   * @ignore
   */
  readonly server: SidecarServer;
  /** The configuration it runs with. */
  readonly config: SidecarConfig;
  #stopping: Promise<Summary> | undefined;

  private constructor(
    config: SidecarConfig,
    metrics: Metrics,
    pipeline: Pipeline,
    server: SidecarServer,
  ) {
    this.config = config;
    this.metrics = metrics;
    this.pipeline = pipeline;
    this.server = server;
  }

  /** Creates the outputs, then listens. Throws {@linkcode StartupError} with what to do. */
  static async start(config: SidecarConfig, extraSinks: OutputConfig[] = []): Promise<Sidecar> {
    const metrics = new Metrics();
    const outputs: OutputConfig[] = [];
    const created: Sink[] = [];
    try {
      for (const [i, spec] of config.outputs.entries()) {
        const key = `output ${i + 1} (${spec.kind})`;
        let made;
        try {
          made = await factoryOf(spec, key).create(spec, key);
        } catch (e) {
          throw new StartupError(`cannot start ${key}: ${(e as Error).message}`, { cause: e });
        }
        created.push(made.sink);
        outputs.push({
          sink: made.sink,
          hooks: spec.hooks ? new Set(spec.hooks) : undefined,
          filter: spec.topics ? topicFilter(spec.topics) : undefined,
          queue: { ...made.queue, maxBytes: spec.queueBytes, onFull: spec.onFull },
        });
      }
      outputs.push(...extraSinks);
      const pipeline = new Pipeline(outputs, metrics, deliveryOf);
      const server = new SidecarServer(pipeline, {
        hostname: config.listen.hostname,
        port: config.listen.port,
        maxFrameBytes: config.maxFrameBytes,
        maxConnections: config.maxConnections,
        stallTimeoutMs: config.stallTimeoutMs,
        idleTimeoutMs: config.idleTimeoutMs,
        allowPeers: config.allowPeers,
      }, metrics);
      const where = `${config.listen.hostname}:${config.listen.port}`;
      try {
        server.listen();
      } catch (e) {
        if (e instanceof Deno.errors.AddrInUse) {
          throw new StartupError(
            `cannot listen on ${where}: address already in use (is another sidecar running? pick another --listen)`,
          );
        }
        throw new StartupError(
          `cannot listen on ${where}: ${(e as Error).message}${permissionHint(e, "net", where)}`,
        );
      }
      const sidecar = new Sidecar(config, metrics, pipeline, server);
      sidecar.#registerProcessMetrics();
      const addr = server.addr;
      log.info("listening on {addr}; outputs: {outputs}", {
        addr: `${addr.hostname}:${addr.port}`,
        outputs: outputs.map((o) => o.sink.name).join(", "),
      });
      return sidecar;
    } catch (e) {
      await Promise.all(created.map((s) => s.close().catch(() => {})));
      throw e;
    }
  }

  /** The address the plugin connects to. */
  get addr(): Deno.NetAddr {
    return this.server.addr;
  }

  /**
   * Graceful stop: stop accepting, read what peers already sent, flush every output (all
   * within `shutdownGraceMs` each), close. Idempotent.
   */
  stop(): Promise<Summary> {
    return this.#stopping ??= this.#stop();
  }

  async #stop(): Promise<Summary> {
    const grace = this.config.shutdownGraceMs;
    log.info("shutting down: reading what connected peers sent, then flushing outputs");
    // Every reader has ended when this resolves: nothing is dispatched after it, so each
    // queue's flush below covers every event that was read.
    await this.server.shutdown(grace);
    await Promise.all(this.pipeline.queues.map((q) => q.flush(grace)));
    await this.pipeline.close(0);
    return this.summary();
  }

  /**
   * The current counters as a {@linkcode Summary}: after a stop, outputs whose queue still
   * holds events are `unflushed` (`names` replaces that list when given).
   */
  summary(names?: string[]): Summary {
    const p = this.pipeline;
    const outputs: Record<string, OutputTally> = {};
    for (const q of p.queues) outputs[q.sink.name] = tallyOf(q);
    const unflushedEvents = nonZero(
      Object.entries(outputs).map(([name, t]) => [name, t.unflushed]),
    );
    const discarded = { ...this.server.discarded };
    const events: Record<string, number> = {};
    HOOKS.forEach((h, i) => {
      if (p.received[i] > 0) events[h] = p.received[i];
    });
    return {
      events,
      total: p.totalReceived,
      empty: p.emptyFrames,
      unknownType: p.unknownType,
      malformed: p.malformed,
      connectionErrors: Object.fromEntries(this.server.connectionErrors),
      dropped: nonZero(p.queues.map((q) => [q.sink.name, q.stats.dropped])),
      undecodable: nonZero(
        p.queues.map((q) => [q.sink.name, q.stats.undecodable]),
      ),
      deadLettered: nonZero(
        p.queues.map((q) => [q.sink.name, q.stats.deadLettered]),
      ),
      unflushed: names ?? Object.keys(unflushedEvents),
      unflushedEvents,
      outputs,
      discarded,
      lostAtStop: Object.keys(unflushedEvents).length > 0 || discarded.connections > 0,
    };
  }

  #registerProcessMetrics(): void {
    const m = this.metrics;
    const rss = m.gauge("vmq_sidecar_process_resident_memory_bytes", "Resident set size.");
    const heap = m.gauge("vmq_sidecar_process_heap_used_bytes", "V8 heap in use.");
    const undecodable = m.counter(
      "vmq_sidecar_output_events_undecodable_total",
      "Events an output skipped because the event inside the frame did not decode.",
      ["output"],
    );
    m.onCollect(() => {
      const mem = Deno.memoryUsage();
      rss.values.set("", mem.rss);
      heap.values.set("", mem.heapUsed);
      for (const q of this.pipeline.queues) {
        undecodable.values.set(q.sink.name, q.stats.undecodable);
      }
    });
  }
}

function nonZero(entries: [string, number][]): Record<string, number> {
  return Object.fromEntries(entries.filter(([, n]) => n > 0));
}

function tallyOf(q: OutputQueue): OutputTally {
  const st = q.stats;
  return {
    given: st.received,
    sent: st.sent,
    deadLettered: st.deadLettered,
    lost: st.lost,
    dropped: st.dropped,
    unflushed: q.events,
    undecodable: st.undecodable,
  };
}

/** The exit code of a stop: 0 when nothing was lost, 1 otherwise. */
export function exitCodeOf(s: Summary): number {
  return s.lostAtStop ? 1 : 0;
}

/**
 * What a stop lost, as one line (empty when nothing): events still queued, by output, and
 * what was discarded from the connections cut at the grace deadline.
 */
export function formatLost(s: Summary): string {
  const parts: string[] = [];
  for (const [name, n] of Object.entries(s.unflushedEvents)) {
    parts.push(`${name}: ${n} events not flushed`);
  }
  const d = s.discarded;
  if (d.connections > 0) {
    parts.push(
      `${d.connections} connections cut at the grace deadline: ${d.bytes} bytes not delivered` +
        ` (${d.frames} whole frames)` + (d.stillSending > 0
          ? `; ${d.stillSending} of them were still sending when closed: what they sent after` +
            ` is not counted`
          : ""),
    );
  }
  return parts.length ? `events lost at stop: ${parts.join("; ")}` : "";
}

/** Renders a summary as one line. */
export function formatSummary(s: Summary): string {
  const kv = (o: Record<string, number>) =>
    Object.keys(o).length ? Object.entries(o).map(([k, v]) => `${k}=${v}`).join(" ") : "none";
  return `vmq-sidecar: stopped: ${s.total} events (${kv(s.events)}); empty frames ${s.empty};` +
    ` unknown type ${s.unknownType}; malformed ${s.malformed}; connection errors: ${
      kv(s.connectionErrors)
    };` +
    ` dropped: ${kv(s.dropped)}; undecodable: ${kv(s.undecodable)}; dead-lettered: ${
      kv(s.deadLettered)
    }; unflushed outputs: ${kv(s.unflushedEvents)}; outputs: ${
      Object.entries(s.outputs).map(([name, t]) =>
        `${name} given=${t.given} sent=${t.sent} dead-lettered=${t.deadLettered}` +
        ` lost=${t.lost} dropped=${t.dropped} unflushed=${t.unflushed}` +
        ` undecodable=${t.undecodable}`
      ).join(", ") || "none"
    }; discarded at the grace deadline: ${
      s.discarded.connections
        ? `connections=${s.discarded.connections} bytes=${s.discarded.bytes} frames=${s.discarded.frames} still-sending=${s.discarded.stillSending}`
        : "none"
    }`;
}

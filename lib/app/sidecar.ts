/**
 * The whole application as a library: {@linkcode Sidecar.start} starts the outputs, the
 * router, the plugin listener, the admin endpoints (`/metrics`, `/healthz`, `/readyz`),
 * readiness, reload and logging from a {@linkcode SidecarConfig}; {@linkcode Sidecar.stop}
 * stops it gracefully and returns what it did. The command line (`lib/app/main.ts`) parses
 * flags, installs signal handlers and calls these; nothing else.
 *
 * @module
 */
import { getLogger } from "../_deps/logtape.ts";
import type { SidecarConfig } from "./config.ts";
import type { EffectiveConfig } from "./config_file.ts";
import { ConfigError, StartupError } from "../errors.ts";
import { HOOKS } from "../schema/hooks.ts";
import { Metrics } from "./metrics.ts";
import type { Sink } from "../outputs/contract.ts";
import { type OutputConfig, Router } from "../pipeline/router.ts";
import { IngestServer, type SocketDiscards } from "../ingest/server.ts";
import type { Delivery } from "../pipeline/delivery.ts";
import type { Handler } from "../handlers/handler.ts";
import {
  HandlerDelivery,
  registerHandlerMetrics,
  registerReorderMetrics,
} from "../handlers/handler_delivery.ts";
import { orderedDeliveries } from "../handlers/ordered_front.ts";
import { orderedJournalReader } from "../handlers/ordered_journal.ts";
import {
  deliveryWithHandlers,
  type HandlerBuffer,
  type HandlerBufferFactory,
  handlerOutputs,
  openHandlerJournals,
} from "./handler_outputs.ts";
import type { DiskJournal } from "../pipeline/disk_journal.ts";
import { JournalPort } from "../pipeline/journal_delivery.ts";
import { JournalDirError } from "../pipeline/disk_journal.ts";
import { DEFAULT_DATA_DIR, SETTINGS } from "./settings.ts";
import { MemoryBudget } from "../memory_budget.ts";
import { factoryOf } from "../outputs/registry.ts";
import { orderQueueOptions } from "../outputs/options.ts";
import { topicFilter } from "../pipeline/topic_filter.ts";
import { permissionHint } from "../_permissions.ts";
import { AdminServer, type Readiness, readiness, registerAdminMetrics } from "./admin.ts";
import { configureLogging } from "./log.ts";
import { preflight } from "./preflight.ts";
import { installProcessGuard, registerProcessGuardMetrics } from "./_process_guard.ts";
import { ConfigReloader } from "./reload.ts";
import { VERSION } from "./version.ts";

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

/** Options of {@linkcode Sidecar.start}. */
export interface SidecarOptions {
  /** What to run: listeners, limits, outputs (e.g. from `loadConfig()`, or written by hand). */
  readonly config: SidecarConfig;
  /**
   * What an admin listener (`config.admin`) that cannot listen does: `"required"` (the default)
   * fails the start with a {@linkcode StartupError}; `"optional"` logs a warning and runs
   * without the admin endpoints (the command line's rule for the default address: relaying
   * events matters more than metrics).
   */
  readonly admin?: "required" | "optional";
  /**
   * What {@linkcode Sidecar.reload} re-reads when called without a configuration (the command
   * line passes: read the `--config` file again, apply the flags over it). It may throw
   * `ConfigError`: the reload then fails and changes nothing. Given, the reload metrics
   * (`vmq_sidecar_config_reloads_total`, …) are exported from the start.
   */
  readonly reloadFrom?: () => SidecarConfig | EffectiveConfig;
  /** How reload log lines name where `reloadFrom` reads (e.g. the config file's path). */
  readonly reloadSource?: string;
  /**
   * Where each of `config.outputs` was configured, for the problems the start-time file checks
   * report (default `output N (KIND)`); the command line passes `FILE:LINE: outputs[N]` or
   * `--out "URL"`, as `check-config` reports them.
   */
  readonly outputSources?: readonly string[];
  /**
   * Whether to route the `vmq_sidecar` log categories to stderr at `config.logLevel` in
   * `config.logFormat` (default true). Pass false when the application configures LogTape
   * itself: this resets LogTape's configuration.
   */
  readonly configureLogging?: boolean;
  /**
   * Whether to install the process guard (default false): process-wide handlers that log,
   * count (`vmq_sidecar_unhandled_errors_total`) and survive unhandled promise rejections and
   * uncaught errors. The command line installs it; in an application that is its own choice.
   */
  readonly processGuard?: boolean;
  /**
   * Your own code, each an output like the others (behind its own buffer, with its counters on
   * `/metrics` by `output` name): see `defineHandler`. Kept as they are by {@linkcode
   * Sidecar.reload} (they are code, not configuration).
   */
  readonly handlers?: readonly Handler[];
  /**
   * The buffer of each handler: `"disk"` (the default) a disk journal per handler in
   * `<config.dataDir>/handlers/NAME` (at-least-once across crashes: what a handler had not
   * settled is handled after a restart), `"memory"` a memory buffer of the handler's
   * `bufferBytes` (lost on a crash), or a factory of the buffer by handler name.
   */
  readonly handlerBuffer?: HandlerBuffer;
}

/**
 * A running sidecar: the whole application (what the `vmq-sidecar` command runs), started
 * from code.
 *
 * @example Start from code, add a metric of your own to `/metrics`, reload, stop
 * ```ts
 * import { Sidecar, type SidecarConfig } from "../mod.ts";
 *
 * const config: SidecarConfig = {
 *   listen: { hostname: "127.0.0.1", port: 0 }, // 0: any free port
 *   admin: { hostname: "127.0.0.1", port: 0 },
 *   maxFrameBytes: 64 << 20,
 *   maxConnections: 10_000,
 *   maxBufferedBytes: 256 << 20,
 *   stallTimeoutMs: 30_000,
 *   idleTimeoutMs: 0,
 *   allowPeers: ["127.0.0.0/8", "::1/128"],
 *   logLevel: "warning",
 *   logFormat: "text",
 *   shutdownGraceMs: 5_000,
 *   outputs: [{
 *     kind: "stdout", target: "stdout", format: "json", payload: "base64",
 *     hooks: null, topics: null, queueBytes: 16 << 20, onFull: "block", options: {},
 *   }],
 * };
 * const sidecar = await Sidecar.start({ config });
 * sidecar.metrics.counter("app_starts_total", "Sidecars this app started.").inc();
 * console.log(sidecar.addr.port, sidecar.adminAddr?.port, sidecar.readiness().ready);
 * // A new configuration without a restart: the output now gets on_publish events only.
 * const hooks: ["on_publish"] = ["on_publish"];
 * const applied = await sidecar.reload({
 *   ...config,
 *   outputs: config.outputs.map((o) => ({ ...o, hooks })),
 * });
 * console.log(applied, sidecar.config.outputs[0].hooks); // true [ "on_publish" ]
 * const summary = await sidecar.stop();
 * console.log(summary.total);
 * ```
 */
export class Sidecar {
  /**
   * Metrics of this sidecar, rendered by `/metrics`: register your own counters, gauges and
   * histograms here.
   */
  readonly metrics: Metrics;
  /**
   * The pipeline (internal: not a stable API).
   * @ignore
   */
  readonly pipeline: Router;
  /**
   * The plugin-facing server (internal, like {@linkcode Sidecar.pipeline}).
   * @ignore
   */
  readonly server: IngestServer;
  readonly #started: SidecarConfig;
  readonly #options: SidecarOptions;
  readonly #admin: AdminServer | undefined;
  #reloader: ConfigReloader | undefined;
  #handlerOutputs: OutputConfig[] = [];
  #accepting = false;
  #stopping: Promise<Summary> | undefined;

  private constructor(
    options: SidecarOptions,
    metrics: Metrics,
    pipeline: Router,
    server: IngestServer,
    admin: AdminServer | undefined,
  ) {
    this.#options = options;
    this.#started = options.config;
    this.metrics = metrics;
    this.pipeline = pipeline;
    this.server = server;
    this.#admin = admin;
  }

  /**
   * Starts everything, in this order: logging, the checks of the files outputs write, the
   * admin listener (so that an admin address in use fails before the plugin port ever
   * accepts), the outputs, then the plugin listener. Throws {@linkcode StartupError} saying
   * what to do (one line per problem); what was started is closed again.
   */
  static async start(options: SidecarOptions): Promise<Sidecar> {
    const config = options.config;
    if (options.configureLogging ?? true) configureLogging(config.logLevel, config.logFormat);
    const sources = options.outputSources ?? config.outputs.map(defaultName);
    if (sources.length !== config.outputs.length) {
      throw new TypeError(
        `outputSources names ${sources.length} outputs; config.outputs has ${config.outputs.length}`,
      );
    }
    const problems = preflight(config.outputs.map((spec, i) => ({ spec, source: sources[i] })));
    if (problems.length) {
      throw new StartupError(problems.map((p) => `${p.source}: ${p.message}`).join("\n"));
    }
    if (options.processGuard) installProcessGuard();
    const metrics = new Metrics();
    let sidecar: Sidecar | undefined;
    const ready = (): Readiness =>
      sidecar ? sidecar.readiness() : { ready: false, reasons: ["starting"] };
    let admin: AdminServer | undefined;
    if (config.admin) {
      try {
        admin = AdminServer.start({ ...config.admin, metrics, readiness: ready });
      } catch (e) {
        if (!(e instanceof StartupError) || (options.admin ?? "required") === "required") throw e;
        log.warn("{error}; running without admin endpoints", { error: e.message });
      }
    }
    const outputs: OutputConfig[] = [];
    const created: Sink[] = [];
    // The one journal of the buffer=disk network outputs, opened (and replayed) before any
    // output or listener starts: a data directory that cannot be used fails the start.
    const journals = new JournalPort({
      dir: `${config.dataDir ?? DEFAULT_DATA_DIR}/journal`,
      fsync: config.fsync,
      fsyncMs: config.fsyncMs,
    });
    journals.registerMetrics(metrics);
    let handlerJournals: Map<string, DiskJournal> | undefined;
    try {
      const handlerBuffer = options.handlerBuffer ?? "disk";
      let bufferOf: HandlerBufferFactory | undefined;
      if (typeof handlerBuffer === "function") bufferOf = handlerBuffer;
      else if (handlerBuffer === "disk" && (options.handlers?.length ?? 0) > 0) {
        try {
          handlerJournals = openHandlerJournals(
            options.handlers!,
            config.dataDir ?? DEFAULT_DATA_DIR,
            config,
          );
        } catch (e) {
          if (!(e instanceof JournalDirError)) throw e;
          throw new StartupError(
            `${e.message} (the handlers' journal; or pass handlerBuffer: "memory")`,
            { cause: e },
          );
        }
        const opened = handlerJournals;
        bufferOf = (name) => opened.get(name)!;
      }
      if (config.outputs.some((o) => o.options.buffer === "disk")) {
        try {
          journals.open();
        } catch (e) {
          if (!(e instanceof JournalDirError)) throw e;
          throw new StartupError(e.message, { cause: e });
        }
      }
      for (const [i, spec] of config.outputs.entries()) {
        const key = defaultName(spec, i);
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
          queue: {
            ...made.queue,
            maxBytes: spec.queueBytes,
            onFull: spec.onFull,
            ...orderQueueOptions(spec.options),
          },
        });
      }
      const handlers = handlerOutputs(options.handlers ?? []);
      outputs.push(...handlers);
      // One budget for what every in-memory output buffer holds (a reload keeps it).
      const queued = new MemoryBudget({
        capacity: config.maxQueuedBytes ?? SETTINGS.maxQueuedBytes.default,
        name: "--max-queued-bytes",
      });
      const pipeline = new Router(
        outputs,
        metrics,
        orderedDeliveries(journals.factory(deliveryWithHandlers(bufferOf), orderedJournalReader)),
        queued,
      );
      journals.forgetUnclaimed();
      const server = new IngestServer(pipeline, {
        hostname: config.listen.hostname,
        port: config.listen.port,
        maxFrameBytes: config.maxFrameBytes,
        maxConnections: config.maxConnections,
        maxBufferedBytes: config.maxBufferedBytes,
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
      sidecar = new Sidecar(options, metrics, pipeline, server, admin);
      sidecar.#registerProcessMetrics();
      if (options.processGuard) registerProcessGuardMetrics(metrics);
      if (config.admin) registerAdminMetrics(metrics, VERSION, pipeline, ready);
      sidecar.#handlerOutputs = handlers;
      if (handlers.length > 0) {
        registerHandlerMetrics(
          metrics,
          () => pipeline.queues.filter((q) => q instanceof HandlerDelivery),
        );
      }
      if (handlers.length > 0 || config.outputs.some((o) => o.options.order === "client")) {
        registerReorderMetrics(metrics, () => pipeline.queues);
      }
      if (options.reloadFrom) {
        sidecar.#reloader = new ConfigReloader(pipeline, config, metrics, handlers);
      }
      sidecar.#accepting = true;
      const addr = server.addr;
      log.info("listening on {addr}; outputs: {outputs}", {
        addr: `${addr.hostname}:${addr.port}`,
        outputs: outputs.map((o) => o.sink.name).join(", "),
      });
      return sidecar;
    } catch (e) {
      await Promise.all(created.map((s) => s.close().catch(() => {})));
      await journals.close().catch(() => {});
      for (const j of handlerJournals?.values() ?? []) await j.close().catch(() => {});
      await admin?.close();
      throw e;
    }
  }

  /** The address the plugin connects to. */
  get addr(): Deno.NetAddr {
    return this.server.addr;
  }

  /** The admin listener's address; undefined when off (or optional and it could not listen). */
  get adminAddr(): Deno.NetAddr | undefined {
    return this.#admin?.addr;
  }

  /** The configuration in force (the last one a reload applied; restart-only keys as started). */
  get config(): SidecarConfig {
    return this.#reloader?.config ?? this.#started;
  }

  /**
   * What `/readyz` answers: accepting plugin connections (not starting, stopping or backing
   * off), and every output connected, not failing, and its queue below 90 % of its size.
   */
  readiness(): Readiness {
    return readiness(this.pipeline, this.#accepting, this.server.acceptBackoff);
  }

  /**
   * Applies a new configuration without a restart: `next`, or what the `reloadFrom` option
   * reads. Outputs whose destination and encoding did not change keep their queue and
   * connection (their hooks and topics change in place); new ones are created before anything
   * changes; removed ones are flushed and closed. Resolves true when applied; false when the
   * configuration is invalid or an output cannot start (logged and counted; nothing changed),
   * or when the sidecar is stopping (whatever `reloadFrom` throws counts as invalid). Calls are
   * serialized. Rejects when there is nothing to re-read (no `next`, no `reloadFrom`).
   */
  reload(next?: SidecarConfig | EffectiveConfig): Promise<boolean> {
    if (this.#stopping) {
      log.info("reload while stopping: ignored");
      return Promise.resolve(false);
    }
    const from = next ? () => next : this.#options.reloadFrom;
    if (!from) {
      return Promise.reject(
        new TypeError(
          "reload(): nothing to re-read: give it the new configuration, or pass reloadFrom to Sidecar.start",
        ),
      );
    }
    const source = next
      ? ("file" in next && next.file) || "reload(config)"
      : this.#options.reloadSource ?? "reloadFrom()";
    this.#reloader ??= new ConfigReloader(
      this.pipeline,
      this.#started,
      this.metrics,
      this.#handlerOutputs,
    );
    return this.#reloader.reload(() => {
      try {
        return effectiveOf(from());
      } catch (e) {
        // Whatever reloadFrom throws fails this reload (logged, counted), not the caller.
        if (e instanceof ConfigError) throw e;
        throw new ConfigError(source, `cannot read the new configuration: ${String(e)}`);
      }
    }, source);
  }

  /** Reopens the output files (after logrotate moved them: what SIGHUP does). */
  async reopen(): Promise<void> {
    if (this.#stopping) return;
    await this.pipeline.reopen();
  }

  /**
   * Graceful stop: stop accepting, let a running reload finish, read what peers already sent,
   * flush every output (all within `shutdownGraceMs` each), close the outputs and the admin
   * listener. Idempotent: every call returns the same summary.
   */
  stop(): Promise<Summary> {
    return this.#stopping ??= this.#stop();
  }

  /** The same as {@linkcode Sidecar.stop}. */
  close(): Promise<Summary> {
    return this.stop();
  }

  /** Stops the sidecar (`await using sidecar = await Sidecar.start(…)`). */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }

  async #stop(): Promise<Summary> {
    this.#accepting = false;
    // A reload now would create sinks and retire queues that the stop waits for neither.
    await this.#reloader?.idle();
    const grace = this.config.shutdownGraceMs;
    log.info("shutting down: reading what connected peers sent, then flushing outputs");
    // Every reader has ended when this resolves: nothing is dispatched after it, so each
    // queue's flush below covers every event that was read.
    await this.server.shutdown(grace);
    await Promise.all(this.pipeline.queues.map((q) => q.flush(grace)));
    await this.pipeline.close(0);
    const summary = withRetired(this.summary(), this.#reloader?.retiredUnflushed ?? {});
    await this.#admin?.close();
    return summary;
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

function tallyOf(q: Delivery): OutputTally {
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

/** How messages name an output by default: `output 1 (file)`. */
function defaultName(spec: { kind: string }, i: number): string {
  return `output ${i + 1} (${spec.kind})`;
}

/** `c` as an effective configuration (a plain {@linkcode SidecarConfig}: every output enabled). */
function effectiveOf(c: SidecarConfig | EffectiveConfig): EffectiveConfig {
  if ("config" in c) return c;
  return {
    config: c,
    outputs: c.outputs.map((spec, i) => ({
      spec,
      enabled: true,
      fromEnv: {},
      url: spec.target,
      source: defaultName(spec, i),
    })),
    hooks: null,
    file: null,
  };
}

/** `s` with the events that outputs removed by a reload still held counted as unflushed (lost). */
function withRetired(s: Summary, retired: Record<string, number>): Summary {
  const names = Object.keys(retired);
  if (names.length === 0) return s;
  return {
    ...s,
    unflushed: [...s.unflushed, ...names],
    unflushedEvents: { ...s.unflushedEvents, ...retired },
    lostAtStop: true,
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

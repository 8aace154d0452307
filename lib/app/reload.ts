/**
 * Config reload (SIGHUP): the new file is read and validated first; its outputs are created
 * before anything changes; then the pipeline swaps its outputs between two reads. Outputs
 * whose destination and encoding did not change keep their queue and connection (only their
 * hooks and topic filters change); removed or disabled ones are flushed and closed. A bad
 * new config changes nothing and is logged.
 *
 * @module
 */
import { getLogger } from "../_deps/logtape.ts";
import type { EffectiveConfig } from "./config_file.ts";
import { keepRestartOnly, restartOnlyChanges } from "./settings.ts";
import type { SidecarConfig } from "./config.ts";
import type { OutputSpec } from "../outputs/output_spec.ts";
import { ConfigError } from "../errors.ts";
import { configureLogging } from "./log.ts";
import type { Metrics } from "./metrics.ts";
import type { Sink } from "../outputs/contract.ts";
import type { OutputConfig, Router } from "../pipeline/router.ts";
import { preflight } from "./preflight.ts";
import type { Delivery } from "../pipeline/delivery.ts";
import { factoryOf } from "../outputs/registry.ts";
import { orderQueueOptions } from "../outputs/options.ts";
import { topicFilter } from "../pipeline/topic_filter.ts";
import { registerReorderMetrics } from "../handlers/handler_delivery.ts";

const log = getLogger(["vmq_sidecar", "reload"]);

interface Running {
  spec: OutputSpec;
  identity: string;
  sink: Sink;
}

/** What makes two outputs the same running output: all but hooks and topics. */
function identityOf(s: OutputSpec): string {
  const options = Object.fromEntries(Object.entries(s.options).sort(([a], [b]) => a < b ? -1 : 1));
  return JSON.stringify([s.kind, s.target, s.format, s.payload, s.queueBytes, s.onFull, options]);
}

function outputConfig(spec: OutputSpec, sink: Sink, queue: Record<string, unknown>): OutputConfig {
  return {
    sink,
    hooks: spec.hooks ? new Set(spec.hooks) : undefined,
    filter: spec.topics ? topicFilter(spec.topics) : undefined,
    queue: {
      ...queue,
      maxBytes: spec.queueBytes,
      onFull: spec.onFull,
      ...orderQueueOptions(spec.options),
    },
  };
}

/**
 * Applies new configurations to a running pipeline, one at a time.
 *
 * @example
 * ```ts ignore
 * const reloader = new ConfigReloader(sidecar.pipeline, sidecar.config, sidecar.metrics);
 * await reloader.reload(() => resolveConfig(flags, readConfigFile(path)), path);
 * ```
 */
export class ConfigReloader {
  readonly #pipeline: Router;
  readonly #metrics: Metrics;
  /** Outputs every configuration keeps (handlers: code, not configuration). */
  readonly #fixed: readonly OutputConfig[];
  #config: SidecarConfig;
  #running: Running[];
  #busy: Promise<unknown> = Promise.resolve();
  #retiring = new Set<Promise<void>>();
  readonly #reloads;
  readonly #lastOk;
  readonly #lastOkTime;

  /**
   * Starts from the running `config`, whose outputs are the pipeline's queues in order (as
   * `Sidecar.start` builds them).
   */
  constructor(
    pipeline: Router,
    config: SidecarConfig,
    metrics: Metrics,
    fixed: readonly OutputConfig[] = [],
  ) {
    this.#fixed = fixed;
    this.#metrics = metrics;
    this.#pipeline = pipeline;
    this.#config = config;
    const queues = pipeline.queues;
    this.#running = config.outputs.map((spec, i) => ({
      spec,
      identity: identityOf(spec),
      sink: queues[i].sink,
    }));
    this.#reloads = metrics.counter(
      "vmq_sidecar_config_reloads_total",
      "Config reloads (SIGHUP), by result (success, failure).",
      ["result"],
    );
    this.#reloads.inc(["success"], 0);
    this.#reloads.inc(["failure"], 0);
    this.#lastOk = metrics.gauge(
      "vmq_sidecar_config_last_reload_successful",
      "1 when the last reload succeeded (or none was tried), 0 when it failed.",
    );
    this.#lastOk.set([], 1);
    this.#lastOkTime = metrics.gauge(
      "vmq_sidecar_config_last_reload_success_timestamp_seconds",
      "When the configuration in force was loaded, in Unix seconds.",
    );
    this.#lastOkTime.set([], Date.now() / 1000);
  }

  /** The configuration in force. */
  get config(): SidecarConfig {
    return this.#config;
  }

  /**
   * Loads a new configuration with `load` (which throws {@linkcode ConfigError} when invalid)
   * and applies it; resolves true when applied. Calls are serialized.
   */
  reload(load: () => EffectiveConfig, source: string): Promise<boolean> {
    const run = this.#busy.then(() => this.#reload(load, source));
    this.#busy = run.catch(() => {});
    return run;
  }

  /** Events that outputs removed by a reload held when closed, by output (lost). */
  readonly retiredUnflushed: Record<string, number> = {};

  /** Resolves once no reload runs and every removed output is flushed and closed. */
  async idle(): Promise<void> {
    await this.#busy;
    await Promise.all(this.#retiring);
  }

  async #reload(load: () => EffectiveConfig, source: string): Promise<boolean> {
    let next: EffectiveConfig;
    try {
      next = load();
    } catch (e) {
      if (!(e instanceof ConfigError)) throw e;
      return this.#failed(`${e.message}`);
    }
    // The checks start makes (files the outputs write): a problem fails the reload.
    const problems = preflight(next.outputs.filter((o) => o.enabled));
    if (problems.length > 0) {
      return this.#failed(problems.map((p) => `${p.source}: ${p.message}`).join("; "));
    }
    const config = next.config;
    // Reuse what runs unchanged; create the rest before touching anything.
    const free = [...this.#running];
    const created: Sink[] = [];
    const running: Running[] = [];
    const outputs: OutputConfig[] = [];
    for (const [i, spec] of config.outputs.entries()) {
      const identity = identityOf(spec);
      const same = free.findIndex((r) => r.identity === identity);
      if (same >= 0) {
        const [r] = free.splice(same, 1);
        running.push({ spec, identity, sink: r.sink });
        outputs.push(outputConfig(spec, r.sink, {}));
        continue;
      }
      const key = `output ${i + 1} (${spec.kind})`;
      try {
        const made = await factoryOf(spec, key).create(spec, key);
        created.push(made.sink);
        running.push({ spec, identity, sink: made.sink });
        outputs.push(outputConfig(spec, made.sink, made.queue));
      } catch (e) {
        await Promise.all(created.map((s) => s.close().catch(() => {})));
        return this.#failed(`cannot start ${key}: ${(e as Error).message}`);
      }
    }
    const before = new Map(this.#running.map((r) => [r.sink, r.spec]));
    const removed = this.#pipeline.reconfigure([...outputs, ...this.#fixed]);
    const previous = this.#config;
    this.#running = running;
    this.#config = config;
    if (previous.logLevel !== config.logLevel || previous.logFormat !== config.logFormat) {
      configureLogging(config.logLevel, config.logFormat);
    }
    this.#retire(removed, previous.shutdownGraceMs);
    // An output with order=client may be the first one: its vmq_sidecar_reorder_* (once).
    if (config.outputs.some((o) => o.options.order === "client")) {
      registerReorderMetrics(this.#metrics, () => this.#pipeline.queues);
    }
    this.#reloads.inc(["success"]);
    this.#lastOk.set([], 1);
    this.#lastOkTime.set([], Date.now() / 1000);
    const changedHooks = running.filter((r) => {
      const old = before.get(r.sink);
      return old && (String(old.hooks) !== String(r.spec.hooks) ||
        String(old.topics) !== String(r.spec.topics));
    });
    log.info(
      "config reloaded from {source}: outputs {outputs}; added {added}; removed {removed}; hooks or topics changed {changed}",
      {
        source,
        outputs: running.map((r) => r.sink.name).join(", "),
        added: created.map((s) => s.name).join(", ") || "none",
        removed: removed.map((q) => q.sink.name).join(", ") || "none",
        changed: changedHooks.map((r) => r.sink.name).join(", ") || "none",
      },
    );
    const restart = restartOnlyChanges(previous, config);
    if (restart.length) {
      log.warn("config reload: {keys} changed; this takes effect only after a restart", {
        keys: restart.join(", "),
      });
      // The running values stay in force (and are what the next reload compares with).
      this.#config = keepRestartOnly(config, previous);
    }
    return true;
  }

  #failed(why: string): boolean {
    this.#reloads.inc(["failure"]);
    this.#lastOk.set([], 0);
    log.error("config reload failed, the running configuration stays in force: {error}", {
      error: why,
    });
    return false;
  }

  #retire(queues: Delivery[], graceMs: number): void {
    for (const q of queues) {
      const done = (async () => {
        const flushed = await q.flush(graceMs);
        if (!flushed) {
          log.warn("removed output {output}: {events} events not flushed within {ms} ms", {
            output: q.sink.name,
            events: q.events,
            ms: graceMs,
          });
        }
        await q.close().catch((e) =>
          log.error("closing removed output {output} failed: {error}", {
            output: q.sink.name,
            error: String(e),
          })
        );
        if (q.events > 0) {
          const key = `${q.sink.name} (removed by a reload)`;
          this.retiredUnflushed[key] = (this.retiredUnflushed[key] ?? 0) + q.events;
        }
      })();
      this.#retiring.add(done);
      done.finally(() => this.#retiring.delete(done));
    }
  }
}

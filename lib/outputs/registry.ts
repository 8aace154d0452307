/**
 * Output factories: turn an {@linkcode OutputSpec} into a {@linkcode Sink} and its queue
 * settings. `validate` checks kind-specific options without connecting (for check-config).
 *
 * @module
 */
import type { OutputKind, OutputSpec } from "../app/config.ts";
import { ConfigError } from "../errors.ts";
import type { Sink } from "./contract.ts";
import type { QueueOptions } from "../pipeline/queue.ts";
import { parseIntIn, parseSize } from "../app/config.ts";
import { FileSink, StdoutSink } from "./file/sink.ts";
import { httpFactory } from "./http/sink.ts";
import { natsFactory } from "./nats/sink.ts";
import { redisFactory } from "./redis/sink.ts";

/** A created output. */
export interface CreatedSink {
  /** The sink. */
  sink: Sink;
  /** Queue settings the kind wants (batching, linger). */
  queue: Partial<QueueOptions>;
}

/** One output kind's factory. */
export interface SinkFactory {
  /** Checks kind-specific options; throws ConfigError. */
  validate(spec: OutputSpec, key: string): void;
  /** Creates the sink (may connect). */
  create(spec: OutputSpec, key: string): Promise<CreatedSink>;
}

function rejectUnknown(spec: OutputSpec, key: string, known: string[]): void {
  for (const k of Object.keys(spec.options)) {
    if (!known.includes(k)) {
      throw new ConfigError(
        `${key} ${k}`,
        `unknown option for ${spec.kind} output; accepted: ${
          [...known, "format", "payload", "hooks", "topics", "queue_bytes", "on_full"].join(", ")
        }`,
      );
    }
  }
}

const fileFactory: SinkFactory = {
  validate(spec, key) {
    rejectUnknown(spec, key, ["rotate_bytes", "keep", "flush_ms"]);
    fileOptions(spec, key);
  },
  async create(spec, key) {
    const o = fileOptions(spec, key);
    const sink = await FileSink.open({
      path: spec.target,
      format: spec.format,
      payload: spec.payload,
      rotateBytes: o.rotateBytes,
      keep: o.keep,
    });
    // A failed local write is cheap to retry (one failed write call): at least four times a
    // second, so that writing resumes well within a second of space (or the directory) coming
    // back.
    return { sink, queue: { lingerMs: o.flushMs, retryMaxMs: FILE_RETRY_MAX_MS } };
  },
};

/** Longest retry delay of a file output, in ms. */
const FILE_RETRY_MAX_MS = 250;

function fileOptions(spec: OutputSpec, key: string) {
  const o = spec.options;
  return {
    rotateBytes: o.rotate_bytes === undefined
      ? 0
      : parseSize(`${key} rotate_bytes`, o.rotate_bytes),
    keep: o.keep === undefined ? 5 : parseIntIn(`${key} keep`, o.keep, 0, 1000),
    flushMs: o.flush_ms === undefined ? 10 : parseIntIn(`${key} flush_ms`, o.flush_ms, 0, 60_000),
  };
}

const stdoutFactory: SinkFactory = {
  validate(spec, key) {
    rejectUnknown(spec, key, ["flush_ms"]);
  },
  create(spec, key) {
    const o = spec.options;
    const flushMs = o.flush_ms === undefined
      ? 10
      : parseIntIn(`${key} flush_ms`, o.flush_ms, 0, 60_000);
    return Promise.resolve({
      sink: new StdoutSink({ format: spec.format, payload: spec.payload }),
      queue: { lingerMs: flushMs },
    });
  },
};

/** Factories by output kind. Network outputs register here as they are added. */
export const SINK_FACTORIES: Partial<Record<OutputKind, SinkFactory>> = {
  stdout: stdoutFactory,
  file: fileFactory,
  nats: natsFactory,
  redis: redisFactory,
  http: httpFactory,
};

/** The factory of `spec.kind`, or a ConfigError when this build has none. */
export function factoryOf(spec: OutputSpec, key: string): SinkFactory {
  const f = SINK_FACTORIES[spec.kind];
  if (!f) throw new ConfigError(key, `${spec.kind} outputs are not available in this build`);
  return f;
}

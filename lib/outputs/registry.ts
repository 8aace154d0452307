/**
 * The output kinds: one descriptor per kind (`outputs/<kind>/kind.ts`: how its URL looks,
 * its option schema, its cross-option checks), which imports no client library; the sink
 * module with the client is loaded only when an output of that kind is created
 * ({@linkcode OutputKindDescriptor.load}). Parsing flags, check-config and reload validation
 * use the descriptors only.
 *
 * @module
 */
import type { OutputKind, OutputSpec } from "./output_spec.ts";
import { ConfigError } from "../errors.ts";
import type { Sink } from "./contract.ts";
import type { DeliveryOptions } from "../pipeline/delivery.ts";
import { checkOptions, normalizeOptions, OPTION_DEFAULTS, type OptionSchema } from "./options.ts";
import { fileKind } from "./file/kind.ts";
import { stdoutKind } from "./stdout/kind.ts";
import { natsKind } from "./nats/kind.ts";
import { redisKind } from "./redis/kind.ts";
import { httpKind } from "./http/kind.ts";

/** A created output. */
export interface CreatedSink {
  /** The sink. */
  sink: Sink;
  /** Queue settings the kind wants (batching, linger). */
  queue: Partial<DeliveryOptions>;
}

/** What a kind's sink module provides: the sink of an output whose options are `T`. */
export interface OutputFactory<T> {
  /** Creates the sink (may connect) from a validated spec whose `options` are a `T`. */
  create(spec: OutputSpec & { readonly options: T }, key: string): Promise<CreatedSink>;
}

/** One output kind. */
export interface OutputKindDescriptor<T> {
  /** The kind's name (the `OutputSpec.kind`). */
  readonly kind: OutputKind;
  /** The target when `base` (the URL without its `?query`) is of this kind, else undefined. */
  match(base: string): string | undefined;
  /** A local output (stdout, file): blocks when full, small queue, encodes at enqueue. */
  readonly local: boolean;
  /** Its options, with their parsers and defaults. */
  readonly options: OptionSchema<T>;
  /**
   * How many batches its sink may be sent at once (the `concurrency` option is capped at it;
   * absent: 1, the sink takes one `send` at a time).
   */
  readonly maxConcurrency?: number;
  /** An example URL, for messages. */
  readonly example: string;
  /**
   * Checks the target and the rules between options (token or user, tls_ca needs https);
   * throws {@linkcode ConfigError}. Connects nowhere (it may read a CA file).
   */
  check?(target: string, options: T, key: string): void;
  /** Loads the sink module (a literal dynamic import: `deno compile` embeds it). */
  load(): Promise<OutputFactory<T>>;
}

// deno-lint-ignore no-explicit-any
type AnyKind = OutputKindDescriptor<any>;

/** Every output kind of this build, in the order URLs are matched. */
export const OUTPUT_KINDS: readonly AnyKind[] = [
  stdoutKind,
  fileKind,
  natsKind,
  redisKind,
  httpKind,
];

/** The kind of an output URL (without its query) and its target, or undefined. */
export function kindOf(base: string): { kind: AnyKind; target: string } | undefined {
  for (const kind of OUTPUT_KINDS) {
    const target = kind.match(base);
    if (target !== undefined) return { kind, target };
  }
  return undefined;
}

/** The descriptor of kind `name`; throws ConfigError when this build has none. */
export function outputKind(name: string, key: string): AnyKind {
  const k = OUTPUT_KINDS.find((d) => d.kind === name);
  if (!k) throw new ConfigError(key, `${name} outputs are not available in this build`);
  return k;
}

/** How the sidecar and a reload create the sink of a validated output. */
export interface SinkFactory {
  /** Creates the sink (loads the kind's sink module on first use; may connect). */
  create(spec: OutputSpec, key: string): Promise<CreatedSink>;
}

/** The factory of `spec.kind`: loads its sink module, then creates the sink. */
export function factoryOf(spec: OutputSpec, key: string): SinkFactory {
  const kind = outputKind(spec.kind, key);
  return {
    async create(s, k) {
      let factory;
      try {
        factory = await kind.load();
      } catch (e) {
        throw new Error(`cannot load the ${kind.kind} output module: ${(e as Error).message}`, {
          cause: e,
        });
      }
      // A spec built in code (not by the config parsers) gets its options parsed and defaults
      // filled here; for a parsed spec this changes nothing.
      checkOptions(kind.kind, kind.options, [], s.options, k);
      const options = normalizeOptions(kind.options, { ...s.options }, k, OPTION_DEFAULTS);
      kind.check?.(s.target, options, k);
      const made = await factory.create({ ...s, options }, k);
      const wanted = made.queue.concurrency;
      if (wanted === undefined) return made;
      const concurrency = Math.min(wanted, kind.maxConcurrency ?? 1);
      return { ...made, queue: { ...made.queue, concurrency } };
    },
  };
}

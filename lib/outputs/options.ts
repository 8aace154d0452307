// Private: what the network outputs (NATS, Redis, HTTP) share: option checking, secrets from
// environment variables, batching options, names without secrets, per-event encoding and the
// stable event id.
import { hash } from "node:crypto";
import { sha256Hex } from "./_sha256.ts";
import { ByteBuffer } from "../codec/byte_buffer.ts";
import { COMMON_OUTPUT_OPTIONS, type OutputSpec, parseIntIn, parseSize } from "../app/config.ts";
import { type EnvelopeRanges, parseEnvelope } from "../wire/envelope.ts";
import { ConfigError } from "../errors.ts";
import { type FormatOptions, reportUndecodable } from "./encoding.ts";
import { MALFORMED_VALUE, writeFrameJson } from "../codec/json.ts";
import type { QueueOptions } from "../pipeline/queue.ts";

/**
 * Throws a ConfigError for an option that is neither in `known` nor starts with one of
 * `prefixes` (e.g. `header.`).
 */
export function checkOptions(
  spec: OutputSpec,
  key: string,
  known: readonly string[],
  prefixes: readonly string[] = [],
): void {
  for (const k of Object.keys(spec.options)) {
    if (known.includes(k) || prefixes.some((p) => k.startsWith(p) && k.length > p.length)) {
      continue;
    }
    throw new ConfigError(
      `${key} ${k}`,
      `unknown option for ${spec.kind} output; accepted: ${
        [...known, ...prefixes.map((p) => `${p}NAME`), ...COMMON_OUTPUT_OPTIONS].join(", ")
      }`,
    );
  }
}

/** Reads environment variable `name` for option `option`; throws ConfigError when unusable. */
export function envValue(key: string, option: string, name: string): string {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) {
    throw new ConfigError(
      `${key} ${option}`,
      `expected the name of an environment variable, got ${JSON.stringify(name)}`,
    );
  }
  let value: string | undefined;
  try {
    value = Deno.env.get(name);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotCapable || e instanceof Deno.errors.PermissionDenied)) {
      throw e;
    }
    throw new ConfigError(
      `${key} ${option}`,
      `this binary may read only environment variables named VMQ_SIDECAR_*; rename ${name}`,
    );
  }
  if (value === undefined) {
    throw new ConfigError(`${key} ${option}`, `environment variable ${name} is not set`);
  }
  return value;
}

/**
 * A secret option: `name` (the value itself, e.g. resolved from a config file's `name_env`) or
 * `name_env` (the name of an environment variable holding it). Undefined when neither is set.
 */
export function secretOption(spec: OutputSpec, key: string, name: string): string | undefined {
  const direct = spec.options[name], env = spec.options[`${name}_env`];
  if (direct !== undefined && env !== undefined) {
    throw new ConfigError(`${key} ${name}_env`, `give ${name} or ${name}_env, not both`);
  }
  return env !== undefined ? envValue(key, `${name}_env`, env) : direct;
}

/** Batching defaults of a network output. */
export interface BatchDefaults {
  /** Most events per batch. */
  events: number;
  /** Target frame bytes per batch. */
  bytes: number;
  /** How long a partial batch may wait, in ms. */
  lingerMs: number;
}

/** The queue options from `batch_events`, `batch_bytes` and `linger_ms`. */
export function batchOptions(
  spec: OutputSpec,
  key: string,
  defaults: BatchDefaults,
): Partial<QueueOptions> {
  const o = spec.options;
  return {
    batchEvents: o.batch_events === undefined
      ? defaults.events
      : parseIntIn(`${key} batch_events`, o.batch_events, 1, 1_000_000),
    batchBytes: o.batch_bytes === undefined
      ? defaults.bytes
      : parseSize(`${key} batch_bytes`, o.batch_bytes, 1024),
    lingerMs: o.linger_ms === undefined
      ? defaults.lingerMs
      : parseIntIn(`${key} linger_ms`, o.linger_ms, 0, 60_000),
  };
}

/** The batching option names {@linkcode batchOptions} reads. */
export const BATCH_OPTIONS = ["batch_events", "batch_bytes", "linger_ms"];

/** Parses `target` as a URL; throws ConfigError naming the key, with `example` of a good one. */
export function parseUrl(key: string, target: string, example: string): URL {
  try {
    return new URL(target);
  } catch {
    throw new ConfigError(key, `invalid URL ${JSON.stringify(target)}; e.g. ${example}`);
  }
}

/** A URL fit for logs and metric labels: no user, password, query or fragment. */
export function publicName(url: URL): string {
  return `${url.protocol}//${url.host}${url.pathname === "/" ? "" : url.pathname}`;
}

/** Parses a boolean option (`true`/`false`/`1`/`0`). */
export function parseBool(key: string, value: string | undefined, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (/^(true|1|yes|on)$/i.test(value)) return true;
  if (/^(false|0|no|off)$/i.test(value)) return false;
  throw new ConfigError(key, `expected true or false, got ${JSON.stringify(value)}`);
}

/**
 * The stable id of an event: the first 128 bits of the SHA-256 of its `Any` bytes, in hex.
 * The same frame always gets the same id, so a retried event can be recognised downstream.
 * Computed in JavaScript ({@linkcode sha256Hex}): node:crypto's per-call native hasher held
 * ~70 MiB until the garbage collector got to its wrappers.
 */
export function eventId(frame: Uint8Array): string {
  return sha256Hex(frame, 4);
}

/**
 * {@linkcode eventId} of a large body (an HTTP batch), computed natively: one call per batch,
 * where the JavaScript hash would cost ~10× more per byte. Same value as `eventId(body)`.
 */
export function bodyId(body: Uint8Array): string {
  return hash("sha256", body, "hex").slice(0, 32);
}

/**
 * Encodes the events of one batch, each into its own byte range of a buffer owned by the batch
 * (JSON object without the newline, or the `Any` bytes as received).
 */
export class EventEncoder {
  /** Hook index of the last encoded event. */
  hook = -1;
  /** The encoded event (valid while the batch is being sent). */
  body: Uint8Array = new Uint8Array(0);
  readonly #opts: FormatOptions;
  readonly #output: string;
  readonly #ranges: EnvelopeRanges = { typeUrlStart: 0, typeUrlEnd: 0, valueStart: 0, valueEnd: 0 };
  #buf = new ByteBuffer(0);

  /** An encoder for output `output` (its name, for the undecodable count). */
  constructor(output: string, opts: FormatOptions) {
    this.#output = output;
    this.#opts = opts;
  }

  /** Starts a batch of about `bytes` frame bytes: earlier bodies stay valid. */
  begin(bytes: number): void {
    if (this.#opts.format === "json") this.#buf = new ByteBuffer(Math.max(1024, bytes * 2));
  }

  /**
   * Encodes `frame` into {@linkcode EventEncoder.body} and sets {@linkcode EventEncoder.hook};
   * false (and counted as undecodable) when the event does not decode.
   */
  encode(frame: Uint8Array): boolean {
    if (this.#opts.format === "protobuf") {
      this.hook = parseEnvelope(frame, this.#ranges);
      this.body = frame;
      return this.hook >= 0;
    }
    const buf = this.#buf, start = buf.pos;
    const r = writeFrameJson(buf, frame, this.#opts.payload);
    if (r < 0) {
      if (r === MALFORMED_VALUE) reportUndecodable(this.#output, frame);
      return false;
    }
    this.hook = r;
    // A view: growing the buffer copies into new storage, so earlier views keep their bytes.
    this.body = buf.buf.subarray(start, buf.pos);
    return true;
  }
}

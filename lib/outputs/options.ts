/**
 * Output options: one typed schema per output kind (in `outputs/<kind>/kind.ts`), the one
 * unknown-option check, the one secret resolver (`NAME_env`, for URL query and config file
 * alike) and masking by rule; plus what the network outputs share (batching options, names
 * without secrets, per-event encoding, the stable event id).
 *
 * @module
 */
import { hash } from "node:crypto";
import { eventIdFast } from "./_event_id.ts";
import { ByteBuffer } from "../codec/byte_buffer.ts";
import { parseChoice, parseIntIn, parseSize } from "../parse.ts";
import { type EnvelopeRanges, parseEnvelope } from "../wire/envelope.ts";
import { ConfigError } from "../errors.ts";
import { type FormatOptions, reportUndecodable } from "./encoding.ts";
import { MALFORMED_VALUE, writeFrameJsonCode } from "../codec/json_writer.ts";
import type { DeliveryOptions } from "../pipeline/delivery.ts";

/**
 * How one output option is read: from a URL query (`?name=value`, always text) or a config
 * file table (TOML values: numbers, booleans, lists as such — nothing is flattened to text).
 */
export interface OptionSpec<T> {
  /** Parses the raw value; throws {@linkcode ConfigError} naming `key` with what is accepted. */
  readonly parse: (key: string, raw: unknown) => T;
  /** The value when not given: a constant, or taken from the global output defaults. */
  readonly default: T | ((g: OptionDefaults) => T);
  /**
   * A secret: also accepted as `NAME_env` (the name of an environment variable holding it);
   * its value is never printed (check-config shows `***` or the `NAME_env` reference).
   */
  readonly secret?: true;
  /**
   * A family of options `NAME.SUB` (`header.X-Tenant`): the raw value is the table of the
   * `SUB` keys (TOML `header = { X-Tenant = "acme" }` or dotted keys, URL `header.X-Tenant=`).
   */
  readonly prefix?: true;
  /** The value as check-config prints it (default: as parsed). */
  readonly show?: (v: T) => unknown;
  /** One line for docs and messages. */
  readonly help: string;
}

/** Global settings output options take their defaults from (file outputs' rotation). */
export interface OptionDefaults {
  /** `--rotate-bytes` / `rotate_bytes`. */
  readonly rotateBytes: number;
  /** `--rotate-keep` / `rotate_keep`. */
  readonly rotateKeep: number;
}

/**
 * The global output defaults when no setting overrides them: the defaults of the settings
 * table's `rotate_bytes` and `rotate_keep` rows are these values (declared once, here).
 */
export const OPTION_DEFAULTS: OptionDefaults = Object.freeze({ rotateBytes: 0, rotateKeep: 5 });

/** One spec per option of a kind's typed options `T`. */
export type OptionSchema<T> = { readonly [K in keyof T]-?: OptionSpec<T[K]> };

/** What a value is, for type errors. */
function describe(v: unknown): string {
  if (Array.isArray(v)) return "a list";
  if (typeof v === "object" && v !== null) return "a table";
  return JSON.stringify(v) ?? String(v);
}

function isTable(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v) && !(v instanceof Date);
}

/** A text option (TOML strings; a number is taken as its text). */
export function textOption(key: string, raw: unknown): string {
  if (typeof raw === "number") return String(raw);
  if (typeof raw !== "string") {
    throw new ConfigError(key, `expected a string, got ${describe(raw)}`);
  }
  return raw;
}

/** A whole number option in `[min, max]`. */
export function intOption(min: number, max: number): (key: string, raw: unknown) => number {
  return (key, raw) => {
    if (typeof raw !== "string" && typeof raw !== "number") {
      throw new ConfigError(
        key,
        `expected a whole number from ${min} to ${max}, got ${describe(raw)}`,
      );
    }
    return parseIntIn(key, raw, min, max);
  };
}

/** A byte size option of at least `min` (`1048576`, `"256KiB"`). */
export function sizeOption(min = 0): (key: string, raw: unknown) => number {
  return (key, raw) => {
    if (typeof raw !== "string" && typeof raw !== "number") {
      throw new ConfigError(key, `expected a size like 1048576 or "64MiB", got ${describe(raw)}`);
    }
    return parseSize(key, raw, min);
  };
}

/** A boolean option: TOML `true`/`false`, or the text `true/1/yes/on` / `false/0/no/off`. */
export function boolOption(key: string, raw: unknown): boolean {
  if (typeof raw === "boolean") return raw;
  return parseBool(key, typeof raw === "string" ? raw : describe(raw), false);
}

/** A table of text values (the `SUB = value` keys of a prefix option). */
export function textTableOption(key: string, raw: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
    out[k] = textOption(`${key}.${k}`, v);
  }
  return out;
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

/** `batch_events`, `batch_bytes`, `linger_ms` of a network output. */
export interface BatchOptions {
  /** Most events per batch. */
  batch_events: number;
  /** Target frame bytes per batch. */
  batch_bytes: number;
  /** How long a partial batch may wait, in ms. */
  linger_ms: number;
}

/** The schema of {@linkcode BatchOptions}, with a kind's defaults. */
export function batchSchema(d: BatchDefaults): OptionSchema<BatchOptions> {
  return {
    batch_events: {
      parse: intOption(1, 1_000_000),
      default: d.events,
      help: "most events per batch",
    },
    batch_bytes: { parse: sizeOption(1024), default: d.bytes, help: "target bytes per batch" },
    linger_ms: {
      parse: intOption(0, 60_000),
      default: d.lingerMs,
      help: "how long a partial batch may wait, in ms",
    },
  };
}

/** `buffer`, `buffer_bytes` of a network output: where its backlog is kept. */
export interface BufferOptions {
  /** `disk`: the sidecar's journal (survives a crash); `memory`: a `queue_bytes` queue. */
  buffer: "disk" | "memory";
  /** Disk budget of its backlog in the journal (`buffer=disk`). */
  buffer_bytes: number;
}

/** The schema of {@linkcode BufferOptions} (defaults `disk`, 1 GiB). */
export function bufferSchema(): OptionSchema<BufferOptions> {
  return {
    buffer: {
      parse: (key, raw) => parseChoice(key, textOption(key, raw), ["disk", "memory"] as const),
      default: "disk",
      help: "where the backlog is kept: disk (the journal in data_dir) or memory",
    },
    buffer_bytes: {
      parse: sizeOption(1024 * 1024),
      default: 1024 ** 3,
      help: "disk budget of the backlog (buffer=disk); on_full applies beyond it",
    },
  };
}

/** Default `concurrency` of a network output (batches in flight at once; 1: one at a time). */
export const DEFAULT_CONCURRENCY = 4;

/** `concurrency` of a network output: how many batches it may have in flight at once. */
export interface ConcurrencyOptions {
  /**
   * Batches sent and not yet settled, at most (results are acknowledged in order; see
   * docs/outputs.md). Capped by what the kind's sink supports
   * (the kind descriptor's `maxConcurrency`).
   */
  concurrency: number;
}

/** The schema of {@linkcode ConcurrencyOptions} (default {@linkcode DEFAULT_CONCURRENCY}). */
export function concurrencySchema(): OptionSchema<ConcurrencyOptions> {
  return {
    concurrency: {
      parse: intOption(1, 64),
      default: DEFAULT_CONCURRENCY,
      help: "batches in flight at once (acknowledged in order; 1: one at a time)",
    },
  };
}

/** `order`, `order_window_ms` of an output: per-client broker-time order (every output kind). */
export interface OrderOptions {
  /**
   * `client`: the events of one `(mountpoint, client_id)` are delivered in broker-timestamp
   * order when they arrive out of order across connections within `order_window_ms`;
   * `none` (the default): in arrival order, no window.
   */
  order: "client" | "none";
  /** How long each event is held for earlier events of its client (`order=client`), in ms. */
  order_window_ms: number;
}

/** The schema of {@linkcode OrderOptions} (defaults `none`, 100 ms). */
export function orderSchema(): OptionSchema<OrderOptions> {
  return {
    order: {
      parse: (key, raw) => {
        const v = textOption(key, raw);
        if (v !== "client" && v !== "none") {
          throw new ConfigError(key, `expected client or none, got ${JSON.stringify(v)}`);
        }
        return v;
      },
      default: "none",
      help: "client: each client's events in broker-timestamp order (latency + order_window_ms)",
    },
    order_window_ms: {
      parse: intOption(1, 60_000),
      default: 100,
      help: "how long an event waits for earlier events of its client (order=client), in ms",
    },
  };
}

/** The delivery options of parsed {@linkcode OrderOptions} (none when the kind has none). */
export function orderQueueOptions(o: Readonly<Record<string, unknown>>): Partial<DeliveryOptions> {
  if (o.order !== "client") return {};
  return { order: "client", orderWindowMs: (o.order_window_ms as number | undefined) ?? 100 };
}

/**
 * The queue options of parsed {@linkcode BatchOptions} (and {@linkcode BufferOptions},
 * {@linkcode ConcurrencyOptions}).
 */
export function queueOptionsOf(
  o: BatchOptions & Partial<BufferOptions> & Partial<ConcurrencyOptions>,
): Partial<DeliveryOptions> {
  return {
    batchEvents: o.batch_events,
    batchBytes: o.batch_bytes,
    lingerMs: o.linger_ms,
    ...(o.buffer ? { buffer: o.buffer, bufferBytes: o.buffer_bytes } : {}),
    ...(o.concurrency !== undefined ? { concurrency: o.concurrency } : {}),
  };
}

/** The options of one output as given: table keys, then URL query options over them. */
export type RawOptions = Record<string, unknown>;

type Specs = Record<string, OptionSpec<unknown>>;

/**
 * `header.X = v` given as a flat key (URL query, a quoted TOML key) → `header = { X = v }`,
 * for the prefix options of `schema` (and their `_env` forms); tables merge, later keys win.
 */
export function nestPrefixed(schema: OptionSchema<unknown>, raw: RawOptions): RawOptions {
  const prefixes = new Set(
    Object.entries(schema as Specs).flatMap(([n, s]) =>
      s.prefix ? [n, ...(s.secret ? [`${n}_env`] : [])] : []
    ),
  );
  const out: RawOptions = {};
  for (const [k, v] of Object.entries(raw)) {
    const dot = k.indexOf(".");
    const head = dot < 0 ? k : k.slice(0, dot);
    if (!prefixes.has(head) || (dot < 0 && !isTable(v))) {
      out[k] = v; // `header = "x"`: reported by checkOptions
      continue;
    }
    const table = isTable(out[head]) ? out[head] as Record<string, unknown> : (out[head] = {});
    if (dot < 0) Object.assign(table, v);
    else table[k.slice(dot + 1)] = v;
  }
  return out;
}

/**
 * The one unknown-option check: every key of `raw` is one of `common`, an option of the
 * kind's `schema`, `NAME_env` of a secret option, or a prefix option's table. Throws
 * {@linkcode ConfigError} (`KEY option`) listing what is accepted.
 */
export function checkOptions(
  kind: string,
  schema: OptionSchema<unknown>,
  common: readonly string[],
  raw: RawOptions,
  key: string,
): void {
  const specs = schema as Specs;
  const accepted = [
    ...Object.entries(specs).flatMap(([n, s]) => {
      const name = s.prefix ? `${n}.NAME` : n;
      return s.secret ? [name, s.prefix ? `${n}_env.NAME` : `${n}_env`] : [name];
    }),
    ...common,
  ];
  for (const [k, v] of Object.entries(raw)) {
    if (common.includes(k)) continue;
    const base = k.endsWith("_env") ? k.slice(0, -4) : k;
    const spec = specs[base];
    if (spec && (base === k || spec.secret)) {
      if (spec.prefix && !isTable(v)) {
        // The value of a secret is never shown, not even in an error.
        const got = spec.secret ? `a ${typeof v}` : describe(v);
        throw new ConfigError(`${key} ${k}`, `expected ${k}.NAME = value keys, got ${got}`);
      }
      if (!spec.prefix && isTable(v)) throw new ConfigError(`${key} ${k}`, "expected a value");
      continue;
    }
    // A sub-table that is no option: name its first key (`extra.flush`).
    const sub = isTable(v) ? Object.keys(v)[0] : undefined;
    throw new ConfigError(
      `${key} ${sub === undefined ? k : `${k}.${sub}`}`,
      `unknown option for ${kind} output; accepted: ${accepted.join(", ")}`,
    );
  }
}

/** Where each secret of an output came from: option (`password`, `header.X`) → variable. */
export type FromEnv = Record<string, string>;

/** The names of the secret options and of the secret prefix options of `schema`. */
export function secretNames(
  schema: OptionSchema<unknown>,
): { secrets: Set<string>; prefixes: Set<string> } {
  const secrets = new Set<string>(), prefixes = new Set<string>();
  for (const [n, s] of Object.entries(schema as Specs)) {
    if (s.secret) (s.prefix ? prefixes : secrets).add(n);
  }
  return { secrets, prefixes };
}

/**
 * The one secret resolver, for URL query options and config file keys alike: every
 * `NAME_env = "VAR"` of a name in `secrets` (and `PREFIX_env.SUB` of a name in `prefixes`)
 * becomes `NAME` (`PREFIX.SUB`) with the value of `$VAR`. Giving both is an error; so is a
 * variable that is not set or that this binary may not read. Returns the values, and where
 * each resolved one came from (for masking).
 */
export function resolveSecrets(
  raw: RawOptions,
  names: { secrets: ReadonlySet<string>; prefixes: ReadonlySet<string> },
  key: string,
  env: (name: string) => string | undefined,
): { values: RawOptions; fromEnv: FromEnv } {
  const values: RawOptions = { ...raw };
  const fromEnv: FromEnv = {};
  const read = (option: string, v: unknown): string => {
    if (typeof v !== "string" || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(v)) {
      throw new ConfigError(
        `${key} ${option}`,
        `expected the name of an environment variable, got ${describe(v)}`,
      );
    }
    let value: string | undefined;
    try {
      value = env(v);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotCapable || e instanceof Deno.errors.PermissionDenied)) {
        throw e;
      }
      throw new ConfigError(
        `${key} ${option}`,
        `this binary may read only environment variables named VMQ_SIDECAR_*; rename ${v}`,
      );
    }
    if (value === undefined) {
      throw new ConfigError(`${key} ${option}`, `environment variable ${v} is not set`);
    }
    return value;
  };
  for (const [k, v] of Object.entries(raw)) {
    if (!k.endsWith("_env")) continue;
    const name = k.slice(0, -4);
    if (names.prefixes.has(name)) {
      if (!isTable(v)) continue; // reported by checkOptions
      const given = isTable(raw[name]) ? raw[name] as Record<string, unknown> : {};
      const table: Record<string, unknown> = { ...given };
      for (const [sub, ref] of Object.entries(v)) {
        if (given[sub] !== undefined) {
          throw new ConfigError(
            `${key} ${k}.${sub}`,
            `give ${name}.${sub} or ${k}.${sub}, not both`,
          );
        }
        table[sub] = read(`${k}.${sub}`, ref);
        fromEnv[`${name}.${sub}`] = ref as string;
      }
      values[name] = table;
      delete values[k];
    } else if (names.secrets.has(name)) {
      if (raw[name] !== undefined) {
        throw new ConfigError(`${key} ${k}`, `give ${name} or ${k}, not both`);
      }
      values[name] = read(k, v);
      fromEnv[name] = v as string;
      delete values[k];
    }
  }
  return { values, fromEnv };
}

/**
 * Parses `values` (secrets resolved, keys checked) with `schema`: every option of the schema
 * gets its value or its default. Errors are keyed `KEY option`.
 */
export function parseOptions<T>(
  schema: OptionSchema<T>,
  values: RawOptions,
  key: string,
  defaults: OptionDefaults,
): T {
  const out: Record<string, unknown> = {};
  for (const [name, spec] of Object.entries(schema as Specs)) {
    const v = values[name];
    out[name] = v !== undefined
      ? parseValue(spec, `${key} ${name}`, v)
      : typeof spec.default === "function"
      ? (spec.default as (g: OptionDefaults) => unknown)(defaults)
      : spec.default;
  }
  return out as T;
}

/**
 * Options of a spec built in code, normalized as {@linkcode parseOptions} would give them:
 * missing ones get their default, a value equal to its default is kept, any other is parsed
 * (so text like `"5"` becomes `5`; an already parsed value stays as it is).
 */
export function normalizeOptions<T>(
  schema: OptionSchema<T>,
  options: RawOptions,
  key: string,
  defaults: OptionDefaults,
): T {
  const out: Record<string, unknown> = {};
  for (const [name, spec] of Object.entries(schema as Specs)) {
    const dflt = typeof spec.default === "function"
      ? (spec.default as (g: OptionDefaults) => unknown)(defaults)
      : spec.default;
    const v = options[name];
    out[name] = v === undefined || JSON.stringify(v) === JSON.stringify(dflt)
      ? (v ?? dflt)
      : parseValue(spec, `${key} ${name}`, v);
  }
  return out as T;
}

/** `spec.parse`; the error of a secret option does not show the value. */
function parseValue(spec: OptionSpec<unknown>, key: string, v: unknown): unknown {
  try {
    return spec.parse(key, v);
  } catch (e) {
    if (!spec.secret || !(e instanceof ConfigError)) throw e;
    const kind = Array.isArray(v) ? "a list" : isTable(v) ? "a table" : `a ${typeof v}`;
    throw new ConfigError(
      e.key,
      `expected a string, got ${kind} (a secret: its value is not shown)`,
    );
  }
}

/** What stands for a secret value wherever one would be printed. */
export const MASK = "***";

/** `scheme://user:secret@host` → `scheme://user:***@host` (`scheme://***@host` for a lone user). */
export function maskUrl(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/)([^/@?#]*)@/i, (_, scheme, auth: string) => {
    const colon = auth.indexOf(":");
    return `${scheme}${colon < 0 ? MASK : `${auth.slice(0, colon)}:${MASK}`}@`;
  });
}

/**
 * Parsed options as check-config prints them, in the config file's own form: a secret as its
 * `NAME_env` reference or `***` (every value of a secret prefix option: every header),
 * options without a value left out.
 */
export function showOptions(
  schema: OptionSchema<unknown>,
  options: Readonly<Record<string, unknown>>,
  fromEnv: FromEnv,
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, spec] of Object.entries(schema as Specs)) {
    const v = options[name];
    if (v === undefined) continue;
    if (spec.prefix) {
      for (const [sub, sv] of Object.entries(v as Record<string, unknown>)) {
        const ref = fromEnv[`${name}.${sub}`];
        if (ref !== undefined) out[`${name}_env.${sub}`] = ref;
        else out[`${name}.${sub}`] = spec.secret ? MASK : sv;
      }
    } else if (fromEnv[name] !== undefined) out[`${name}_env`] = fromEnv[name];
    else out[name] = spec.secret ? MASK : spec.show ? spec.show(v) : v;
  }
  return out;
}

/** Parses `target` as a URL; throws ConfigError naming the key, with `example` of a good one. */
export function parseUrl(key: string, target: string, example: string): URL {
  try {
    return new URL(target);
  } catch {
    throw new ConfigError(key, `invalid URL ${JSON.stringify(maskUrl(target))}; e.g. ${example}`);
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
 * Computed in JavaScript (the unrolled SHA-256 of _event_id.ts; the NATS and Redis writers hash a
 * batch's frames together, four at a time in WebAssembly, to the same value): node:crypto's
 * per-call native hasher held ~70 MiB until the garbage collector got to its wrappers.
 */
export function eventId(frame: Uint8Array): string {
  return eventIdFast(frame);
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
    const r = writeFrameJsonCode(buf, frame, this.#opts.payload);
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

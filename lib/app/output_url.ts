/**
 * One output from its URL (`--out`, or an `[[outputs]]` table's `url`) and its table keys:
 * the kind from the registry, the common options, the kind's options through its schema (the
 * one unknown-option check, the one secret resolver), the kind's own rules. Connects nowhere
 * and loads no client library.
 *
 * @module
 */
import { ConfigError } from "../errors.ts";
import { OUTPUT_FORMATS } from "../outputs/encoding.ts";
import { PAYLOAD_MODES } from "../codec/json_writer.ts";
import { kindOf } from "../outputs/registry.ts";
import {
  checkOptions,
  MASK,
  maskUrl,
  nestPrefixed,
  parseOptions,
  type RawOptions,
  resolveSecrets,
  secretNames,
} from "../outputs/options.ts";
import type { OutputSpec } from "../outputs/output_spec.ts";
import { parseChoice, parseHooks, parseSize, parseTopicFilters } from "../parse.ts";
import { COMMON_OUTPUT_OPTIONS } from "./config.ts";
import { DEFAULTS, MIN_QUEUE_BYTES, type OutputDefaults } from "./settings.ts";

export { maskUrl };

/**
 * An output URL fit for messages and logs: the user info's password masked, and the value of
 * every secret query option (`password`, `token`, every `header.NAME`) masked.
 */
export function maskOutputUrl(url: string): string {
  const q = url.indexOf("?");
  const base = q < 0 ? url : url.slice(0, q);
  if (q < 0) return maskUrl(base);
  const kind = kindOf(base)?.kind;
  const names = kind ? secretNames(kind.options) : { secrets: new Set(), prefixes: new Set() };
  const query = url.slice(q + 1).split("&").map((pair) => {
    const eq = pair.indexOf("=");
    if (eq < 0) return pair;
    let name = pair.slice(0, eq);
    try {
      name = decodeURIComponent(name);
    } catch { /* masked below when in doubt */ }
    const dot = name.indexOf(".");
    const secret = names.secrets.has(name) ||
      (dot > 0 && names.prefixes.has(name.slice(0, dot))) || !kind;
    return secret ? `${pair.slice(0, eq)}=${MASK}` : pair;
  });
  return `${maskUrl(base)}?${query.join("&")}`;
}

/** The query options of an output URL, as text (split by hand: `+` stays `+`). */
function queryOptions(key: string, query: string): RawOptions {
  const params: RawOptions = {};
  for (const pair of query.split("&")) {
    if (!pair) continue;
    const eq = pair.indexOf("=");
    const k = eq < 0 ? pair : pair.slice(0, eq), v = eq < 0 ? "" : pair.slice(eq + 1);
    try {
      params[decodeURIComponent(k)] = decodeURIComponent(v);
    } catch {
      throw new ConfigError(key, `bad percent-encoding in option ${JSON.stringify(k)}`);
    }
  }
  return params;
}

function text(key: string, v: unknown): string {
  if (typeof v !== "string") {
    throw new ConfigError(key, `expected a string, got ${JSON.stringify(v) ?? String(v)}`);
  }
  return v;
}

function textOrList(key: string, v: unknown): string | string[] {
  if (typeof v === "string") return v;
  if (Array.isArray(v) && v.every((x) => typeof x === "string")) return v as string[];
  throw new ConfigError(key, `expected a list of strings, got ${JSON.stringify(v)}`);
}

/**
 * Parses an output: `url` (`stdout`, `file:PATH`, `nats://…`, `redis://…`, `http(s)://…`,
 * optionally with `?key=value&…` options) and the keys of its config file table (`table`,
 * TOML values; the URL's query options win over them). Common options (format, payload,
 * hooks, topics, queue_bytes, on_full) fill the spec; the kind's options are parsed by its
 * schema, `NAME_env` references resolved through `env`. Errors are keyed `KEY` or
 * `KEY option`.
 */
export function parseOutput(
  key: string,
  url: string,
  defaults: OutputDefaults,
  table: RawOptions = {},
  env: (name: string) => string | undefined = (n) => Deno.env.get(n),
): OutputSpec {
  const q = url.indexOf("?");
  const base = q < 0 ? url : url.slice(0, q);
  const found = kindOf(base);
  if (!found) {
    throw new ConfigError(
      key,
      `unknown output ${
        JSON.stringify(maskUrl(base))
      }; expected stdout, file:PATH, nats://HOST:PORT, redis://HOST:PORT/DB or http(s)://URL`,
    );
  }
  const { kind, target } = found;
  // Table keys, then the URL's query options over them (prefix tables merged).
  const fromTable = nestPrefixed(kind.options, table);
  const fromQuery = nestPrefixed(kind.options, q < 0 ? {} : queryOptions(key, url.slice(q + 1)));
  const raw: RawOptions = { ...fromTable };
  for (const [k, v] of Object.entries(fromQuery)) {
    const t = raw[k];
    raw[k] = typeof t === "object" && t !== null && !Array.isArray(t) &&
        typeof v === "object" && v !== null
      ? { ...t, ...v }
      : v;
  }
  checkOptions(kind.kind, kind.options, COMMON_OUTPUT_OPTIONS, raw, key);
  const { values, fromEnv } = resolveSecrets(raw, secretNames(kind.options), key, env);
  const take = (k: string) => {
    const v = values[k];
    delete values[k];
    return v;
  };
  const format = take("format"), payload = take("payload"), hooks = take("hooks");
  const topics = take("topics"), queueBytes = take("queue_bytes"), onFull = take("on_full");
  const at = (option: string) => `${key} ${option}`;
  const options = parseOptions(kind.options, values, key, defaults);
  kind.check?.(target, options, key);
  return {
    kind: kind.kind,
    target,
    format: format === undefined
      ? defaults.format
      : parseChoice(at("format"), text(at("format"), format), OUTPUT_FORMATS),
    payload: payload === undefined
      ? defaults.payload
      : parseChoice(at("payload"), text(at("payload"), payload), PAYLOAD_MODES),
    hooks: hooks === undefined
      ? defaults.hooks
      : parseHooks(at("hooks"), textOrList(at("hooks"), hooks)),
    topics: topics === undefined
      ? null
      : parseTopicFilters(at("topics"), textOrList(at("topics"), topics)),
    queueBytes: queueBytes === undefined
      ? defaults.queueBytes ?? (kind.local ? DEFAULTS.localQueueBytes : DEFAULTS.queueBytes)
      : typeof queueBytes === "string" || typeof queueBytes === "number"
      ? parseSize(at("queue_bytes"), queueBytes, MIN_QUEUE_BYTES)
      : parseSize(at("queue_bytes"), JSON.stringify(queueBytes), MIN_QUEUE_BYTES),
    // Local outputs push back on the broker; network outputs must not stall the others.
    onFull: onFull === undefined
      ? (kind.local ? "block" : "drop")
      : parseChoice(at("on_full"), text(at("on_full"), onFull), ["block", "drop"] as const),
    options,
    fromEnv,
  };
}

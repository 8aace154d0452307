/**
 * The configuration file (`--config PATH`, TOML) and how it combines with the flags: every
 * flag has a key, flags override the file, outputs are `[[outputs]]` tables with their own
 * options, secrets come from environment variables named by `*_env` keys. Errors name the key
 * and its line. See docs/configuration.md.
 *
 * @module
 */
import { parse as parseToml, stringify as stringifyToml, TomlError } from "../_deps/smol_toml.ts";
import {
  COMMON_OUTPUT_OPTIONS,
  DEFAULTS,
  type HostPort,
  LOG_FORMATS,
  LOG_LEVELS,
  type OutputSpec,
  parseAllowPeers,
  parseChoice,
  parseHooks,
  parseHostPort,
  parseIntIn,
  parseOutput,
  parseSize,
  type SidecarConfig,
} from "./config.ts";
import { ConfigError } from "../errors.ts";
import { OUTPUT_FORMATS } from "../outputs/encoding.ts";
import type { Hook } from "../schema/hooks.ts";
import { PAYLOAD_MODES } from "../codec/json.ts";
import { factoryOf } from "../outputs/registry.ts";
import { keyLines, lineOf } from "./_toml_lines.ts";
import { isLoopbackHost } from "../ingest/peers.ts";

/** A configuration error in a file: names the file, the line and the key. */
export class ConfigFileError extends ConfigError {
  /** The file. */
  readonly file: string;
  /** 1-based line of the key (0 when unknown). */
  readonly line: number;
  /** Creates the error for `key` at `line` of `file`. */
  constructor(file: string, line: number, key: string, message: string) {
    super(key, message);
    this.name = "ConfigFileError";
    this.file = file;
    this.line = line;
    this.message = `${file}${line ? `:${line}` : ""}: ${this.message}`;
  }
}

/** A parsed configuration file. */
export interface ConfigFile {
  /** Where it was read from. */
  readonly path: string;
  /** The TOML document. */
  readonly data: Record<string, unknown>;
  /** Line of each key path (`listen`, `outputs[2]`, `outputs[2].url`). */
  readonly lines: ReadonlyMap<string, number>;
}

/** Parses TOML `text` read from `path`; throws {@linkcode ConfigFileError} with the line. */
export function parseConfigFile(path: string, text: string): ConfigFile {
  let data: Record<string, unknown>;
  try {
    data = parseToml(text, { unsafeKeyBehaviour: "throw" }) as Record<string, unknown>;
  } catch (e) {
    if (e instanceof TomlError) {
      const what = e.message.split("\n")[0].replace(/^Invalid TOML document: /, "");
      throw new ConfigFileError(path, e.line, "syntax", `invalid TOML: ${what}`);
    }
    throw e;
  }
  return { path, data, lines: keyLines(text) };
}

/** Reads and parses a configuration file; a missing or unreadable file is a ConfigError. */
export function readConfigFile(path: string, key = "--config"): ConfigFile {
  let text: string;
  try {
    text = Deno.readTextFileSync(path);
  } catch (e) {
    const why = e instanceof Deno.errors.NotFound
      ? "no such file"
      : e instanceof Deno.errors.NotCapable
      ? `this binary may read config files only under ${CONFIG_DIR} (or /tmp/vmq-sidecar); move` +
        ` the file there or add its directory to permissions.default.read in deno.json` +
        (key === "check-config" ? ` (from a clone: deno task check-config ${path})` : "")
      : (e as Error).message;
    throw new ConfigError(key, `cannot read ${path}: ${why}`);
  }
  return parseConfigFile(path, text);
}

/** Where packaged config files live (readable under the default permissions). */
export const CONFIG_DIR = "/etc/vmq-sidecar";

/** Command-line values that override the file (strings as typed; undefined = not given). */
export interface Overrides {
  /** `--listen`. */
  listen?: string;
  /** `--admin` (`HOST:PORT` or `off`). */
  admin?: string;
  /** `--out`, repeated: replaces the file's outputs. */
  out?: string[];
  /** `--hooks`. */
  hooks?: string;
  /** `--format`. */
  format?: string;
  /** `--payload`. */
  payload?: string;
  /** `--rotate-bytes`. */
  rotateBytes?: string;
  /** `--rotate-keep`. */
  rotateKeep?: string;
  /** `--queue-bytes`. */
  queueBytes?: string;
  /** `--max-frame-bytes`. */
  maxFrameBytes?: string;
  /** `--max-connections`. */
  maxConnections?: string;
  /** `--shutdown-grace`. */
  shutdownGrace?: string;
  /** `--stall-timeout`. */
  stallTimeout?: string;
  /** `--idle-timeout`. */
  idleTimeout?: string;
  /** `--allow-peers`. */
  allowPeers?: string;
  /** `--log-level`. */
  logLevel?: string;
  /** `--log-format`. */
  logFormat?: string;
}

/** One output of the effective configuration, enabled or not. */
export interface ResolvedOutput {
  /** The validated output. */
  spec: OutputSpec;
  /** False when the file says `enabled = false` (validated, not run). */
  enabled: boolean;
  /** Options (and `url`) taken from the environment: option name → variable name. */
  fromEnv: Record<string, string>;
  /** The URL as written (its query options are merged into `spec`). */
  url: string;
  /** Where it was configured, for messages: `outputs[2]` or `--out "…"`. */
  source: string;
}

/** The configuration in force: what runs, plus what check-config prints. */
export interface EffectiveConfig {
  /** What the sidecar runs with (enabled outputs only). */
  config: SidecarConfig;
  /** Every output, disabled ones included. */
  outputs: ResolvedOutput[];
  /** Default hooks of outputs (`null` = all). */
  hooks: Hook[] | null;
  /** The file it came from, if any. */
  file: string | null;
}

/** Top-level keys of the file, each the name of a flag with `_` for `-`. */
export const FILE_KEYS = [
  "listen",
  "admin",
  "hooks",
  "format",
  "payload",
  "rotate_bytes",
  "rotate_keep",
  "queue_bytes",
  "max_frame_bytes",
  "max_connections",
  "shutdown_grace_ms",
  "stall_timeout_ms",
  "idle_timeout_ms",
  "allow_peers",
  "log_level",
  "log_format",
  "outputs",
] as const;

/** Keys of an `[[outputs]]` table besides the kind-specific options. */
export const OUTPUT_KEYS = ["url", "enabled", ...COMMON_OUTPUT_OPTIONS];

/** Options whose values are masked when printed (matched case-insensitively). */
const SECRET_OPTION = /pass(word)?|secret|token|api_?key|credential|auth|private|nkey|seed/i;

/** Whether an option name holds a secret (masked by check-config). */
export function isSecretOption(name: string): boolean {
  return SECRET_OPTION.test(name);
}

type Source = { kind: "flag"; key: string } | { kind: "file"; path: string };

/** Resolves flags over file over defaults into a validated configuration. */
export function resolveConfig(
  flags: Overrides,
  file?: ConfigFile,
  env: (name: string) => string | undefined = (n) => Deno.env.get(n),
): EffectiveConfig {
  const data = file?.data ?? {};
  const fail = (path: string, message: string): never => {
    if (!file) throw new ConfigError(path, message);
    throw new ConfigFileError(file.path, lineOf(file.lines, path), path, message);
  };
  // Runs a parser with the key of its source; file errors get the file and line.
  const at = <T>(src: Source, fn: (key: string) => T): T => {
    if (src.kind === "flag") return fn(src.key);
    try {
      return fn(src.path);
    } catch (e) {
      if (e instanceof ConfigError && !(e instanceof ConfigFileError)) {
        fail(e.key, e.message.slice(e.key.length + 2));
      }
      throw e;
    }
  };
  for (const k of Object.keys(data)) {
    if (!(FILE_KEYS as readonly string[]).includes(k)) {
      fail(k, `unknown key; accepted: ${FILE_KEYS.join(", ")}`);
    }
  }
  // The value of a setting: the flag when given, else the file's key, else undefined.
  const pick = (flag: string | undefined, flagKey: string, fileKey: string) => {
    if (flag !== undefined) return { src: { kind: "flag", key: flagKey } as Source, v: flag };
    const v = data[fileKey];
    if (v === undefined) return undefined;
    return { src: { kind: "file", path: fileKey } as Source, v };
  };
  const str = (path: string, v: unknown): string => {
    if (typeof v !== "string") fail(path, `expected a string, got ${describe(v)}`);
    return v as string;
  };
  const strOrNum = (path: string, v: unknown): string | number => {
    if (typeof v !== "string" && typeof v !== "number") {
      fail(path, `expected a number or a string, got ${describe(v)}`);
    }
    return v as string | number;
  };
  const strOrList = (path: string, v: unknown): string | string[] => {
    if (typeof v === "string") return v;
    if (Array.isArray(v) && v.every((x) => typeof x === "string")) return v as string[];
    return fail(path, `expected a list of strings, got ${describe(v)}`);
  };

  const fmt = pick(flags.format, "--format", "format");
  const format = fmt
    ? at(fmt.src, (k) => parseChoice(k, str(k, fmt.v), OUTPUT_FORMATS))
    : DEFAULTS.format;
  const pay = pick(flags.payload, "--payload", "payload");
  const payload = pay
    ? at(pay.src, (k) => parseChoice(k, str(k, pay.v), PAYLOAD_MODES))
    : DEFAULTS.payload;
  const hk = pick(flags.hooks, "--hooks", "hooks");
  const hooks = hk ? at(hk.src, (k) => parseHooks(k, strOrList(k, hk.v))) : null;
  const qb = pick(flags.queueBytes, "--queue-bytes", "queue_bytes");
  const queueBytes = qb ? at(qb.src, (k) => parseSize(k, strOrNum(k, qb.v), 65536)) : null;
  const rb = pick(flags.rotateBytes, "--rotate-bytes", "rotate_bytes");
  const rotateBytes = rb ? String(at(rb.src, (k) => parseSize(k, strOrNum(k, rb.v)))) : undefined;
  const rk = pick(flags.rotateKeep, "--rotate-keep", "rotate_keep");
  const rotateKeep = rk
    ? String(at(rk.src, (k) => parseIntIn(k, strOrNum(k, rk.v), 0, 1000)))
    : undefined;
  const defaults = { format, payload, hooks, queueBytes };
  const fileExtra = (url: string) => {
    const extra: Record<string, string> = {};
    if (url.startsWith("file:")) {
      if (rotateBytes !== undefined) extra.rotate_bytes = rotateBytes;
      if (rotateKeep !== undefined) extra.keep = rotateKeep;
    }
    return extra;
  };

  let outputs: ResolvedOutput[];
  if (flags.out !== undefined || data.outputs === undefined) {
    outputs = (flags.out ?? ["stdout"]).map((o) => {
      const key = `--out ${JSON.stringify(o)}`;
      const spec = parseOutput(key, o, defaults, fileExtra(o));
      factoryOf(spec, key).validate(spec, key);
      return { spec, enabled: true, fromEnv: {}, url: o, source: key };
    });
  } else {
    const list = data.outputs;
    if (!Array.isArray(list) || !list.every(isTable)) {
      fail("outputs", "expected [[outputs]] tables (an array of tables)");
    }
    outputs = (list as Record<string, unknown>[]).map((t, i) =>
      fileOutput(t, `outputs[${i + 1}]`, defaults, fileExtra, env, fail)
    );
    if (outputs.length === 0) fail("outputs", "expected at least one [[outputs]] table");
    if (!outputs.some((o) => o.enabled)) {
      fail("outputs", "every output has enabled = false; enable at least one");
    }
  }

  const ls = pick(flags.listen, "--listen", "listen");
  const listen = at(
    ls?.src ?? { kind: "flag", key: "--listen" },
    (k) => parseHostPort(k, ls ? str(k, ls.v) : DEFAULTS.listen),
  );
  const ad = pick(flags.admin, "--admin", "admin");
  const admin = at(ad?.src ?? { kind: "flag", key: "--admin" }, (k) => {
    const v = ad ? ad.v : DEFAULTS.admin;
    if (v === false || v === "off") return null;
    if (typeof v !== "string") return fail(k, `expected HOST:PORT or "off", got ${describe(v)}`);
    return parseHostPort(k, v);
  });
  const mf = pick(flags.maxFrameBytes, "--max-frame-bytes", "max_frame_bytes");
  const mc = pick(flags.maxConnections, "--max-connections", "max_connections");
  const ll = pick(flags.logLevel, "--log-level", "log_level");
  const lf = pick(flags.logFormat, "--log-format", "log_format");
  const sg = pick(flags.shutdownGrace, "--shutdown-grace", "shutdown_grace_ms");
  const st = pick(flags.stallTimeout, "--stall-timeout", "stall_timeout_ms");
  const it = pick(flags.idleTimeout, "--idle-timeout", "idle_timeout_ms");
  const ap = pick(flags.allowPeers, "--allow-peers", "allow_peers");
  const allowPeers = ap
    ? at(ap.src, (k) => parseAllowPeers(k, strOrList(k, ap.v)))
    : [...DEFAULTS.allowPeers];
  if (!ap && !isLoopbackHost(listen.hostname)) {
    at(ls?.src ?? { kind: "flag", key: "--listen" }, (k) => {
      throw new ConfigError(
        k,
        `${listen.hostname} is not a loopback address: set --allow-peers / allow_peers explicitly to the ranges the plugin connects from (e.g. 10.0.0.0/8); the default allows loopback only`,
      );
    });
  }
  const config: SidecarConfig = {
    listen,
    admin,
    maxFrameBytes: mf
      ? Math.min(at(mf.src, (k) => parseSize(k, strOrNum(k, mf.v), 1)), 2 ** 32 - 1)
      : DEFAULTS.maxFrameBytes,
    maxConnections: mc
      ? at(mc.src, (k) => parseIntIn(k, strOrNum(k, mc.v), 1, 1_000_000))
      : DEFAULTS.maxConnections,
    logLevel: ll ? at(ll.src, (k) => parseChoice(k, str(k, ll.v), LOG_LEVELS)) : DEFAULTS.logLevel,
    logFormat: lf
      ? at(lf.src, (k) => parseChoice(k, str(k, lf.v), LOG_FORMATS))
      : DEFAULTS.logFormat,
    shutdownGraceMs: sg
      ? at(sg.src, (k) => parseIntIn(k, strOrNum(k, sg.v), 0, 3_600_000))
      : DEFAULTS.shutdownGraceMs,
    stallTimeoutMs: st
      ? at(st.src, (k) => parseIntIn(k, strOrNum(k, st.v), 0, 3_600_000))
      : DEFAULTS.stallTimeoutMs,
    idleTimeoutMs: it
      ? at(it.src, (k) => parseIntIn(k, strOrNum(k, it.v), 0, 86_400_000))
      : DEFAULTS.idleTimeoutMs,
    allowPeers,
    outputs: outputs.filter((o) => o.enabled).map((o) => o.spec),
  };
  return { config, outputs, hooks, file: file?.path ?? null };
}

function fileOutput(
  t: Record<string, unknown>,
  key: string,
  defaults: Parameters<typeof parseOutput>[2],
  fileExtra: (url: string) => Record<string, string>,
  env: (name: string) => string | undefined,
  fail: (path: string, message: string) => never,
): ResolvedOutput {
  const fromEnv: Record<string, string> = {};
  const values: Record<string, unknown> = {};
  // `name_env = "VAR"` → option `name` from $VAR.
  for (const [k, v] of Object.entries(t)) {
    // Tables of references (e.g. http's `header_env.NAME = "VAR"`) are the sink's to resolve.
    if (!k.endsWith("_env") || k.length <= 4 || isTable(v)) {
      values[k] = v;
      continue;
    }
    const name = k.slice(0, -4);
    if (t[name] !== undefined) fail(`${key}.${k}`, `give ${name} or ${k}, not both`);
    if (typeof v !== "string" || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(v)) {
      fail(`${key}.${k}`, `expected the name of an environment variable, got ${describe(v)}`);
    }
    let value: string | undefined;
    try {
      value = env(v as string);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotCapable || e instanceof Deno.errors.PermissionDenied)) {
        throw e;
      }
      fail(
        `${key}.${k}`,
        `this binary may read only environment variables named VMQ_SIDECAR_*; rename ${v}`,
      );
    }
    if (value === undefined) fail(`${key}.${k}`, `environment variable ${v} is not set`);
    values[name] = value;
    fromEnv[name] = v as string;
  }
  const url = values.url;
  if (url === undefined) {
    fail(key, 'missing url (e.g. url = "file:/var/log/vmq-sidecar/events.jsonl")');
  }
  if (typeof url !== "string") fail(`${key}.url`, `expected a string, got ${describe(url)}`);
  const enabled = values.enabled ?? true;
  if (typeof enabled !== "boolean") {
    fail(`${key}.enabled`, `expected true or false, got ${describe(enabled)}`);
  }
  const params: Record<string, string> = fileExtra(url as string);
  for (const [k, v] of Object.entries(values)) {
    if (k === "url" || k === "enabled") continue;
    flatten(k, v, params, key, fail);
  }
  // Query options in the URL win over table keys, as on the command line.
  let spec: OutputSpec;
  try {
    spec = parseOutput(key, url as string, defaults, params);
    factoryOf(spec, key).validate(spec, key);
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    // Keys from parseOutput and the factories: `outputs[2]` or `outputs[2] option`.
    // The line is the option's, or the table's when it came from the URL's query.
    const option = e.key.startsWith(`${key} `) ? e.key.slice(key.length + 1) : "url";
    return fail(`${key}.${option}`, e.message.slice(e.key.length + 2));
  }
  return { spec, enabled: enabled as boolean, fromEnv, url: url as string, source: key };
}

/** Table values → string options: lists comma-joined, sub-tables as `key.sub`. */
function flatten(
  k: string,
  v: unknown,
  out: Record<string, string>,
  key: string,
  fail: (path: string, message: string) => never,
): void {
  if (typeof v === "string") out[k] = v;
  else if (typeof v === "number" || typeof v === "boolean") out[k] = String(v);
  else if (Array.isArray(v) && v.every((x) => typeof x === "string" || typeof x === "number")) {
    out[k] = v.join(",");
  } else if (isTable(v)) {
    for (const [sk, sv] of Object.entries(v)) flatten(`${k}.${sk}`, sv, out, key, fail);
  } else fail(`${key}.${k}`, `unsupported value ${describe(v)}`);
}

function isTable(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v) && !(v instanceof Date);
}

function describe(v: unknown): string {
  if (Array.isArray(v)) return "a list";
  if (isTable(v)) return "a table";
  return JSON.stringify(v) ?? String(v);
}

function hostPort(a: HostPort): string {
  return a.hostname.includes(":") ? `[${a.hostname}]:${a.port}` : `${a.hostname}:${a.port}`;
}

const MASK = "***";

/** `scheme://user:secret@host` → `scheme://user:***@host`. */
export function maskUrl(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/)([^/@?#]*)@/i, (_, scheme, auth: string) => {
    const colon = auth.indexOf(":");
    return `${scheme}${colon < 0 ? MASK : `${auth.slice(0, colon)}:${MASK}`}@`;
  });
}

/**
 * The effective configuration in the file's own schema (a file that configures the same),
 * with secrets masked: values from the environment appear as their `*_env` reference, other
 * secret options and URL passwords as `***`.
 */
export function effectiveDocument(eff: EffectiveConfig): Record<string, unknown> {
  const c = eff.config;
  const doc: Record<string, unknown> = {
    listen: hostPort(c.listen),
    admin: c.admin ? hostPort(c.admin) : "off",
    log_level: c.logLevel,
    log_format: c.logFormat,
    max_frame_bytes: c.maxFrameBytes,
    max_connections: c.maxConnections,
    shutdown_grace_ms: c.shutdownGraceMs,
    stall_timeout_ms: c.stallTimeoutMs,
    idle_timeout_ms: c.idleTimeoutMs,
    allow_peers: c.allowPeers,
    hooks: eff.hooks ?? "all",
  };
  doc.outputs = eff.outputs.map((o) => {
    const s = o.spec;
    const t: Record<string, unknown> = {};
    const base = o.url.split("?")[0];
    if (o.fromEnv.url) t.url_env = o.fromEnv.url;
    else t.url = maskUrl(base);
    t.enabled = o.enabled;
    t.format = s.format;
    t.payload = s.payload;
    t.hooks = s.hooks ?? "all";
    if (s.topics) t.topics = s.topics;
    t.queue_bytes = s.queueBytes;
    t.on_full = s.onFull;
    for (const k of Object.keys(s.options).sort()) {
      if (o.fromEnv[k]) t[`${k}_env`] = o.fromEnv[k];
      else if (isSecretOption(k) && !/_env(\.|$)/.test(k)) t[k] = MASK; // *_env: a name
      else t[k] = s.options[k];
    }
    return t;
  });
  return doc;
}

/** Renders {@linkcode effectiveDocument} as pretty JSON or TOML. */
export function renderEffectiveConfig(eff: EffectiveConfig, as: "json" | "toml"): string {
  const doc = effectiveDocument(eff);
  if (as === "json") return JSON.stringify(doc, null, 2) + "\n";
  return stringifyToml(doc) + "\n";
}

/** Settings that differ between two configs and need a restart to take effect. */
export function restartOnlyChanges(old: SidecarConfig, next: SidecarConfig): string[] {
  const changed: string[] = [];
  const hp = (a: HostPort | null) => (a ? hostPort(a) : "off");
  if (hp(old.listen) !== hp(next.listen)) changed.push("listen");
  if (hp(old.admin) !== hp(next.admin)) changed.push("admin");
  if (old.maxFrameBytes !== next.maxFrameBytes) changed.push("max_frame_bytes");
  if (old.maxConnections !== next.maxConnections) changed.push("max_connections");
  if (old.shutdownGraceMs !== next.shutdownGraceMs) changed.push("shutdown_grace_ms");
  if (old.stallTimeoutMs !== next.stallTimeoutMs) changed.push("stall_timeout_ms");
  if (old.idleTimeoutMs !== next.idleTimeoutMs) changed.push("idle_timeout_ms");
  if (old.allowPeers.join() !== next.allowPeers.join()) changed.push("allow_peers");
  return changed;
}

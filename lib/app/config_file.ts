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
  type OutputSpec,
  parseOutput,
  type SidecarConfig,
} from "./config.ts";
import { ConfigError } from "../errors.ts";
import type { Hook } from "../schema/hooks.ts";
import { factoryOf } from "../outputs/registry.ts";
import { keyLines, lineOf } from "./_toml_lines.ts";
import { isLoopbackHost } from "../ingest/peers.ts";
import {
  describeValue as describe,
  FILE_KEYS,
  OUTPUTS_SETTING,
  type Overrides,
  parseSettingFlags,
  restartOnlyChanges,
  type RunSettings,
  SETTING_ROWS,
  type Settings,
} from "./settings.ts";

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

export type { Overrides };

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
  /** Every setting's value (flag, else file, else default). */
  settings: Settings;
  /** Default hooks of outputs (`null` = all). */
  hooks: Hook[] | null;
  /** The file it came from, if any. */
  file: string | null;
}

/** Top-level keys of the file: every setting's key and `outputs`. */
export { FILE_KEYS };

/** Keys of an `[[outputs]]` table besides the kind-specific options. */
export const OUTPUT_KEYS = ["url", "enabled", ...COMMON_OUTPUT_OPTIONS];

/** Options whose values are masked when printed (matched case-insensitively). */
const SECRET_OPTION = /pass(word)?|secret|token|api_?key|credential|auth|private|nkey|seed/i;

/** Whether an option name holds a secret (masked by check-config). */
export function isSecretOption(name: string): boolean {
  return SECRET_OPTION.test(name);
}

/** Resolves flags over file over defaults into a validated configuration. */
export function resolveConfig(
  flags: Overrides,
  file?: ConfigFile,
  env: (name: string) => string | undefined = (n) => Deno.env.get(n),
): EffectiveConfig {
  const data = file?.data ?? {};
  const fail = (path: string, message: string): never => {
    if (!file?.path) throw new ConfigError(path, message);
    throw new ConfigFileError(file.path, lineOf(file.lines, path), path, message);
  };
  // Runs a parser on a file value: its ConfigError gets the file and line.
  const atFile = <T>(path: string, fn: (key: string) => T): T => {
    try {
      return fn(path);
    } catch (e) {
      if (e instanceof ConfigError && !(e instanceof ConfigFileError)) {
        fail(e.key, e.message.slice(e.key.length + 2));
      }
      throw e;
    }
  };
  for (const k of Object.keys(data)) {
    if (!FILE_KEYS.includes(k)) fail(k, `unknown key; accepted: ${FILE_KEYS.join(", ")}`);
  }
  // Every setting: the flag when given, else the file's key, else the default.
  const values: Record<string, unknown> = {};
  for (const s of SETTING_ROWS) {
    const flag = flags[s.name], v = data[s.key];
    values[s.name] = flag !== undefined
      ? s.parse(s.flag, flag)
      : v !== undefined
      ? atFile(s.key, (k) => s.parse(k, v))
      : structuredClone(s.default);
  }
  const settings = values as unknown as Settings;
  if (
    flags.allowPeers === undefined && data.allow_peers === undefined &&
    !isLoopbackHost(settings.listen.hostname)
  ) {
    const message =
      `${settings.listen.hostname} is not a loopback address: set --allow-peers / allow_peers explicitly to the ranges the plugin connects from (e.g. 10.0.0.0/8); the default allows loopback only`;
    if (flags.listen === undefined && data.listen !== undefined) fail("listen", message);
    throw new ConfigError("--listen", message);
  }

  const defaults = {
    format: settings.format,
    payload: settings.payload,
    hooks: settings.hooks,
    queueBytes: settings.queueBytes,
  };
  // File outputs take the global rotation settings as their defaults.
  const fileExtra = (url: string): Record<string, string> =>
    url.startsWith("file:")
      ? { rotate_bytes: String(settings.rotateBytes), keep: String(settings.rotateKeep) }
      : {};

  let outputs: ResolvedOutput[];
  if (flags.out !== undefined || data.outputs === undefined) {
    outputs = (flags.out ?? [OUTPUTS_SETTING.defaultText]).map((o) => {
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
  const run = Object.fromEntries(
    SETTING_ROWS.filter((s) => s.reload !== "outputs").map((s) => [s.name, values[s.name]]),
  ) as unknown as RunSettings;
  const config: SidecarConfig = {
    ...run,
    outputs: outputs.filter((o) => o.enabled).map((o) => o.spec),
  };
  return { config, outputs, settings, hooks: settings.hooks, file: file?.path || null };
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
  const doc: Record<string, unknown> = {};
  for (const s of SETTING_ROWS) doc[s.key] = s.show(eff.settings[s.name]);
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

export { restartOnlyChanges };

/** What {@linkcode loadConfig} builds a configuration from. */
export interface LoadConfigOptions {
  /** Command-line arguments, as `vmq-sidecar` takes them (`["--listen", "127.0.0.1:0"]`). */
  flags?: readonly string[];
  /** A TOML config file to read (as `--config FILE`). */
  file?: string;
  /**
   * Config file keys given in code (`{ listen: "127.0.0.1:0", outputs: [{ url: "stdout" }] }`),
   * validated as a file's; they replace the same keys of `file`. Flags override both.
   */
  values?: Record<string, unknown>;
  /** Where `*_env` references are read; default: the process environment. */
  env?: (name: string) => string | undefined;
}

/**
 * The effective configuration exactly as the command line builds it: flags over the file (and
 * `values`) over the defaults, every setting and output validated. Connects nowhere. Throws
 * {@linkcode ConfigError} naming the flag, or the file, line and key.
 *
 * @example
 * ```ts
 * import { loadConfig } from "./config_file.ts";
 * const config = loadConfig({
 *   flags: ["--listen", "127.0.0.1:0"],
 *   values: { admin: "off", outputs: [{ url: "stdout", hooks: ["on_publish"] }] },
 * });
 * console.log(config.listen.port, config.maxFrameBytes); // 0 67108864
 * ```
 */
export function loadConfig(options: LoadConfigOptions = {}): SidecarConfig {
  const parsed = parseSettingFlags(options.flags ?? []);
  const path = options.file ?? parsed.config;
  let file = path === undefined ? undefined : readConfigFile(path);
  if (options.values) {
    file = {
      path: file?.path ?? "",
      data: { ...file?.data, ...options.values },
      lines: file?.lines ?? new Map(),
    };
  }
  return resolveConfig(parsed.overrides, file, options.env).config;
}

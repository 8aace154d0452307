/**
 * The configuration file (`--config PATH`, TOML) and how it combines with the flags: every
 * flag has a key, flags override the file, outputs are `[[outputs]]` tables with their own
 * options, secrets come from environment variables named by `*_env` keys. Errors name the key
 * and its line. See docs/configuration.md.
 *
 * @module
 */
import { parse as parseToml, stringify as stringifyToml, TomlError } from "../_deps/smol_toml.ts";
import { COMMON_OUTPUT_OPTIONS, type SidecarConfig } from "./config.ts";
import type { OutputSpec } from "../outputs/output_spec.ts";
import { maskOutputUrl, maskUrl, parseOutput } from "./output_url.ts";
import { resolveSecrets, showOptions } from "../outputs/options.ts";
import { ConfigError } from "../errors.ts";
import type { Hook } from "../schema/hooks.ts";
import { outputKind } from "../outputs/registry.ts";
import { keyLines, lineOf } from "./_toml_lines.ts";
import { isLoopbackHost } from "../ingest/peers.ts";
import {
  defaultSettings,
  describeValue as describe,
  FILE_KEYS,
  type OutputDefaults,
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
  /**
   * Every setting's value (flag, else file, else default). Optional for configurations built
   * in code: check-config then shows the `config`'s values and the defaults of the rest.
   */
  settings?: Settings;
  /** Default hooks of outputs (`null` = all). */
  hooks: Hook[] | null;
  /** The file it came from, if any. */
  file: string | null;
}

/** Top-level keys of the file: every setting's key and `outputs`. */
export { FILE_KEYS };

/** Keys of an `[[outputs]]` table besides the kind-specific options. */
export const OUTPUT_KEYS = ["url", "enabled", ...COMMON_OUTPUT_OPTIONS];

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

  let outputs: ResolvedOutput[];
  if (flags.out !== undefined || data.outputs === undefined) {
    outputs = (flags.out ?? [OUTPUTS_SETTING.defaultText]).map((o) => {
      // Messages name the output by its URL, secrets masked.
      const key = `--out ${JSON.stringify(maskOutputUrl(o))}`;
      const spec = parseOutput(key, o, settings, {}, env);
      return { spec, enabled: true, fromEnv: { ...spec.fromEnv }, url: o, source: key };
    });
  } else {
    const list = data.outputs;
    if (!Array.isArray(list) || !list.every(isTable)) {
      fail("outputs", "expected [[outputs]] tables (an array of tables)");
    }
    outputs = (list as Record<string, unknown>[]).map((t, i) =>
      fileOutput(t, `outputs[${i + 1}]`, settings, env, fail)
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
  defaults: OutputDefaults,
  env: (name: string) => string | undefined,
  fail: (path: string, message: string) => never,
): ResolvedOutput {
  // Keys from parseOutput and the schemas: `outputs[2]` or `outputs[2] option`; the line is
  // the option's, or the table's when it came from the URL's query.
  const located = <T>(fn: () => T): T => {
    try {
      return fn();
    } catch (e) {
      if (!(e instanceof ConfigError) || e instanceof ConfigFileError) throw e;
      const option = e.key.startsWith(`${key} `) ? e.key.slice(key.length + 1) : "url";
      return fail(`${key}.${option}`, e.message.slice(e.key.length + 2));
    }
  };
  // `url_env = "VAR"`: the whole URL from the environment (the same resolver as secrets).
  const { values, fromEnv } = located(() =>
    resolveSecrets(t, { secrets: new Set(["url"]), prefixes: new Set() }, key, env)
  );
  const { url, enabled = true, ...table } = values;
  if (url === undefined) {
    fail(key, 'missing url (e.g. url = "file:/var/log/vmq-sidecar/events.jsonl")');
  }
  if (typeof url !== "string") fail(`${key}.url`, `expected a string, got ${describe(url)}`);
  if (typeof enabled !== "boolean") {
    fail(`${key}.enabled`, `expected true or false, got ${describe(enabled)}`);
  }
  const spec = located(() => parseOutput(key, url as string, defaults, table, env));
  return {
    spec,
    enabled: enabled as boolean,
    fromEnv: { ...fromEnv, ...spec.fromEnv },
    url: url as string,
    source: key,
  };
}

function isTable(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v) && !(v instanceof Date);
}

export { maskUrl };

/**
 * The effective configuration in the file's own schema (a file that configures the same),
 * with secrets masked: values from the environment appear as their `*_env` reference, other
 * secret options and URL passwords as `***`.
 */
export function effectiveDocument(eff: EffectiveConfig): Record<string, unknown> {
  const doc: Record<string, unknown> = {};
  const values: Record<string, unknown> = { ...defaultSettings(), ...eff.settings };
  const config = eff.config as unknown as Record<string, unknown>;
  for (const s of SETTING_ROWS) {
    const running = s.reload !== "outputs" && s.name in config;
    doc[s.key] = s.show(running ? config[s.name] : values[s.name]);
  }
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
    Object.assign(t, showOptions(outputKind(s.kind, o.source).options, s.options, o.fromEnv));
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

/**
 * The one settings table: every setting of the sidecar declared once — its flag, its config
 * file key, its parser, its default, whether a reload applies it, its help line. The flags
 * (`FLAGS`), `--help`, the file's accepted keys, {@linkcode DEFAULTS}, check-config's
 * effective configuration and the reload rules are all derived from {@linkcode SETTINGS}.
 * Adding a setting is adding one row (and using its value).
 *
 * @module
 */
import { parseArgs } from "node:util";
import { ConfigError } from "../errors.ts";
import { OUTPUT_FORMATS, type OutputFormat } from "../outputs/encoding.ts";
import { OPTION_DEFAULTS } from "../outputs/options.ts";
import type { Hook } from "../schema/hooks.ts";
import { PAYLOAD_MODES, type PayloadMode } from "../codec/json_writer.ts";
import { LOOPBACK_PEERS } from "../ingest/peers.ts";
import { LOG_FORMATS, LOG_LEVELS } from "./log.ts";
import type { FsyncPolicy } from "../pipeline/disk_journal.ts";
import {
  type HostPort,
  parseChoice,
  parseHooks,
  parseHostPort,
  parseIntIn,
  parseSize,
} from "../parse.ts";
import { parseAllowPeers, type SidecarConfig } from "./config.ts";

/**
 * How a reload (SIGHUP) treats a setting: `live` is applied at once; `outputs` flows into the
 * defaults of every output (a reload rebuilds the outputs it changes); `restart` keeps its
 * running value (a warning says a restart is needed).
 */
export type Reload = "live" | "outputs" | "restart";

/** A value as a config file holds it (and as check-config prints it). */
export type TomlValue = string | number | boolean | readonly TomlValue[];

/** One setting. */
export interface Setting<T, R extends Reload = Reload> {
  /** The command-line flag, e.g. `--max-frame-bytes`. */
  readonly flag: `--${string}`;
  /** The config file key, e.g. `max_frame_bytes`. */
  readonly key: string;
  /** What the flag takes, for `--help` (e.g. `SIZE`). */
  readonly metavar: string;
  /**
   * Parses a flag's text or a config file value (TOML types); throws {@linkcode ConfigError}
   * naming `key` with what is accepted.
   */
  readonly parse: (key: string, raw: unknown) => T;
  /** The value when neither the flag nor the key is given. */
  readonly default: T;
  /** The normalized value as check-config prints it; `parse(key, show(v))` gives `v` back. */
  readonly show: (value: T) => TomlValue;
  /** A valid value other than the default, as a config file writes it (docs, tests). */
  readonly example: TomlValue;
  /** How a reload treats it. */
  readonly reload: R;
  /**
   * Help lines for `--help` (the first next to the flag); `(default …)` is appended, or put
   * where a line says `{default}`.
   */
  readonly help: readonly string[];
  /** The default as `--help` and the docs write it, when not `show(default)`. */
  readonly defaultText?: string;
}

/** `host:port`, `[v6]:port` for IPv6. */
export function showHostPort(a: HostPort): string {
  return a.hostname.includes(":") ? `[${a.hostname}]:${a.port}` : `${a.hostname}:${a.port}`;
}

/** What a value is, for type errors (`a list`, `a table`, `8891`). */
export function describeValue(v: unknown): string {
  if (Array.isArray(v)) return "a list";
  if (typeof v === "object" && v !== null && !(v instanceof Date)) return "a table";
  return JSON.stringify(v) ?? String(v);
}

function text(key: string, v: unknown): string {
  if (typeof v !== "string") {
    throw new ConfigError(key, `expected a string, got ${describeValue(v)}`);
  }
  return v;
}

function textOrNumber(key: string, v: unknown): string | number {
  if (typeof v !== "string" && typeof v !== "number") {
    throw new ConfigError(key, `expected a number or a string, got ${describeValue(v)}`);
  }
  return v;
}

function textOrList(key: string, v: unknown): string | string[] {
  if (typeof v === "string") return v;
  if (Array.isArray(v) && v.every((x) => typeof x === "string")) return v as string[];
  throw new ConfigError(key, `expected a list of strings, got ${describeValue(v)}`);
}

const choice = <T extends string>(allowed: readonly T[]) => (key: string, v: unknown): T =>
  parseChoice(key, text(key, v), allowed);

const wholeIn = (min: number, max: number) => (key: string, v: unknown): number =>
  parseIntIn(key, textOrNumber(key, v), min, max);

const same = <T extends TomlValue>(v: T): TomlValue => v;

/** Where the disk journal lives by default (`data_dir`; the journal is `DIR/journal`). */
export const DEFAULT_DATA_DIR = "/var/lib/vmq-sidecar";

/** The `fsync` policies of the journal. */
export const FSYNC_POLICIES: readonly FsyncPolicy[] = ["interval", "batch", "never"];

/** Smallest queue of an output. */
export const MIN_QUEUE_BYTES = 65536;

/** The settings of the running configuration: {@linkcode SidecarConfig} but its outputs. */
export type RunSettings = Omit<SidecarConfig, "outputs">;

/** The defaults of every output: the rows that reload as `outputs`. */
export interface OutputDefaults {
  /** Hooks of an output that does not name its own; `null` = all. */
  hooks: Hook[] | null;
  /** Format of an output that does not set one. */
  format: OutputFormat;
  /** Payload mode of an output that does not set one. */
  payload: PayloadMode;
  /** `rotate_bytes` of file outputs; 0 = never. */
  rotateBytes: number;
  /** `keep` of file outputs. */
  rotateKeep: number;
  /** Queue size of every output; `null` = by kind (`auto`). */
  queueBytes: number | null;
}

/** Every setting's parsed value. */
export type Settings = RunSettings & OutputDefaults;

/** The name of a setting (a key of {@linkcode SETTINGS}). */
export type SettingName = keyof Settings;

/**
 * The table's type: one row per field of {@linkcode SidecarConfig} (but `outputs`) and of
 * {@linkcode OutputDefaults}, parsing to that field's type. A field without its row, or a row
 * without its field, does not compile.
 */
export type SettingsTable =
  & {
    readonly [K in keyof RunSettings]-?: Setting<
      Exclude<RunSettings[K], undefined>,
      "live" | "restart"
    >;
  }
  & { readonly [K in keyof OutputDefaults]: Setting<OutputDefaults[K], "outputs"> };

/** Names of the rows that take effect only after a restart. */
export type RestartOnlyName = keyof RunSettings;

/**
 * Every setting, by the name of the field it fills (in {@linkcode SidecarConfig}, or in the
 * output defaults for rows that reload as `outputs`). `--config` and `--out` / `[[outputs]]`
 * are not rows: see {@linkcode CONFIG_FLAG} and {@linkcode OUTPUTS_SETTING}.
 */
export const SETTINGS: SettingsTable = {
  listen: {
    flag: "--listen",
    key: "listen",
    metavar: "HOST:PORT",
    parse: (k, v) => parseHostPort(k, text(k, v)),
    default: { hostname: "127.0.0.1", port: 8890 },
    show: showHostPort,
    example: "127.0.0.1:9890",
    reload: "restart",
    help: ["where the plugin connects ([::1]:8890 for IPv6)"],
  },
  admin: {
    flag: "--admin",
    key: "admin",
    metavar: "HOST:PORT|off",
    parse: (k, v) => {
      if (v === false || v === "off") return null;
      if (typeof v !== "string") {
        throw new ConfigError(k, `expected HOST:PORT or "off", got ${describeValue(v)}`);
      }
      return parseHostPort(k, v);
    },
    default: { hostname: "127.0.0.1", port: 8891 },
    show: (a) => a ? showHostPort(a) : "off",
    example: "off",
    reload: "restart",
    help: ["/metrics, /healthz, /readyz"],
  },
  hooks: {
    flag: "--hooks",
    key: "hooks",
    metavar: "LIST",
    parse: (k, v) => parseHooks(k, textOrList(k, v)),
    default: null,
    show: (h) => h ?? "all",
    example: ["on_publish", "on_deliver"],
    reload: "outputs",
    help: ['hooks every output relays, comma separated, or "all"'],
  },
  format: {
    flag: "--format",
    key: "format",
    metavar: "json|protobuf",
    parse: choice(OUTPUT_FORMATS),
    default: "json",
    show: same,
    example: "protobuf",
    reload: "outputs",
    help: ["default output format"],
  },
  payload: {
    flag: "--payload",
    key: "payload",
    metavar: "base64|utf8|omit",
    parse: choice(PAYLOAD_MODES),
    default: "base64",
    show: same,
    example: "utf8",
    reload: "outputs",
    help: [
      "payload in JSON; utf8 falls back to base64 for payloads that",
      'are not UTF-8 and says so in "payload_encoding"',
    ],
  },
  rotateBytes: {
    flag: "--rotate-bytes",
    key: "rotate_bytes",
    metavar: "SIZE",
    parse: (k, v) => parseSize(k, textOrNumber(k, v)),
    default: OPTION_DEFAULTS.rotateBytes,
    show: same,
    example: "256MiB",
    reload: "outputs",
    help: ["default rotation size of file outputs; 0 = never"],
  },
  rotateKeep: {
    flag: "--rotate-keep",
    key: "rotate_keep",
    metavar: "N",
    parse: wholeIn(0, 1000),
    default: OPTION_DEFAULTS.rotateKeep,
    show: same,
    example: 3,
    reload: "outputs",
    help: ["default rotated files kept by file outputs (0-1000)"],
  },
  queueBytes: {
    flag: "--queue-bytes",
    key: "queue_bytes",
    metavar: "SIZE|auto",
    parse: (k, v) => v === "auto" ? null : parseSize(k, textOrNumber(k, v), MIN_QUEUE_BYTES),
    default: null,
    show: (q) => q ?? "auto",
    example: "32MiB",
    reload: "outputs",
    help: [
      "queue size of every output; auto = 16MiB file/stdout, 64MiB network;",
      "sizes: 65536, 512KiB, 64MiB, 1GiB (1024-based) or 64MB (1000-based)",
    ],
  },
  maxFrameBytes: {
    flag: "--max-frame-bytes",
    key: "max_frame_bytes",
    metavar: "SIZE",
    // A length prefix is 32 bits: a larger limit is the same as no limit.
    parse: (k, v) => Math.min(parseSize(k, textOrNumber(k, v), 1), 2 ** 32 - 1),
    default: 64 * 1024 * 1024,
    show: same,
    example: "1MiB",
    reload: "restart",
    help: ["largest accepted frame; a larger one closes the connection"],
    defaultText: "64MiB",
  },
  maxBufferedBytes: {
    flag: "--max-buffered-bytes",
    key: "max_buffered_bytes",
    metavar: "SIZE",
    parse: (k, v) => parseSize(k, textOrNumber(k, v), 1024 * 1024),
    default: 256 * 1024 * 1024,
    show: same,
    example: "128MiB",
    reload: "restart",
    help: [
      "most memory partially received large frames hold together; a",
      "connection whose frame does not fit is not read until it does",
    ],
    defaultText: "256MiB",
  },
  maxConnections: {
    flag: "--max-connections",
    key: "max_connections",
    metavar: "N",
    parse: wholeIn(1, 1_000_000),
    default: 10_000,
    show: same,
    example: 500,
    reload: "restart",
    help: ["most concurrent plugin connections; more are refused"],
  },
  shutdownGraceMs: {
    flag: "--shutdown-grace",
    key: "shutdown_grace_ms",
    metavar: "MS",
    parse: wholeIn(0, 3_600_000),
    default: 5_000,
    show: same,
    example: 10_000,
    reload: "restart",
    help: ["time to drain connections and flush outputs on stop"],
  },
  dataDir: {
    flag: "--data-dir",
    key: "data_dir",
    metavar: "DIR",
    parse: (k, v) => {
      const dir = text(k, v);
      if (dir.trim() === "") throw new ConfigError(k, "expected a directory, got an empty string");
      return dir;
    },
    default: DEFAULT_DATA_DIR,
    show: same,
    example: "/srv/vmq-sidecar",
    reload: "restart",
    help: [
      "where the disk journal of buffer=disk network outputs lives",
      "(DIR/journal; created when missing)",
    ],
  },
  fsync: {
    flag: "--fsync",
    key: "fsync",
    metavar: "interval|batch|never",
    parse: choice(FSYNC_POLICIES),
    default: "interval",
    show: same,
    example: "batch",
    reload: "restart",
    help: [
      "when the journal is flushed to disk: every fsync_ms (interval), before",
      "outputs send what was written (batch), or when the kernel likes (never)",
    ],
  },
  fsyncMs: {
    flag: "--fsync-ms",
    key: "fsync_ms",
    metavar: "MS",
    parse: wholeIn(1, 60_000),
    default: 500,
    show: same,
    example: 100,
    reload: "restart",
    help: ["the fsync=interval period (power loss loses at most this)"],
  },
  stallTimeoutMs: {
    flag: "--stall-timeout",
    key: "stall_timeout_ms",
    metavar: "MS",
    parse: wholeIn(0, 3_600_000),
    default: 30_000,
    show: same,
    example: 60_000,
    reload: "restart",
    help: [
      "close a connection whose frame has not completed within MS of its",
      "start (slowloris, stalled peer); 0 = off",
    ],
  },
  idleTimeoutMs: {
    flag: "--idle-timeout",
    key: "idle_timeout_ms",
    metavar: "MS",
    parse: wholeIn(0, 86_400_000),
    default: 0,
    show: same,
    example: 600_000,
    reload: "restart",
    help: [
      "close a connection that sent nothing for MS between frames",
      "(0 = off: the plugin keeps idle connections open)",
    ],
  },
  allowPeers: {
    flag: "--allow-peers",
    key: "allow_peers",
    metavar: "CIDR,...",
    parse: (k, v) => parseAllowPeers(k, textOrList(k, v)),
    default: [...LOOPBACK_PEERS],
    show: (p) => p,
    example: ["127.0.0.0/8", "10.0.0.0/8"],
    reload: "restart",
    help: [
      "ranges plugin connections may come from; others are closed at once",
      "(required to --listen on a non-loopback address)",
    ],
    defaultText: LOOPBACK_PEERS.join(","),
  },
  logLevel: {
    flag: "--log-level",
    key: "log_level",
    metavar: "LEVEL",
    parse: choice(LOG_LEVELS),
    default: "info",
    show: same,
    example: "debug",
    reload: "live",
    help: [`${LOG_LEVELS.join("|")}; diagnostics go to stderr`],
  },
  logFormat: {
    flag: "--log-format",
    key: "log_format",
    metavar: "text|json",
    parse: choice(LOG_FORMATS),
    default: "text",
    show: same,
    example: "json",
    reload: "live",
    help: ["diagnostics as text lines or JSON lines"],
  },
};

/** Every row with its name, in table order. */
export const SETTING_ROWS: readonly (Setting<unknown> & { readonly name: SettingName })[] = Object
  .entries(SETTINGS).map(([name, s]) => ({
    ...(s as Setting<unknown>),
    name: name as SettingName,
  }));

/** The rows that take effect only after a restart. */
export const RESTART_ONLY: readonly RestartOnlyName[] = SETTING_ROWS
  .filter((s) => s.reload === "restart").map((s) => s.name as RestartOnlyName);

/** `--config FILE`: not a setting (it names where the settings are). */
export const CONFIG_FLAG = {
  flag: "--config",
  metavar: "FILE",
  help: [
    "TOML config file: every flag below has a key, outputs are",
    "[[outputs]] tables; flags override the file; SIGHUP reloads it",
  ],
} as const;

/**
 * `--out` (repeatable) / `[[outputs]]`: the outputs. A list rather than one value (each parsed
 * by the output URL and option parsers), applied live by a reload; `--out` given replaces the
 * file's list.
 */
export const OUTPUTS_SETTING = {
  flag: "--out",
  key: "outputs",
  metavar: "OUTPUT",
  reload: "live",
  defaultText: "stdout",
  help: [
    "an output; repeat for several ({default}; replaces the config",
    "file's outputs):",
    "  stdout                JSON lines on standard output",
    "  file:PATH             append to PATH (options below)",
    "  nats://HOST:PORT      NATS JetStream",
    "  redis://HOST:PORT/DB  Redis Streams",
    "  http(s)://URL         HTTP webhook (see docs/outputs.md)",
    "options follow as ?key=value&..., e.g.",
    "  file:/var/log/vmq-sidecar/events.jsonl?rotate_bytes=100MiB&keep=5",
    "any output: format=json|protobuf payload=base64|utf8|omit",
    "  hooks=on_publish,... topics=devices/+/telemetry,... queue_bytes=64MiB",
    "  on_full=block|drop",
    "network outputs: buffer=disk|memory (default disk: the journal in",
    "  --data-dir) buffer_bytes=1GiB (its disk budget)",
  ],
} as const;

/** Top-level keys a config file accepts. */
export const FILE_KEYS: readonly string[] = [
  ...SETTING_ROWS.map((s) => s.key),
  OUTPUTS_SETTING.key,
];

/** The flags, for `node:util` `parseArgs`: every value a string, `--out` repeatable. */
export const FLAGS = {
  config: { type: "string" },
  out: { type: "string", multiple: true },
  ...Object.fromEntries(SETTING_ROWS.map((s) => [s.flag.slice(2), { type: "string" }])),
  help: { type: "boolean", short: "h" },
  version: { type: "boolean", short: "V" },
} as const as
  & { readonly [flag: string]: { readonly type: "string" | "boolean"; readonly multiple?: true } }
  & {
    readonly config: { readonly type: "string" };
    readonly out: { readonly type: "string"; readonly multiple: true };
    readonly help: { readonly type: "boolean"; readonly short: "h" };
    readonly version: { readonly type: "boolean"; readonly short: "V" };
  };

/** The default of a row as `--help` and docs/configuration.md write it. */
export function defaultText(s: Setting<unknown>): string {
  if (s.defaultText !== undefined) return s.defaultText;
  const v = s.show(s.default);
  return Array.isArray(v) ? v.join(",") : String(v);
}

const HELP_COLUMN = 28, HELP_WIDTH = 100;

function helpEntry(
  flag: string,
  metavar: string,
  help: readonly string[],
  dflt: string | undefined,
): string {
  const head = `  ${flag} ${metavar}`;
  const lines = [...help];
  const last = lines.length - 1;
  if (dflt === undefined) { /* no default */ }
  else if (lines.some((l) => l.includes("{default}"))) {
    for (const [i, l] of lines.entries()) lines[i] = l.replace("{default}", `default ${dflt}`);
  } else if (HELP_COLUMN + lines[last].length + dflt.length + 11 <= HELP_WIDTH) {
    lines[last] += ` (default ${dflt})`;
  } else lines.push(`(default ${dflt})`);
  const pad = " ".repeat(HELP_COLUMN);
  const first = head.length < HELP_COLUMN - 1
    ? head.padEnd(HELP_COLUMN) + lines[0]
    : `${head}\n${pad}${lines[0]}`;
  return [first, ...lines.slice(1).map((l) => pad + l)].join("\n");
}

/** The flag lines of `--help`: `--config`, then every row (with `--out` after `--admin`). */
export function flagsHelp(): string {
  const out = [helpEntry(CONFIG_FLAG.flag, CONFIG_FLAG.metavar, CONFIG_FLAG.help, undefined)];
  for (const s of SETTING_ROWS) {
    out.push(helpEntry(s.flag, s.metavar, s.help, defaultText(s)));
    if (s.name === "admin") {
      const o = OUTPUTS_SETTING;
      out.push(helpEntry(o.flag, o.metavar, o.help, o.defaultText));
    }
  }
  return out.join("\n");
}

/**
 * Defaults, as plain values (a setting's default; `localQueueBytes` and `queueBytes` are what
 * `queue_bytes = "auto"` gives local and network outputs).
 */
export const DEFAULTS = {
  listen: showHostPort(SETTINGS.listen.default),
  admin: showHostPort(SETTINGS.admin.default as HostPort),
  maxFrameBytes: SETTINGS.maxFrameBytes.default,
  maxConnections: SETTINGS.maxConnections.default,
  stallTimeoutMs: SETTINGS.stallTimeoutMs.default,
  idleTimeoutMs: SETTINGS.idleTimeoutMs.default,
  allowPeers: LOOPBACK_PEERS,
  logLevel: SETTINGS.logLevel.default,
  logFormat: SETTINGS.logFormat.default,
  shutdownGraceMs: SETTINGS.shutdownGraceMs.default,
  format: SETTINGS.format.default,
  payload: SETTINGS.payload.default,
  /** Queue size of a network output (NATS, Redis, HTTP): bridges outages. */
  queueBytes: 64 * 1024 * 1024,
  /** Queue size of a local output (file, stdout): bounds memory at full load. */
  localQueueBytes: 16 * 1024 * 1024,
  rotateBytes: SETTINGS.rotateBytes.default,
  rotateKeep: SETTINGS.rotateKeep.default,
} as const;

/** The default of every setting. */
export function defaultSettings(): Settings {
  return Object.fromEntries(
    SETTING_ROWS.map((s) => [s.name, structuredClone(s.default)]),
  ) as unknown as Settings;
}

/**
 * The default of every setting of the running configuration (a {@linkcode SidecarConfig} but its
 * outputs): the base of a configuration written in code, so it names only what it changes.
 *
 * @example
 * ```ts
 * import { defaultRunSettings, type SidecarConfig } from "../mod.ts";
 * const config: SidecarConfig = {
 *   ...defaultRunSettings(),
 *   listen: { hostname: "127.0.0.1", port: 0 },
 *   outputs: [],
 * };
 * console.log(config.maxFrameBytes); // 67108864
 * ```
 */
export function defaultRunSettings(): RunSettings {
  const all = defaultSettings() as unknown as Record<string, unknown>;
  return Object.fromEntries(
    SETTING_ROWS.filter((s) => s.reload !== "outputs").map((s) => [s.name, all[s.name]]),
  ) as unknown as RunSettings;
}

/** The `restart` settings whose value differs between `old` and `next`, by config key. */
export function restartOnlyChanges(old: RunSettings, next: RunSettings): string[] {
  return RESTART_ONLY.filter((name) => {
    const s = SETTINGS[name] as Setting<unknown>;
    return JSON.stringify(s.show(old[name])) !== JSON.stringify(s.show(next[name]));
  }).map((name) => SETTINGS[name].key);
}

/** `next` with the running values of every `restart` setting (what a reload keeps). */
export function keepRestartOnly<C extends RunSettings>(next: C, running: RunSettings): C {
  const kept: Record<string, unknown> = { ...next };
  for (const name of RESTART_ONLY) kept[name] = running[name];
  return kept as C;
}

/**
 * Command-line values that override the file: each setting's flag text by setting name (e.g.
 * `maxFrameBytes: "64MiB"`), and `out`, the `--out` values (they replace the file's outputs).
 * Undefined = not given.
 */
export type Overrides = { [K in SettingName]?: string } & {
  /** `--out`, repeated: replaces the file's outputs. */
  out?: string[];
};

/** Extra flags of a subcommand (check-config's `--emit`), in `parseArgs` form. */
export type ExtraFlags = Readonly<
  Record<string, { readonly type: "string" | "boolean"; readonly short?: string }>
>;

/** A parsed command line: what {@linkcode parseSettingFlags} returns. */
export interface ParsedFlags {
  /** Every flag given, by flag name without `--` (`"max-frame-bytes"`). */
  values: Record<string, string | boolean | string[] | undefined>;
  /** Arguments that are not flags (only when `extra` allows them: check-config's FILE). */
  positionals: string[];
  /** The settings given (see {@linkcode Overrides}). */
  overrides: Overrides;
  /** `--config FILE`, when given. */
  config?: string;
}

/**
 * Parses `args` against {@linkcode FLAGS} (plus `extra`); throws {@linkcode ConfigError}
 * naming the flag. Values are validated later, by the rows' parsers. With `extra`, one
 * positional argument is allowed.
 */
export function parseSettingFlags(args: readonly string[], extra?: ExtraFlags): ParsedFlags {
  const options = { ...FLAGS, ...extra };
  let parsed;
  try {
    parsed = parseArgs({
      args: attachDashValues(args, options),
      options,
      strict: true,
      allowPositionals: extra !== undefined,
    });
  } catch (e) {
    throw argsError(e);
  }
  const values = parsed.values as ParsedFlags["values"];
  const overrides: Record<string, string | string[]> = {};
  for (const s of SETTING_ROWS) {
    const given = values[s.flag.slice(2)];
    if (typeof given === "string") overrides[s.name] = given;
  }
  if (Array.isArray(values.out)) overrides.out = values.out;
  return {
    values,
    positionals: parsed.positionals,
    overrides: overrides as Overrides,
    config: typeof values.config === "string" ? values.config : undefined,
  };
}

function argsError(e: unknown): ConfigError {
  const msg = (e as Error).message;
  const flag = /'(-[^' ]+)/.exec(msg)?.[1] ?? "arguments";
  return new ConfigError(flag, `${msg.replace(/\. To specify a positional.*$/s, "")}; see --help`);
}

/**
 * `--flag -1` → `--flag=-1` for flags that take a value, so that a value starting with `-` is
 * validated (and refused with the flag's own message) instead of being taken for a flag.
 */
function attachDashValues(
  args: readonly string[],
  options: Record<string, { type: string; short?: string }>,
): string[] {
  const shorts = new Set(Object.values(options).flatMap((o) => o.short ? [`-${o.short}`] : []));
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i], next = args[i + 1];
    if (a === "--") return [...out, ...args.slice(i)];
    if (
      a.startsWith("--") && !a.includes("=") && options[a.slice(2)]?.type === "string" &&
      next !== undefined && /^-[^-]/.test(next) && !shorts.has(next)
    ) {
      out.push(`${a}=${next}`);
      i++;
    } else out.push(a);
  }
  return out;
}

/**
 * The command line: flags (and `--config FILE`) → {@linkcode SidecarConfig} (validated here,
 * once), then run; plus the `decode` and `check-config` subcommands.
 * Exit codes: 0 clean stop, 1 cannot start or run, 2 bad flags/values/config.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { DEFAULTS, LOG_LEVELS, parseChoice, type SidecarConfig } from "./config.ts";
import {
  type ConfigFile,
  type EffectiveConfig,
  type Overrides,
  readConfigFile,
  renderEffectiveConfig,
  resolveConfig,
} from "./config_file.ts";
import { ConfigError } from "../errors.ts";
import { preflight } from "./preflight.ts";
import { VERSION } from "./version.ts";

/** The version printed by `--version`. */
export { VERSION };

/** Usage text. */
export const USAGE =
  `vmq-sidecar ${VERSION} — events sidecar for VerneMQ's vmq_events_sidecar plugin

Usage: vmq-sidecar [flags]
       vmq-sidecar decode [FILE|-] [--on-error stop|skip] ...   (see decode --help)
       vmq-sidecar check-config FILE [--emit json|toml] [--file-only] [flags]
       vmq-sidecar send [--vectors | FILE] [--to HOST:PORT] ...   (see send --help)

  --config FILE             TOML config file: every flag below has a key, outputs are
                            [[outputs]] tables; flags override the file; SIGHUP reloads it
  --listen HOST:PORT        where the plugin connects (default ${DEFAULTS.listen})
  --admin HOST:PORT|off     /metrics, /healthz, /readyz (default ${DEFAULTS.admin})
  --out OUTPUT              an output; repeat for several (default stdout; replaces the
                            config file's outputs):
                              stdout                JSON lines on standard output
                              file:PATH             append to PATH (options below)
                              nats://HOST:PORT      NATS JetStream
                              redis://HOST:PORT/DB  Redis Streams
                              http(s)://URL         HTTP webhook (see docs/outputs.md)
                            options follow as ?key=value&..., e.g.
                              file:/var/log/vmq-sidecar/events.jsonl?rotate_bytes=100MiB&keep=5
                            any output: format=json|protobuf payload=base64|utf8|omit
                              hooks=on_publish,... topics=devices/+/telemetry,... queue_bytes=64MiB
                              on_full=block|drop
  --hooks LIST              hooks to relay, comma separated, or "all" (default all)
  --format json|protobuf    default output format (default json)
  --payload base64|utf8|omit  payload in JSON (default base64; utf8 falls back to base64 for
                            payloads that are not UTF-8 and says so in "payload_encoding")
  --rotate-bytes SIZE       default rotation size of file outputs (default 0 = never)
  --rotate-keep N           rotated files kept (default ${DEFAULTS.rotateKeep})
  --queue-bytes SIZE        queue size per output (default 16MiB file/stdout, 64MiB network);
                            sizes: 65536, 512KiB, 64MiB, 1GiB (1024-based) or 64MB (1000-based)
  --max-frame-bytes SIZE    largest accepted frame (default 64MiB)
  --max-connections N       most concurrent plugin connections (default ${DEFAULTS.maxConnections})
  --shutdown-grace MS       time to drain connections and flush outputs on stop (default ${DEFAULTS.shutdownGraceMs})
  --stall-timeout MS        close a connection whose frame has not completed within MS of its
                            start (slowloris, stalled peer; default ${DEFAULTS.stallTimeoutMs}, 0 = off)
  --idle-timeout MS         close a connection that sent nothing for MS between frames
                            (default 0 = off: the plugin keeps idle connections open)
  --allow-peers CIDR,...    ranges plugin connections may come from; others are closed at once
                            (default ${DEFAULTS.allowPeers.join(",")}; required to --listen on a
                            non-loopback address)
  --log-level LEVEL         ${
    LOG_LEVELS.join("|")
  } (default ${DEFAULTS.logLevel}); diagnostics go to stderr
  --log-format text|json    diagnostics as text lines (default) or JSON lines
  -h, --help                this text
  -V, --version             the version

Signals: SIGTERM/SIGINT stop gracefully; SIGHUP reopens output files (logrotate) and, with
--config, reloads the file (outputs, hooks, topics, log level; a bad file changes nothing).
Exit status: 0 clean stop, 1 cannot start or run, 2 bad flags or config.
`;

const FLAGS = {
  config: { type: "string" },
  listen: { type: "string" },
  admin: { type: "string" },
  out: { type: "string", multiple: true },
  hooks: { type: "string" },
  format: { type: "string" },
  payload: { type: "string" },
  "rotate-bytes": { type: "string" },
  "rotate-keep": { type: "string" },
  "queue-bytes": { type: "string" },
  "max-frame-bytes": { type: "string" },
  "max-connections": { type: "string" },
  "shutdown-grace": { type: "string" },
  "stall-timeout": { type: "string" },
  "idle-timeout": { type: "string" },
  "allow-peers": { type: "string" },
  "log-level": { type: "string" },
  "log-format": { type: "string" },
  help: { type: "boolean", short: "h" },
  version: { type: "boolean", short: "V" },
} as const;

/** Parsed command line: a config to run, or text to print. */
export type Command =
  | {
    /** The validated configuration. */
    run: SidecarConfig;
    /** The flags as given, applied again over the file on reload. */
    overrides: Overrides;
    /** The config file, if any. */
    file?: ConfigFile;
    /** Every output with its origin (for reload and check-config). */
    effective: EffectiveConfig;
  }
  | { print: string };

const CHECK_FLAGS = {
  ...FLAGS,
  emit: { type: "string" },
  "file-only": { type: "boolean" },
} as const;

/**
 * The {@linkcode preflight} problems of the enabled outputs of `effective`, one line each:
 * `FILE:LINE: outputs[N]: …` for outputs of a config file, `--out "…": …` for flags.
 */
function preflightLines(effective: EffectiveConfig, file: ConfigFile | undefined): string[] {
  const problems = preflight(effective.outputs.filter((o) => o.enabled));
  return problems.map((p) => {
    const line = file?.lines.get(`${p.source}.url`) ?? file?.lines.get(p.source);
    const at = file && p.source.startsWith("outputs[")
      ? `${file.path}${line ? `:${line}` : ""}: `
      : "";
    return `${at}${p.source}: ${p.message}`;
  });
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
  args: string[],
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

function parseFlags(args: string[]) {
  try {
    return parseArgs({
      args: attachDashValues(args, FLAGS),
      options: FLAGS,
      strict: true,
      allowPositionals: false,
    });
  } catch (e) {
    throw argsError(e);
  }
}

function overridesOf(v: ReturnType<typeof parseFlags>["values"]): Overrides {
  return {
    listen: v.listen,
    admin: v.admin,
    out: v.out,
    hooks: v.hooks,
    format: v.format,
    payload: v.payload,
    rotateBytes: v["rotate-bytes"],
    rotateKeep: v["rotate-keep"],
    queueBytes: v["queue-bytes"],
    maxFrameBytes: v["max-frame-bytes"],
    maxConnections: v["max-connections"],
    shutdownGrace: v["shutdown-grace"],
    stallTimeout: v["stall-timeout"],
    idleTimeout: v["idle-timeout"],
    allowPeers: v["allow-peers"],
    logLevel: v["log-level"],
    logFormat: v["log-format"],
  };
}

/**
 * Parses and validates flags (and the `--config` file); throws {@linkcode ConfigError} naming
 * the flag, or the file, line and key.
 */
export function parseCommandLine(args: string[]): Command {
  const { values } = parseFlags(args);
  if (values.help) return { print: USAGE };
  if (values.version) return { print: `vmq-sidecar ${VERSION}` };
  const overrides = overridesOf(values);
  const file = values.config === undefined ? undefined : readConfigFile(values.config);
  const effective = resolveConfig(overrides, file);
  return { run: effective.config, overrides, file, effective };
}

/** `check-config FILE [--emit json|toml] [flags]`: validates and prints the effective config. */
export function checkConfig(args: string[]): number {
  try {
    let parsed;
    try {
      parsed = parseArgs({
        args: attachDashValues(args, CHECK_FLAGS),
        options: CHECK_FLAGS,
        strict: true,
        allowPositionals: true,
      });
    } catch (e) {
      throw argsError(e);
    }
    const { values, positionals } = parsed;
    if (values.help) {
      console.log(
        "Usage: vmq-sidecar check-config FILE [--emit json|toml] [--file-only] [flags]\n\n" +
          "Validates FILE (and any flags given, which override it, as when running) without\n" +
          "connecting anywhere, checks what start checks on this host (every output file and\n" +
          "dead-letter file can be written: directory exists and is writable), and prints the\n" +
          "effective configuration with secrets masked. --file-only skips the checks of this\n" +
          "host (for a file meant for another one).\n" +
          "From a clone: deno task check-config FILE (may read FILE wherever it is).\n" +
          "Exit status: 0 valid, 2 invalid (the message names the line and key).",
      );
      return 0;
    }
    const path = positionals[0] ?? values.config;
    if (positionals.length > 1 || path === undefined) {
      throw new ConfigError(
        "check-config",
        "expected one FILE, e.g. check-config /etc/vmq-sidecar/vmq-sidecar.toml",
      );
    }
    const emit = values.emit === undefined
      ? "json"
      : parseChoice("--emit", values.emit, ["json", "toml"] as const);
    const file = readConfigFile(path, "check-config");
    const effective = resolveConfig(overridesOf(values), file);
    const problems = values["file-only"] ? [] : preflightLines(effective, file);
    if (problems.length) {
      for (const p of problems) console.error(`vmq-sidecar: ${p}`);
      return 2;
    }
    Deno.stdout.writeSync(new TextEncoder().encode(renderEffectiveConfig(effective, emit)));
    console.error(`vmq-sidecar: ${path}: valid`);
    return 0;
  } catch (e) {
    if (e instanceof ConfigError) {
      console.error(`vmq-sidecar: ${e.message}`);
      return 2;
    }
    throw e;
  }
}

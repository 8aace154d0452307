/**
 * The command line: flags (and `--config FILE`) → {@linkcode SidecarConfig} (validated here,
 * once), then run; plus the `decode` and `check-config` subcommands.
 * Exit codes: 0 clean stop, 1 cannot start or run, 2 bad flags/values/config.
 *
 * @module
 */
import type { SidecarConfig } from "./config.ts";
import { parseChoice } from "../parse.ts";
import { flagsHelp, parseSettingFlags } from "./settings.ts";
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

${flagsHelp()}
  -h, --help                this text
  -V, --version             the version

Signals: SIGTERM/SIGINT stop gracefully; SIGHUP reopens output files (logrotate) and, with
--config, reloads the file (outputs, hooks, topics, log level; a bad file changes nothing).
Exit status: 0 clean stop, 1 cannot start or run, 2 bad flags or config.
`;

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

/**
 * Parses and validates flags (and the `--config` file); throws {@linkcode ConfigError} naming
 * the flag, or the file, line and key.
 */
export function parseCommandLine(args: string[]): Command {
  const { values, overrides, config } = parseSettingFlags(args);
  if (values.help) return { print: USAGE };
  if (values.version) return { print: `vmq-sidecar ${VERSION}` };
  const file = config === undefined ? undefined : readConfigFile(config);
  const effective = resolveConfig(overrides, file);
  return { run: effective.config, overrides, file, effective };
}

/** `check-config FILE [--emit json|toml] [flags]`: validates and prints the effective config. */
export function checkConfig(args: string[]): number {
  try {
    const { values, positionals, overrides, config } = parseSettingFlags(args, CHECK_FLAGS);
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
    const path = positionals[0] ?? config;
    if (positionals.length > 1 || path === undefined) {
      throw new ConfigError(
        "check-config",
        "expected one FILE, e.g. check-config /etc/vmq-sidecar/vmq-sidecar.toml",
      );
    }
    const emit = values.emit === undefined
      ? "json"
      : parseChoice("--emit", String(values.emit), ["json", "toml"] as const);
    const file = readConfigFile(path, "check-config");
    const effective = resolveConfig(overrides, file);
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

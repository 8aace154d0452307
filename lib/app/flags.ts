/**
 * The command line of `vmq-sidecar` (run): flags and `--config FILE` → a validated
 * {@linkcode SidecarConfig} (the flags come from the settings table), `--help`, `--version`.
 * The subcommands (`decode`, `check-config`, `send`) live in app/commands/.
 *
 * @module
 */
import type { SidecarConfig } from "./config.ts";
import { flagsHelp, parseSettingFlags } from "./settings.ts";
import {
  type ConfigFile,
  type EffectiveConfig,
  type Overrides,
  readConfigFile,
  resolveConfig,
} from "./config_file.ts";
import { VERSION } from "./version.ts";

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

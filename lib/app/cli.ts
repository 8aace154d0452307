/**
 * The command line: flags (and `--config FILE`) → {@linkcode SidecarConfig} (validated here,
 * once), then run; plus the `decode` and `check-config` subcommands.
 * Exit codes: 0 clean stop, 1 cannot start or run, 2 bad flags/values/config.
 *
 * @module
 */
import { parseChoice, type SidecarConfig } from "./config.ts";
import { flagsHelp, parseSettingFlags } from "./settings.ts";
import {
  type ConfigFile,
  type EffectiveConfig,
  type Overrides,
  readConfigFile,
  renderEffectiveConfig,
  resolveConfig,
} from "./config_file.ts";
import { ConfigError, StartupError } from "../errors.ts";
import { AdminServer, type Readiness, readiness, registerAdminMetrics } from "./admin.ts";
import { Metrics } from "./metrics.ts";
import { runDecode } from "./commands/decode_capture.ts";
import { runSend } from "./commands/send.ts";
import { configureLogging, writeStatus } from "./log.ts";
import { preflight } from "./preflight.ts";
import { installProcessGuard, registerProcessGuardMetrics } from "./_process_guard.ts";
import { ConfigReloader } from "./reload.ts";
import { exitCodeOf, formatLost, formatSummary, Sidecar, type Summary } from "./sidecar.ts";
import { getLogger } from "../_deps/logtape.ts";

/** The version printed by `--version`. */
export const VERSION = "0.1.0";

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

/** Runs the CLI with `args`; resolves to the process exit code. */
export async function main(args: string[]): Promise<number> {
  if (args[0] === "decode") return await runDecode(args.slice(1));
  if (args[0] === "check-config") return checkConfig(args.slice(1));
  if (args[0] === "send") return await runSend(args.slice(1));
  let cmd: Command;
  try {
    cmd = parseCommandLine(args);
  } catch (e) {
    if (e instanceof ConfigError) {
      console.error(`vmq-sidecar: ${e.message}`);
      return 2;
    }
    throw e;
  }
  if ("print" in cmd) {
    console.log(cmd.print.trimEnd());
    return 0;
  }
  const config = cmd.run;
  configureLogging(config.logLevel, config.logFormat);
  const problems = preflightLines(cmd.effective, cmd.file);
  if (problems.length) {
    for (const p of problems) writeStatus("fatal", p);
    return 1;
  }
  installProcessGuard();
  const log = getLogger(["vmq_sidecar"]);
  // Signals are handled from the start: a stop requested while starting stops right after.
  const stopped = Promise.withResolvers<string>();
  const onStop = (signal: Deno.Signal) => () => stopped.resolve(signal);
  let onHup = () => log.info("SIGHUP while starting: nothing to reload yet");
  const handlers: [Deno.Signal, () => void][] = [
    ["SIGTERM", onStop("SIGTERM")],
    ["SIGINT", onStop("SIGINT")],
    ["SIGHUP", () => onHup()],
  ];
  for (const [sig, h] of handlers) Deno.addSignalListener(sig, h);
  const removeHandlers = () => {
    for (const [sig, h] of handlers) Deno.removeSignalListener(sig, h);
  };
  // Bind everything before accepting: the admin listener first, so that an admin address in
  // use fails the start before the plugin port ever accepts a connection.
  let sidecar: Sidecar | undefined;
  let accepting = false;
  const ready = (): Readiness =>
    sidecar
      ? readiness(sidecar.pipeline, accepting, sidecar.server.acceptBackoff)
      : { ready: false, reasons: ["starting"] };
  // Read per request by the admin server: the sidecar's registry once it runs.
  const adminOptions = config.admin &&
    { ...config.admin, metrics: new Metrics(), readiness: ready };
  let admin: AdminServer | undefined;
  if (adminOptions) {
    try {
      admin = AdminServer.start(adminOptions);
    } catch (e) {
      if (!(e instanceof StartupError)) throw e;
      // Explicitly configured: a startup error. The default address: relaying events matters
      // more than metrics, so warn and run without.
      if (cmd.overrides.admin !== undefined || cmd.file?.data.admin !== undefined) {
        removeHandlers();
        writeStatus("fatal", e.message);
        return 1;
      }
      log.warn("{error}; running without admin endpoints", { error: e.message });
    }
  }
  try {
    sidecar = await Sidecar.start(config);
  } catch (e) {
    removeHandlers();
    await admin?.close();
    if (e instanceof StartupError) {
      writeStatus("fatal", e.message);
      return 1;
    }
    throw e;
  }
  accepting = true;
  registerProcessGuardMetrics(sidecar.metrics);
  if (adminOptions) {
    registerAdminMetrics(sidecar.metrics, VERSION, sidecar.pipeline, ready);
    adminOptions.metrics = sidecar.metrics;
  }
  const file = cmd.file;
  const reloader = file ? new ConfigReloader(sidecar.pipeline, config, sidecar.metrics) : undefined;
  const hup = async () => {
    if (reloader && file) {
      log.info("SIGHUP: reloading {path} and reopening output files", { path: file.path });
      await reloader.reload(
        () => resolveConfig(cmd.overrides, readConfigFile(file.path)),
        file.path,
      );
    } else log.info("SIGHUP: reopening output files");
    await sidecar.pipeline.reopen().catch((e) =>
      log.error("reopen failed: {error}", { error: String(e) })
    );
  };
  onHup = () => {
    hup().catch((e) => log.error("SIGHUP handling failed: {error}", { error: String(e) }));
  };
  const signal = await stopped.promise;
  // A reload now would create sinks and retire queues that the stop waits for neither.
  onHup = () => log.info("SIGHUP while stopping: ignored");
  accepting = false;
  log.info("{signal} received", { signal });
  await reloader?.idle();
  const summary = withRetired(await sidecar.stop(), reloader?.retiredUnflushed ?? {});
  removeHandlers();
  await admin?.close();
  writeStatus("info", formatSummary(summary).replace(/^vmq-sidecar: /, ""), { ...summary });
  const lost = formatLost(summary);
  if (lost) writeStatus("error", lost);
  return exitCodeOf(summary);
}

/** `s` with the events that outputs removed by a reload still held counted as unflushed (lost). */
function withRetired(s: Summary, retired: Record<string, number>): Summary {
  const names = Object.keys(retired);
  if (names.length === 0) return s;
  return {
    ...s,
    unflushed: [...s.unflushed, ...names],
    unflushedEvents: { ...s.unflushedEvents, ...retired },
    lostAtStop: true,
  };
}

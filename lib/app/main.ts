/**
 * The `vmq-sidecar` command: subcommands, flags, signals, and the {@linkcode Sidecar} they run.
 * Everything the sidecar does is in {@linkcode Sidecar}; this file only maps the command line
 * and signals onto it. Exit codes: 0 clean stop, 1 cannot start or lost events at stop, 2 bad
 * flags/values/config.
 *
 * @module
 */
import { type Command, parseCommandLine } from "./flags.ts";
import { runCheckConfig } from "./commands/check_config.ts";
import {
  type ConfigFile,
  type EffectiveConfig,
  readConfigFile,
  resolveConfig,
} from "./config_file.ts";
import { ConfigError, StartupError } from "../errors.ts";
import { runDecode } from "./commands/decode_capture.ts";
import { runSend } from "./commands/send.ts";
import { configureLogging, writeStatus } from "./log.ts";
import { exitCodeOf, formatLost, formatSummary, Sidecar } from "./sidecar.ts";
import { getLogger } from "../_deps/logtape.ts";

/** Runs the CLI with `args`; resolves to the process exit code. */
export async function main(args: string[]): Promise<number> {
  if (args[0] === "decode") return await runDecode(args.slice(1));
  if (args[0] === "check-config") return runCheckConfig(args.slice(1));
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
  const { run: config, file, overrides } = cmd;
  // Before the signal handlers, which log.
  configureLogging(config.logLevel, config.logFormat);
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
  let sidecar: Sidecar;
  try {
    sidecar = await Sidecar.start({
      config,
      configureLogging: false, // done above
      // Explicitly configured: a startup error. The default address: warn and run without.
      admin: overrides.admin !== undefined || file?.data.admin !== undefined
        ? "required"
        : "optional",
      reloadFrom: file && (() => resolveConfig(overrides, readConfigFile(file.path))),
      reloadSource: file?.path,
      outputSources: sourcesOf(cmd.effective, file),
      processGuard: true,
    });
  } catch (e) {
    removeHandlers();
    if (e instanceof StartupError) {
      for (const line of e.message.split("\n")) writeStatus("fatal", line);
      return 1;
    }
    throw e;
  }
  const hup = async () => {
    if (file) {
      log.info("SIGHUP: reloading {path} and reopening output files", { path: file.path });
      await sidecar.reload();
    } else log.info("SIGHUP: reopening output files");
    await sidecar.reopen().catch((e) => log.error("reopen failed: {error}", { error: String(e) }));
  };
  onHup = () => {
    hup().catch((e) => log.error("SIGHUP handling failed: {error}", { error: String(e) }));
  };
  const signal = await stopped.promise;
  onHup = () => log.info("SIGHUP while stopping: ignored");
  log.info("{signal} received", { signal });
  const summary = await sidecar.stop();
  removeHandlers();
  writeStatus("info", formatSummary(summary).replace(/^vmq-sidecar: /, ""), { ...summary });
  const lost = formatLost(summary);
  if (lost) writeStatus("error", lost);
  return exitCodeOf(summary);
}

/**
 * How start-time problems name each enabled output, as `check-config` does:
 * `FILE:LINE: outputs[N]` for outputs of a config file, `--out "…"` for flags.
 */
function sourcesOf(effective: EffectiveConfig, file: ConfigFile | undefined): string[] {
  return effective.outputs.filter((o) => o.enabled).map(({ source }) => {
    if (!file || !source.startsWith("outputs[")) return source;
    const line = file.lines.get(`${source}.url`) ?? file.lines.get(source);
    return `${file.path}${line ? `:${line}` : ""}: ${source}`;
  });
}

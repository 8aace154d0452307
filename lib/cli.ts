/**
 * The command line: flags → {@linkcode SidecarConfig} (validated here, once), then run.
 * Exit codes: 0 clean stop, 1 cannot start or run, 2 bad flags/values.
 *
 * @module
 */
import { parseArgs } from "node:util";
import {
  DEFAULTS,
  LOG_LEVELS,
  parseChoice,
  parseHooks,
  parseHostPort,
  parseIntIn,
  parseOutput,
  parseSize,
  type SidecarConfig,
} from "./config.ts";
import { ConfigError, StartupError } from "./errors.ts";
import { OUTPUT_FORMATS } from "./format.ts";
import { PAYLOAD_MODES } from "./json.ts";
import { configureLogging } from "./log.ts";
import { formatSummary, Sidecar } from "./sidecar.ts";
import { factoryOf } from "./sinks/mod.ts";
import { getLogger } from "@logtape/logtape";

/** The version printed by `--version`. */
export const VERSION = "0.1.0";

/** Usage text. */
export const USAGE =
  `vmq-sidecar ${VERSION} — events sidecar for VerneMQ's vmq_events_sidecar plugin

Usage: vmq-sidecar [flags]

  --listen HOST:PORT        where the plugin connects (default ${DEFAULTS.listen})
  --out OUTPUT              an output; repeat for several (default stdout):
                              stdout                JSON lines on standard output
                              file:PATH             append to PATH (options below)
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
  --queue-bytes SIZE        default queue size per output (default 64MiB)
  --max-frame-bytes SIZE    largest accepted frame (default 64MiB)
  --max-connections N       most concurrent plugin connections (default ${DEFAULTS.maxConnections})
  --shutdown-grace MS       time to drain connections and flush outputs on stop (default ${DEFAULTS.shutdownGraceMs})
  --log-level LEVEL         ${
    LOG_LEVELS.join("|")
  } (default ${DEFAULTS.logLevel}); diagnostics go to stderr
  -h, --help                this text
  -V, --version             the version

Signals: SIGTERM/SIGINT stop gracefully; SIGHUP reopens output files (logrotate).
`;

const FLAGS = {
  listen: { type: "string" },
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
  "log-level": { type: "string" },
  help: { type: "boolean", short: "h" },
  version: { type: "boolean", short: "V" },
} as const;

/** Parsed command line: a config to run, or text to print. */
export type Command = { run: SidecarConfig } | { print: string };

/** Parses and validates flags; throws {@linkcode ConfigError} naming the flag. */
export function parseCommandLine(args: string[]): Command {
  let values;
  try {
    ({ values } = parseArgs({ args, options: FLAGS, strict: true, allowPositionals: false }));
  } catch (e) {
    const msg = (e as Error).message;
    const flag = /'(-[^' ]+)/.exec(msg)?.[1] ?? "arguments";
    throw new ConfigError(flag, `${msg.replace(/\. To specify a positional.*$/s, "")}; see --help`);
  }
  if (values.help) return { print: USAGE };
  if (values.version) return { print: `vmq-sidecar ${VERSION}` };
  const v = values;
  const format = v.format === undefined
    ? DEFAULTS.format
    : parseChoice("--format", v.format, OUTPUT_FORMATS);
  const payload = v.payload === undefined
    ? DEFAULTS.payload
    : parseChoice("--payload", v.payload, PAYLOAD_MODES);
  const hooks = v.hooks === undefined ? null : parseHooks("--hooks", v.hooks);
  const queueBytes = v["queue-bytes"] === undefined
    ? DEFAULTS.queueBytes
    : parseSize("--queue-bytes", v["queue-bytes"], 65536);
  const rotateBytes = v["rotate-bytes"] === undefined
    ? undefined
    : String(parseSize("--rotate-bytes", v["rotate-bytes"]));
  const rotateKeep = v["rotate-keep"] === undefined
    ? undefined
    : String(parseIntIn("--rotate-keep", v["rotate-keep"], 0, 1000));
  const outputs = (v.out ?? ["stdout"]).map((o, i) => {
    const key = `--out ${JSON.stringify(o)}`;
    const extra: Record<string, string> = {};
    if (o.startsWith("file:")) {
      if (rotateBytes !== undefined) extra.rotate_bytes = rotateBytes;
      if (rotateKeep !== undefined) extra.keep = rotateKeep;
    }
    const spec = parseOutput(key, o, { format, payload, hooks, queueBytes }, extra);
    factoryOf(spec, key).validate(spec, key);
    void i;
    return spec;
  });
  const config: SidecarConfig = {
    listen: parseHostPort("--listen", v.listen ?? DEFAULTS.listen),
    admin: null,
    maxFrameBytes: v["max-frame-bytes"] === undefined
      ? DEFAULTS.maxFrameBytes
      : Math.min(parseSize("--max-frame-bytes", v["max-frame-bytes"], 1), 2 ** 32 - 1),
    maxConnections: v["max-connections"] === undefined
      ? DEFAULTS.maxConnections
      : parseIntIn("--max-connections", v["max-connections"], 1, 1_000_000),
    logLevel: v["log-level"] === undefined
      ? DEFAULTS.logLevel
      : parseChoice("--log-level", v["log-level"], LOG_LEVELS),
    shutdownGraceMs: v["shutdown-grace"] === undefined
      ? DEFAULTS.shutdownGraceMs
      : parseIntIn("--shutdown-grace", v["shutdown-grace"], 0, 3_600_000),
    outputs,
  };
  return { run: config };
}

/** Runs the CLI with `args`; resolves to the process exit code. */
export async function main(args: string[]): Promise<number> {
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
  configureLogging(config.logLevel);
  const log = getLogger(["vmq_sidecar"]);
  let sidecar: Sidecar;
  try {
    sidecar = await Sidecar.start(config);
  } catch (e) {
    if (e instanceof StartupError) {
      console.error(`vmq-sidecar: ${e.message}`);
      return 1;
    }
    throw e;
  }
  const stopped = Promise.withResolvers<string>();
  const onStop = (signal: Deno.Signal) => () => stopped.resolve(signal);
  const handlers: [Deno.Signal, () => void][] = [
    ["SIGTERM", onStop("SIGTERM")],
    ["SIGINT", onStop("SIGINT")],
    ["SIGHUP", () => {
      log.info("SIGHUP: reopening output files");
      sidecar.pipeline.reopen().catch((e) =>
        log.error("reopen failed: {error}", { error: String(e) })
      );
    }],
  ];
  for (const [sig, h] of handlers) Deno.addSignalListener(sig, h);
  const signal = await stopped.promise;
  log.info("{signal} received", { signal });
  const summary = await sidecar.stop();
  for (const [sig, h] of handlers) Deno.removeSignalListener(sig, h);
  console.error(formatSummary(summary));
  return summary.unflushed.length ? 1 : 0;
}

/**
 * The sidecar's own diagnostics (not event output): leveled text lines on stderr through
 * LogTape (the maintained npm substitute for the removed `@std/log`).
 *
 * @module
 */
import { configureSync, getTextFormatter, type LogRecord } from "@logtape/logtape";

/** Diagnostics levels, least to most severe. */
export type LogLevel = "debug" | "info" | "warning" | "error" | "fatal";

/** Accepted `--log-level` values. */
export const LOG_LEVELS: readonly LogLevel[] = ["debug", "info", "warning", "error", "fatal"];

const enc = new TextEncoder();
// Strings unquoted (peer addresses, paths read naturally); other values as inspected.
const format = getTextFormatter({
  value: (v, inspect) => typeof v === "string" ? v : inspect(v),
});

/** Writes each record synchronously to stderr, so nothing is lost at exit. */
function stderrSink(record: LogRecord): void {
  try {
    const bytes = enc.encode(format(record));
    let off = 0;
    while (off < bytes.length) off += Deno.stderr.writeSync(bytes.subarray(off));
  } catch { /* stderr gone: nothing better to do */ }
}

/**
 * Routes the `vmq_sidecar` log categories to stderr at `level` and above (idempotent).
 *
 * @example
 * ```ts
 * import { configureLogging } from "./mod.ts";
 * configureLogging("warning");
 * ```
 */
export function configureLogging(level: LogLevel): void {
  configureSync({
    reset: true,
    sinks: { stderr: stderrSink },
    loggers: [
      { category: ["vmq_sidecar"], lowestLevel: level, sinks: ["stderr"] },
      { category: ["logtape", "meta"], lowestLevel: "warning", sinks: ["stderr"] },
    ],
  });
}

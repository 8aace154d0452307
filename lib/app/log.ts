/**
 * The sidecar's own diagnostics (not event output): leveled lines on stderr through LogTape
 * (the maintained npm substitute for the removed `@std/log`), as text (the default, for the
 * journal) or as JSON lines (one object per record, for log shippers).
 *
 * @module
 */
import {
  configureSync,
  getJsonLinesFormatter,
  getTextFormatter,
  type LogRecord,
  type TextFormatter,
} from "../_deps/logtape.ts";

/** Diagnostics levels, least to most severe. */
export type LogLevel = "debug" | "info" | "warning" | "error" | "fatal";

/** Accepted `--log-level` values. */
export const LOG_LEVELS: readonly LogLevel[] = ["debug", "info", "warning", "error", "fatal"];

/** Diagnostics formats: `text` lines, or `json` lines (one JSON object per record). */
export type LogFormat = "text" | "json";

/** Accepted `--log-format` values. */
export const LOG_FORMATS: readonly LogFormat[] = ["text", "json"];

const enc = new TextEncoder();
const jsonLines = getJsonLinesFormatter();
const FORMATTERS: Record<LogFormat, TextFormatter> = {
  // Strings unquoted (peer addresses, paths read naturally); other values as inspected.
  text: getTextFormatter({ value: (v, inspect) => typeof v === "string" ? v : inspect(v) }),
  // {"@timestamp","level","message","logger","properties":{…}}: the message rendered as in
  // the text format (LogTape's own rendering would quote every string value), the structured
  // values under "properties".
  json: (record) => jsonLines({ ...record, message: [renderMessage(record.message)] }),
};

function renderMessage(parts: readonly unknown[]): string {
  let text = "";
  for (let i = 0; i < parts.length; i++) {
    const v = parts[i];
    text += i % 2 === 0 || typeof v === "string" ? String(v) : Deno.inspect(v);
  }
  return text;
}
let current: LogFormat = "text";

function writeStderr(text: string): void {
  try {
    const bytes = enc.encode(text);
    let off = 0;
    while (off < bytes.length) off += Deno.stderr.writeSync(bytes.subarray(off));
  } catch { /* stderr gone: nothing better to do */ }
}

/** Writes each record synchronously to stderr, so nothing is lost at exit. */
function stderrSink(record: LogRecord): void {
  writeStderr(FORMATTERS[current](record));
}

/**
 * Routes the `vmq_sidecar` log categories to stderr at `level` and above, in `format`
 * (default text); idempotent, and called again to change either.
 *
 * @example
 * ```ts
 * import { configureLogging } from "../mod.ts";
 * configureLogging("warning", "json");
 * ```
 */
export function configureLogging(level: LogLevel, format: LogFormat = "text"): void {
  current = format;
  configureSync({
    reset: true,
    sinks: { stderr: stderrSink },
    loggers: [
      { category: ["vmq_sidecar"], lowestLevel: level, sinks: ["stderr"] },
      { category: ["logtape", "meta"], lowestLevel: "warning", sinks: ["stderr"] },
    ],
  });
}

/**
 * Writes a line that is not filtered by the log level (a startup error, the stop summary) in
 * the configured format: `vmq-sidecar: MESSAGE` as text, or a `vmq_sidecar` record with
 * `properties` as JSON.
 */
export function writeStatus(
  level: LogLevel,
  message: string,
  properties: Record<string, unknown> = {},
): void {
  if (current === "text") return writeStderr(`vmq-sidecar: ${message}\n`);
  writeStderr(FORMATTERS.json({
    category: ["vmq_sidecar"],
    level,
    message: [message],
    rawMessage: message,
    timestamp: Date.now(),
    properties,
  }));
}

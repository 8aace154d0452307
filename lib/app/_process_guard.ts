// Private: the CLI's last line of defence. A promise rejection nobody handled, or an error
// thrown from a callback (e.g. a client library's event emitter), would end the process and
// lose every queued event. Installed by main(), this keeps the process running instead: each
// such error is logged (at most LOG_BURST lines per LOG_WINDOW_MS, then a count of the rest)
// and counted in vmq_sidecar_unhandled_errors_total. It is no substitute for handling errors
// where they arise: every occurrence is a bug to fix, which is why it logs at error level.
import { getLogger } from "../_deps/logtape.ts";
import type { Metrics } from "./metrics.ts";

const log = getLogger(["vmq_sidecar", "process"]);

const LOG_BURST = 5;
const LOG_WINDOW_MS = 60_000;

let installed = false;
let total = 0;
let windowStart = 0, inWindow = 0, suppressed = 0;

/** Errors the guard caught since the process started. */
export function unhandledErrors(): number {
  return total;
}

function describe(e: unknown): string {
  if (e instanceof Error) return e.stack ?? `${e.name}: ${e.message}`;
  return String(e);
}

function caught(kind: string, e: unknown): void {
  total++;
  const now = Date.now();
  if (now - windowStart >= LOG_WINDOW_MS) {
    if (suppressed > 0) {
      log.error("{count} more unhandled errors were not logged", { count: suppressed });
    }
    windowStart = now;
    inWindow = suppressed = 0;
  }
  if (inWindow >= LOG_BURST) {
    suppressed++;
    return;
  }
  inWindow++;
  log.error("unhandled {kind} (kept running; please report this bug): {error}", {
    kind,
    error: describe(e),
  });
}

/**
 * Keeps the process alive on an unhandled promise rejection or uncaught error: logs it
 * (rate-limited) and counts it instead. Idempotent.
 */
export function installProcessGuard(): void {
  if (installed) return;
  installed = true;
  globalThis.addEventListener("unhandledrejection", (e) => {
    e.preventDefault();
    caught("rejection", e.reason);
  });
  globalThis.addEventListener("error", (e) => {
    e.preventDefault();
    caught("error", e.error ?? e.message);
  });
}

/** Registers `vmq_sidecar_unhandled_errors_total` in `metrics`. */
export function registerProcessGuardMetrics(metrics: Metrics): void {
  const c = metrics.counter(
    "vmq_sidecar_unhandled_errors_total",
    "Errors nothing handled (unhandled promise rejections, uncaught errors) that the process" +
      " survived; each is a bug, see the log.",
  );
  metrics.onCollect(() => c.values.set("", total));
}

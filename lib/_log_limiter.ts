// Private: rate limiting of log lines that one bad peer (or thousands) can cause per connection
// or per frame, so a flood of bad input cannot flood the log; the counters count every one.

/** Options of {@linkcode LogLimiter}. */
export interface LogLimiterOptions {
  /** Lines logged individually per reason in a burst, before only summaries (default 5). */
  first?: number;
  /** How often a summary of what was held back is logged, in ms (default 10000). */
  intervalMs?: number;
  /**
   * Logs one summary line: how many lines were held back in the last `intervalMs`, per
   * reason (only reasons with some; in first-seen order).
   */
  summary: (held: ReadonlyMap<string, number>, intervalMs: number) => void;
}

/**
 * Lets the first `first` lines of each reason through, then holds further ones back and logs
 * one summary line per interval with the counts per reason. After a whole interval with
 * nothing held back the burst is over: each reason again gets its first lines. So a burst of
 * any size logs at most `first` lines per reason plus one line per interval.
 *
 * The summary timer runs only while lines are held back, and never keeps the process alive.
 */
export class LogLimiter {
  readonly #first: number;
  readonly #intervalMs: number;
  readonly #summary: LogLimiterOptions["summary"];
  /** Lines let through per reason in the current burst. */
  readonly #shown = new Map<string, number>();
  /** Lines held back per reason since the last summary. */
  readonly #held = new Map<string, number>();
  #timer: ReturnType<typeof setInterval> | undefined;

  /** A limiter; see {@linkcode LogLimiterOptions}. */
  constructor(options: LogLimiterOptions) {
    this.#first = options.first ?? 5;
    this.#intervalMs = options.intervalMs ?? 10_000;
    this.#summary = options.summary;
  }

  /** Lines per reason logged individually in a burst. */
  get first(): number {
    return this.#first;
  }

  /**
   * Whether a line for `reason` may be logged now; when not, it is counted for the next
   * summary. `shown` is how many of this reason were let through in the burst, this one
   * included (e.g. to say "further ones summarized" on the last).
   */
  allow(reason: string): { ok: boolean; shown: number } {
    const shown = this.#shown.get(reason) ?? 0;
    if (shown < this.#first) {
      this.#shown.set(reason, shown + 1);
      return { ok: true, shown: shown + 1 };
    }
    this.#held.set(reason, (this.#held.get(reason) ?? 0) + 1);
    if (this.#timer === undefined) {
      this.#timer = setInterval(() => this.#tick(), this.#intervalMs);
      Deno.unrefTimer(this.#timer);
    }
    return { ok: false, shown };
  }

  /** Logs the summary of what is held back now (if anything), e.g. at shutdown. */
  flush(): void {
    if (this.#held.size === 0) return;
    const held = new Map(this.#held);
    this.#held.clear();
    this.#summary(held, this.#intervalMs);
  }

  /** Flushes and stops the timer. */
  close(): void {
    this.flush();
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.#shown.clear();
  }

  #tick(): void {
    if (this.#held.size > 0) return this.flush();
    // A quiet interval: the burst is over.
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.#shown.clear();
  }
}

/** `reason=count` pairs of a summary, e.g. `reset=1200, frame_too_large=3`. */
export function formatHeld(held: ReadonlyMap<string, number>): string {
  return [...held].map(([k, v]) => `${k}=${v}`).join(", ");
}

/**
 * At most one line per interval for one recurring condition (e.g. "dropping: over the
 * budget"); what happened in between is counted into the next line.
 */
export class LineThrottle {
  readonly #intervalMs: number;
  #loggedAt = -Infinity;
  #since = 0;

  /** A throttle of one line per `intervalMs` (default 10 s). */
  constructor(intervalMs = 10_000) {
    this.#intervalMs = intervalMs;
  }

  /**
   * `n` more occurrences: undefined when no line may be logged now (they are counted), else
   * how many occurred since the last line and were not logged (for its "N more" suffix).
   */
  take(n = 1): number | undefined {
    const now = performance.now();
    if (now - this.#loggedAt < this.#intervalMs) {
      this.#since += n;
      return undefined;
    }
    const since = this.#since;
    this.#loggedAt = now;
    this.#since = 0;
    return since;
  }
}

/**
 * The wait between two attempts of one output: exponential with jitter, never shorter than what
 * the destination asked for (`Retry-After`), and cut short when the destination is back (the
 * sink's ready signal), for a flush, or for a close.
 *
 * @module
 */

/**
 * Backoff of one output's retries. One wait at a time (delivery retries one batch at a time).
 *
 * @example
 * ```ts
 * import { Backoff } from "../internal.ts";
 * const b = new Backoff(100, 30_000);
 * const waited = b.wait(0); // 50–100 ms
 * b.wake(true); // closing: ends it now
 * await waited;
 * ```
 */
export class Backoff {
  /** First delay, in ms. */
  readonly initialMs: number;
  /** Longest delay, in ms. */
  readonly maxMs: number;
  #delay: number;
  #wake: ((force: boolean) => void) | undefined;
  /** The destination said it is back (not yet acted on): the next wait is cut short. */
  #ready = false;

  /** A backoff from `initialMs`, doubling up to `maxMs`. */
  constructor(initialMs: number, maxMs: number) {
    this.initialMs = initialMs;
    this.maxMs = maxMs;
    this.#delay = initialMs;
  }

  /**
   * Waits before the next attempt: the current delay × [0.5, 1) (which then doubles, up to
   * `maxMs`), or not at all when the destination said it is back meanwhile — but never less
   * than `retryAfterMs`. Resolves early on {@linkcode Backoff.wake}.
   */
  async wait(retryAfterMs: number): Promise<void> {
    const notBefore = performance.now() + retryAfterMs;
    const jittered = this.#delay * (0.5 + Math.random() / 2);
    const ms = Math.max(this.#ready ? 0 : jittered, retryAfterMs);
    this.#delay = Math.min(this.#delay * 2, this.maxMs);
    await new Promise<void>((resolve) => {
      let t = setTimeout(resolve, ms);
      this.#wake = (force) => {
        clearTimeout(t);
        const left = force ? 0 : notBefore - performance.now();
        if (left > 0) t = setTimeout(resolve, left);
        else resolve();
      };
    });
    this.#wake = undefined;
    if (this.#ready) {
      this.#ready = false;
      this.#delay = this.initialMs; // should the next attempt fail, back off anew
    }
  }

  /**
   * Ends a wait in progress: at once with `force` (closing), else once the destination's
   * `Retry-After` is over (a flush).
   */
  wake(force: boolean): void {
    this.#wake?.(force);
  }

  /** The destination is back (a reconnect, a successful probe): a wait in progress ends now. */
  ready(): void {
    this.#ready = true;
    this.#wake?.(false);
  }

  /** A new batch: its first failure waits `initialMs` again. */
  reset(): void {
    this.#delay = this.initialMs;
  }

  /** An attempt succeeded after failures: forget that the destination said it is back. */
  recovered(): void {
    this.#delay = this.initialMs;
    this.#ready = false;
  }
}

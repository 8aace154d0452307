/**
 * A byte budget shared by many holders: memory is reserved before it is allocated and released
 * when freed, so that together the holders never hold more than the capacity. Reservations that
 * do not fit wait, and are granted strictly in the order they asked (no starvation of a large
 * one by a stream of small ones); the number waiting is bounded.
 *
 * Used for the read buffers of partially received large frames (`max_buffered_bytes`); built to
 * serve the queued events of in-memory output buffers too, whose appends cannot wait: they
 * {@linkcode MemoryBudget.charge} (may overshoot, as a full queue is overshot by one read) and
 * readers pause while the budget is {@linkcode MemoryBudget.full}, until
 * {@linkcode MemoryBudget.whenAvailable}.
 *
 * @module
 */

/** Options of {@linkcode MemoryBudget}. */
export interface MemoryBudgetOptions {
  /** Bytes that may be held at once (at least 1). */
  capacity: number;
  /**
   * Most reservations waiting at once (default 10000); one more is refused with
   * {@linkcode BudgetWaitersFullError}. Size it to the number of possible holders (e.g.
   * `max_connections`: each connection waits for at most one reservation).
   */
  maxWaiters?: number;
  /** What the budget is, for error messages (default `"memory budget"`), e.g. `--max-buffered-bytes`. */
  name?: string;
}

/** A reservation was refused because {@linkcode MemoryBudgetOptions.maxWaiters} are already waiting. */
export class BudgetWaitersFullError extends Error {
  /** Creates the error; `name` is the budget's. */
  constructor(budget: string, waiting: number, bytes: number) {
    super(
      `${budget}: cannot wait for ${bytes} bytes: ${waiting} reservations are already waiting (the most allowed)`,
    );
    this.name = "BudgetWaitersFullError";
  }
}

interface Waiter {
  bytes: number;
  /** Whether granting holds the bytes (reserve) or only reports room (whenAvailable). */
  hold: boolean;
  resolve: () => void;
  reject: (e: unknown) => void;
  signal?: AbortSignal;
  onAbort?: () => void;
}

/**
 * A byte budget: {@linkcode MemoryBudget.reserve} before allocating,
 * {@linkcode MemoryBudget.release} after freeing. A request larger than the whole capacity is
 * granted only when nothing else is held (alone), so it cannot wait for ever; callers that
 * want a hard bound keep their requests at most the capacity.
 *
 * @example
 * ```ts
 * import { MemoryBudget } from "./memory_budget.ts";
 * const budget = new MemoryBudget({ capacity: 256 * 1024 * 1024 });
 * await budget.reserve(60 * 1024 * 1024); // waits, in order, while it does not fit
 * const buf = new Uint8Array(60 * 1024 * 1024);
 * // … use buf …
 * budget.release(buf.length);
 * ```
 */
export class MemoryBudget {
  /** Bytes that may be held at once. */
  readonly capacity: number;
  /** Most reservations waiting at once. */
  readonly maxWaiters: number;
  /** What the budget is, for messages. */
  readonly name: string;
  /** Reservations that had to wait (since creation). */
  waits = 0;
  #held = 0;
  readonly #queue: Waiter[] = [];

  /** A budget of `capacity` bytes, nothing held. */
  constructor(options: MemoryBudgetOptions) {
    if (!(options.capacity >= 1) || !Number.isFinite(options.capacity)) {
      throw new RangeError(
        `memory budget capacity must be a positive number, got ${options.capacity}`,
      );
    }
    this.capacity = options.capacity;
    this.maxWaiters = options.maxWaiters ?? 10_000;
    this.name = options.name ?? "memory budget";
  }

  /** Bytes held now (reserved or charged, not yet released). */
  get held(): number {
    return this.#held;
  }

  /** Reservations waiting now. */
  get waiting(): number {
    return this.#queue.length;
  }

  /** Bytes the waiting reservations ask for together. */
  get waitingBytes(): number {
    let n = 0;
    for (const w of this.#queue) if (w.hold) n += w.bytes;
    return n;
  }

  /** Whether holders should pause: the capacity is reached, or reservations are waiting. */
  get full(): boolean {
    return this.#held >= this.capacity || this.#queue.length > 0;
  }

  /**
   * Reserves `bytes` at once if they fit and nobody waits ahead (true), else reserves nothing
   * (false). Never waits.
   */
  tryReserve(bytes: number): boolean {
    checkBytes(bytes);
    if (this.#queue.length > 0 || !this.#fits(bytes)) return false;
    this.#held += bytes;
    return true;
  }

  /**
   * Reserves `bytes`, waiting (in the order asked) while they do not fit. Rejects with
   * {@linkcode BudgetWaitersFullError} when {@linkcode MemoryBudget.maxWaiters} already wait,
   * and with `signal`'s reason when it aborts first (then nothing is reserved).
   */
  reserve(bytes: number, signal?: AbortSignal): Promise<void> {
    if (this.tryReserve(bytes)) return Promise.resolve();
    return this.#wait(bytes, true, signal);
  }

  /**
   * Resolves once `bytes` could be reserved, in order with the reservations waiting, without
   * reserving them (for holders that charge synchronously and only pause: see
   * {@linkcode MemoryBudget.charge}). Same rejections as {@linkcode MemoryBudget.reserve}.
   */
  whenAvailable(bytes = 1, signal?: AbortSignal): Promise<void> {
    checkBytes(bytes);
    if (this.#queue.length === 0 && this.#fits(bytes)) return Promise.resolve();
    return this.#wait(bytes, false, signal);
  }

  /**
   * Holds `bytes` without waiting, even beyond the capacity — for appends that cannot wait
   * (they pause their source while {@linkcode MemoryBudget.full} instead). Release them as usual.
   */
  charge(bytes: number): void {
    checkBytes(bytes);
    this.#held += bytes;
  }

  /** Gives back `bytes` reserved or charged before; grants the waiters that now fit, in order. */
  release(bytes: number): void {
    checkBytes(bytes);
    if (bytes > this.#held) {
      throw new RangeError(
        `${this.name}: releasing ${bytes} bytes but only ${this.#held} are held (released twice?)`,
      );
    }
    this.#held -= bytes;
    this.#grant();
  }

  #fits(bytes: number): boolean {
    // A request over the whole capacity is granted alone (else it would never be).
    return this.#held + bytes <= this.capacity || (this.#held === 0 && bytes > this.capacity);
  }

  #wait(bytes: number, hold: boolean, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (this.#queue.length >= this.maxWaiters) {
      return Promise.reject(new BudgetWaitersFullError(this.name, this.#queue.length, bytes));
    }
    this.waits++;
    return new Promise<void>((resolve, reject) => {
      const w: Waiter = { bytes, hold, resolve, reject, signal };
      if (signal) {
        w.onAbort = () => {
          const i = this.#queue.indexOf(w);
          if (i < 0) return;
          this.#queue.splice(i, 1);
          reject(signal.reason);
          this.#grant(); // the ones behind it may fit now
        };
        signal.addEventListener("abort", w.onAbort, { once: true });
      }
      this.#queue.push(w);
    });
  }

  #grant(): void {
    const q = this.#queue;
    while (q.length > 0 && this.#fits(q[0].bytes)) {
      const w = q.shift()!;
      if (w.onAbort) w.signal!.removeEventListener("abort", w.onAbort);
      if (w.hold) this.#held += w.bytes;
      w.resolve();
    }
  }
}

function checkBytes(bytes: number): void {
  if (!(bytes >= 0) || !Number.isFinite(bytes)) {
    throw new RangeError(`memory budget: a byte count must be a non-negative number, got ${bytes}`);
  }
}

/**
 * What the router sees of an output: the synchronous, per-read calls of the hot path. An
 * output's delivery (pipeline/delivery.ts, or the local outputs' own) implements it; the router
 * calls nothing else per read.
 *
 * @module
 */

/** The router-facing side of one output. All calls are synchronous (inside one read's dispatch). */
export interface OutputPort {
  /**
   * Whether it takes events as the frames received, in whole runs ({@linkcode OutputPort.pushRun}):
   * frames kept as they are, blocking when full, no per-batch event limit.
   */
  readonly takesRuns: boolean;
  /** Whether it pauses readers when full (`on_full=block`) rather than dropping. */
  readonly blocking: boolean;
  /** Broker time (ms since the epoch) of the first event of the read whose frames come next. */
  noteEventTime(ms: number): void;
  /**
   * Takes the frame `buf[start, end)` (the `Any` bytes), copied or encoded; `hook` and
   * `buf[valueStart, valueEnd)` are its parsed envelope (`hook` < 0: not parsed). False when it
   * was dropped (full, `on_full=drop`).
   */
  pushAt(
    buf: Uint8Array,
    start: number,
    end: number,
    hook?: number,
    valueStart?: number,
    valueEnd?: number,
  ): boolean;
  /** Takes `count` frames lying, length prefixes included, in `buf[start, end)` (one copy). */
  pushRun(buf: Uint8Array, start: number, end: number, count: number): void;
  /** Starts sending what the read gave it; once per read, after its pushes. */
  kick(): void;
  /** Whether blocking readers should pause now. */
  readonly full: boolean;
  /** Whether paused readers must still wait. */
  readonly congested: boolean;
  /** Resolves once it is no longer {@linkcode OutputPort.congested}. */
  writable(): Promise<void>;
}

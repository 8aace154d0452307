/**
 * Per-client order: {@linkcode ReorderStage} releases the frames of one
 * `(mountpoint, client_id)` in broker-timestamp order when they arrive out of order — across
 * the plugin's connections — by up to a window.
 *
 * @module
 */
import { type EnvelopeRanges, parseEnvelopeAt } from "../wire/envelope.ts";
import { LEN, WireCursor, WireError } from "../wire/cursor.ts";
import { HOOK_TABLES } from "../schema/tables.ts";
import type { MemoryBudget } from "../memory_budget.ts";

/** Field numbers of `mountpoint` and `client_id` per hook index (0: the hook has none). */
const MOUNTPOINT_NO = HOOK_TABLES.map((t) =>
  t.fields.find((f) => f.name === "mountpoint")?.no ?? 0
);
const CLIENT_ID_NO = HOOK_TABLES.map((t) => t.fields.find((f) => f.name === "client_id")?.no ?? 0);

/** One frame held by the stage. */
interface Held {
  readonly frame: Uint8Array;
  readonly client: ClientState;
  /** Broker time: seconds since the epoch (exact up to 2^53) and nanoseconds. */
  readonly seconds: number;
  readonly nanos: number;
  /** Arrival order (ties of equal timestamps keep it). */
  readonly seq: number;
  /** Clock time at which its window ends. */
  readonly deadline: number;
  released: boolean;
}

/** What the stage knows of one `(mountpoint, client_id)`. */
interface ClientState {
  readonly key: string;
  /** Held frames, a binary min-heap by (seconds, nanos, seq). */
  readonly heap: Held[];
  /** The greatest broker time released so far (-1: none). */
  relSeconds: number;
  relNanos: number;
  /** Clock time its heap became empty (for forgetting idle clients). */
  idleSince: number;
}

/** `a` before `b` in release order. */
function before(a: Held, b: Held): boolean {
  return a.seconds !== b.seconds
    ? a.seconds < b.seconds
    : a.nanos !== b.nanos
    ? a.nanos < b.nanos
    : a.seq < b.seq;
}

function heapPush(h: Held[], x: Held): void {
  let i = h.length;
  h.push(x);
  while (i > 0) {
    const p = (i - 1) >> 1;
    if (!before(x, h[p])) break;
    h[i] = h[p];
    i = p;
  }
  h[i] = x;
}

function heapPop(h: Held[]): Held {
  const top = h[0];
  const last = h.pop()!;
  if (h.length > 0) {
    let i = 0;
    const n = h.length;
    while (true) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const c = l + 1 < n && before(h[l + 1], h[l]) ? l + 1 : l;
      if (!before(h[c], last)) break;
      h[i] = h[c];
      i = c;
    }
    h[i] = last;
  }
  return top;
}

/** The parsed ordering fields of a frame (reused). */
interface Parsed {
  key: string;
  seconds: number;
  nanos: number;
}

const cursor = new WireCursor();
const ranges: EnvelopeRanges = { typeUrlStart: 0, typeUrlEnd: 0, valueStart: 0, valueEnd: 0 };

/** A string with one UTF-16 unit per byte: a one-to-one key, without decoding UTF-8. */
function bytesKey(b: Uint8Array, start: number, end: number): string {
  let s = "";
  if (end - start <= 64) { // client ids are short: a loop beats apply() on a view
    for (let i = start; i < end; i++) s += String.fromCharCode(b[i]);
    return s;
  }
  for (let i = start; i < end; i += 4096) {
    s += String.fromCharCode.apply(null, b.subarray(i, Math.min(end, i + 4096)) as never);
  }
  return s;
}

/** Reads key and timestamp of `frame` into `out`; false when it has no usable ones. */
function parseOrderFields(frame: Uint8Array, out: Parsed): boolean {
  const hook = parseEnvelopeAt(frame, 0, frame.length, ranges);
  if (hook < 0) return false;
  const mpNo = MOUNTPOINT_NO[hook], cidNo = CLIENT_ID_NO[hook];
  const c = cursor;
  let seconds = 0, nanos = 0;
  let mpStart = 0, mpEnd = 0, cidStart = 0, cidEnd = 0;
  try {
    c.reset(frame, ranges.valueStart, ranges.valueEnd);
    while (c.pos < c.end) {
      const tag = c.varint32();
      const no = tag >>> 3, wt = tag & 7;
      if (wt === LEN && (no === 1 || no === mpNo || no === cidNo)) {
        const end = c.lenEnd();
        if (no === 1) {
          const outer = c.end;
          c.end = end;
          while (c.pos < end) {
            const t = c.varint32();
            if (t === 0x08) seconds = c.varint64();
            else if (t === 0x10) nanos = c.varint32();
            else c.skip(t & 7);
          }
          c.end = outer;
        } else if (no === mpNo) (mpStart = c.pos), (mpEnd = end);
        else (cidStart = c.pos), (cidEnd = end);
        c.pos = end;
      } else c.skip(wt);
    }
  } catch (e) {
    if (e instanceof WireError) return false;
    throw e;
  }
  // No timestamp (or one at/before the epoch): not a time the broker sends, nothing to order by.
  if (!(seconds > 0) || nanos < 0 || nanos >= 1e9) return false;
  out.seconds = seconds;
  out.nanos = nanos;
  // Length-prefixed mountpoint, then client_id: distinct pairs give distinct keys.
  out.key = `${mpEnd - mpStart}:${bytesKey(frame, mpStart, mpEnd)}${
    bytesKey(frame, cidStart, cidEnd)
  }`;
  return true;
}

/** The time source of a {@linkcode ReorderStage}; tests inject a manual one. */
export interface ReorderClock {
  /** Milliseconds on a monotonic clock (default `performance.now()`). */
  now(): number;
  /** Calls `fn` after `ms` (default `setTimeout`). */
  setTimeout(fn: () => void, ms: number): unknown;
  /** Cancels what {@linkcode ReorderClock.setTimeout} returned (default `clearTimeout`). */
  clearTimeout(handle: unknown): void;
}

const SYSTEM_CLOCK: ReorderClock = {
  now: () => performance.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

/** Options of a {@linkcode ReorderStage}. */
export interface ReorderOptions {
  /**
   * Called with every frame released (the `Any` bytes) and whether it is late: it arrived after
   * a later event of its client had been released. Called synchronously from `push`, `poll`,
   * `flush` or the stage's timer; an exception it throws goes to `onError`. It must not call
   * back into the stage.
   */
  readonly release: (frame: Uint8Array, late: boolean) => void;
  /** How long a frame is held for earlier events of its client to arrive (ms, default 100). */
  readonly windowMs?: number;
  /** Most frames held; more release the oldest early (default 100 000). */
  readonly maxEvents?: number;
  /** Most bytes of frames held; more release the oldest early (default 32 MiB). */
  readonly maxBytes?: number;
  /**
   * How long a client with nothing held is remembered, to flag its late events (ms, default
   * 60 000). An event arriving later than this after its client's last release is not flagged.
   */
  readonly rememberMs?: number;
  /** Most clients remembered with nothing held; more forget the longest idle (default 100 000). */
  readonly maxIdleClients?: number;
  /** Copy pushed frames (default true); false when the caller's bytes stay valid until released. */
  readonly copy?: boolean;
  /**
   * The sidecar's shared memory budget (`max_queued_bytes`): the bytes of the frames held are
   * charged to it while held and released with them, so readers pause when the ordering stages
   * and the queues together fill it. None by default.
   */
  readonly budget?: Pick<MemoryBudget, "charge" | "release">;
  /** The time source (default: `performance.now()` and the global timers). */
  readonly clock?: ReorderClock;
  /** Where exceptions of `release` go (default `console.error`). */
  readonly onError?: (error: unknown) => void;
  /**
   * A stall: the stage did not run for more than this long (real time) while a window ended more
   * than this long ago (a stopped or CPU-starved process, whose sockets hold frames not read yet). That
   * time is taken out of every window (counted in `stalls`, `stalledMs`), so what reached the
   * sockets within the window is still ordered. Default `windowMs / 4`, at most 50 ms; 0: off.
   */
  readonly stallMs?: number;
}

/**
 * Holds each frame for a window after it arrives and releases the frames of one
 * `(mountpoint, client_id)` in broker-timestamp order (`timestamp`, then arrival for equal
 * times). The guarantee: if event A is earlier than event B of the same client and A arrives at
 * most `windowMs` after B, A is released before B. An event that arrives after a later event of
 * its client was released is released at once, flagged late and counted in `late`. Every frame
 * is released at most `windowMs` after it arrived (plus timer delay).
 *
 * Frames without a client or a timestamp (an empty or unknown frame, a malformed value) are
 * released at once (`unordered`). Memory is bounded: beyond `maxEvents` or `maxBytes` held, the
 * oldest frame is released before its window ends (with the earlier ones of its client),
 * counted in `early`. Each frame costs O(log k), k being the frames held for its client.
 * Counters add up: `received = released + held`.
 *
 * @example
 * ```ts
 * import { ReorderStage } from "./reorder.ts";
 * const stage = new ReorderStage({ windowMs: 100, release: (frame, late) => console.log(frame, late) });
 * stage.push(new Uint8Array(0)); // not an event: released at once, counted as unordered
 * stage.close(); // releases what is held, stops the timer
 * ```
 */
export class ReorderStage {
  readonly #release: (frame: Uint8Array, late: boolean) => void;
  readonly #windowMs: number;
  readonly #maxEvents: number;
  readonly #maxBytes: number;
  readonly #rememberMs: number;
  readonly #maxIdle: number;
  readonly #copy: boolean;
  readonly #budget: Pick<MemoryBudget, "charge" | "release"> | undefined;
  readonly #clock: ReorderClock;
  readonly #onError: (error: unknown) => void;
  readonly #stallMs: number;
  /** Clock time taken out of the windows (stalls); the stage's time is `clock.now() - this`. */
  #stalledMs = 0;
  #stalls = 0;
  /** Real time (`performance.now()`) and the stage's time at its last entry (push, poll, flush, timer). */
  #lastReal = -Infinity;
  #lastNow = -Infinity;
  readonly #clients = new Map<string, ClientState>();
  /** Clients with nothing held, longest idle first (Map order = insertion order). */
  readonly #idle = new Map<string, ClientState>();
  /** Every held frame in arrival order = deadline order (released ones skipped lazily). */
  #fifo: Held[] = [];
  #head = 0;
  #seq = 0;
  #lastArrival = -Infinity;
  #timer: unknown;
  #timerAt = Infinity;
  #closed = false;
  readonly #parsed: Parsed = { key: "", seconds: 0, nanos: 0 };

  #received = 0;
  #released = 0;
  #heldBytes = 0;
  #late = 0;
  #early = 0;
  #unordered = 0;

  /** A stage releasing to `options.release`. */
  constructor(options: ReorderOptions) {
    this.#release = options.release;
    this.#windowMs = options.windowMs ?? 100;
    this.#maxEvents = options.maxEvents ?? 100_000;
    this.#maxBytes = options.maxBytes ?? 32 << 20;
    this.#rememberMs = options.rememberMs ?? 60_000;
    this.#maxIdle = options.maxIdleClients ?? 100_000;
    this.#copy = options.copy ?? true;
    this.#budget = options.budget;
    this.#clock = options.clock ?? SYSTEM_CLOCK;
    this.#onError = options.onError ?? ((e) => console.error("reorder: release failed:", e));
    this.#stallMs = options.stallMs ?? Math.min(50, this.#windowMs / 4);
    for (
      const [name, v] of Object.entries({
        windowMs: this.#windowMs,
        rememberMs: this.#rememberMs,
        stallMs: this.#stallMs,
      })
    ) {
      if (!(v >= 0 && v < Infinity)) throw new RangeError(`${name} must be ≥ 0 ms, not ${v}`);
    }
    for (
      const [name, v] of Object.entries({ maxEvents: this.#maxEvents, maxBytes: this.#maxBytes })
    ) {
      if (!(v >= 1)) throw new RangeError(`${name} must be ≥ 1, not ${v}`);
    }
  }

  /** Frames pushed. */
  get received(): number {
    return this.#received;
  }
  /** Frames released (on time, late, early, unordered or flushed). */
  get released(): number {
    return this.#released;
  }
  /** Frames held now. */
  get held(): number {
    return this.#received - this.#released;
  }
  /** Bytes of the frames held now. */
  get heldBytes(): number {
    return this.#heldBytes;
  }
  /** Frames released flagged late. */
  get late(): number {
    return this.#late;
  }
  /** Frames released before their window ended because the stage was full. */
  get early(): number {
    return this.#early;
  }
  /** Frames released at once because they have no client or timestamp to order by. */
  get unordered(): number {
    return this.#unordered;
  }
  /** Stalls detected (see {@linkcode ReorderOptions.stallMs}). */
  get stalls(): number {
    return this.#stalls;
  }
  /** Milliseconds taken out of the windows by stalls. */
  get stalledMs(): number {
    return this.#stalledMs;
  }
  /** Clients the stage remembers (holding frames, or idle and remembered for late detection). */
  get clients(): number {
    return this.#clients.size;
  }

  /**
   * Takes one frame (the `Any` bytes, without the length prefix) that arrived at `arrivedMs`
   * on the stage's clock (default: now; an earlier time than the previous push counts as that
   * one's). Releases what is due, possibly this frame. Throws after {@linkcode ReorderStage.close}.
   */
  push(frame: Uint8Array, arrivedMs?: number): void {
    if (this.#closed) throw new Error("ReorderStage is closed");
    this.#received++;
    const now = this.#now();
    const arrived = Math.max(
      arrivedMs === undefined ? now : arrivedMs - this.#stalledMs,
      this.#lastArrival,
    );
    this.#lastArrival = arrived;
    // What was due when this frame arrived goes first (it is earlier in arrival).
    this.#releaseDue(Math.min(now, arrived));
    const p = this.#parsed;
    if (!parseOrderFields(frame, p)) {
      this.#unordered++;
      this.#emit(frame, false);
      return;
    }
    const client = this.#clientOf(p.key, now);
    if (
      p.seconds < client.relSeconds ||
      (p.seconds === client.relSeconds && p.nanos < client.relNanos)
    ) {
      this.#late++;
      this.#emit(frame, true);
      if (client.heap.length === 0) this.#markIdle(client, now);
      return;
    }
    const held: Held = {
      frame: this.#copy ? frame.slice() : frame,
      client,
      seconds: p.seconds,
      nanos: p.nanos,
      seq: this.#seq++,
      deadline: arrived + this.#windowMs,
      released: false,
    };
    heapPush(client.heap, held);
    this.#fifo.push(held);
    this.#heldBytes += frame.length;
    this.#budget?.charge(frame.length);
    while (this.held > this.#maxEvents || this.#heldBytes > this.#maxBytes) {
      const oldest = this.#oldest();
      if (!oldest) break;
      this.#releaseThrough(oldest, now, true);
    }
    this.#releaseDue(now);
    this.#arm(now);
  }

  /** Releases every frame whose window has ended; returns ms until the next one ends (or Infinity). */
  poll(): number {
    const now = this.#now();
    this.#releaseDue(now);
    this.#arm(now);
    const next = this.#oldest();
    return next ? Math.max(0, next.deadline - now) : Infinity;
  }

  /** Releases everything held now, in order per client (at stop, or to hand over). */
  flush(): void {
    const now = this.#now();
    for (let h = this.#oldest(); h; h = this.#oldest()) this.#releaseThrough(h, now, false);
    this.#disarm();
  }

  /** Flushes and stops the timer; later pushes throw. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.flush();
    this.#closed = true;
  }

  /**
   * The stage's time: the clock's, less the stalls. A stall (see
   * {@linkcode ReorderOptions.stallMs}) found here sets the stage's time back to just before
   * the window that ended during it, so frames read right after it are still ordered; the timer
   * then releases `stallMs` later.
   */
  #now(): number {
    const raw = this.#clock.now(), real = performance.now();
    let now = raw - this.#stalledMs;
    const stall = this.#stallMs;
    // The gap is real time (an injected clock may jump: a read horizon, a test's hand).
    if (stall > 0 && real - this.#lastReal > stall) {
      const oldest = this.#oldest();
      if (oldest && now - oldest.deadline > stall) {
        const to = Math.max(this.#lastNow, oldest.deadline - stall);
        if (to < now) {
          this.#stalledMs += now - to;
          this.#stalls++;
          now = to; // the timer, due now, fires and re-arms itself for the stage's time
        }
      }
    }
    this.#lastReal = real;
    this.#lastNow = now;
    return now;
  }

  #clientOf(key: string, now: number): ClientState {
    let c = this.#clients.get(key);
    if (c) {
      this.#idle.delete(key);
      return c;
    }
    this.#forgetIdle(now);
    c = { key, heap: [], relSeconds: -1, relNanos: 0, idleSince: now };
    this.#clients.set(key, c);
    return c;
  }

  #markIdle(c: ClientState, now: number): void {
    c.idleSince = now;
    this.#idle.delete(c.key);
    this.#idle.set(c.key, c);
    this.#forgetIdle(now);
  }

  #forgetIdle(now: number): void {
    for (const c of this.#idle.values()) {
      if (this.#idle.size <= this.#maxIdle && now - c.idleSince < this.#rememberMs) break;
      this.#idle.delete(c.key);
      this.#clients.delete(c.key);
    }
  }

  /** The oldest held frame (skipping released ones), or undefined. */
  #oldest(): Held | undefined {
    const f = this.#fifo;
    while (this.#head < f.length && f[this.#head].released) this.#head++;
    if (this.#head > 1024 && this.#head * 2 > f.length) {
      this.#fifo = f.slice(this.#head);
      this.#head = 0;
    }
    return this.#head < this.#fifo.length ? this.#fifo[this.#head] : undefined;
  }

  #releaseDue(now: number): void {
    for (let h = this.#oldest(); h && h.deadline <= now; h = this.#oldest()) {
      this.#releaseThrough(h, now, false);
    }
  }

  /** Releases `h` and every frame of its client that comes before it. */
  #releaseThrough(h: Held, now: number, early: boolean): void {
    const c = h.client;
    while (c.heap.length > 0 && !before(h, c.heap[0])) {
      const x = heapPop(c.heap);
      x.released = true;
      this.#heldBytes -= x.frame.length;
      this.#budget?.release(x.frame.length);
      c.relSeconds = x.seconds;
      c.relNanos = x.nanos;
      if (early && x.deadline > now) this.#early++;
      this.#emit(x.frame, false);
    }
    if (c.heap.length === 0) this.#markIdle(c, now);
  }

  #emit(frame: Uint8Array, late: boolean): void {
    this.#released++;
    try {
      this.#release(frame, late);
    } catch (e) {
      try {
        this.#onError(e);
      } catch { /* nowhere left to report it */ }
    }
  }

  #arm(now: number): void {
    const next = this.#oldest();
    if (!next) return this.#disarm();
    if (this.#timer !== undefined && this.#timerAt <= next.deadline) return;
    this.#disarm();
    this.#timerAt = next.deadline;
    this.#timer = this.#clock.setTimeout(() => {
      this.#timer = undefined;
      this.#timerAt = Infinity;
      this.poll();
    }, Math.max(0, next.deadline - now));
  }

  #disarm(): void {
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#timerAt = Infinity;
  }
}

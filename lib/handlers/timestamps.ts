/**
 * The broker time of an event as exact nanoseconds and as a `Date`: {@linkcode EventTime}.
 *
 * @module
 */
import type { EventBase, Timestamp } from "../schema/events.ts";

const NS_PER_MS = 1_000_000n;
const NS_PER_S = 1_000_000_000n;

/** `a / b` rounded towards minus infinity (bigint division truncates towards zero). */
function floorDiv(a: bigint, b: bigint): bigint {
  const q = a / b;
  return a % b !== 0n && (a < 0n) !== (b < 0n) ? q - 1n : q;
}

function timestampOf(source: EventBase | Timestamp): Timestamp {
  return "timestamp" in source ? source.timestamp : source;
}

function nanosOf(source: EventBase | Timestamp): bigint {
  const t = timestampOf(source);
  // Nanos outside [0, 1e9) (not something the broker sends) still give the exact sum.
  return t.seconds * NS_PER_S + BigInt(Math.trunc(t.nanos));
}

/**
 * When the broker produced an event: a `Date` (milliseconds, rounded down, so it works
 * wherever a `Date` does) that also carries the exact time in nanoseconds since the Unix epoch
 * ({@linkcode EventTime.epochNanos}). Compare with {@linkcode EventTime.compare}, which is exact;
 * `<` on two `Date`s only sees milliseconds. A time outside the `Date` range (±275,760 years)
 * is an invalid `Date` (`getTime()` is `NaN`) whose `epochNanos` is still exact.
 *
 * An `EventTime` is immutable: the `Date` setters throw a `TypeError`.
 *
 * @example
 * ```ts
 * import { EventTime } from "./timestamps.ts";
 * const t = EventTime.of({ timestamp: { seconds: 1764620157n, nanos: 123456789 } });
 * console.log(t.epochNanos); // 1764620157123456789n
 * console.log(t.toISOString()); // "2025-12-01T20:15:57.123Z"
 * console.log(t.toRfc3339()); // "2025-12-01T20:15:57.123456789Z"
 * ```
 */
export class EventTime extends Date {
  /** Nanoseconds since the Unix epoch, exact. */
  readonly epochNanos: bigint;

  /** The time `epochNanos` nanoseconds after the Unix epoch. */
  constructor(epochNanos: bigint) {
    const ms = floorDiv(epochNanos, NS_PER_MS);
    // Outside ±8.64e15 ms a Date is invalid; Number() of a huge bigint is finite but out of range.
    super(ms > 8_640_000_000_000_000n || ms < -8_640_000_000_000_000n ? NaN : Number(ms));
    this.epochNanos = epochNanos;
  }

  /** The time of `source` (an event or a `Timestamp`). */
  static of(source: EventBase | Timestamp): EventTime {
    return new EventTime(nanosOf(source));
  }

  /** Nanoseconds since the Unix epoch of `source` (an event or a `Timestamp`), exact. */
  static nanos(source: EventBase | Timestamp): bigint {
    return nanosOf(source);
  }

  /**
   * Orders two events (or timestamps, or `EventTime`s) by broker time, exactly: negative when
   * `a` is earlier, positive when later, 0 when at the same nanosecond. A sort comparator:
   * `events.sort(EventTime.compare)`.
   */
  static compare(
    a: EventBase | Timestamp | EventTime,
    b: EventBase | Timestamp | EventTime,
  ): -1 | 0 | 1 {
    const x = a instanceof EventTime ? a.epochNanos : nanosOf(a);
    const y = b instanceof EventTime ? b.epochNanos : nanosOf(b);
    return x < y ? -1 : x > y ? 1 : 0;
  }

  /** Whether this time is strictly earlier than `other` (exact). */
  isBefore(other: EventBase | Timestamp | EventTime): boolean {
    return EventTime.compare(this, other) < 0;
  }

  /** Whether this time is strictly later than `other` (exact). */
  isAfter(other: EventBase | Timestamp | EventTime): boolean {
    return EventTime.compare(this, other) > 0;
  }

  /** Whether this time is the same nanosecond as `other`. */
  equals(other: EventBase | Timestamp | EventTime): boolean {
    return EventTime.compare(this, other) === 0;
  }

  /** This time as a `Timestamp` (`nanos` in [0, 1e9)). */
  toTimestamp(): Timestamp {
    const seconds = floorDiv(this.epochNanos, NS_PER_S);
    return { seconds, nanos: Number(this.epochNanos - seconds * NS_PER_S) };
  }

  /**
   * RFC 3339 in UTC with 9 fractional digits, as the sidecar's JSON writes timestamps
   * (`"2026-11-25T20:15:57.123456789Z"`). Throws a `RangeError` outside the `Date` range.
   */
  toRfc3339(): string {
    const { seconds, nanos } = this.toTimestamp();
    const iso = new Date(Number(seconds) * 1000).toISOString(); // throws RangeError if invalid
    return `${iso.slice(0, -4)}${String(nanos).padStart(9, "0")}Z`;
  }
}

// Immutable: a Date setter would change the Date part and leave epochNanos behind.
for (const name of Object.getOwnPropertyNames(Date.prototype)) {
  if (!name.startsWith("set")) continue;
  Object.defineProperty(EventTime.prototype, name, {
    value() {
      throw new TypeError(`EventTime is immutable: ${name} is not supported`);
    },
    writable: false,
    configurable: true,
  });
}

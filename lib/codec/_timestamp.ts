// Private: RFC 3339 UTC timestamps with 9 fractional digits, with the per-second prefix cached.
import type { ByteBuffer } from "./byte_buffer.ts";

const MAX_SECONDS = 8.64e12; // the range of JavaScript dates
let cachedSeconds = NaN;
let cachedPrefix = new Uint8Array(0); // `"YYYY-MM-DDTHH:MM:SS.`
const NULL = new TextEncoder().encode("null");
/** "000".."999" as ASCII, 3 bytes each. */
const DIGITS3 = new Uint8Array(3000);
for (let i = 0; i < 1000; i++) {
  DIGITS3[3 * i] = 0x30 + ((i / 100) | 0);
  DIGITS3[3 * i + 1] = 0x30 + (((i / 10) | 0) % 10);
  DIGITS3[3 * i + 2] = 0x30 + (i % 10);
}

/**
 * Appends `"2026-11-25T20:15:57.123456789Z"` for a protobuf Timestamp. Nanos outside
 * [0, 1e9) are normalised into the seconds; a time beyond JavaScript's date range (±275,760
 * years) is written as `null`. Years past 9999 use the extended `+YYYYYY` form.
 */
export function writeTimestamp(out: ByteBuffer, seconds: number, nanos: number): void {
  if (nanos < 0 || nanos >= 1e9) {
    seconds += Math.floor(nanos / 1e9);
    nanos = ((nanos % 1e9) + 1e9) % 1e9;
  }
  if (seconds !== cachedSeconds) {
    if (!(Math.abs(seconds) <= MAX_SECONDS)) {
      out.write(NULL);
      return;
    }
    const iso = new Date(seconds * 1000).toISOString(); // ...T10:58:56.000Z
    cachedPrefix = new TextEncoder().encode(`"${iso.slice(0, iso.length - 4)}`);
    cachedSeconds = seconds;
  }
  out.ensure(cachedPrefix.length + 11);
  out.write(cachedPrefix);
  const buf = out.buf, D = DIGITS3;
  let p = out.pos;
  const n = nanos | 0; // an integer in [0, 1e9)
  const hi = 3 * ((n / 1e6) | 0), mid = 3 * (((n / 1e3) | 0) % 1000), lo = 3 * (n % 1000);
  buf[p] = D[hi], buf[p + 1] = D[hi + 1], buf[p + 2] = D[hi + 2];
  buf[p + 3] = D[mid], buf[p + 4] = D[mid + 1], buf[p + 5] = D[mid + 2];
  buf[p + 6] = D[lo], buf[p + 7] = D[lo + 1], buf[p + 8] = D[lo + 2];
  p += 9;
  buf[p++] = 0x5a;
  buf[p++] = 0x22;
  out.pos = p;
}

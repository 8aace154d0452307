// Private: RFC 3339 UTC timestamps with 9 fractional digits, with the per-second prefix cached.
import type { ByteBuffer } from "./byte_buffer.ts";

const MAX_SECONDS = 8.64e12; // the range of JavaScript dates
let cachedSeconds = NaN;
let cachedPrefix = new Uint8Array(0); // `"YYYY-MM-DDTHH:MM:SS.`
const NULL = new TextEncoder().encode("null");

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
  const buf = out.buf;
  let p = out.pos + 8;
  for (let k = 0; k < 9; k++) {
    buf[p--] = 0x30 + (nanos % 10);
    nanos = Math.floor(nanos / 10);
  }
  p = out.pos + 9;
  buf[p++] = 0x5a;
  buf[p++] = 0x22;
  out.pos = p;
}

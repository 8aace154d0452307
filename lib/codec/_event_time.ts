// Private: the broker timestamp of an event, read straight from the wire for the latency
// histogram (once per read, not per event).
import { WireCursor, WireError } from "../wire/cursor.ts";

const cursor = new WireCursor();

/**
 * Milliseconds since the Unix epoch of the `timestamp` (field 1, a `google.protobuf.Timestamp`)
 * of the event message in `buf[start, end)`; `Infinity` when it has none or is malformed.
 */
export function eventTimeAt(buf: Uint8Array, start: number, end: number): number {
  const c = cursor;
  try {
    c.reset(buf, start, end);
    while (c.pos < c.end) {
      const tag = c.varint32();
      if (tag !== 0x0a) {
        c.skip(tag & 7);
        continue;
      }
      const tsEnd = c.lenEnd();
      let seconds = 0, nanos = 0;
      c.end = tsEnd;
      while (c.pos < tsEnd) {
        const t = c.varint32();
        if (t === 0x08) seconds = c.varint64();
        else if (t === 0x10) nanos = c.varint32();
        else c.skip(t & 7);
      }
      // No seconds (an empty or zero timestamp): not a time the broker could have sent.
      return seconds > 0 ? seconds * 1000 + nanos / 1e6 : Infinity;
    }
  } catch (e) {
    if (!(e instanceof WireError)) throw e;
  }
  return Infinity;
}

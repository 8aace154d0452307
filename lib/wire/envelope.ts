/**
 * The `google.protobuf.Any` envelope of each frame: `type_url` (field 1) and `value` (field 2).
 *
 * @module
 */
import { hookIndexOfTypeUrl } from "../schema/hooks.ts";
import { LEN, WireCursor, WireError } from "./cursor.ts";

/** {@linkcode parseEnvelope} result: the frame is not a valid `Any`. */
export const MALFORMED_ENVELOPE: -2 = -2;
/** {@linkcode parseEnvelope} result: a valid `Any` whose `type_url` is not an event of ours. */
export const UNKNOWN_TYPE: -1 = -1;

/** Where the parts of the last parsed envelope are (offsets into the frame). Reused. */
export interface EnvelopeRanges {
  /** Start of the `type_url` bytes. */
  typeUrlStart: number;
  /** End of the `type_url` bytes. */
  typeUrlEnd: number;
  /** Start of the encoded event message. */
  valueStart: number;
  /** End of the encoded event message. */
  valueEnd: number;
}

const cursor = new WireCursor();

/**
 * Parses the `Any` envelope of `frame` into `out` and returns the hook index (into `HOOKS`),
 * {@linkcode UNKNOWN_TYPE} or {@linkcode MALFORMED_ENVELOPE}. Allocates nothing.
 *
 * @example
 * ```ts
 * import { HOOKS, parseEnvelope } from "../mod.ts";
 * const ranges = { typeUrlStart: 0, typeUrlEnd: 0, valueStart: 0, valueEnd: 0 };
 * const hook = parseEnvelope(new Uint8Array(0), ranges); // an empty frame: unknown type
 * console.log(hook < 0 ? "not an event" : HOOKS[hook]);
 * ```
 */
export function parseEnvelope(frame: Uint8Array, out: EnvelopeRanges): number {
  return parseEnvelopeAt(frame, 0, frame.length, out);
}

/**
 * {@linkcode parseEnvelope} for the frame `buf[start, end)`, without a view: the ranges in
 * `out` are offsets into `buf`.
 *
 * @example
 * ```ts
 * import { parseEnvelopeAt } from "../mod.ts";
 * const ranges = { typeUrlStart: 0, typeUrlEnd: 0, valueStart: 0, valueEnd: 0 };
 * const slab = new Uint8Array([0, 0, 0, 0]); // a length prefix, then an empty frame
 * console.log(parseEnvelopeAt(slab, 4, 4, ranges)); // -1: not an event
 * ```
 */
export function parseEnvelopeAt(
  buf: Uint8Array,
  start: number,
  end: number,
  out: EnvelopeRanges,
): number {
  // Fast path: the plugin's encoding — `type_url` (tag 0x0a, length < 128), then `value`
  // (tag 0x12, length ≤ 3 varint bytes) running to the end of the frame.
  if (buf[start] === 0x0a && end - start >= 3) {
    const urlStart = start + 2, urlEnd = urlStart + buf[start + 1];
    if (buf[start + 1] < 0x80 && urlEnd < end && buf[urlEnd] === 0x12) {
      let p = urlEnd + 1, b = buf[p++], len = b & 0x7f;
      if (b >= 0x80) {
        b = buf[p++];
        len |= (b & 0x7f) << 7;
        if (b >= 0x80) {
          b = buf[p++];
          len |= (b & 0x7f) << 14;
          if (b >= 0x80) len = -1;
        }
      }
      if (p <= end && p + len === end) {
        out.typeUrlStart = urlStart;
        out.typeUrlEnd = urlEnd;
        out.valueStart = p;
        out.valueEnd = end;
        return hookIndexOfTypeUrl(buf, urlStart, urlEnd);
      }
    }
  }
  return parseGeneral(buf, start, end, out);
}

function parseGeneral(buf: Uint8Array, start: number, end: number, out: EnvelopeRanges): number {
  out.typeUrlStart =
    out.typeUrlEnd =
    out.valueStart =
    out.valueEnd =
      start;
  const c = cursor;
  c.reset(buf, start, end);
  try {
    while (c.pos < c.end) {
      const tag = c.tag();
      const no = tag >>> 3, wt = tag & 7;
      if ((no === 1 || no === 2) && wt === LEN) {
        const end = c.lenEnd();
        if (no === 1) {
          out.typeUrlStart = c.pos;
          out.typeUrlEnd = end;
        } else {
          out.valueStart = c.pos;
          out.valueEnd = end;
        }
        c.pos = end;
      } else if (no === 0 || no === 1 || no === 2) {
        return MALFORMED_ENVELOPE;
      } else {
        c.skip(tag);
      }
    }
  } catch (e) {
    if (e instanceof WireError) return MALFORMED_ENVELOPE;
    throw e;
  }
  return hookIndexOfTypeUrl(buf, out.typeUrlStart, out.typeUrlEnd);
}

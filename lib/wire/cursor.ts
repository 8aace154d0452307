// Private: a minimal protobuf wire-format cursor for the hot path and the one place the wire
// rules are decided (per protobuf-go's protowire): varints of at most 10 bytes whose 10th byte
// holds only bit 63; field numbers 1..2²⁹−1; wire types 0..5; a group ends with the end tag of
// its own number, nested ≤ MAX_GROUP_DEPTH; a length must fit in what is left. Allocates
// nothing; throws WireError on malformed input (callers catch it once per frame).

/** Malformed protobuf bytes. Internal: callers turn it into a typed result. */
export class WireError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "WireError";
  }
}

// One instance, thrown again and again with its message set: capturing a stack trace for
// every malformed frame would cost more than parsing it (a hostile peer sends many). Callers
// catch it at once and keep only the message.
const WIRE_ERROR = new WireError("");
function malformed(message: string): never {
  WIRE_ERROR.message = message;
  throw WIRE_ERROR;
}

/** Wire types. */
export const VARINT = 0, I64 = 1, LEN = 2, SGROUP = 3, EGROUP = 4, I32 = 5;

/** Deepest nesting of (unknown) groups accepted; deeper is malformed. */
export const MAX_GROUP_DEPTH = 100;

/** A cursor over `buf[pos, end)`. One instance is reused per parsing site. */
export class WireCursor {
  buf: Uint8Array = new Uint8Array(0);
  pos = 0;
  end = 0;

  reset(buf: Uint8Array, pos: number, end: number): void {
    this.buf = buf;
    this.pos = pos;
    this.end = end;
  }

  /**
   * Reads a field tag: a varint whose field number is in [1, 2²⁹ − 1]. Returns
   * `(number << 3) | wireType` as an unsigned 32-bit value (so `tag >>> 3` and `tag & 7` work).
   */
  tag(): number {
    const b = this.buf[this.pos];
    if (b >= 8 && b < 0x80 && this.pos < this.end) { // field numbers 1..15: one byte
      this.pos++;
      return b;
    }
    const v = this.varint64();
    if (!(v >= 8 && v < 4294967296)) malformed("invalid field number");
    return v;
  }

  /** Reads a varint and returns its low 32 bits as a signed int (int32/enum/bool/tag). */
  varint32(): number {
    const buf = this.buf;
    let pos = this.pos;
    let b = buf[pos++];
    let v = b & 0x7f;
    if (b >= 0x80) {
      b = buf[pos++];
      v |= (b & 0x7f) << 7;
      if (b >= 0x80) {
        b = buf[pos++];
        v |= (b & 0x7f) << 14;
        if (b >= 0x80) {
          b = buf[pos++];
          v |= (b & 0x7f) << 21;
          if (b >= 0x80) {
            b = buf[pos++];
            v |= b << 28;
            // Bytes 6..10 only carry the high bits; the 10th may only hold bit 63.
            for (let i = 6; b >= 0x80; i++) {
              b = buf[pos++];
              if (i === 10 && b > 1) malformed("varint longer than 64 bits");
            }
          }
        }
      }
    }
    if (pos > this.end) malformed("truncated varint");
    this.pos = pos;
    return v;
  }

  /** Reads a varint as a signed 64-bit value in a double (exact up to 2^53). */
  varint64(): number {
    const buf = this.buf;
    let pos = this.pos;
    let lo = 0, hi = 0, b = 0;
    for (let shift = 0; shift < 28; shift += 7) {
      b = buf[pos++];
      lo |= (b & 0x7f) << shift;
      if (b < 0x80) return this.done(pos, lo >>> 0);
    }
    b = buf[pos++];
    lo |= (b & 0x7f) << 28;
    hi = (b & 0x7f) >> 4;
    if (b < 0x80) return this.done(pos, hi * 4294967296 + (lo >>> 0));
    for (let shift = 3; shift < 32; shift += 7) {
      b = buf[pos++];
      if (shift === 31 && b > 1) break; // the 10th byte may only hold bit 63
      hi |= (b & 0x7f) << shift;
      if (b < 0x80) return this.done(pos, (hi | 0) * 4294967296 + (lo >>> 0));
    }
    malformed("varint longer than 64 bits");
  }

  private done(pos: number, value: number): number {
    if (pos > this.end) malformed("truncated varint");
    this.pos = pos;
    return value;
  }

  /** Reads a length prefix and checks the bytes are there; returns the end of the range. */
  lenEnd(): number {
    const b = this.buf[this.pos];
    let len: number;
    if (b < 0x80) {
      len = b;
      this.pos++;
    } else len = this.varint64(); // all 64 bits: a length ≥ 2³² is not a small one
    const end = this.pos + len;
    if (!(len >= 0) || end > this.end) malformed("length beyond end of message");
    return end;
  }

  /** Reads a varint as an exact signed 64-bit bigint (int64 fields, the slow path only). */
  varint64BigInt(): bigint {
    const buf = this.buf;
    let pos = this.pos, v = 0n, shift = 0n, b = 0x80;
    for (let i = 1; b >= 0x80; i++) {
      b = buf[pos++];
      if (i === 10 && b > 1) malformed("varint longer than 64 bits");
      v |= BigInt(b & 0x7f) << shift;
      shift += 7n;
    }
    if (pos > this.end || b === undefined) malformed("truncated varint");
    this.pos = pos;
    return BigInt.asIntN(64, v);
  }

  /**
   * Skips the value of the field whose tag was just read (an unknown field). A group must end
   * with the end tag of its own field number, nested at most {@linkcode MAX_GROUP_DEPTH} deep.
   */
  skip(tag: number): void {
    switch (tag & 7) {
      case VARINT:
        this.varint64();
        return;
      case I64:
        this.pos += 8;
        break;
      case LEN:
        this.pos = this.lenEnd();
        return;
      case I32:
        this.pos += 4;
        break;
      case SGROUP: { // deprecated groups: skip fields up to the matching end-group tag
        const open = this.#groups;
        let depth = 0;
        open[depth++] = tag >>> 3;
        while (depth > 0) {
          if (this.pos >= this.end) malformed("unterminated group");
          const t = this.tag(), wt = t & 7;
          if (wt === EGROUP) {
            if (t >>> 3 !== open[--depth]) malformed("mismatched end-group tag");
          } else if (wt === SGROUP) {
            if (depth === MAX_GROUP_DEPTH) malformed("groups nested too deep");
            open[depth++] = t >>> 3;
          } else this.skip(t);
        }
        return;
      }
      default: // 4 (an end-group without a start), 6, 7
        malformed(`unexpected wire type ${tag & 7}`);
    }
    if (this.pos > this.end) malformed("truncated fixed-size field");
  }

  #groups = new Uint32Array(MAX_GROUP_DEPTH);
}

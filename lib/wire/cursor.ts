// Private: a minimal protobuf wire-format cursor for the hot path. Allocates nothing; throws
// WireError on malformed input (callers catch it once per frame).

/** Malformed protobuf bytes. Internal: callers turn it into a typed result. */
export class WireError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "WireError";
  }
}

/** Wire types. */
export const VARINT = 0, I64 = 1, LEN = 2, SGROUP = 3, EGROUP = 4, I32 = 5;

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
            // Bytes 6..10 only carry the sign extension of negative int32 values.
            for (let i = 0; b >= 0x80; i++) {
              if (i === 5) throw new WireError("varint longer than 10 bytes");
              b = buf[pos++];
            }
          }
        }
      }
    }
    if (pos > this.end) throw new WireError("truncated varint");
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
      hi |= (b & 0x7f) << shift;
      if (b < 0x80) return this.done(pos, (hi | 0) * 4294967296 + (lo >>> 0));
    }
    throw new WireError("varint longer than 10 bytes");
  }

  private done(pos: number, value: number): number {
    if (pos > this.end) throw new WireError("truncated varint");
    this.pos = pos;
    return value;
  }

  /** Reads a length prefix and checks the bytes are there; returns the end of the range. */
  lenEnd(): number {
    const len = this.varint32() >>> 0;
    const end = this.pos + len;
    if (len > 0x7fffffff || end > this.end) throw new WireError("length beyond end of message");
    return end;
  }

  /** Skips one field's value of wire type `wt`. */
  skip(wt: number): void {
    switch (wt) {
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
      case SGROUP: // deprecated groups: skip fields up to the matching end-group tag
        for (let depth = 1; depth > 0;) {
          if (this.pos >= this.end) throw new WireError("unterminated group");
          const wt = this.varint32() & 7;
          if (wt === EGROUP) depth--;
          else if (wt === SGROUP) depth++;
          else this.skip(wt);
        }
        return;
      default:
        throw new WireError(`unsupported wire type ${wt}`);
    }
    if (this.pos > this.end) throw new WireError("truncated fixed-size field");
  }
}

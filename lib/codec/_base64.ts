// Private: standard padded base64, written straight into a ByteBuffer as a JSON string.
import type { ByteBuffer } from "./byte_buffer.ts";

const ALPHABET = new TextEncoder().encode(
  "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",
);
/** The two characters of every 12-bit value, as a big-endian 16-bit pair. */
const PAIRS = new Uint16Array(4096);
for (let i = 0; i < 4096; i++) PAIRS[i] = (ALPHABET[i >> 6] << 8) | ALPHABET[i & 63];

/** Appends `"<base64 of src[start, end)>"` to `out`. */
export function writeBase64(out: ByteBuffer, src: Uint8Array, start: number, end: number): void {
  const n = end - start;
  out.ensure(Math.ceil(n / 3) * 4 + 2);
  const buf = out.buf, view = out.view, A = ALPHABET, P = PAIRS;
  let p = out.pos;
  buf[p++] = 0x22;
  let i = start;
  // Three bytes become four characters, stored as one 32-bit word.
  for (const stop = end - 2; i < stop; i += 3) {
    const v = (src[i] << 16) | (src[i + 1] << 8) | src[i + 2];
    view.setUint32(p, (P[v >> 12] << 16) | P[v & 4095]);
    p += 4;
  }
  if (end - i === 1) {
    const v = src[i] << 16;
    buf[p++] = A[v >> 18];
    buf[p++] = A[(v >> 12) & 63];
    buf[p++] = 0x3d;
    buf[p++] = 0x3d;
  } else if (end - i === 2) {
    const v = (src[i] << 16) | (src[i + 1] << 8);
    buf[p++] = A[v >> 18];
    buf[p++] = A[(v >> 12) & 63];
    buf[p++] = A[(v >> 6) & 63];
    buf[p++] = 0x3d;
  }
  buf[p++] = 0x22;
  out.pos = p;
}

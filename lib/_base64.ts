// Private: standard padded base64, written straight into a ByteBuffer as a JSON string.
import type { ByteBuffer } from "./byte_buffer.ts";

const ALPHABET = new TextEncoder().encode(
  "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",
);

/** Appends `"<base64 of src[start, end)>"` to `out`. */
export function writeBase64(out: ByteBuffer, src: Uint8Array, start: number, end: number): void {
  const n = end - start;
  out.ensure(Math.ceil(n / 3) * 4 + 2);
  const buf = out.buf, A = ALPHABET;
  let p = out.pos;
  buf[p++] = 0x22;
  let i = start;
  for (const stop = end - 2; i < stop; i += 3) {
    const v = (src[i] << 16) | (src[i + 1] << 8) | src[i + 2];
    buf[p++] = A[v >> 18];
    buf[p++] = A[(v >> 12) & 63];
    buf[p++] = A[(v >> 6) & 63];
    buf[p++] = A[v & 63];
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

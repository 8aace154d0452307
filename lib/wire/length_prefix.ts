/**
 * The plugin's length prefix: every frame is a 4-byte big-endian body length, then the body (a
 * `google.protobuf.Any`). The one place that reads or writes it; small enough for V8 to inline.
 *
 * @module
 */

/** Bytes of the length prefix in front of every frame body. */
export const FRAME_HEADER = 4;

/** The frame body length stored at `b[p, p + 4)` (unsigned 32-bit big-endian). */
export function readLength(b: Uint8Array, p: number): number {
  return ((b[p] << 24) | (b[p + 1] << 16) | (b[p + 2] << 8) | b[p + 3]) >>> 0;
}

/** Stores `n` (0 ≤ n < 2³²) as the length prefix at `b[p, p + 4)`. */
export function writeLength(b: Uint8Array, p: number, n: number): void {
  b[p] = n >>> 24;
  b[p + 1] = (n >>> 16) & 255;
  b[p + 2] = (n >>> 8) & 255;
  b[p + 3] = n & 255;
}

/**
 * Encodes `body` as one frame: the 4-byte big-endian length, then the bytes.
 *
 * @example
 * ```ts
 * import { encodeFrame } from "../mod.ts";
 * encodeFrame(new Uint8Array([1, 2])); // Uint8Array [0, 0, 0, 2, 1, 2]
 * ```
 */
export function encodeFrame(body: Uint8Array): Uint8Array {
  const out = new Uint8Array(FRAME_HEADER + body.length);
  writeLength(out, 0, body.length);
  out.set(body, FRAME_HEADER);
  return out;
}

/**
 * Calls `fn` for each frame of `batch` — `count` length-prefixed frames back to back in `bytes`
 * (a `OutputBatch`) — with the frame's `Any` bytes (a view) and its index.
 *
 * @example
 * ```ts
 * import { forEachFrame } from "../mod.ts";
 * const batch = { bytes: new Uint8Array([0, 0, 0, 0]), count: 1 };
 * forEachFrame(batch, (frame) => console.log(frame.length)); // 0
 * ```
 */
export function forEachFrame(
  batch: { readonly bytes: Uint8Array; readonly count: number },
  fn: (frame: Uint8Array, index: number) => void,
): void {
  const b = batch.bytes;
  let p = 0;
  for (let i = 0; i < batch.count; i++) {
    const start = p + FRAME_HEADER, end = start + readLength(b, p);
    fn(b.subarray(start, end), i);
    p = end;
  }
}

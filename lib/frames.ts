/**
 * Framing of the plugin's byte stream: a 4-byte big-endian length, then that many bytes of a
 * `google.protobuf.Any`. Correct for any chunking; frames are zero-copy views into read slabs.
 *
 * @module
 */
import { FrameTooLargeError, TruncatedFrameError } from "./errors.ts";

/** Default maximum frame body size: 64 MiB. */
export const DEFAULT_MAX_FRAME_BYTES = 64 * 1024 * 1024;

/** Anything frames can be read from: a Deno connection/file or a byte stream. */
export type FrameSource =
  | { read(p: Uint8Array): Promise<number | null> }
  | ReadableStream<Uint8Array>;

/** Options of {@linkcode readFrameBatches} and {@linkcode readFrames}. */
export interface ReadFramesOptions {
  /** Largest accepted frame body in bytes; a bigger length field is rejected before allocating. */
  maxFrameBytes?: number;
  /** Name of the connection for error messages, e.g. `"127.0.0.1:53422"`. */
  peer?: string;
  /** Largest read slab in bytes (default 256 KiB); slabs start at 16 KiB and grow under load. */
  maxReadBytes?: number;
}

const MIN_SLAB = 16 * 1024;

/**
 * Reads a framed stream and yields, per read, every frame that read completed: each frame is
 * the `Any` bytes without the length prefix (a zero-length frame is an empty array). Frames
 * are views into buffers that are never reused, so they stay valid after the next read.
 *
 * Ends at a clean end of stream; throws {@linkcode TruncatedFrameError} when the stream ends
 * inside a frame and {@linkcode FrameTooLargeError} for a length over the limit — in both
 * cases only after yielding every complete frame before the fault.
 *
 * @example
 * ```ts ignore
 * const conn = await Deno.connect({ port: 8890 });
 * for await (const frames of readFrameBatches(conn)) {
 *   for (const frame of frames) console.log(frame.length);
 * }
 * ```
 */
export async function* readFrameBatches(
  source: FrameSource,
  options: ReadFramesOptions = {},
): AsyncGenerator<Uint8Array[], void, undefined> {
  const maxFrame = options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
  const maxSlab = Math.max(MIN_SLAB, options.maxReadBytes ?? 256 * 1024);
  const peer = options.peer ?? "";
  const read = readerOf(source);
  let slabSize = MIN_SLAB;
  let buf = new Uint8Array(slabSize);
  let start = 0; // first unconsumed byte
  let end = 0; // end of valid data
  try {
    while (true) {
      // Cut every complete frame out of buf[start, end).
      let batch: Uint8Array[] | undefined;
      let need = 4; // bytes the next frame needs in total (header + body)
      while (end - start >= 4) {
        const len = ((buf[start] << 24) | (buf[start + 1] << 16) | (buf[start + 2] << 8) |
          buf[start + 3]) >>> 0;
        if (len > maxFrame) {
          if (batch) yield batch;
          throw new FrameTooLargeError(peer, len, maxFrame);
        }
        if (end - start - 4 < len) {
          need = len + 4;
          break;
        }
        (batch ??= []).push(buf.subarray(start + 4, start + 4 + len));
        start += 4 + len;
      }
      if (batch) yield batch;
      // Make room: a fresh slab when the current one cannot take the frame or a useful read.
      const have = end - start;
      if (buf.length - start < need || (have === 0 && buf.length - end < MIN_SLAB / 4)) {
        const size = Math.max(slabSize, need);
        const next = new Uint8Array(size);
        next.set(buf.subarray(start, end));
        buf = next;
        start = 0;
        end = have;
      }
      const n = await read(buf.subarray(end));
      if (n === null) {
        if (end > start) {
          throw new TruncatedFrameError(peer, end - start, need - (end - start));
        }
        return;
      }
      end += n;
      // Reads that fill the space offered mean a busy stream: use larger slabs from now on.
      if (end === buf.length && slabSize < maxSlab) slabSize = Math.min(maxSlab, slabSize * 2);
    }
  } finally {
    await closeReader(source);
  }
}

/**
 * Yields frames one by one; see {@linkcode readFrameBatches} for the contract.
 *
 * @example
 * ```ts ignore
 * for await (const frame of readFrames(Deno.stdin.readable)) console.log(frame.length);
 * ```
 */
export async function* readFrames(
  source: FrameSource,
  options: ReadFramesOptions = {},
): AsyncGenerator<Uint8Array, void, undefined> {
  for await (const batch of readFrameBatches(source, options)) yield* batch;
}

type ReadFn = (into: Uint8Array) => Promise<number | null>;
const streamReaders = new WeakMap<object, ReadableStreamDefaultReader<Uint8Array>>();

function readerOf(source: FrameSource): ReadFn {
  if (!(source instanceof ReadableStream)) return (p) => source.read(p);
  const reader = source.getReader();
  streamReaders.set(source, reader);
  let pending: Uint8Array | undefined;
  return async (into) => {
    while (!pending || pending.length === 0) {
      const r = await reader.read();
      if (r.done) return null;
      pending = r.value;
    }
    const n = Math.min(into.length, pending.length);
    into.set(pending.subarray(0, n));
    pending = pending.subarray(n);
    return n;
  };
}

async function closeReader(source: FrameSource): Promise<void> {
  const reader = streamReaders.get(source);
  if (!reader) return;
  streamReaders.delete(source);
  await reader.cancel().catch(() => {});
}

/** Encodes `body` as one frame: the 4-byte big-endian length, then the bytes. */
export function encodeFrame(body: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + body.length);
  new DataView(out.buffer).setUint32(0, body.length);
  out.set(body, 4);
  return out;
}

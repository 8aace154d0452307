/**
 * Framing of the plugin's byte stream: a 4-byte big-endian length, then that many bytes of a
 * `google.protobuf.Any`. Correct for any chunking; frames are zero-copy views into read slabs.
 *
 * @module
 */
import { FrameTooLargeError, TruncatedFrameError } from "../errors.ts";
import { pooledSize, releaseBuffer, takeBuffer } from "../_regions.ts";
import { readLength } from "./length_prefix.ts";
export { encodeFrame } from "./length_prefix.ts";

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
  /**
   * Largest read slab in bytes (default 64 KiB); slabs start at 16 KiB and grow under load.
   * Measured with 100 busy connections: 64 KiB reads beat 256 KiB ones (the bytes a read
   * brings in are still in the CPU cache when they are parsed).
   */
  maxReadBytes?: number;
  /**
   * Where {@linkcode readFrameSlabs} reserves the memory of a read buffer larger than
   * `maxReadBytes` (one that holds a large frame) before allocating it, releasing it when the
   * buffer is replaced or the stream ends. While the reservation waits, the stream is not read
   * (backpressure). The reservation is the whole frame at once, taken while holding no other
   * reserved buffer, so readers never deadlock on the budget. Ignored by the other readers.
   */
  budget?: ReadBudget;
}

/**
 * A byte budget for {@linkcode ReadFramesOptions.budget}, e.g. a `MemoryBudget`
 * (lib/memory_budget.ts).
 */
export interface ReadBudget {
  /** Reserves `bytes` if they fit now (true), else nothing (false). */
  tryReserve(bytes: number): boolean;
  /** Reserves `bytes`, waiting until they fit; a rejection ends the stream with that error. */
  reserve(bytes: number): Promise<void>;
  /** Gives back `bytes` reserved before. */
  release(bytes: number): void;
}

/**
 * The complete frames of one read, as offsets into the read buffer (no per-frame objects):
 * frame `i` is `buf[starts[i], ends[i])`, the `Any` bytes without the length prefix.
 */
export interface FrameSlab {
  /** The read buffer. */
  buf: Uint8Array;
  /** Start of each frame; the first `count` entries are valid. */
  starts: Uint32Array;
  /** End of each frame. */
  ends: Uint32Array;
  /** Number of frames. */
  count: number;
}

const MIN_SLAB = 16 * 1024;
const DEFAULT_MAX_READ = 64 * 1024;
/** Most bytes the read buffers of all {@linkcode readFrameSlabs} streams may hold together
 * before one grows past its current size. */
const REUSED_SLAB_BUDGET = 32 * 1024 * 1024;
let reusedSlabBytes = 0;

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
  for await (const slab of frameSlabs(source, options, false)) {
    const batch = new Array<Uint8Array>(slab.count);
    for (let i = 0; i < slab.count; i++) batch[i] = slab.buf.subarray(slab.starts[i], slab.ends[i]);
    yield batch;
  }
}

/**
 * The hot-path form of {@linkcode readFrameBatches}: yields per read one {@linkcode FrameSlab}
 * (frames as offsets) — the same object every time, over one read buffer per stream that is
 * reused: a slab and its bytes are valid only until the generator is resumed, so copy what
 * must outlive it. No allocation per read or per frame; the buffer starts at 16 KiB, moves to
 * `maxReadBytes` (64 KiB) once a read fills it while all streams together hold less than
 * 32 MiB, and shrinks again when the stream calms down. Same errors as {@linkcode readFrameBatches}.
 *
 * @example
 * ```ts ignore
 * for await (const slab of readFrameSlabs(conn)) {
 *   for (let i = 0; i < slab.count; i++) console.log(slab.ends[i] - slab.starts[i]);
 * }
 * ```
 */
export function readFrameSlabs(
  source: FrameSource,
  options: ReadFramesOptions = {},
): AsyncGenerator<FrameSlab, void, undefined> {
  return frameSlabs(source, options, true);
}

async function* frameSlabs(
  source: FrameSource,
  options: ReadFramesOptions,
  reuse: boolean,
): AsyncGenerator<FrameSlab, void, undefined> {
  const maxFrame = options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
  const maxSlab = Math.max(MIN_SLAB, options.maxReadBytes ?? DEFAULT_MAX_READ);
  const peer = options.peer ?? "";
  const read = readerOf(source);
  const budget = reuse ? options.budget : undefined;
  let slabSize = MIN_SLAB;
  // A reused buffer comes from a region (lib/_regions.ts): given back when the stream ends or
  // the buffer is replaced, its memory returns to the system once the region is unused.
  let buf = reuse ? takeBuffer(slabSize) : new Uint8Array(slabSize);
  if (reuse) reusedSlabBytes += buf.length;
  const slab: FrameSlab = {
    buf,
    starts: new Uint32Array(64),
    ends: new Uint32Array(64),
    count: 0,
  };
  let start = 0; // first unconsumed byte
  let end = 0; // end of valid data
  let shortReads = 0; // consecutive reads that filled less than 1/8 of the space offered
  // A reused buffer larger than maxSlab holds one large frame: reads into it stop at that
  // frame's end, and it is replaced by a regular one once the frame is handed out.
  let oneFrame = false;
  let reserved = 0; // bytes of `budget` reserved for buf
  try {
    while (true) {
      // Cut every complete frame out of buf[start, end).
      let count = 0;
      let need = 4; // bytes the next frame needs in total (header + body)
      let starts = slab.starts, ends = slab.ends;
      while (end - start >= 4) {
        const len = readLength(buf, start);
        if (len > maxFrame) {
          if (count > 0) yield fill(slab, buf, count);
          throw new FrameTooLargeError(peer, len, maxFrame);
        }
        if (end - start - 4 < len) {
          need = len + 4;
          break;
        }
        if (count === starts.length) {
          slab.starts = starts = grow(starts);
          slab.ends = ends = grow(ends);
        }
        starts[count] = start + 4;
        ends[count++] = start += 4 + len;
      }
      if (count > 0) yield fill(slab, buf, count);
      const have = end - start;
      if (reuse) {
        // The frames handed out are dead now: keep the buffer, move the partial frame to the
        // front. A new buffer only to grow, to take a big frame, or to shrink after one.
        const want = Math.max(slabSize, need);
        if (want > buf.length || buf.length > 2 * want || (oneFrame && want <= maxSlab)) {
          const size = want <= slabSize ? want : pooledSize(want);
          // A large frame's buffer is reserved whole before it is allocated; meanwhile this
          // reader holds only its regular buffer (the one after a large frame was given back).
          const charge = budget && size > maxSlab ? size : 0;
          if (charge > 0 && !budget!.tryReserve(charge)) await budget!.reserve(charge);
          let next: Uint8Array;
          try {
            next = takeBuffer(size);
          } catch (e) {
            if (charge > 0) budget!.release(charge);
            throw e;
          }
          next.set(buf.subarray(start, end));
          reusedSlabBytes += next.length - buf.length;
          releaseBuffer(buf);
          if (reserved > 0) budget!.release(reserved);
          buf = next;
          reserved = charge;
          oneFrame = size > maxSlab;
        } else if (start > 0 && have > 0) buf.copyWithin(0, start, end);
        start = 0;
        end = have;
      } else if (buf.length - start < need || (have === 0 && buf.length - end < MIN_SLAB / 4)) {
        // A fresh slab when the current one cannot take the frame or a useful read.
        const next = new Uint8Array(Math.max(slabSize, need));
        next.set(buf.subarray(start, end));
        buf = next;
        start = 0;
        end = have;
      }
      const limit = oneFrame ? need : buf.length;
      const space = limit - end;
      const n = await read(end === 0 && limit === buf.length ? buf : buf.subarray(end, limit));
      if (n === null) {
        if (end > start) {
          throw new TruncatedFrameError(peer, end - start, need - (end - start));
        }
        return;
      }
      end += n;
      // Reads that fill the space offered mean a busy stream: use larger slabs from now on;
      // a run of short reads means it calmed down: give memory back.
      if (oneFrame) { /* a large frame's reads say nothing about the stream's pace */ }
      else if (n === space && slabSize < maxSlab) {
        if (!reuse) slabSize = Math.min(maxSlab, slabSize * 2);
        else if (reusedSlabBytes + maxSlab - buf.length <= REUSED_SLAB_BUDGET) slabSize = maxSlab;
        else if (reusedSlabBytes + slabSize <= REUSED_SLAB_BUDGET) {
          slabSize = Math.min(maxSlab, slabSize * 2);
        }
        shortReads = 0;
      } else if (n < space / 8 && slabSize > MIN_SLAB) {
        if (++shortReads >= 16) (slabSize /= 2), (shortReads = 0);
      } else shortReads = 0;
    }
  } finally {
    if (reuse) {
      reusedSlabBytes -= buf.length;
      releaseBuffer(buf);
      if (reserved > 0) budget!.release(reserved);
    }
    await closeReader(source);
  }
}

function fill(slab: FrameSlab, buf: Uint8Array, count: number): FrameSlab {
  slab.buf = buf;
  slab.count = count;
  return slab;
}

function grow(a: Uint32Array): Uint32Array {
  const b = new Uint32Array(a.length * 2);
  b.set(a);
  return b;
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

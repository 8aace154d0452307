/**
 * A few {@linkcode ByteBuffer}s kept for reuse by the senders that encode one buffer per batch
 * in flight (the Redis, NATS and HTTP outputs): a buffer is given back once the destination is
 * done with it, and taken again — its storage kept, grown or not — by a later batch.
 *
 * @module
 */
import { ByteBuffer } from "./byte_buffer.ts";

/**
 * Up to `keep` buffers of at most `maxBytes` each, for reuse.
 *
 * @example
 * ```ts
 * import { ByteBufferPool } from "./byte_buffer_pool.ts";
 * const pool = new ByteBufferPool(64 * 1024);
 * const b = pool.take();
 * b.writeAscii("*1\r\n");
 * pool.give(b); // once the socket is done with its bytes
 * ```
 */
export class ByteBufferPool {
  readonly #free: ByteBuffer[] = [];

  /**
   * A pool of new buffers of `initialBytes`, keeping up to `keep` given back (default 4: the
   * default `concurrency`) of at most `maxBytes` (default 4 × `initialBytes`; larger ones go).
   */
  constructor(
    readonly initialBytes: number,
    readonly keep: number = 4,
    readonly maxBytes: number = 4 * initialBytes,
  ) {}

  /** An empty buffer with at least `minBytes` of storage: a kept one, or a new one. */
  take(minBytes = this.initialBytes): ByteBuffer {
    const b = this.#free.pop();
    if (b !== undefined && b.buf.length >= minBytes) {
      b.pos = 0;
      return b;
    }
    return new ByteBuffer(Math.max(minBytes, this.initialBytes));
  }

  /** Gives `b` back for a later {@linkcode ByteBufferPool.take} (nothing may still read it). */
  give(b: ByteBuffer): void {
    if (this.#free.length < this.keep && b.buf.length <= this.maxBytes) this.#free.push(b);
  }
}

/**
 * A growable byte buffer that output writers fill and drain; the hot path writes into it
 * without intermediate strings.
 *
 * @module
 */

/**
 * Bytes appended at `pos`. Writers call {@linkcode ByteBuffer.ensure} before writing directly
 * into `buf`; the owner drains `bytes()` and calls {@linkcode ByteBuffer.reset}.
 *
 * @example
 * ```ts
 * import { ByteBuffer } from "../mod.ts";
 * const b = new ByteBuffer(64);
 * b.writeAscii("hello");
 * console.log(new TextDecoder().decode(b.bytes())); // "hello"
 * ```
 */
export class ByteBuffer {
  /** The storage; valid bytes are `buf[0, pos)`. Replaced when it grows. */
  buf: Uint8Array;
  /** Number of valid bytes. */
  pos = 0;
  readonly #initial: number;
  #view: DataView = new DataView(new ArrayBuffer(0));
  #viewOf: Uint8Array | undefined;

  /** Creates a buffer with `capacity` bytes of initial storage. */
  constructor(capacity = 256 * 1024) {
    this.#initial = capacity;
    this.buf = new Uint8Array(capacity);
  }

  /** Makes room for `n` more bytes (grows the storage when needed). */
  ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const next = new Uint8Array(Math.max(this.buf.length * 2, this.pos + n));
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
  }

  /** A `DataView` of `buf` (made again when `buf` was replaced), for multi-byte stores. */
  get view(): DataView {
    const buf = this.buf;
    if (this.#viewOf !== buf) {
      this.#view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
      this.#viewOf = buf;
    }
    return this.#view;
  }

  /** Appends `bytes`. */
  write(bytes: Uint8Array): void {
    const n = bytes.length;
    if (this.pos + n > this.buf.length) this.ensure(n);
    const buf = this.buf;
    const pos = this.pos;
    if (n > 32) buf.set(bytes, pos);
    else for (let i = 0; i < n; i++) buf[pos + i] = bytes[i];
    this.pos = pos + n;
  }

  /** Appends one byte. */
  byte(b: number): void {
    if (this.pos >= this.buf.length) this.ensure(1);
    this.buf[this.pos++] = b;
  }

  /** Appends a string of ASCII characters (no check). */
  writeAscii(s: string): void {
    this.ensure(s.length);
    const buf = this.buf;
    let pos = this.pos;
    for (let i = 0; i < s.length; i++) buf[pos++] = s.charCodeAt(i);
    this.pos = pos;
  }

  /** The valid bytes, as a view (valid until the next write or reset). */
  bytes(): Uint8Array {
    return this.buf.subarray(0, this.pos);
  }

  /** Forgets the contents; storage that grew past the initial capacity is released. */
  reset(): void {
    this.pos = 0;
    if (this.buf.length > this.#initial) this.buf = new Uint8Array(this.#initial);
  }
}

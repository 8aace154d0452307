/**
 * The in-memory {@linkcode Buffer}: records are copied into pooled chunks (batch buffers carved
 * out of lib/_regions.ts), sealed batches are views into them, and a chunk is reused once every
 * batch in it is acknowledged. No allocation per record; one small object per sealed batch.
 *
 * @module
 */
import type { ByteBuffer } from "../codec/byte_buffer.ts";
import { releaseBuffer, takeBuffer } from "../_regions.ts";
import type { MemoryBudget } from "../memory_budget.ts";
import type { Buffer, BufferBatch, Cursor, ReadLimits } from "./buffer.ts";

/** Options of a {@linkcode MemoryBuffer}. */
export interface MemoryBufferOptions {
  /** The budget in bytes ({@linkcode Buffer.hasRoom}; the buffer itself never refuses). */
  readonly maxBytes: number;
  /**
   * Size of the pooled chunks (default 256 KiB). A record that does not fit in what is left of
   * the open chunk starts a new one (sealing the open batch first); a bigger record gets a
   * chunk of its own. Coalesced reads merge only batches within one chunk.
   */
  readonly chunkBytes?: number;
  /**
   * A budget shared with other buffers (`max_queued_bytes`): every byte appended is charged to
   * it (never refused: the router pauses readers while it is full) and released on
   * acknowledgement or close.
   */
  readonly budget?: MemoryBudget;
}

/** A batch buffer; its sealed batches are views into it. Recycled once all are acknowledged. */
interface Chunk {
  buf: Uint8Array;
  /** Sealed batches in this chunk not yet acknowledged. */
  refs: number;
  /** The region buffer it was made with (lib/_regions.ts; `buf` until an encoder grows it). */
  slot?: Uint8Array;
}

/** A sealed batch of a {@linkcode MemoryBuffer}: a view into one chunk. */
interface MemoryBatch extends BufferBatch {
  /** The chunk it views. */
  readonly chunk: Chunk;
}

/** Acknowledged chunks kept for reuse (per buffer, at least): no allocation per batch. */
const FREE_CHUNKS = 16;

/**
 * A buffer that took no chunk from its pool for this long, and holds no record, gives its
 * pooled chunks back (their memory returns to the system; see lib/_regions.ts).
 */
const FREE_IDLE_MS = 2000;

/** A sealed batch needs this much room left in its chunk for the next one to start there. */
const MIN_CHUNK_ROOM = 4096;

const NO_LIMITS: ReadLimits = { maxRecords: Infinity, coalesce: false };

/** The one cursor of a {@linkcode MemoryBuffer}. */
class MemoryCursor implements Cursor {
  constructor(readonly name: string) {}
}

/**
 * The in-memory store of one output: one reader ({@linkcode MemoryBuffer.cursor} has exactly one
 * name), records kept until acknowledged, nothing survives the process.
 *
 * Beyond {@linkcode Buffer}, local outputs encode records straight into the open chunk with
 * {@linkcode MemoryBuffer.tail} and {@linkcode MemoryBuffer.commit} (zero copy).
 *
 * @example
 * ```ts
 * import { MemoryBuffer } from "../internal.ts";
 * const b = new MemoryBuffer({ maxBytes: 1 << 20 });
 * const c = b.cursor("demo");
 * b.appendFrame(new Uint8Array([1, 2, 3]), 0, 3);
 * b.seal();
 * const batch = b.read(c, { maxRecords: Infinity, coalesce: false })!;
 * console.log(batch.count, batch.bytes.length); // 1 7
 * b.ack(c, batch);
 * await b.close();
 * ```
 */
export class MemoryBuffer implements Buffer {
  /** Always `"memory"`. */
  readonly kind = "memory" as const;
  /** The budget in bytes. */
  readonly maxBytes: number;
  /** Size of the pooled chunks. */
  readonly chunkBytes: number;
  /** The shared budget its bytes are charged to, if any. */
  readonly budget: MemoryBudget | undefined;
  /** Bytes charged to `budget` and not yet released. */
  #charged = 0;
  readonly #freeChunks: number;
  readonly #sealed: MemoryBatch[] = [];
  #cursor: MemoryCursor | undefined;
  #cur: Chunk = { buf: new Uint8Array(0), refs: 0 };
  #free: Uint8Array[] = [];
  /** Chunks taken from `#free` so far (the idle release checks that none was meanwhile). */
  #freeTaken = 0;
  #freeTimer: ReturnType<typeof setTimeout> | undefined;
  #curStart = 0;
  #curPos = 0;
  #curCount = 0;
  #curSince = Infinity;
  #curEventMs = Infinity;
  #readEventMs = Infinity;
  /** Sequence number of the first open record. */
  #seq = 0;
  #bytes = 0;
  #records = 0;
  #closed = false;
  #readers: (() => void)[] = [];

  /** Creates an empty buffer; chunks are taken on first use. */
  constructor(options: MemoryBufferOptions) {
    this.maxBytes = options.maxBytes;
    this.chunkBytes = options.chunkBytes ?? 256 * 1024;
    this.budget = options.budget;
    // Keep the chunks a buffer cycles through under load (an asynchronous sink's queue swings
    // between half full and full; a sync-capable one stays under a quarter) rather than churn
    // them through the garbage collector: a smaller pool measured more memory, not less.
    this.#freeChunks = Math.max(
      FREE_CHUNKS,
      Math.min(64, Math.ceil(this.maxBytes / 2 / this.chunkBytes)),
    );
  }

  /** Bytes appended and not yet acknowledged (length prefixes, or an encoder's output). */
  get bytes(): number {
    return this.#bytes;
  }

  /** Records appended and not yet acknowledged. */
  get records(): number {
    return this.#records;
  }

  /** Records appended since the last seal. */
  get openRecords(): number {
    return this.#curCount;
  }

  /** Bytes appended since the last seal. */
  get openBytes(): number {
    return this.#curPos - this.#curStart;
  }

  /** `performance.now()` of the first append since the last seal (`Infinity` when none). */
  get openSince(): number {
    return this.#curCount > 0 ? this.#curSince : Infinity;
  }

  /** Whether a sealed batch is waiting to be read (or acknowledged). */
  get hasSealed(): boolean {
    return this.#sealed.length > 0;
  }

  /**
   * Notes the broker time (ms since the epoch) of the first event of the read appended next:
   * a batch's `eventMs` is the oldest such time among its reads (`Infinity`: unknown).
   */
  noteEventTime(ms: number): void {
    this.#readEventMs = ms;
    if (this.#curCount > 0 && ms < this.#curEventMs) this.#curEventMs = ms;
  }

  /** Whether `bytes` more fit in `maxBytes`. */
  hasRoom(bytes: number): boolean {
    return this.#bytes + bytes <= this.maxBytes;
  }

  /**
   * Appends one frame: a length prefix and `src[start, end)`. May seal the open batch first
   * when the open chunk has no room left for it.
   */
  appendFrame(src: Uint8Array, start: number, end: number): void {
    const n = end - start, need = n + 4;
    if (this.#cur.buf.length - this.#curPos < need) {
      this.seal();
      this.#newChunk(need);
    }
    const b = this.#cur.buf;
    const p = this.#curPos;
    b[p] = n >>> 24, b[p + 1] = (n >>> 16) & 255, b[p + 2] = (n >>> 8) & 255, b[p + 3] = n & 255;
    if (n > 64) b.set(src.subarray(start, end), p + 4);
    else for (let i = 0; i < n; i++) b[p + 4 + i] = src[start + i];
    this.#curPos = p + need;
    this.#bytes += need;
    this.#charge(need);
    this.#records++;
    if (this.#curCount++ === 0) this.#startBatch();
  }

  /**
   * Appends `count` frames lying, with their length prefixes, in `src[start, end)` (one copy).
   * May seal the open batch first, like {@linkcode MemoryBuffer.appendFrame}.
   */
  appendRun(src: Uint8Array, start: number, end: number, count: number): void {
    const n = end - start;
    if (this.#cur.buf.length - this.#curPos < n) {
      this.seal();
      this.#newChunk(n);
    }
    this.#cur.buf.set(src.subarray(start, end), this.#curPos);
    this.#curPos += n;
    this.#bytes += n;
    this.#charge(n);
    this.#records += count;
    if (this.#curCount === 0) this.#startBatch();
    this.#curCount += count;
  }

  /**
   * `out`, aliasing the open chunk at its end with at least `reserve` bytes of room (the open
   * batch is sealed and a new chunk started when there is less): an encoder writes one record
   * there, then {@linkcode MemoryBuffer.commit} takes it. `out` may grow meanwhile.
   */
  tail(out: ByteBuffer, reserve: number): ByteBuffer {
    if (this.#cur.buf.length - this.#curPos < reserve) {
      this.seal();
      this.#newChunk(reserve);
    }
    out.buf = this.#cur.buf;
    out.pos = this.#curPos;
    return out;
  }

  /**
   * Takes what was written into `out` since {@linkcode MemoryBuffer.tail} as `records` records
   * (0: nothing, the bytes written are discarded). A grown `out.buf` replaces the open chunk's
   * buffer; sealed batches keep viewing the old one.
   */
  commit(out: ByteBuffer, records: number): void {
    this.#cur.buf = out.buf;
    if (records === 0) return;
    this.#bytes += out.pos - this.#curPos;
    this.#charge(out.pos - this.#curPos);
    this.#curPos = out.pos;
    this.#records += records;
    if (this.#curCount === 0) this.#startBatch();
    this.#curCount += records;
  }

  /** Makes the records appended since the last seal readable, as one batch. */
  seal(): void {
    const count = this.#curCount;
    if (count === 0) return;
    const chunk = this.#cur;
    chunk.refs++;
    const first = this.#seq;
    this.#seq = first + count;
    this.#sealed.push({
      bytes: chunk.buf.subarray(this.#curStart, this.#curPos),
      count,
      first,
      next: first + count,
      since: this.#curSince,
      eventMs: this.#curEventMs,
      chunk,
    });
    this.#curStart = this.#curPos;
    this.#curCount = 0;
    if (chunk.buf.length - this.#curPos < MIN_CHUNK_ROOM) this.#newChunk(0);
    if (this.#readers.length > 0) this.#wakeReaders();
  }

  /**
   * The reader's cursor. A memory buffer has one reader: the first name asked for; asking for
   * another name throws.
   */
  cursor(name: string): Cursor {
    if (this.#cursor === undefined) this.#cursor = new MemoryCursor(name);
    else if (this.#cursor.name !== name) {
      throw new Error(
        `a memory buffer has one reader (${this.#cursor.name}); cannot add reader ${name}: use a disk buffer to share one between outputs`,
      );
    }
    return this.#cursor;
  }

  /**
   * The first sealed batch after `after` (or the oldest unacknowledged one), or undefined. With
   * `limits.coalesce`, sealed batches lying back to back in one chunk are merged into it (up to
   * `limits.maxRecords`; a sealed batch is never split): the batches merged are replaced by the
   * merged one, so a batch already handed out must not be read again with `coalesce` (retry it
   * as it was).
   */
  read(c: Cursor, limits: ReadLimits = NO_LIMITS, after?: BufferBatch): BufferBatch | undefined {
    this.#check(c);
    const sealed = this.#sealed;
    let i = 0;
    if (after !== undefined) {
      while (i < sealed.length && sealed[i].first < after.next) i++;
    }
    if (i >= sealed.length) return undefined;
    return limits.coalesce ? this.#coalesceAt(i, limits.maxRecords) : sealed[i];
  }

  /** Resolves once a sealed batch is waiting, or the buffer closes. */
  readable(c: Cursor): Promise<void> {
    this.#check(c);
    if (this.#sealed.length > 0 || this.#closed) return Promise.resolve();
    return new Promise((resolve) => this.#readers.push(resolve));
  }

  /** Done with `b`, the oldest unacknowledged batch (anything else throws): its space is reused. */
  ack(c: Cursor, b: BufferBatch): void {
    this.#check(c);
    const head = this.#sealed[0];
    if (b !== head) {
      throw new Error(
        `out-of-order acknowledgement: records ${b.first}..${b.next} acknowledged while ${
          head ? `${head.first}..${head.next}` : "none"
        } is the oldest unacknowledged batch`,
      );
    }
    this.#sealed.shift();
    const chunk = head.chunk;
    if (--chunk.refs === 0 && chunk !== this.#cur) this.#recycle(chunk);
    this.#bytes -= head.bytes.length;
    this.#records -= head.count;
    this.#uncharge(head.bytes.length);
  }

  /** Resolves at once: memory is not durable. */
  sync(): Promise<void> {
    return Promise.resolve();
  }

  /**
   * Gives every chunk back (no read may use a batch afterwards). `bytes` and `records` keep
   * what was not acknowledged (the unflushed count).
   */
  close(): Promise<void> {
    this.#closed = true;
    this.#uncharge(this.#charged);
    this.#releaseFree();
    const held = new Set(this.#sealed.map((b) => b.chunk));
    held.add(this.#cur);
    this.#sealed.length = 0;
    this.#cur = { buf: new Uint8Array(0), refs: 0 };
    this.#curStart = this.#curPos = this.#curCount = 0;
    for (const c of held) if (c.slot) releaseBuffer(c.slot);
    this.#wakeReaders();
    return Promise.resolve();
  }

  #charge(bytes: number): void {
    // After close nothing is charged: the records appended then are only counted (unflushed).
    if (this.budget === undefined || this.#closed) return;
    this.budget.charge(bytes);
    this.#charged += bytes;
  }

  #uncharge(bytes: number): void {
    if (this.budget === undefined || bytes === 0) return;
    this.#charged -= bytes;
    this.budget.release(bytes);
  }

  #check(c: Cursor): void {
    if (c !== this.#cursor) throw new Error(`cursor ${c.name} is not this buffer's reader`);
  }

  #wakeReaders(): void {
    for (const r of this.#readers.splice(0)) r();
  }

  #startBatch(): void {
    this.#curSince = performance.now();
    this.#curEventMs = this.#readEventMs;
  }

  /**
   * Merges the sealed batches from index `i` on that lie back to back in one chunk into one
   * (for local outputs, whose batch boundaries mean nothing: one asynchronous write then
   * carries everything queued, where each write costs a turn of the event loop).
   */
  #coalesceAt(i: number, maxRecords: number): MemoryBatch {
    const sealed = this.#sealed, first = sealed[i];
    const start = first.bytes.byteOffset;
    let end = start + first.bytes.length, count = first.count, eventMs = first.eventMs, k = i + 1;
    while (k < sealed.length) {
      const b = sealed[k];
      // Same chunk and same buffer: a chunk the encoder grew views a new buffer (offset 0)
      // while its older batches still view the region slot.
      if (
        b.chunk !== first.chunk || b.bytes.buffer !== first.bytes.buffer ||
        b.bytes.byteOffset !== end || count + b.count > maxRecords
      ) break;
      end += b.bytes.length;
      count += b.count;
      if (b.eventMs < eventMs) eventMs = b.eventMs;
      k++;
    }
    if (k === i + 1) return first;
    const merged: MemoryBatch = {
      bytes: new Uint8Array(first.bytes.buffer, start, end - start),
      count,
      first: first.first,
      next: first.first + count,
      since: first.since,
      eventMs,
      chunk: first.chunk,
    };
    first.chunk.refs -= k - i - 1;
    sealed.splice(i, k - i, merged);
    return merged;
  }

  /** Replaces the open chunk with one of at least `need` bytes (0: an empty placeholder). */
  #newChunk(need: number): void {
    const old = this.#cur;
    const size = need === 0 ? 0 : Math.max(this.chunkBytes, need);
    if (size === this.chunkBytes) {
      const buf = this.#free.pop() ?? takeBuffer(size);
      this.#freeTaken++;
      this.#cur = { buf, refs: 0, slot: buf };
    } else this.#cur = { buf: new Uint8Array(size), refs: 0 };
    this.#curStart = this.#curPos = 0;
    if (old.refs === 0) this.#recycle(old);
  }

  #recycle(chunk: Chunk): void {
    const slot = chunk.slot;
    if (!slot) return;
    if (chunk.buf === slot && this.#free.length < this.#freeChunks && !this.#closed) {
      this.#free.push(slot);
      this.#armFreeRelease();
    } else releaseBuffer(slot);
  }

  /** Gives the pooled chunks back once the buffer stays idle for {@linkcode FREE_IDLE_MS}. */
  #armFreeRelease(): void {
    if (this.#freeTimer !== undefined) return;
    const taken = this.#freeTaken;
    this.#freeTimer = setTimeout(() => {
      this.#freeTimer = undefined;
      if (this.#freeTaken === taken && this.#records === 0) this.#releaseFree();
      else if (this.#free.length > 0) this.#armFreeRelease();
    }, FREE_IDLE_MS);
    Deno.unrefTimer(this.#freeTimer!);
  }

  /** Gives back the pooled chunks and an empty open chunk. */
  #releaseFree(): void {
    if (this.#freeTimer !== undefined) clearTimeout(this.#freeTimer);
    this.#freeTimer = undefined;
    for (const b of this.#free.splice(0)) releaseBuffer(b);
    const cur = this.#cur;
    if (this.#curCount === 0 && cur.refs === 0 && cur.slot) {
      this.#cur = { buf: new Uint8Array(0), refs: 0 };
      this.#curStart = this.#curPos = 0;
      releaseBuffer(cur.slot);
    }
  }
}

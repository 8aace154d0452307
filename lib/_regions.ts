/**
 * Fixed-size buffers carved out of 32 MiB regions, for the buffers that come and go in numbers
 * (connection read buffers, queue batch buffers), so that memory they no longer need goes back
 * to the operating system.
 *
 * Why: an ArrayBuffer's bytes come from glibc's malloc. Requests of 32 MiB and more are always
 * served with mmap and unmapped when freed; smaller ones come from its heap once its dynamic
 * mmap threshold has risen (any freed large buffer raises it), and freed heap memory stays
 * resident. Measured in Deno 2.9: 4000 × 256 KiB buffers freed, RSS unchanged at 1 GiB; 8 × 32
 * MiB regions released with `transfer(0)`, RSS back at once. A region whose buffers are all
 * back is released after {@linkcode REGION_IDLE_MS} without use (detached with `transfer(0)`:
 * freed at once, no garbage collection needed); until then it is reused.
 *
 * @module
 */

/** Size of a region. glibc's dynamic mmap threshold never exceeds 32 MiB. */
export const REGION_BYTES = 32 * 1024 * 1024;

/** How long a region with no buffer in use is kept for reuse. */
export const REGION_IDLE_MS = 2000;

interface Region {
  ab: ArrayBuffer;
  /** Slot indexes not in use. */
  free: number[];
  /** Slots in use. */
  used: number;
  /** When `used` last dropped to 0 (performance.now()). */
  emptySince: number;
  /** Per slot: 1 while handed out (a double release or a stray view is refused). */
  inUse: Uint8Array;
}

/** Buffers of one size, in regions of {@linkcode REGION_BYTES}. */
class SlotPool {
  readonly #regions: Region[] = [];
  #timer: ReturnType<typeof setTimeout> | undefined;

  constructor(readonly slotBytes: number, readonly perRegion: number) {}

  /** Bytes of the regions held (in use or kept for reuse). */
  get bytes(): number {
    return this.#regions.length * this.slotBytes * this.perRegion;
  }

  take(): Uint8Array {
    // The first region with room: in-use slots pack into few regions, the others empty out.
    let r = this.#regions.find((r) => r.free.length > 0);
    if (!r) {
      r = {
        ab: new ArrayBuffer(REGION_BYTES),
        free: Array.from({ length: this.perRegion }, (_, i) => this.perRegion - 1 - i),
        used: 0,
        emptySince: 0,
        inUse: new Uint8Array(this.perRegion),
      };
      this.#regions.push(r);
      owners.set(r.ab, this);
    }
    r.used++;
    const i = r.free.pop()!;
    r.inUse[i] = 1;
    return new Uint8Array(r.ab, i * this.slotBytes, this.slotBytes);
  }

  give(buf: Uint8Array): void {
    const r = this.#regions.find((r) => r.ab === buf.buffer);
    if (!r) return; // its region was released: nothing holds it any more
    const i = buf.byteOffset / this.slotBytes;
    if (!Number.isInteger(i) || buf.length !== this.slotBytes || r.inUse[i] !== 1) {
      throw new Error(
        `releaseBuffer: not a slot in use (offset ${buf.byteOffset}, ${buf.length} bytes): released twice, or a view of part of one`,
      );
    }
    r.inUse[i] = 0;
    r.free.push(i);
    if (--r.used === 0) {
      r.emptySince = performance.now();
      this.#arm();
    }
  }

  #arm(): void {
    if (this.#timer !== undefined) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      const now = performance.now();
      for (let i = this.#regions.length - 1; i >= 0; i--) {
        const r = this.#regions[i];
        if (r.used > 0) continue;
        if (now - r.emptySince >= REGION_IDLE_MS) {
          this.#regions.splice(i, 1);
          owners.delete(r.ab);
          r.ab.transfer(0); // frees the bytes now (munmap)
        } else this.#arm();
      }
    }, REGION_IDLE_MS);
    Deno.unrefTimer(this.#timer!);
  }
}

const pools = new Map<number, SlotPool>();
const owners = new WeakMap<ArrayBuffer, SlotPool>();

/**
 * A zeroed-or-reused buffer of `bytes` bytes: from a region when at most a quarter of one
 * (give it back with {@linkcode releaseBuffer}), else a plain allocation. Contents are
 * arbitrary (a reused slot keeps old bytes).
 */
export function takeBuffer(bytes: number): Uint8Array {
  if (bytes <= 0 || bytes > REGION_BYTES / 4) return new Uint8Array(bytes);
  let pool = pools.get(bytes);
  if (!pool) pools.set(bytes, pool = new SlotPool(bytes, Math.floor(REGION_BYTES / bytes)));
  return pool.take();
}

/**
 * The size to ask {@linkcode takeBuffer} for when at least `bytes` are needed and the exact
 * size does not matter: the next power of two while that comes from a region (few distinct
 * sizes to pool), else `bytes` itself (a big frame is not doubled).
 */
export function pooledSize(bytes: number): number {
  const p = 2 ** Math.ceil(Math.log2(Math.max(1, bytes)));
  return p <= REGION_BYTES / 4 ? p : bytes;
}

/**
 * Gives back a buffer from {@linkcode takeBuffer} (any other buffer is ignored). It must not
 * be used afterwards: its bytes go to the next taker. Throws for a buffer released twice or a
 * view of part of one.
 */
export function releaseBuffer(buf: Uint8Array): void {
  owners.get(buf.buffer as ArrayBuffer)?.give(buf);
}

/** Bytes held in regions, in use or kept for reuse (for tests and diagnostics). */
export function regionBytes(): number {
  let n = 0;
  for (const p of pools.values()) n += p.bytes;
  return n;
}

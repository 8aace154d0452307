// Private: the load generator's engine, shared by `vmq-sidecar send` (lib/app/commands/send.ts) and
// scripts/loadgen.ts — N TCP connections that only write frames, as the vmq_events_sidecar
// plugin does, as fast as possible or at a fixed total rate. Events are spread over the
// connections: each takes the next frame-aligned chunk when its previous write finished, so a
// slow connection never holds the others up and memory stays bounded.
import process from "node:process";
import { readLength } from "../../wire/length_prefix.ts";

/** Options of {@linkcode runLoad}. */
export interface LoadOptions {
  /** `host:port` of the sidecar. */
  addr: string;
  /** Connections (default 100). */
  conns?: number;
  /** Events per second over all connections; 0 = as fast as possible. */
  rate?: number;
  /** Largest write per connection in bytes (default 64 KiB). */
  chunkBytes?: number;
  /** How long to retry the first connection (ms, default 10 s). */
  dialWaitMs?: number;
  /** Rewrites a chunk before it is written (e.g. stamps the send time); default: as is. */
  transform?: (bytes: Uint8Array) => Uint8Array;
}

/** What {@linkcode runLoad} did. */
export interface LoadResult {
  /** Events sent. */
  events: number;
  /** Bytes sent. */
  bytes: number;
  /** Seconds from the first write to the last write done. */
  seconds: number;
  /** Events per second. */
  eventsPerSec: number;
  /** Wall-clock time (Unix ms) of the first write. */
  startMs: number;
  /** Wall-clock time (Unix ms) when every write was done. */
  endMs: number;
  /** CPU seconds (user+sys) this process spent, start-up included. */
  cpuSeconds: number;
}

/** Wall-clock now in fractional ms. */
export const nowMs = (): number => performance.timeOrigin + performance.now();

/** A frame-aligned piece of a source. */
export interface Chunk {
  bytes: Uint8Array;
  frames: number;
  /** Called once the chunk was written (its memory may be reused). */
  done?: () => void;
}

/** Hands out frame-aligned chunks until `total` events were handed out. */
export interface ChunkSource {
  next(maxBytes: number, maxFrames: number): Promise<Chunk | null>;
  close(): void;
}

export function frameLen(b: Uint8Array, p: number): number {
  return readLength(b, p);
}

/** Cycles over frames held in memory (views, no copies). */
export class MemorySource implements ChunkSource {
  #pos = 0;
  #left: number;
  constructor(readonly data: Uint8Array, total: number) {
    this.#left = total;
  }
  next(maxBytes: number, maxFrames: number): Promise<Chunk | null> {
    if (this.#left <= 0) return Promise.resolve(null);
    if (this.#pos >= this.data.length) this.#pos = 0;
    const d = this.data, start = this.#pos;
    let p = start, frames = 0;
    const limit = Math.min(maxFrames, this.#left);
    while (p < d.length && frames < limit) {
      const len = 4 + frameLen(d, p);
      if (frames > 0 && p - start + len > maxBytes) break;
      p += len;
      frames++;
    }
    this.#pos = p;
    this.#left -= frames;
    return Promise.resolve({ bytes: d.subarray(start, p), frames });
  }
  close(): void {}
}

interface Window {
  buf: Uint8Array;
  /** Chunks of this window not written yet. */
  refs: number;
}

/**
 * Streams a frames file through 4 MiB windows, read synchronously (page cache); chunks are
 * views, and a window is reused once the source moved on and all its chunks were written.
 * Wraps at the end of the file.
 */
export class FileSource implements ChunkSource {
  #file: Deno.FsFile;
  #win: Window = { buf: new Uint8Array(0), refs: 0 };
  #free: Window[] = [];
  #start = 0;
  #end = 0;
  #left: number;
  constructor(readonly path: string, total: number) {
    this.#file = Deno.openSync(path);
    this.#left = total;
  }
  /** Makes `need` bytes from #start available; `boundary` (≤ need) ends the last whole frame. */
  #fill(need: number, boundary: number): void {
    const size = Math.max(4 << 20, need);
    let w = this.#free.pop();
    if (!w || w.buf.length < size) w = { buf: new Uint8Array(size), refs: 0 };
    const old = this.#win;
    w.buf.set(old.buf.subarray(this.#start, this.#end));
    if (old.refs === 0) this.#free.push(old);
    this.#win = w;
    this.#end -= this.#start;
    this.#start = 0;
    const buf = w.buf;
    let wrapped = false;
    while (this.#end < need || (this.#end < buf.length && need < buf.length / 2)) {
      const n = this.#file.readSync(buf.subarray(this.#end));
      if (n !== null) {
        this.#end += n;
        wrapped = false;
        continue;
      }
      if (this.#end >= need) break;
      if (this.#end > boundary || wrapped) {
        throw new Error(`${this.path}: truncated frame at the end`);
      }
      this.#file.seekSync(0, Deno.SeekMode.Start);
      wrapped = true;
    }
  }
  next(maxBytes: number, maxFrames: number): Promise<Chunk | null> {
    if (this.#left <= 0) return Promise.resolve(null);
    const limit = Math.min(maxFrames, this.#left);
    let frames = 0, size = 0;
    while (frames < limit) {
      if (this.#end - this.#start < size + 4) this.#fill(size + 4, size);
      const len = 4 + frameLen(this.#win.buf, this.#start + size);
      if (frames > 0 && size + len > maxBytes) break;
      if (this.#end - this.#start < size + len) this.#fill(size + len, size);
      size += len;
      frames++;
    }
    const win = this.#win;
    const bytes = win.buf.subarray(this.#start, this.#start + size);
    win.refs++;
    this.#start += size;
    this.#left -= frames;
    return Promise.resolve({
      bytes,
      frames,
      done: () => {
        if (--win.refs === 0 && win !== this.#win && this.#free.length < 4) this.#free.push(win);
      },
    });
  }
  close(): void {
    this.#file.close();
  }
}

/** Grants events at a fixed total rate to connections waiting for them (one 1 ms ticker). */
class Pacer {
  #t0 = 0;
  #granted = 0;
  #waiters: { max: number; resolve: (n: number) => void }[] = [];
  #timer: ReturnType<typeof setInterval> | undefined;
  constructor(readonly rate: number) {}
  start(): void {
    this.#t0 = performance.now();
    this.#timer = setInterval(() => this.#tick(), 1);
  }
  take(max: number): Promise<number> {
    return new Promise((resolve) => this.#waiters.push({ max, resolve }));
  }
  #tick(): void {
    let due = Math.floor((performance.now() - this.#t0) * this.rate / 1000) - this.#granted;
    while (due > 0 && this.#waiters.length > 0) {
      const w = this.#waiters.shift()!;
      const n = Math.min(due, w.max);
      due -= n;
      this.#granted += n;
      w.resolve(n);
    }
  }
  stop(): void {
    clearInterval(this.#timer);
    for (const w of this.#waiters.splice(0)) w.resolve(0);
  }
}

export function parseAddr(addr: string): { hostname: string; port: number } {
  const i = addr.lastIndexOf(":");
  return { hostname: addr.slice(0, i).replace(/^\[|\]$/g, ""), port: Number(addr.slice(i + 1)) };
}

export function countFrames(d: Uint8Array): number {
  let p = 0, n = 0;
  while (p + 4 <= d.length) {
    p += 4 + frameLen(d, p);
    n++;
  }
  if (p !== d.length) throw new Error("frames data ends inside a frame");
  return n;
}

export async function countFileFrames(path: string): Promise<number> {
  const file = await Deno.open(path);
  const buf = new Uint8Array(1 << 20);
  let n = 0, skip = 0, have = 0; // skip: bytes of the current frame still to pass
  try {
    while (true) {
      const r = await file.read(buf.subarray(have));
      if (r === null) break;
      have += r;
      let p = Math.min(skip, have);
      skip -= p;
      while (skip === 0 && have - p >= 4) {
        const len = 4 + frameLen(buf, p);
        n++;
        if (have - p >= len) p += len;
        else (skip = len - (have - p)), (p = have);
      }
      buf.copyWithin(0, p, have);
      have -= p;
    }
  } finally {
    file.close();
  }
  if (have !== 0 || skip !== 0) throw new Error(`${path}: truncated frame at the end`);
  return n;
}

/** Connects, sends, closes; resolves with what was sent. */
export async function runLoad(o: LoadOptions, source: ChunkSource): Promise<LoadResult> {
  const conns = o.conns ?? 100;
  const chunkBytes = o.chunkBytes ?? 64 * 1024;
  const rate = o.rate ?? 0;
  const addr = parseAddr(o.addr);
  const sockets: Deno.TcpConn[] = [];
  try {
    const deadline = performance.now() + (o.dialWaitMs ?? 10_000);
    while (sockets.length < conns) {
      try {
        const conn = await Deno.connect({ ...addr, transport: "tcp" });
        conn.setNoDelay(true); // like Go's net.Dial (and blast): no Nagle delay on small writes
        sockets.push(conn);
      } catch (e) {
        if (sockets.length > 0 || performance.now() > deadline) throw e;
        await new Promise((r) => setTimeout(r, 20));
      }
    }
    // In rate mode a connection asks for at most ~5 ms worth of events at a time.
    const maxFrames = rate > 0 ? Math.max(1, Math.ceil(rate / 200 / conns)) : Infinity;
    const pacer = rate > 0 ? new Pacer(rate) : undefined;
    let events = 0, bytes = 0;
    const startMs = nowMs();
    const t0 = performance.now();
    pacer?.start();
    await Promise.all(sockets.map(async (conn) => {
      while (true) {
        const want = pacer ? await pacer.take(maxFrames) : Infinity;
        if (want === 0) return;
        const chunk = await source.next(chunkBytes, want);
        if (!chunk) return;
        const b = o.transform ? o.transform(chunk.bytes) : chunk.bytes;
        for (let off = 0; off < b.length;) off += await conn.write(b.subarray(off));
        chunk.done?.();
        events += chunk.frames;
        bytes += b.length;
      }
    })).finally(() => pacer?.stop());
    const seconds = (performance.now() - t0) / 1000;
    const { user, system } = process.cpuUsage();
    return {
      events,
      bytes,
      seconds,
      eventsPerSec: events / seconds,
      startMs,
      endMs: nowMs(),
      cpuSeconds: (user + system) / 1e6,
    };
  } finally {
    for (const s of sockets) {
      try {
        await s.closeWrite();
      } catch { /* already closed */ }
      try {
        s.close();
      } catch { /* already closed */ }
    }
    source.close();
  }
}

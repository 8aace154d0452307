/**
 * A plugin-like sender for tests: {@linkcode PluginSender} drives a sidecar the way VerneMQ's
 * `vmq_events_sidecar` plugin does — a pool of TCP connections, each frame written on one
 * chosen at random, so one client's events can arrive out of order across connections.
 *
 * @module
 */
import { FRAME_HEADER, readLength, writeLength } from "../wire/length_prefix.ts";

/** Options of {@linkcode PluginSender.connect}. */
export interface PluginSenderOptions {
  /** Host of the sidecar (default `127.0.0.1`). */
  readonly hostname?: string;
  /** Port of the sidecar. */
  readonly port: number;
  /** Connections in the pool (default 10; the plugin's default pool is 100). */
  readonly connections?: number;
  /** Seed of the connection choice (default: random; read it back from `seed` to replay a run). */
  readonly seed?: number;
  /** How long to retry the first connection while the sidecar starts (ms, default 10 000). */
  readonly connectTimeoutMs?: number;
  /** Bytes queued and not yet written, over all connections, before `send` waits (default 16 MiB). */
  readonly maxQueuedBytes?: number;
  /**
   * Each write waits a random 0..`jitterMs` ms first (default 0), so connections overtake each
   * other as a busy broker's do. Frames on one connection always stay in order.
   */
  readonly jitterMs?: number;
}

/** A seeded PRNG (mulberry32) returning floats in [0, 1). */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Largest write per connection: queued frames are coalesced up to this size. */
const WRITE_BYTES = 64 * 1024;

/** One connection of the pool and its write queue. */
class PooledConnection {
  readonly queue: Uint8Array[] = [];
  queuedBytes = 0;
  framesWritten = 0;
  writing = false;
  error: Error | undefined;
  /** Resolved when the queue is empty and no write is in flight. */
  #idle: (() => void)[] = [];

  constructor(readonly conn: Deno.TcpConn) {}

  whenIdle(): Promise<void> {
    if (!this.writing && this.queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  settle(): void {
    for (const resolve of this.#idle.splice(0)) resolve();
  }
}

/**
 * A pool of TCP connections to a sidecar that writes frames as the plugin does: 4-byte
 * big-endian length, then the `google.protobuf.Any` bytes, each frame on a connection chosen
 * at random (seedable, so a failing run can be replayed). Frames on one connection are written
 * in the order given; across connections nothing is ordered.
 *
 * `send` queues (and waits only when `maxQueuedBytes` are queued); {@linkcode PluginSender.flush}
 * resolves once everything queued is written to the sockets; {@linkcode PluginSender.close}
 * flushes, half-closes every connection (as the plugin does when it stops) and closes it.
 * A write error (the sidecar went away) fails `send`, `flush` and `close` with that error; it
 * never surfaces as an unhandled rejection.
 *
 * @example
 * ```ts ignore
 * import { PluginSender } from "./plugin_sender.ts";
 * const sender = await PluginSender.connect({ port: 8890, connections: 100, seed: 42 });
 * await sender.send(frameBody); // an Any's bytes, e.g. from the test kit's encoder
 * await sender.close(); // flushed, then closed
 * console.log(sender.framesWritten, sender.seed);
 * ```
 */
export class PluginSender {
  /** The seed of the connection choice (give it back as `seed` to replay the same spread). */
  readonly seed: number;
  #pool: PooledConnection[];
  #random: () => number;
  /** Separate from the connection choice, so jitter timing never changes the spread. */
  #jitterRandom: () => number;
  #maxQueued: number;
  #jitterMs: number;
  #queuedBytes = 0;
  #spaceWaiters: (() => void)[] = [];
  #closing: Promise<void> | undefined;
  #error: Error | undefined;

  private constructor(conns: Deno.TcpConn[], seed: number, o: PluginSenderOptions) {
    this.seed = seed;
    this.#pool = conns.map((c) => new PooledConnection(c));
    this.#random = mulberry32(seed);
    this.#jitterRandom = mulberry32(seed ^ 0x9e3779b9);
    this.#maxQueued = o.maxQueuedBytes ?? 16 << 20;
    this.#jitterMs = o.jitterMs ?? 0;
  }

  /** Opens the pool (retrying the first connection up to `connectTimeoutMs` while the sidecar starts). */
  static async connect(options: PluginSenderOptions): Promise<PluginSender> {
    const hostname = options.hostname ?? "127.0.0.1";
    const n = options.connections ?? 10;
    if (!Number.isInteger(n) || n < 1) {
      throw new RangeError(`connections must be a positive integer, not ${n}`);
    }
    const seed = options.seed ?? crypto.getRandomValues(new Uint32Array(1))[0];
    const deadline = performance.now() + (options.connectTimeoutMs ?? 10_000);
    const conns: Deno.TcpConn[] = [];
    try {
      while (conns.length < n) {
        try {
          const conn = await Deno.connect({ hostname, port: options.port, transport: "tcp" });
          conn.setNoDelay(true);
          conns.push(conn);
        } catch (e) {
          if (conns.length > 0 || performance.now() > deadline) throw e;
          await new Promise((r) => setTimeout(r, 20));
        }
      }
    } catch (e) {
      for (const c of conns) closeQuietly(c);
      throw e;
    }
    return new PluginSender(conns, seed, options);
  }

  /** Connections in the pool. */
  get connections(): number {
    return this.#pool.length;
  }

  /** Frames written to the sockets so far. */
  get framesWritten(): number {
    let n = 0;
    for (const c of this.#pool) n += c.framesWritten;
    return n;
  }

  /** Frames written per connection, by pool index. */
  get framesPerConnection(): number[] {
    return this.#pool.map((c) => c.framesWritten);
  }

  /** Bytes queued and not written yet. */
  get queuedBytes(): number {
    return this.#queuedBytes;
  }

  /**
   * Queues one frame, `body` being the `Any` bytes (the length prefix is added), on a random
   * connection; resolves once it is queued (at once unless `maxQueuedBytes` are queued).
   * Rejects after a write error or once {@linkcode PluginSender.close} was called.
   */
  send(body: Uint8Array): Promise<void> {
    const frame = new Uint8Array(4 + body.length);
    writeLength(frame, 0, body.length);
    frame.set(body, 4);
    return this.#enqueue(frame);
  }

  /**
   * Queues every frame of `wire` — frames as on the wire, length prefixes included, back to
   * back (a capture, a `format=protobuf` file, the conformance vectors) — each on a random
   * connection. Throws a `RangeError` when `wire` ends inside a frame (nothing is queued then).
   */
  async sendFrames(wire: Uint8Array): Promise<void> {
    const starts: number[] = [];
    let p = 0;
    while (p + FRAME_HEADER <= wire.length) {
      starts.push(p);
      p += FRAME_HEADER + readLength(wire, p);
    }
    if (p !== wire.length) throw new RangeError("frames data ends inside a frame");
    for (let i = 0; i < starts.length; i++) {
      await this.#enqueue(wire.slice(starts[i], starts[i + 1] ?? wire.length));
    }
  }

  async #enqueue(frame: Uint8Array): Promise<void> {
    if (this.#closing) throw new Error("PluginSender is closed");
    while (this.#queuedBytes >= this.#maxQueued && !this.#error) {
      await new Promise<void>((resolve) => this.#spaceWaiters.push(resolve));
    }
    if (this.#error) throw this.#error;
    const c = this.#pool[Math.floor(this.#random() * this.#pool.length)];
    c.queue.push(frame);
    c.queuedBytes += frame.length;
    this.#queuedBytes += frame.length;
    if (!c.writing) {
      c.writing = true;
      this.#drain(c); // never rejects: errors are kept on the connection
    }
  }

  async #drain(c: PooledConnection): Promise<void> {
    try {
      while (c.queue.length > 0) {
        if (this.#jitterMs > 0) {
          await new Promise((r) => setTimeout(r, this.#jitterRandom() * this.#jitterMs));
        }
        let n = 0, bytes = 0;
        while (n < c.queue.length && (n === 0 || bytes + c.queue[n].length <= WRITE_BYTES)) {
          bytes += c.queue[n++].length;
        }
        const parts = c.queue.splice(0, n);
        let chunk = parts[0];
        if (n > 1) {
          chunk = new Uint8Array(bytes);
          let at = 0;
          for (const part of parts) {
            chunk.set(part, at);
            at += part.length;
          }
        }
        for (let off = 0; off < chunk.length;) off += await c.conn.write(chunk.subarray(off));
        c.framesWritten += n;
        c.queuedBytes -= bytes;
        this.#release(bytes);
      }
    } catch (e) {
      c.error = e instanceof Error ? e : new Error(String(e));
      this.#error ??= c.error;
      this.#release(c.queuedBytes);
      c.queue.length = 0;
      c.queuedBytes = 0;
      for (const resolve of this.#spaceWaiters.splice(0)) resolve();
    } finally {
      c.writing = false;
      c.settle();
    }
  }

  #release(bytes: number): void {
    this.#queuedBytes -= bytes;
    if (this.#queuedBytes < this.#maxQueued) {
      for (const resolve of this.#spaceWaiters.splice(0)) resolve();
    }
  }

  /** Whether every connection is idle within `timeoutMs` (waits at most that long). */
  async #idleWithin(timeoutMs: number): Promise<boolean> {
    const idle = Promise.all(this.#pool.map((c) => c.whenIdle())).then(() => true);
    if (!(timeoutMs < Infinity)) return await idle;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<boolean>((resolve) => (timer = setTimeout(resolve, timeoutMs, false)));
    try {
      return await Promise.race([idle, late]);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Resolves once every frame queued so far is written; rejects with the first write error, or
   * when `timeoutMs` (default: no limit) passes first (the peer is not reading).
   */
  async flush(options: { readonly timeoutMs?: number } = {}): Promise<void> {
    const timeoutMs = options.timeoutMs ?? Infinity;
    if (!await this.#idleWithin(timeoutMs)) {
      throw new Error(`${this.#queuedBytes} bytes not written within ${timeoutMs} ms`);
    }
    if (this.#error) throw this.#error;
  }

  /**
   * Flushes, then half-closes (as the plugin does when it stops) and closes every connection.
   * When the flush takes longer than `timeoutMs` (default 30 000) the connections are closed
   * anyway and `close` rejects saying how much was not written. Idempotent; also rejects (after
   * closing everything) with the first write error, if any.
   */
  close(options: { readonly timeoutMs?: number } = {}): Promise<void> {
    return this.#closing ??= (async () => {
      const timeoutMs = options.timeoutMs ?? 30_000;
      const flushed = await this.#idleWithin(timeoutMs);
      const unwritten = this.#queuedBytes;
      for (const c of this.#pool) {
        if (flushed) {
          try {
            await c.conn.closeWrite();
          } catch { /* the peer may have closed already */ }
        }
        closeQuietly(c.conn);
      }
      if (!flushed) {
        await this.#idleWithin(5_000); // pending writes fail on the closed sockets
        throw new Error(
          `${unwritten} bytes not written within ${timeoutMs} ms (the peer is not reading); connections closed`,
        );
      }
      if (this.#error) throw this.#error;
    })();
  }
}

function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch { /* already closed */ }
}

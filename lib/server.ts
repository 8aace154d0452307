/**
 * The TCP server the plugin connects to: accepts connections, frames each stream, feeds the
 * {@linkcode Pipeline}, and shuts down gracefully.
 *
 * @module
 */
import { getLogger } from "@logtape/logtape";
import { FrameTooLargeError, TruncatedFrameError } from "./errors.ts";
import { readFrameSlabs } from "./frames.ts";
import type { Metrics } from "./metrics.ts";
import { DISPATCH_BACKPRESSURE, DISPATCH_MALFORMED, type Pipeline } from "./pipeline.ts";

/** Options of {@linkcode SidecarServer}. */
export interface ServerOptions {
  /** Address to listen on. */
  hostname: string;
  /** Port to listen on (0 = any free port). */
  port: number;
  /** Largest accepted frame body in bytes. */
  maxFrameBytes: number;
  /** Most concurrent connections; further ones are closed at once (and counted). */
  maxConnections: number;
}

/** Connection error reasons, as counted in `connectionErrors`. */
export type ConnectionErrorReason =
  | "frame_too_large"
  | "truncated_frame"
  | "malformed_envelope"
  | "reset"
  | "io";

/** Every {@linkcode ConnectionErrorReason}: each is exported from the start (at 0). */
export const CONNECTION_ERROR_REASONS: readonly ConnectionErrorReason[] = [
  "frame_too_large",
  "truncated_frame",
  "malformed_envelope",
  "reset",
  "io",
];

const log = getLogger(["vmq_sidecar", "server"]);

interface Conn {
  conn: Deno.TcpConn;
  peer: string;
  lastRead: number;
  /** Waiting for queue room (not reading): not idle, its socket may hold unread events. */
  blocked: boolean;
}

/**
 * Listens for plugin connections and feeds a pipeline.
 *
 * @example
 * ```ts ignore
 * const server = new SidecarServer(pipeline, { hostname: "127.0.0.1", port: 8890,
 *   maxFrameBytes: 64 << 20, maxConnections: 10000 });
 * server.listen();
 * await server.shutdown(5000);
 * ```
 */
export class SidecarServer {
  /** Connections accepted since start. */
  accepted = 0;
  /** Connections refused because `maxConnections` were open. */
  refused = 0;
  /** Connection errors by reason. */
  readonly connectionErrors: Map<ConnectionErrorReason, number> = new Map();
  readonly #pipeline: Pipeline;
  readonly #opts: ServerOptions;
  readonly #conns = new Set<Conn>();
  readonly #handlers = new Set<Promise<void>>();
  #listener: Deno.TcpListener | undefined;
  #acceptLoop: Promise<void> | undefined;
  #draining = false;
  #lastAccept = 0;

  /** Creates the server; call {@linkcode SidecarServer.listen} to start. */
  constructor(pipeline: Pipeline, options: ServerOptions, metrics?: Metrics) {
    this.#pipeline = pipeline;
    this.#opts = options;
    if (metrics) this.#registerMetrics(metrics);
  }

  /** Open connections. */
  get open(): number {
    return this.#conns.size;
  }

  /** The bound address (after listen). */
  get addr(): Deno.NetAddr {
    if (!this.#listener) throw new Error("server is not listening");
    return this.#listener.addr;
  }

  /** Whether the listener is up. */
  get listening(): boolean {
    return this.#listener !== undefined && !this.#draining;
  }

  /** Binds the port and starts accepting; throws `Deno.errors.AddrInUse` and the like. */
  listen(): Deno.NetAddr {
    this.#listener = Deno.listen({ hostname: this.#opts.hostname, port: this.#opts.port });
    this.#acceptLoop = this.#accept(this.#listener);
    return this.#listener.addr;
  }

  async #accept(listener: Deno.TcpListener): Promise<void> {
    while (true) {
      let conn: Deno.TcpConn;
      try {
        conn = await listener.accept();
      } catch (e) {
        if (this.#draining || e instanceof Deno.errors.BadResource) return;
        log.error("accept failed: {error}", { error: (e as Error).message });
        await new Promise((r) => setTimeout(r, 100)); // e.g. EMFILE: back off, then go on
        continue;
      }
      if (this.#conns.size >= this.#opts.maxConnections) {
        this.refused++;
        if (this.refused === 1 || this.refused % 1000 === 0) {
          log.warn(
            "refused connection: {open} connections open (--max-connections); {refused} refused so far",
            {
              open: this.#conns.size,
              refused: this.refused,
            },
          );
        }
        try {
          conn.close();
        } catch { /* already gone */ }
        continue;
      }
      this.accepted++;
      this.#lastAccept = performance.now();
      const h = this.#handle(conn);
      this.#handlers.add(h);
      h.finally(() => this.#handlers.delete(h));
    }
  }

  async #handle(conn: Deno.TcpConn): Promise<void> {
    const addr = conn.remoteAddr;
    const c: Conn = {
      conn,
      peer: `${addr.hostname}:${addr.port}`,
      lastRead: performance.now(),
      blocked: false,
    };
    this.#conns.add(c);
    log.debug("connection from {peer}", { peer: c.peer });
    try {
      conn.setNoDelay(true);
      // One reused read buffer per connection; dispatch copies what it keeps.
      const slabs = readFrameSlabs(conn, {
        maxFrameBytes: this.#opts.maxFrameBytes,
        peer: c.peer,
      });
      for await (const slab of slabs) {
        c.lastRead = performance.now();
        if (this.#pipeline.blocked) {
          // Other connections filled a queue since this read was issued: wait before adding to
          // it (again if others filled it while we waited), so a full queue is overshot by one
          // read, not by one read per connection.
          c.blocked = true;
          while (this.#pipeline.blocked) await this.#pipeline.writable();
          c.blocked = false;
          c.lastRead = performance.now();
        }
        const r = this.#pipeline.dispatchSlab(slab);
        if (r === DISPATCH_MALFORMED) {
          this.#count("malformed_envelope");
          log.error("closing connection {peer}: a frame is not a valid protobuf Any", {
            peer: c.peer,
          });
          break;
        }
        if (r === DISPATCH_BACKPRESSURE) {
          c.blocked = true;
          await this.#pipeline.writable();
          c.blocked = false;
          c.lastRead = performance.now();
        }
      }
    } catch (e) {
      this.#connectionError(c, e);
    } finally {
      this.#conns.delete(c);
      try {
        conn.close();
      } catch { /* closed by shutdown */ }
      log.debug("connection from {peer} closed", { peer: c.peer });
    }
  }

  #connectionError(c: Conn, e: unknown): void {
    if (e instanceof FrameTooLargeError) {
      this.#count("frame_too_large");
      log.error("closing connection {peer}: {error}", { peer: c.peer, error: e.message });
    } else if (e instanceof TruncatedFrameError) {
      this.#count("truncated_frame");
      log.warn("{error}{when}", {
        error: e.message,
        when: this.#draining ? " (cut at shutdown)" : "",
      });
    } else if (
      this.#draining &&
      (e instanceof Deno.errors.BadResource || e instanceof Deno.errors.Interrupted)
    ) {
      // closed by shutdown after going idle: normal
    } else if (e instanceof Deno.errors.ConnectionReset || e instanceof Deno.errors.BrokenPipe) {
      this.#count("reset");
      log.warn("connection {peer} reset by peer", { peer: c.peer });
    } else {
      this.#count("io");
      log.error("connection {peer} failed: {error}", { peer: c.peer, error: String(e) });
    }
  }

  #count(reason: ConnectionErrorReason): void {
    this.connectionErrors.set(reason, (this.connectionErrors.get(reason) ?? 0) + 1);
  }

  /**
   * Accepts the connections already waiting in the listen backlog, stops accepting, keeps
   * reading each connection until it has been idle for `idleMs` (what peers already sent is
   * read) or `graceMs` passes, then closes them all.
   */
  async shutdown(graceMs: number, idleMs = 200): Promise<void> {
    this.#draining = true;
    const deadline = performance.now() + graceMs;
    // Peers still in the listen backlog connected before the signal and may have sent events:
    // keep accepting until none came for a while, then close the listener.
    const quiet = Math.min(50, idleMs);
    do await new Promise((r) => setTimeout(r, quiet)); while (
      performance.now() - this.#lastAccept < quiet && performance.now() < deadline
    );
    try {
      this.#listener?.close();
    } catch { /* already closed */ }
    await this.#acceptLoop;
    const tick = Math.min(50, idleMs);
    let last = performance.now();
    while (this.#conns.size > 0 && performance.now() < deadline + 1000) {
      const now = performance.now();
      // After the event loop was held up (writing outputs), reads that completed meanwhile
      // have not run yet: judge idleness only on a turn that came on time.
      const onTime = now - last < 2 * tick + 20;
      last = now;
      for (const c of this.#conns) {
        if ((onTime && !c.blocked && now - c.lastRead >= idleMs) || now >= deadline) {
          try {
            c.conn.close();
          } catch { /* already closed */ }
        }
      }
      await Promise.race([
        Promise.all(this.#handlers),
        new Promise((r) => setTimeout(r, tick)),
      ]);
    }
    // Handlers still waiting for queue room end when the pipeline closes its queues.
  }

  #registerMetrics(m: Metrics): void {
    const open = m.gauge("vmq_sidecar_connections_open", "Plugin connections open.");
    const accepted = m.counter(
      "vmq_sidecar_connections_accepted_total",
      "Plugin connections accepted.",
    );
    const refused = m.counter(
      "vmq_sidecar_connections_refused_total",
      "Connections closed at once because --max-connections were open.",
    );
    const errors = m.counter(
      "vmq_sidecar_connection_errors_total",
      "Connections ended by an error, by reason (frame_too_large, truncated_frame, malformed_envelope, reset, io).",
      ["reason"],
    );
    m.onCollect(() => {
      open.values.set("", this.open);
      accepted.values.set("", this.accepted);
      refused.values.set("", this.refused);
      for (const r of CONNECTION_ERROR_REASONS) {
        errors.values.set(r, this.connectionErrors.get(r) ?? 0);
      }
    });
  }
}

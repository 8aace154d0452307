/**
 * The TCP server the plugin connects to: accepts connections, frames each stream, feeds the
 * router ({@linkcode RouterPort}), and shuts down gracefully.
 *
 * @module
 */
import { getLogger } from "../_deps/logtape.ts";
import { FrameTooLargeError, TruncatedFrameError } from "../errors.ts";
import { readFrameSlabs } from "../wire/frame_reader.ts";
import type { MetricsRegistry as Metrics } from "../metrics_registry.ts";
import { DISPATCH_BACKPRESSURE, DISPATCH_MALFORMED, type RouterPort } from "../pipeline/router.ts";
import { type Cidr, isLoopbackHost, LOOPBACK_PEERS, parseCidr, peerAllowed } from "./peers.ts";
import { formatHeld, LogLimiter } from "../_log_limiter.ts";
import { MemoryBudget } from "../memory_budget.ts";

/** Options of {@linkcode IngestServer}. */
export interface ServerOptions {
  /** Address to listen on. */
  hostname: string;
  /** Port to listen on (0 = any free port). */
  port: number;
  /** Largest accepted frame body in bytes. */
  maxFrameBytes: number;
  /** Most concurrent connections; further ones are closed at once (and counted). */
  maxConnections: number;
  /**
   * A connection inside a frame whose frame has not completed this many ms after it started
   * (or after the last complete frame) is closed, counted as `stalled`; 0 or absent = off.
   * Time spent waiting for queue room does not count.
   */
  stallTimeoutMs?: number;
  /** A connection between frames that sent nothing for this many ms is closed (`idle`); 0 or absent = off. */
  idleTimeoutMs?: number;
  /** CIDR ranges peers may connect from; others are closed at once (default loopback only). */
  allowPeers?: readonly string[];
  /**
   * Most bytes the read buffers of partially received large frames (over one 64 KiB read) may
   * hold together, all connections (default {@linkcode DEFAULT_MAX_BUFFERED_BYTES}). A
   * connection whose frame does not fit is not read until it does (in the order they came):
   * the connections inside the budget complete their frames, or the stall timeout closes them.
   */
  maxBufferedBytes?: number;
  /**
   * How often the lines held back by the per-connection log limit are summarized, in ms
   * (default {@linkcode LOG_SUMMARY_MS}); each reason's first {@linkcode LOG_FIRST} lines of
   * a burst are logged individually.
   */
  logSummaryMs?: number;
}

/** Why a connection was refused right after accept, as counted in `refusedBy`. */
export type RefusalReason = "max_connections" | "not_allowed";

/** Every {@linkcode RefusalReason}: each is exported from the start (at 0). */
export const REFUSAL_REASONS: readonly RefusalReason[] = ["max_connections", "not_allowed"];

/**
 * Log lines per reason (a refusal, a connection error, a failed accept) logged individually in
 * a burst; further ones are held back and summarized every {@linkcode LOG_SUMMARY_MS}, with
 * counts per reason. Every one is counted in the metrics all the same.
 */
export const LOG_FIRST = 5;

/** Default interval of the summary of held-back per-connection log lines. */
export const LOG_SUMMARY_MS = 10_000;

/** Connection error reasons, as counted in `connectionErrors`. */
export type ConnectionErrorReason =
  | "frame_too_large"
  | "truncated_frame"
  | "malformed_envelope"
  | "reset"
  | "io"
  | "stalled"
  | "idle";

/** Every {@linkcode ConnectionErrorReason}: each is exported from the start (at 0). */
export const CONNECTION_ERROR_REASONS: readonly ConnectionErrorReason[] = [
  "frame_too_large",
  "truncated_frame",
  "malformed_envelope",
  "reset",
  "io",
  "stalled",
  "idle",
];

/**
 * What a stop discarded from the connections it closed: bytes read but not delivered — a
 * partial frame, and what peers still sent after the grace deadline, read (for a bounded
 * time) only to be counted. Exact for connections that ended or went quiet meanwhile; the
 * peers `stillSending` when closed had more, which cannot be counted.
 */
export interface SocketDiscards {
  /** Connections closed by the stop with read bytes not delivered. */
  connections: number;
  /** Bytes read from them and discarded. */
  bytes: number;
  /** Complete frames among those bytes (events, unless some were empty or of unknown type). */
  frames: number;
  /** Of `connections`, those still sending when closed: they lost more than counted. */
  stillSending: number;
}

/** Default of {@linkcode ServerOptions.maxBufferedBytes}: 256 MiB (four 64 MiB frames at once). */
export const DEFAULT_MAX_BUFFERED_BYTES = 256 * 1024 * 1024;

/** After the grace deadline, how long connections are read, to count what they discard. */
const DRAIN_COUNT_MS = 500;

/**
 * Why an `accept` failed, as counted in `acceptErrors`: resource exhaustion (`emfile`,
 * `enfile`, `enomem`, `enobufs`: the accept loop backs off), or a peer gone before it was
 * accepted (`not_connected`, `aborted`) and anything else (`other`): the loop goes on at once.
 */
export type AcceptErrorReason =
  | "emfile"
  | "enfile"
  | "enomem"
  | "enobufs"
  | "not_connected"
  | "aborted"
  | "other";

/** Every {@linkcode AcceptErrorReason}, in the order metrics list them. */
export const ACCEPT_ERROR_REASONS: readonly AcceptErrorReason[] = [
  "emfile",
  "enfile",
  "enomem",
  "enobufs",
  "not_connected",
  "aborted",
  "other",
];

/** What each exhaustion reason means, for logs and readiness. */
const EXHAUSTION: Partial<Record<AcceptErrorReason, string>> = {
  emfile:
    "out of file descriptors (EMFILE: raise LimitNOFILE / ulimit -n, or lower max_connections)",
  enfile: "the system is out of file descriptors (ENFILE: raise fs.file-max)",
  enomem: "out of memory (ENOMEM)",
  enobufs: "out of socket buffers (ENOBUFS)",
};

/** Pause between accepts while resources are exhausted. */
const ACCEPT_BACKOFF_MS = 100;

const ERRNO_REASONS: Record<string, AcceptErrorReason> = {
  EMFILE: "emfile",
  ENFILE: "enfile",
  ENOMEM: "enomem",
  ENOBUFS: "enobufs",
  ENOTCONN: "not_connected",
  ECONNABORTED: "aborted",
  ECONNRESET: "aborted",
  // Linux numbers, when an error carries no code.
  "24": "emfile",
  "23": "enfile",
  "12": "enomem",
  "105": "enobufs",
  "107": "not_connected",
  "103": "aborted",
  "104": "aborted",
};

function acceptErrorReason(e: unknown): AcceptErrorReason {
  const code = (e as { code?: unknown } | null)?.code;
  if (typeof code === "string" && ERRNO_REASONS[code]) return ERRNO_REASONS[code];
  const errno = /os error (\d+)/.exec(String((e as Error | null)?.message))?.[1];
  return (errno && ERRNO_REASONS[errno]) || "other";
}

const log = getLogger(["vmq_sidecar", "server"]);

/** A wait for the frame buffer budget ended because the server closed the connection. */
class ConnectionClosedError extends Error {
  constructor(peer: string) {
    super(`connection ${peer} closed by the sidecar while waiting for --max-buffered-bytes`);
    this.name = "ConnectionClosedError";
  }
}

interface Conn {
  conn: Deno.TcpConn;
  peer: string;
  lastRead: number;
  /** Waiting for queue room (not reading): not idle, its socket may hold unread events. */
  blocked: boolean;
  /** Bytes read from the socket. */
  bytesRead: number;
  /** Bytes of the frames handed to the pipeline (`bytesRead` minus these: a partial frame). */
  bytesTaken: number;
  /** Frames read after the grace deadline, not delivered. */
  framesDiscarded: number;
  /** Closed by the stop (idle, or at the grace deadline), not by the peer or an error. */
  cutByStop: boolean;
  /** Closed by the stop while its peer was still sending. */
  stillSending: boolean;
  /** When the current frame started, or the last frame completed (for the stall timeout). */
  frameStart: number;
  /** Closed by the timeout sweep (already counted): the read error that follows is expected. */
  timedOut: boolean;
  /** Waiting for room in the frame buffer budget (not read; the stall clock does not run). */
  awaitingBudget: boolean;
  /** Aborts a wait for the frame buffer budget when the server closes the connection. */
  abort: AbortController;
  /**
   * When the read now pending was issued (-1: none pending). A connection is idle only while
   * a read has waited for data: one accepted but not read yet (its handler not run, e.g. on a
   * slow or emulated CPU) may hold events in its socket.
   */
  readingSince: number;
}

/**
 * Listens for plugin connections and feeds a pipeline.
 *
 * @example
 * ```ts ignore
 * const server = new IngestServer(pipeline, { hostname: "127.0.0.1", port: 8890,
 *   maxFrameBytes: 64 << 20, maxConnections: 10000 });
 * server.listen();
 * await server.shutdown(5000);
 * ```
 */
export class IngestServer {
  /** Connections accepted since start. */
  accepted = 0;
  /** Connections refused, all reasons (see {@linkcode IngestServer.refusedBy}). */
  refused = 0;
  /** Connections refused by reason. */
  readonly refusedBy: Map<RefusalReason, number> = new Map();
  /** Connection errors by reason. */
  readonly connectionErrors: Map<ConnectionErrorReason, number> = new Map();
  /** What the stop discarded from the connections it closed (see {@linkcode SocketDiscards}). */
  readonly discarded: SocketDiscards = { connections: 0, bytes: 0, frames: 0, stillSending: 0 };
  /** Failed accepts by reason. */
  readonly acceptErrors: Map<AcceptErrorReason, number> = new Map();
  /**
   * The memory budget of partially received large frames (`--max-buffered-bytes`): what is
   * held, how many connections wait and have waited.
   */
  readonly frameBudget: MemoryBudget;
  readonly #pipeline: RouterPort;
  readonly #opts: ServerOptions;
  readonly #conns = new Set<Conn>();
  readonly #handlers = new Set<Promise<void>>();
  #listener: Deno.TcpListener | undefined;
  #acceptLoop: Promise<void> | undefined;
  #draining = false;
  /** The stop closed the listener: a failing accept ends the accept loop. */
  #listenerClosed = false;
  /** Accepts failed in a row without a pause (not for exhaustion). */
  #immediateFailures = 0;
  /** The grace deadline passed: readers stop waiting for queue room and deliver nothing more. */
  #cut = false;
  /** Readers waiting for queue room, released at the grace deadline. */
  readonly #waiting = new Set<() => void>();
  #lastAccept = 0;
  /** The exhaustion the accept loop is backing off from (undefined: none). */
  #exhausted: AcceptErrorReason | undefined;
  /** When an accept last failed for {@linkcode IngestServer.#exhausted}. */
  #exhaustedAt = 0;
  /** Failed accepts since the exhaustion began. */
  #exhaustedFailures = 0;
  readonly #allowed: Cidr[];
  #sweep: ReturnType<typeof setInterval> | undefined;
  /** Rate limit of the log lines of refused, failed and timed-out connections. */
  readonly #logLimit: LogLimiter;

  /** Creates the server; call {@linkcode IngestServer.listen} to start. */
  constructor(pipeline: RouterPort, options: ServerOptions, metrics?: Metrics) {
    this.#pipeline = pipeline;
    this.#opts = options;
    this.#allowed = (options.allowPeers ?? LOOPBACK_PEERS).map(parseCidr);
    this.frameBudget = new MemoryBudget({
      capacity: options.maxBufferedBytes ?? DEFAULT_MAX_BUFFERED_BYTES,
      // Each connection waits for at most one reservation.
      maxWaiters: options.maxConnections,
      name: "--max-buffered-bytes",
    });
    this.#logLimit = new LogLimiter({
      first: LOG_FIRST,
      intervalMs: options.logSummaryMs ?? LOG_SUMMARY_MS,
      summary: (held, ms) => {
        let n = 0;
        for (const v of held.values()) n += v;
        log.warn(
          "held back {n} log lines about plugin connections in the last {s} s: {counts} (all counted in vmq_sidecar_connections_refused_total, vmq_sidecar_connection_errors_total, vmq_sidecar_accept_errors_total, vmq_sidecar_frame_buffer_waits_total)",
          { n, s: ms / 1000, counts: formatHeld(held) },
        );
      },
    });
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

  /**
   * Why accepting is held up, while the accept loop backs off from resource exhaustion (its
   * last failed accept less than a second plus one back-off ago); undefined otherwise.
   */
  get acceptBackoff(): string | undefined {
    const r = this.#exhausted;
    if (r === undefined || performance.now() - this.#exhaustedAt > ACCEPT_BACKOFF_MS + 1000) {
      return undefined;
    }
    return `accepting plugin connections backs off: ${EXHAUSTION[r]}`;
  }

  /** Binds the port and starts accepting; throws `Deno.errors.AddrInUse` and the like. */
  listen(): Deno.NetAddr {
    this.#listener = Deno.listen({ hostname: this.#opts.hostname, port: this.#opts.port });
    if (!isLoopbackHost(this.#opts.hostname)) {
      log.warn(
        "listening on {hostname}, not a loopback address: plugin connections are accepted only from {ranges} (allow_peers)",
        { hostname: this.#opts.hostname, ranges: this.#allowed.map((r) => r.text).join(", ") },
      );
    }
    this.#acceptLoop = this.#accept(this.#listener);
    const stall = this.#opts.stallTimeoutMs ?? 0, idle = this.#opts.idleTimeoutMs ?? 0;
    const shortest = Math.min(stall || Infinity, idle || Infinity);
    if (shortest < Infinity) {
      // One sweep over the open connections, not a timer per read.
      const every = Math.max(100, Math.min(1000, Math.floor(shortest / 4)));
      this.#sweep = setInterval(() => this.#sweepTimeouts(stall, idle), every);
      Deno.unrefTimer(this.#sweep);
    }
    return this.#listener.addr;
  }

  /** Closes the connections whose frame stalled or that idled too long (see ServerOptions). */
  #sweepTimeouts(stall: number, idle: number): void {
    if (this.#draining) return;
    const now = performance.now();
    for (const c of this.#conns) {
      if (c.blocked || c.timedOut || c.awaitingBudget) continue;
      const inFrame = c.bytesRead > c.bytesTaken;
      let reason: "stalled" | "idle" | undefined;
      if (inFrame && stall > 0 && now - c.frameStart >= stall) reason = "stalled";
      else if (!inFrame && idle > 0 && now - c.lastRead >= idle) reason = "idle";
      if (!reason) continue;
      c.timedOut = true;
      this.#count(reason);
      const n = this.connectionErrors.get(reason)!;
      const more = this.#limited(reason);
      if (more !== undefined) {
        log.warn(
          reason === "stalled"
            ? "closing connection {peer}: a frame did not complete within {ms} ms (--stall-timeout; {partial} bytes of it read); {n} closed so far{more}"
            : "closing idle connection {peer}: nothing received for {ms} ms (--idle-timeout); {n} closed so far{more}",
          {
            peer: c.peer,
            ms: reason === "stalled" ? stall : idle,
            partial: c.bytesRead - c.bytesTaken,
            n,
            more,
          },
        );
      }
      this.#close(c);
    }
  }

  /** Closes a connection from the server's side, ending a wait for the frame buffer budget. */
  #close(c: Conn): void {
    try {
      c.conn.close();
    } catch { /* already closed */ }
    c.abort.abort(new ConnectionClosedError(c.peer));
  }

  #refuse(conn: Deno.TcpConn, reason: RefusalReason): void {
    this.refused++;
    const n = (this.refusedBy.get(reason) ?? 0) + 1;
    this.refusedBy.set(reason, n);
    const more = this.#limited(reason);
    if (more !== undefined) {
      const addr = conn.remoteAddr;
      log.warn(
        reason === "max_connections"
          ? "refused connection: {open} connections open (--max-connections); {n} refused so far (this one from {peer}){more}"
          : "refused connection from {peer}: not in --allow-peers ({ranges}); {n} refused so far{more}",
        {
          peer: `${addr.hostname}:${addr.port}`,
          open: this.#conns.size,
          ranges: this.#allowed.map((r) => r.text).join(", "),
          n,
          more,
        },
      );
    }
    try {
      conn.close();
    } catch { /* already gone */ }
  }

  async #accept(listener: Deno.TcpListener): Promise<void> {
    while (true) {
      let conn: Deno.TcpConn;
      try {
        conn = await listener.accept();
      } catch (e) {
        // Only a closed listener ends accepting: during the stop's accepting of the backlog
        // an error (a peer that reset, EMFILE) is handled as usual, the peers behind it read.
        if (this.#listenerClosed || e instanceof Deno.errors.BadResource) return;
        const reason = acceptErrorReason(e);
        const n = (this.acceptErrors.get(reason) ?? 0) + 1;
        this.acceptErrors.set(reason, n);
        if (EXHAUSTION[reason]) {
          // Retrying at once would only fail again (and spin): pause, counted and not ready.
          if (this.#exhausted === undefined) {
            log.error("cannot accept plugin connections: {problem}; retrying every {ms} ms", {
              problem: EXHAUSTION[reason],
              ms: ACCEPT_BACKOFF_MS,
            });
          }
          this.#exhausted = reason;
          this.#exhaustedAt = performance.now();
          this.#exhaustedFailures++;
          await new Promise((r) => setTimeout(r, ACCEPT_BACKOFF_MS));
          continue;
        }
        // A peer that reset before it was accepted (ENOTCONN) and the like: nothing to wait
        // for, the next connection in the backlog is served at once. It is backlog activity:
        // the stop keeps accepting until the backlog is quiet, the peers behind it included.
        this.#recovered();
        this.#lastAccept = performance.now();
        const more = this.#limited(`accept_${reason}`);
        if (more !== undefined) {
          log.warn("accept failed ({reason}, {n} so far): {error}{more}", {
            reason,
            n,
            error: (e as Error)?.message ?? String(e),
            more,
          });
        }
        // An error that persists (EPERM from a firewall, an unknown one) must not starve the
        // event loop: after 64 failures in a row, let timers and reads run once.
        if (++this.#immediateFailures >= 64) {
          this.#immediateFailures = 0;
          await new Promise((r) => setTimeout(r, 0));
        }
        continue;
      }
      this.#immediateFailures = 0;
      this.#recovered();
      // Refused at once, before any read: a peer outside the allow list, or one too many.
      if (!peerAllowed(this.#allowed, conn.remoteAddr.hostname)) {
        this.#refuse(conn, "not_allowed");
        continue;
      }
      if (this.#conns.size >= this.#opts.maxConnections) {
        this.#refuse(conn, "max_connections");
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
      bytesRead: 0,
      bytesTaken: 0,
      framesDiscarded: 0,
      cutByStop: false,
      stillSending: false,
      frameStart: performance.now(),
      timedOut: false,
      readingSince: -1,
      awaitingBudget: false,
      abort: new AbortController(),
    };
    this.#conns.add(c);
    log.debug("connection from {peer}", { peer: c.peer });
    try {
      conn.setNoDelay(true);
      // Counts what is read, so a stop knows the bytes it would discard (a partial frame).
      const source = {
        read: async (p: Uint8Array) => {
          c.readingSince = performance.now();
          let n: number | null;
          try {
            n = await conn.read(p);
          } finally {
            c.readingSince = -1;
          }
          if (n !== null && n > 0) {
            const now = performance.now();
            // The first byte of a frame after a frame boundary: its stall clock starts.
            if (c.bytesRead === c.bytesTaken) c.frameStart = now;
            c.bytesRead += n;
            c.lastRead = now;
          }
          return n;
        },
      };
      // One reused read buffer per connection; dispatch copies what it keeps. A large frame's
      // buffer is reserved from the budget first: while it waits the connection is not read.
      const budget = this.frameBudget;
      const frameBudget = {
        tryReserve: (bytes: number) => budget.tryReserve(bytes),
        release: (bytes: number) => budget.release(bytes),
        reserve: async (bytes: number) => {
          this.#waitLog(c, bytes);
          c.awaitingBudget = true;
          try {
            await budget.reserve(bytes, c.abort.signal);
          } finally {
            c.awaitingBudget = false;
          }
          // Its frame's stall clock starts when it may be read.
          c.lastRead = c.frameStart = performance.now();
        },
      };
      const slabs = readFrameSlabs(source, {
        maxFrameBytes: this.#opts.maxFrameBytes,
        peer: c.peer,
        budget: frameBudget,
      });
      for await (const slab of slabs) {
        c.lastRead = performance.now();
        if (this.#cut) {
          // Read after the grace deadline: not delivered, only counted.
          c.framesDiscarded += slab.count;
          c.cutByStop = true;
          continue;
        }
        if (this.#pipeline.blocked) {
          // Other connections filled a queue since this read was issued: wait before adding to
          // it (again if others filled it while we waited), so a full queue is overshot by one
          // read, not by one read per connection. At the grace deadline the wait ends: what was
          // read is delivered to every output (a blocked one holds it as unflushed).
          c.blocked = true;
          while (this.#pipeline.blocked && !this.#cut) await this.#room();
          c.blocked = false;
          c.lastRead = c.frameStart = performance.now();
        }
        const r = this.#pipeline.dispatchSlab(slab);
        c.bytesTaken += slab.ends[slab.count - 1] - slab.starts[0] + 4;
        c.frameStart = performance.now(); // a frame completed: what follows starts now
        if (r === DISPATCH_MALFORMED) {
          this.#count("malformed_envelope");
          const more = this.#limited("malformed_envelope");
          if (more !== undefined) {
            log.error("closing connection {peer}: a frame is not a valid protobuf Any{more}", {
              peer: c.peer,
              more,
            });
          }
          break;
        }
        if (r === DISPATCH_BACKPRESSURE && !this.#cut) {
          c.blocked = true;
          await this.#room();
          c.blocked = false;
          c.lastRead = c.frameStart = performance.now();
        }
      }
    } catch (e) {
      this.#connectionError(c, e);
    } finally {
      const pending = c.bytesRead - c.bytesTaken;
      if (c.cutByStop && (pending > 0 || c.framesDiscarded > 0)) {
        this.discarded.connections++;
        this.discarded.bytes += pending;
        this.discarded.frames += c.framesDiscarded;
        if (c.stillSending) this.discarded.stillSending++;
      }
      this.#conns.delete(c);
      try {
        conn.close();
      } catch { /* closed by shutdown */ }
      log.debug("connection from {peer} closed", { peer: c.peer });
    }
  }

  /** Resolves when the blocking queues have room again, or at the grace deadline. */
  #room(): Promise<void> {
    if (this.#cut) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        this.#waiting.delete(done);
        resolve();
      };
      this.#waiting.add(done);
      this.#pipeline.writable().then(done);
    });
  }

  /** Logs (rate-limited) that a connection waits for the frame buffer budget. */
  #waitLog(c: Conn, bytes: number): void {
    const b = this.frameBudget;
    const more = this.#limited("frame_buffer_wait");
    if (more === undefined) return;
    log.warn(
      "connection {peer} is not read until its {bytes}-byte frame fits in --max-buffered-bytes ({held} of {capacity} bytes held by frames in progress, {waiting} connections waiting before it; {n} waits so far){more}",
      {
        peer: c.peer,
        bytes,
        held: b.held,
        capacity: b.capacity,
        waiting: b.waiting,
        n: b.waits + 1,
        more,
      },
    );
  }

  #connectionError(c: Conn, e: unknown): void {
    let more: string | undefined;
    if (c.timedOut || e instanceof ConnectionClosedError) {
      // closed by the timeout sweep (counted and logged there) or by the stop while waiting
      // for the frame buffer budget (counted in `discarded`)
    } else if (e instanceof FrameTooLargeError) {
      this.#count("frame_too_large");
      more = this.#limited("frame_too_large");
      if (more !== undefined) {
        log.error("closing connection {peer}: {error}{more}", {
          peer: c.peer,
          error: e.message,
          more,
        });
      }
    } else if (e instanceof TruncatedFrameError) {
      this.#count("truncated_frame");
      more = this.#limited("truncated_frame");
      if (more !== undefined) {
        log.warn("{error}{when}{more}", {
          error: e.message,
          when: this.#draining ? " (cut at shutdown)" : "",
          more,
        });
      }
    } else if (
      this.#draining &&
      (e instanceof Deno.errors.BadResource || e instanceof Deno.errors.Interrupted)
    ) {
      // closed by shutdown after going idle: normal
    } else if (e instanceof Deno.errors.ConnectionReset || e instanceof Deno.errors.BrokenPipe) {
      this.#count("reset");
      more = this.#limited("reset");
      if (more !== undefined) {
        log.warn("connection {peer} reset by peer{more}", { peer: c.peer, more });
      }
    } else {
      this.#count("io");
      more = this.#limited("io");
      if (more !== undefined) {
        log.error("connection {peer} failed: {error}{more}", {
          peer: c.peer,
          error: String(e),
          more,
        });
      }
    }
  }

  /**
   * Whether a line for `reason` is logged (see {@linkcode LOG_FIRST}): undefined when held
   * back, else the text to end it with ("" or, on the last one let through, a note).
   */
  #limited(reason: string): string | undefined {
    const { ok, shown } = this.#logLimit.allow(reason);
    if (!ok) return undefined;
    return shown === this.#logLimit.first
      ? ` (further ones are summarized every ${
        (this.#opts.logSummaryMs ?? LOG_SUMMARY_MS) / 1000
      } s)`
      : "";
  }

  /** Ends an exhaustion back-off once an accept gets past it. */
  #recovered(): void {
    if (this.#exhausted === undefined) return;
    log.info("accepting plugin connections again after {n} failed accepts ({reason})", {
      n: this.#exhaustedFailures,
      reason: this.#exhausted,
    });
    this.#exhausted = undefined;
    this.#exhaustedFailures = 0;
  }

  #count(reason: ConnectionErrorReason): void {
    this.connectionErrors.set(reason, (this.connectionErrors.get(reason) ?? 0) + 1);
  }

  /**
   * Accepts the connections already waiting in the listen backlog, stops accepting, keeps
   * reading each connection until it has been idle for `idleMs` on a frame boundary (what peers
   * already sent is read) or `graceMs` passes. At that deadline readers waiting for queue room
   * deliver the frames they hold (a full blocking queue takes them beyond its size: one read
   * per connection) and delivery stops; what the connections still send is read for up to
   * half a second more only to be counted ({@linkcode IngestServer.discarded}), each closed
   * once quiet. Resolves once every connection's reader has ended (bounded).
   */
  async shutdown(graceMs: number, idleMs = 200): Promise<void> {
    this.#draining = true;
    clearInterval(this.#sweep);
    const deadline = performance.now() + graceMs;
    // Peers still in the listen backlog connected before the signal and may have sent events:
    // keep accepting until none came for a while, then close the listener. Like the idle check
    // below, "quiet" counts only on a turn that came on time (after the event loop was held up,
    // accepts that are ready have not run yet), twice in a row; bounded by the deadline.
    const quiet = Math.min(50, idleMs);
    let quietTurns = 0;
    for (let last = performance.now(); quietTurns < 2;) {
      await new Promise((r) => setTimeout(r, quiet));
      const now = performance.now();
      if (now >= deadline) break;
      const onTime = now - last < 2 * quiet + 20;
      last = now;
      quietTurns = onTime && now - this.#lastAccept >= quiet ? quietTurns + 1 : 0;
    }
    this.#listenerClosed = true;
    try {
      this.#listener?.close();
    } catch { /* already closed */ }
    await this.#acceptLoop;
    const tick = Math.min(50, idleMs);
    const drainEnd = deadline + DRAIN_COUNT_MS;
    let cutTime = Infinity;
    let last = performance.now();
    while (this.#conns.size > 0 && performance.now() < drainEnd + 1000) {
      const now = performance.now();
      if (now >= deadline && !this.#cut) {
        this.#cut = true;
        cutTime = now;
        for (const c of this.#conns) c.cutByStop = true;
        for (const release of [...this.#waiting]) release();
        // Waiting for the frame buffer budget: what they read cannot be delivered any more,
        // and their sockets hold more (not read, not countable).
        for (const c of this.#conns) {
          if (c.awaitingBudget) (c.stillSending = true), this.#close(c);
        }
      }
      // After the event loop was held up (writing outputs), reads that completed meanwhile
      // have not run yet: judge idleness only on a turn that came on time.
      const onTime = now - last < 2 * tick + 20;
      last = now;
      for (const c of this.#conns) {
        let close: boolean;
        if (!this.#cut) {
          close = onTime && !c.blocked && c.readingSince >= 0 &&
            now - Math.max(c.lastRead, c.readingSince) >= idleMs && c.bytesRead === c.bytesTaken;
        } else {
          // Counting what arrives after the deadline: closed once quiet as long as an idle
          // connection (on a turn on time, so reads that completed meanwhile were seen), or
          // at the end, still sending.
          const quiet = onTime && c.readingSince >= 0 &&
            now - Math.max(c.lastRead, c.readingSince, cutTime) >= idleMs;
          close = quiet || (now >= drainEnd && onTime) || now >= drainEnd + 500;
          if (!quiet && close) c.stillSending = true;
        }
        if (close) {
          c.cutByStop = true;
          this.#close(c);
        }
      }
      await Promise.race([
        Promise.all(this.#handlers),
        new Promise((r) => setTimeout(r, tick)),
      ]);
    }
    // Readers end once their connection is closed; wait for the last ones (bounded).
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      Promise.all(this.#handlers),
      new Promise((r) => timer = setTimeout(r, 1000)),
    ]);
    clearTimeout(timer);
    this.#logLimit.close(); // the last summary
  }

  #registerMetrics(m: Metrics): void {
    const open = m.gauge("vmq_sidecar_connections_open", "Plugin connections open.");
    const accepted = m.counter(
      "vmq_sidecar_connections_accepted_total",
      "Plugin connections accepted.",
    );
    const refused = m.counter(
      "vmq_sidecar_connections_refused_total",
      "Connections closed at once after accept, by reason (max_connections: --max-connections were open; not_allowed: the peer is not in --allow-peers).",
      ["reason"],
    );
    const errors = m.counter(
      "vmq_sidecar_connection_errors_total",
      "Connections ended by an error, by reason (frame_too_large, truncated_frame, malformed_envelope, reset, io, stalled: a frame did not complete within --stall-timeout, idle: nothing received for --idle-timeout).",
      ["reason"],
    );
    const acceptErrors = m.counter(
      "vmq_sidecar_accept_errors_total",
      "Failed accepts of plugin connections, by reason (emfile, enfile, enomem, enobufs: the accept loop backs off; not_connected, aborted: the peer reset first; other).",
      ["reason"],
    );
    const backoff = m.gauge(
      "vmq_sidecar_accept_backoff",
      "1 while accepting plugin connections backs off from resource exhaustion (then /readyz is 503).",
    );
    const bufferBytes = m.gauge(
      "vmq_sidecar_frame_buffer_bytes",
      "Bytes of read buffers held by partially received large frames, counted against --max-buffered-bytes.",
    );
    const bufferLimit = m.gauge(
      "vmq_sidecar_frame_buffer_limit_bytes",
      "--max-buffered-bytes: most bytes partially received large frames may hold together.",
    );
    const bufferWaiting = m.gauge(
      "vmq_sidecar_frame_buffer_waiting",
      "Plugin connections not read now because their frame does not fit in --max-buffered-bytes.",
    );
    const bufferWaits = m.counter(
      "vmq_sidecar_frame_buffer_waits_total",
      "Times a plugin connection stopped being read until its frame fitted in --max-buffered-bytes.",
    );
    for (const r of ACCEPT_ERROR_REASONS) acceptErrors.values.set(r, 0);
    m.onCollect(() => {
      const b = this.frameBudget;
      bufferBytes.values.set("", b.held);
      bufferLimit.values.set("", b.capacity);
      bufferWaiting.values.set("", b.waiting);
      bufferWaits.values.set("", b.waits);
      for (const [k, v] of this.acceptErrors) acceptErrors.values.set(k, v);
      backoff.values.set("", this.acceptBackoff === undefined ? 0 : 1);
      open.values.set("", this.open);
      accepted.values.set("", this.accepted);
      for (const r of REFUSAL_REASONS) refused.values.set(r, this.refusedBy.get(r) ?? 0);
      for (const r of CONNECTION_ERROR_REASONS) {
        errors.values.set(r, this.connectionErrors.get(r) ?? 0);
      }
    });
  }
}

// Private: one connection to Redis that pipelines batches of commands (written by
// XaddEncoder into one buffer each) with a bounded number of batches in flight, and maps every
// reply back to its batch and command. It does not reconnect: when the socket fails, every
// batch still outstanding is reported "retry" and the owner connects again.
//
// A batch may be sent as one transaction (`MULTI`, the commands, `EXEC`, still one write and
// pipelined): RedisSink does, because a server that stops (even cleanly, SIGTERM) while it is
// reading a batch would otherwise keep the prefix it executed, and the retry would store that
// prefix twice (measured: 77–462 duplicates of 4000–6000 events). With `EXEC` a batch is stored
// whole or not at all; only a batch whose `EXEC` ran but whose reply was lost is sent again.
// Costs: one `+QUEUED` reply per command and the server's queued copy of the batch.
import { RespError, RespReader, type RespValue, writeCommand } from "./_resp.ts";
import { ByteBuffer } from "../../codec/byte_buffer.ts";

/** Where and how to connect. */
export interface RedisPipelineOptions {
  /** Name for errors (no secrets), e.g. `redis://127.0.0.1:6379/0`. */
  name: string;
  /** Host. */
  host: string;
  /** Port. */
  port: number;
  /** TLS: `true`, or the CA certificates (PEM) to trust. */
  tls?: true | { ca: string };
  /** ACL user (with `password`). */
  username?: string;
  /** Password (`AUTH`). */
  password?: string;
  /** Database (`SELECT`). */
  database: number;
  /** Connection and handshake timeout, ms (default 5000). */
  connectTimeoutMs?: number;
  /** Longest wait for a batch's last reply after it was written, ms (default 10000). */
  replyTimeoutMs?: number;
  /** Batches in flight at most (default 4). */
  window?: number;
}

/** An error reply to one command of a batch. */
export interface EntryError {
  /** Index of the command in its batch. */
  index: number;
  /** The server's message. */
  message: string;
}

/**
 * What became of a batch: every command answered (`ok`, with the error replies if any), or
 * `retry`: the connection failed before the last reply, so the batch may be stored (any prefix
 * of it, unless it was a transaction); send it again (on a new connection).
 *
 * For a transaction, `errors` are the entries' error replies — when queued (`NOPERM`, `OOM`…,
 * then `aborted` is set) or when run (`WRONGTYPE`…, inside the `EXEC` reply) — and `aborted`
 * says why nothing of it was stored: the `EXEC` (or `MULTI`) error, e.g. `EXECABORT …`.
 */
export type PipelineResult =
  | {
    readonly ok: true;
    readonly replies: number;
    readonly errors: readonly EntryError[];
    readonly aborted?: string;
    /** Every reply, in order, when asked for (`values`). */
    readonly values?: readonly RespValue[];
  }
  | { readonly ok: false; readonly error: RedisPipelineError };

/** The connection failed, or the server refused the handshake. */
export class RedisPipelineError extends Error {
  /**
   * The message without the connection's name, for readiness: the server's own words when it
   * refused the handshake (`WRONGPASS invalid username-password pair…`), else what failed.
   */
  readonly reason: string;
  /** Creates the error; `reason` defaults to `message`. */
  constructor(message: string, options?: ErrorOptions & { reason?: string }) {
    super(message, options);
    this.name = "RedisPipelineError";
    this.reason = options?.reason ?? message;
  }
}

/** A batch written (or being written) and not yet answered in full. */
interface Outstanding {
  expected: number;
  got: number;
  /** Sent as `MULTI`, `expected - 2` commands, `EXEC`. */
  tx: boolean;
  aborted: string | undefined;
  errors: EntryError[];
  /** The replies, when the sender wants them (else bulk strings are not even copied). */
  values: RespValue[] | undefined;
  resolve: (r: PipelineResult) => void;
  timer: ReturnType<typeof setTimeout> | undefined;
}

/** The RESP of `MULTI`: a transaction batch starts with it. */
export const MULTI: Uint8Array = new TextEncoder().encode("*1\r\n$5\r\nMULTI\r\n");
/** The RESP of `EXEC`: a transaction batch ends with it. */
export const EXEC: Uint8Array = new TextEncoder().encode("*1\r\n$4\r\nEXEC\r\n");

const NOTHING_SENT: PipelineResult = { ok: true, replies: 0, errors: [] };

/** How {@linkcode RedisPipelineConnection.send} sends a batch. */
export interface SendOptions {
  /** The batch is `MULTI`, the commands, `EXEC`. */
  transaction?: boolean;
  /** Keep the replies (`values` of the result); else only errors are kept. */
  values?: boolean;
}

/** What {@linkcode RedisPipelineConnection.send} returns; neither promise ever rejects. */
export interface SentBatch {
  /** Settles once the bytes were handed to the socket (or the connection failed): reuse them then. */
  readonly written: Promise<void>;
  /** The batch's outcome. */
  readonly result: Promise<PipelineResult>;
}

/**
 * One Redis connection pipelining batches of commands, at most `window` batches outstanding.
 * No promise it returns rejects, and a failed socket settles every outstanding batch as
 * `retry`; nothing reaches the top level.
 */
export class RedisPipelineConnection {
  /** Name for errors. */
  readonly name: string;
  readonly #conn: Deno.Conn;
  readonly #window: number;
  #replyTimeoutMs: number;
  readonly #outstanding: Outstanding[] = [];
  readonly #reader: RespReader;
  #writing: Promise<void> = Promise.resolve();
  #failure: RedisPipelineError | undefined;
  #slotWaiters: (() => void)[] = [];
  readonly #closed = Promise.withResolvers<RedisPipelineError | undefined>();

  private constructor(conn: Deno.Conn, opts: RedisPipelineOptions) {
    this.name = opts.name;
    this.#conn = conn;
    this.#window = Math.max(1, opts.window ?? 4);
    this.#replyTimeoutMs = opts.replyTimeoutMs ?? 10_000;
    this.#reader = new RespReader(
      (v) => this.#reply(v),
      undefined,
      () => this.#outstanding[0]?.values !== undefined,
    );
    this.#readLoop();
  }

  /**
   * Connects, authenticates (`AUTH [user] password`), names the connection and selects the
   * database. Throws {@linkcode RedisPipelineError} (connection refused, timeout, `WRONGPASS`…).
   */
  static async connect(opts: RedisPipelineOptions): Promise<RedisPipelineConnection> {
    const timeoutMs = opts.connectTimeoutMs ?? 5000;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => {
          const reason = `no connection within ${timeoutMs} ms`;
          reject(new RedisPipelineError(`${opts.name}: ${reason}`, { reason }));
        },
        timeoutMs,
      );
    });
    const connecting = opts.tls
      ? Deno.connectTls({
        hostname: opts.host,
        port: opts.port,
        ...(opts.tls === true ? {} : { caCerts: [opts.tls.ca] }),
      })
      : Deno.connect({ hostname: opts.host, port: opts.port });
    let conn: Deno.Conn;
    try {
      conn = await Promise.race([connecting, timeout]);
    } catch (e) {
      clearTimeout(timer);
      connecting.then((c) => c.close(), () => {}); // arrives after the timeout: drop it
      if (e instanceof RedisPipelineError) throw e;
      const reason = `cannot connect: ${(e as Error).message}`;
      throw new RedisPipelineError(`${opts.name}: ${reason}`, { cause: e, reason });
    }
    if (!opts.tls) (conn as Deno.TcpConn).setNoDelay?.(true);
    const self = new RedisPipelineConnection(conn, {
      ...opts,
      replyTimeoutMs: Math.min(timeoutMs, opts.replyTimeoutMs ?? timeoutMs),
    });
    const hs = new ByteBuffer(256);
    const steps: string[] = [];
    if (opts.password !== undefined) {
      writeCommand(
        hs,
        opts.username !== undefined
          ? ["AUTH", opts.username, opts.password]
          : ["AUTH", opts.password],
      );
      steps.push("AUTH");
    }
    writeCommand(hs, ["CLIENT", "SETNAME", "vmq-sidecar"]);
    steps.push("CLIENT SETNAME");
    writeCommand(hs, ["SELECT", String(opts.database)]);
    steps.push("SELECT");
    // Every batch is one MULTI … EXEC: an ACL user without them would have its XADDs run one by
    // one outside a transaction (MULTI refused) and every retry store the batch again.
    writeCommand(hs, ["MULTI"]);
    steps.push("MULTI");
    writeCommand(hs, ["EXEC"]);
    steps.push("EXEC");
    const r = await Promise.race([self.send(hs.bytes(), steps.length).result, timeout]).catch(
      (e: RedisPipelineError) => ({ ok: false as const, error: e }),
    );
    clearTimeout(timer);
    if (!r.ok || r.errors.length > 0) {
      self.destroy();
      if (!r.ok) throw r.error;
      const e = r.errors[0], step = steps[e.index];
      const hint = step === "MULTI" || step === "EXEC"
        ? " (each batch is one MULTI/EXEC transaction: give the ACL user +multi +exec, e.g. +@transaction)"
        : "";
      throw new RedisPipelineError(`${opts.name}: ${step} refused: ${e.message}${hint}`, {
        reason: `${e.message}${hint}`,
      });
    }
    // The handshake ran under the connect timeout; batches get the reply timeout.
    self.#replyTimeoutMs = opts.replyTimeoutMs ?? 10_000;
    return self;
  }

  /** Batches written and not yet answered in full. */
  get inFlight(): number {
    return this.#outstanding.length;
  }

  /** Why the connection failed, or undefined while it works. */
  get failure(): RedisPipelineError | undefined {
    return this.#failure;
  }

  /** Resolves with the failure (undefined after {@linkcode close}) once the connection is gone. */
  get closed(): Promise<RedisPipelineError | undefined> {
    return this.#closed.promise;
  }

  /** Resolves once a batch may be sent without exceeding the window (or the connection failed). */
  whenWritable(): Promise<void> {
    if (this.#failure || this.#outstanding.length < this.#window) return Promise.resolve();
    return new Promise((resolve) => this.#slotWaiters.push(resolve));
  }

  /**
   * Writes `count` commands held in `bytes` (reuse them once `written` settles). Callers wait
   * for {@linkcode whenWritable} first; a send past the window is still accepted (the window
   * is the caller's bound, not a hard limit). On a failed connection the result is `retry` at
   * once. With `transaction`, `bytes` hold `MULTI`, the `count` commands, then `EXEC` (see
   * {@linkcode MULTI} and {@linkcode EXEC}), and the result's errors are per command; with
   * `values`, the result has the replies.
   */
  send(bytes: Uint8Array, count: number, options: SendOptions = {}): SentBatch {
    const transaction = options.transaction ?? false;
    if (this.#failure) {
      return { written: Promise.resolve(), result: Promise.resolve(this.#retry()) };
    }
    if (count === 0) {
      return { written: Promise.resolve(), result: Promise.resolve(NOTHING_SENT) };
    }
    const { promise, resolve } = Promise.withResolvers<PipelineResult>();
    const o: Outstanding = {
      expected: transaction ? count + 2 : count,
      got: 0,
      tx: transaction,
      aborted: undefined,
      errors: [],
      values: options.values ? [] : undefined,
      resolve,
      timer: undefined,
    };
    this.#outstanding.push(o);
    // From now: the write and every reply must be done within the timeout (a server that
    // stops reading blocks the write, one that stops answering leaves the replies missing).
    const ms = this.#replyTimeoutMs;
    o.timer = setTimeout(
      () => this.#fail(`no reply to a batch of ${count} commands within ${ms} ms`),
      ms,
    );
    const written = this.#writing.then(async () => {
      if (this.#failure) return;
      try {
        for (let p = 0; p < bytes.length;) p += await this.#conn.write(bytes.subarray(p));
      } catch (e) {
        this.#fail(`write failed: ${(e as Error).message}`, e);
      }
    });
    this.#writing = written;
    return { written, result: promise };
  }

  /**
   * Waits (at most `timeoutMs`) for the outstanding batches, then closes the socket; batches
   * still unanswered then are reported `retry`.
   */
  async close(timeoutMs: number = this.#replyTimeoutMs): Promise<void> {
    if (!this.#failure && this.#outstanding.length > 0) {
      const last = this.#outstanding[this.#outstanding.length - 1];
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        new Promise<void>((resolve) => {
          const prev = last.resolve;
          last.resolve = (r) => {
            prev(r);
            resolve();
          };
        }),
        new Promise<void>((resolve) => timer = setTimeout(resolve, timeoutMs)),
      ]);
      clearTimeout(timer);
    }
    this.#fail("connection closed", undefined, true);
  }

  /** Closes the socket now; outstanding batches are reported `retry`. */
  destroy(): void {
    this.#fail("connection closed", undefined, true);
  }

  #retry(): PipelineResult {
    return { ok: false, error: this.#failure! };
  }

  #reply(v: RespValue): void {
    const o = this.#outstanding[0];
    if (!o) throw new RedisPipelineError(`${this.name}: a reply no command asked for`);
    o.values?.push(v);
    if (!o.tx) {
      if (v instanceof RespError) o.errors.push({ index: o.got, message: v.message });
    } else if (o.got === 0) { // MULTI
      if (v instanceof RespError) o.aborted = `MULTI refused: ${v.message}`;
    } else if (o.got < o.expected - 1) { // +QUEUED, or the command's error
      if (v instanceof RespError) o.errors.push({ index: o.got - 1, message: v.message });
    } else if (Array.isArray(v)) { // EXEC: one reply per command
      for (let i = 0; i < v.length; i++) {
        const e = v[i];
        if (e instanceof RespError) o.errors.push({ index: i, message: e.message });
      }
    } else if (o.aborted === undefined) {
      o.aborted = v instanceof RespError ? v.message : "EXEC returned no replies";
    }
    o.got++;
    if (o.got < o.expected) return;
    clearTimeout(o.timer);
    this.#outstanding.shift();
    o.resolve({
      ok: true,
      replies: o.got,
      errors: o.errors,
      ...(o.aborted === undefined ? {} : { aborted: o.aborted }),
      ...(o.values === undefined ? {} : { values: o.values }),
    });
    const wake = this.#slotWaiters.shift();
    if (wake) wake();
  }

  async #readLoop(): Promise<void> {
    const buf = new Uint8Array(64 * 1024);
    try {
      for (;;) {
        const n = await this.#conn.read(buf);
        if (n === null) {
          this.#fail("the server closed the connection");
          return;
        }
        this.#reader.push(buf.subarray(0, n));
      }
    } catch (e) {
      this.#fail((e as Error).message, e);
    }
  }

  #fail(reason: string, cause?: unknown, byUs = false): void {
    if (this.#failure) return;
    const error = new RedisPipelineError(`${this.name}: ${reason}`, { cause, reason });
    this.#failure = error;
    try {
      this.#conn.close();
    } catch { /* already closed */ }
    for (const o of this.#outstanding.splice(0)) {
      clearTimeout(o.timer);
      o.resolve({ ok: false, error });
    }
    for (const wake of this.#slotWaiters.splice(0)) wake();
    this.#closed.resolve(byUs ? undefined : error);
  }
}

/**
 * Redis Streams output: every event is appended with `XADD` to a stream whose key comes from a
 * template (default `vmq:events:{hook}`, one stream per hook), with the fields `hook`, `id`
 * (the event's stable id) and `event` (the JSON form) or `frame` (the `Any` bytes, for
 * `format=protobuf`). Each batch is written as one pipelined run of `XADD`s (RESP written
 * straight into a buffer, no `MULTI`/`EXEC`: see `_pipeline_connection.ts` for why) on the
 * sink's own connection. See docs/outputs.md.
 *
 * @module
 */
import { getLogger } from "../../_deps/logtape.ts";
import type { OutputSpec } from "../output_spec.ts";
import type { FormatOptions } from "../encoding.ts";
import { ByteBuffer } from "../../codec/byte_buffer.ts";
import {
  type DeadLetter,
  DELIVERED,
  type OutputBatch,
  retryLater,
  type SendResult,
  type Sink,
} from "../contract.ts";
import type { CreatedSink, OutputFactory } from "../registry.ts";
import { EventEncoder, queueOptionsOf } from "../options.ts";
import { NameTemplate } from "../name_template.ts";
import { redisDatabase, type RedisOptions } from "./kind.ts";
import { readCaFile } from "../_ca_file.ts";
import { XaddEncoder } from "./_resp.ts";
import {
  type EntryError,
  RedisPipelineConnection,
  RedisPipelineError,
} from "./_pipeline_connection.ts";

const log = getLogger(["vmq_sidecar", "output", "redis"]);

export { DEFAULT_KEY } from "./kind.ts";

/** Options of {@linkcode RedisSink}. */
export interface RedisSinkOptions extends FormatOptions {
  /** Name for logs and metrics (no secrets): `redis://host:port/db`. */
  name: string;
  /** Host. */
  host: string;
  /** Port. */
  port: number;
  /** Database number. */
  database: number;
  /** ACL user name. */
  username?: string;
  /** Password. */
  password?: string;
  /** TLS (`rediss://`): `true`, or the CA certificates (PEM) to trust. */
  tls?: true | { ca: string };
  /** Stream key template. */
  key: NameTemplate;
  /** Approximate stream length cap (`MAXLEN ~ N`); 0 = none. */
  maxLen: number;
  /** How long to wait for a batch's last reply, in ms (the connection is dropped after it). */
  timeoutMs: number;
}

/** Errors of the Redis output (the queue logs them and retries). */
export class RedisOutputError extends Error {
  /** Creates the error. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "RedisOutputError";
  }
}

/** How long a connection attempt may take, ms. */
const CONNECT_TIMEOUT_MS = 5000;
/** The reconnect backoff: 100, 200, 400, then 500 ms between attempts. */
const reconnectDelayMs = (retries: number) => Math.min(100 * 2 ** retries, 500);
/** The sink's RESP buffer is shrunk back to this after a batch that grew it past 4×. */
const OUT_BYTES = 512 * 1024;

/**
 * Error replies that another attempt of the same `XADD` would get again (the key holds another
 * type, the ACL user may not write it, or the arguments are refused): those entries are refused
 * for good. Any other error reply (`OOM`, `LOADING`, `BUSY`, `READONLY`, `NOAUTH`, …) is taken
 * as passing: the batch is retried.
 */
const PERMANENT = /^(WRONGTYPE|NOPERM|ERR) /;
/** Error replies about this connection (re-authenticate, or reach the new primary): reconnect. */
const RECONNECT = /^(NOAUTH|READONLY|MASTERDOWN) /;

/**
 * Appends events to Redis Streams over one pipelined connection of its own, reconnecting with
 * backoff: a batch is acknowledged once the server answered every `XADD`, and retried whole
 * when the connection fails first (a prefix of it may then be stored twice, with the same `id`
 * field: the at-least-once contract).
 *
 * @example
 * ```ts ignore
 * const { sink } = await redisFactory.create(spec, "--out");
 * ```
 */
export class RedisSink implements Sink {
  /** `redis://host:port/db`. */
  readonly name: string;
  readonly #opts: RedisSinkOptions;
  readonly #xadd: XaddEncoder;
  #out = new ByteBuffer(OUT_BYTES);
  /** `[start, end)` in the batch of each command's frame (for entries refused by the server). */
  readonly #frames: number[] = [];
  /** The connection while it is up. */
  #conn: RedisPipelineConnection | undefined;
  #everUp = false;
  #wasUp = false;
  /** The last connection error (for readiness). */
  #lastError = "";
  #closing = false;
  /** Ends the reconnect wait early (at close). */
  #wake: () => void = () => {};
  readonly #firstAttempt = Promise.withResolvers<void>();
  /** The reconnect loop (never rejects). */
  readonly #running: Promise<void>;
  /** Tells the queue the server is back (see `Sink.onReady`). */
  #ready: () => void = () => {};

  /** Creates the sink and starts connecting (in the background, retrying). */
  constructor(opts: RedisSinkOptions) {
    this.name = opts.name;
    this.#opts = opts;
    this.#xadd = new XaddEncoder(opts.name, opts);
    this.#running = this.#run().catch((e) => {
      // Not expected (connect and closed never reject); never let it reach the top level.
      log.error("output {output}: reconnect loop ended: {error}", {
        output: this.name,
        error: String(e),
      });
    });
  }

  /** Connects, and again after each failure (backoff 100 → 500 ms), until closed. */
  async #run(): Promise<void> {
    const o = this.#opts;
    let retries = 0;
    while (!this.#closing) {
      let conn: RedisPipelineConnection;
      try {
        conn = await RedisPipelineConnection.connect({
          name: o.name,
          host: o.host,
          port: o.port,
          tls: o.tls,
          username: o.username,
          password: o.password,
          database: o.database,
          connectTimeoutMs: CONNECT_TIMEOUT_MS,
          replyTimeoutMs: o.timeoutMs,
        });
      } catch (e) {
        this.#lost(e);
        this.#firstAttempt.resolve();
        await this.#sleep(reconnectDelayMs(retries++));
        continue;
      }
      if (this.#closing) {
        conn.destroy();
        break;
      }
      retries = 0;
      this.#conn = conn;
      this.#everUp = this.#wasUp = true;
      log.info("output {output}: connected", { output: this.name });
      this.#firstAttempt.resolve();
      this.#ready();
      const failure = await conn.closed;
      this.#conn = undefined;
      if (failure) {
        this.#lost(failure);
        await this.#sleep(reconnectDelayMs(retries++));
      }
    }
    this.#firstAttempt.resolve();
  }

  /** Notes a failed attempt or a lost connection: logged once, then once per lost connection. */
  #lost(e: unknown): void {
    const reason = e instanceof RedisPipelineError ? e.reason : String(e);
    this.#lastError = reason;
    if (this.#wasUp || !this.#everUp) {
      log.warn("output {output}: {error}; reconnecting", { output: this.name, error: reason });
      this.#everUp = true;
    }
    this.#wasUp = false;
  }

  #sleep(ms: number): Promise<void> {
    if (this.#closing) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.#wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  /** Resolves once the first connection attempt succeeded or failed. */
  firstAttempt(): Promise<void> {
    return this.#firstAttempt.promise;
  }

  /** `ready` is called each time the connection is up again: the queue then retries at once. */
  onReady(ready: () => void): void {
    this.#ready = ready;
  }

  /** Whether the connection is up. */
  connected(): boolean {
    const c = this.#conn;
    return c !== undefined && c.failure === undefined;
  }

  /** The last connection error while not connected (e.g. `WRONGPASS …`), for readiness. */
  notReadyReason(): string {
    return this.connected() ? "" : this.#lastError;
  }

  /**
   * Writes every event of the batch as pipelined `XADD`s and waits for all their replies:
   * delivered (entries refused for good by the server as `rejected`), or `retry` when the
   * connection is down or fails first, or the server answered an error that may pass.
   */
  async send(batch: OutputBatch): Promise<SendResult> {
    const conn = this.#conn;
    if (conn === undefined || conn.failure !== undefined) {
      return retryLater(
        `${this.name}: not connected${this.#lastError ? ` (${this.#lastError})` : ""}`,
      );
    }
    const out = this.#out, frames = this.#frames;
    out.reset();
    frames.length = 0;
    const n = this.#xadd.encode(batch, out, frames);
    if (n === 0) return { outcome: "delivered", undecodable: batch.count };
    const sent = conn.send(out.bytes(), n);
    // Both settle (never reject); the buffer is reused only once the socket is done with it.
    const [, r] = await Promise.all([sent.written, sent.result]);
    if (out.buf.length > 4 * OUT_BYTES) this.#out = new ByteBuffer(OUT_BYTES);
    if (!r.ok) return retryLater(r.error.message);
    const undecodable = batch.count - n;
    if (r.errors.length === 0) {
      return undecodable === 0 ? DELIVERED : { outcome: "delivered", undecodable };
    }
    const passing = r.errors.find((e) => !PERMANENT.test(e.message));
    if (passing) {
      if (RECONNECT.test(passing.message)) conn.destroy();
      return retryLater(
        `${this.name}: ${r.errors.length} of ${n} XADD failed, e.g. ${passing.message}`,
      );
    }
    return { outcome: "delivered", rejected: this.#refused(batch, r.errors), undecodable };
  }

  /** The dead-letter records of the entries the server refused for good, one per event. */
  #refused(batch: OutputBatch, errors: readonly EntryError[]): DeadLetter[] {
    const json = this.#opts.format === "json", frames = this.#frames;
    const enc = new EventEncoder(this.name, this.#opts);
    return errors.map((e) => {
      const frame = batch.bytes.subarray(frames[2 * e.index], frames[2 * e.index + 1]);
      enc.begin(frame.length);
      enc.encode(frame); // it encoded once already: it does again
      const body = json ? withNewline(enc.body) : frame.slice();
      return {
        reason: e.message,
        destination: this.#opts.key.render(enc.hook, frame),
        events: 1,
        contentType: json ? "application/x-ndjson" : "application/x-protobuf",
        body,
      };
    });
  }

  /** Closes the connection (waiting for replies in flight) and stops reconnecting. */
  async close(): Promise<void> {
    this.#closing = true;
    this.#wake();
    await this.#conn?.close();
    await this.#running;
  }
}

function withNewline(body: Uint8Array): Uint8Array {
  const b = new Uint8Array(body.length + 1);
  b.set(body);
  b[body.length] = 10;
  return b;
}

/** The sink options of a validated Redis output. */
function redisOptions(
  spec: OutputSpec & { readonly options: RedisOptions },
  key: string,
): RedisSinkOptions {
  const o = spec.options;
  const url = new URL(spec.target);
  const tls = url.protocol === "rediss:";
  const ca = o.tls_ca !== undefined ? readCaFile(o.tls_ca, key) : undefined;
  const database = redisDatabase(url, key);
  return {
    name: `${url.protocol}//${url.host}/${database}`,
    format: spec.format,
    payload: spec.payload,
    host: url.hostname.replace(/^\[(.*)\]$/, "$1"),
    port: url.port ? Number(url.port) : 6379,
    database,
    username: o.username ?? (url.username ? decodeURIComponent(url.username) : undefined),
    password: o.password ?? (url.password ? decodeURIComponent(url.password) : undefined),
    tls: tls ? (ca ? { ca } : true) : undefined,
    key: new NameTemplate(`${key} key`, o.key),
    maxLen: o.maxlen,
    timeoutMs: o.timeout_ms,
  };
}

/** Creates `redis://` and `rediss://` outputs (loaded by the registry when one is created). */
export const redisFactory: OutputFactory<RedisOptions> = {
  async create(spec, key): Promise<CreatedSink> {
    const sink = new RedisSink(redisOptions(spec, key));
    // Start with the connection up when the server is there; a server that is down is not
    // fatal (the client keeps reconnecting, the queue keeps the events).
    await sink.firstAttempt();
    return { sink, queue: queueOptionsOf(spec.options) };
  },
};

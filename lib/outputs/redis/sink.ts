/**
 * Redis Streams output: every event is appended with `XADD` to a stream whose key comes from a
 * template (default `vmq:events:{hook}`, one stream per hook), with the fields `hook`, `id`
 * (the event's stable id) and `event` (the JSON form) or `frame` (the `Any` bytes, for
 * `format=protobuf`). Each batch is written as one transaction — `MULTI`, its `XADD`s, `EXEC`,
 * RESP written straight into one buffer and pipelined (see `_pipeline_connection.ts` for why) —
 * on the sink's own connection. See docs/outputs.md.
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
import { EventEncoder, eventId, queueOptionsOf } from "../options.ts";
import { type EnvelopeRanges, parseEnvelope } from "../../wire/envelope.ts";
import { NameTemplate } from "../name_template.ts";
import { redisDatabase, type RedisOptions } from "./kind.ts";
import { readCaFile } from "../_ca_file.ts";
import { RespError, type RespValue, writeCommand, XaddEncoder } from "./_resp.ts";
import {
  type EntryError,
  EXEC,
  MULTI,
  type PipelineResult,
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
/** `EXEC`'s answer when a queued command was refused: nothing ran, the connection is fine. */
const EXECABORT = /^EXECABORT /;
/**
 * Transactions sent for one batch at most: the first, then again without the entries refused
 * for good when those aborted it (each attempt refuses at least one more entry, or stops).
 */
const MAX_ATTEMPTS = 3;
/** Newest entries of a stream searched for the last entry of an unanswered transaction. */
const CHECK_ENTRIES = 1000;

/**
 * A transaction sent but not answered (the connection failed first): its `EXEC` may have run.
 * When the same batch comes back (same entries, first and last id), the stream is searched for
 * its last entry before the batch is sent again.
 */
interface Unanswered {
  readonly count: number;
  readonly span: number;
  readonly first: string;
  readonly last: string;
  /** The stream of the last entry. */
  readonly key: string;
}

/**
 * Appends events to Redis Streams over one pipelined connection of its own, reconnecting with
 * backoff: a batch is one `MULTI`/`EXEC` transaction, acknowledged once `EXEC` answered, and
 * retried whole when the connection fails first (it is stored twice, with the same `id`
 * fields, only when the server ran `EXEC` but its reply was lost: the at-least-once contract).
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
  /** The last transaction, when the connection failed before its `EXEC` was answered. */
  #unanswered: Unanswered | undefined;
  /**
   * Connections {@linkcode RedisSink.send} dropped itself in a row (a reply such as `READONLY`
   * that needs a new one), until a batch is stored again: the reconnect then backs off by it and
   * does not cut the queue's retry backoff short, so a server that keeps answering so is not
   * hammered in a tight reconnect loop. `#dropReason` is the last such reply.
   */
  #drops = 0;
  #dropReason = "";
  readonly #ranges: EnvelopeRanges = { typeUrlStart: 0, typeUrlEnd: 0, valueStart: 0, valueEnd: 0 };

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
      if (this.#drops === 0) this.#ready();
      const failure = await conn.closed;
      this.#conn = undefined;
      if (failure) {
        this.#lost(failure);
        await this.#sleep(reconnectDelayMs(retries++));
      } else if (this.#drops > 0 && !this.#closing) {
        this.#lost(this.#dropReason);
        await this.#sleep(reconnectDelayMs(this.#drops));
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
   * Writes every event of the batch as one transaction of pipelined `XADD`s and waits for its
   * `EXEC`: delivered (entries refused for good by the server as `rejected`), or `retry` when
   * the connection is down or fails first, or the server answered an error that may pass.
   */
  async send(batch: OutputBatch): Promise<SendResult> {
    const rejected: DeadLetter[] = [];
    let undecodable = 0, entries = batch;
    for (let attempt = 1;; attempt++) {
      const conn = this.#conn;
      if (conn === undefined || conn.failure !== undefined) {
        return retryLater(
          `${this.name}: not connected${this.#lastError ? ` (${this.#lastError})` : ""}`,
        );
      }
      const out = this.#out, frames = this.#frames;
      out.reset();
      frames.length = 0;
      out.write(MULTI);
      const n = this.#xadd.encode(entries, out, frames);
      if (attempt === 1) undecodable = batch.count - n;
      if (n === 0) return delivered(rejected, undecodable);
      if (this.#unanswered) {
        const stored = await this.#storedBefore(conn, entries.bytes, n);
        if (stored === undefined) {
          return retryLater(`${this.name}: cannot tell whether the unanswered batch was stored`);
        }
        if (stored) return delivered(rejected, undecodable);
      }
      out.write(EXEC);
      const sent = conn.send(out.bytes(), n, { transaction: true });
      // Both settle (never reject); the buffer is reused only once the socket is done with it.
      const [, r] = await Promise.all([sent.written, sent.result]);
      if (out.buf.length > 4 * OUT_BYTES) this.#out = new ByteBuffer(OUT_BYTES);
      if (!r.ok) {
        this.#unanswered = this.#fingerprint(entries.bytes, n);
        return retryLater(r.error.message);
      }
      if (r.errors.length === 0 && r.aborted === undefined) {
        this.#drops = 0;
        return delivered(rejected, undecodable);
      }
      const passing = r.errors.find((e) => !PERMANENT.test(e.message));
      if (passing || r.errors.length === 0) {
        const reason = passing?.message ?? r.aborted!;
        // A connection in a state this sink did not ask for (e.g. still in MULTI) starts over.
        if (RECONNECT.test(reason) || (r.aborted && !EXECABORT.test(r.aborted))) {
          this.#dropReason = reason;
          this.#drops++;
          conn.destroy();
        }
        return retryLater(`${this.name}: ${describeFailure(r, n)}, e.g. ${reason}`);
      }
      rejected.push(...this.#refused(entries.bytes, r.errors));
      if (r.aborted === undefined) return delivered(rejected, undecodable); // the rest is stored
      // The refused entries aborted the transaction: nothing is stored; send the others again.
      if (attempt === MAX_ATTEMPTS) {
        return retryLater(`${this.name}: ${describeFailure(r, n)} (${attempt} attempts)`);
      }
      entries = without(entries.bytes, frames, r.errors);
    }
  }

  /** What identifies the transaction just encoded (`n` entries of `bytes`, at `#frames`). */
  #fingerprint(bytes: Uint8Array, n: number): Unanswered {
    const frames = this.#frames;
    const first = bytes.subarray(frames[0], frames[1]);
    const lastFrame = bytes.subarray(frames[2 * n - 2], frames[2 * n - 1]);
    return {
      count: n,
      span: frames[2 * n - 1] - frames[0],
      first: eventId(first),
      last: eventId(lastFrame),
      key: this.#opts.key.render(parseEnvelope(lastFrame, this.#ranges), lastFrame),
    };
  }

  /**
   * Whether the batch just encoded is the unanswered transaction and the server stored it
   * (its last entry is among the newest of its stream): true, false (not the same batch, or
   * not found: send it), or undefined when the server cannot tell yet (connection failed,
   * `LOADING`…: retry later).
   */
  async #storedBefore(
    conn: RedisPipelineConnection,
    bytes: Uint8Array,
    n: number,
  ): Promise<boolean | undefined> {
    const u = this.#unanswered!, now = this.#fingerprint(bytes, n);
    if (
      now.count !== u.count || now.span !== u.span || now.first !== u.first ||
      now.last !== u.last || now.key !== u.key
    ) {
      this.#unanswered = undefined;
      return false;
    }
    const q = new ByteBuffer(256);
    writeCommand(q, ["XREVRANGE", u.key, "+", "-", "COUNT", String(CHECK_ENTRIES)]);
    const r = await conn.send(q.bytes(), 1, { values: true }).result;
    if (!r.ok) return undefined;
    const reply = r.values?.[0];
    // An error that may pass (e.g. LOADING while the server reads its data back): ask again.
    if (reply instanceof RespError && !PERMANENT.test(reply.message)) return undefined;
    this.#unanswered = undefined;
    const stored = hasEntryId(reply, u.last);
    if (stored) {
      log.info(
        "output {output}: the transaction of {count} XADD unanswered when the connection failed was stored; not sent again",
        { output: this.name, count: n },
      );
    }
    return stored;
  }

  /** The dead-letter records of the entries the server refused for good, one per event. */
  #refused(bytes: Uint8Array, errors: readonly EntryError[]): DeadLetter[] {
    const json = this.#opts.format === "json", frames = this.#frames;
    const enc = new EventEncoder(this.name, this.#opts);
    return errors.map((e) => {
      const frame = bytes.subarray(frames[2 * e.index], frames[2 * e.index + 1]);
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

function delivered(rejected: DeadLetter[], undecodable: number): SendResult {
  if (rejected.length === 0) {
    return undecodable === 0 ? DELIVERED : { outcome: "delivered", undecodable };
  }
  return { outcome: "delivered", rejected, undecodable };
}

const ascii = new TextDecoder();

/** Whether an `XREVRANGE` reply holds an entry whose field `id` is `id`. */
function hasEntryId(reply: RespValue | undefined, id: string): boolean {
  if (!Array.isArray(reply)) return false; // an error reply (e.g. WRONGTYPE): not known stored
  for (const entry of reply) {
    const fields = Array.isArray(entry) ? entry[1] : undefined;
    if (!Array.isArray(fields)) continue;
    for (let i = 0; i + 1 < fields.length; i += 2) {
      const k = fields[i], v = fields[i + 1];
      if (
        k instanceof Uint8Array && v instanceof Uint8Array && ascii.decode(k) === "id" &&
        ascii.decode(v) === id
      ) return true;
    }
  }
  return false;
}

function describeFailure(r: PipelineResult & { ok: true }, n: number): string {
  return r.aborted === undefined
    ? `${r.errors.length} of ${n} XADD failed`
    : `transaction of ${n} XADD not run (${r.errors.length} refused)`;
}

/** The frames of `bytes` at `frames` (two offsets per entry), but the entries of `errors`. */
function without(
  bytes: Uint8Array,
  frames: readonly number[],
  errors: readonly EntryError[],
): OutputBatch {
  const skip = new Set(errors.map((e) => e.index));
  let size = 0, count = 0;
  for (let i = 0; i < frames.length / 2; i++) {
    if (!skip.has(i)) size += 4 + frames[2 * i + 1] - frames[2 * i];
  }
  const out = new Uint8Array(size), view = new DataView(out.buffer);
  let p = 0;
  for (let i = 0; i < frames.length / 2; i++) {
    if (skip.has(i)) continue;
    const frame = bytes.subarray(frames[2 * i], frames[2 * i + 1]);
    view.setUint32(p, frame.length);
    out.set(frame, p + 4);
    p += 4 + frame.length;
    count++;
  }
  return { bytes: out, count };
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

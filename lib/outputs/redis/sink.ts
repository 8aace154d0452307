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
import { ByteBufferPool } from "../../codec/byte_buffer_pool.ts";
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
  type SentBatch,
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
/**
 * Newest entries of a stream searched for the last entry of an unanswered transaction, besides
 * its own and those of the unanswered transactions sent after it.
 */
const CHECK_ENTRIES = 1000;

/** Unanswered batches remembered at most (the oldest is forgotten: it may be stored twice). */
const MAX_UNANSWERED = 64;
/**
 * How long after its last try an unanswered batch whose lookup could not tell yet holds later
 * ones back, ms: a batch the queue does not try again within it was given up by the queue.
 */
const HOLD_MS = 30_000;

/**
 * A transaction sent but not answered (the connection failed first): its `EXEC` may have run.
 * When the same batch comes back (same entries, first and last id), the stream of its last
 * entry is searched for that entry and, at the expected distance before it, the batch's first
 * entry of that stream, before the batch is sent again.
 */
interface Unanswered {
  /** Where it was in the order of sending (the order lookups and resends keep). */
  readonly order: number;
  readonly count: number;
  readonly span: number;
  readonly first: string;
  readonly last: string;
  /** The stream of the last entry. */
  readonly key: string;
  /** The id of the batch's first entry in `key`. */
  readonly keyFirst: string;
  /** The batch's entries in `key` (consecutive there: one transaction). */
  readonly inKey: number;
  /** When it was last tried and the lookup could not tell (it holds later batches back). */
  triedAt: number;
}

/** One encoded transaction of {@linkcode RedisSink.send}: its own buffer and frame offsets. */
interface Encoded {
  readonly out: ByteBuffer;
  /** `[start, end)` in the batch of each command's frame (for entries refused by the server). */
  readonly frames: number[];
  /** Commands (entries) in it. */
  readonly n: number;
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
  /** RESP buffers of settled batches, for the next ones (one grown past 4 × OUT_BYTES goes). */
  readonly #buffers = new ByteBufferPool(OUT_BYTES);
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
  /**
   * The transactions sent whose connection failed before their `EXEC` was answered, in the
   * order they were sent (see {@linkcode Unanswered}).
   */
  readonly #unanswered: Unanswered[] = [];
  /** The order of the last transaction written. */
  #order = 0;
  /** Calls waiting for or in their turn (see `#turn`). */
  #turns = 0;
  /** The last turn (never rejects). */
  #lastTurn: Promise<void> = Promise.resolve();
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
   * Re-entrant: each call has its own buffer and state, and the transactions of calls made
   * before earlier ones settled are pipelined behind them, each settled by its own `EXEC` reply.
   * After a lost connection, the calls go one at a time, in call order, until every batch left
   * unanswered has been looked up (see {@linkcode Unanswered}).
   */
  async send(batch: OutputBatch): Promise<SendResult> {
    const rejected: DeadLetter[] = [];
    let undecodable = 0, entries = batch;
    for (let attempt = 1;; attempt++) {
      if (!this.connected()) return this.#notConnected();
      const enc = this.#encode(entries);
      if (attempt === 1) undecodable = batch.count - enc.n;
      if (enc.n === 0) {
        this.#buffers.give(enc.out);
        return delivered(rejected, undecodable);
      }
      const written = this.#unanswered.length === 0 && this.#turns === 0
        ? this.#write(enc, ++this.#order)
        : await this.#turn(() => this.#recover(entries.bytes, enc, attempt === 1));
      if (typeof written === "number") {
        this.#buffers.give(enc.out);
        if (written === STORED) return delivered(rejected, undecodable);
        return written === DOWN
          ? this.#notConnected()
          : retryLater(`${this.name}: cannot tell yet whether an unanswered batch was stored`);
      }
      const { conn, sent, order } = written;
      // Both settle (never reject); the buffer is reused only once the socket is done with it.
      const [, r] = await Promise.all([sent.written, sent.result]);
      this.#buffers.give(enc.out);
      if (!r.ok) {
        this.#remember(this.#fingerprint(entries.bytes, enc, order));
        return retryLater(r.error.message);
      }
      if (r.errors.length === 0 && r.aborted === undefined) {
        this.#drops = 0;
        return delivered(rejected, undecodable);
      }
      const n = enc.n, passing = r.errors.find((e) => !PERMANENT.test(e.message));
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
      rejected.push(...this.#refused(entries.bytes, enc.frames, r.errors));
      if (r.aborted === undefined) return delivered(rejected, undecodable); // the rest is stored
      // The refused entries aborted the transaction: nothing is stored; send the others again.
      if (attempt === MAX_ATTEMPTS) {
        return retryLater(`${this.name}: ${describeFailure(r, n)} (${attempt} attempts)`);
      }
      entries = without(entries.bytes, enc.frames, r.errors);
    }
  }

  #notConnected(): SendResult {
    return retryLater(
      `${this.name}: not connected${this.#lastError ? ` (${this.#lastError})` : ""}`,
    );
  }

  /** `MULTI` and the batch's `XADD`s in a buffer of the call's own (`EXEC` is added by `#write`). */
  #encode(batch: OutputBatch): Encoded {
    const out = this.#buffers.take(), frames: number[] = [];
    out.write(MULTI);
    const n = this.#xadd.encode(batch, out, frames);
    return { out, frames, n };
  }

  /** Pipelines the transaction on the connection (synchronously: calls keep their order). */
  #write(enc: Encoded, order: number): Written {
    const conn = this.#conn;
    if (conn === undefined || conn.failure !== undefined) return DOWN;
    enc.out.write(EXEC);
    return { conn, sent: conn.send(enc.out.bytes(), enc.n, { transaction: true }), order };
  }

  /** Runs `f` once every earlier turn has finished: the recovery goes one call at a time. */
  #turn<T>(f: () => Promise<T>): Promise<T> {
    this.#turns++;
    const run = this.#lastTurn.then(f).finally(() => this.#turns--);
    this.#lastTurn = run.then(() => {}, () => {});
    return run;
  }

  /**
   * A call's turn while batches are unanswered: when its batch is one of them, the stream is
   * asked whether it was stored (STORED: not sent again; UNKNOWN: the server cannot tell yet);
   * an earlier unanswered batch that could not be told yet holds it back (UNKNOWN). Else (or not
   * stored) it is written, behind everything sent before. `lookup` is false for what is left of
   * a batch after refused entries aborted its transaction (not one of them, nor a new batch).
   */
  async #recover(bytes: Uint8Array, enc: Encoded, lookup: boolean): Promise<Written> {
    const list = this.#unanswered;
    let order = 0;
    if (lookup && list.length > 0) {
      const now = this.#fingerprint(bytes, enc, 0);
      const i = list.findIndex((u) => sameBatch(u, now));
      if (i < 0) list.length = 0; // no retry of them (the queue gave them up): forget them
      else {
        const at = Date.now();
        if (list.slice(0, i).some((u) => at - u.triedAt < HOLD_MS)) return UNKNOWN;
        const u = list[i], conn = this.#conn;
        u.triedAt = at;
        if (conn === undefined || conn.failure !== undefined) return DOWN;
        // Those after it were sent after it: if it was stored, they may be newer in its stream.
        let after = 0;
        for (let j = i + 1; j < list.length; j++) after += list[j].count;
        const stored = await this.#storedBefore(conn, u, enc.n, after);
        if (stored === undefined) return UNKNOWN;
        // Earlier ones not retried before it were given up by the queue.
        list.splice(0, list.indexOf(u) + 1);
        if (stored) return STORED;
        order = u.order;
      }
    }
    return this.#write(enc, order || ++this.#order);
  }

  /** Adds an unanswered batch, in the order of sending (one already there keeps its place). */
  #remember(u: Unanswered): void {
    const list = this.#unanswered;
    const same = list.findIndex((v) => sameBatch(v, u));
    if (same >= 0) {
      list[same].triedAt = 0;
      return;
    }
    let at = list.length;
    while (at > 0 && list[at - 1].order > u.order) at--;
    list.splice(at, 0, u);
    if (list.length > MAX_UNANSWERED) list.shift();
  }

  /** What identifies a transaction (`enc.n` entries of `bytes`, at `enc.frames`). */
  #fingerprint(bytes: Uint8Array, enc: Encoded, order: number): Unanswered {
    const { frames, n } = enc, ranges = this.#ranges, template = this.#opts.key;
    const frame = (i: number) => bytes.subarray(frames[2 * i], frames[2 * i + 1]);
    const keyOf = (i: number) => template.render(parseEnvelope(frame(i), ranges), frame(i));
    const key = keyOf(n - 1);
    let firstInKey = n - 1, inKey = 1;
    if (template.fill("") !== template.fill("x")) { // a key per entry
      for (let i = n - 2; i >= 0; i--) {
        if (keyOf(i) === key) (firstInKey = i, inKey++);
      }
    } else (firstInKey = 0, inKey = n); // one stream for every entry
    return {
      order,
      count: n,
      span: frames[2 * n - 1] - frames[0],
      first: eventId(frame(0)),
      last: eventId(frame(n - 1)),
      key,
      keyFirst: eventId(frame(firstInKey)),
      inKey,
      triedAt: 0,
    };
  }

  /**
   * Whether the server stored the unanswered transaction `u` (its last entry among the newest
   * of its stream — the newest 1000 besides `after` entries of the unanswered batches sent after
   * it — and its first entry there at the expected distance before it): true, false
   * (not found: send it), or undefined when the server cannot tell yet (connection failed,
   * `LOADING`…: retry later).
   */
  async #storedBefore(
    conn: RedisPipelineConnection,
    u: Unanswered,
    n: number,
    after: number,
  ): Promise<boolean | undefined> {
    const q = new ByteBuffer(256);
    const count = CHECK_ENTRIES + u.inKey + after;
    writeCommand(q, ["XREVRANGE", u.key, "+", "-", "COUNT", String(count)]);
    const r = await conn.send(q.bytes(), 1, { values: true }).result;
    if (!r.ok) return undefined;
    const reply = r.values?.[0];
    // An error that may pass (e.g. LOADING while the server reads its data back): ask again.
    if (reply instanceof RespError && !PERMANENT.test(reply.message)) return undefined;
    const stored = storedInOrder(reply, u.last, u.keyFirst, u.inKey);
    if (stored) {
      log.info(
        "output {output}: the transaction of {count} XADD unanswered when the connection failed was stored; not sent again",
        { output: this.name, count: n },
      );
    }
    return stored;
  }

  /** The dead-letter records of the entries the server refused for good, one per event. */
  #refused(
    bytes: Uint8Array,
    frames: readonly number[],
    errors: readonly EntryError[],
  ): DeadLetter[] {
    const json = this.#opts.format === "json";
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

/** The transaction is on the connection: its result, and where it is in the order of sending. */
interface Sent {
  readonly conn: RedisPipelineConnection;
  readonly sent: SentBatch;
  readonly order: number;
}
/** The unanswered batch was stored (not sent again). */
const STORED = 1;
/** Not written: not connected. */
const DOWN = 2;
/** Not written: the server cannot tell yet whether an unanswered batch was stored. */
const UNKNOWN = 3;
/** What became of a call's transaction before its reply. */
type Written = Sent | typeof STORED | typeof DOWN | typeof UNKNOWN;

/** Whether two fingerprints are of the same batch. */
function sameBatch(a: Unanswered, b: Unanswered): boolean {
  return a.count === b.count && a.span === b.span && a.first === b.first && a.last === b.last &&
    a.key === b.key && a.keyFirst === b.keyFirst && a.inKey === b.inKey;
}

const ascii = new TextDecoder();

/** The `id` field of each entry of an `XREVRANGE` reply (undefined for an entry without). */
function entryIds(reply: RespValue[]): (string | undefined)[] {
  return reply.map((entry) => {
    const fields = Array.isArray(entry) ? entry[1] : undefined;
    if (!Array.isArray(fields)) return undefined;
    for (let i = 0; i + 1 < fields.length; i += 2) {
      const k = fields[i], v = fields[i + 1];
      if (k instanceof Uint8Array && v instanceof Uint8Array && ascii.decode(k) === "id") {
        return ascii.decode(v);
      }
    }
    return undefined;
  });
}

/**
 * Whether an `XREVRANGE` reply (newest first) holds an entry whose `id` is `last` with, `count - 1`
 * entries older, one whose `id` is `first`: the `count` entries of one transaction.
 */
function storedInOrder(
  reply: RespValue | undefined,
  last: string,
  first: string,
  count: number,
): boolean {
  if (!Array.isArray(reply)) return false; // an error reply (e.g. WRONGTYPE): not known stored
  const ids = entryIds(reply);
  for (let j = 0; j + count - 1 < ids.length; j++) {
    if (ids[j] === last && ids[j + count - 1] === first) return true;
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

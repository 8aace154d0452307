/**
 * Redis Streams output: every event is appended with `XADD` to a stream whose key comes from a
 * template (default `vmq:events:{hook}`, one stream per hook), with the fields `hook`, `id`
 * (the event's stable id) and `event` (the JSON form) or `frame` (the `Any` bytes, for
 * `format=protobuf`). Each batch is one `MULTI`/`EXEC` transaction. See docs/outputs.md.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { getLogger } from "../../_deps/logtape.ts";
import { createClient } from "../../_deps/redis_client.ts";
import type { OutputSpec } from "../output_spec.ts";
import type { FormatOptions } from "../encoding.ts";
import { HOOKS } from "../../schema/hooks.ts";
import {
  DELIVERED,
  forEachFrame,
  type OutputBatch,
  type SendResult,
  type Sink,
} from "../contract.ts";
import type { CreatedSink, OutputFactory } from "../registry.ts";
import { EventEncoder, eventId, queueOptionsOf } from "../options.ts";
import { NameTemplate } from "../name_template.ts";
import { redisDatabase, type RedisOptions } from "./kind.ts";
import { readCaFile } from "../_ca_file.ts";

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
  /** How long to wait for a batch's `EXEC` reply, in ms. */
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

const HOOK_ARGS = HOOKS.map((h) => Buffer.from(h));

/**
 * Appends events to Redis Streams, one `MULTI`/`EXEC` per batch: the batch is applied whole or
 * not at all, and retried whole when the reply does not come.
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
  readonly #encoder: EventEncoder;
  readonly #client;
  #up = false;
  #everUp = false;
  /** The last connection error (for readiness). */
  #lastError = "";
  /** The `EXEC` still unanswered after a timeout; no new batch is sent while it is. */
  #stale: Promise<unknown> | undefined;
  readonly #firstAttempt = Promise.withResolvers<void>();
  /** Tells the queue the server is back (see `Sink.onReady`). */
  #ready: () => void = () => {};

  /** Creates the sink and starts connecting (in the background, retrying). */
  constructor(opts: RedisSinkOptions) {
    this.name = opts.name;
    this.#opts = opts;
    this.#encoder = new EventEncoder(opts.name, opts);
    const common = {
      host: opts.host,
      port: opts.port,
      connectTimeout: 5000,
      reconnectStrategy: (retries: number) => Math.min(100 * 2 ** retries, 500),
    };
    const client = createClient({
      socket: opts.tls
        ? { ...common, tls: true, ...(opts.tls === true ? {} : { ca: opts.tls.ca }) }
        : common,
      database: opts.database,
      username: opts.username,
      password: opts.password,
      name: "vmq-sidecar",
      // Commands fail at once while disconnected: the queue keeps the events, not the client.
      disableOfflineQueue: true,
      // RESP2 and no maintenance notifications: the client then needs no environment access.
      RESP: 2,
      maintNotifications: "disabled",
    });
    client.on("ready", () => {
      this.#firstAttempt.resolve();
      this.#up = this.#everUp = true;
      log.info("output {output}: connected", { output: this.name });
      this.#ready();
    });
    client.on("error", (e: Error) => {
      this.#firstAttempt.resolve();
      this.#lastError = e.message || e.name;
      if (this.#up || !this.#everUp) {
        log.warn("output {output}: {error}; reconnecting", {
          output: this.name,
          error: e.message || e.name,
        });
        this.#everUp = true; // log the first failure only, then once per lost connection
      }
      this.#up = false;
    });
    client.on("end", () => this.#up = false);
    this.#client = client;
    client.connect().catch(() => {}); // failures arrive as "error" events; it keeps retrying
  }

  /** Resolves once the first connection attempt succeeded or failed. */
  firstAttempt(): Promise<void> {
    return this.#firstAttempt.promise;
  }

  /** `ready` is called each time the client is ready again: the queue then retries at once. */
  onReady(ready: () => void): void {
    this.#ready = ready;
  }

  /** Whether the connection is up. */
  connected(): boolean {
    return this.#up && this.#client.isReady;
  }

  /** The last connection error while not connected (e.g. `WRONGPASS …`), for readiness. */
  notReadyReason(): string {
    return this.connected() ? "" : this.#lastError;
  }

  /** Appends every event of the batch in one transaction and waits for its reply. */
  async send(batch: OutputBatch): Promise<SendResult> {
    if (this.#stale) throw new RedisOutputError(`${this.name}: previous batch still unanswered`);
    if (!this.#client.isReady) throw new RedisOutputError(`${this.name}: not connected`);
    const enc = this.#encoder, key = this.#opts.key, maxLen = this.#opts.maxLen;
    const field = this.#opts.format === "json" ? "event" : "frame";
    enc.begin(batch.bytes.length);
    const multi = this.#client.multi();
    let n = 0;
    forEachFrame(batch, (frame) => {
      if (!enc.encode(frame)) return;
      const args: (string | Buffer)[] = ["XADD", key.render(enc.hook, frame)];
      if (maxLen > 0) args.push("MAXLEN", "~", String(maxLen));
      const b = enc.body;
      args.push(
        "*",
        "hook",
        HOOK_ARGS[enc.hook],
        "id",
        eventId(frame),
        field,
        Buffer.from(b.buffer, b.byteOffset, b.length),
      );
      multi.addCommand(args);
      n++;
    });
    if (n === 0) return { outcome: "delivered", undecodable: batch.count };
    const exec = multi.exec();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<"timeout">((resolve) => {
      timer = setTimeout(() => resolve("timeout"), this.#opts.timeoutMs);
    });
    try {
      const r = await Promise.race([exec, timeout]);
      if (r === "timeout") {
        this.#stale = exec.catch(() => {}).finally(() => this.#stale = undefined);
        throw new RedisOutputError(
          `${this.name}: no reply to a batch of ${n} XADD within ${this.#opts.timeoutMs} ms`,
        );
      }
    } catch (e) {
      if (e instanceof RedisOutputError) throw e;
      throw new RedisOutputError(`${this.name}: ${describe(e)}`, { cause: e });
    } finally {
      clearTimeout(timer);
    }
    return n === batch.count ? DELIVERED : { outcome: "delivered", undecodable: batch.count - n };
  }

  /** Closes the connection (waiting for replies in flight when connected). */
  async close(): Promise<void> {
    const client = this.#client;
    this.#up = false;
    if (client.isReady && !this.#stale) await client.close().catch(() => client.destroy());
    else if (client.isOpen) client.destroy();
  }
}

function describe(e: unknown): string {
  if (!(e instanceof Error)) return String(e);
  // A transaction with failed commands: say what the server answered.
  const replies = (e as { replies?: unknown[] }).replies;
  const first = replies?.find((r) => r instanceof Error) as Error | undefined;
  return first ? `${e.message}: ${first.message}` : e.message;
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

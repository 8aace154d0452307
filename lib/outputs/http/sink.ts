/**
 * HTTP webhook output: batches of events are POSTed as `application/x-ndjson` (the JSON form,
 * one object per line) or `application/x-protobuf` (the frames as received, each with its
 * 4-byte big-endian length). Connection errors, 5xx, 408 and 429 are retried by the queue
 * (never before the server's `Retry-After`); any other 4xx rejects the batch for good: the
 * queue appends it to the dead-letter file, counts it, and acknowledges it. See
 * docs/outputs.md.
 *
 * @module
 */
import { getLogger } from "../../_deps/logtape.ts";
import { ByteBufferPool } from "../../codec/byte_buffer_pool.ts";
import type { OutputSpec } from "../output_spec.ts";
import { appendBatch, type FormatOptions } from "../encoding.ts";
import {
  DELIVERED,
  type OutputBatch,
  retryLater,
  type SendResult,
  type Sink,
} from "../contract.ts";
import type { CreatedSink, OutputFactory } from "../registry.ts";
import { DeadLetterFile } from "../dead_letter.ts";
import { bodyId, publicName, queueOptionsOf } from "../options.ts";
import { type HttpOptions, requestHeaders } from "./kind.ts";
import { readCaFile } from "../_ca_file.ts";

const log = getLogger(["vmq_sidecar", "output", "http"]);

/** Options of {@linkcode HttpSink}. */
export interface HttpSinkOptions extends FormatOptions {
  /** Name for logs and metrics (no secrets): the URL without user, password and query. */
  name: string;
  /** Where to POST (query included). */
  url: string;
  /** Extra request headers (values from options or environment variables). */
  headers: Record<string, string>;
  /** Per-request timeout in ms. */
  timeoutMs: number;
  /** Longest `Retry-After` honoured, in ms. */
  retryAfterMaxMs: number;
  /** Where refused batches go. */
  deadLetter: DeadLetterFile;
  /** Extra CA certificates (PEM) to trust for https. */
  caCerts?: string[];
}

/** A retryable HTTP answer (5xx, 408, 429, or an unexpected 1xx/3xx). */
export class HttpStatusError extends Error {
  /** The status. */
  readonly status: number;
  /** The server's `Retry-After`, in ms (0 when absent). */
  readonly retryAfterMs: number;
  /** Creates the error. */
  constructor(message: string, status: number, retryAfterMs: number) {
    super(message);
    this.name = "HttpStatusError";
    this.status = status;
    this.retryAfterMs = retryAfterMs;
  }
}

/** The server could not be reached (connection refused or reset, timeout, TLS failure). */
export class HttpConnectionError extends Error {
  /** Creates the error. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "HttpConnectionError";
  }
}

const CONTENT_TYPE = { json: "application/x-ndjson", protobuf: "application/x-protobuf" };

/**
 * POSTs batches of events to a URL.
 *
 * @example
 * ```ts ignore
 * const { sink } = await httpFactory.create(spec, "--out");
 * ```
 */
export class HttpSink implements Sink {
  /** The URL without user, password and query. */
  readonly name: string;
  readonly #opts: HttpSinkOptions;
  readonly #client: Deno.HttpClient | undefined;
  readonly #closing = new AbortController();
  #up = true;
  /** Tells the queue the server is reachable again (see `Sink.onReady`). */
  #ready: () => void = () => {};
  /** The TCP probe running while the server cannot be reached. */
  #probing: Promise<void> | undefined;
  /** JSON body buffers of finished requests, for the next ones (up to 4 MiB each). */
  readonly #bodies = new ByteBufferPool(1024, 4, 4 << 20);

  /** Creates the sink. */
  constructor(opts: HttpSinkOptions) {
    this.name = opts.name;
    this.#opts = opts;
    this.#client = opts.caCerts ? Deno.createHttpClient({ caCerts: opts.caCerts }) : undefined;
  }

  /** False after a request could not reach the server, until one does. */
  connected(): boolean {
    return this.#up;
  }

  /**
   * `ready` is called when, after a request could not reach the server, a TCP connection to
   * its host and port succeeds (tried every {@linkcode PROBE_INTERVAL_MS}): the queue then
   * retries at once instead of waiting out its backoff.
   */
  onReady(ready: () => void): void {
    this.#ready = ready;
  }

  /** A probe's connect is pending (see {@linkcode HttpSink.#probe}). */
  #dialing = false;

  /** Probes the server's port until it accepts a connection (or the sink closes). */
  #probe(): void {
    if (this.#probing) return;
    const url = new URL(this.#opts.url);
    const hostname = url.hostname.replace(/^\[(.*)\]$/, "$1");
    const port = Number(url.port) || (url.protocol === "https:" ? 443 : 80);
    const signal = this.#closing.signal;
    this.#probing = (async () => {
      while (!signal.aborted) {
        await this.#sleep(PROBE_INTERVAL_MS);
        if (signal.aborted) return;
        // A connect that timed out stays pending (up to ~2 min against a host that drops
        // SYNs): never more than one at a time.
        if (this.#dialing) continue;
        this.#dialing = true;
        const settled = () => this.#dialing = false;
        if (await tcpReachable(hostname, port, PROBE_INTERVAL_MS, settled)) {
          this.#ready();
          return;
        }
      }
    })().finally(() => this.#probing = undefined);
  }

  /**
   * POSTs the batch; see the module for what each answer does. A JSON body is encoded into a
   * buffer of a small pool (one per request in flight, `concurrency`), taken back once the
   * answer is in — unless the batch was refused: its body goes to the dead-letter file.
   */
  async send(batch: OutputBatch): Promise<SendResult> {
    const o = this.#opts;
    if (o.format === "protobuf") return await this.#post(batch, batch.bytes, 0);
    const buf = this.#bodies.take(batch.bytes.length * 2);
    const undecodable = appendBatch(buf, batch, o, this.name, Infinity, () => {});
    let result: SendResult | undefined;
    try {
      result = await this.#post(batch, buf.bytes(), undecodable);
      return result;
    } finally {
      if (result?.outcome !== "rejected") this.#bodies.give(buf);
    }
  }

  async #post(batch: OutputBatch, body: Uint8Array, undecodable: number): Promise<SendResult> {
    const o = this.#opts;
    const events = batch.count - undecodable;
    if (events === 0) return { outcome: "delivered", undecodable };
    const contentType = CONTENT_TYPE[o.format];
    let res: Response;
    try {
      res = await fetch(o.url, {
        method: "POST",
        headers: {
          "user-agent": "vmq-sidecar",
          ...o.headers,
          "content-type": contentType,
          // The same batch always has the same key: a receiver can drop a retried batch.
          "idempotency-key": bodyId(body),
          "x-vmq-sidecar-events": String(events),
        },
        body: body as Uint8Array<ArrayBuffer>,
        signal: AbortSignal.any([AbortSignal.timeout(o.timeoutMs), this.#closing.signal]),
        client: this.#client,
      });
    } catch (e) {
      const error = fetchError(e, this.name, o.timeoutMs);
      if (this.#up) {
        this.#up = false;
        log.warn("output {output}: cannot reach the server: {error}", {
          output: this.name,
          error,
        });
      }
      this.#probe();
      throw new HttpConnectionError(`${this.name}: ${error}`, { cause: e });
    }
    if (!this.#up) log.info("output {output}: server reachable again", { output: this.name });
    this.#up = true;
    const answer = await readSnippet(res);
    const status = res.status;
    if (res.ok) return undecodable === 0 ? DELIVERED : { outcome: "delivered", undecodable };
    if (status >= 400 && status < 500 && status !== 408 && status !== 429) {
      // Refused for good: the queue appends it to the dead-letter file.
      const letter = {
        reason: `HTTP ${status} ${res.statusText}`.trim(),
        status,
        response: answer,
        events,
        contentType,
        body,
      };
      return { outcome: "rejected", letter, undecodable };
    }
    // Retried by the queue, not before the time the server asked for.
    const retryAfterMs = Math.min(
      parseRetryAfter(res.headers.get("retry-after")),
      o.retryAfterMaxMs,
    );
    return retryLater(
      `${this.name}: HTTP ${status} ${res.statusText}${answer ? `: ${answer.slice(0, 200)}` : ""}`,
      retryAfterMs > 0 ? retryAfterMs : undefined,
    );
  }

  /** Where the queue appends the batches the server refused (4xx). */
  get deadLetter(): DeadLetterFile {
    return this.#opts.deadLetter;
  }

  #sleep(ms: number): Promise<void> {
    const signal = this.#closing.signal;
    return new Promise((resolve) => {
      if (signal.aborted) return resolve();
      const t = setTimeout(done, ms);
      signal.addEventListener("abort", done, { once: true });
      function done() {
        clearTimeout(t);
        signal.removeEventListener("abort", done);
        resolve();
      }
    });
  }

  /** Stops waiting (Retry-After, requests in flight) and releases the HTTP client. */
  close(): Promise<void> {
    this.#closing.abort();
    this.#client?.close();
    return Promise.resolve();
  }
}

/** How often a failing HTTP output probes its server's port, in ms. */
const PROBE_INTERVAL_MS = 500;

/**
 * Whether a TCP connection to `hostname:port` opens within `timeoutMs` (then closed);
 * `settled` runs once the connect attempt ends, which may be long after the timeout.
 */
async function tcpReachable(
  hostname: string,
  port: number,
  timeoutMs: number,
  settled: () => void,
): Promise<boolean> {
  const connecting = Deno.connect({ hostname, port });
  connecting.then(settled, settled);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<undefined>((r) => timer = setTimeout(() => r(undefined), timeoutMs));
  try {
    const conn = await Promise.race([connecting, timeout]);
    if (!conn) {
      connecting.then((c) => {
        try {
          c.close(); // opened late
        } catch { /* already closed */ }
      }, () => {});
      return false;
    }
    conn.close();
    return true;
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
  }
}

/** What went wrong with a request, without the URL's query (it may hold secrets). */
function fetchError(e: unknown, name: string, timeoutMs: number): string {
  if (!(e instanceof Error)) return String(e);
  if (e.name === "TimeoutError") return `no answer within ${timeoutMs} ms`;
  const text = e.cause instanceof Error ? e.cause.message : e.message;
  return text.replace(/\(https?:\/\/[^)\s]*\)/g, `(${name})`);
}

/** Reads at most 1 KiB of the answer as text (the rest is discarded). */
async function readSnippet(res: Response): Promise<string> {
  if (!res.body) return "";
  const reader = res.body.getReader();
  const parts: Uint8Array[] = [];
  let n = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (n < 1024) parts.push(value.subarray(0, 1024 - n));
      n += value.length;
      if (n > 64 * 1024) {
        await reader.cancel();
        break;
      }
    }
  } catch {
    // A broken answer body does not change the status.
  }
  const all = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let at = 0;
  for (const p of parts) (all.set(p, at), at += p.length);
  return new TextDecoder().decode(all).trim();
}

/** `Retry-After` (seconds or an HTTP date) in ms; 0 when absent or unparsable. */
export function parseRetryAfter(value: string | null, now = Date.now()): number {
  if (value === null) return 0;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  const at = Date.parse(v);
  return Number.isNaN(at) ? 0 : Math.max(0, at - now);
}

/** The sink options of a validated HTTP output. */
function httpOptions(
  spec: OutputSpec & { readonly options: HttpOptions },
  key: string,
): HttpSinkOptions {
  const o = spec.options;
  const url = new URL(spec.target);
  const headers = requestHeaders(o, key);
  const target = new URL(url.href);
  if (url.username || url.password) {
    // Basic auth from the URL's userinfo (fetch does not send it by itself).
    const user = decodeURIComponent(url.username), pass = decodeURIComponent(url.password);
    headers.authorization = `Basic ${btoa(`${user}:${pass}`)}`;
    target.username = target.password = "";
  }
  for (const [k, v] of Object.entries(o.query)) target.searchParams.append(k, v);
  const name = publicName(url);
  return {
    name,
    url: target.href,
    format: spec.format,
    payload: spec.payload,
    headers,
    timeoutMs: o.timeout_ms,
    retryAfterMaxMs: o.retry_after_max_ms,
    deadLetter: new DeadLetterFile(o.dead_letter, name),
    caCerts: o.tls_ca !== undefined ? [readCaFile(o.tls_ca, key)] : undefined,
  };
}

/** Creates `http://` and `https://` outputs (loaded by the registry when one is created). */
export const httpFactory: OutputFactory<HttpOptions> = {
  create(spec, key): Promise<CreatedSink> {
    const opts = httpOptions(spec, key);
    opts.deadLetter.checkPermission();
    return Promise.resolve({ sink: new HttpSink(opts), queue: queueOptionsOf(spec.options) });
  },
};

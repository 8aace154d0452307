/**
 * NATS JetStream output: every event is published with a publish acknowledgement to a subject
 * from a template (default `vmq.events.{hook}`), with a `Nats-Msg-Id` derived from the frame's
 * bytes so that JetStream's duplicate window drops redeliveries after a retry. See
 * docs/outputs.md.
 *
 * @module
 */
import { getLogger } from "../../_deps/logtape.ts";
import {
  createInbox,
  type Msg,
  type NatsConnection,
  NatsConnectionImpl,
  type NodeConnectionOptions,
  setTransportFactory,
} from "../../_deps/nats_transport_node.ts";
import { nodeResolveHost, NodeTransport } from "../../_deps/nats_transport_node.ts";
import { jetstreamManager } from "../../_deps/nats_jetstream.ts";
import type { OutputSpec } from "../output_spec.ts";
import type { FormatOptions } from "../encoding.ts";
import {
  type DeadLetter,
  DELIVERED,
  type OutputBatch,
  type SendResult,
  type Sink,
} from "../contract.ts";
import type { CreatedSink, OutputFactory } from "../registry.ts";
import { DeadLetterFile } from "../dead_letter.ts";
import { EventEncoder, publicName, queueOptionsOf } from "../options.ts";
import { ByteBufferPool } from "../../codec/byte_buffer_pool.ts";
import { type EnvelopeRanges, parseEnvelope } from "../../wire/envelope.ts";
import { HpubEncoder } from "./_hpub.ts";
import type { NameTemplate } from "../name_template.ts";
import { type NatsOptions, subjectTemplate } from "./kind.ts";

const log = getLogger(["vmq_sidecar", "output", "nats"]);

export { DEFAULT_SUBJECT, escapeSubjectToken, unescapeSubjectToken } from "./kind.ts";

/**
 * The client's Node transport, with one change: its socket never emits `error` without a
 * listener. The transport calls `removeAllListeners()` on its socket when it closes or hands
 * it on (dial → INFO → connected), and under Deno an `ECONNRESET` read error can still arrive
 * after that — e.g. right after the server answered `-ERR 'Authorization Violation'` and
 * reset the connection — which then became an uncaught error that ended the process.
 * Errors on a socket the client no longer listens to are only logged at debug level: the
 * client already handles the connection's end through its `close` event.
 */
class GuardedNodeTransport extends NodeTransport {
  constructor() {
    super();
    let socket = this.socket;
    Object.defineProperty(this, "socket", {
      configurable: true,
      enumerable: true,
      get: () => socket,
      set: (s) => {
        if (s) guardSocket(s);
        socket = s;
      },
    });
  }
}

const GUARDED = Symbol("vmq-sidecar guarded socket");

function guardSocket(socket: NodeTransport["socket"]): void {
  const sock = socket as typeof socket & { [GUARDED]?: true };
  if (sock[GUARDED]) return;
  sock[GUARDED] = true;
  const ignore = (e: Error) => {
    if (sock.listenerCount("error") > 1) return; // the client listens and handles it
    log.debug("NATS socket error after the client stopped listening: {error}", {
      error: e.message,
    });
  };
  sock.on("error", ignore);
  const removeAll = sock.removeAllListeners;
  sock.removeAllListeners = function (this: typeof sock, ...args: [(string | symbol)?]) {
    removeAll.apply(this, args);
    if (args[0] === undefined || args[0] === "error") this.on("error", ignore);
    return this;
  } as typeof sock.removeAllListeners;
}

/**
 * Connects like `connect()` of `@nats-io/transport-node` (which installs the plain transport
 * on every call), with {@linkcode GuardedNodeTransport}.
 */
function connectGuarded(options: NodeConnectionOptions): Promise<NatsConnection> {
  setTransportFactory({
    factory: () => new GuardedNodeTransport(),
    dnsResolveFn: nodeResolveHost,
  });
  return NatsConnectionImpl.connect(options);
}

/** How to reach and authenticate to the server. */
export interface NatsConnectOptions {
  /** `host:port`. */
  server: string;
  /** User name (with `password`). */
  user?: string;
  /** Password. */
  password?: string;
  /** Token. */
  token?: string;
  /** TLS: `true` for the system roots, or the CA file to trust. */
  tls?: true | { caFile: string };
  /**
   * Where the credentials come from, for the message when the server refuses them (e.g.
   * `token_env=VMQ_SIDECAR_NATS_TOKEN`); undefined when none are configured.
   */
  credentials?: string;
}

/** Options of {@linkcode NatsSink}. */
export interface NatsSinkOptions extends FormatOptions {
  /** Name for logs and metrics (no secrets). */
  name: string;
  /** Connection. */
  connection: NatsConnectOptions;
  /** Subject template. */
  subject: NameTemplate;
  /** How long to wait for each publish acknowledgement, in ms. */
  ackTimeoutMs: number;
  /** Stream to create (capturing the template's subjects) when missing; none when undefined. */
  createStream?: string;
  /** Where events the server refuses for good (too large) go. */
  deadLetter: DeadLetterFile;
}

/** Errors of the NATS output (the queue logs them and retries). */
export class NatsOutputError extends Error {
  /** Creates the error. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "NatsOutputError";
  }
}

const JS_MESSAGE_TOO_LARGE = 10054;
/** How a JetStream publish acknowledgement that is no error begins. */
const ACK_PREFIX = new TextEncoder().encode('{"stream":');

function startsWith(data: Uint8Array, prefix: Uint8Array): boolean {
  for (let j = 0; j < prefix.length; j++) if (data[j] !== prefix[j]) return false;
  return true;
}
/** The HPUB buffer's first size; one grown past 4× this is not kept for the next batch. */
const OUT_BYTES = 512 * 1024;
const PENDING = 0, ACKED = 1, FAILED = 2, TOO_LARGE = 3;
const utf8 = new TextDecoder();
const utf8Encoder = new TextEncoder();

/** The acknowledgements of one batch of publishes. */
class PendingAcks {
  readonly gen: number;
  readonly state: Uint8Array;
  /** The subject of publish `i` (for error messages). */
  subjectOf: (i: number) => string = () => "";
  /** Publishes issued (set once all are). */
  total = -1;
  settled = 0;
  failures = 0;
  firstError = "";
  /** Some subject had no stream (JetStream answered "no responders"). */
  noStream = false;
  /** Why the batch ended before every publish was answered (`""` while it did not). */
  abandoned: "" | "down" | "timeout" = "";
  readonly done = Promise.withResolvers<void>();

  constructor(gen: number, capacity: number) {
    this.gen = gen;
    this.state = new Uint8Array(capacity);
  }

  settle(i: number, state: number, error = ""): void {
    if (i >= this.state.length || this.state[i] !== PENDING) return;
    this.state[i] = state;
    if (state === FAILED) (this.failures++, this.firstError ||= error);
    this.settled++;
    if (this.settled === this.total) this.done.resolve();
  }

  issued(n: number): void {
    this.total = n;
    if (this.settled === n) this.done.resolve();
  }

  /** Ends the wait for the answers still missing (the connection dropped, or the timeout). */
  abandon(why: "down" | "timeout"): void {
    this.abandoned ||= why;
    this.done.resolve();
  }
}

/**
 * Publishes events to JetStream. A batch is published pipelined (every publish issued, then
 * every acknowledgement awaited); it resolves only when all were acknowledged, otherwise it
 * rejects and the queue retries the whole batch, which the `Nats-Msg-Id` deduplicates. Several
 * batches may be in flight (`send` called again before earlier calls settled).
 *
 * @example
 * ```ts ignore
 * const { sink } = await natsFactory.create(spec, "--out");
 * ```
 */
export class NatsSink implements Sink {
  /** `nats://host:port`. */
  readonly name: string;
  readonly #opts: NatsSinkOptions;
  readonly #encoder: EventEncoder;
  #nc: NatsConnection | undefined;
  /** Reply subjects of publishes are `<inbox>.<batch generation>_<index>`. */
  #inbox = "";
  #gen = 0;
  /** The batches waiting for acknowledgements, by generation (several calls of `send` at once). */
  readonly #batches = new Map<number, PendingAcks>();
  #up = false;
  #connecting: Promise<void> | undefined;
  /** The last connect failure (for readiness); empty once connected. */
  #notReady = "";
  /** The last fix logged for a refused connection (logged once, not per retry). */
  #loggedFix = "";
  #closed = false;
  #streamChecked = false;
  /** The check (or creation) of the stream under way, shared by the calls of `send` meanwhile. */
  #streamCheck: Promise<void> | undefined;
  /** Tells the queue the server is back (see `Sink.onReady`). */
  #ready: () => void = () => {};
  readonly #hpub: HpubEncoder;
  /** HPUB buffers free for the next batches (see `send`; one grown past 4 × OUT_BYTES goes). */
  readonly #buffers = new ByteBufferPool(OUT_BYTES);
  readonly #ranges: EnvelopeRanges = { typeUrlStart: 0, typeUrlEnd: 0, valueStart: 0, valueEnd: 0 };

  /** Creates the sink; it connects on the first send. */
  constructor(opts: NatsSinkOptions) {
    this.name = opts.name;
    this.#opts = opts;
    this.#encoder = new EventEncoder(opts.name, opts);
    this.#hpub = new HpubEncoder(opts.name, opts);
  }

  /** Whether the connection to the server is up. */
  connected(): boolean {
    return this.#up;
  }

  /** `ready` is called on each reconnect: the queue then retries at once. */
  onReady(ready: () => void): void {
    this.#ready = ready;
  }

  /** Connects (once; later the client reconnects by itself). Throws when the server is down. */
  async connect(): Promise<void> {
    if (this.#nc && !this.#nc.isClosed()) return;
    await (this.#connecting ??= this.#connect().finally(() => this.#connecting = undefined));
  }

  async #connect(): Promise<void> {
    const c = this.#opts.connection;
    const options: NodeConnectionOptions = {
      servers: c.server,
      name: "vmq-sidecar",
      maxReconnectAttempts: -1,
      reconnectTimeWait: 100,
      reconnectJitter: 50,
      pingInterval: 10_000,
      maxPingOut: 3,
      user: c.user,
      pass: c.password,
      token: c.token,
    };
    if (c.tls) options.tls = c.tls === true ? {} : { caFile: c.tls.caFile };
    let nc: NatsConnection;
    try {
      nc = await connectGuarded(options);
    } catch (e) {
      this.#connectError(e);
    }
    this.#notReady = "";
    if (this.#closed) {
      await nc.close();
      return;
    }
    this.#nc = nc;
    this.#inbox = createInbox();
    nc.subscribe(`${this.#inbox}.*`, {
      callback: (err, m) => {
        // An error here (e.g. a permission violation on the inbox) ends the subscription: the
        // acknowledgements then time out and the batch is retried.
        if (err) log.warn("output {output}: {error}", { output: this.name, error: describe(err) });
        else {
          try {
            this.#onAck(m);
          } catch (e) { // never let a bad answer throw into the client's reader
            log.warn("output {output}: unreadable acknowledgement: {error}", {
              output: this.name,
              error: describe(e),
            });
          }
        }
      },
    });
    this.#up = true;
    log.info("output {output}: connected", { output: this.name });
    this.#watch(nc).catch((e) => {
      if (this.#nc !== nc) return;
      // Without status updates the state is unknown: start over on the next send.
      this.#nc = undefined;
      this.#up = false;
      this.#abandonAll();
      nc.close().catch(() => {});
      log.error("output {output}: status watcher failed: {error}", {
        output: this.name,
        error: describe(e),
      });
    });
  }

  /** Throws the error of a failed connect; logs what to fix once per distinct reason. */
  #connectError(e: unknown): never {
    const c = this.#opts.connection;
    let reason = describe(e), fix = "";
    if (e instanceof Error && e.name === "AuthorizationError") {
      reason = `the server refused the credentials (${e.message})`;
      fix = c.credentials
        ? `check the credentials given by ${c.credentials}`
        : "the server requires credentials: set token_env=VMQ_SIDECAR_... (or user=NAME" +
          " and password_env=VMQ_SIDECAR_...) on this output";
    }
    this.#notReady = `cannot connect: ${reason}`;
    if (fix && fix !== this.#loggedFix) {
      this.#loggedFix = fix;
      log.error("output {output}: {reason}; {fix}; retrying", {
        output: this.name,
        reason,
        fix,
      });
    }
    throw new NatsOutputError(`cannot connect to ${this.name}: ${reason}`, { cause: e });
  }

  /** Why the output is not ready (empty when it may be): the last connect failure. */
  notReadyReason(): string {
    return this.#up ? "" : this.#notReady;
  }

  async #watch(nc: NatsConnection): Promise<void> {
    for await (const s of nc.status()) {
      if (this.#nc !== nc) break;
      if (s.type === "disconnect" && this.#up) {
        this.#up = false;
        this.#abandonAll();
        log.warn("output {output}: disconnected; reconnecting", { output: this.name });
      } else if (s.type === "reconnect") {
        this.#up = true;
        log.info("output {output}: reconnected", { output: this.name });
        this.#ready();
      }
    }
    // Closed for good (e.g. refused credentials): the next send connects anew.
    if (this.#nc === nc) {
      this.#up = false;
      this.#abandonAll();
    }
  }

  /** The connection dropped: the acknowledgements in flight are lost; every batch ends. */
  #abandonAll(): void {
    for (const b of this.#batches.values()) b.abandon("down");
  }

  /** Checks (creates) the stream once; the calls of `send` meanwhile share the check. */
  #ensureStream(nc: NatsConnection): Promise<void> {
    if (!this.#opts.createStream || this.#streamChecked) return Promise.resolve();
    return this.#streamCheck ??= this.#checkStream(nc).finally(() => this.#streamCheck = undefined);
  }

  async #checkStream(nc: NatsConnection): Promise<void> {
    const name = this.#opts.createStream!;
    const jsm = await jetstreamManager(nc, { timeout: this.#opts.ackTimeoutMs });
    try {
      await jsm.streams.info(name);
    } catch (e) {
      if ((e as Error).name !== "StreamNotFoundError") throw e;
      const subjects = [streamSubjects(this.#opts.subject)];
      await jsm.streams.add({ name, subjects });
      log.info("output {output}: created stream {stream} for {subjects}", {
        output: this.name,
        stream: name,
        subjects: subjects.join(" "),
      });
    }
    this.#streamChecked = true;
  }

  /** Generation and index of the last reply subject read by {@linkcode NatsSink.#readAckToken}. */
  #ackGen = 0;
  #ackIndex = 0;

  /**
   * Reads `<gen>_<i>` of an acknowledgement's subject `<inbox>.<gen>_<i>` into `#ackGen` and
   * `#ackIndex`: from the client's raw subject bytes when it keeps them (no string decoded per
   * acknowledgement — ~3 % of the NATS relay's CPU), else from `m.subject`. False when the
   * subject is not of that form.
   */
  #readAckToken(m: Msg): boolean {
    const raw = (m as unknown as { _msg?: { subject?: unknown } })._msg?.subject;
    const bytes = raw instanceof Uint8Array ? raw : utf8Encoder.encode(m.subject);
    let p = this.#inbox.length + 1, gen = 0, i = 0, digits = 0;
    for (; p < bytes.length && bytes[p] !== 0x5f; p++, digits++) {
      const d = bytes[p] - 0x30;
      if (d < 0 || d > 9) return false;
      gen = gen * 10 + d;
    }
    if (digits === 0 || p >= bytes.length) return false;
    for (p++, digits = 0; p < bytes.length; p++, digits++) {
      const d = bytes[p] - 0x30;
      if (d < 0 || d > 9) return false;
      i = i * 10 + d;
    }
    if (digits === 0) return false;
    this.#ackGen = gen;
    this.#ackIndex = i;
    return true;
  }

  /** A publish acknowledgement (or a "no responders" status) arrived. */
  #onAck(m: Msg): void {
    if (!this.#readAckToken(m)) return; // not one of its reply subjects
    const b = this.#batches.get(this.#ackGen);
    if (!b) return; // a late answer to an earlier attempt
    const i = this.#ackIndex;
    if (m.headers?.hasError) {
      if (m.headers.code === 503) b.noStream = true;
      b.settle(
        i,
        FAILED,
        m.headers.code === 503
          ? `no JetStream stream captures subject ${b.subjectOf(i)} (create one, e.g. with` +
            ` nats stream add, or set create_stream=NAME)`
          : `${m.headers.code} ${m.headers.description}`,
      );
      return;
    }
    // A success is `{"stream":…,"seq":…[,"duplicate":true]}` (errors lead with "error"): no
    // JSON.parse for it.
    const data = m.data;
    if (data.length > ACK_PREFIX.length && startsWith(data, ACK_PREFIX)) {
      b.settle(i, ACKED);
      return;
    }
    let ack: { stream?: string; error?: { err_code?: number; description?: string } };
    try {
      ack = JSON.parse(utf8.decode(data));
    } catch {
      b.settle(i, FAILED, "unreadable acknowledgement");
      return;
    }
    if (ack.error) {
      const e = ack.error;
      b.settle(
        i,
        e.err_code === JS_MESSAGE_TOO_LARGE ? TOO_LARGE : FAILED,
        `${e.description ?? "error"} (JetStream error ${e.err_code})`,
      );
    } else if (ack.stream) b.settle(i, ACKED);
    else b.settle(i, FAILED, "invalid acknowledgement");
  }

  /**
   * Publishes every event of the batch (each with a reply subject on the sink's inbox), then
   * waits for all acknowledgements. Re-entrant: each call has its own buffer and its own
   * acknowledgements (reply subjects of its own generation), and the publishes of calls made
   * before earlier ones settled go out behind theirs, in call order while connected.
   */
  send(batch: OutputBatch): Promise<SendResult> {
    const nc = this.#nc;
    // Connected and the stream checked: published at once (calls keep their order).
    if (nc && this.#up && !nc.isClosed() && (this.#streamChecked || !this.#opts.createStream)) {
      return this.#publish(nc, batch);
    }
    return this.#connectThenPublish(batch);
  }

  async #connectThenPublish(batch: OutputBatch): Promise<SendResult> {
    await this.connect();
    const nc = this.#nc;
    if (!nc) throw new NatsOutputError(`${this.name} is closed`);
    // While the client reconnects it would buffer publishes; fail fast and let the queue back
    // off instead, so nothing but the queue holds events.
    if (!this.#up) throw new NatsOutputError(`${this.name}: not connected (reconnecting)`);
    try {
      await this.#ensureStream(nc);
    } catch (e) {
      throw new NatsOutputError(`${this.name}: cannot create stream: ${describe(e)}`, {
        cause: e,
      });
    }
    return await this.#publish(nc, batch);
  }

  async #publish(nc: NatsConnection, batch: OutputBatch): Promise<SendResult> {
    if (!this.#up) throw new NatsOutputError(`${this.name}: not connected (reconnecting)`);
    const b = new PendingAcks(++this.#gen, batch.count);
    this.#batches.set(b.gen, b);
    // All the batch's HPUBs in one buffer of its own, handed to the client's connection in one
    // write. A buffer is reused only after its batch was acknowledged in full (the server has
    // every byte); after an abandoned one the client may still hold it (and send it once
    // reconnected: the message ids deduplicate that), so it is dropped.
    const out = this.#buffers.take();
    const hpub = this.#hpub, frames: number[] = [];
    hpub.inbox = this.#inbox;
    let n: number;
    try {
      n = hpub.encode(batch, b.gen, out, nc.info?.max_payload ?? Infinity, frames);
    } catch (e) {
      this.#batches.delete(b.gen);
      throw e;
    }
    const frameOf = (i: number) => batch.bytes.subarray(frames[2 * i], frames[2 * i + 1]);
    b.subjectOf = (i) => {
      const frame = frameOf(i);
      return this.#opts.subject.render(parseEnvelope(frame, this.#ranges), frame);
    };
    for (const i of hpub.tooLarge) b.settle(i, TOO_LARGE);
    if (out.pos > 0) (nc as NatsConnectionImpl).protocol.sendCommand(out.bytes());
    b.issued(n);
    // A dropped connection loses the acknowledgements in flight: the status watcher abandons
    // the batch at once rather than after the timeout; the retry is deduplicated by the
    // message ids. Only this batch's own promise is awaited: a reaction on anything that
    // outlives the batch (e.g. a promise per connection) would keep the batch — its bodies,
    // subjects and buffers — alive until that settles: ~1 KiB per event, never freed.
    const timer = setTimeout(() => b.abandon("timeout"), this.#opts.ackTimeoutMs);
    await b.done.promise;
    clearTimeout(timer);
    this.#batches.delete(b.gen);
    const outcome = b.abandoned;
    if (outcome === "") this.#buffers.give(out);
    if (outcome !== "") {
      throw new NatsOutputError(
        outcome === "down"
          ? `${this.name}: connection lost while waiting for ${n - b.settled} acknowledgements`
          : `${this.name}: ${
            n - b.settled
          } of ${n} publishes not acknowledged within ${this.#opts.ackTimeoutMs} ms`,
      );
    }
    if (b.failures > 0) {
      if (b.noStream) this.#streamChecked = false; // deleted meanwhile? create_stream again
      throw new NatsOutputError(
        `${this.name}: ${b.failures} of ${n} publishes not acknowledged: ${b.firstError}`,
      );
    }
    // Messages above the server's size limit are refused for good: the queue dead-letters them.
    let rejected: DeadLetter[] | undefined;
    const enc = this.#encoder, json = this.#opts.format === "json";
    for (let i = 0; i < n; i++) {
      if (b.state[i] !== TOO_LARGE) continue;
      const frame = frameOf(i);
      enc.begin(frame.length);
      enc.encode(frame); // it encoded once already: it does again
      (rejected ??= []).push({
        reason: `message of ${enc.body.length} bytes exceeds the server's limit (${
          nc.info?.max_payload ?? "?"
        } bytes max_payload, or the stream's max_msg_size)`,
        destination: b.subjectOf(i),
        events: 1,
        contentType: json ? "application/x-ndjson" : "application/x-protobuf",
        body: json ? withNewline(enc.body) : enc.body.slice(),
      });
    }
    const undecodable = batch.count - n;
    if (rejected === undefined && undecodable === 0) return DELIVERED;
    return { outcome: "delivered", rejected, undecodable };
  }

  /** Where the queue appends the messages the server refused (too large). */
  get deadLetter(): DeadLetterFile {
    return this.#opts.deadLetter;
  }

  /** Drains and closes the connection. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.#connecting?.catch(() => {});
    const nc = this.#nc;
    this.#nc = undefined;
    this.#up = false;
    if (nc && !nc.isClosed()) await nc.close().catch(() => {});
  }
}

function withNewline(body: Uint8Array): Uint8Array {
  const out = new Uint8Array(body.length + 1);
  out.set(body);
  out[body.length] = 0x0a;
  return out;
}

function describe(e: unknown): string {
  if (!(e instanceof Error)) return String(e);
  const cause = e.cause instanceof Error && e.cause.message !== e.message
    ? ` (${e.cause.message})`
    : "";
  return `${e.message}${cause}`;
}

/** The subjects a stream must capture for `template`: placeholders become wildcards. */
export function streamSubjects(template: NameTemplate): string {
  const hole = "\u0000";
  const out: string[] = [];
  for (const t of template.fill(hole).split(".")) {
    if (t === hole) out.push("*");
    else if (t.includes(hole)) {
      out.push(">");
      break;
    } else out.push(t);
  }
  return out.join(".");
}

/** The sink options of a validated NATS output. */
function natsOptions(
  spec: OutputSpec & { readonly options: NatsOptions },
  key: string,
): NatsSinkOptions {
  const o = spec.options;
  const url = new URL(spec.target);
  // A lone user info (`nats://TOKEN@host`) is a token, as NATS URLs mean it.
  const urlToken = url.username && !url.password && o.user === undefined && o.password === undefined
    ? decodeURIComponent(url.username)
    : undefined;
  const token = o.token ?? urlToken;
  const user = urlToken !== undefined
    ? undefined
    : o.user ?? (url.username ? decodeURIComponent(url.username) : undefined);
  const password = o.password ?? (url.password ? decodeURIComponent(url.password) : undefined);
  const name = publicName(url);
  const fromEnv = spec.fromEnv ?? {};
  const credentials = token !== undefined
    ? (fromEnv.token !== undefined
      ? `token_env=${fromEnv.token}`
      : urlToken !== undefined
      ? "the token in the URL"
      : "the token option")
    : user !== undefined
    ? (fromEnv.password !== undefined
      ? `user=${user} and password_env=${fromEnv.password}`
      : `user=${user} and its password`)
    : undefined;
  return {
    name,
    format: spec.format,
    payload: spec.payload,
    connection: {
      server: `${url.hostname}:${url.port || "4222"}`,
      user,
      password,
      token,
      tls: o.tls_ca !== undefined ? { caFile: o.tls_ca } : o.tls || undefined,
      credentials,
    },
    subject: subjectTemplate(o, key),
    ackTimeoutMs: o.ack_timeout_ms,
    createStream: o.create_stream,
    deadLetter: new DeadLetterFile(o.dead_letter, name),
  };
}

/** Creates `nats://` outputs (loaded by the registry when one is created). */
export const natsFactory: OutputFactory<NatsOptions> = {
  async create(spec, key): Promise<CreatedSink> {
    const opts = natsOptions(spec, key);
    opts.deadLetter.checkPermission();
    const sink = new NatsSink(opts);
    // A server that is down at startup is not fatal: the queue keeps the events and retries.
    await sink.connect().catch((e) => {
      log.warn("output {output}: {error}; will retry", { output: sink.name, error: e.message });
    });
    return { sink, queue: queueOptionsOf(spec.options) };
  },
};

// Test helper: real nats-server (JetStream) and redis-server processes on free loopback ports,
// each with its own temp directory; stop and restart them on the same port mid-test.
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { jetstreamManager, type StreamConfig } from "@nats-io/jetstream";
import { createClient, RESP_TYPES } from "@redis/client";
import { Buffer } from "node:buffer";
import { eventBody, fixtureVectors, frameOf } from "./_vectors.ts";
import { type RunningSidecar, startSidecar } from "./_sidecar.ts";

/** A free TCP port on 127.0.0.1 (bound, then released). */
export function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** A server process the test controls. */
export interface TestServer {
  /** Its port on 127.0.0.1. */
  readonly port: number;
  /** Its working/storage directory. */
  readonly dir: string;
  /** Whether the process runs. */
  readonly running: boolean;
  /** Everything the process logged so far (all runs). */
  log(): string;
  /** Stops it (SIGTERM, then SIGKILL after 5 s) and waits for the exit. */
  stop(signal?: Deno.Signal): Promise<void>;
  /** Starts it again on the same port and directory; resolves once it accepts connections. */
  start(): Promise<void>;
  /** Stops it and removes its directory. */
  [Symbol.asyncDispose](): Promise<void>;
}

interface Spec {
  cmd: string;
  args: (port: number, dir: string) => string[];
  /** A log line that says the server is ready. */
  ready: RegExp;
}

async function startServer(spec: Spec, port = freePort()): Promise<TestServer> {
  const dir = await Deno.makeTempDir({ prefix: `vmq-sidecar-${spec.cmd}-` });
  let proc: Deno.ChildProcess | undefined;
  let text = "";
  let drained: Promise<void> = Promise.resolve();
  const start = async () => {
    if (proc) throw new Error(`${spec.cmd} already runs`);
    const from = text.length;
    const p = new Deno.Command(spec.cmd, {
      args: spec.args(port, dir),
      cwd: dir,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    proc = p;
    const read = async (s: ReadableStream<Uint8Array>) => {
      const dec = new TextDecoder();
      for await (const c of s) text += dec.decode(c, { stream: true });
    };
    drained = Promise.all([read(p.stdout), read(p.stderr)]).then(() => {});
    let exited = false;
    p.status.then(() => exited = true);
    const until = Date.now() + 20_000;
    while (!spec.ready.test(text.slice(from)) || !await accepts(port)) {
      if (exited || Date.now() > until) {
        await stop("SIGKILL");
        throw new Error(`${spec.cmd} on port ${port} did not start:\n${text.slice(from)}`);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  const stop = async (signal: Deno.Signal = "SIGTERM") => {
    const p = proc;
    if (!p) return;
    try {
      p.kill(signal);
    } catch { /* already exited */ }
    const timer = setTimeout(() => {
      try {
        p.kill("SIGKILL");
      } catch { /* exited */ }
    }, 5000);
    await p.status;
    clearTimeout(timer);
    await drained;
    proc = undefined;
  };
  await start();
  return {
    port,
    dir,
    get running() {
      return proc !== undefined;
    },
    log: () => text,
    stop,
    start,
    async [Symbol.asyncDispose]() {
      await stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}

async function accepts(port: number): Promise<boolean> {
  try {
    const c = await Deno.connect({ hostname: "127.0.0.1", port });
    c.close();
    return true;
  } catch {
    return false;
  }
}

/** Extra nats-server settings. */
export interface NatsServerOptions {
  /** Written to a config file passed with `-c` (e.g. `max_payload: 4096`). */
  config?: string;
  /** Extra command-line arguments (e.g. `["--auth", "secret"]`). */
  args?: string[];
  /** Port (default: a free one). */
  port?: number;
}

/** Starts `nats-server -js` on a free port with its store in a temp directory. */
export function startNats(options: NatsServerOptions = {}): Promise<TestServer> {
  return startServer({
    cmd: "nats-server",
    args: (port, dir) => {
      const args = ["-js", "-a", "127.0.0.1", "-p", String(port), "-sd", `${dir}/js`];
      if (options.config !== undefined) {
        Deno.writeTextFileSync(`${dir}/nats.conf`, options.config);
        args.push("-c", `${dir}/nats.conf`);
      }
      return [...args, ...(options.args ?? [])];
    },
    ready: /Server is ready/,
  }, options.port);
}

/**
 * Starts `redis-server` on a free port: no persistence unless `args` enable it; with `tls`,
 * the port speaks TLS only; on `port` when given (a restart on the port an output was given).
 */
export function startRedis(
  args: string[] = [],
  tls?: TestCertificates,
  port?: number,
): Promise<TestServer> {
  return startServer({
    cmd: "redis-server",
    args: (port, dir) => [
      ...(tls
        ? [
          "--port",
          "0",
          "--tls-port",
          String(port),
          "--tls-cert-file",
          tls.cert,
          "--tls-key-file",
          tls.key,
          "--tls-ca-cert-file",
          tls.ca,
          "--tls-auth-clients",
          "no",
        ]
        : ["--port", String(port)]),
      "--dir",
      dir,
      "--bind",
      "127.0.0.1",
      "--save",
      "",
      "--appendonly",
      "no",
      ...args,
    ],
    ready: /Ready to accept connections/,
  }, port);
}

// ---------------------------------------------------------------------------------------------
// TLS: a throw-away CA and a server certificate for 127.0.0.1, made with openssl.

/** Paths of a test CA and server certificate (PEM), and the CA's text. */
export interface TestCertificates {
  /** CA certificate file. */
  ca: string;
  /** Its PEM text. */
  caPem: string;
  /** Server certificate file (for 127.0.0.1 and localhost), signed by the CA. */
  cert: string;
  /** Server key file. */
  key: string;
}

/** Makes a CA and a server certificate in `dir` (openssl, EC P-256, valid 2 days). */
export async function makeCertificates(dir: string): Promise<TestCertificates> {
  const run = async (...args: string[]) => {
    const r = await new Deno.Command("openssl", { args, cwd: dir, stdin: "null" }).output();
    if (r.code !== 0) throw new Error(`openssl ${args[0]}: ${new TextDecoder().decode(r.stderr)}`);
  };
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  await run(
    "req",
    "-x509",
    ...ec,
    "-keyout",
    "ca.key",
    "-out",
    "ca.pem",
    "-days",
    "2",
    "-subj",
    "/CN=vmq-sidecar test CA",
  );
  await run("req", ...ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1");
  await Deno.writeTextFile(
    `${dir}/ext.cnf`,
    "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n" +
      "keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n",
  );
  await run(
    "x509",
    "-req",
    "-in",
    "server.csr",
    "-CA",
    "ca.pem",
    "-CAkey",
    "ca.key",
    "-CAcreateserial",
    "-out",
    "server.pem",
    "-days",
    "2",
    "-extfile",
    "ext.cnf",
  );
  return {
    ca: `${dir}/ca.pem`,
    caPem: await Deno.readTextFile(`${dir}/ca.pem`),
    cert: `${dir}/server.pem`,
    key: `${dir}/server.key`,
  };
}

// ---------------------------------------------------------------------------------------------
// Reading back what arrived, with the same client libraries a consumer would use.

/** A message stored in a JetStream stream. */
export interface StoredEvent {
  /** Stream sequence. */
  seq: number;
  /** Subject. */
  subject: string;
  /** Payload. */
  data: Uint8Array;
  /** `Nats-Msg-Id` header. */
  msgId: string | undefined;
}

/** Connects a NATS client to the test server on `port` (the caller closes it). */
export function natsClient(port: number, tls?: TestCertificates): Promise<NatsConnection> {
  return connect({
    servers: `127.0.0.1:${port}`,
    maxReconnectAttempts: -1,
    ...(tls ? { tls: { caFile: tls.ca } } : {}),
  });
}

/**
 * Messages in `stream` now: 0 when it does not exist yet or the server does not answer (e.g.
 * while it restarts), for polling.
 */
export async function streamCount(nc: NatsConnection, stream: string): Promise<number> {
  try {
    const jsm = await jetstreamManager(nc, { timeout: 1000 });
    return (await jsm.streams.info(stream)).state.messages;
  } catch {
    return 0;
  }
}

/** Every message of `stream`, in sequence order. */
export async function streamEvents(nc: NatsConnection, stream: string): Promise<StoredEvent[]> {
  const jsm = await jetstreamManager(nc);
  const { state } = await jsm.streams.info(stream);
  const out: StoredEvent[] = [];
  for (let seq = state.first_seq; seq <= state.last_seq && state.messages > 0; seq++) {
    const m = await jsm.streams.getMessage(stream, { seq });
    if (!m) continue;
    out.push({ seq: m.seq, subject: m.subject, data: m.data, msgId: m.header?.get("Nats-Msg-Id") });
  }
  return out;
}

/** Creates stream `name` capturing `subjects` (file storage), with `extra` settings. */
export async function addStream(
  nc: NatsConnection,
  name: string,
  subjects: string[],
  extra: Partial<StreamConfig> = {},
) {
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({ ...extra, name, subjects });
}

/** A stream entry as read back with XRANGE (field values as raw bytes). */
export interface StreamEntry {
  /** Entry id (`ms-seq`). */
  id: string;
  /** Fields. */
  fields: Record<string, Uint8Array>;
}

/** A Redis client connected to the test server on `port` (database `db`); the caller closes it. */
export async function redisClient(
  port: number,
  db = 0,
  password?: string,
  tls?: TestCertificates,
) {
  const client = createClient({
    socket: tls
      ? { host: "127.0.0.1", port, reconnectStrategy: 100, tls: true, ca: tls.caPem }
      : { host: "127.0.0.1", port, reconnectStrategy: 100 },
    database: db,
    password,
    RESP: 2,
    maintNotifications: "disabled",
  }).withTypeMapping({ [RESP_TYPES.BLOB_STRING]: Buffer });
  client.on("error", () => {}); // reconnects while a test restarts the server
  await client.connect();
  return client;
}

type Client = Awaited<ReturnType<typeof redisClient>>;

/** Every entry of stream `key` in order (none when it does not exist). */
export async function xrange(client: Client, key: string): Promise<StreamEntry[]> {
  const raw = await client.sendCommand(["XRANGE", key, "-", "+"]) as [Buffer, Buffer[]][];
  return raw.map(([id, kv]) => {
    const fields: Record<string, Uint8Array> = {};
    for (let i = 0; i < kv.length; i += 2) fields[kv[i].toString()] = new Uint8Array(kv[i + 1]);
    return { id: id.toString(), fields };
  });
}

/** XLEN of `key`, or 0 while the server does not answer (for polling). */
export async function xlen(client: Client, key: string): Promise<number> {
  try {
    return Number(await client.sendCommand(["XLEN", key]));
  } catch {
    return 0;
  }
}

// ---------------------------------------------------------------------------------------------
// Test traffic.

/**
 * `n` distinct on_publish frames (client_id `<tag>-<i>`, ~300-500 bytes each) as wire bytes,
 * for counting what arrived: each event's client_id says which one it is.
 */
export function distinctFrames(tag: string, n: number): Uint8Array[] {
  const template = fixtureVectors().find((v) => v.name === "027_on_publish_typical")!;
  return Array.from({ length: n }, (_, i) =>
    frameOf(eventBody("on_publish", {
      ...template.expected.event,
      client_id: `${tag}-${i}`,
      payload: new Uint8Array(64 + (i % 200)).fill(0x41 + (i % 26)),
    })));
}

// ---------------------------------------------------------------------------------------------
// An HTTP receiver (webhook endpoint) in the test process.

/** A request the receiver got. */
export interface Received {
  /** Request URL. */
  url: string;
  /** Headers (lower-case names). */
  headers: Headers;
  /** Body bytes. */
  body: Uint8Array;
  /** performance.now() when it arrived. */
  at: number;
  /** The status answered. */
  status: number;
}

/** A webhook endpoint on 127.0.0.1. */
export interface Receiver {
  /** Its port. */
  readonly port: number;
  /** Requests so far, in arrival order. */
  readonly requests: Received[];
  /** Stops listening (in-flight requests finish). */
  stop(): Promise<void>;
  /** Listens again on the same port. */
  start(): void;
  /** Stops. */
  [Symbol.asyncDispose](): Promise<void>;
}

/**
 * Starts an HTTP receiver (HTTPS with `tls`); `answer` picks the response for each request (its
 * index counts every request, including those answered with an error status).
 */
export function startReceiver(
  answer: (index: number, req: Request) => Response = () => new Response(null, { status: 204 }),
  port = 0,
  tls?: TestCertificates,
): Receiver {
  const requests: Received[] = [];
  let server: Deno.HttpServer<Deno.NetAddr> | undefined;
  const certs = tls
    ? { cert: Deno.readTextFileSync(tls.cert), key: Deno.readTextFileSync(tls.key) }
    : {};
  const start = () => {
    server = Deno.serve({ hostname: "127.0.0.1", port, onListen() {}, ...certs }, async (req) => {
      const body = new Uint8Array(await req.arrayBuffer());
      const res = answer(requests.length, req);
      requests.push({
        url: req.url,
        headers: req.headers,
        body,
        at: performance.now(),
        status: res.status,
      });
      return res;
    });
    port = server.addr.port;
  };
  start();
  const stop = async () => {
    await server?.shutdown();
    server = undefined;
  };
  return {
    get port() {
      return port;
    },
    requests,
    stop,
    start,
    [Symbol.asyncDispose]: stop,
  };
}

// ---------------------------------------------------------------------------------------------
// The sidecar under test.

/** Options of {@linkcode runOutputs}. */
export interface RunOptions {
  /** Environment of the sidecar (e.g. `VMQ_SIDECAR_*` secrets). */
  env?: Record<string, string>;
  /** Flags before the outputs (e.g. `["--shutdown-grace", "300"]`). */
  flags?: string[];
}

/** Starts the real main.ts (default permissions) on a free port with `outs`, admin off. */
export function runOutputs(outs: string[], options: RunOptions = {}): Promise<RunningSidecar> {
  return startSidecar(
    [
      "--listen",
      "127.0.0.1:0",
      "--admin",
      "off",
      ...(options.flags ?? []),
      ...outs.flatMap((o) => ["--out", o]),
    ],
    { stdout: "null", env: options.env },
  );
}

/** SIGTERM, then fails unless the exit code is `code` (0: every output flushed); the stderr. */
export async function stopOutputs(s: RunningSidecar, code = 0): Promise<string> {
  s.kill("SIGTERM");
  const r = await s.wait();
  if (r.code !== code) throw new Error(`sidecar exited ${r.code}, expected ${code}:\n${r.stderr}`);
  return r.stderr;
}

/**
 * An event's id as docs/outputs.md defines it (Nats-Msg-Id, Redis `id`, HTTP Idempotency-Key
 * of a body): the first 128 bits of SHA-256, lower-case hex. Computed with WebCrypto, not with
 * the code under test.
 */
export async function sha256Id(bytes: Uint8Array): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes.slice()));
  return [...d.subarray(0, 16)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

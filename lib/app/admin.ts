/**
 * The admin HTTP listener: `/metrics` (Prometheus text format 0.0.4), `/healthz` (the process
 * answers) and `/readyz` (listening, and every output connected and within its limits).
 *
 * @module
 */
import { getLogger } from "../_deps/logtape.ts";
import process from "node:process";
import { StartupError } from "../errors.ts";
import type { Metrics } from "./metrics.ts";
import type { Router } from "../pipeline/router.ts";
import { permissionHint } from "../_permissions.ts";

const log = getLogger(["vmq_sidecar", "admin"]);

/** Content type of `/metrics`: the Prometheus text exposition format 0.0.4. */
export const METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/** A queue holding this share of its `queue_bytes` or more makes the sidecar not ready. */
export const QUEUE_NOT_READY_RATIO = 0.9;

/** The outcome of a readiness check. */
export interface Readiness {
  /** Whether the sidecar is ready. */
  ready: boolean;
  /** Why not, one reason per line (empty when ready). */
  reasons: string[];
}

/**
 * Readiness of a running sidecar: accepting plugin connections (not backing off from resource
 * exhaustion: `acceptBackoff`, see `IngestServer.acceptBackoff`), and for every output: its
 * sink connected (when it can tell), its last send attempt not failed, and its queue below
 * {@linkcode QUEUE_NOT_READY_RATIO} of its size.
 */
export function readiness(
  pipeline: Router,
  accepting: boolean,
  acceptBackoff?: string,
): Readiness {
  const reasons: string[] = [];
  if (!accepting) reasons.push("not accepting plugin connections (starting or shutting down)");
  if (acceptBackoff) reasons.push(acceptBackoff);
  for (const q of pipeline.queues) {
    const name = q.sink.name;
    if (q.sink.connected && !q.sink.connected()) {
      const why = q.sink.notReadyReason?.();
      reasons.push(`output ${name}: not connected${why ? ` (${why})` : ""}`);
    }
    if (q.failing) reasons.push(`output ${name}: sending fails, retrying`);
    if (q.bytes >= q.options.maxBytes * QUEUE_NOT_READY_RATIO) {
      reasons.push(
        `output ${name}: queue at ${q.bytes} of ${q.options.maxBytes} bytes (${
          q.options.onFull === "block" ? "reading paused" : "dropping events"
        })`,
      );
    }
  }
  return { ready: reasons.length === 0, reasons };
}

/** Options of {@linkcode AdminServer.start}. */
export interface AdminOptions {
  /** Address to listen on. */
  hostname: string;
  /** Port (0 = any free port). */
  port: number;
  /** The registry `/metrics` renders. */
  metrics: Metrics;
  /** Readiness, evaluated per `/readyz` request. */
  readiness: () => Readiness;
}

/**
 * The admin listener.
 *
 * @example
 * ```ts ignore
 * const admin = AdminServer.start({ hostname: "127.0.0.1", port: 8891, metrics,
 *   readiness: () => readiness(pipeline, true) });
 * await admin.close();
 * ```
 */
export class AdminServer {
  readonly #server: Deno.HttpServer<Deno.NetAddr>;

  private constructor(server: Deno.HttpServer<Deno.NetAddr>) {
    this.#server = server;
  }

  /** Listens; throws {@linkcode StartupError} saying what to do when it cannot. */
  static start(options: AdminOptions): AdminServer {
    const where = `${options.hostname}:${options.port}`;
    let server: Deno.HttpServer<Deno.NetAddr>;
    try {
      server = Deno.serve({
        hostname: options.hostname,
        port: options.port,
        onListen: () => {},
        onError: (e) => {
          log.error("admin request failed: {error}", { error: String(e) });
          return new Response("internal error\n", { status: 500 });
        },
      }, (req) => handle(req, options));
    } catch (e) {
      if (e instanceof Deno.errors.AddrInUse) {
        throw new StartupError(
          `cannot listen for admin requests on ${where}: address already in use (pick another --admin, or --admin off)`,
        );
      }
      throw new StartupError(
        `cannot listen for admin requests on ${where}: ${(e as Error).message}${
          permissionHint(e, "net", where)
        }`,
      );
    }
    const admin = new AdminServer(server);
    const a = admin.addr;
    const host = a.hostname.includes(":") ? `[${a.hostname}]` : a.hostname;
    log.info("admin endpoints on http://{addr}/ (metrics, healthz, readyz)", {
      addr: `${host}:${a.port}`,
    });
    return admin;
  }

  /** The bound address. */
  get addr(): Deno.NetAddr {
    return this.#server.addr;
  }

  /** Stops listening and ends open requests. */
  async close(): Promise<void> {
    await this.#server.shutdown();
  }
}

function handle(req: Request, options: AdminOptions): Response {
  const path = new URL(req.url).pathname;
  if (req.method !== "GET" && req.method !== "HEAD") {
    return new Response("method not allowed\n", { status: 405, headers: { allow: "GET, HEAD" } });
  }
  // HEAD gets GET's response: the HTTP server sends its headers (content-length included)
  // and leaves out the body.
  const text = (body: string, status = 200, type = "text/plain; charset=utf-8") =>
    new Response(body, {
      status,
      headers: { "content-type": type, "cache-control": "no-store" },
    });
  switch (path) {
    case "/metrics":
      return text(options.metrics.render(), 200, METRICS_CONTENT_TYPE);
    case "/healthz":
      return text("ok\n");
    case "/readyz": {
      const r = options.readiness();
      return r.ready ? text("ready\n") : text(`not ready\n${r.reasons.join("\n")}\n`, 503);
    }
    case "/":
      return text("vmq-sidecar admin: /metrics /healthz /readyz\n");
    default:
      return text("not found: try /metrics, /healthz or /readyz\n", 404);
  }
}

/**
 * Registers the metrics the admin side adds: build info, start time, readiness, per output
 * whether its sink is connected, and the standard `process_*` metrics Prometheus client
 * libraries export (CPU time, resident memory, start time; not `process_open_fds` and
 * `process_max_fds`: Deno lets only `--allow-all` read `/proc`).
 */
export function registerAdminMetrics(
  m: Metrics,
  version: string,
  pipeline: Router,
  ready: () => Readiness,
): void {
  m.gauge("vmq_sidecar_build_info", "Always 1; the version is in the label.", ["version"])
    .set([version], 1);
  const started = Math.round(performance.timeOrigin) / 1000;
  m.gauge("vmq_sidecar_start_time_seconds", "When the process started, in Unix seconds.")
    .set([], started);
  const cpu = m.counter("process_cpu_seconds_total", "Total user and system CPU time, in seconds.");
  const rss = m.gauge("process_resident_memory_bytes", "Resident memory size, in bytes.");
  m.gauge("process_start_time_seconds", "Start time of the process, in Unix seconds.")
    .set([], started);
  const readyGauge = m.gauge(
    "vmq_sidecar_ready",
    "1 when /readyz answers 200 (listening, every output connected and within its limits).",
  );
  const connected = m.gauge(
    "vmq_sidecar_output_connected",
    "1 when the output's destination is reachable (always 1 for outputs that cannot tell).",
    ["output"],
  );
  m.onCollect(() => {
    const used = process.cpuUsage(); // getrusage(2): microseconds, no permission needed
    cpu.values.set("", (used.user + used.system) / 1e6);
    rss.values.set("", Deno.memoryUsage().rss);
    readyGauge.set([], ready().ready ? 1 : 0);
    connected.values.clear();
    for (const q of pipeline.queues) {
      connected.set([q.sink.name], q.sink.connected && !q.sink.connected() ? 0 : 1);
    }
  });
}

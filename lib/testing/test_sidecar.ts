/**
 * A sidecar for handler tests: {@linkcode startTestSidecar} starts a {@linkcode Sidecar} with
 * your handlers on free loopback ports and connects a {@linkcode PluginSender} to it.
 *
 * @module
 */
import { Sidecar, type Summary } from "../app/sidecar.ts";
import type { SidecarConfig } from "../app/config.ts";
import { defaultRunSettings } from "../app/settings.ts";
import type { Handler } from "../handlers/handler.ts";
import type { HandlerBufferFactory } from "../app/handler_outputs.ts";
import type { SidecarEvent } from "../schema/events.ts";
import { frameOf } from "../codec/event_encoder.ts";
import { PluginSender } from "./plugin_sender.ts";

/** Options of {@linkcode startTestSidecar}. */
export interface TestSidecarOptions {
  /** The handlers under test. */
  readonly handlers?: readonly Handler[];
  /** Built-in outputs too (e.g. an HTTP output to a test server; default none). */
  readonly outputs?: SidecarConfig["outputs"];
  /** Replaces any other setting of the configuration. */
  readonly config?: Partial<SidecarConfig>;
  /** The buffer of each handler (default in memory; e.g. a disk journal's). */
  readonly handlerBuffer?: HandlerBufferFactory;
  /** Connections of the sender (default 16: each event on a random one). */
  readonly connections?: number;
  /** Seed of the sender's random choice of connection (default 1). */
  readonly seed?: number;
  /** Random delay up to this many ms before each write (default 1: connections overtake). */
  readonly jitterMs?: number;
}

/** What {@linkcode startTestSidecar} returns; `await using` closes both. */
export interface TestSidecar extends AsyncDisposable {
  /** The running sidecar (admin endpoints on `sidecar.adminAddr`). */
  readonly sidecar: Sidecar;
  /** The plugin-like sender connected to it. */
  readonly sender: PluginSender;
  /** `http://127.0.0.1:PORT` of the admin endpoints (`/metrics`, `/readyz`). */
  readonly adminUrl: string;
  /** Encodes `events` as the plugin does and sends each on a random connection. */
  send(...events: SidecarEvent[]): Promise<void>;
  /** The sidecar's `/metrics` text. */
  metrics(): Promise<string>;
  /**
   * Closes the sender (everything written), then stops the sidecar gracefully: every event
   * sent has reached the handlers (or is counted unflushed) when this resolves.
   */
  close(): Promise<Summary>;
}

/**
 * Starts a sidecar with `options.handlers` on `127.0.0.1:0` (plugin and admin ports), log level
 * `error`, no built-in output unless given, and a connected plugin-like sender.
 *
 * @example
 * ```ts
 * import { defineHandler } from "../mod.ts";
 * import { startTestSidecar } from "../testing.ts";
 * const seen: string[] = [];
 * const t = await startTestSidecar({
 *   handlers: [defineHandler({ name: "seen", onClientWakeup: (e) => void seen.push(e.client_id) })],
 * });
 * await t.send({
 *   hook: "on_client_wakeup", timestamp: { seconds: 1700000000n, nanos: 0 },
 *   client_id: "c1", mountpoint: "", session_id: "s1",
 * });
 * const summary = await t.close(); // sender flushed, sidecar stopped: the handler ran
 * console.log(seen, summary.outputs.seen.sent); // [ "c1" ] 1
 * ```
 */
export async function startTestSidecar(options: TestSidecarOptions = {}): Promise<TestSidecar> {
  const config: SidecarConfig = {
    ...defaultRunSettings(),
    listen: { hostname: "127.0.0.1", port: 0 },
    admin: { hostname: "127.0.0.1", port: 0 },
    logLevel: "error",
    shutdownGraceMs: 10_000,
    outputs: [...(options.outputs ?? [])],
    ...options.config,
  };
  const sidecar = await Sidecar.start({
    config,
    handlers: options.handlers ?? [],
    handlerBuffer: options.handlerBuffer,
  });
  let sender: PluginSender;
  try {
    sender = await PluginSender.connect({
      hostname: "127.0.0.1",
      port: sidecar.addr.port,
      connections: options.connections ?? 16,
      seed: options.seed ?? 1,
      jitterMs: options.jitterMs ?? 1,
    });
  } catch (e) {
    await sidecar.stop();
    throw e;
  }
  const adminUrl = sidecar.adminAddr ? `http://127.0.0.1:${sidecar.adminAddr.port}` : "";
  let closing: Promise<Summary> | undefined;
  const close = () =>
    closing ??= sender.close().then(
      () => sidecar.stop(),
      async (e) => {
        await sidecar.stop();
        throw e;
      },
    );
  return {
    sidecar,
    sender,
    adminUrl,
    async send(...events) {
      for (const e of events) await sender.send(frameOf(e).subarray(4));
    },
    async metrics() {
      if (!adminUrl) throw new Error("startTestSidecar: the admin listener is off");
      const r = await fetch(`${adminUrl}/metrics`);
      return await r.text();
    },
    close,
    async [Symbol.asyncDispose]() {
      await close();
    },
  };
}

/**
 * Test kit for code that consumes vmq-sidecar events: build the exact bytes the
 * `vmq_events_sidecar` plugin sends from a typed event, to feed a sidecar, a frame reader or
 * {@linkcode decodeEvent} in your own tests.
 *
 * @example Round trip through the decoder
 * ```ts
 * import { decodeEvent } from "./mod.ts";
 * import { encodeEvent, frameOf } from "./testing.ts";
 *
 * const event = {
 *   hook: "on_publish" as const,
 *   timestamp: { seconds: 1700000000n, nanos: 0 },
 *   username: "u", client_id: "c1", mountpoint: "", qos: 1, topic: "devices/c1/telemetry",
 *   payload: new TextEncoder().encode("21.5"), retain: false,
 *   matched_acl: { name: "", pattern: "" }, session_id: "s1",
 * };
 * const value = encodeEvent(event); // the Any's value: the event message
 * const frame = frameOf(event); // length prefix + Any, as on the wire
 * const r = decodeEvent(frame.subarray(4));
 * console.log(value.length > 0, r.ok && r.event.hook); // true "on_publish"
 * ```
 *
 * @example Drive a running sidecar the way the broker does
 * ```ts ignore
 * import { frameOf, PluginSender } from "./testing.ts";
 * // A pool of connections, each frame on a random one (as the plugin spreads one client's events).
 * const sender = await PluginSender.connect({ port: 8890, connections: 100 });
 * await sender.sendFrames(frameOf({
 *   hook: "on_client_wakeup", timestamp: { seconds: 1700000000n, nanos: 0 },
 *   client_id: "c1", mountpoint: "", session_id: "s1",
 * }));
 * await sender.close();
 * ```
 *
 * @example Test a handler against a real sidecar
 * ```ts ignore
 * import { defineHandler } from "./mod.ts";
 * import { startTestSidecar } from "./testing.ts";
 * let n = 0;
 * await using t = await startTestSidecar({ handlers: [defineHandler({ name: "n", onPublish: () => void n++ })] });
 * // t.send(...events): encoded as the plugin does, each on a random connection; t.close() stops.
 * ```
 *
 * @module
 */
export { encodeEvent, frameOf } from "./codec/event_encoder.ts";
export { PluginSender, type PluginSenderOptions } from "./testing/plugin_sender.ts";
export {
  startTestSidecar,
  type TestSidecar,
  type TestSidecarOptions,
} from "./testing/test_sidecar.ts";

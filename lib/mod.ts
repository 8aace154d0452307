/**
 * vmq-sidecar: receive, decode and relay VerneMQ `vmq_events_sidecar` events.
 *
 * - {@linkcode readFrameBatches} / {@linkcode readFrames} frame a plugin connection;
 * - {@linkcode decodeEvent} turns a frame into a typed {@linkcode SidecarEvent};
 * - {@linkcode writeFrameJson} / {@linkcode eventToJson} produce the JSON form.
 *
 * @module
 */
export * from "./errors.ts";
export * from "./hooks.ts";
export * from "./frames.ts";
export * from "./envelope.ts";
export * from "./events.ts";
export * from "./decode.ts";
export * from "./byte_buffer.ts";
export { MALFORMED_VALUE, PAYLOAD_MODES, type PayloadMode, writeFrameJson } from "./json.ts";
export * from "./event_json.ts";

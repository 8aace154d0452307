/**
 * vmq-sidecar: receive, decode and relay VerneMQ `vmq_events_sidecar` events.
 *
 * - {@linkcode readFrameBatches} / {@linkcode readFrames} frame a plugin connection;
 * - {@linkcode decodeEvent} turns a frame into a typed {@linkcode SidecarEvent};
 * - {@linkcode writeFrameJson} / {@linkcode eventToJson} produce the JSON form;
 * - {@linkcode Pipeline} routes frames to {@linkcode Sink}s through bounded, acknowledged
 *   {@linkcode OutputQueue}s; {@linkcode SidecarServer} feeds it from TCP;
 *   {@linkcode Sidecar} wires everything from a {@linkcode SidecarConfig}.
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
export {
  MALFORMED_VALUE,
  PAYLOAD_MODES,
  type PayloadMode,
  writeEventJson,
  writeFrameJson,
  writeFrameJsonAt,
} from "./json.ts";
export * from "./event_json.ts";
export * from "./output.ts";
export * from "./queue.ts";
export * from "./pipeline.ts";
export * from "./metrics.ts";
export * from "./server.ts";
export * from "./topics.ts";
export {
  appendBatch,
  type FormatOptions,
  frameEncoder,
  OUTPUT_FORMATS,
  type OutputFormat,
} from "./format.ts";
export type { HostPort, OutputKind, OutputSpec, SidecarConfig } from "./config.ts";
export { configureLogging, LOG_FORMATS, LOG_LEVELS, type LogFormat, type LogLevel } from "./log.ts";
export {
  exitCodeOf,
  formatLost,
  formatSummary,
  type OutputTally,
  Sidecar,
  type Summary,
} from "./sidecar.ts";

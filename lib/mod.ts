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
export * from "./schema/hooks.ts";
export * from "./wire/frame_reader.ts";
export * from "./wire/envelope.ts";
export * from "./schema/events.ts";
export * from "./codec/event_decoder.ts";
export * from "./codec/byte_buffer.ts";
export {
  MALFORMED_VALUE,
  PAYLOAD_MODES,
  type PayloadMode,
  writeEventJson,
  writeFrameJson,
  writeFrameJsonAt,
} from "./codec/json.ts";
export * from "./codec/event_json.ts";
export * from "./outputs/contract.ts";
export * from "./pipeline/queue.ts";
export * from "./pipeline/router.ts";
export * from "./app/metrics.ts";
export * from "./ingest/server.ts";
export * from "./pipeline/topic_filter.ts";
export {
  appendBatch,
  type FormatOptions,
  frameEncoder,
  OUTPUT_FORMATS,
  type OutputFormat,
} from "./outputs/encoding.ts";
export type { HostPort, OutputKind, OutputSpec, SidecarConfig } from "./app/config.ts";
export {
  configureLogging,
  LOG_FORMATS,
  LOG_LEVELS,
  type LogFormat,
  type LogLevel,
} from "./app/log.ts";
export {
  exitCodeOf,
  formatLost,
  formatSummary,
  type OutputTally,
  Sidecar,
  type Summary,
} from "./app/sidecar.ts";

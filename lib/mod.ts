/**
 * vmq-sidecar: receive, decode and relay VerneMQ `vmq_events_sidecar` events.
 *
 * - {@linkcode readFrameBatches} / {@linkcode readFrames} / {@linkcode readFrameSlabs} frame a
 *   plugin connection; {@linkcode encodeFrame} builds a frame;
 * - {@linkcode decodeEvent} turns a frame into a typed {@linkcode SidecarEvent};
 * - {@linkcode writeFrameJson} / {@linkcode eventToJson} produce the sidecar's JSON form;
 * - {@linkcode Sink} is the contract of a destination ({@linkcode forEachFrame} iterates a batch);
 * - {@linkcode Sidecar} is the whole application from code: outputs, the plugin listener, the
 *   admin endpoints (`/metrics` with your own metrics, `/healthz`, `/readyz`), reload and a
 *   graceful stop, from a {@linkcode SidecarConfig}, which {@linkcode loadConfig} builds from
 *   flags, a config file or values, as the CLI does.
 *
 * - {@linkcode defineHandler} writes your own plugin: typed functions per hook, passed to
 *   `Sidecar.start({ handlers })`, each an output behind its own buffer, per-client order by
 *   default; {@linkcode Reject} dead-letters an event; {@linkcode EventTime} and
 *   {@linkcode SessionTracker} help get time and presence right in any arrival order.
 *
 * This is an explicit list: internals (numeric sentinels, queue and router machinery,
 * out-parameter structs) are not part of it.
 *
 * @module
 */

// Errors.
export { ConfigError, FrameTooLargeError, StartupError, TruncatedFrameError } from "./errors.ts";
export { DecodeError, type DecodeErrorKind } from "./codec/event_decoder.ts";

// Hooks and typed events.
export {
  type Hook,
  HOOKS,
  isHook,
  MESSAGE_NAMES,
  TYPE_URL_PREFIX,
  typeUrlOf,
} from "./schema/hooks.ts";
export type {
  DeliveryFields,
  DisconnectFields,
  EventBase,
  MatchedAcl,
  OnClientGoneEvent,
  OnClientOfflineEvent,
  OnClientWakeupEvent,
  OnDeliverEvent,
  OnDeliveryCompleteEvent,
  OnMessageDropEvent,
  OnOfflineMessageEvent,
  OnPublishEvent,
  OnRegisterEvent,
  OnRegisterFailedEvent,
  OnSessionExpiredEvent,
  OnSubscribeEvent,
  OnUnsubscribeEvent,
  ReasonName,
  RegistrationFailureReasonName,
  SessionFields,
  SidecarEvent,
  Timestamp,
  TopicInfo,
} from "./schema/events.ts";

// Frames of a connection.
export {
  DEFAULT_MAX_FRAME_BYTES,
  encodeFrame,
  type FrameSlab,
  type FrameSource,
  type ReadBudget,
  readFrameBatches,
  readFrames,
  readFrameSlabs,
  type ReadFramesOptions,
} from "./wire/frame_reader.ts";

// Decoding and JSON.
export { decodeEvent, type DecodeResult } from "./codec/event_decoder.ts";
export {
  type EventJsonOptions,
  eventToJson,
  type FrameJsonResult,
  PAYLOAD_MODES,
  type PayloadMode,
  writeFrameJson,
} from "./codec/json_writer.ts";
export { ByteBuffer } from "./codec/byte_buffer.ts";

// Destinations.
export {
  type DeadLetter,
  type DeadLetterWriter,
  DELIVERED,
  type Delivered,
  forEachFrame,
  type OutputBatch,
  type Rejected,
  type RetryLater,
  retryLater,
  type SendResult,
  type Sink,
} from "./outputs/contract.ts";
export { type FormatOptions, OUTPUT_FORMATS, type OutputFormat } from "./outputs/encoding.ts";
export { topicMatches } from "./pipeline/topic_filter.ts";

// The application.
export type { SidecarConfig } from "./app/config.ts";
export type { HostPort } from "./parse.ts";
export type { OutputKind, OutputSpec } from "./outputs/output_spec.ts";
export { loadConfig, type LoadConfigOptions } from "./app/config_file.ts";
export type { OnFull } from "./pipeline/delivery.ts";
export type { FsyncPolicy } from "./pipeline/disk_journal.ts";
export {
  formatSummary,
  type OutputTally,
  Sidecar,
  type SidecarOptions,
  type Summary,
} from "./app/sidecar.ts";
export type { Readiness } from "./app/admin.ts";
export type { EffectiveConfig, ResolvedOutput } from "./app/config_file.ts";
export {
  defaultRunSettings,
  type OutputDefaults,
  type RunSettings,
  type Settings,
} from "./app/settings.ts";
export type { SocketDiscards } from "./ingest/server.ts";
export { Counter, Gauge, Histogram, type Labels, Metrics } from "./app/metrics.ts";
export {
  configureLogging,
  LOG_FORMATS,
  LOG_LEVELS,
  type LogFormat,
  type LogLevel,
} from "./app/log.ts";

// Your own plugin: handlers.
export {
  defineHandler,
  type EventOf,
  type Handler,
  type HandlerContext,
  type HandlerFn,
  type HandlerSpec,
  type HookHandlers,
  Reject,
  type RetryOptions,
} from "./handlers/handler.ts";
export type { HandlerBufferFactory } from "./app/handler_outputs.ts";
export type { Buffer, BufferBatch, Cursor, ReadLimits } from "./pipeline/buffer.ts";
export { EventTime } from "./handlers/timestamps.ts";
export {
  type OnlineSession,
  SessionTracker,
  type SessionTrackerOptions,
} from "./handlers/sessions.ts";

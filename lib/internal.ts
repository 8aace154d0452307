/**
 * Internal entry for this repository's scripts, benches and tests.
 *
 * **Not a stable API**: anything here may change or disappear in any release without notice.
 * Library users import `lib/mod.ts` (the package's `"."` export) instead. Every symbol is
 * re-exported by name so this list shows exactly what the repository's own tools reach into.
 *
 * @module
 */

// Public API (lib/mod.ts), by name.
export {
  ByteBuffer,
  ConfigError,
  configureLogging,
  Counter,
  type DeadLetter,
  type DeadLetterWriter,
  DecodeError,
  type DecodeErrorKind,
  decodeEvent,
  type DecodeResult,
  DEFAULT_MAX_FRAME_BYTES,
  DELIVERED,
  type Delivered,
  type DeliveryFields,
  type DisconnectFields,
  encodeFrame,
  type EventBase,
  type EventJsonOptions,
  eventToJson,
  forEachFrame,
  type FormatOptions,
  formatSummary,
  type FrameSlab,
  type FrameSource,
  FrameTooLargeError,
  Gauge,
  Histogram,
  type Hook,
  HOOKS,
  type HostPort,
  isHook,
  type Labels,
  LOG_FORMATS,
  LOG_LEVELS,
  type LogFormat,
  type LogLevel,
  type MatchedAcl,
  MESSAGE_NAMES,
  Metrics,
  type OnClientGoneEvent,
  type OnClientOfflineEvent,
  type OnClientWakeupEvent,
  type OnDeliverEvent,
  type OnDeliveryCompleteEvent,
  type OnFull,
  type OnMessageDropEvent,
  type OnOfflineMessageEvent,
  type OnPublishEvent,
  type OnRegisterEvent,
  type OnRegisterFailedEvent,
  type OnSessionExpiredEvent,
  type OnSubscribeEvent,
  type OnUnsubscribeEvent,
  OUTPUT_FORMATS,
  type OutputBatch,
  type OutputFormat,
  type OutputKind,
  type OutputSpec,
  type OutputTally,
  PAYLOAD_MODES,
  type PayloadMode,
  readFrameBatches,
  readFrames,
  readFrameSlabs,
  type ReadFramesOptions,
  type ReasonName,
  type RegistrationFailureReasonName,
  type Rejected,
  type RetryLater,
  retryLater,
  type SendResult,
  type SessionFields,
  Sidecar,
  type SidecarConfig,
  type SidecarEvent,
  type Sink,
  type SocketDiscards,
  StartupError,
  type Summary,
  type Timestamp,
  type TopicInfo,
  topicMatches,
  TruncatedFrameError,
  TYPE_URL_PREFIX,
  typeUrlOf,
  writeFrameJson,
} from "./mod.ts";

// Internals: numeric sentinels, out-parameter structs, queue and router machinery.
export {
  type EnvelopeRanges,
  MALFORMED_ENVELOPE,
  parseEnvelope,
  parseEnvelopeAt,
  UNKNOWN_TYPE,
} from "./wire/envelope.ts";
export { hookIndexOfTypeUrl } from "./schema/hooks.ts";
export { FRAME_HEADER, readLength, writeLength } from "./wire/length_prefix.ts";
export { SCHEMA_JSON } from "./schema/_generated.ts";
export {
  MALFORMED_VALUE,
  writeEventJson,
  writeFrameJsonAt,
  writeFrameJsonCode,
} from "./codec/json_writer.ts";
export { writeBase64 } from "./codec/_base64.ts";
export { writeTimestamp } from "./codec/_timestamp.ts";
export {
  DEFAULT_DELIVERY_OPTIONS,
  Delivery,
  type DeliveryFactory,
  type DeliveryFront,
  type DeliveryOptions,
  type OutputCounters,
} from "./pipeline/delivery.ts";
export { deliveryOf, LocalDelivery } from "./outputs/local/local_delivery.ts";
export type { EncodingSink, SyncSink } from "./outputs/contract.ts";
export type { FrameEncoder } from "./outputs/encoding.ts";
export type { Buffer, BufferBatch, Cursor, ReadLimits } from "./pipeline/buffer.ts";
export { MemoryBuffer, type MemoryBufferOptions } from "./pipeline/memory_buffer.ts";
export { ByteBufferPool } from "./codec/byte_buffer_pool.ts";
export { JournalDelivery, JournalPort } from "./pipeline/journal_delivery.ts";
export {
  DISPATCH_BACKPRESSURE,
  DISPATCH_MALFORMED,
  DISPATCH_OK,
  type OutputConfig,
  Router,
  type RouterPort,
} from "./pipeline/router.ts";
export type { OutputPort } from "./pipeline/output_port.ts";
export { Backoff } from "./pipeline/backoff.ts";
export { topicFilter } from "./pipeline/topic_filter.ts";
export {
  crc32c,
  DiskJournal,
  type DiskJournalOptions,
  type JournalDamage,
  JournalDirError,
} from "./pipeline/disk_journal.ts";
export { appendBatch, frameEncoder } from "./outputs/encoding.ts";
export { DeadLetterFile } from "./outputs/dead_letter.ts";
export { SHA256_IV, SHA256_K, sha256Hex } from "./outputs/_sha256.ts";
export { bodyId, eventId } from "./outputs/options.ts";
export { IngestServer } from "./ingest/server.ts";
export {
  pooledSize,
  REGION_BYTES,
  REGION_IDLE_MS,
  regionBytes,
  releaseBuffer,
  takeBuffer,
} from "./_regions.ts";
export { exitCodeOf, formatLost } from "./app/sidecar.ts";
export { effectiveDocument, maskUrl, resolveConfig } from "./app/config_file.ts";
export {
  CONFIG_FLAG,
  defaultText,
  FILE_KEYS,
  keepRestartOnly,
  OUTPUTS_SETTING,
  RESTART_ONLY,
  restartOnlyChanges,
  type Setting,
  SETTING_ROWS,
  SETTINGS,
} from "./app/settings.ts";
export { parseCommandLine, USAGE } from "./app/flags.ts";
export { maskOutputUrl, parseOutput } from "./app/output_url.ts";
export {
  factoryOf,
  kindOf,
  OUTPUT_KINDS,
  type OutputFactory,
  outputKind,
  type OutputKindDescriptor,
} from "./outputs/registry.ts";
export {
  checkOptions,
  normalizeOptions,
  type OptionSchema,
  type OptionSpec,
  resolveSecrets,
  showOptions,
} from "./outputs/options.ts";
export { preflight } from "./app/preflight.ts";
export { vectorFrames } from "./app/commands/send.ts";
export {
  type ChunkSource,
  countFileFrames,
  countFrames,
  FileSource,
  frameLen,
  type LoadOptions,
  type LoadResult,
  MemorySource,
  nowMs,
  runLoad,
} from "./app/commands/_load.ts";

// Issue 14 phase 1 (handlers track): standalone parts of the handler API.
export { EventTime } from "./handlers/timestamps.ts";
export { PluginSender, type PluginSenderOptions } from "./testing/plugin_sender.ts";
export { type ReorderClock, type ReorderOptions, ReorderStage } from "./handlers/reorder.ts";
export { orderedDeliveries, OrderedFront } from "./handlers/ordered_front.ts";
export {
  type OnlineSession,
  SessionTracker,
  type SessionTrackerOptions,
} from "./handlers/sessions.ts";

// Issue 13 phase 1 (relay track): standalone protocol writers the network sinks will switch to.
export { NameTemplate } from "./outputs/name_template.ts";
export {
  RespError,
  RespProtocolError,
  RespReader,
  type RespValue,
  writeCommand,
  XaddEncoder,
} from "./outputs/redis/_resp.ts";
export {
  EXEC,
  MULTI,
  type PipelineResult,
  RedisPipelineConnection,
  RedisPipelineError,
  type RedisPipelineOptions,
  type SendOptions,
} from "./outputs/redis/_pipeline_connection.ts";
export {
  ACKED,
  AckTracker,
  FAILED,
  HpubEncoder,
  NatsOpReader,
  NatsProtocolError,
  PENDING,
  TOO_LARGE,
} from "./outputs/nats/_hpub.ts";
export {
  eventIdBackend,
  eventIdFast,
  EventIds,
  eventIdWasmBytes,
  writeEventId,
} from "./outputs/_event_id.ts";
// Reached by this repository's tests, benches and scripts (they import lib/ only through the
// entries: tests/layering_test.ts).
export {
  eventTimeMs,
  forEachTopic,
  parseEvent,
  readTimestamp,
  stringField,
} from "./codec/slots.ts";
export { HOOK_TABLES, Kind } from "./schema/tables.ts";
export { netFlagValue, permissionHint } from "./_permissions.ts";
export { formatHeld, LogLimiter } from "./_log_limiter.ts";
export { LOOPBACK_PEERS, parseCidr, peerAllowed } from "./ingest/peers.ts";
export { BudgetWaitersFullError, MemoryBudget, type MemoryBudgetOptions } from "./memory_budget.ts";

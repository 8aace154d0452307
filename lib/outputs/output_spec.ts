/**
 * {@linkcode OutputSpec}: one output as configured (an `--out` URL or an `[[outputs]]` table),
 * validated by app/ and handed to the output registry. It lives with the outputs so that
 * nothing outside app/ imports app/.
 *
 * @module
 */
import type { OutputFormat } from "./encoding.ts";
import type { Hook } from "../schema/hooks.ts";
import type { PayloadMode } from "../codec/json_writer.ts";
import type { OnFull } from "../pipeline/delivery.ts";

/** Output kinds, by URL scheme. */
export type OutputKind = "stdout" | "file" | "nats" | "redis" | "http";

/** One output, as configured. */
export interface OutputSpec {
  /** What kind of destination. */
  kind: OutputKind;
  /** The target without options: `stdout`, a file path, or a server URL. */
  target: string;
  /** Event encoding. */
  format: OutputFormat;
  /** Payload mode of the JSON form. */
  payload: PayloadMode;
  /** Hooks this output receives; `null` = all. */
  hooks: Hook[] | null;
  /** MQTT topic filters (`+`/`#`) on topic-bearing events; `null` = no topic filter. */
  topics: string[] | null;
  /** Bytes its queue may hold. */
  queueBytes: number;
  /** What a full queue does. */
  onFull: OnFull;
  /**
   * Kind-specific options (e.g. `rotate_bytes`), parsed by the kind's option schema: every
   * option of the kind, with its default when not given.
   */
  options: Readonly<Record<string, unknown>>;
  /** Options whose value came from an environment variable (`password_env`): option → name. */
  fromEnv?: Readonly<Record<string, string>>;
}

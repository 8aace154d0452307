/**
 * The sidecar's configuration: plain typed objects, validated once at the edge (flags or
 * config file) by the settings table and the shared value parsers of lib/parse.ts (plus the
 * peer list parser here), which throw {@linkcode ConfigError} naming the key.
 *
 * @module
 */
import { ConfigError } from "../errors.ts";
import type { HostPort } from "../parse.ts";
import type { OutputSpec } from "../outputs/output_spec.ts";
import type { FsyncPolicy } from "../pipeline/disk_journal.ts";
import { parseCidr } from "../ingest/peers.ts";
import { LOG_FORMATS, LOG_LEVELS, type LogFormat, type LogLevel } from "./log.ts";
import { DEFAULTS } from "./settings.ts";

/**
 * The whole configuration: one field per `live` or `restart` row of the settings table
 * (`SETTINGS` in app/settings.ts, which checks at compile time that these fields are exactly
 * its rows), plus the outputs. Build one with `loadConfig` to get every default.
 */
export interface SidecarConfig {
  /** Where the plugin connects. */
  listen: HostPort;
  /** Admin HTTP listener (`/metrics`, `/healthz`, `/readyz`), or `null` when disabled. */
  admin: HostPort | null;
  /** Largest accepted frame body. */
  maxFrameBytes: number;
  /**
   * Most bytes the read buffers of partially received large frames may hold together; a
   * connection whose frame does not fit is not read until it does.
   */
  maxBufferedBytes: number;
  /** Most concurrent plugin connections. */
  maxConnections: number;
  /**
   * A connection inside a frame whose frame has not completed within this many ms (counted
   * from the frame's first byte, or from the last complete frame) is closed; 0 = off.
   */
  stallTimeoutMs: number;
  /** A connection between frames that sent nothing for this many ms is closed; 0 = off. */
  idleTimeoutMs: number;
  /** CIDR ranges plugin connections may come from (canonical text); others are refused. */
  allowPeers: string[];
  /**
   * Diagnostics level, applied by `Sidecar.start` (unless its `configureLogging` option is false)
   * and by a reload.
   */
  logLevel: LogLevel;
  /** Diagnostics format (`text` or `json` lines). */
  logFormat: LogFormat;
  /** How long shutdown may read connections and flush outputs, in ms. */
  shutdownGraceMs: number;
  /**
   * Where the disk journal of `buffer=disk` network outputs lives (`DIR/journal`); default
   * `/var/lib/vmq-sidecar`.
   */
  dataDir?: string;
  /** When the journal is made durable (default `interval`). */
  fsync?: FsyncPolicy;
  /** The `fsync=interval` period in ms (default 500). */
  fsyncMs?: number;
  /** Outputs (at least one). */
  outputs: OutputSpec[];
}

export { DEFAULTS };

/** Parses a comma-separated CIDR list (`10.0.0.0/8,fd00::/8`) strictly; returns canonical text. */
export function parseAllowPeers(key: string, value: string | string[]): string[] {
  const items = (Array.isArray(value) ? value : value.split(",")).map((s) => String(s).trim());
  if (items.length === 0 || items.some((s) => s === "")) {
    throw new ConfigError(
      key,
      `expected comma-separated CIDR ranges, e.g. 127.0.0.0/8,::1/128,10.0.0.0/8, got ${
        JSON.stringify(String(value))
      }`,
    );
  }
  return [
    ...new Set(items.map((s) => {
      try {
        return parseCidr(s).text;
      } catch (e) {
        throw new ConfigError(key, (e as Error).message);
      }
    })),
  ];
}

/** Options every output accepts (URL query parameters or config keys). */
export const COMMON_OUTPUT_OPTIONS = [
  "format",
  "payload",
  "hooks",
  "topics",
  "queue_bytes",
  "on_full",
];

export { LOG_FORMATS, LOG_LEVELS };

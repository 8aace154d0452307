/**
 * Typed errors of the sidecar library. Each carries the facts an operator needs to act on it.
 *
 * @module
 */

/** A frame's length field exceeds the configured maximum; the stream cannot be trusted further. */
export class FrameTooLargeError extends Error {
  /** The length the frame header announced, in bytes. */
  readonly length: number;
  /** The configured maximum frame size, in bytes. */
  readonly limit: number;
  /** The connection the frame came from (e.g. `127.0.0.1:53422`), or `""` when unknown. */
  readonly peer: string;
  /** Creates the error for `peer` announcing `length` bytes against `limit`. */
  constructor(peer: string, length: number, limit: number) {
    super(
      `frame of ${length} bytes from ${peer || "stream"} exceeds the maximum of ${limit} bytes` +
        ` (raise --max-frame-bytes if the broker really sends such payloads)`,
    );
    this.name = "FrameTooLargeError";
    this.length = length;
    this.limit = limit;
    this.peer = peer;
  }
}

/** The stream ended inside a frame (in its 4-byte header or its body). */
export class TruncatedFrameError extends Error {
  /** Bytes that were still expected when the stream ended. */
  readonly missing: number;
  /** Bytes of the incomplete frame (header included) that had arrived. */
  readonly received: number;
  /** The connection the frame came from, or `""` when unknown. */
  readonly peer: string;
  /** Creates the error for `peer`, `received` bytes in and `missing` bytes short. */
  constructor(peer: string, received: number, missing: number) {
    super(
      `stream from ${peer || "stream"} ended inside a frame: ${received} bytes received,` +
        ` ${missing} bytes missing`,
    );
    this.name = "TruncatedFrameError";
    this.missing = missing;
    this.received = received;
    this.peer = peer;
  }
}

/** Invalid configuration (flag, config key or option value). */
export class ConfigError extends Error {
  /** The flag or key at fault, e.g. `--listen` or `outputs[1].url`. */
  readonly key: string;
  /** Creates the error for `key` with a message saying what is accepted. */
  constructor(key: string, message: string) {
    super(`${key}: ${message}`);
    this.name = "ConfigError";
    this.key = key;
  }
}

/** The sidecar could not start (port in use, output unreachable, missing permission…). */
export class StartupError extends Error {
  /** Creates the error; `message` says what to do. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "StartupError";
  }
}

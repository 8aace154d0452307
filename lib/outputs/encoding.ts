/**
 * Output formats shared by the sinks: `json` (one JSON object per event) and `protobuf` (the
 * frames exactly as received, length prefixes included — a stream `vmq-sidecar decode` reads).
 *
 * @module
 */
import { getLogger } from "../_deps/logtape.ts";
import type { ByteBuffer } from "../codec/byte_buffer.ts";
import {
  MALFORMED_VALUE,
  type PayloadMode,
  writeEventJson,
  writeFrameJsonAt,
} from "../codec/json_writer.ts";
import type { OutputBatch } from "./contract.ts";
import { readLength, writeLength } from "../wire/length_prefix.ts";

/**
 * Encodes events for an {@linkcode EncodingSink} when they are queued, straight from the read
 * buffer: its delivery then holds (and counts in `maxBytes`) the encoded bytes.
 */
export interface FrameEncoder {
  /**
   * Appends the output form of the frame `buf[start, end)` (the `Any` bytes) to `out`; `hook`
   * and `buf[valueStart, valueEnd)` are its parsed envelope (`hook` < 0: not parsed yet).
   * Returns false when the event is skipped, nothing written (the encoder counts it).
   */
  encode(
    out: ByteBuffer,
    buf: Uint8Array,
    start: number,
    end: number,
    hook: number,
    valueStart: number,
    valueEnd: number,
  ): boolean;
  /** Room to reserve for the encoding of a frame of `frameBytes` (may grow when short). */
  sizeHint(frameBytes: number): number;
  /**
   * True when the encoding is the frame as received (length prefix and `Any`): consecutive
   * frames are then taken as they are, in one piece (`pushRun`).
   */
  readonly raw?: boolean;
}

/** How an output encodes events. */
export type OutputFormat = "json" | "protobuf";

/** The output formats, for validation. */
export const OUTPUT_FORMATS: readonly OutputFormat[] = ["json", "protobuf"];

/** Per-output encoding options. */
export interface FormatOptions {
  /** `json` (default) or `protobuf`. */
  format: OutputFormat;
  /** Payload mode of the JSON form. */
  payload: PayloadMode;
}

const log = getLogger(["vmq_sidecar", "output"]);
let undecodableLogged = 0;

/**
 * Logs (capped) an event the JSON writer could not decode. Counting is the caller's: the
 * encoder returns false, and the output's queue counts the event as undecodable.
 */
export function reportUndecodable(output: string, frame: Uint8Array): void {
  if (undecodableLogged++ < 20) {
    log.error("output {output}: skipping undecodable event ({bytes} bytes){more}", {
      output,
      bytes: frame.length,
      more: undecodableLogged === 20 ? "; further ones are only counted" : "",
    });
  }
}

/**
 * Appends every event of `batch` to `out`: JSON lines (`\n`-terminated) or the raw frames.
 * `flush` is called whenever `out` holds `flushBytes` or more, so memory stays bounded.
 * Returns how many events were skipped because they did not decode (logged for `output`).
 */
export function appendBatch(
  out: ByteBuffer,
  batch: OutputBatch,
  options: FormatOptions,
  output: string,
  flushBytes: number,
  flush: () => void,
): number {
  if (options.format === "protobuf") {
    out.write(batch.bytes);
    if (out.pos >= flushBytes) flush();
    return 0;
  }
  const payload = options.payload, b = batch.bytes;
  let p = 0, skipped = 0;
  for (let i = 0; i < batch.count; i++) {
    const len = readLength(b, p);
    const start = p + 4, end = start + len;
    const r = writeFrameJsonAt(out, b, start, end, payload);
    if (r >= 0) out.byte(0x0a);
    else {
      skipped++;
      if (r === MALFORMED_VALUE) reportUndecodable(output, b.subarray(start, end));
    }
    if (out.pos >= flushBytes) flush();
    p = end;
  }
  return skipped;
}

/**
 * The {@linkcode FrameEncoder} of a format, for sinks that write bytes (files, stdout): JSON
 * lines (undecodable events skipped — `encode` returns false, the queue counts them — and
 * logged for `output`), or the frames as received.
 */
export function frameEncoder(options: FormatOptions, output: string): FrameEncoder {
  if (options.format === "protobuf") {
    return {
      raw: true,
      sizeHint: (n) => n + 4,
      encode(out, buf, start, end) {
        const n = end - start;
        out.ensure(n + 4);
        const b = out.buf;
        let p = out.pos;
        writeLength(b, p, n), p += 4;
        if (n > 64) b.set(buf.subarray(start, end), p);
        else for (let i = 0; i < n; i++) b[p + i] = buf[start + i];
        out.pos = p + n;
        return true;
      },
    };
  }
  const payload = options.payload;
  return {
    // Keys and the timestamp take ~300 bytes; base64 grows a payload by 4/3; a short string
    // reserves 6 bytes per byte for escapes while it is written.
    sizeHint: (n) => (n <= 8192 ? 6 * n : 2 * n) + 1024,
    encode(out, buf, start, end, hook, valueStart, valueEnd) {
      const r = hook >= 0
        ? writeEventJson(out, buf, hook, valueStart, valueEnd, payload)
        : writeFrameJsonAt(out, buf, start, end, payload);
      if (r >= 0) {
        out.byte(0x0a);
        return true;
      }
      if (r === MALFORMED_VALUE) reportUndecodable(output, buf.subarray(start, end));
      return false;
    },
  };
}

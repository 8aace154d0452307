/**
 * Output formats shared by the sinks: `json` (one JSON object per event) and `protobuf` (the
 * frames exactly as received, length prefixes included — a stream `vmq-sidecar decode` reads).
 *
 * @module
 */
import { getLogger } from "@logtape/logtape";
import type { ByteBuffer } from "./byte_buffer.ts";
import { MALFORMED_VALUE, type PayloadMode, writeFrameJson } from "./json.ts";
import { forEachFrame, type FrameBatch } from "./output.ts";

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

/** Events a JSON output skipped because their value did not decode, by output name. */
export const undecodableEvents: Map<string, number> = new Map();

const log = getLogger(["vmq_sidecar", "output"]);
let undecodableLogged = 0;

/** Counts and logs (capped) an event the JSON writer could not decode. */
export function reportUndecodable(output: string, frame: Uint8Array): void {
  undecodableEvents.set(output, (undecodableEvents.get(output) ?? 0) + 1);
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
 */
export function appendBatch(
  out: ByteBuffer,
  batch: FrameBatch,
  options: FormatOptions,
  output: string,
  flushBytes: number,
  flush: () => void,
): void {
  if (options.format === "protobuf") {
    out.write(batch.bytes);
    if (out.pos >= flushBytes) flush();
    return;
  }
  const payload = options.payload;
  forEachFrame(batch, (frame) => {
    const r = writeFrameJson(out, frame, payload);
    if (r >= 0) out.byte(0x0a);
    else if (r === MALFORMED_VALUE) reportUndecodable(output, frame);
    if (out.pos >= flushBytes) flush();
  });
}

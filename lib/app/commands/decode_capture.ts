/**
 * `vmq-sidecar decode`: reads a raw captured stream (what the plugin writes on one connection:
 * `[u32 length][Any]...`, e.g. a TCP payload export or the test vectors concatenated) from a
 * file or stdin and prints each event as a JSON line — the "what is the broker sending?" tool.
 *
 * Bad bytes are reported on stderr with their byte offset (of the frame's length prefix).
 * `--on-error stop` (default) stops there. `--on-error skip` reports and resynchronizes: it
 * looks for the next offset where a plausible frame starts — a length from 1 to
 * `--max-frame-bytes` followed by a `google.protobuf.Any` of a known eventssidecar.v1 type
 * whose event decodes — trying first the offset right after the bad frame (its length prefix
 * may be intact), then every byte after the bad frame's start; when none is found before the
 * end of the stream, framing is lost and it stops. Empty frames are counted, not printed;
 * frames of an unknown type are reported and skipped in both modes (not an error).
 * Exit status: 0 when every frame decoded, 1 when bad bytes were found (or the input cannot be
 * read), 2 for bad flags.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { ByteBuffer } from "../../codec/byte_buffer.ts";
import { DEFAULTS, parseChoice, parseSize } from "../config.ts";
import { MALFORMED_ENVELOPE, UNKNOWN_TYPE } from "../../wire/envelope.ts";
import { ConfigError, FrameTooLargeError, TruncatedFrameError } from "../../errors.ts";
import { readFrameBatches } from "../../wire/frame_reader.ts";
import {
  MALFORMED_VALUE,
  PAYLOAD_MODES,
  type PayloadMode,
  writeFrameJson,
} from "../../codec/json.ts";
import { permissionHint } from "../../_permissions.ts";

/** Usage of the decode subcommand. */
export const DECODE_USAGE = `Usage: vmq-sidecar decode [FILE|-] [flags]

Reads a raw stream of frames as the plugin writes them (4-byte big-endian length + protobuf
Any, repeated) from FILE, or standard input when FILE is - or absent, and prints one JSON line
per event on standard output. Problems go to standard error with their byte offset.

  --on-error stop|skip      stop at the first bad frame (default), or report it and resume
                            at the next plausible frame start (stops when none is found)
  --payload base64|utf8|omit  payload in JSON (default base64)
  --max-frame-bytes SIZE    a larger length prefix is bad bytes (default 64MiB)
  --offsets                 append "offset": the byte offset of each event's frame
  -h, --help                this text

Exit status: 0 every frame decoded, 1 bad bytes found or input unreadable, 2 bad flags.
`;

/** Options of {@linkcode decodeStream}. */
export interface DecodeOptions {
  /** What to do at bad bytes. */
  onError: "stop" | "skip";
  /** Payload mode of the JSON lines. */
  payload: PayloadMode;
  /** Largest plausible frame body. */
  maxFrameBytes: number;
  /** Append the frame's byte offset to each line. */
  offsets: boolean;
}

/** What {@linkcode decodeStream} found. */
export interface DecodeReport {
  /** Events printed. */
  events: number;
  /** Empty frames (events the plugin could not encode). */
  empty: number;
  /** Valid frames of an unknown type (skipped). */
  unknownType: number;
  /** Bad-bytes problems reported. */
  errors: number;
  /** Bytes skipped while resynchronizing. */
  skippedBytes: number;
  /** Bytes read. */
  bytes: number;
}

type Reader = { read(p: Uint8Array): Promise<number | null> };

/**
 * Bytes of the input from a retained offset on, so that a resynchronization can look again at
 * bytes the framer already read. Holds at most one frame plus one read beyond what is retained.
 */
class Tape {
  #raw: Reader;
  #buf = new Uint8Array(64 * 1024);
  #base = 0; // absolute offset of #buf[0]
  #len = 0; // valid bytes in #buf
  #pos = 0; // absolute offset of the next byte read() hands out
  #eof = false;

  constructor(raw: Reader) {
    this.#raw = raw;
  }

  /** Absolute end of what has been read from the input. */
  get end(): number {
    return this.#base + this.#len;
  }

  /** Reads for the framer: retained bytes after a rewind first, then new input. */
  async read(p: Uint8Array): Promise<number | null> {
    if (this.#pos >= this.end && !(await this.#more())) return null;
    const from = this.#pos - this.#base;
    const n = Math.min(p.length, this.#len - from);
    p.set(this.#buf.subarray(from, from + n));
    this.#pos += n;
    return n;
  }

  /** Drops bytes before absolute offset `off` (never needed again). */
  release(off: number): void {
    const cut = Math.min(off, this.end) - this.#base;
    if (cut <= 0 || cut < this.#buf.length / 2) return;
    this.#buf.copyWithin(0, cut, this.#len);
    this.#base += cut;
    this.#len -= cut;
    if (this.#pos < this.#base) this.#pos = this.#base; // a rewind follows
  }

  /** Makes the next read start at absolute offset `off` (retained bytes). */
  rewind(off: number): void {
    this.#pos = off;
  }

  /** Ensures bytes up to absolute offset `to` are held; false when the input ends first. */
  async has(to: number): Promise<boolean> {
    while (this.end < to) if (!(await this.#more())) return false;
    return true;
  }

  /** The held bytes `[from, to)` (absolute; call {@linkcode Tape.has} first). */
  view(from: number, to: number): Uint8Array {
    return this.#buf.subarray(from - this.#base, to - this.#base);
  }

  async #more(): Promise<boolean> {
    if (this.#eof) return false;
    if (this.#buf.length - this.#len < 16 * 1024) {
      const next = new Uint8Array(Math.max(this.#buf.length * 2, 64 * 1024));
      next.set(this.#buf.subarray(0, this.#len));
      this.#buf = next;
    }
    const n = await this.#raw.read(this.#buf.subarray(this.#len));
    if (n === null) {
      this.#eof = true;
      return false;
    }
    this.#len += n;
    return true;
  }
}

const TYPE_URL_PREFIX = new TextEncoder().encode("type.googleapis.com/eventssidecar.v1.");

/**
 * Decodes the stream from `input`, writing JSON lines with `write` and problems with
 * `report` (one line each, no newline).
 */
export async function decodeStream(
  input: Reader,
  options: DecodeOptions,
  write: (bytes: Uint8Array) => Promise<void>,
  report: (line: string) => void,
): Promise<DecodeReport> {
  const r: DecodeReport = {
    events: 0,
    empty: 0,
    unknownType: 0,
    errors: 0,
    skippedBytes: 0,
    bytes: 0,
  };
  const tape = new Tape(input);
  const out = new ByteBuffer(256 * 1024);
  const scratch = new ByteBuffer(1024);
  const flush = async () => {
    if (out.pos > 0) await write(out.bytes().slice());
    out.reset();
  };
  const max = options.maxFrameBytes;

  const HEAD = 4 + 3 + TYPE_URL_PREFIX.length;
  // Cheap check of held bytes at p: a length in range, then field 1 (type_url) leading with
  // the eventssidecar.v1 prefix, as the plugin writes it.
  const headLooksRight = (p: number): boolean => {
    const b = tape.view(p, p + HEAD);
    const len = ((b[0] << 24) | (b[1] << 16) | (b[2] << 8) | b[3]) >>> 0;
    if (len < HEAD || len > max || b[4] !== 0x0a) return false;
    const at = b[5] < 0x80 ? 6 : 7;
    for (let i = 0; i < TYPE_URL_PREFIX.length; i++) {
      if (b[at + i] !== TYPE_URL_PREFIX[i]) return false;
    }
    return true;
  };
  // Whether a plausible frame starts at absolute offset p (see the module doc).
  const plausibleAt = async (p: number): Promise<boolean> => {
    if (!(await tape.has(p + HEAD)) || !headLooksRight(p)) return false;
    const h = tape.view(p, p + 4);
    const len = ((h[0] << 24) | (h[1] << 16) | (h[2] << 8) | h[3]) >>> 0;
    if (!(await tape.has(p + 4 + len))) return false;
    scratch.reset();
    return writeFrameJson(scratch, tape.view(p + 4, p + 4 + len), options.payload) >= 0;
  };

  // After a bad frame at `bad` (ending at `next` when its length is trusted): where to go on.
  const resync = async (bad: number, next: number | undefined): Promise<number | null> => {
    if (next !== undefined) {
      if (!(await tape.has(next + 1)) && tape.end === next) return next; // it was the last frame
      if (await plausibleAt(next)) return next;
    }
    for (let p = bad + 1;; p++) {
      if (p + HEAD > tape.end && !(await tape.has(p + HEAD))) {
        if (!(await tape.has(p + 4))) return null;
        continue; // too short to be a frame of ours; keep looking until the end
      }
      if (headLooksRight(p) && await plausibleAt(p)) return p;
      if ((p & 0xffff) === 0) tape.release(p);
    }
  };

  let offset = 0; // absolute offset of the next frame's length prefix
  for (;;) {
    let problem: { at: number; what: string; next?: number } | undefined;
    try {
      for await (const batch of readFrameBatches(tape, { maxFrameBytes: max })) {
        tape.release(offset);
        for (const frame of batch) {
          const at = offset;
          offset += 4 + frame.length;
          if (frame.length === 0) {
            r.empty++;
            continue;
          }
          const begin = out.pos;
          const hook = writeFrameJson(out, frame, options.payload);
          if (hook >= 0) {
            if (options.offsets) {
              out.pos--; // reopen the object
              out.writeAscii(`,"offset":${at}}`);
            }
            out.byte(0x0a);
            r.events++;
            if (out.pos >= 256 * 1024) await flush();
            continue;
          }
          out.pos = begin;
          if (hook === UNKNOWN_TYPE) {
            r.unknownType++;
            report(
              `offset ${at}: frame of ${frame.length} bytes has an unknown type_url ${
                JSON.stringify(typeUrlOf(frame))
              }; skipped`,
            );
            continue;
          }
          const what = hook === MALFORMED_ENVELOPE
            ? `frame of ${frame.length} bytes is not a protobuf Any`
            : hook === MALFORMED_VALUE
            ? `frame of ${frame.length} bytes: its ${
              JSON.stringify(typeUrlOf(frame))
            } event does not decode`
            : `frame of ${frame.length} bytes cannot be decoded`;
          problem = { at, what, next: offset };
          break;
        }
        if (problem) break;
      }
    } catch (e) {
      if (e instanceof FrameTooLargeError) {
        problem = {
          at: offset,
          what: `length prefix says ${e.length} bytes, over --max-frame-bytes ${max}`,
        };
      } else if (e instanceof TruncatedFrameError) {
        r.errors++;
        report(
          `offset ${offset}: the stream ends inside a frame (${e.received} bytes of it` +
            ` present, ${e.missing} missing)`,
        );
        offset = tape.end;
        break;
      } else throw e;
    }
    if (!problem) break; // clean end of stream
    r.errors++;
    await flush();
    if (options.onError === "stop") {
      report(`offset ${problem.at}: ${problem.what}; stopping (--on-error skip resumes after it)`);
      offset = problem.at;
      break;
    }
    const resume = await resync(problem.at, problem.next);
    if (resume === null) {
      const rest = tape.end - problem.at;
      r.skippedBytes += rest;
      report(
        `offset ${problem.at}: ${problem.what}; no frame start found in the remaining ${rest}` +
          ` bytes: framing is lost, stopping`,
      );
      offset = tape.end;
      break;
    }
    r.skippedBytes += resume - problem.at;
    report(
      `offset ${problem.at}: ${problem.what}; skipped ${resume - problem.at} bytes,` +
        ` resuming at offset ${resume}`,
    );
    offset = resume;
    tape.rewind(resume);
  }
  await flush();
  r.bytes = tape.end;
  return r;
}

function typeUrlOf(frame: Uint8Array): string {
  // field 1, length-delimited, short varint: what the plugin writes first
  if (frame[0] !== 0x0a) return "";
  let len = 0, shift = 0, i = 1;
  for (; i < frame.length && i < 6; i++) {
    len |= (frame[i] & 0x7f) << shift;
    shift += 7;
    if (frame[i] < 0x80) break;
  }
  return new TextDecoder().decode(frame.subarray(i + 1, Math.min(frame.length, i + 1 + len)));
}

/** Runs `decode` with its arguments; resolves to the exit status. */
export async function runDecode(args: string[]): Promise<number> {
  let options: DecodeOptions;
  let path: string;
  try {
    const { values, positionals } = parseArgs({
      args,
      options: {
        "on-error": { type: "string" },
        payload: { type: "string" },
        "max-frame-bytes": { type: "string" },
        offsets: { type: "boolean" },
        help: { type: "boolean", short: "h" },
      },
      strict: true,
      allowPositionals: true,
    });
    if (values.help) {
      console.log(DECODE_USAGE.trimEnd());
      return 0;
    }
    if (positionals.length > 1) {
      throw new ConfigError("decode", `expected one FILE (or -), got ${positionals.length}`);
    }
    path = positionals[0] ?? "-";
    options = {
      onError: values["on-error"] === undefined
        ? "stop"
        : parseChoice("--on-error", values["on-error"], ["stop", "skip"] as const),
      payload: values.payload === undefined
        ? DEFAULTS.payload
        : parseChoice("--payload", values.payload, PAYLOAD_MODES),
      maxFrameBytes: values["max-frame-bytes"] === undefined
        ? DEFAULTS.maxFrameBytes
        : Math.min(parseSize("--max-frame-bytes", values["max-frame-bytes"], 1), 2 ** 32 - 1),
      offsets: values.offsets ?? false,
    };
  } catch (e) {
    const msg = e instanceof ConfigError
      ? e.message
      : `decode: ${(e as Error).message.replace(/\. To specify a positional.*$/s, "")}`;
    console.error(`vmq-sidecar: ${msg}; see decode --help`);
    return 2;
  }
  let file: Deno.FsFile | undefined;
  if (path !== "-") {
    try {
      file = await Deno.open(path, { read: true });
    } catch (e) {
      console.error(
        `vmq-sidecar: decode: cannot read ${path}: ${(e as Error).message}${
          permissionHint(e, "read", path)
        }\n  or pipe it in: vmq-sidecar decode < ${path}`,
      );
      return 1;
    }
  }
  const input: Reader = file ?? Deno.stdin;
  const enc = new TextEncoder();
  let outClosed = false;
  const write = async (bytes: Uint8Array) => {
    if (outClosed) return;
    try {
      for (let at = 0; at < bytes.length;) at += await Deno.stdout.write(bytes.subarray(at));
    } catch (e) {
      if (!(e instanceof Deno.errors.BrokenPipe)) throw e;
      outClosed = true; // e.g. piped into head: stop quietly
    }
  };
  const report = (line: string) => {
    Deno.stderr.writeSync(enc.encode(`vmq-sidecar: decode: ${line}\n`));
  };
  let r: DecodeReport;
  try {
    r = await decodeStream(input, options, write, report);
  } catch (e) {
    console.error(`vmq-sidecar: decode: reading ${path === "-" ? "stdin" : path} failed: ${e}`);
    return 1;
  } finally {
    file?.close();
  }
  report(
    `${r.events} events, ${r.empty} empty frames, ${r.unknownType} of unknown type, ${r.errors}` +
      ` bad-bytes problems, ${r.skippedBytes} bytes skipped, ${r.bytes} bytes read`,
  );
  return r.errors > 0 ? 1 : 0;
}

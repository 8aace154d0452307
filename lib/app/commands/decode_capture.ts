/**
 * `vmq-sidecar decode`: reads a raw captured stream (what the plugin writes on one connection:
 * `[u32 length][Any]...`, e.g. a TCP payload export or the test vectors concatenated) from a
 * file or stdin and prints each event as a JSON line — the "what is the broker sending?" tool.
 *
 * Bad bytes are reported on stderr with their byte offset (of the frame's length prefix).
 * `--on-error stop` (default) stops there. `--on-error skip` reports and resynchronizes: it
 * looks for the next offset where a plausible frame starts — a length from 1 to
 * `--max-frame-bytes` that agrees with the lengths inside it, as the plugin writes a
 * `google.protobuf.Any` of a known eventssidecar.v1 type, and whose event decodes — trying
 * first the offset right after the bad frame (its length prefix may be intact), then every
 * byte after the bad frame's start; when none is found before the end of the stream, framing
 * is lost and it stops. In skip mode one bad length does not swallow the rest: a length that
 * its own `Any` contradicts while a plausible frame starts where that `Any` ends is a bad
 * frame (resumed there), and a length running past the end of the stream is scanned past
 * (a cut capture's last frame is still reported as cut). The work is bounded: every byte is
 * read once, at most `--max-frame-bytes` beyond the bad frame are held, and a candidate costs
 * a few header bytes unless its lengths agree. Empty frames are counted, not printed; frames
 * of an unknown type are reported and skipped in both modes (not an error). Problem lines are
 * rate-limited per kind (the first 10, then a summary every 10 s and at the end).
 * Exit status: 0 when every frame decoded, 1 when bad bytes were found (or the input cannot be
 * read), 2 for bad flags.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { ByteBuffer } from "../../codec/byte_buffer.ts";
import { DEFAULTS } from "../config.ts";
import { parseChoice, parseSize } from "../../parse.ts";
import { MALFORMED_ENVELOPE, UNKNOWN_TYPE } from "../../wire/envelope.ts";
import { readLength } from "../../wire/length_prefix.ts";
import { ConfigError } from "../../errors.ts";
import {
  MALFORMED_VALUE,
  PAYLOAD_MODES,
  type PayloadMode,
  writeFrameJsonCode,
} from "../../codec/json_writer.ts";
import { permissionHint } from "../../_permissions.ts";
import { formatHeld, LogLimiter } from "../../_log_limiter.ts";
import { HEADER_BYTES, scanSegment } from "../../pipeline/disk_journal.ts";

/** Problem lines per kind reported individually before only summaries are. */
const REPORT_FIRST = 10;

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
  --journal                 FILE is a disk journal segment (DATA_DIR/journal/segments/*.seg,
                            the default for a .seg file): its blocks' checksums are checked,
                            damaged ranges reported, the frames of the good blocks decoded
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
  /** Problem lines held back by the rate limit (their problems are counted all the same). */
  heldBack: number;
}

type Reader = { read(p: Uint8Array): Promise<number | null> };

/**
 * Bytes of the input from a retained offset on, so that a resynchronization can look again at
 * bytes already framed. Holds at most one frame plus one read beyond what is retained.
 */
class Tape {
  #raw: Reader;
  #buf = new Uint8Array(64 * 1024);
  #base = 0; // absolute offset of #buf[0]
  #len = 0; // valid bytes in #buf
  #eof = false;

  constructor(raw: Reader) {
    this.#raw = raw;
  }

  /** Absolute end of what has been read from the input. */
  get end(): number {
    return this.#base + this.#len;
  }

  /** Drops bytes before absolute offset `off` (never needed again). */
  release(off: number): void {
    const cut = Math.min(off, this.end) - this.#base;
    if (cut <= 0 || cut < this.#buf.length / 2) return;
    this.#buf.copyWithin(0, cut, this.#len);
    this.#base += cut;
    this.#len -= cut;
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
    heldBack: 0,
  };
  const limit = new LogLimiter({
    first: REPORT_FIRST,
    summary: (held) => {
      let n = 0;
      for (const v of held.values()) n += v;
      r.heldBack += n;
      report(`${n} more problem lines not shown (${formatHeld(held)}); all are counted below`);
    },
  });
  // Reports a problem line of `kind`, within the rate limit.
  const problemLine = (kind: string, line: string) => {
    if (limit.allow(kind).ok) report(line);
  };
  const tape = new Tape(input);
  const out = new ByteBuffer(256 * 1024);
  const scratch = new ByteBuffer(1024);
  const flush = async () => {
    if (out.pos > 0) await write(out.bytes().slice());
    out.reset();
  };
  const max = options.maxFrameBytes;
  const skip = options.onError === "skip";

  const HEAD = 4 + 3 + TYPE_URL_PREFIX.length;
  // Cheap check of held bytes at p: a length in range, then field 1 (type_url) leading with
  // the eventssidecar.v1 prefix, as the plugin writes it.
  const headLooksRight = (p: number): boolean => {
    const b = tape.view(p, p + HEAD);
    const len = readLength(b, 0);
    if (len < HEAD || len > max || b[4] !== 0x0a) return false;
    const at = b[5] < 0x80 ? 6 : 7;
    for (let i = 0; i < TYPE_URL_PREFIX.length; i++) {
      if (b[at + i] !== TYPE_URL_PREFIX[i]) return false;
    }
    return true;
  };
  // Where the frame at p ends by the lengths inside it, when it starts as the plugin writes an
  // Any (type_url of < 128 bytes, then value with a length of ≤ 4 varint bytes); undefined
  // when it does not, or its header bytes are not held (hold `p + INNER_HEAD` first).
  const INNER_HEAD = 4 + 2 + 127 + 5;
  const innerEnd = (p: number): number | undefined => {
    if (p + 6 > tape.end) return undefined;
    const h = tape.view(p, p + 6);
    if (h[4] !== 0x0a || h[5] >= 0x80) return undefined;
    const tagAt = p + 6 + h[5];
    if (tagAt + 5 > tape.end) return undefined;
    const b = tape.view(tagAt, tagAt + 5);
    if (b[0] !== 0x12) return undefined;
    let len = 0;
    for (let i = 1; i < 5; i++) {
      len += (b[i] & 0x7f) * 2 ** (7 * (i - 1));
      if (b[i] < 0x80) return tagAt + 1 + i + len;
    }
    return undefined;
  };
  // Whether a plausible frame starts at absolute offset p (see the module doc).
  const plausibleAt = async (p: number): Promise<boolean> => {
    if (!(p + HEAD <= tape.end || await tape.has(p + HEAD)) || !headLooksRight(p)) return false;
    const h = tape.view(p, p + 4);
    const len = readLength(h, 0);
    // The lengths must agree before its bytes are read: a candidate with a bogus length costs
    // a few header bytes, not a read of up to --max-frame-bytes.
    await tape.has(p + Math.min(4 + len, INNER_HEAD));
    if (innerEnd(p) !== p + 4 + len) return false;
    if (!(p + 4 + len <= tape.end || await tape.has(p + 4 + len))) return false;
    scratch.reset();
    return writeFrameJsonCode(scratch, tape.view(p + 4, p + 4 + len), options.payload) >= 0;
  };

  // After a bad frame at `bad` (ending at `next` when its length is trusted): where to go on.
  const resync = async (bad: number, next: number | undefined): Promise<number | null> => {
    if (next !== undefined) {
      if (!(next + 1 <= tape.end || await tape.has(next + 1)) && tape.end === next) return next; // it was the last frame
      if (await plausibleAt(next)) return next;
    }
    for (let p = bad + 1;; p++) {
      if (p + HEAD > tape.end && !(await tape.has(p + HEAD))) {
        if (!(p + 4 <= tape.end || await tape.has(p + 4))) return null;
        continue; // too short to be a frame of ours; keep looking until the end
      }
      if (headLooksRight(p) && await plausibleAt(p)) return p;
      if ((p & 0xffff) === 0) tape.release(p);
    }
  };

  let offset = 0; // absolute offset of the next frame's length prefix
  for (;;) {
    let problem:
      | { at: number; what: string; kind: string; next?: number; len?: number }
      | undefined;
    for (;;) {
      tape.release(offset);
      if (!(offset + 4 <= tape.end || await tape.has(offset + 4))) {
        if (tape.end > offset) {
          problem = {
            at: offset,
            kind: "cut",
            what: `the stream ends inside a length prefix (${
              tape.end - offset
            } of its 4 bytes present)`,
          };
        }
        break; // else a clean end of stream
      }
      const h = tape.view(offset, offset + 4);
      const len = readLength(h, 0);
      const at = offset;
      if (len > max) {
        problem = {
          at,
          kind: "too_large",
          what: `length prefix says ${len} bytes, over --max-frame-bytes ${max}`,
        };
        break;
      }
      if (skip && len > 0) {
        // A length its own Any contradicts, with a plausible frame where the Any ends: the
        // length is bad, not the bytes after it (the Any is not trusted either).
        const head = at + Math.min(4 + len, INNER_HEAD);
        if (head > tape.end) await tape.has(head);
        const end = innerEnd(at);
        if (end !== undefined && end < at + 4 + len && await plausibleAt(end)) {
          problem = {
            at,
            kind: "bad_length",
            what: `length prefix says ${len} bytes, but its Any ends after ${end - at - 4}`,
            next: end,
          };
          break;
        }
      }
      if (!(at + 4 + len <= tape.end || await tape.has(at + 4 + len))) {
        problem = {
          at,
          kind: "cut",
          what: `the stream ends inside a frame (${tape.end - at} bytes of it present, ${
            at + 4 + len - tape.end
          } missing)`,
          len,
        };
        break;
      }
      offset += 4 + len;
      if (len === 0) {
        r.empty++;
        continue;
      }
      const frame = tape.view(at + 4, at + 4 + len);
      const begin = out.pos;
      const hook = writeFrameJsonCode(out, frame, options.payload);
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
        problemLine(
          "unknown_type",
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
      problem = {
        at,
        kind: hook === MALFORMED_ENVELOPE ? "not_any" : "bad_event",
        what,
        next: offset,
      };
      break;
    }
    if (!problem) break; // clean end of stream
    r.errors++;
    await flush();
    if (problem.kind === "cut" && !skip) {
      report(`offset ${problem.at}: ${problem.what}`);
      offset = tape.end;
      break;
    }
    if (!skip) {
      report(`offset ${problem.at}: ${problem.what}; stopping (--on-error skip resumes after it)`);
      offset = problem.at;
      break;
    }
    const resume = await resync(problem.at, problem.next);
    if (resume === null) {
      const rest = tape.end - problem.at;
      r.skippedBytes += rest;
      // A cut capture's last frame: nothing after it.
      problemLine(
        problem.kind,
        problem.kind === "cut"
          ? `offset ${problem.at}: ${problem.what}`
          : `offset ${problem.at}: ${problem.what}; no frame start found in the remaining ${rest}` +
            ` bytes: framing is lost, stopping`,
      );
      offset = tape.end;
      break;
    }
    r.skippedBytes += resume - problem.at;
    problemLine(
      problem.kind,
      `offset ${problem.at}: ${
        problem.kind === "cut"
          ? `length prefix says ${problem.len} bytes, more than the rest of the stream`
          : problem.what
      }; skipped ${resume - problem.at} bytes, resuming at offset ${resume}`,
    );
    offset = resume;
  }
  await flush();
  limit.close();
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
  let journal = false;
  try {
    const { values, positionals } = parseArgs({
      args,
      options: {
        "on-error": { type: "string" },
        payload: { type: "string" },
        "max-frame-bytes": { type: "string" },
        offsets: { type: "boolean" },
        journal: { type: "boolean" },
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
    journal = values.journal ?? path.endsWith(".seg");
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
  let input: Reader = file ?? Deno.stdin;
  const enc = new TextEncoder();
  let segmentErrors = 0;
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
    if (journal) {
      const seg = await segmentFrames(input, report);
      segmentErrors = seg.damaged;
      input = seg.reader;
    }
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
  return r.errors + segmentErrors > 0 ? 1 : 0;
}

/**
 * The frames of a journal segment read whole from `input`: the payloads of its good blocks
 * back to back (offsets in the decoded stream are then offsets among those frames), each
 * damaged range reported with its segment offset.
 */
async function segmentFrames(
  input: Reader,
  report: (line: string) => void,
): Promise<{ reader: Reader; damaged: number }> {
  const parts: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const buf = new Uint8Array(1 << 20);
    const n = await input.read(buf);
    if (n === null) break;
    parts.push(buf.subarray(0, n));
    total += n;
  }
  const bytes = new Uint8Array(total);
  let at = 0;
  for (const p of parts) bytes.set(p, at), at += p.length;
  const scan = scanSegment(bytes);
  for (const d of scan.damaged) {
    report(`segment offset ${d.offset}: ${d.length} bytes, ${d.reason}; skipped`);
  }
  const frames = scan.blocks.map((b) =>
    bytes.subarray(b.offset + HEADER_BYTES, b.offset + HEADER_BYTES + b.length)
  );
  let i = 0, off = 0;
  const reader: Reader = {
    read(p) {
      while (i < frames.length && off === frames[i].length) i++, off = 0;
      if (i >= frames.length) return Promise.resolve(null);
      const n = Math.min(p.length, frames[i].length - off);
      p.set(frames[i].subarray(off, off + n));
      off += n;
      return Promise.resolve(n);
    },
  };
  return { reader, damaged: scan.damaged.length };
}

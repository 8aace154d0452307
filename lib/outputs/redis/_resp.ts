// Private: RESP (the Redis protocol) written straight into bytes and read back incrementally.
// XaddEncoder puts a whole batch's XADD commands into one ByteBuffer — the JSON body is written
// by the JSON writer in place, right after its bulk-string header — so a batch costs one
// buffer and one socket write instead of three chunks and several strings per event.
// RespReader parses replies from arbitrary chunks (pipelined replies may split anywhere).
import { readLength } from "../../wire/length_prefix.ts";
import { ByteBuffer } from "../../codec/byte_buffer.ts";
import { writeEventJson } from "../../codec/json_writer.ts";
import { type EnvelopeRanges, parseEnvelopeAt } from "../../wire/envelope.ts";
import { HOOKS } from "../../schema/hooks.ts";
import type { OutputBatch } from "../contract.ts";
import type { FormatOptions } from "../encoding.ts";
import { reportUndecodable } from "../encoding.ts";
import type { NameTemplate } from "../name_template.ts";
import { EventIds } from "../_event_id.ts";

const utf8 = new TextEncoder();
const CR = 13, LF = 10;

/** What {@linkcode XaddEncoder} writes: the stream key, the length cap and the body format. */
export interface XaddOptions extends FormatOptions {
  /** Stream key template (as RedisSink's `key`). */
  key: NameTemplate;
  /** `MAXLEN ~ N`; 0 = no cap. */
  maxLen: number;
}

/** Appends the RESP bulk string of `bytes` to `out`. */
export function writeBulk(out: ByteBuffer, bytes: Uint8Array): void {
  writeBulkHeader(out, bytes.length);
  out.write(bytes);
  out.ensure(2);
  out.buf[out.pos++] = CR;
  out.buf[out.pos++] = LF;
}

/** Appends a whole RESP command (an array of bulk strings) to `out`. */
export function writeCommand(out: ByteBuffer, args: readonly (string | Uint8Array)[]): void {
  out.writeAscii(`*${args.length}\r\n`);
  for (const a of args) writeBulk(out, typeof a === "string" ? utf8.encode(a) : a);
}

function writeBulkHeader(out: ByteBuffer, n: number): void {
  out.writeAscii(`$${n}\r\n`);
}

function digits(n: number): number {
  let d = 1;
  while (n >= 10) {
    n = Math.floor(n / 10);
    d++;
  }
  return d;
}

/** Writes the decimal digits of `n` (which has `d` digits) at `buf[pos, pos + d)`. */
function putDecimal(buf: Uint8Array, pos: number, n: number, d: number): void {
  for (let i = pos + d - 1; i >= pos; i--) {
    buf[i] = 48 + (n % 10);
    n = Math.floor(n / 10);
  }
}

/**
 * Encodes the `XADD`s of a batch — `XADD key [MAXLEN ~ N] * hook H id ID event|frame BODY`,
 * the same arguments RedisSink gives the client — as RESP, straight into a ByteBuffer: the
 * constant parts (command, key, field names, hook) are bytes prepared once per hook, the id is
 * written as ASCII, the JSON body is written in place after its length header.
 */
export class XaddEncoder {
  readonly #opts: XaddOptions;
  readonly #output: string;
  readonly #ranges: EnvelopeRanges = { typeUrlStart: 0, typeUrlEnd: 0, valueStart: 0, valueEnd: 0 };
  /** The batch's event ids, computed together before its events are encoded. */
  readonly #ids = new EventIds();
  /** Per hook: every byte of the command up to the id's value (when the key is per hook only). */
  readonly #prefixByHook: (Uint8Array | undefined)[];
  /** `$5\r\nevent\r\n` or `$5\r\nframe\r\n`, after the id. */
  readonly #fieldBytes: Uint8Array;
  /** Digits of the previous body length: the guess for the next one. */
  #guess = 3;

  /** An encoder for output `output` (its name, for the undecodable count). */
  constructor(output: string, opts: XaddOptions) {
    this.#output = output;
    this.#opts = opts;
    this.#prefixByHook = HOOKS.map(() => undefined);
    const field = new ByteBuffer(16);
    writeBulk(field, utf8.encode(opts.format === "json" ? "event" : "frame"));
    this.#fieldBytes = field.bytes().slice();
  }

  #prefix(hook: number, frame: Uint8Array): Uint8Array {
    const cached = this.#prefixByHook[hook];
    if (cached) return cached;
    const key = this.#opts.key, maxLen = this.#opts.maxLen;
    const b = new ByteBuffer(128);
    b.writeAscii(maxLen > 0 ? "*12\r\n" : "*9\r\n");
    writeBulk(b, utf8.encode("XADD"));
    writeBulk(b, utf8.encode(key.render(hook, frame)));
    if (maxLen > 0) {
      writeBulk(b, utf8.encode("MAXLEN"));
      writeBulk(b, utf8.encode("~"));
      writeBulk(b, utf8.encode(String(maxLen)));
    }
    writeBulk(b, utf8.encode("*"));
    writeBulk(b, utf8.encode("hook"));
    writeBulk(b, utf8.encode(HOOKS[hook]));
    writeBulk(b, utf8.encode("id"));
    writeBulkHeader(b, 32);
    const bytes = b.bytes().slice();
    if (!key.readsFields) this.#prefixByHook[hook] = bytes;
    return bytes;
  }

  /**
   * Appends one `XADD` per event of `batch` to `out` and returns how many: frames that are no
   * event are skipped (undecodable event values are also counted and logged, as RedisSink does).
   * When `frames` is given, the `[start, end)` of each encoded command's frame in `batch.bytes`
   * is appended to it (two numbers per command), so a reply can be mapped back to its event.
   */
  encode(batch: OutputBatch, out: ByteBuffer, frames?: number[]): number {
    const b = batch.bytes, ranges = this.#ranges, json = this.#opts.format === "json";
    const ids = this.#ids;
    ids.ofBatch(b, batch.count);
    const payload = this.#opts.payload, field = this.#fieldBytes;
    let p = 0, n = 0;
    for (let i = 0; i < batch.count; i++) {
      const len = readLength(b, p);
      const start = p + 4, end = start + len;
      p = end;
      const hook = parseEnvelopeAt(b, start, end, ranges);
      if (hook < 0) continue;
      const frame = b.subarray(start, end);
      const begin = out.pos;
      out.write(this.#prefix(hook, frame));
      ids.write(out, i);
      out.ensure(2);
      out.buf[out.pos++] = CR;
      out.buf[out.pos++] = LF;
      out.write(field);
      if (json) {
        // `$<length>\r\n` with room for the guessed digit count, the JSON, then the header is
        // filled in (the body moved when the guess was wrong).
        const guess = this.#guess, head = out.pos;
        out.ensure(guess + 3);
        out.pos = head + guess + 3;
        const bodyStart = out.pos;
        if (writeEventJson(out, b, hook, ranges.valueStart, ranges.valueEnd, payload) < 0) {
          out.pos = begin;
          reportUndecodable(this.#output, frame);
          continue;
        }
        const bodyLen = out.pos - bodyStart, d = digits(bodyLen);
        if (d !== guess) {
          out.ensure(d - guess);
          out.buf.copyWithin(head + d + 3, bodyStart, bodyStart + bodyLen);
          out.pos = head + d + 3 + bodyLen;
          this.#guess = d;
        }
        const buf = out.buf;
        buf[head] = 36; // $
        putDecimal(buf, head + 1, bodyLen, d);
        buf[head + 1 + d] = CR;
        buf[head + 2 + d] = LF;
      } else {
        writeBulkHeader(out, len);
        out.write(frame);
      }
      out.ensure(2);
      out.buf[out.pos++] = CR;
      out.buf[out.pos++] = LF;
      frames?.push(start, end);
      n++;
    }
    return n;
  }
}

// ---------------------------------------------------------------------------------------------
// Replies.

/** An error reply (`-ERR …`): a value, not thrown, so each command keeps its own outcome. */
export class RespError {
  /** The server's message, e.g. `WRONGTYPE Operation against a key holding the wrong kind…`. */
  readonly message: string;
  /** Creates it. */
  constructor(message: string) {
    this.message = message;
  }
}

/**
 * A RESP2/RESP3 reply: simple strings as strings, bulk strings as bytes (null for the null
 * bulk), integers as numbers, arrays (and maps, as flat arrays) nested.
 */
export type RespValue = string | number | Uint8Array | null | RespError | RespValue[];

const INCOMPLETE = Symbol("incomplete");
const NO_BYTES = new Uint8Array(0);

function sameAscii(buf: Uint8Array, at: number, text: string): boolean {
  for (let i = 0; i < text.length; i++) if (buf[at + i] !== text.charCodeAt(i)) return false;
  return true;
}

/**
 * An incremental reply parser: {@linkcode RespReader.push} any chunk of bytes as it arrives;
 * each complete top-level reply is passed to `onReply`, in order. Bytes of a reply that is not
 * complete yet are kept (bounded by `maxPending`; a server sending more is a protocol error).
 */
export class RespReader {
  readonly #onReply: (value: RespValue) => void;
  readonly #maxPending: number;
  readonly #keepBulk: () => boolean;
  #keep = true;
  #buf = new Uint8Array(64 * 1024);
  #start = 0;
  #end = 0;
  #pos = 0;

  /**
   * A reader calling `onReply` for every reply; at most `maxPending` bytes of one reply. When
   * `keepBulk()` (asked before each reply) is false, every bulk string of that reply is passed
   * as the same empty array (no copy: for callers that only look at errors, e.g. the ids `XADD`
   * answers).
   */
  constructor(
    onReply: (value: RespValue) => void,
    maxPending = 64 * 1024 * 1024,
    keepBulk: () => boolean = () => true,
  ) {
    this.#onReply = onReply;
    this.#maxPending = maxPending;
    this.#keepBulk = keepBulk;
  }

  /** Parses `chunk` (copied; it may be reused afterwards). Throws RespProtocolError on garbage. */
  push(chunk: Uint8Array): void {
    this.#append(chunk);
    while (this.#start < this.#end) {
      this.#pos = this.#start;
      this.#keep = this.#keepBulk();
      const v = this.#value();
      if (v === INCOMPLETE) break;
      this.#start = this.#pos;
      this.#onReply(v);
    }
    if (this.#start === this.#end) this.#start = this.#end = 0;
  }

  #append(chunk: Uint8Array): void {
    const n = chunk.length;
    if (this.#end + n > this.#buf.length) {
      const live = this.#end - this.#start;
      if (live + n > this.#maxPending) {
        throw new RespProtocolError(`a reply longer than ${this.#maxPending} bytes`);
      }
      if (live + n <= this.#buf.length) this.#buf.copyWithin(0, this.#start, this.#end);
      else {
        const next = new Uint8Array(Math.max(this.#buf.length * 2, live + n));
        next.set(this.#buf.subarray(this.#start, this.#end), 0);
        this.#buf = next;
      }
      this.#start = 0;
      this.#end = live;
    }
    this.#buf.set(chunk, this.#end);
    this.#end += n;
  }

  /** The line from `#pos` to CRLF (excluded), as [start, end); INCOMPLETE when no CRLF yet. */
  #line(): number | typeof INCOMPLETE {
    const buf = this.#buf, end = this.#end;
    for (let i = this.#pos; i + 1 < end; i++) {
      if (buf[i] === CR) {
        if (buf[i + 1] !== LF) throw new RespProtocolError("CR without LF");
        return i;
      }
    }
    return INCOMPLETE;
  }

  #integer(from: number, to: number): number {
    const buf = this.#buf;
    let i = from, neg = false, v = 0;
    if (buf[i] === 45) {
      neg = true;
      i++;
    }
    if (i >= to) throw new RespProtocolError("empty number");
    for (; i < to; i++) {
      const c = buf[i] - 48;
      if (c < 0 || c > 9) throw new RespProtocolError("bad number");
      v = v * 10 + c;
    }
    return neg ? -v : v;
  }

  #text(from: number, to: number): string {
    const buf = this.#buf;
    // The replies a pipeline gets by the thousand: no string built for them.
    if (to - from === 6 && sameAscii(buf, from, "QUEUED")) return "QUEUED";
    if (to - from === 2 && sameAscii(buf, from, "OK")) return "OK";
    let s = "";
    for (let i = from; i < to; i++) s += String.fromCharCode(buf[i]);
    return s;
  }

  #value(): RespValue | typeof INCOMPLETE {
    if (this.#pos >= this.#end) return INCOMPLETE;
    const type = this.#buf[this.#pos];
    const lineStart = this.#pos + 1;
    this.#pos = lineStart;
    const lineEnd = this.#line();
    if (lineEnd === INCOMPLETE) return INCOMPLETE;
    this.#pos = lineEnd + 2;
    switch (type) {
      case 43: // + simple string
        return this.#text(lineStart, lineEnd);
      case 45: // - error
        return new RespError(new TextDecoder().decode(this.#buf.subarray(lineStart, lineEnd)));
      case 58: // : integer
        return this.#integer(lineStart, lineEnd);
      case 36: { // $ bulk string
        const n = this.#integer(lineStart, lineEnd);
        if (n < 0) return null;
        if (this.#pos + n + 2 > this.#end) return INCOMPLETE;
        const v = this.#keep ? this.#buf.slice(this.#pos, this.#pos + n) : NO_BYTES;
        if (this.#buf[this.#pos + n] !== CR || this.#buf[this.#pos + n + 1] !== LF) {
          throw new RespProtocolError("bulk string without CRLF");
        }
        this.#pos += n + 2;
        return v;
      }
      case 42: // * array
      case 37: { // % map (RESP3): flat key, value, …
        let n = this.#integer(lineStart, lineEnd);
        if (n < 0) return null;
        if (type === 37) n *= 2;
        const out: RespValue[] = [];
        for (let i = 0; i < n; i++) {
          const v = this.#value();
          if (v === INCOMPLETE) return INCOMPLETE;
          out.push(v);
        }
        return out;
      }
      default:
        throw new RespProtocolError(`unexpected reply type byte ${type}`);
    }
  }
}

/** The server sent bytes that are not RESP: the connection cannot be trusted any more. */
export class RespProtocolError extends Error {
  /** Creates the error. */
  constructor(message: string) {
    super(`Redis protocol error: ${message}`);
    this.name = "RespProtocolError";
  }
}

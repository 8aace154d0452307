// Private: the NATS protocol for JetStream publishing, written straight into bytes. HpubEncoder
// puts a whole batch's `HPUB`s — subject, reply subject `<inbox>.<gen>_<i>`, a `Nats-Msg-Id`
// header, the body written in place by the JSON writer — into one ByteBuffer (no protocol line
// strings, no header objects). NatsOpReader parses what the server sends (MSG/HMSG, PING,
// -ERR, …) from arbitrary chunks; AckTracker settles a batch's publishes from the
// acknowledgements' bytes, with one promise per batch and none per message. NatsSink writes
// HpubEncoder's buffer through the client's connection (one write per batch); NatsOpReader and
// AckTracker are for a connection of its own (not used by the sink yet).
import { readLength } from "../../wire/length_prefix.ts";
import type { ByteBuffer } from "../../codec/byte_buffer.ts";
import { writeEventJson } from "../../codec/json_writer.ts";
import { type EnvelopeRanges, parseEnvelopeAt } from "../../wire/envelope.ts";
import type { OutputBatch } from "../contract.ts";
import { type FormatOptions, reportUndecodable } from "../encoding.ts";
import type { NameTemplate } from "../name_template.ts";
import { EventIds } from "../_event_id.ts";
import { HOOKS } from "../../schema/hooks.ts";

const utf8 = new TextEncoder();
const CR = 13, LF = 10, SP = 32;
/** `NATS/1.0\r\nNats-Msg-Id: ` + 32 hex + `\r\n\r\n`. */
const HEADER_START = utf8.encode("NATS/1.0\r\nNats-Msg-Id: ");
const HEADER_LEN = HEADER_START.length + 32 + 4;
const HEADER_LEN_ASCII = ` ${HEADER_LEN} `;

function digits(n: number): number {
  let d = 1;
  while (n >= 10) {
    n = Math.floor(n / 10);
    d++;
  }
  return d;
}

function putDecimal(buf: Uint8Array, pos: number, n: number, d: number): void {
  for (let i = pos + d - 1; i >= pos; i--) {
    buf[i] = 48 + (n % 10);
    n = Math.floor(n / 10);
  }
}

function writeDecimal(out: ByteBuffer, n: number): void {
  const d = digits(n);
  out.ensure(d);
  putDecimal(out.buf, out.pos, n, d);
  out.pos += d;
}

/**
 * Encodes the `HPUB`s of a batch of events: one per event, subject from the template, reply
 * subject `<inbox>.<gen>_<index>` (index counts the events published, as NatsSink does), the
 * `Nats-Msg-Id` header (the event id) and the body (JSON or the `Any` bytes).
 */
export class HpubEncoder {
  readonly #opts: FormatOptions & { subject: NameTemplate };
  readonly #output: string;
  readonly #ranges: EnvelopeRanges = { typeUrlStart: 0, typeUrlEnd: 0, valueStart: 0, valueEnd: 0 };
  /** The batch's event ids, computed together before its events are encoded. */
  readonly #ids = new EventIds();
  readonly #subjectByHook: (Uint8Array | undefined)[] = HOOKS.map(() => undefined);
  #inbox = new Uint8Array(0);
  #guess = 3;
  /** The bodies of the last batch (views into its output buffer), by publish index. */
  readonly bodyStarts: number[] = [];
  /** End offsets of the bodies in the output buffer, by publish index. */
  readonly bodyEnds: number[] = [];
  /** Publish indexes of the last batch not written: above `maxPayload`. */
  readonly tooLarge: number[] = [];

  /** An encoder for output `output` (its name, for the undecodable count). */
  constructor(output: string, opts: FormatOptions & { subject: NameTemplate }) {
    this.#output = output;
    this.#opts = opts;
  }

  /** Sets the inbox prefix of the reply subjects (`<inbox>.<gen>_<i>`). */
  set inbox(inbox: string) {
    this.#inbox = utf8.encode(`${inbox}.`);
  }

  #subject(hook: number, frame: Uint8Array): Uint8Array {
    const cached = this.#subjectByHook[hook];
    if (cached) return cached;
    const s = utf8.encode(`HPUB ${this.#opts.subject.render(hook, frame)} `);
    if (!this.#opts.subject.readsFields) this.#subjectByHook[hook] = s;
    return s;
  }

  /**
   * Appends one `HPUB` per event of `batch` to `out` (reply subjects of generation `gen`) and
   * returns how many; frames that are no event are skipped (undecodable values counted). A
   * message above `maxPayload` bytes (header and body: the server's `max_payload`) is not
   * written, its index is in {@linkcode HpubEncoder.tooLarge} (and its body offsets are -1).
   * When `frames` is given, the `[start, end)` of each index's frame in `batch.bytes` is
   * appended to it (two numbers per index).
   */
  encode(
    batch: OutputBatch,
    gen: number,
    out: ByteBuffer,
    maxPayload = Infinity,
    frames?: number[],
  ): number {
    const b = batch.bytes, ranges = this.#ranges, json = this.#opts.format === "json";
    const ids = this.#ids;
    ids.ofBatch(b, batch.count);
    const payload = this.#opts.payload, inbox = this.#inbox;
    const genAscii = `${gen}_`;
    this.bodyStarts.length = this.bodyEnds.length = this.tooLarge.length = 0;
    let p = 0, n = 0;
    for (let i = 0; i < batch.count; i++) {
      const len = readLength(b, p);
      const start = p + 4, end = start + len;
      p = end;
      const hook = parseEnvelopeAt(b, start, end, ranges);
      if (hook < 0) continue;
      const frame = b.subarray(start, end);
      const begin = out.pos;
      out.write(this.#subject(hook, frame));
      out.write(inbox);
      out.writeAscii(genAscii);
      writeDecimal(out, n);
      out.writeAscii(HEADER_LEN_ASCII);
      // `<total>\r\n` with room for the guessed digits; fixed once the body's length is known.
      const guess = this.#guess, head = out.pos;
      out.ensure(guess + 2 + HEADER_LEN);
      out.pos = head + guess + 2;
      out.write(HEADER_START);
      ids.write(out, i);
      out.writeAscii("\r\n\r\n");
      let bodyStart = out.pos;
      if (json) {
        if (writeEventJson(out, b, hook, ranges.valueStart, ranges.valueEnd, payload) < 0) {
          out.pos = begin;
          reportUndecodable(this.#output, frame);
          continue;
        }
      } else out.write(frame);
      const bodyLen = out.pos - bodyStart, total = HEADER_LEN + bodyLen, d = digits(total);
      if (total > maxPayload) {
        out.pos = begin;
        this.tooLarge.push(n);
        this.bodyStarts.push(-1);
        this.bodyEnds.push(-1);
        frames?.push(start, end);
        n++;
        continue;
      }
      if (d !== guess) {
        out.ensure(d - guess);
        const from = head + guess + 2, to = head + d + 2;
        out.buf.copyWithin(to, from, out.pos);
        out.pos += d - guess;
        bodyStart += d - guess;
        this.#guess = d;
      }
      putDecimal(out.buf, head, total, d);
      out.buf[head + d] = CR;
      out.buf[head + d + 1] = LF;
      this.bodyStarts.push(bodyStart);
      this.bodyEnds.push(out.pos);
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
// What the server sends.

/** Receives the operations {@linkcode NatsOpReader} parses; ranges index into `buf`. */
export interface NatsOpHandler {
  /**
   * A message (`MSG`, or `HMSG` with headers): its subject `buf[subjectStart, subjectEnd)`,
   * the status code of its header line (e.g. 503 for "no responders"; 0 without one) and its
   * payload `buf[dataStart, dataEnd)`. Valid only during the call.
   */
  msg(
    buf: Uint8Array,
    subjectStart: number,
    subjectEnd: number,
    status: number,
    dataStart: number,
    dataEnd: number,
  ): void;
  /** `PING` (answer `PONG`). */
  ping(): void;
  /** `-ERR '…'` with the message. */
  error(message: string): void;
  /** `INFO {…}` with the JSON text. Optional. */
  info?(json: string): void;
}

/** The server sent something that is not the NATS protocol. */
export class NatsProtocolError extends Error {
  /** Creates the error. */
  constructor(message: string) {
    super(`NATS protocol error: ${message}`);
    this.name = "NatsProtocolError";
  }
}

/**
 * An incremental parser of the server-to-client NATS protocol: push chunks as they arrive;
 * complete operations go to the handler in order, an incomplete tail is kept (bounded).
 */
export class NatsOpReader {
  readonly #h: NatsOpHandler;
  readonly #maxPending: number;
  #buf = new Uint8Array(64 * 1024);
  #start = 0;
  #end = 0;
  readonly #args: number[] = [];

  /** A reader feeding `handler`; one operation may be at most `maxPending` bytes. */
  constructor(handler: NatsOpHandler, maxPending = 64 * 1024 * 1024) {
    this.#h = handler;
    this.#maxPending = maxPending;
  }

  /** Parses `chunk` (copied). Throws NatsProtocolError on garbage. */
  push(chunk: Uint8Array): void {
    const n = chunk.length;
    if (this.#end + n > this.#buf.length) {
      const live = this.#end - this.#start;
      if (live + n > this.#maxPending) {
        throw new NatsProtocolError(`an operation longer than ${this.#maxPending} bytes`);
      }
      if (live + n <= this.#buf.length) this.#buf.copyWithin(0, this.#start, this.#end);
      else {
        const next = new Uint8Array(Math.max(this.#buf.length * 2, live + n));
        next.set(this.#buf.subarray(this.#start, this.#end));
        this.#buf = next;
      }
      this.#start = 0;
      this.#end = live;
    }
    this.#buf.set(chunk, this.#end);
    this.#end += n;
    while (this.#start < this.#end) {
      const used = this.#op();
      if (used === 0) break;
      this.#start += used;
    }
    if (this.#start === this.#end) this.#start = this.#end = 0;
  }

  /** Bytes used by the operation at `#start`, or 0 when it is incomplete. */
  #op(): number {
    const buf = this.#buf, s = this.#start, end = this.#end;
    let eol = -1;
    for (let i = s; i + 1 < end; i++) {
      if (buf[i] === CR && buf[i + 1] === LF) {
        eol = i;
        break;
      }
    }
    if (eol < 0) return 0;
    const c0 = buf[s] | 0x20, c1 = buf[s + 1] | 0x20;
    if (c0 === 0x6d /* m */ || (c0 === 0x68 /* h */ && c1 === 0x6d)) {
      // [H]MSG <subject> <sid> [reply] [<hdr bytes>] <total bytes>
      const headers = c0 === 0x68;
      const args = this.#args;
      args.length = 0;
      let i = s + (headers ? 4 : 3);
      while (i < eol) {
        while (i < eol && buf[i] === SP) i++;
        if (i >= eol) break;
        args.push(i);
        while (i < eol && buf[i] !== SP) i++;
        args.push(i);
      }
      const count = args.length / 2;
      if (count < (headers ? 4 : 3) || count > (headers ? 5 : 4)) {
        throw new NatsProtocolError("bad MSG line");
      }
      const total = this.#number(args[2 * count - 2], args[2 * count - 1]);
      const hdr = headers ? this.#number(args[2 * count - 4], args[2 * count - 3]) : 0;
      const dataStart = eol + 2;
      if (dataStart + total + 2 > end) return 0;
      if (buf[dataStart + total] !== CR || buf[dataStart + total + 1] !== LF) {
        throw new NatsProtocolError("message without CRLF");
      }
      let status = 0;
      if (headers && hdr >= 12) {
        // "NATS/1.0 503 …\r\n": the status code after the version, if any.
        let k = dataStart + 8;
        while (k < dataStart + hdr && buf[k] === SP) k++;
        while (k < dataStart + hdr && buf[k] >= 48 && buf[k] <= 57) {
          status = status * 10 + buf[k++] - 48;
        }
      }
      this.#h.msg(buf, args[0], args[1], status, dataStart + hdr, dataStart + total);
      return dataStart + total + 2 - s;
    }
    const line = String.fromCharCode(...buf.subarray(s, Math.min(eol, s + 8))).toUpperCase();
    if (line.startsWith("PING")) this.#h.ping();
    else if (line.startsWith("PONG") || line.startsWith("+OK")) { /* nothing to do */ }
    else if (line.startsWith("-ERR")) {
      this.#h.error(
        new TextDecoder().decode(buf.subarray(s + 4, eol)).trim().replace(/^'|'$/g, ""),
      );
    } else if (line.startsWith("INFO")) {
      this.#h.info?.(new TextDecoder().decode(buf.subarray(s + 5, eol)));
    } else throw new NatsProtocolError(`unexpected operation ${JSON.stringify(line)}`);
    return eol + 2 - s;
  }

  #number(from: number, to: number): number {
    let v = 0;
    for (let i = from; i < to; i++) {
      const c = this.#buf[i] - 48;
      if (c < 0 || c > 9) throw new NatsProtocolError("bad size");
      v = v * 10 + c;
    }
    return v;
  }
}

// ---------------------------------------------------------------------------------------------
// Acknowledgements.

/** State of one publish in {@linkcode AckTracker.state}. */
export const PENDING = 0, ACKED = 1, FAILED = 2, TOO_LARGE = 3;
const JS_MESSAGE_TOO_LARGE = 10054;
const STREAM_PREFIX = utf8.encode('{"stream":');
const text = new TextDecoder();

/**
 * The acknowledgements of one batch of publishes at a time (reply subjects
 * `<inbox>.<gen>_<index>`): a state byte per publish, counters, and one promise that resolves
 * when every publish is settled (or {@linkcode AckTracker.abandon} is called).
 */
export class AckTracker {
  /** Per publish index: PENDING, ACKED, FAILED or TOO_LARGE. */
  state: Uint8Array = new Uint8Array(0);
  /** The batch generation being tracked. */
  gen = -1;
  /** Publishes of the batch (-1 until {@linkcode AckTracker.issued}). */
  total = -1;
  /** Settled publishes. */
  settled = 0;
  /** Failed publishes. */
  failures = 0;
  /** The first failure's reason. */
  firstError = "";
  /** Some publish got "no responders" (503): no stream captures its subject. */
  noStream = false;
  #done = Promise.withResolvers<void>();
  readonly #prefixLen: number;

  /** A tracker for reply subjects under `inbox` (`<inbox>.<gen>_<i>`). */
  constructor(inbox: string) {
    this.#prefixLen = utf8.encode(inbox).length + 1;
  }

  /** Starts tracking batch `gen` of at most `capacity` publishes. */
  begin(gen: number, capacity: number): void {
    if (this.state.length < capacity) this.state = new Uint8Array(capacity);
    else this.state.fill(PENDING, 0, capacity);
    this.gen = gen;
    this.total = -1;
    this.settled = this.failures = 0;
    this.firstError = "";
    this.noStream = false;
    this.#done = Promise.withResolvers<void>();
  }

  /** Resolves once every publish is settled, or the batch was abandoned. */
  get done(): Promise<void> {
    return this.#done.promise;
  }

  /** All `n` publishes were issued. */
  issued(n: number): void {
    this.total = n;
    if (this.settled >= n) this.#done.resolve();
  }

  /** Stops waiting (connection lost, timeout). */
  abandon(): void {
    this.#done.resolve();
  }

  /** Settles publish `i` (ignored when out of range or already settled). */
  settle(i: number, state: number, error = ""): void {
    if (i < 0 || i >= this.state.length || this.state[i] !== PENDING) return;
    this.state[i] = state;
    if (state === FAILED) {
      this.failures++;
      if (!this.firstError) this.firstError = error;
    }
    this.settled++;
    if (this.settled === this.total) this.#done.resolve();
  }

  /**
   * An acknowledgement arrived on `buf[subjectStart, subjectEnd)` (the reply subject) with
   * header status `status` and payload `buf[dataStart, dataEnd)` (as NatsOpReader reports a
   * message). Answers to another generation are ignored.
   */
  ack(
    buf: Uint8Array,
    subjectStart: number,
    subjectEnd: number,
    status: number,
    dataStart: number,
    dataEnd: number,
  ): void {
    let k = subjectStart + this.#prefixLen, gen = 0, i = 0;
    for (; k < subjectEnd && buf[k] !== 95 /* _ */; k++) gen = gen * 10 + buf[k] - 48;
    if (gen !== this.gen || k >= subjectEnd) return;
    for (k++; k < subjectEnd; k++) i = i * 10 + buf[k] - 48;
    if (status >= 300) {
      if (status === 503) this.noStream = true;
      this.settle(
        i,
        FAILED,
        status === 503 ? "no JetStream stream captures the subject" : `${status}`,
      );
      return;
    }
    let fast = dataEnd - dataStart > STREAM_PREFIX.length;
    for (let j = 0; fast && j < STREAM_PREFIX.length; j++) {
      fast = buf[dataStart + j] === STREAM_PREFIX[j];
    }
    // A success is `{"stream":…,"seq":…[,"duplicate":true]}`; errors lead with "error".
    if (fast) {
      this.settle(i, ACKED);
      return;
    }
    let parsed: { stream?: string; error?: { err_code?: number; description?: string } };
    try {
      parsed = JSON.parse(text.decode(buf.subarray(dataStart, dataEnd)));
    } catch {
      this.settle(i, FAILED, "unreadable acknowledgement");
      return;
    }
    const e = parsed.error;
    if (e) {
      this.settle(
        i,
        e.err_code === JS_MESSAGE_TOO_LARGE ? TOO_LARGE : FAILED,
        `${e.description ?? "error"} (JetStream error ${e.err_code})`,
      );
    } else if (parsed.stream) this.settle(i, ACKED);
    else this.settle(i, FAILED, "invalid acknowledgement");
  }
}

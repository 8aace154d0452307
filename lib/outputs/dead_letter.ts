// Private: the dead-letter file of the network outputs. Events a destination refuses for good
// (an HTTP 4xx other than 429, a NATS message above the server's size limit) are appended here
// as one JSON record per refused batch, and only then acknowledged: the sink reports them to
// its queue as dead-lettered (`SendReport`). When the append fails, the events are dropped —
// logged (rate-limited) and reported as lost — rather than retried: an event the destination
// will never take must not block the events behind it.
import { getLogger } from "../_deps/logtape.ts";
import type { OutputSpec } from "./output_spec.ts";
import { permissionHint, refuseWriteThroughSymlink } from "../_permissions.ts";

/** Default dead-letter file. */
export const DEFAULT_DEAD_LETTER = "/var/lib/vmq-sidecar/dead-letter.ndjson";

/** The dead-letter file of an output whose kind has one (NATS, HTTP); else undefined. */
export function deadLetterPathOf(spec: OutputSpec): string | undefined {
  if (spec.kind !== "nats" && spec.kind !== "http") return undefined;
  const path = spec.options.dead_letter;
  return typeof path === "string" ? path : DEFAULT_DEAD_LETTER;
}

const log = getLogger(["vmq_sidecar", "output"]);
let logged = 0;

/** At most one "events lost" error line per output per this many ms (the rest are counted). */
const LOST_LOG_INTERVAL_MS = 10_000;

/** Why and what a destination refused. */
export interface DeadLetter {
  /** Why, e.g. `HTTP 400 Bad Request` or `message of 2000000 bytes exceeds max_payload`. */
  reason: string;
  /** HTTP status, when there is one. */
  status?: number;
  /** The start of the destination's answer (at most 1 KiB), when there is one. */
  response?: string;
  /** Events in `body`. */
  events: number;
  /** Media type of `body`: `application/x-ndjson` or `application/x-protobuf`. */
  contentType: string;
  /** What was sent: JSON lines (kept as text) or protobuf frames (kept as base64). */
  body: Uint8Array;
  /** The NATS subject or Redis key, when there is one. */
  destination?: string;
}

const utf8 = new TextDecoder();
const enc = new TextEncoder();

/** Appends refused batches of one output to a file. */
export class DeadLetterFile {
  /** The file. */
  readonly path: string;
  readonly #output: string;
  #file: Deno.FsFile | undefined;
  /** When the last "events lost" line was logged, and events lost since that were not. */
  #lostLoggedAt = -Infinity;
  #lostUnlogged = 0;

  /** Dead letters of output `output` go to `path` (opened on first use). */
  constructor(path: string, output: string) {
    this.path = path;
    this.#output = output;
  }

  /** Throws with what to do when this process may not write the file. */
  checkPermission(): void {
    const st = Deno.permissions.querySync({ name: "write", path: this.path });
    if (st.state !== "granted") {
      throw new Error(
        `cannot write the dead-letter file ${this.path}${
          permissionHint(new Deno.errors.NotCapable("Requires write access"), "write", this.path)
        }; or set dead_letter=PATH to a permitted path`,
      );
    }
  }

  /**
   * Appends one record (one line): true once written. False when it could not be: its events
   * are then lost (the caller reports them as such), logged at most once per 10 s per output.
   */
  async appendOrDrop(d: DeadLetter): Promise<boolean> {
    try {
      await this.append(d);
      return true;
    } catch (e) {
      const now = performance.now();
      if (now - this.#lostLoggedAt < LOST_LOG_INTERVAL_MS) {
        this.#lostUnlogged += d.events;
        return false;
      }
      log.error(
        "output {output}: {events} events refused ({reason}) and dropped: {error}{more}",
        {
          output: this.#output,
          events: d.events,
          reason: d.reason,
          error: (e as Error).message,
          more: this.#lostUnlogged > 0
            ? `; ${this.#lostUnlogged} more lost since the last such line`
            : "",
        },
      );
      this.#lostLoggedAt = now;
      this.#lostUnlogged = 0;
      return false;
    }
  }

  /** Appends one record (one line). Rejects when the write fails. */
  async append(d: DeadLetter): Promise<void> {
    const record: Record<string, unknown> = {
      time: new Date().toISOString(),
      output: this.#output,
      reason: d.reason,
    };
    if (d.status !== undefined) record.status = d.status;
    if (d.response !== undefined) record.response = d.response;
    if (d.destination !== undefined) record.destination = d.destination;
    record.events = d.events;
    record.content_type = d.contentType;
    if (d.contentType === "application/x-protobuf") record.body_base64 = d.body.toBase64();
    else record.body = utf8.decode(d.body);
    const line = enc.encode(JSON.stringify(record) + "\n");
    try {
      if (!this.#file) refuseWriteThroughSymlink(this.path);
      this.#file ??= await Deno.open(this.path, { append: true, create: true });
      // One write per record where the OS allows it, so records of outputs sharing the file
      // do not interleave.
      for (let off = 0; off < line.length;) off += await this.#file.write(line.subarray(off));
    } catch (e) {
      this.#file?.close();
      this.#file = undefined;
      throw new Error(
        `cannot append to the dead-letter file ${this.path}: ${(e as Error).message}${
          permissionHint(e, "write", this.path)
        }`,
      );
    }
    if (logged++ < 20) {
      log.error("output {output}: {events} events refused ({reason}); written to {path}{more}", {
        output: this.#output,
        events: d.events,
        reason: d.reason,
        path: this.path,
        more: logged === 20 ? "; further dead letters are only counted" : "",
      });
    }
  }

  /** Closes the file. */
  close(): void {
    this.#file?.close();
    this.#file = undefined;
  }
}

// Private: the dead-letter file of the network outputs. Events a destination refuses for good
// (an HTTP 4xx other than 429, a NATS message above the server's size limit) are returned by
// the sink as refused (`SendResult`); its queue appends them here, one JSON record per refusal,
// and only then acknowledges them. When the append fails, the queue drops the events — logged
// (rate-limited) and counted as lost — rather than retrying: an event the destination will
// never take must not block the events behind it.
import { getLogger } from "../_deps/logtape.ts";
import type { OutputSpec } from "./output_spec.ts";
import type { DeadLetter, DeadLetterWriter } from "./contract.ts";
import { permissionHint, refuseWriteThroughSymlink } from "../_permissions.ts";

export type { DeadLetter } from "./contract.ts";

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

const utf8 = new TextDecoder();
const enc = new TextEncoder();

/** Appends refused batches of one output to a file. */
export class DeadLetterFile implements DeadLetterWriter {
  /** The file. */
  readonly path: string;
  readonly #output: string;
  #file: Deno.FsFile | undefined;

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

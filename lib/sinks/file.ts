/**
 * JSON-lines (or raw frames) to a file with size-based rotation and reopen-on-SIGHUP, and to
 * stdout. Lines are whole: writes happen only at event boundaries from one writer.
 *
 * @module
 */
import { ByteBuffer } from "../byte_buffer.ts";
import { appendBatch, type FormatOptions } from "../format.ts";
import type { FrameBatch, Sink } from "../output.ts";
import { permissionHint } from "../_permissions.ts";

const CHUNK = 256 * 1024;

/** Options of {@linkcode FileSink}. */
export interface FileSinkOptions extends FormatOptions {
  /** File to append to (created when missing). */
  path: string;
  /** Rotate before a write would take the file past this size; 0 = never. */
  rotateBytes: number;
  /** Rotated files kept (`path.1` newest … `path.N`). */
  keep: number;
}

/**
 * Appends events to a file.
 *
 * @example
 * ```ts ignore
 * const sink = await FileSink.open({ path: "/var/log/vmq/events.jsonl", format: "json",
 *   payload: "base64", rotateBytes: 0, keep: 5 });
 * ```
 */
export class FileSink implements Sink {
  /** `file:<path>`. */
  readonly name: string;
  readonly #opts: FileSinkOptions;
  readonly #buf = new ByteBuffer(CHUNK + 64 * 1024);
  #file: Deno.FsFile;
  #size: number;

  private constructor(opts: FileSinkOptions, file: Deno.FsFile, size: number) {
    this.name = `file:${opts.path}`;
    this.#opts = opts;
    this.#file = file;
    this.#size = size;
  }

  /** Opens (creates) the file for appending; throws with an actionable message on failure. */
  static async open(opts: FileSinkOptions): Promise<FileSink> {
    const [file, size] = await openAppend(opts.path);
    return new FileSink(opts, file, size);
  }

  /** Formats the batch and writes it (synchronously, in chunks of at most 256 KiB). */
  send(batch: FrameBatch): Promise<void> {
    appendBatch(this.#buf, batch, this.#opts, this.name, CHUNK, () => this.#flush());
    this.#flush();
    return Promise.resolve();
  }

  #flush(): void {
    const buf = this.#buf;
    if (buf.pos === 0) return;
    const limit = this.#opts.rotateBytes;
    const bytes = buf.bytes();
    let off = 0;
    try {
      while (off < bytes.length) {
        let end = bytes.length;
        if (limit > 0 && this.#size + (end - off) > limit) {
          // Fill the file up to the limit with whole records, then rotate.
          end = this.#recordBoundary(bytes, off, off + (limit - this.#size));
          if (end === off) {
            if (this.#size > 0) {
              this.#rotate();
              continue;
            }
            end = this.#recordBoundary(bytes, off, bytes.length, true); // one oversize record
          }
        }
        while (off < end) {
          const n = this.#file.writeSync(bytes.subarray(off, end));
          off += n;
          this.#size += n;
        }
      }
    } finally {
      // What was written stays written; the rest is retried by the queue with the batch.
      buf.reset();
    }
  }

  /** The last record end in `bytes[from, max]` (or the first one after `from` when `first`). */
  #recordBoundary(bytes: Uint8Array, from: number, max: number, first = false): number {
    if (this.#opts.format === "json") {
      if (first) return bytes.indexOf(0x0a, from) + 1 || bytes.length;
      const nl = bytes.lastIndexOf(0x0a, max - 1);
      return nl >= from ? nl + 1 : from;
    }
    let at = from;
    while (at + 4 <= bytes.length) {
      const next = at + 4 +
        (((bytes[at] << 24) | (bytes[at + 1] << 16) | (bytes[at + 2] << 8) | bytes[at + 3]) >>> 0);
      if (next > max && !(first && at === from)) break;
      at = next;
      if (first) break;
    }
    return at;
  }

  #rotate(): void {
    const { path, keep } = this.#opts;
    this.#file.close();
    for (let i = keep - 1; i >= 1; i--) {
      try {
        Deno.renameSync(`${path}.${i}`, `${path}.${i + 1}`);
      } catch (e) {
        if (!(e instanceof Deno.errors.NotFound)) throw e;
      }
    }
    if (keep >= 1) Deno.renameSync(path, `${path}.1`);
    else Deno.removeSync(path);
    this.#file = Deno.openSync(path, { append: true, create: true });
    this.#size = 0;
  }

  /** Closes and reopens the path (after logrotate moved the file). */
  async reopen(): Promise<void> {
    this.#flush();
    const [file, size] = await openAppend(this.#opts.path);
    this.#file.close();
    this.#file = file;
    this.#size = size;
  }

  /** Flushes and closes the file. */
  close(): Promise<void> {
    this.#flush();
    this.#file.close();
    return Promise.resolve();
  }
}

async function openAppend(path: string): Promise<[Deno.FsFile, number]> {
  try {
    const file = await Deno.open(path, { append: true, create: true });
    const size = (await file.stat()).size;
    return [file, size];
  } catch (e) {
    throw new Error(
      `cannot open output file ${path}: ${(e as Error).message}${permissionHint(e, "write", path)}`,
    );
  }
}

/** Writes events to stdout (asynchronously, so a slow reader applies backpressure). */
export class StdoutSink implements Sink {
  /** `stdout`. */
  readonly name = "stdout";
  readonly #opts: FormatOptions;
  readonly #buf = new ByteBuffer(CHUNK + 64 * 1024);
  #pending: Uint8Array[] = [];

  /** Creates the sink. */
  constructor(opts: FormatOptions) {
    this.#opts = opts;
  }

  /** Formats the batch and writes it. */
  async send(batch: FrameBatch): Promise<void> {
    appendBatch(this.#buf, batch, this.#opts, this.name, CHUNK, () => {
      this.#pending.push(this.#buf.bytes().slice());
      this.#buf.pos = 0;
    });
    if (this.#buf.pos > 0) this.#pending.push(this.#buf.bytes().slice());
    this.#buf.reset();
    const pending = this.#pending;
    this.#pending = [];
    for (const bytes of pending) {
      let off = 0;
      while (off < bytes.length) off += await Deno.stdout.write(bytes.subarray(off));
    }
  }

  /** Nothing to release. */
  close(): Promise<void> {
    return Promise.resolve();
  }
}

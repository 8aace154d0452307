/**
 * JSON-lines (or raw frames) to a file with size-based rotation and reopen-on-SIGHUP, and to
 * stdout. Lines are whole: writes happen only at event boundaries from one writer.
 *
 * @module
 */
import { type FormatOptions, type FrameEncoder, frameEncoder } from "../encoding.ts";
import {
  DELIVERED,
  type EncodingSink,
  type OutputBatch,
  type SendResult,
  type SyncSink,
} from "../contract.ts";
import { permissionHint, refuseWriteThroughSymlink } from "../../_permissions.ts";
import type { OutputFactory } from "../registry.ts";
import type { FileOptions } from "./kind.ts";
import type { StdoutOptions } from "../stdout/kind.ts";
import { readLength } from "../../wire/length_prefix.ts";

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
 * Appends events to a file. An {@linkcode EncodingSink} and {@linkcode SyncSink}: its queue
 * formats events as they arrive and writes batches (≈256 KiB, up to 1 MiB together) as they
 * fill, off the main thread — or synchronously once the disk falls behind (see `SyncSink`).
 *
 * @example
 * ```ts ignore
 * const sink = await FileSink.open({ path: "/var/log/vmq/events.jsonl", format: "json",
 *   payload: "base64", rotateBytes: 0, keep: 5 });
 * ```
 */
export class FileSink implements EncodingSink, SyncSink {
  /** `file:<path>`. */
  readonly name: string;
  /** JSON lines or frames, as configured. */
  readonly encoder: FrameEncoder;
  readonly #opts: FileSinkOptions;
  /** A batch partly written when a write failed, and how far: its retry resumes there. */
  #partial: { batch: OutputBatch; off: number } | undefined;
  #file: Deno.FsFile;
  #size: number;
  /** Rotated files `path.1`…`path.N` known to exist; -1 until the first rotation looks. */
  #rotated = -1;

  private constructor(opts: FileSinkOptions, file: Deno.FsFile, size: number) {
    this.name = `file:${opts.path}`;
    this.encoder = frameEncoder(opts, this.name);
    this.#opts = opts;
    this.#file = file;
    this.#size = size;
  }

  /** Opens (creates) the file for appending; throws with an actionable message on failure. */
  static async open(opts: FileSinkOptions): Promise<FileSink> {
    const [file, size] = await openAppend(opts.path);
    return new FileSink(opts, file, size);
  }

  /**
   * Writes the batch (already encoded by the queue), rotating as needed. The write itself runs
   * off the main thread, so a slow disk does not hold up reading.
   */
  async send(batch: OutputBatch): Promise<SendResult> {
    const bytes = batch.bytes;
    let off = this.#resume(batch);
    try {
      while (off < bytes.length) {
        const end = this.#segmentEnd(bytes, off);
        const file = this.#file;
        while (off < end) {
          const n = await file.write(bytes.subarray(off, end));
          off += n;
          if (file === this.#file) this.#size += n; // not when reopened meanwhile (SIGHUP)
        }
      }
    } catch (e) {
      this.#partial = { batch, off };
      throw e;
    }
    return DELIVERED;
  }

  /** {@linkcode FileSink.send}, synchronously (the queue's path when the disk falls behind). */
  sendSync(batch: OutputBatch): void {
    const bytes = batch.bytes;
    let off = this.#resume(batch);
    try {
      while (off < bytes.length) {
        const end = this.#segmentEnd(bytes, off);
        while (off < end) {
          const n = this.#file.writeSync(bytes.subarray(off, end));
          off += n;
          this.#size += n;
        }
      }
    } catch (e) {
      this.#partial = { batch, off };
      throw e;
    }
  }

  /** Where a batch's write starts: after what a failed attempt already wrote. */
  #resume(batch: OutputBatch): number {
    const off = this.#partial?.batch === batch ? this.#partial.off : 0;
    this.#partial = undefined;
    return off;
  }

  /**
   * The end of the next piece of `bytes` from `off` to write to the current file: all of it,
   * or the whole records that fit under `rotate_bytes` (rotating first when none fit).
   */
  #segmentEnd(bytes: Uint8Array, off: number): number {
    const limit = this.#opts.rotateBytes;
    if (limit === 0 || this.#size + (bytes.length - off) <= limit) return bytes.length;
    const end = this.#recordBoundary(bytes, off, off + (limit - this.#size));
    if (end > off) return end;
    if (this.#size === 0) return this.#recordBoundary(bytes, off, bytes.length, true); // one oversize record
    this.#rotate();
    return this.#segmentEnd(bytes, off);
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
      const next = at + 4 + readLength(bytes, at);
      if (next > max && !(first && at === from)) break;
      at = next;
      if (first) break;
    }
    return at;
  }

  #rotate(): void {
    const { path, keep } = this.#opts;
    this.#file.close();
    // Only the rotated files that exist are shifted (found once, then counted): a rotation
    // costs a few renames, not `keep` failing ones, while the event loop waits.
    if (this.#rotated < 0) {
      this.#rotated = 0;
      while (this.#rotated < keep && exists(`${path}.${this.#rotated + 1}`)) this.#rotated++;
    }
    for (let i = Math.min(this.#rotated, keep - 1); i >= 1; i--) {
      try {
        Deno.renameSync(`${path}.${i}`, `${path}.${i + 1}`);
      } catch (e) {
        if (!(e instanceof Deno.errors.NotFound)) throw e;
      }
    }
    if (keep >= 1) Deno.renameSync(path, `${path}.1`);
    else Deno.removeSync(path);
    this.#rotated = Math.min(this.#rotated + 1, keep);
    refuseWriteThroughSymlink(path); // a link put there since the open: the send fails
    this.#file = Deno.openSync(path, { append: true, create: true });
    this.#size = 0;
  }

  /** Closes and reopens the path (after logrotate moved the file). */
  async reopen(): Promise<void> {
    const [file, size] = await openAppend(this.#opts.path);
    this.#file.close();
    this.#file = file;
    this.#size = size;
    this.#rotated = -1; // logrotate may have moved the rotated files too
  }

  /** Closes the file (every batch was written when its send resolved). */
  close(): Promise<void> {
    this.#file.close();
    return Promise.resolve();
  }
}

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

async function openAppend(path: string): Promise<[Deno.FsFile, number]> {
  try {
    refuseWriteThroughSymlink(path);
    const file = await Deno.open(path, { append: true, create: true });
    const size = (await file.stat()).size;
    return [file, size];
  } catch (e) {
    throw new Error(
      `cannot open output file ${path}: ${(e as Error).message}${permissionHint(e, "write", path)}`,
    );
  }
}

/**
 * Writes events to stdout (asynchronously, so a slow reader applies backpressure). An
 * {@linkcode EncodingSink} like {@linkcode FileSink}.
 */
export class StdoutSink implements EncodingSink {
  /** `stdout`. */
  readonly name = "stdout";
  /** JSON lines or frames, as configured. */
  readonly encoder: FrameEncoder;
  #partial: { batch: OutputBatch; off: number } | undefined;

  /** Creates the sink. */
  constructor(opts: FormatOptions) {
    this.encoder = frameEncoder(opts, this.name);
  }

  /** Writes the batch (already encoded by the queue). */
  async send(batch: OutputBatch): Promise<SendResult> {
    const bytes = batch.bytes;
    let off = this.#partial?.batch === batch ? this.#partial.off : 0;
    this.#partial = undefined;
    try {
      while (off < bytes.length) off += await Deno.stdout.write(bytes.subarray(off));
    } catch (e) {
      this.#partial = { batch, off };
      throw e;
    }
    return DELIVERED;
  }

  /** Nothing to release. */
  close(): Promise<void> {
    return Promise.resolve();
  }
}

/** Longest retry delay of a file output, in ms. */
const FILE_RETRY_MAX_MS = 250;

/** Creates `file:` outputs (loaded by the registry when one is created). */
export const fileFactory: OutputFactory<FileOptions> = {
  async create(spec) {
    const o = spec.options;
    const sink = await FileSink.open({
      path: spec.target,
      format: spec.format,
      payload: spec.payload,
      rotateBytes: o.rotate_bytes,
      keep: o.keep,
    });
    // A failed local write is cheap to retry (one failed write call): at least four times a
    // second, so that writing resumes well within a second of space (or the directory) coming
    // back.
    return { sink, queue: { lingerMs: o.flush_ms, retryMaxMs: FILE_RETRY_MAX_MS } };
  },
};

/** Creates the `stdout` output (loaded by the registry when it is created). */
export const stdoutFactory: OutputFactory<StdoutOptions> = {
  create(spec) {
    return Promise.resolve({
      sink: new StdoutSink({ format: spec.format, payload: spec.payload }),
      queue: { lingerMs: spec.options.flush_ms },
    });
  },
};

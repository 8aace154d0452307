/**
 * The disk journal: one append-only log of frames on disk with a cursor per reader (an output),
 * each event written once however many outputs read it — Kafka's shape. It implements the
 * {@linkcode Buffer} seam; docs/design/journal.md describes the layout, the record format, the
 * recovery rules and how it is wired.
 *
 * Append side: frames are copied into an in-memory block; {@linkcode DiskJournal.seal} writes
 * the block (header + frames, one synchronous write) to the current segment and makes it
 * readable. Recent blocks stay in memory, so cursors that keep up never read the disk.
 *
 * @module
 */
import { getLogger } from "../_deps/logtape.ts";
import type { Buffer, BufferBatch, Cursor, ReadLimits } from "./buffer.ts";
import {
  type BlockChecksum,
  blockChecksum,
  HEADER_BYTES,
  type ScannedBlock,
  scanSegment,
  writeHeader,
} from "./_journal_format.ts";

/** For `decode FILE.seg`: the block header size and the scan that checks a segment's blocks. */
export {
  HEADER_BYTES,
  type ScannedBlock,
  scanSegment,
  type SegmentScan,
} from "./_journal_format.ts";
import { crc32c } from "./_journal_crc32c.ts";
import {
  cursorFileName,
  cursorNameOf,
  decodePosition,
  PositionFile,
} from "./_journal_cursor_file.ts";
import { readLength, writeLength } from "../wire/length_prefix.ts";

/** When written blocks are made durable (`fsync`); see docs/design/journal.md. */
export type FsyncPolicy = "batch" | "interval" | "never";

/** Options of {@linkcode DiskJournal.open}. */
export interface DiskJournalOptions {
  /** Budget of the whole journal in bytes ({@linkcode Buffer.hasRoom}; default 1 GiB). */
  maxBytes?: number;
  /** Default budget of one cursor's backlog (`buffer_bytes`; default `maxBytes`). */
  cursorBytes?: number;
  /** A segment file is closed and a new one started past this size (default 64 MiB). */
  segmentBytes?: number;
  /** Bytes of recent blocks kept in memory for readers that keep up (default 16 MiB). */
  cacheBytes?: number;
  /**
   * `interval` (default): written blocks are fsynced every `fsyncMs`, off the append path;
   * `batch`: a block becomes readable only once fsynced (group commit); `never`: the kernel
   * writes back when it likes. A process crash loses nothing written under any policy.
   */
  fsync?: FsyncPolicy;
  /** The `interval` period in ms (default 500). */
  fsyncMs?: number;
  /** Called for each damage found by {@linkcode DiskJournal.open} (default: logged as an error). */
  onDamage?: (damage: JournalDamage) => void;
  /** Called with the seconds each fsync took (the fsync duration histogram). */
  onFsync?: (seconds: number) => void;
}

/** Damage found while opening a journal; the bytes went to `quarantine` (when any). */
export interface JournalDamage {
  /** The segment file (or, for a missing segment, the one that should have been there). */
  readonly file: string;
  /** Offset of the first damaged byte in `file` (0 for a missing segment). */
  readonly offset: number;
  /** Damaged bytes (0 for a missing segment: unknown). */
  readonly bytes: number;
  /** `torn tail`, `checksum mismatch`, `no block header`, `out of sequence`, `missing segment`. */
  readonly reason: string;
  /** Where the damaged bytes were moved (`""` when none). */
  readonly quarantine: string;
  /** Records known lost: sequence numbers `[lostFrom, lostTo)` (equal when unknown). */
  readonly lostFrom: number;
  /** End of the lost sequence range. */
  readonly lostTo: number;
}

/** The journal's directory cannot be created, written or locked. */
export class JournalDirError extends Error {
  /** The directory. */
  readonly dir: string;
  /** Creates the error for `dir`; `message` says what to do. */
  constructor(dir: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "JournalDirError";
    this.dir = dir;
  }
}

/** Metrics of one cursor (the `vmq_sidecar_buffer_*{output}` series). */
export interface CursorStats {
  /** Bytes this cursor has not acknowledged (its backlog, against its budget). */
  readonly bytes: number;
  /** Records this cursor has not acknowledged. */
  readonly events: number;
  /** Age in seconds of its oldest unacknowledged record (0: none). */
  readonly oldestSeconds: number;
  /** Records acknowledged that were on disk when the journal was opened (replayed). */
  readonly replayed: number;
  /** Records skipped for it because its budget was full ({@linkcode DiskJournal.dropOpen}). */
  readonly dropped: number;
}

/** Journal-wide metrics. */
export interface JournalStats {
  /** Bytes of segment files on disk. */
  readonly diskBytes: number;
  /** Bytes of frames appended since open (length prefixes included). */
  readonly frameBytes: number;
  /** Bytes written to segment files since open (block headers included). */
  readonly writtenBytes: number;
  /** Bytes moved to quarantine at open. */
  readonly quarantinedBytes: number;
  /** Records known lost to damage at open. */
  readonly lostRecords: number;
  /** Records on disk at open, past the oldest saved cursor (to replay). */
  readonly replayRecords: number;
  /** Fsyncs done, and their total seconds. */
  readonly fsyncs: number;
  /** Total seconds spent in fsync. */
  readonly fsyncSeconds: number;
  /** Failed segment writes (the block stays in memory and is written again at the next seal). */
  readonly writeErrors: number;
  /**
   * Bytes of append chunks the journal references: the open one, retired ones still holding
   * cached or unwritten blocks, and the pool — bounded by the cache, not by the backlog.
   */
  readonly memoryBytes: number;
}

interface Segment {
  readonly first: number;
  readonly path: string;
  size: number;
  /** One past the last sequence number it holds. */
  next: number;
  /** The write handle of the current segment (or of a rolled one awaiting its last fsync). */
  file?: Deno.FsFile;
  gone: boolean;
}

interface Block {
  readonly first: number;
  readonly count: number;
  /** Payload bytes (frames with prefixes). */
  readonly length: number;
  readonly wallMs: number;
  readonly eventMs: number;
  /** performance.now() at append (derived from wallMs for replayed blocks). */
  readonly since: number;
  seg: Segment | undefined;
  offset: number;
  /** The payload's checksum (checked when read back from disk). */
  readonly crc: number;
  /** Which checksum `crc` is: `crc32c` for blocks of a journal written by earlier builds. */
  readonly checksum: BlockChecksum;
  /** Failed its checksum (or could not be read) when read back: skipped by every cursor. */
  bad: boolean;
  /** The payload while in memory (cache, or not yet written). */
  payload: Uint8Array | undefined;
  /** Header + payload, kept until written when a write failed. */
  unwritten: Uint8Array | undefined;
}

interface Skip {
  readonly from: number;
  to: number;
}

interface JournalBatch extends BufferBatch {
  readonly block: Block;
  /** Offset just past the batch in the block's payload. */
  readonly end: number;
}

class JournalCursor implements Cursor {
  readonly name: string;
  maxBytes: number;
  acked: number;
  held = 0;
  heldRecords = 0;
  replayed = 0;
  dropped = 0;
  dropping = false;
  skips: Skip[] = [];
  file: PositionFile;
  /** Payloads read back from disk ahead of the cursor (one span of consecutive blocks). */
  ahead: Map<Block, Uint8Array> | undefined;
  wake: (() => void) | undefined;
  constructor(name: string, maxBytes: number, acked: number, file: PositionFile) {
    this.name = name;
    this.maxBytes = maxBytes;
    this.acked = acked;
    this.file = file;
  }
}

const CHUNK_BYTES = 4 << 20;
/** Most bytes a cursor behind the cache reads back in one read (several blocks). */
const READ_SPAN_BYTES = 256 << 10;
const PEEK: ReadLimits = { maxRecords: 1, coalesce: false };
/** Chunks kept for reuse. */
const FREE_CHUNKS = 4;
const log = getLogger(["vmq_sidecar", "journal"]);

function logDamage(d: JournalDamage): void {
  log.error(
    "journal damage in {file} at offset {offset}: {bytes} bytes, {reason}; moved to {quarantine}",
    { ...d },
  );
}

function pad(seq: number): string {
  return String(seq).padStart(20, "0");
}

/** Offset in `p` after skipping `n` frames from `at`. */
function skipFrames(p: Uint8Array, at: number, n: number): number {
  for (let i = 0; i < n; i++) {
    at += 4 + readLength(p, at);
  }
  return at;
}

/**
 * A crash-safe journal of frames in `dir` with a cursor per reader.
 *
 * @example
 * ```ts ignore
 * import { DiskJournal } from "./disk_journal.ts";
 * const j = await DiskJournal.open("/var/lib/vmq-sidecar/journal");
 * const c = j.cursor("nats");
 * j.appendFrame(new Uint8Array([1, 2, 3]), 0, 3);
 * j.seal();
 * const b = j.read(c, { maxRecords: 1000, coalesce: false });
 * if (b) j.ack(c, b);
 * await j.close();
 * ```
 */
export class DiskJournal implements Buffer {
  /** Always `disk`. */
  readonly kind = "disk" as const;
  /** Budget of the whole journal in bytes. */
  readonly maxBytes: number;
  /** The journal directory. */
  readonly dir: string;
  /** The fsync policy. */
  readonly fsync: FsyncPolicy;

  readonly #segmentBytes: number;
  readonly #cacheBytes: number;
  readonly #cursorBytes: number;
  readonly #fsyncMs: number;
  readonly #onFsync: ((seconds: number) => void) | undefined;
  readonly #onDamage: (damage: JournalDamage) => void;
  readonly #lock: Deno.FsFile;
  readonly #cursors = new Map<string, JournalCursor>();
  readonly #saved: Map<string, number>;
  #segments: Segment[] = [];
  #blocks: Block[] = [];
  /** Index of the first live block in #blocks. */
  #base = 0;
  /** Index of the oldest block that may still hold a cached payload. */
  #evictAt = 0;
  #cached = 0;
  #unwrittenBytes = 0;
  #unwritten: Block[] = [];

  // The open block.
  #chunk = new Uint8Array(CHUNK_BYTES);
  #view = new DataView(this.#chunk.buffer);
  /** Sequence number of the first block sealed into `#chunk`. */
  #chunkFirst = 0;
  /** Full chunks whose blocks may still be read: `[first, end)` sealed into `buf`. */
  #retired: { buf: Uint8Array<ArrayBuffer>; first: number; end: number }[] = [];
  #free: Uint8Array<ArrayBuffer>[] = [];
  /** The read handle of the segment last read back synchronously. */
  #reader: { seg: Segment; file: Deno.FsFile } | undefined;
  #openAt = 0;
  #pos = HEADER_BYTES;
  #openRecords = 0;
  #openSince = Infinity;
  #openEventMs = Infinity;

  /** Next sequence number to seal. */
  #head: number;
  readonly #openHead: number;
  /** Readable up to (batch fsync: the durable head). */
  #readable: number;
  #liveBytes = 0;
  #liveRecords = 0;
  #closed = false;
  #timer: ReturnType<typeof setInterval> | undefined;
  #syncing: Promise<void> | undefined;
  #dirty = false;
  #toClose: Deno.FsFile[] = [];
  #writeFailing = false;

  // Stats.
  #frameBytes = 0;
  #writtenBytes = 0;
  #quarantinedBytes = 0;
  #lostRecords = 0;
  #replayRecords = 0;
  #fsyncs = 0;
  #fsyncSeconds = 0;
  #writeErrors = 0;

  private constructor(
    dir: string,
    options: DiskJournalOptions,
    lock: Deno.FsFile,
    saved: Map<string, number>,
    head: number,
  ) {
    this.dir = dir;
    this.maxBytes = options.maxBytes ?? 1024 ** 3;
    this.#cursorBytes = options.cursorBytes ?? this.maxBytes;
    this.#segmentBytes = options.segmentBytes ?? 64 << 20;
    this.#cacheBytes = options.cacheBytes ?? 16 << 20;
    this.fsync = options.fsync ?? "interval";
    this.#fsyncMs = options.fsyncMs ?? 500;
    this.#onFsync = options.onFsync;
    this.#onDamage = options.onDamage ?? logDamage;
    this.#lock = lock;
    this.#saved = saved;
    this.#head =
      this.#openHead =
      this.#readable =
      this.#chunkFirst =
        head;
    if (this.fsync === "interval") {
      const timer = setInterval(() => {
        if (this.#dirty) void this.sync().catch(() => {});
      }, this.#fsyncMs);
      Deno.unrefTimer(timer);
      this.#timer = timer;
    }
  }

  /**
   * Opens (creating) the journal in `dir`: replays every segment from the oldest saved cursor
   * position, moving damaged bytes to `dir/quarantine` (never throws for damage). Throws
   * {@linkcode JournalDirError} when `dir` cannot be created, written or locked.
   */
  static openSync(dir: string, options: DiskJournalOptions = {}): DiskJournal {
    const what = (e: unknown) => (e instanceof Error ? e.message : String(e));
    let lock: Deno.FsFile | undefined;
    try {
      for (const sub of ["segments", "cursors", "quarantine"]) {
        Deno.mkdirSync(`${dir}/${sub}`, { recursive: true });
      }
      lock = Deno.openSync(`${dir}/LOCK`, { read: true, write: true, create: true });
      const probe = `${dir}/segments/.probe`;
      Deno.writeFileSync(probe, new Uint8Array(1));
      Deno.removeSync(probe);
    } catch (e) {
      lock?.close();
      throw new JournalDirError(
        dir,
        `journal directory ${dir} cannot be created or written (${what(e)}): create it and make` +
          ` it writable by the sidecar's user, or set --data-dir to a writable directory`,
        { cause: e },
      );
    }
    let locked = false;
    try {
      locked = lock.tryLockSync(true);
    } catch (e) {
      lock.close();
      throw new JournalDirError(dir, `journal ${dir} cannot be locked (${what(e)})`, { cause: e });
    }
    if (!locked) {
      lock.close();
      throw new JournalDirError(
        dir,
        `journal ${dir} is in use by another process (${dir}/LOCK is locked): stop it, or give` +
          ` each sidecar its own --data-dir`,
      );
    }
    const onDamage = options.onDamage ?? logDamage;

    // Saved cursor positions.
    const saved = new Map<string, number>();
    for (const e of Deno.readDirSync(`${dir}/cursors`)) {
      const name = e.isFile ? cursorNameOf(e.name) : undefined;
      if (name === undefined) continue;
      try {
        const pos = decodePosition(Deno.readFileSync(`${dir}/cursors/${e.name}`));
        if (pos !== undefined) saved.set(name, pos);
      } catch (err) {
        log.error(
          "journal cursor file {file} unreadable ({error}): that output starts at the oldest record",
          {
            file: `${dir}/cursors/${e.name}`,
            error: what(err),
          },
        );
      }
    }
    const oldest = saved.size ? Math.min(...saved.values()) : 0;
    const newest = saved.size ? Math.max(...saved.values()) : 0;

    // Segments (and tombstones of segments deleted out of order).
    const names: { first: number; gone: boolean; name: string }[] = [];
    for (const e of Deno.readDirSync(`${dir}/segments`)) {
      const m = /^(\d{20})\.(seg|gone)$/.exec(e.name);
      if (e.isFile && m) names.push({ first: Number(m[1]), gone: m[2] === "gone", name: e.name });
    }
    names.sort((a, b) => a.first - b.first || (a.gone ? 1 : -1));

    const damage: JournalDamage[] = [];
    let quarantined = 0;
    const segments: Segment[] = [];
    const blocks: ScannedBlock[][] = [];
    let next = -1; // one past the last sequence seen
    for (let i = 0; i < names.length; i++) {
      const n = names[i];
      const path = `${dir}/segments/${n.name}`;
      const upTo = i + 1 < names.length ? names[i + 1].first : Infinity;
      if (n.gone) {
        if (next < n.first) next = n.first;
        next = Math.max(next, Math.min(upTo, newest));
        continue;
      }
      // A whole segment every saved cursor is past (its deletion was not done): delete it.
      if (saved.size && upTo <= oldest) {
        try {
          Deno.removeSync(path);
        } catch { /* deleted at the next ack past it */ }
        next = Math.max(next, n.first);
        continue;
      }
      const tail = damage[damage.length - 1];
      if (next >= 0 && n.first > next && tail?.reason === "torn tail" && tail.lostTo === next) {
        // The records of a torn tail: the next segment's name says how many there were.
        damage[damage.length - 1] = { ...tail, lostTo: n.first };
      } else if (next >= 0 && n.first > next && next >= oldest) {
        damage.push({
          file: `${dir}/segments/${pad(next)}.seg`,
          offset: 0,
          bytes: 0,
          reason: "missing segment",
          quarantine: "",
          lostFrom: next,
          lostTo: n.first,
        });
      }
      let bytes: Uint8Array;
      try {
        bytes = Deno.readFileSync(path);
      } catch (e) {
        damage.push({
          file: path,
          offset: 0,
          bytes: 0,
          reason: `unreadable (${what(e)})`,
          quarantine: "",
          lostFrom: n.first,
          lostTo: n.first,
        });
        continue;
      }
      const scan = scanSegment(bytes, Math.max(next, 0));
      let expect = Math.max(n.first, next);
      let bi = 0;
      let knownTo = -1; // past the records damaged blocks' headers announced
      for (const d of scan.damaged) {
        while (bi < scan.blocks.length && scan.blocks[bi].offset < d.offset) {
          expect = scan.blocks[bi].first + scan.blocks[bi].count;
          bi++;
        }
        // A good header in the damage says how far its records went (a torn tail has no
        // following block to tell); a header past the next good block is not believed.
        const following = bi < scan.blocks.length
          ? scan.blocks[bi].first
          : Math.max(expect, d.lostTo ?? expect);
        if (d.lostTo !== undefined && bi >= scan.blocks.length) {
          knownTo = Math.max(knownTo, d.lostTo);
        }
        const q = `${dir}/quarantine/${n.name}.${d.offset}.bad`;
        let qName = q;
        try {
          Deno.writeFileSync(q, bytes.subarray(d.offset, d.offset + d.length));
        } catch {
          qName = "";
        }
        quarantined += d.length;
        damage.push({
          file: path,
          offset: d.offset,
          bytes: d.length,
          reason: d.reason,
          quarantine: qName,
          lostFrom: expect,
          lostTo: Math.max(expect, following),
        });
      }
      if (scan.damaged.length) {
        // Rewrite the segment with its good blocks only, so the damage is reported once.
        const good = scan.blocks.map((b) =>
          bytes.subarray(b.offset, b.offset + HEADER_BYTES + b.length)
        );
        const total = good.reduce((s, g) => s + g.length, 0);
        const out = new Uint8Array(total);
        let at = 0;
        const fixed: ScannedBlock[] = [];
        for (let k = 0; k < good.length; k++) {
          fixed.push({ ...scan.blocks[k], offset: at });
          out.set(good[k], at);
          at += good[k].length;
        }
        const tmp = `${path}.tmp`;
        try {
          Deno.writeFileSync(tmp, out);
          Deno.renameSync(tmp, path);
          bytes = out;
          scan.blocks.splice(0, scan.blocks.length, ...fixed);
        } catch (e) {
          // Kept as it is (read by the offsets found): reported again at the next open.
          log.error("journal segment {path} not rewritten without its damage: {error}", {
            path,
            error: what(e),
          });
        }
      }
      const last = scan.blocks[scan.blocks.length - 1];
      const segNext = Math.max(
        last ? last.first + last.count : Math.max(n.first, next),
        knownTo,
      );
      segments.push({ first: n.first, path, size: bytes.length, next: segNext, gone: false });
      blocks.push(scan.blocks);
      next = Math.max(next, segNext);
    }
    const head = Math.max(next, newest, 0);
    const journal = new DiskJournal(dir, options, lock, saved, head);
    journal.#adopt(segments, blocks, oldest);
    for (const d of damage) {
      journal.#lostRecords += d.lostTo - d.lostFrom;
      onDamage(d);
    }
    journal.#quarantinedBytes = quarantined;
    try {
      journal.#startSegment();
    } catch (e) {
      journal.#lock.close();
      throw new JournalDirError(
        dir,
        `journal ${dir}: cannot create a segment file (${what(e)}): free space or fix permissions`,
        { cause: e },
      );
    }
    return journal;
  }

  /** {@linkcode DiskJournal.openSync}, as a promise (rejected with the same errors). */
  static open(dir: string, options: DiskJournalOptions = {}): Promise<DiskJournal> {
    try {
      return Promise.resolve(DiskJournal.openSync(dir, options));
    } catch (e) {
      return Promise.reject(e);
    }
  }

  #adopt(segments: Segment[], scanned: ScannedBlock[][], oldest: number): void {
    const nowWall = Date.now();
    const nowPerf = performance.now();
    for (let i = 0; i < segments.length; i++) {
      const seg = segments[i];
      this.#segments.push(seg);
      for (const b of scanned[i]) {
        this.#blocks.push({
          first: b.first,
          count: b.count,
          length: b.length,
          wallMs: b.wallMs,
          eventMs: b.eventMs,
          since: nowPerf - Math.max(0, nowWall - b.wallMs),
          seg,
          offset: b.offset,
          crc: b.crc,
          checksum: b.checksum,
          bad: false,
          payload: undefined,
          unwritten: undefined,
        });
        this.#liveBytes += b.length;
        this.#liveRecords += b.count;
        if (b.first + b.count > oldest) {
          this.#replayRecords += b.first + b.count - Math.max(b.first, oldest);
        }
      }
    }
    this.#evictAt = this.#blocks.length;
  }

  #startSegment(first = this.#head): void {
    const path = `${this.dir}/segments/${pad(first)}.seg`;
    const file = Deno.openSync(path, { write: true, create: true, truncate: true });
    const last = this.#segments[this.#segments.length - 1];
    if (last && last.first === first) this.#segments.pop(); // an empty one, replaced
    this.#segments.push({ first, path, size: 0, next: first, file, gone: false });
  }

  // ── Buffer: append side ────────────────────────────────────────────────────────────────────

  /** Bytes appended and not yet acknowledged by every cursor (the largest cursor backlog). */
  get bytes(): number {
    if (this.#cursors.size === 0) return this.#liveBytes + this.openBytes;
    let most = 0;
    for (const c of this.#cursors.values()) {
      most = Math.max(most, c.held + (c.dropping ? 0 : this.openBytes));
    }
    return most;
  }

  /** Records appended and not yet acknowledged by every cursor (the largest cursor backlog). */
  get records(): number {
    if (this.#cursors.size === 0) return this.#liveRecords + this.#openRecords;
    let most = 0;
    for (const c of this.#cursors.values()) {
      most = Math.max(most, c.heldRecords + (c.dropping ? 0 : this.#openRecords));
    }
    return most;
  }

  /** Records appended since the last seal. */
  get openRecords(): number {
    return this.#openRecords;
  }

  /** Bytes appended since the last seal. */
  get openBytes(): number {
    return this.#pos - this.#openAt - HEADER_BYTES;
  }

  /** `performance.now()` of the first append since the last seal. */
  get openSince(): number {
    return this.#openSince;
  }

  /** Notes the broker time of the read about to be appended. */
  noteEventTime(ms: number): void {
    if (ms < this.#openEventMs) this.#openEventMs = ms;
  }

  /** Whether `bytes` more fit the journal's budget (and unwritten blocks are few). */
  hasRoom(bytes: number): boolean {
    return this.bytes + bytes <= this.maxBytes && this.#unwrittenBytes <= this.#cacheBytes;
  }

  /** Whether `bytes` more fit `c`'s budget (its `buffer_bytes`), so its `on_full` need not apply. */
  hasRoomFor(c: Cursor, bytes: number): boolean {
    const jc = this.#own(c);
    return jc.held + (jc.dropping ? 0 : this.openBytes) + bytes <= jc.maxBytes &&
      this.#unwrittenBytes <= this.#cacheBytes;
  }

  /**
   * Whether the blocks that could not be written (disk full, I/O error) exceed the memory
   * bound (`cacheBytes`): outputs with `on_full=block` pause reading until
   * {@linkcode DiskJournal.retryWrites} gets them written.
   */
  get writesHeld(): boolean {
    return this.#unwrittenBytes > this.#cacheBytes;
  }

  /**
   * Retries writing the blocks held after a failed write (each seal does it too; a paused
   * input seals nothing, so the paused side calls this on a timer). Never throws.
   */
  retryWrites(): void {
    if (this.#unwritten.length && !this.#closed) {
      this.#writeOut();
      this.#evict();
    }
  }

  /**
   * The records of the open block (appended until the next seal) are not for `c`: its budget is
   * full and its policy is `drop`. They are skipped when `c` reads and counted in its `dropped`.
   */
  dropOpen(c: Cursor): void {
    this.#own(c).dropping = true;
  }

  #room(need: number): void {
    if (this.#pos + need <= this.#chunk.length) return;
    const open = this.#pos - this.#openAt;
    const size = Math.max(CHUNK_BYTES, open + need);
    const old = this.#chunk;
    this.#retired.push({ buf: old, first: this.#chunkFirst, end: this.#head });
    this.#recycle();
    const chunk = (size === CHUNK_BYTES ? this.#free.pop() : undefined) ?? new Uint8Array(size);
    chunk.set(old.subarray(this.#openAt, Math.min(this.#pos, old.length)));
    this.#chunk = chunk;
    this.#view = new DataView(chunk.buffer);
    this.#openAt = 0;
    this.#pos = open;
    this.#chunkFirst = this.#head;
  }

  /**
   * Puts retired chunks whose blocks every cursor is done with (and that are written) back in
   * the pool, dropping their cached payloads: no allocation (and no page faults) per chunk.
   */
  #recycle(): void {
    while (this.#retired.length) {
      const r = this.#retired[0];
      if (this.#unwritten.length && this.#unwritten[0].first < r.end) return;
      if (r.end > r.first && !this.#doneByAll(r.first, r.end)) {
        // An output is behind (an outage): once every block of the chunk is written and
        // evicted from the cache, nothing here refers to it — let it go, so the backlog lives
        // on disk, not in memory. Not pooled: batches in flight may still view it (they keep
        // it alive until they are done).
        if (!this.#evictedAll(r.first, r.end)) return;
        this.#retired.shift();
        continue;
      }
      this.#retired.shift();
      for (let i = this.#indexAt(r.first); i < this.#blocks.length; i++) {
        const b = this.#blocks[i];
        if (b.first >= r.end) break;
        if (b.payload === undefined) continue;
        b.payload = undefined;
        this.#cached -= b.length;
      }
      if (r.buf.length === CHUNK_BYTES && this.#free.length < FREE_CHUNKS) this.#free.push(r.buf);
    }
  }

  /** Whether no block in `[from, to)` has its payload cached. */
  #evictedAll(from: number, to: number): boolean {
    for (let i = this.#indexAt(from); i < this.#blocks.length; i++) {
      const b = this.#blocks[i];
      if (b.first >= to) break;
      if (b.payload !== undefined) return false;
    }
    return true;
  }

  /** Appends one frame: a length prefix and `src[start, end)`. */
  appendFrame(src: Uint8Array, start: number, end: number): void {
    const n = end - start;
    this.#room(4 + n);
    const p = this.#pos;
    const c = this.#chunk;
    writeLength(c, p, n);
    c.set(src.subarray(start, end), p + 4);
    this.#pos = p + 4 + n;
    if (this.#openRecords++ === 0) this.#openSince = performance.now();
  }

  /** Appends `count` prefixed frames lying in `src[start, end)`, in one copy. */
  appendRun(src: Uint8Array, start: number, end: number, count: number): void {
    if (count === 0) return;
    this.#room(end - start);
    this.#chunk.set(src.subarray(start, end), this.#pos);
    this.#pos += end - start;
    if (this.#openRecords === 0) this.#openSince = performance.now();
    this.#openRecords += count;
  }

  /** Writes the open block to the current segment (one write) and makes it readable. */
  seal(): void {
    const count = this.#openRecords;
    if (count === 0 || this.#closed) return;
    const at = this.#openAt;
    const length = this.#pos - at - HEADER_BYTES;
    const first = this.#head;
    const wallMs = Date.now();
    writeHeader(this.#chunk, this.#view, at, length, first, count, wallMs, this.#openEventMs);
    const block: Block = {
      first,
      count,
      length,
      wallMs,
      eventMs: this.#openEventMs,
      since: this.#openSince,
      seg: undefined,
      offset: 0,
      crc: this.#view.getUint32(at + 36),
      checksum: "crc32",
      bad: false,
      payload: this.#chunk.subarray(at + HEADER_BYTES, this.#pos),
      unwritten: this.#chunk.subarray(at, this.#pos),
    };
    this.#head = first + count;
    this.#frameBytes += length;
    this.#liveBytes += length;
    this.#liveRecords += count;
    this.#blocks.push(block);
    this.#cached += length;
    this.#unwritten.push(block);
    this.#unwrittenBytes += length;
    this.#writeOut();
    for (const c of this.#cursors.values()) {
      if (c.dropping) {
        c.dropping = false;
        c.dropped += count;
        const last = c.skips[c.skips.length - 1];
        if (last && last.to === first) last.to = first + count;
        else c.skips.push({ from: first, to: first + count });
      } else {
        c.held += length;
        c.heldRecords += count;
      }
    }
    // The next open block.
    this.#openAt = this.#pos;
    this.#pos += HEADER_BYTES;
    if (this.#pos > this.#chunk.length) this.#room(0);
    this.#openRecords = 0;
    this.#openSince = Infinity;
    this.#openEventMs = Infinity;
    this.#evict();
    if (this.fsync === "batch") {
      void this.sync().catch(() => {});
    } else {
      this.#readable = this.#head;
      this.#wakeAll();
    }
  }

  /** Writes unwritten blocks in order; stops (keeping them) at the first failure. */
  #writeOut(): void {
    let i = 0;
    for (; i < this.#unwritten.length; i++) {
      const b = this.#unwritten[i];
      let seg = this.#segments[this.#segments.length - 1];
      const bytes = b.unwritten!;
      if (
        this.#writeFailing || !seg.file ||
        (seg.size > 0 && seg.size + bytes.length > this.#segmentBytes)
      ) {
        // A new segment past the full one, or after a failed write (a fresh file, maybe on a
        // disk that has room again).
        try {
          this.#roll(b.first);
        } catch (e) {
          this.#failed(seg.path, e);
          break;
        }
        seg = this.#segments[this.#segments.length - 1];
      }
      const file = seg.file!;
      let done = 0;
      try {
        while (done < bytes.length) done += file.writeSync(bytes.subarray(done));
      } catch (e) {
        if (done > 0) {
          try {
            file.truncateSync(seg.size);
            file.seekSync(seg.size, Deno.SeekMode.Start);
          } catch { /* the next open quarantines the torn block */ }
        }
        this.#failed(seg.path, e);
        break;
      }
      if (this.#writeFailing) {
        this.#writeFailing = false;
        log.info("journal writes to {path} succeed again", { path: seg.path });
      }
      b.seg = seg;
      b.offset = seg.size;
      b.unwritten = undefined;
      seg.size += bytes.length;
      seg.next = b.first + b.count;
      this.#writtenBytes += bytes.length;
      this.#unwrittenBytes -= b.length;
      this.#dirty = true;
    }
    if (i > 0) this.#unwritten.splice(0, i);
  }

  #failed(path: string, e: unknown): void {
    this.#writeErrors++;
    if (this.#writeFailing) return;
    this.#writeFailing = true;
    log.error(
      "journal write to {path} failed: {error}; holding blocks in memory (up to {bytes} bytes," +
        " then the outputs' on_full applies) and retrying at every seal",
      { path, error: e instanceof Error ? e.message : String(e), bytes: this.#cacheBytes },
    );
  }

  #roll(first: number): void {
    const cur = this.#segments[this.#segments.length - 1];
    if (cur.file) {
      if (this.fsync === "never" || this.#writeFailing) cur.file.close();
      else this.#toClose.push(cur.file);
      cur.file = undefined;
    }
    if (cur.size === 0 && cur.first !== first) {
      this.#segments.pop();
      try {
        Deno.removeSync(cur.path);
      } catch { /* an empty file */ }
    }
    this.#startSegment(first);
  }

  /** Drops cached payloads (oldest first) of written blocks beyond the cache budget. */
  #evict(): void {
    while (this.#cached > this.#cacheBytes && this.#evictAt < this.#blocks.length) {
      const b = this.#blocks[this.#evictAt];
      if (b.unwritten) break;
      if (b.payload) {
        b.payload = undefined;
        this.#cached -= b.length;
      }
      this.#evictAt++;
    }
    if (this.#evictAt < this.#base) this.#evictAt = this.#base;
    if (this.#retired.length) this.#recycle();
  }

  // ── Buffer: read side ──────────────────────────────────────────────────────────────────────

  /** The cursor `name` (its saved position when it has one; else the oldest record kept). */
  cursor(name: string, options: { maxBytes?: number } = {}): Cursor {
    const known = this.#cursors.get(name);
    if (known) {
      if (options.maxBytes !== undefined) known.maxBytes = options.maxBytes;
      return known;
    }
    let at = this.#saved.get(name);
    if (at === undefined) {
      at = this.#cursors.size
        ? Math.min(...[...this.#cursors.values()].map((c) => c.acked))
        : (this.#blocks[this.#base]?.first ?? this.#head);
    }
    const file = new PositionFile(`${this.dir}/cursors/${cursorFileName(name)}`);
    const c = new JournalCursor(name, options.maxBytes ?? this.#cursorBytes, at, file);
    for (let i = this.#base; i < this.#blocks.length; i++) {
      const b = this.#blocks[i];
      if (b.first + b.count <= at) continue;
      if (b.first >= at) {
        c.held += b.length;
        c.heldRecords += b.count;
      } else {
        const p = this.#payload(c, b);
        if (p === undefined) continue;
        c.held += b.length - skipFrames(p, 0, at - b.first);
        c.heldRecords += b.first + b.count - at;
      }
    }
    this.#cursors.set(name, c);
    file.save(at);
    return c;
  }

  /** Names of the cursors with a saved position that no {@linkcode DiskJournal.cursor} claimed yet. */
  get unclaimed(): string[] {
    return [...this.#saved.keys()].filter((n) => !this.#cursors.has(n));
  }

  /**
   * Removes cursor `name` and its saved position (an output no longer configured): the
   * segments only it still needed are deleted.
   */
  forget(name: string): void {
    const c = this.#cursors.get(name);
    c?.file.close();
    this.#cursors.delete(name);
    this.#saved.delete(name);
    try {
      Deno.removeSync(`${this.dir}/cursors/${cursorFileName(name)}`);
    } catch { /* never saved */ }
    this.#collect();
  }

  #own(c: Cursor): JournalCursor {
    const jc = this.#cursors.get(c.name);
    if (jc !== c) throw new Error(`cursor ${c.name} does not belong to journal ${this.dir}`);
    return jc;
  }

  /** Past skip ranges and gaps: the sequence number `c` reads next from `pos`. */
  #normalize(c: JournalCursor, pos: number): number {
    while (c.skips.length && c.skips[0].to <= c.acked) c.skips.shift();
    for (const s of c.skips) {
      if (pos < s.from) break;
      if (pos < s.to) pos = s.to;
    }
    return pos;
  }

  /** Index in `#blocks` of the first block ending after `pos` (binary search). */
  #indexAt(pos: number): number {
    let lo = this.#base;
    let hi = this.#blocks.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const b = this.#blocks[mid];
      if (b.first + b.count <= pos) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** The first live block ending after `pos`. */
  #blockAt(pos: number): Block | undefined {
    let lo = this.#indexAt(pos);
    while (lo < this.#blocks.length && (this.#blocks[lo].bad || this.#blocks[lo].seg?.gone)) lo++;
    return this.#blocks[lo];
  }

  /** The payload of `b` (read back from disk when not in memory); undefined: `b` is bad. */
  #payload(c: JournalCursor, b: Block): Uint8Array | undefined {
    if (b.payload) return b.payload;
    const known = c.ahead?.get(b);
    if (known) return known;
    // Read back: `b` and the blocks written right after it in its segment (not in memory
    // either), up to READ_SPAN_BYTES, in one read — a cursor behind the cache reads on.
    const span: Block[] = [b];
    let end = b.offset + HEADER_BYTES + b.length;
    for (let i = this.#indexOf(b) + 1; i > 0 && i < this.#blocks.length; i++) {
      const n = this.#blocks[i];
      if (n.seg !== b.seg || n.offset !== end || n.payload || n.bad) break;
      if (end + HEADER_BYTES + n.length - b.offset > READ_SPAN_BYTES) break;
      span.push(n);
      end += HEADER_BYTES + n.length;
    }
    let bytes: Uint8Array;
    try {
      bytes = this.#loadSync(b.seg!, b.offset, end - b.offset);
    } catch (e) {
      this.#markBad(b, undefined, `unreadable (${e instanceof Error ? e.message : String(e)})`);
      return undefined;
    }
    const ahead = new Map<Block, Uint8Array>();
    for (const k of span) {
      const at = k.offset - b.offset + HEADER_BYTES;
      if (at + k.length > bytes.length) break; // short read: the rest is read when needed
      const p = bytes.subarray(at, at + k.length);
      if (this.#verified(k, p)) ahead.set(k, p);
      else if (k === b) return undefined;
    }
    c.ahead = ahead;
    return ahead.get(b);
  }

  /** Index of `b` in `#blocks` (-1: gone). */
  #indexOf(b: Block): number {
    const i = this.#indexAt(b.first);
    return this.#blocks[i] === b ? i : -1;
  }

  /** Whether `p`, read back from disk, is `b`'s payload; marks `b` bad when not. */
  #verified(b: Block, p: Uint8Array): boolean {
    if (blockChecksum(b.checksum, p) === b.crc) return true;
    this.#markBad(b, p, "checksum mismatch (read back)");
    return false;
  }

  /**
   * `b` failed when read back while running: its bytes go to quarantine, it is reported and
   * skipped by every cursor (their backlogs no longer count it).
   */
  #markBad(b: Block, bytes: Uint8Array | undefined, reason: string): void {
    if (b.bad) return;
    b.bad = true;
    const seg = b.seg!;
    const name = seg.path.slice(seg.path.lastIndexOf("/") + 1);
    let quarantine = "";
    if (bytes) {
      const q = `${this.dir}/quarantine/${name}.${b.offset}.bad`;
      try {
        Deno.writeFileSync(q, bytes);
        quarantine = q;
      } catch { /* reported without it */ }
    }
    this.#lostRecords += b.count;
    this.#quarantinedBytes += bytes ? bytes.length : 0;
    for (const c of this.#cursors.values()) {
      if (c.acked >= b.first + b.count) continue;
      if (c.skips.some((s) => s.from <= b.first && s.to > b.first)) continue;
      const left = b.first + b.count - Math.max(c.acked, b.first);
      c.heldRecords -= left;
      c.held -= left === b.count ? b.length : Math.round((b.length * left) / b.count);
    }
    this.#onDamage({
      file: seg.path,
      offset: b.offset,
      bytes: HEADER_BYTES + b.length,
      reason,
      quarantine,
      lostFrom: b.first,
      lostTo: b.first + b.count,
    });
  }

  #loadSync(seg: Segment, offset: number, length: number): Uint8Array {
    const p = new Uint8Array(length);
    // One read handle, kept for the segment last read (a cursor behind reads span after
    // span of it: no open/close per read). Sync only: nothing interleaves its seek + read.
    let r = this.#reader;
    if (r?.seg !== seg) {
      this.#closeReader();
      r = this.#reader = { seg, file: Deno.openSync(seg.path, { read: true }) };
    }
    try {
      r.file.seekSync(offset, Deno.SeekMode.Start);
      let done = 0;
      while (done < p.length) {
        const n = r.file.readSync(p.subarray(done));
        if (n === null) break;
        done += n;
      }
    } catch (e) {
      this.#closeReader();
      throw e;
    }
    return p;
  }

  /** Closes the kept read handle ({@linkcode DiskJournal.#loadSync}). */
  #closeReader(seg?: Segment): void {
    const r = this.#reader;
    if (!r || (seg && r.seg !== seg)) return;
    this.#reader = undefined;
    try {
      r.file.close();
    } catch { /* closed */ }
  }

  async #load(b: Block): Promise<Uint8Array> {
    const p = new Uint8Array(b.length);
    const f = await Deno.open(b.seg!.path, { read: true });
    try {
      await f.seek(b.offset + HEADER_BYTES, Deno.SeekMode.Start);
      let done = 0;
      while (done < p.length) {
        const n = await f.read(p.subarray(done));
        if (n === null) break;
        done += n;
      }
    } finally {
      f.close();
    }
    return p;
  }

  /** The first readable records after `after` (or `c`'s acknowledged position), or undefined. */
  read(c: Cursor, limits: ReadLimits, after?: BufferBatch): BufferBatch | undefined {
    const jc = this.#own(c);
    let pos = this.#normalize(jc, after ? after.next : jc.acked);
    if (pos >= this.#readable) return undefined;
    const b = this.#blockAt(pos);
    if (b === undefined || b.first >= this.#readable) return undefined;
    if (pos < b.first) pos = this.#normalize(jc, b.first);
    if (pos >= b.first + b.count) return this.read(c, limits, { next: pos } as BufferBatch);
    const p = this.#payload(jc, b);
    if (p === undefined) return this.read(c, limits, { next: b.first + b.count } as BufferBatch);
    const prev = after as JournalBatch | undefined;
    const start = prev?.block === b && prev.next === pos
      ? prev.end
      : skipFrames(p, 0, pos - b.first);
    let stop = b.first + b.count;
    for (const s of jc.skips) {
      if (s.from > pos) {
        stop = Math.min(stop, s.from);
        break;
      }
    }
    const count = Math.min(limits.maxRecords, stop - pos);
    const end = skipFrames(p, start, count);
    const batch: JournalBatch = {
      bytes: p.subarray(start, end),
      count,
      first: pos,
      next: pos + count,
      since: b.since,
      eventMs: b.eventMs,
      block: b,
      end,
    };
    return batch;
  }

  /** Resolves once {@linkcode DiskJournal.read} may return a batch for `c` (reading it ahead). */
  async readable(c: Cursor): Promise<void> {
    const jc = this.#own(c);
    while (!this.#closed) {
      const pos = this.#normalize(jc, jc.acked);
      if (pos < this.#readable) {
        const b = this.#blockAt(pos);
        if (b && !b.payload && !jc.ahead?.has(b) && b.seg) {
          let p: Uint8Array | undefined;
          try {
            p = await this.#load(b);
          } catch { /* read() tries again synchronously (and reports it) */ }
          if (p && !b.bad) {
            if (!this.#verified(b, p)) continue;
            jc.ahead = new Map([[b, p]]);
          }
        }
        if (this.read(c, PEEK) !== undefined) return;
      }
      await new Promise<void>((resolve) => {
        const prev = jc.wake;
        jc.wake = () => {
          prev?.();
          resolve();
        };
      });
    }
  }

  #wakeAll(): void {
    for (const c of this.#cursors.values()) {
      const w = c.wake;
      if (w) {
        c.wake = undefined;
        w();
      }
    }
  }

  /** `c` is done with `b`: saves its position; deletes segments every cursor is past. */
  ack(c: Cursor, b: BufferBatch): void {
    const jc = this.#own(c);
    const at = this.#normalize(jc, jc.acked);
    if (b.first !== at && !(b.first > at && this.#absent(jc, at, b.first))) {
      throw new Error(
        `journal cursor ${jc.name}: acknowledged records ${b.first}..${b.next} but the next` +
          ` unacknowledged record is ${at} (acknowledgements must be in order)`,
      );
    }
    jc.acked = b.next;
    jc.held -= b.bytes.length;
    jc.heldRecords -= b.count;
    if (b.first < this.#openHead) jc.replayed += Math.min(b.next, this.#openHead) - b.first;
    if (jc.ahead) {
      for (const k of jc.ahead.keys()) if (k.first + k.count <= b.next) jc.ahead.delete(k);
      if (jc.ahead.size === 0) jc.ahead = undefined;
    }
    try {
      jc.file.save(b.next);
    } catch (e) {
      log.warn("journal cursor {name}: position not saved: {error}", {
        name: jc.name,
        error: e instanceof Error ? e.message : String(e),
      });
    }
    this.#collect();
  }

  /** Whether no live record of `c` lies in `[from, to)` (a gap left by damage). */
  #absent(c: JournalCursor, from: number, to: number): boolean {
    const b = this.#blockAt(from);
    return b === undefined || this.#normalize(c, b.first) >= to || b.first >= to;
  }

  /** Whether every cursor is done with sequence numbers `[from, to)`. */
  #doneByAll(from: number, to: number): boolean {
    if (this.#cursors.size === 0) return false;
    // A saved position not claimed yet (its output is not created yet, or retired and not
    // forgotten) keeps what it has not acknowledged.
    for (const [name, at] of this.#saved) if (to > at && !this.#cursors.has(name)) return false;
    for (const c of this.#cursors.values()) {
      if (to <= c.acked) continue;
      let pos = Math.max(from, c.acked);
      for (const s of c.skips) if (s.from <= pos && s.to > pos) pos = s.to;
      if (pos < to) return false;
    }
    return true;
  }

  /** Deletes closed segments every cursor is done with (a tombstone when out of order). */
  #collect(): void {
    let front = true;
    let deleted = false;
    for (let i = 0; i < this.#segments.length - 1; i++) {
      const seg = this.#segments[i];
      if (seg.gone) continue;
      if (!this.#doneByAll(seg.first, seg.next)) {
        front = false;
        continue;
      }
      seg.gone = true;
      deleted = true;
      this.#closeReader(seg);
      try {
        if (!front) Deno.writeFileSync(seg.path.replace(/\.seg$/, ".gone"), new Uint8Array(0));
        Deno.removeSync(seg.path);
      } catch (e) {
        log.warn("journal segment {path} not deleted: {error}", {
          path: seg.path,
          error: e instanceof Error ? e.message : String(e),
        });
      }
    }
    if (!deleted) return;
    // Forget deleted segments (and tombstones) at the front, and their blocks.
    let k = 0;
    while (k < this.#segments.length - 1 && this.#segments[k].gone) {
      Deno.remove(this.#segments[k].path.replace(/\.seg$/, ".gone")).catch(() => {});
      k++;
    }
    if (k > 0) this.#segments.splice(0, k);
    for (let i = this.#base; i < this.#blocks.length; i++) {
      const b = this.#blocks[i];
      if (!b.seg?.gone || b.payload === undefined) continue;
      this.#cached -= b.length;
      b.payload = undefined;
    }
    while (this.#base < this.#blocks.length && this.#blocks[this.#base].seg?.gone) {
      const b = this.#blocks[this.#base++];
      this.#liveBytes -= b.length;
      this.#liveRecords -= b.count;
    }
    if (this.#base > 1024 && this.#base * 2 > this.#blocks.length) {
      this.#blocks.splice(0, this.#base);
      this.#evictAt = Math.max(0, this.#evictAt - this.#base);
      this.#base = 0;
    }
  }

  /** Fsyncs every written block and saved position (one fsync per file touched). */
  sync(): Promise<void> {
    if (this.#syncing) {
      return this.#syncing.then(() => (this.#dirty ? this.sync() : undefined));
    }
    const p = this.#syncNow().finally(() => {
      this.#syncing = undefined;
    });
    this.#syncing = p;
    return p;
  }

  async #syncNow(): Promise<void> {
    const target = this.#unwritten.length ? this.#unwritten[0].first : this.#head;
    this.#dirty = false;
    const files = this.#toClose.splice(0);
    const cur = this.#segments[this.#segments.length - 1]?.file;
    const t = performance.now();
    try {
      for (const f of files) await f.syncData();
      if (cur && !this.#closed) await cur.syncData();
      for (const c of this.#cursors.values()) await c.file.sync();
    } finally {
      for (const f of files) f.close();
      const s = (performance.now() - t) / 1000;
      this.#fsyncs++;
      this.#fsyncSeconds += s;
      this.#onFsync?.(s);
    }
    if (this.fsync === "batch" && target > this.#readable) {
      this.#readable = target;
      this.#wakeAll();
    }
  }

  /** Syncs, closes every file and releases the lock (unacknowledged records stay on disk). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.seal();
    if (this.#unwritten.length) this.#writeOut();
    if (this.#unwritten.length) {
      const lost = this.#unwritten.reduce((n, b) => n + b.count, 0);
      log.error("journal {dir} closed with {lost} records that could not be written (disk full?)", {
        dir: this.dir,
        lost,
      });
    }
    if (this.#timer !== undefined) clearInterval(this.#timer);
    try {
      await this.sync();
    } catch { /* closing anyway */ }
    this.#closed = true;
    this.#wakeAll();
    for (const s of this.#segments) {
      s.file?.close();
      s.file = undefined;
    }
    this.#closeReader();
    for (const c of this.#cursors.values()) c.file.close();
    this.#lock.close();
  }

  // ── Metrics ────────────────────────────────────────────────────────────────────────────────

  /** Metrics of cursor `c`. */
  cursorStats(c: Cursor): CursorStats {
    const jc = this.#own(c);
    const pos = this.#normalize(jc, jc.acked);
    const b = pos < this.#head ? this.#blockAt(pos) : undefined;
    const openFor = jc.dropping ? 0 : this.#openRecords;
    const oldestWall = b
      ? b.wallMs
      : openFor
      ? Date.now() - (performance.now() - this.#openSince)
      : 0;
    return {
      bytes: jc.held + (jc.dropping ? 0 : this.openBytes),
      events: jc.heldRecords + openFor,
      oldestSeconds: oldestWall ? Math.max(0, (Date.now() - oldestWall) / 1000) : 0,
      replayed: jc.replayed,
      dropped: jc.dropped,
    };
  }

  /** Sequence number of the first record appended since open: records below it are replayed. */
  get replayHead(): number {
    return this.#openHead;
  }

  /** Journal-wide metrics. */
  get stats(): JournalStats {
    let disk = 0;
    for (const s of this.#segments) if (!s.gone) disk += s.size;
    return {
      diskBytes: disk,
      frameBytes: this.#frameBytes,
      writtenBytes: this.#writtenBytes,
      quarantinedBytes: this.#quarantinedBytes,
      lostRecords: this.#lostRecords,
      replayRecords: this.#replayRecords,
      fsyncs: this.#fsyncs,
      fsyncSeconds: this.#fsyncSeconds,
      writeErrors: this.#writeErrors,
      memoryBytes: this.#chunk.length + this.#retired.reduce((n, r) => n + r.buf.length, 0) +
        this.#free.reduce((n, b) => n + b.length, 0),
    };
  }
}

/** CRC-32C of `buf[start, end)` (exported for `decode` of a segment and for tests). */
export { crc32c };
export type { Buffer, BufferBatch, Cursor, ReadLimits } from "./buffer.ts";
export type { OutputBatch } from "../outputs/contract.ts";

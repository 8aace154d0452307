/**
 * The disk journal's record format and the scan that recovers a segment (see
 * docs/design/journal.md): a segment file is a run of blocks, one per sealed batch,
 *
 * ```
 * 0  u32 magic "VMQk"        4  u32 payload length    8  u64 first sequence number
 * 16 u32 record count       20  f64 wall ms (append)  28  f64 event ms (broker; Infinity)
 * 36 u32 CRC-32 of payload  40  u32 CRC-32 of bytes 0..40
 * 44 payload: `count` frames [u32 big-endian length][Any bytes]
 * ```
 *
 * CRC-32 is IEEE 802.3's (zlib's, `node:zlib` `crc32`: native, ~10 GB/s). Journals written by
 * earlier builds have the magic "VMQj" and CRC-32C (Castagnoli, in JavaScript, ~1 GB/s) in the same
 * places: they are read and replayed as before, never written.
 *
 * @module
 */
import { crc32 } from "node:zlib";
import { crc32c } from "./_journal_crc32c.ts";
import { readLength } from "../wire/length_prefix.ts";

/** Block header size in bytes. */
export const HEADER_BYTES = 44;
/** "VMQk", big-endian: a block checksummed with CRC-32 (what the journal writes). */
export const BLOCK_MAGIC = 0x564d516b;
/** "VMQj", big-endian: a block of a journal from an earlier build, checksummed with CRC-32C. */
export const BLOCK_MAGIC_CRC32C = 0x564d516a;

/** Which checksum a block carries: `crc32` (written now) or `crc32c` (read from old journals). */
export type BlockChecksum = "crc32" | "crc32c";

/** CRC-32 (IEEE, zlib's) of `buf[start, end)`, computed natively. */
export function blockCrc32(buf: Uint8Array, start = 0, end = buf.length): number {
  return crc32(buf.subarray(start, end)) >>> 0;
}

/** The checksum `kind` of `buf[start, end)`. */
export function blockChecksum(
  kind: BlockChecksum,
  buf: Uint8Array,
  start = 0,
  end = buf.length,
): number {
  return kind === "crc32" ? blockCrc32(buf, start, end) : crc32c(buf, start, end);
}
/** Largest payload a header may announce (a longer one is damage). */
export const MAX_BLOCK_PAYLOAD = 1 << 30;

/** What a block header says. */
export interface BlockHeader {
  /** Payload length in bytes. */
  readonly length: number;
  /** Sequence number of the first record. */
  readonly first: number;
  /** Records in the payload. */
  readonly count: number;
  /** `Date.now()` at append. */
  readonly wallMs: number;
  /** Broker time of the block's oldest read's first event (Infinity: unknown). */
  readonly eventMs: number;
  /** The payload's checksum. */
  readonly crc: number;
  /** Which checksum `crc` is (the block's magic says). */
  readonly checksum: BlockChecksum;
}

/** Writes the header of the payload `buf[at + HEADER_BYTES, at + HEADER_BYTES + length)`. */
export function writeHeader(
  buf: Uint8Array,
  view: DataView,
  at: number,
  length: number,
  first: number,
  count: number,
  wallMs: number,
  eventMs: number,
): void {
  const p = at + HEADER_BYTES;
  view.setUint32(at, BLOCK_MAGIC);
  view.setUint32(at + 4, length);
  view.setUint32(at + 8, Math.floor(first / 0x1_0000_0000));
  view.setUint32(at + 12, first >>> 0);
  view.setUint32(at + 16, count);
  view.setFloat64(at + 20, wallMs);
  view.setFloat64(at + 28, eventMs);
  view.setUint32(at + 36, blockCrc32(buf, p, p + length));
  view.setUint32(at + 40, blockCrc32(buf, at, at + 40));
}

/** The header at `buf[at…]` when its magic and CRC hold and it fits `buf`'s length field rules. */
export function readHeader(buf: Uint8Array, view: DataView, at: number): BlockHeader | undefined {
  if (buf.length - at < HEADER_BYTES) return undefined;
  const magic = view.getUint32(at);
  const checksum: BlockChecksum | undefined = magic === BLOCK_MAGIC
    ? "crc32"
    : magic === BLOCK_MAGIC_CRC32C
    ? "crc32c"
    : undefined;
  if (checksum === undefined) return undefined;
  if (view.getUint32(at + 40) !== blockChecksum(checksum, buf, at, at + 40)) return undefined;
  const length = view.getUint32(at + 4);
  if (length > MAX_BLOCK_PAYLOAD) return undefined;
  return {
    length,
    first: view.getUint32(at + 8) * 0x1_0000_0000 + view.getUint32(at + 12),
    count: view.getUint32(at + 16),
    wallMs: view.getFloat64(at + 20),
    eventMs: view.getFloat64(at + 28),
    crc: view.getUint32(at + 36),
    checksum,
  };
}

/** Whether `buf[start, end)` is exactly `count` length-prefixed frames. */
export function framesFit(buf: Uint8Array, start: number, end: number, count: number): boolean {
  let p = start;
  for (let i = 0; i < count; i++) {
    if (end - p < 4) return false;
    p += 4 + readLength(buf, p);
    if (p > end) return false;
  }
  return p === end;
}

/** A good block found by {@linkcode scanSegment}. */
export interface ScannedBlock extends BlockHeader {
  /** Offset of its header in the scanned bytes. */
  readonly offset: number;
}

/** Bytes of a segment that are not a good block. */
export interface DamagedRange {
  /** Offset of the first damaged byte. */
  readonly offset: number;
  /** Bytes damaged. */
  readonly length: number;
  /** Why: `torn tail`, `checksum mismatch`, `no block header`, `out of sequence`. */
  readonly reason: string;
  /**
   * One past the last record the range is known to have held: a good header's `first + count`
   * (a torn payload, a checksum mismatch); undefined when no header in it could be read.
   */
  readonly lostTo?: number;
}

/** The outcome of {@linkcode scanSegment}. */
export interface SegmentScan {
  /** Good blocks, in file order, each with a sequence past the one before. */
  readonly blocks: ScannedBlock[];
  /** Damaged ranges, in file order (adjacent ones merged). */
  readonly damaged: DamagedRange[];
}

/**
 * Reads a whole segment: keeps every block whose header and payload checksums hold (and whose
 * sequence follows the previous block's), and reports everything else as damaged ranges —
 * a torn tail, a block whose payload fails its checksum (skipped by its trusted length), and
 * unrecognizable bytes (skipped up to the next valid header). Never throws.
 */
export function scanSegment(buf: Uint8Array, after = -1): SegmentScan {
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const blocks: ScannedBlock[] = [];
  const damaged: DamagedRange[] = [];
  const bad = (offset: number, length: number, reason: string, lostTo?: number) => {
    const last = damaged[damaged.length - 1];
    if (last && last.offset + last.length === offset) {
      const known = Math.max(last.lostTo ?? -1, lostTo ?? -1);
      damaged[damaged.length - 1] = {
        offset: last.offset,
        length: last.length + length,
        reason: last.reason,
        ...(known >= 0 ? { lostTo: known } : {}),
      };
    } else damaged.push({ offset, length, reason, ...(lostTo !== undefined ? { lostTo } : {}) });
  };
  let next = after; // the first sequence number a following block may start at
  let at = 0;
  while (at < buf.length) {
    const h = readHeader(buf, view, at);
    if (h === undefined) {
      // Unrecognizable: resynchronize at the next valid header, if any.
      let q = at + 1;
      while (q <= buf.length - HEADER_BYTES) {
        if (
          buf[q] === 0x56 && buf[q + 1] === 0x4d && buf[q + 2] === 0x51 &&
          readHeader(buf, view, q)
        ) break;
        q++;
      }
      if (q > buf.length - HEADER_BYTES) q = buf.length;
      bad(
        at,
        q - at,
        q === buf.length && buf.length - at < HEADER_BYTES ? "torn tail" : "no block header",
      );
      at = q;
      continue;
    }
    const p = at + HEADER_BYTES;
    const end = p + h.length;
    if (end > buf.length) {
      bad(at, buf.length - at, "torn tail", h.first + h.count);
      break;
    }
    if (blockChecksum(h.checksum, buf, p, end) !== h.crc || !framesFit(buf, p, end, h.count)) {
      bad(at, end - at, "checksum mismatch", h.first + h.count);
    } else if (h.first < next) {
      bad(at, end - at, "out of sequence");
    } else {
      blocks.push({ ...h, offset: at });
      next = h.first + h.count;
    }
    at = end;
  }
  return { blocks, damaged };
}

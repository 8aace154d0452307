/**
 * A cursor's saved position: a 48-byte file of two 24-byte slots written alternately in place
 * (`[u32 magic "VMQc"][u32 generation][u64 position][u32 reserved][u32 CRC-32C of 0..20]`), so a
 * torn write leaves the other slot good. One `pwrite`-sized write per acknowledgement; synced
 * with the journal's fsync policy.
 *
 * @module
 */
import { crc32c } from "./_journal_crc32c.ts";

const SLOT = 24;
const MAGIC = 0x564d5163;

/** The file name a cursor's position is kept under (`.pos`; names longer than 180 are hashed). */
export function cursorFileName(name: string): string {
  let enc = encodeURIComponent(name).replaceAll("*", "%2A");
  if (enc.length > 180) {
    let h = 0x811c9dc5;
    for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193);
    enc = enc.slice(0, 160) + "~" + (h >>> 0).toString(16);
  }
  return enc + ".pos";
}

/** The cursor name a position file stands for (undefined: not a position file). */
export function cursorNameOf(fileName: string): string | undefined {
  if (!fileName.endsWith(".pos") || fileName.includes("~")) return undefined;
  try {
    return decodeURIComponent(fileName.slice(0, -4));
  } catch {
    return undefined;
  }
}

/** Decodes a position file's bytes: the position of its newest good slot, or undefined. */
export function decodePosition(bytes: Uint8Array): number | undefined {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let best: number | undefined;
  let bestGen = -1;
  for (let at = 0; at + SLOT <= bytes.length && at < 2 * SLOT; at += SLOT) {
    if (view.getUint32(at) !== MAGIC) continue;
    if (view.getUint32(at + 20) !== crc32c(bytes, at, at + 20)) continue;
    const gen = view.getUint32(at + 4);
    if (gen > bestGen) {
      bestGen = gen;
      best = view.getUint32(at + 8) * 0x1_0000_0000 + view.getUint32(at + 12);
    }
  }
  return best;
}

/** An open position file: {@linkcode PositionFile.save} writes one slot, synchronously. */
export class PositionFile {
  readonly #file: Deno.FsFile;
  readonly #slot = new Uint8Array(SLOT);
  readonly #view = new DataView(this.#slot.buffer);
  #gen = 0;
  /** Saved since the last {@linkcode PositionFile.sync}. */
  dirty = false;

  /** Opens (creating) the file at `path`. */
  constructor(path: string) {
    this.#file = Deno.openSync(path, { read: true, write: true, create: true });
    // Continue the generations already in the file, so the newest slot stays the newest.
    const old = new Uint8Array(2 * SLOT);
    let got = 0;
    while (got < old.length) {
      const n = this.#file.readSync(old.subarray(got));
      if (n === null || n === 0) break;
      got += n;
    }
    const view = new DataView(old.buffer);
    for (let at = 0; at + SLOT <= got; at += SLOT) {
      if (view.getUint32(at) === MAGIC && view.getUint32(at + 20) === crc32c(old, at, at + 20)) {
        this.#gen = Math.max(this.#gen, view.getUint32(at + 4));
      }
    }
  }

  /** Writes `position` into the older slot (page cache; durable after {@linkcode sync}). */
  save(position: number): void {
    const v = this.#view;
    this.#gen = (this.#gen + 1) >>> 0;
    v.setUint32(0, MAGIC);
    v.setUint32(4, this.#gen);
    v.setUint32(8, Math.floor(position / 0x1_0000_0000));
    v.setUint32(12, position >>> 0);
    v.setUint32(16, 0);
    v.setUint32(20, crc32c(this.#slot, 0, 20));
    this.#file.seekSync((this.#gen & 1) * SLOT, Deno.SeekMode.Start);
    let done = 0;
    while (done < SLOT) done += this.#file.writeSync(this.#slot.subarray(done));
    this.dirty = true;
  }

  /** Makes the saved position durable. */
  async sync(): Promise<void> {
    if (!this.dirty) return;
    this.dirty = false;
    await this.#file.syncData();
  }

  /** Closes the file. */
  close(): void {
    this.#file.close();
  }
}

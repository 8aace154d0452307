// DiskJournal (lib/pipeline/disk_journal.ts) against the Buffer conformance suite
// (tests/_buffer_conformance.ts), as a shared journal (several cursors): with the default cache
// (readers that keep up read memory) and with a tiny cache and small segments (reads come back
// from disk, segments roll over and are deleted while the cases run).
import { bufferConformance } from "./_buffer_conformance.ts";
import { DiskJournal, type DiskJournalOptions } from "../lib/internal.ts";

/** A journal in a fresh temporary directory, removed when the journal is closed. */
function makeJournal(options: DiskJournalOptions) {
  return async (maxBytes: number) => {
    const dir = await Deno.makeTempDir({ prefix: "journal_conformance_" });
    const j = await DiskJournal.open(`${dir}/journal`, { fsync: "never", ...options, maxBytes });
    const close = j.close.bind(j);
    j.close = async () => {
      await close();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    };
    return j;
  };
}

bufferConformance("disk journal, 16 MiB cache", makeJournal({}), { multiCursor: true });
bufferConformance(
  "disk journal, 64 KiB cache, 256 KiB segments",
  makeJournal({ cacheBytes: 64 * 1024, segmentBytes: 256 * 1024 }),
  { multiCursor: true },
);

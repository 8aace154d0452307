/**
 * What `Sidecar.start({ handlers })` adds to the pipeline: one output per handler (its hooks,
 * topic filter and buffer budget) whose delivery is a {@linkcode HandlerDelivery}.
 *
 * @module
 */
import type { Buffer } from "../pipeline/buffer.ts";
import { DiskJournal, type FsyncPolicy } from "../pipeline/disk_journal.ts";
import type { DeliveryFactory } from "../pipeline/delivery.ts";
import type { OutputConfig } from "../pipeline/router.ts";
import { topicFilter } from "../pipeline/topic_filter.ts";
import { DeadLetterFile, DEFAULT_DEAD_LETTER } from "../outputs/dead_letter.ts";
import { deliveryOf } from "../outputs/local/local_delivery.ts";
import type { Handler } from "../handlers/handler.ts";
import {
  HANDLER_BUFFER_BYTES,
  HandlerDelivery,
  HandlerSink,
} from "../handlers/handler_delivery.ts";

/** Makes the buffer of a handler output (default: a memory buffer of its `bufferBytes`). */
export type HandlerBufferFactory = (name: string, maxBytes: number) => Buffer;

/**
 * Where handlers keep what they were given and have not settled: `"disk"` (the default of
 * `Sidecar.start`), a disk journal per handler under `<data_dir>/handlers/` (at-least-once
 * across crashes and restarts); `"memory"`, a memory buffer (lost on a crash); or a factory.
 */
export type HandlerBuffer = "disk" | "memory" | HandlerBufferFactory;

/**
 * The directory of handler `name`'s journal below `<data_dir>/handlers/`: the name with every
 * character but letters, digits, `-` and `_` percent-encoded (distinct names, distinct
 * directories).
 */
export function handlerJournalDir(dataDir: string, name: string): string {
  const safe = [...new TextEncoder().encode(name)].map((b) =>
    /[A-Za-z0-9_-]/.test(String.fromCharCode(b))
      ? String.fromCharCode(b)
      : `%${b.toString(16).toUpperCase().padStart(2, "0")}`
  ).join("");
  return `${dataDir}/handlers/${safe}`;
}

/**
 * Opens (and recovers) one disk journal per handler in `dataDir`; closes the ones opened when
 * one fails, and throws its {@linkcode JournalDirError}. Each journal is closed by its
 * handler's delivery.
 */
export function openHandlerJournals(
  handlers: readonly Handler[],
  dataDir: string,
  fsync: { fsync?: FsyncPolicy; fsyncMs?: number },
): Map<string, DiskJournal> {
  const journals = new Map<string, DiskJournal>();
  try {
    for (const h of handlers) {
      const name = h.spec.name;
      if (journals.has(name)) continue; // a name used twice fails in handlerOutputs
      journals.set(
        name,
        // The journal's own defaults (interval, 500 ms) apply to what is not set.
        DiskJournal.openSync(handlerJournalDir(dataDir, name), {
          fsync: fsync.fsync,
          fsyncMs: fsync.fsyncMs,
        }),
      );
    }
  } catch (e) {
    for (const j of journals.values()) j.close().catch(() => {});
    throw e;
  }
  return journals;
}

/** One pipeline output per handler; throws a TypeError for a name used twice. */
export function handlerOutputs(
  handlers: readonly Handler[],
  taken: readonly string[] = [],
): OutputConfig[] {
  const names = new Set(taken);
  return handlers.map((h) => {
    const spec = h.spec;
    if (names.has(spec.name)) {
      throw new TypeError(`handler name ${JSON.stringify(spec.name)} is used twice`);
    }
    names.add(spec.name);
    const sink = new HandlerSink(
      h,
      new DeadLetterFile(spec.deadLetter ?? DEFAULT_DEAD_LETTER, spec.name),
    );
    return {
      sink,
      hooks: new Set(h.hooks),
      filter: spec.topics ? topicFilter(spec.topics) : undefined,
      queue: { maxBytes: spec.bufferBytes ?? HANDLER_BUFFER_BYTES, onFull: "block" },
    };
  });
}

/** {@linkcode deliveryOf}, with a {@linkcode HandlerDelivery} for handler outputs. */
export function deliveryWithHandlers(buffer?: HandlerBufferFactory): DeliveryFactory {
  return (sink, options) => {
    if (!(sink instanceof HandlerSink)) return deliveryOf(sink, options);
    const maxBytes = options.maxBytes ?? HANDLER_BUFFER_BYTES;
    return new HandlerDelivery(sink, options, buffer?.(sink.name, maxBytes));
  };
}

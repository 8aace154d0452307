/**
 * The `file:PATH` output kind: JSON lines (or frames) appended to a file, with size-based
 * rotation.
 *
 * @module
 */
import { ConfigError } from "../../errors.ts";
import type { OutputKindDescriptor } from "../registry.ts";
import { intOption, type OrderOptions, orderSchema, sizeOption } from "../options.ts";

/** Options of a file output. */
export interface FileOptions extends OrderOptions {
  /** Rotate before a write would take the file past this size; 0 = never. */
  rotate_bytes: number;
  /** Rotated files kept. */
  keep: number;
  /** How long a partial batch may wait before it is written, in ms. */
  flush_ms: number;
}

/** The file output kind. */
export const fileKind: OutputKindDescriptor<FileOptions> = {
  kind: "file",
  // file:///x and file:/x both mean /x.
  match: (base) => base.startsWith("file:") ? base.slice(5).replace(/^\/\/(?=\/)/, "") : undefined,
  local: true,
  example: "file:/var/log/vmq-sidecar/events.jsonl",
  options: {
    rotate_bytes: {
      parse: sizeOption(),
      default: (g) => g.rotateBytes,
      help: "rotate before the file would pass this size; 0 = never",
    },
    keep: { parse: intOption(0, 1000), default: (g) => g.rotateKeep, help: "rotated files kept" },
    flush_ms: { parse: intOption(0, 60_000), default: 10, help: "write delay of a partial batch" },
    ...orderSchema(),
  },
  check(target, _o, key) {
    if (!target) {
      throw new ConfigError(key, "file: needs a path, e.g. file:/var/log/vmq-sidecar/events.jsonl");
    }
  },
  load: () => import("./sink.ts").then((m) => m.fileFactory),
};

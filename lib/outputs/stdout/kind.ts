/**
 * The `stdout` output kind (`stdout` or `-`): JSON lines (or frames) on standard output.
 *
 * @module
 */
import type { OutputKindDescriptor } from "../registry.ts";
import { intOption, type OrderOptions, orderSchema } from "../options.ts";

/** Options of a stdout output. */
export interface StdoutOptions extends OrderOptions {
  /** How long a partial batch may wait before it is written, in ms. */
  flush_ms: number;
}

/** The stdout output kind. */
export const stdoutKind: OutputKindDescriptor<StdoutOptions> = {
  kind: "stdout",
  match: (base) => base === "stdout" || base === "-" ? "stdout" : undefined,
  local: true,
  example: "stdout",
  options: {
    flush_ms: { parse: intOption(0, 60_000), default: 10, help: "write delay of a partial batch" },
    ...orderSchema(),
  },
  load: () => import("../file/sink.ts").then((m) => m.stdoutFactory),
};

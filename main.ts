/**
 * vmq-sidecar entry point: `deno task start [flags]` or the compiled binary. See `--help`.
 *
 * @module
 */
import { main } from "./lib/app/main.ts";

if (import.meta.main) Deno.exit(await main(Deno.args));

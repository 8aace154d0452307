/**
 * `vmq-sidecar send`: plays the vmq_events_sidecar plugin — connects to a sidecar and writes
 * frames as the plugin does (4-byte big-endian length + protobuf Any, over N connections): the
 * conformance vectors baked into the binary (the sample events, one of every hook and the edge
 * cases), or a frames file (a `format=protobuf` output file or a capture). For a first run
 * ("start it, send it the sample events, see the JSON") and for load tests.
 * Exit status: 0 when everything was written, 1 when the sidecar cannot be reached (or the
 * file read), 2 for bad flags.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { DEFAULTS } from "../config.ts";
import { parseHostPort, parseIntIn } from "../../parse.ts";
import { ConfigError } from "../../errors.ts";
import {
  type ChunkSource,
  countFileFrames,
  countFrames,
  FileSource,
  MemorySource,
  runLoad,
} from "./_load.ts";
import { permissionHint } from "../../_permissions.ts";
import { VECTOR_FRAMES_BASE64 } from "./_vectors_generated.ts";

/** Usage of the send subcommand. */
export const SEND_USAGE = `Usage: vmq-sidecar send [--vectors | FILE] [flags]

Plays the broker's vmq_events_sidecar plugin: connects to a running sidecar and writes events
as the plugin does. Without FILE (or with --vectors): the conformance vectors built into this
binary — 150 frames: every hook with typical and edge-case values, and one empty frame
(which the sidecar counts, not writes). With FILE: the frames in FILE (4-byte big-endian length + protobuf Any, repeated;
e.g. a format=protobuf output file).

  --to HOST:PORT            the sidecar (default ${DEFAULTS.listen})
  --conns N                 connections, events spread over them (default 1: in order)
  --rate N                  events per second over all connections (default 0: at once)
  --events N                events to send, cycling through the frames (default: one pass)
  -h, --help                this text

Exit status: 0 sent, 1 cannot connect or read FILE, 2 bad flags.`;

const FLAGS = {
  to: { type: "string" },
  conns: { type: "string" },
  rate: { type: "string" },
  events: { type: "string" },
  vectors: { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const;

/** The sample frames of {@linkcode SEND_USAGE}: the conformance vectors, concatenated. */
export function vectorFrames(): Uint8Array {
  return Uint8Array.fromBase64(VECTOR_FRAMES_BASE64);
}

/** Runs `send` with `args`; resolves to the exit code. */
export async function runSend(args: string[]): Promise<number> {
  let to, conns, rate, events, file: string | undefined;
  try {
    let parsed;
    try {
      // `--rate -1` is the flag's value, refused below with the flag's own message.
      const joined: string[] = [];
      for (let i = 0; i < args.length; i++) {
        const a = args[i], next = args[i + 1];
        if (/^--(to|conns|rate|events)$/.test(a) && next !== undefined && /^-[^-]/.test(next)) {
          joined.push(`${a}=${next}`);
          i++;
        } else joined.push(a);
      }
      parsed = parseArgs({ args: joined, options: FLAGS, strict: true, allowPositionals: true });
    } catch (e) {
      const msg = (e as Error).message.replace(/\. To specify a positional.*$/s, "");
      throw new ConfigError(/'(-[^' ]+)/.exec(msg)?.[1] ?? "send", msg);
    }
    const { values, positionals } = parsed;
    if (values.help) {
      console.log(SEND_USAGE);
      return 0;
    }
    if (positionals.length > 1 || (positionals.length === 1 && values.vectors)) {
      throw new ConfigError("send", "give --vectors or one FILE, not both");
    }
    file = positionals[0];
    to = parseHostPort("--to", values.to ?? DEFAULTS.listen);
    conns = values.conns === undefined ? 1 : parseIntIn("--conns", values.conns, 1, 10_000);
    rate = values.rate === undefined ? 0 : parseIntIn("--rate", values.rate, 0, 100_000_000);
    events = values.events === undefined
      ? undefined
      : parseIntIn("--events", values.events, 1, Number.MAX_SAFE_INTEGER);
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    console.error(`vmq-sidecar: ${e.message}; see send --help`);
    return 2;
  }
  const addr = to.hostname.includes(":")
    ? `[${to.hostname}]:${to.port}`
    : `${to.hostname}:${to.port}`;
  let source: ChunkSource;
  try {
    if (file === undefined) {
      const data = vectorFrames();
      source = new MemorySource(data, events ?? countFrames(data));
    } else {
      const total = events ?? await countFileFrames(file);
      source = new FileSource(file, total);
    }
  } catch (e) {
    console.error(
      `vmq-sidecar: cannot read ${file}: ${(e as Error).message}${
        permissionHint(e, "read", file!)
      }`,
    );
    return 1;
  }
  try { // runLoad closes the source
    const r = await runLoad({ addr, conns, rate, dialWaitMs: 2000 }, source);
    console.error(
      `vmq-sidecar: sent ${r.events} events (${r.bytes} bytes) to ${addr} over ${conns} connection${
        conns === 1 ? "" : "s"
      } in ${r.seconds.toFixed(3)} s`,
    );
    return 0;
  } catch (e) {
    const why = e instanceof Deno.errors.ConnectionRefused
      ? "connection refused: is the sidecar running there? (deno task start)"
      : (e as Error).message + permissionHint(e, "net", addr);
    console.error(`vmq-sidecar: cannot send to ${addr}: ${why}`);
    return 1;
  }
}

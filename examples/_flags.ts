/**
 * The flags every example takes: `--listen HOST:PORT` (where the plugin connects, default
 * `127.0.0.1:8890`), `--http HOST:PORT` (the example's own HTTP endpoint), plus its own
 * repeatable ones; and the sidecar configuration they give.
 *
 * @module
 */
import { defaultRunSettings, type HostPort, type SidecarConfig } from "../lib/mod.ts";

/** Parsed flags: `listen`, `http`, and every other `--name value` (repeatable) by name. */
export interface ExampleFlags {
  /** Where the plugin connects. */
  readonly listen: HostPort;
  /** The example's HTTP endpoint. */
  readonly http: HostPort;
  /** Other flags, by name without `--`, in order. */
  readonly other: ReadonlyMap<string, string[]>;
}

function hostPort(flag: string, v: string): HostPort {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\s]+)):(\d{1,5})$/.exec(v);
  if (!m || Number(m[3]) > 65535) {
    throw new Error(`${flag}: expected HOST:PORT (e.g. 127.0.0.1:8890), got ${JSON.stringify(v)}`);
  }
  return { hostname: m[1] ?? m[2], port: Number(m[3]) };
}

/** Parses `args`; `known` are the example's own flags. Throws with a usage line on a bad one. */
export function parseFlags(
  args: readonly string[],
  defaults: { http: string },
  known: readonly string[] = [],
): ExampleFlags {
  let listen = "127.0.0.1:8890", http = defaults.http;
  const other = new Map<string, string[]>();
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    const eq = a.indexOf("=");
    const name = a.startsWith("--") ? a.slice(2, eq > 0 ? eq : undefined) : "";
    const value = eq > 0 ? a.slice(eq + 1) : args[++i];
    if (value === undefined) throw new Error(`${a}: expected a value`);
    if (name === "listen") listen = value;
    else if (name === "http") http = value;
    else if (known.includes(name)) other.set(name, [...(other.get(name) ?? []), value]);
    else {
      throw new Error(
        `unknown flag ${a}; flags: --listen HOST:PORT --http HOST:PORT${
          known.map((k) => ` --${k} VALUE`).join("")
        }`,
      );
    }
  }
  return { listen: hostPort("--listen", listen), http: hostPort("--http", http), other };
}

/** A sidecar configuration listening on `listen`, no built-in outputs, warnings logged. */
export function sidecarConfig(listen: HostPort, admin: HostPort | null): SidecarConfig {
  return { ...defaultRunSettings(), listen, admin, logLevel: "warning", outputs: [] };
}

/** Stops `stop` on SIGINT / SIGTERM (once), then exits 0. */
export function stopOnSignals(stop: () => Promise<unknown>): void {
  let stopping = false;
  const onSignal = () => {
    if (stopping) return;
    stopping = true;
    stop().then(() => Deno.exit(0), (e) => {
      console.error(`stop failed: ${e}`);
      Deno.exit(1);
    });
  };
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);
}

// Helpers of the operations tests (admin, config, reload, decode): the real main.ts as a
// subprocess with the product's permission set, its admin port, scraping and the fixture
// stream with what each hook should count.
import { listeningPort, spawnMain } from "./_sidecar.ts";
import { type Family, parseExposition } from "./_prom.ts";
import { fixtureVectors } from "./_vectors.ts";

/** A running sidecar subprocess whose stdout is read only when asked. */
export interface Ops {
  /** Plugin port. */
  port: number;
  /** Admin port (0 when the admin listener is off). */
  adminPort: number;
  /** The process. */
  proc: Deno.ChildProcess;
  /** Stderr so far. */
  stderr(): string;
  /** Starts collecting stdout (until then the child blocks once the pipe is full). */
  readStdout(): void;
  /** Stdout collected so far (after readStdout). */
  stdout(): string;
  /** Sends a signal. */
  kill(signal?: Deno.Signal): void;
  /** Waits for exit; collects stdout if not yet. */
  wait(): Promise<{ code: number; stdout: string; stderr: string }>;
}

/** Runs main.ts with `args` (`RUN_MAIN`); resolves once it listens (and its admin port is known). */
export async function spawnSidecar(
  args: string[],
  options: { env?: Record<string, string>; stdout?: "piped" | "null"; admin?: boolean } = {},
): Promise<Ops> {
  const wantAdmin = options.admin ?? true;
  const adminPortOf = (e: string) =>
    Number(/admin endpoints on http:\/\/[^ ]*:(\d+)\//.exec(e)?.[1] ?? 0);
  const { proc, stderr, stderrDone } = await spawnMain(
    args,
    options,
    (e) => listeningPort(e) > 0 && (!wantAdmin || adminPortOf(e) > 0),
  );
  let out = "";
  let stdoutDone: Promise<void> | undefined;
  const readStdout = () => {
    if (options.stdout === "null") return;
    stdoutDone ??= (async () => {
      const dec = new TextDecoder();
      for await (const c of proc.stdout) out += dec.decode(c, { stream: true });
    })();
  };
  return {
    port: listeningPort(stderr()),
    adminPort: adminPortOf(stderr()),
    proc,
    stderr,
    readStdout,
    stdout: () => out,
    kill: (s = "SIGTERM") => proc.kill(s),
    wait: async () => {
      readStdout();
      const s = await proc.status;
      await Promise.all([stdoutDone, stderrDone]);
      return { code: s.code, stdout: out, stderr: stderr() };
    },
  };
}

/** GETs `path` from the admin listener: status, content type, body. */
export async function adminGet(
  port: number,
  path: string,
  method = "GET",
): Promise<{ status: number; type: string; body: string }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, { method });
  const body = await res.text();
  return { status: res.status, type: res.headers.get("content-type") ?? "", body };
}

/** Scrapes and strictly parses `/metrics`. */
export async function scrape(port: number): Promise<Map<string, Family>> {
  const r = await adminGet(port, "/metrics");
  if (r.status !== 200) throw new Error(`/metrics answered ${r.status}: ${r.body}`);
  return parseExposition(r.body);
}

/** The fixture stream (NNN order) and what it holds, counted from the .json expectations. */
export function fixtureStream(): {
  bytes: Uint8Array;
  byHook: Record<string, number>;
  events: number;
  empty: number;
} {
  const vectors = fixtureVectors();
  const byHook: Record<string, number> = {};
  let empty = 0;
  for (const v of vectors) {
    if (v.expected.hook === null) empty++;
    else byHook[v.expected.hook] = (byHook[v.expected.hook] ?? 0) + 1;
  }
  const n = vectors.reduce((a, v) => a + v.wire.length, 0);
  const bytes = new Uint8Array(n);
  let at = 0;
  for (const v of vectors) {
    bytes.set(v.wire, at);
    at += v.wire.length;
  }
  const events = Object.values(byHook).reduce((a, b) => a + b, 0);
  return { bytes, byHook, events, empty };
}

/** Lines of a file that may not exist yet (none then). */
export function fileLines(path: string): string[] {
  try {
    return Deno.readTextFileSync(path).split("\n").filter(Boolean);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return [];
    throw e;
  }
}

// Test helper: runs the real main.ts as a subprocess the way `deno task start` does (the
// permission set and V8 flags the compile tasks embed) and talks to it over real TCP.
import { concat } from "./_vectors.ts";

/** Repository root. */
export const ROOT: URL = new URL("../", import.meta.url);

/**
 * `deno` arguments that run main.ts as the start task does — its runtime flags (`-P`, V8
 * flags, `--quiet`) read from deno.json, so tests cannot drift from the product.
 * Append the sidecar's own arguments.
 */
export const RUN_MAIN: readonly string[] = (() => {
  const config = JSON.parse(Deno.readTextFileSync(new URL("deno.json", ROOT)));
  const start = (config.tasks.start as string).split(" ");
  if (start[0] !== "deno" || start[1] !== "run" || start.at(-1) !== "main.ts") {
    throw new Error(`deno.json tasks.start is not "deno run [flags] main.ts": ${start.join(" ")}`);
  }
  const flags = start.slice(1, -1);
  return [...flags, ...(flags.includes("--quiet") ? [] : ["--quiet"]), "main.ts"];
})();
/** Directory the default permission set lets the sidecar write: test files go below it. */
export const WRITABLE_TMP = "/tmp/vmq-sidecar";

/**
 * Where network outputs started by the test launchers put dead letters unless the test names
 * a `dead_letter` itself: the default, /var/lib/vmq-sidecar/dead-letter.ndjson, does not exist
 * on a development machine, and start refuses an output whose dead-letter file it cannot
 * write (tests of that refusal run main.ts without these launchers).
 */
export const TEST_DEAD_LETTER = `${WRITABLE_TMP}/test-dead-letter.ndjson`;

/**
 * `args` with {@linkcode TEST_DEAD_LETTER} added to every network `--out` lacking a
 * `dead_letter`, and — unless they name one — a `--data-dir` of their own under
 * {@linkcode WRITABLE_TMP} (removed after the module's tests) for the journal of the network
 * outputs (the default, /var/lib/vmq-sidecar, does not exist on a development machine; one
 * directory per process, since a journal is locked by the sidecar that has it open).
 */
export function withTestDeadLetter(args: readonly string[]): string[] {
  Deno.mkdirSync(WRITABLE_TMP, { recursive: true }); // the dead-letter file's directory
  const out = args.map((a, i) =>
    args[i - 1] === "--out" && /^(nats|https?):\/\//.test(a) && !/[?&]dead_letter=/.test(a)
      ? `${a}${a.includes("?") ? "&" : "?"}dead_letter=${TEST_DEAD_LETTER}`
      : a
  );
  const command = args[0] !== undefined && !args[0].startsWith("-") ? args[0] : undefined;
  const network = args.some((a, i) =>
    (args[i - 1] === "--out" && /^(nats|rediss?|https?):\/\//.test(a)) || a === "--config"
  );
  if (
    command === undefined && network &&
    !args.some((a) => a === "--data-dir" || a.startsWith("--data-dir="))
  ) {
    const dir = Deno.makeTempDirSync({ dir: WRITABLE_TMP, prefix: "data-" });
    tempDirs.push(dir);
    out.unshift("--data-dir", dir); // in front: a flag error at the end stays the last word
  }
  return out;
}

const tempDirs: string[] = [];
// Every test removes what it creates: directories of sidecarTempDir that a test did not remove
// itself (or left behind by failing) go when its module's tests are done.
Deno.test.afterAll(async () => {
  for (const dir of tempDirs.splice(0)) await Deno.remove(dir, { recursive: true }).catch(() => {});
  await Deno.remove(TEST_DEAD_LETTER).catch(() => {});
});

/** A temp directory the sidecar (default permissions) may write to; removed after the module's tests. */
export async function sidecarTempDir(): Promise<string> {
  await Deno.mkdir(WRITABLE_TMP, { recursive: true });
  const dir = await Deno.makeTempDir({ dir: WRITABLE_TMP, prefix: "test-" });
  tempDirs.push(dir);
  return dir;
}

/** A running sidecar subprocess. */
export interface RunningSidecar {
  /** The port it listens on (parsed from its log). */
  port: number;
  /** The process. */
  proc: Deno.ChildProcess;
  /** Everything written to stderr so far. */
  stderr(): string;
  /** Sends a signal. */
  kill(signal?: Deno.Signal): void;
  /** Waits for exit; stdout is the whole output when piped. */
  wait(): Promise<{ code: number; stdout: Uint8Array; stderr: string }>;
}

/** A spawned main.ts whose stderr is being collected. */
export interface SpawnedMain {
  /** The process. */
  proc: Deno.ChildProcess;
  /** Stderr so far. */
  stderr(): string;
  /** Resolves once stderr is closed. */
  stderrDone: Promise<void>;
}

/**
 * Spawns main.ts with `args` ({@linkcode RUN_MAIN}) and resolves once `ready(stderr so far)`
 * holds; throws with its stderr when it exits (or 30 s pass) first.
 */
export async function spawnMain(
  args: string[],
  options: { stdout?: "piped" | "null"; env?: Record<string, string> },
  ready: (stderr: string) => boolean,
): Promise<SpawnedMain> {
  const proc = new Deno.Command(Deno.execPath(), {
    args: [...RUN_MAIN, ...withTestDeadLetter(args)],
    cwd: ROOT,
    stdin: "null",
    stdout: options.stdout ?? "piped",
    stderr: "piped",
    env: { NO_COLOR: "1", ...options.env },
  }).spawn();
  let err = "";
  const stderrDone = (async () => {
    const dec = new TextDecoder();
    for await (const chunk of proc.stderr) err += dec.decode(chunk, { stream: true });
  })();
  let exited = false;
  const status = proc.status.then((s) => (exited = true, s));
  for (let i = 0; i < 600 && !ready(err) && !exited; i++) {
    await new Promise((r) => setTimeout(r, 50));
  }
  if (!ready(err)) {
    if (!exited) proc.kill("SIGKILL");
    if (options.stdout !== "null") await proc.stdout.cancel();
    const s = await status;
    await stderrDone;
    throw new Error(`sidecar did not start (exit ${s.code}):\n${err}`);
  }
  return { proc, stderr: () => err, stderrDone };
}

/** The port main.ts reports listening on (0 before it does). */
export function listeningPort(stderr: string): number {
  return Number(/listening on [^ ]*:(\d+);/.exec(stderr)?.[1] ?? 0);
}

/** Runs main.ts with `args` ({@linkcode RUN_MAIN}) and resolves once it listens (or rejects with stderr). */
export async function startSidecar(
  args: string[],
  options: { stdout?: "piped" | "null"; env?: Record<string, string> } = {},
): Promise<RunningSidecar> {
  const { proc, stderr, stderrDone } = await spawnMain(args, options, (e) => listeningPort(e) > 0);
  const stdoutDone = options.stdout === "null"
    ? Promise.resolve(new Uint8Array(0))
    : collect(proc.stdout);
  const wait = async () => {
    const s = await proc.status;
    const [stdout] = await Promise.all([stdoutDone, stderrDone]);
    return { code: s.code, stdout, stderr: stderr() };
  };
  return {
    port: listeningPort(stderr()),
    proc,
    stderr,
    kill: (s = "SIGTERM") => proc.kill(s),
    wait,
  };
}

/** Runs main.ts with `args` to completion (for flag errors, --help…). */
export async function runSidecar(
  args: string[],
): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [...RUN_MAIN, ...withTestDeadLetter(args)],
    cwd: ROOT,
    stdin: "null",
    env: { NO_COLOR: "1" },
    // Arguments wrongly accepted would run the sidecar until stopped: bound the wait.
    signal: AbortSignal.timeout(30_000),
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

async function collect(stream: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const c of stream) parts.push(c);
  return concat(parts);
}

/** Opens a connection to the sidecar, writes `chunks` one write each, and closes it. */
export async function sendChunks(port: number, chunks: readonly Uint8Array[]): Promise<void> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  conn.setNoDelay(true);
  try {
    for (const c of chunks) for (let at = 0; at < c.length;) at += await conn.write(c.subarray(at));
  } finally {
    conn.close();
  }
}

/** Parses JSON lines; fails on a line that is not JSON. */
// deno-lint-ignore no-explicit-any
export function jsonLines(bytes: Uint8Array | string): any[] {
  const text = typeof bytes === "string" ? bytes : new TextDecoder().decode(bytes);
  return text.split("\n").filter((l) => l.length > 0).map((l, i) => {
    try {
      return JSON.parse(l);
    } catch {
      throw new Error(`line ${i + 1} is not JSON: ${l.slice(0, 200)}`);
    }
  });
}

/** `p`, or a rejection "timed out: WHAT" after `ms` (a bound on every await of a test). */
export function bounded<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out: ${what}`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** Polls `fn` until it returns true or `timeoutMs` passes (then throws `what`). */
export async function waitFor(
  fn: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 30_000,
): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await fn())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/**
 * The network contender set of `deno task bench --net`: each destination's ceiling measured with
 * the server's own native client, then the sidecar (the real main.ts, the start task's flags)
 * relaying the same number of events into it, in the same run on the same machine.
 * `--profile` adds a CPU profile of the NATS and Redis relays (by origin, inclusive, self time).
 *
 * - NATS JetStream (file storage): the ceiling is `jspub` (the server's own Go client, async
 *   publish with `Nats-Msg-Id`, 4096 in flight; built by `../shared/peers/go/build.sh`), the
 *   relay is `--out nats://…?create_stream=VMQ`; done when the stream holds every event
 *   (`/jsz` of the server's monitoring port).
 * - Redis Streams: the ceiling is `redis-benchmark -P 200 XADD key '*' field VALUE`, the relay
 *   `--out redis://…`; done when `XLEN` is the count.
 * - HTTP webhook: the relay `--out http://…` into a minimal receiver
 *   (scripts/_ndjson_receiver.ts, a Deno process that counts ndjson lines); done when it has
 *   counted every event. No ceiling row: the target is 200k events/s.
 *
 * Every relay uses JSON, `on_full=block` and otherwise default settings (but `dead_letter` in
 * the scratch directory); every server is
 * started fresh for each run on a free loopback port with its data in a temp directory. The
 * load is scripts/loadgen.ts over 100 connections, on_publish events whose JSON message is
 * `--size` bytes on average (the native tools send messages of exactly that size).
 *
 * @module
 */

/** Settings of the network set, from the command line. */
export interface NetArgs {
  /** Bytes per message (the JSON event; the native tools' message body). */
  size: number;
  /** Events per run. */
  count: number;
  /** Runs per contender (medians are reported). */
  runs: number;
  /** Plugin connections of the load generator. */
  conns: number;
  /** Also profile the NATS and Redis relays (V8 sampling profiler, self time). */
  profile: boolean;
  /** Destinations to run (`--only nats,redis,http`); all when empty. */
  only: string[];
  /** `--baseline DIR` (ends with `/`): every relay row also from that checkout, interleaved. */
  baseline?: string;
}

/** A bad `--net` option (the message says which and what is allowed). */
export class NetArgsError extends Error {
  /** Makes the error. */
  constructor(message: string) {
    super(message);
    this.name = "NetArgsError";
  }
}

/** The `--net` part of the bench's usage text. */
export const NET_USAGE =
  "network set: deno task bench --net [--size BYTES] [--count N] [--runs N] " +
  "[--conns N] [--profile] [--only nats,redis,http] [--baseline DIR]\n" +
  "  NATS JetStream (jspub ceiling), Redis Streams (redis-benchmark XADD ceiling) and an HTTP\n" +
  "  webhook, each relayed by main.ts; --size message bytes (default 650), --count events per\n" +
  "  run (default 300000); --profile adds where the NATS and Redis relays spend their time;\n" +
  "  --only runs those destinations; --baseline DIR runs every relay row also from checkout DIR.\n" +
  "  Only the network set runs with --net.";

const DESTS = ["nats", "redis", "http"];

function intIn(name: string, text: string | undefined, def: number, min: number, max: number) {
  if (text === undefined) return def;
  const n = Number(text.replaceAll("_", ""));
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new NetArgsError(
      `--${name} ${JSON.stringify(text)}: expected a whole number from ${min} to ${max}`,
    );
  }
  return n;
}

/** Reads the `--net` options (strings as `parseArgs` gives them); throws {@linkcode NetArgsError}. */
export function parseNetArgs(
  v: {
    size?: string;
    count?: string;
    runs?: string;
    conns?: string;
    profile?: boolean;
    only?: string;
    baseline?: string;
  },
): NetArgs {
  const only = v.only?.split(",").map((d) => d.trim()).filter(Boolean) ?? [];
  for (const d of only) {
    if (!DESTS.includes(d)) {
      throw new NetArgsError(`--only ${JSON.stringify(d)}: expected some of ${DESTS.join(",")}`);
    }
  }
  const baseline = v.baseline === undefined
    ? undefined
    : v.baseline.endsWith("/")
    ? v.baseline
    : `${v.baseline}/`;
  return {
    only,
    ...(baseline === undefined ? {} : { baseline }),
    size: intIn("size", v.size, 650, 200, 512 * 1024),
    count: intIn("count", v.count, 300_000, 1, 100_000_000),
    runs: intIn("runs", v.runs, 3, 1, 100),
    conns: intIn("conns", v.conns, 100, 1, 10_000),
    profile: v.profile ?? false,
  };
}

/**
 * The shared peers directory (`shared/peers`, holding `go/build.sh`): `$PEERS_DIR`, else the
 * first `shared/peers` beside the repository or one of its parents (`../shared/peers` of the
 * main checkout, `../../shared/peers` of a worktree under `wt/`); undefined when there is none.
 */
export function findPeersDir(root: string, env = Deno.env.get("PEERS_DIR")): string | undefined {
  const has = (d: string) => {
    try {
      return Deno.statSync(`${d}/go/build.sh`).isFile;
    } catch {
      return false;
    }
  };
  if (env) return has(env) ? env : undefined;
  let dir = root.replace(/\/+$/, "");
  while (dir.includes("/")) {
    dir = dir.slice(0, dir.lastIndexOf("/"));
    const d = `${dir}/shared/peers`;
    if (has(d)) return d;
  }
  return undefined;
}

/** A frames file of the bench (see scripts/bench.ts `input`). */
export interface NetInput {
  /** Path of the frames file. */
  path: string;
  /** Frames in it. */
  frames: number;
  /** Its size. */
  bytes: number;
  /** Bytes of the JSON lines main.ts writes for it (newlines included). */
  jsonBytes: number;
}

/** What the bench needs from a load generator run (scripts/loadgen.ts `--json`). */
export interface LoadRun {
  /** Wall-clock time (Unix ms) of the first write. */
  startMs: number;
  /** CPU seconds (user+sys) the load generator spent. */
  cpuSeconds: number;
}

/** What scripts/bench.ts lends the network set (its helpers, so both measure alike). */
export interface BenchKit {
  /** Repository root (ends with `/`). */
  root: string;
  /** Scratch directory. */
  work: string;
  /** Where the Go peers' binaries are. */
  peerBin: string;
  /** argv of main.ts (of checkout `root`, default this one) with the start task's flags and `--admin off`, plus `extra`. */
  mainTs(extra: string[], root?: string): string[];
  /** Makes (or reuses) a frames file of on_publish events with a fixed payload. */
  input(name: string, frames: number, o: { kind: "publish"; payload: number }): Promise<NetInput>;
  /** Runs scripts/loadgen.ts against the port. */
  drive(port: number, inp: NetInput, o: { conns: number; driver: "loadgen" }): Promise<LoadRun>;
  /** Starts V8's profiler through the inspector port; the function stops it. */
  attachProfiler(port: number): Promise<() => Promise<unknown>>;
  /** Markdown table of the top self-time functions. */
  profileSummary(profile: unknown, top?: number): string;
}

// ---------------------------------------------------------------------------------------------
// Probes (as in scripts/bench.ts)

const CLK_TCK = 100;
const nowMs = () => performance.timeOrigin + performance.now();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function cpuSeconds(pid: number): number {
  const s = Deno.readTextFileSync(`/proc/${pid}/stat`);
  const f = s.slice(s.lastIndexOf(")") + 2).split(" ");
  return (Number(f[11]) + Number(f[12])) / CLK_TCK;
}

function peakRssMiB(pid: number): number {
  const m = /^VmHWM:\s+(\d+) kB/m.exec(Deno.readTextFileSync(`/proc/${pid}/status`));
  return m ? Number(m[1]) / 1024 : NaN;
}

function machineBusySeconds(): number {
  const f = Deno.readTextFileSync("/proc/stat").split("\n")[0].trim().split(/\s+/).slice(1)
    .map(Number);
  return (f[0] + f[1] + f[2] + f[5] + f[6] + f[7]) / CLK_TCK;
}

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

async function accepts(port: number): Promise<boolean> {
  try {
    (await Deno.connect({ hostname: "127.0.0.1", port })).close();
    return true;
  } catch {
    return false;
  }
}

async function onPath(cmd: string): Promise<boolean> {
  try {
    return (await new Deno.Command("sh", { args: ["-c", `command -v ${cmd}`], stdout: "null" })
      .output()).success;
  } catch {
    return false;
  }
}

/** A child process whose stdout+stderr are collected. */
interface Proc {
  child: Deno.ChildProcess;
  text(): string;
  exited(): boolean;
  /** SIGTERM (SIGKILL after 5 s); resolves with the exit status once its output is read. */
  stop(): Promise<Deno.CommandStatus>;
}

function spawn(argv: string[], cwd?: string): Proc {
  const child = new Deno.Command(argv[0], {
    args: argv.slice(1),
    cwd,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let text = "", exited = false;
  const read = async (s: ReadableStream<Uint8Array>) => {
    const dec = new TextDecoder();
    for await (const c of s) text += dec.decode(c, { stream: true });
  };
  const drained = Promise.all([read(child.stdout), read(child.stderr)]);
  const status = child.status.then((s) => (exited = true, s));
  return {
    child,
    text: () => text,
    exited: () => exited,
    async stop() {
      if (!exited) {
        try {
          child.kill("SIGTERM");
        } catch { /* gone */ }
      }
      const t = setTimeout(() => {
        try {
          child.kill("SIGKILL");
        } catch { /* gone */ }
      }, 5000);
      const s = await status;
      clearTimeout(t);
      await drained;
      return s;
    },
  };
}

async function waitFor(what: string, p: Proc, ready: () => Promise<boolean>): Promise<void> {
  const deadline = performance.now() + 30_000;
  while (!await ready()) {
    if (p.exited()) throw new Error(`${what} exited before it was ready:\n${p.text()}`);
    if (performance.now() > deadline) throw new Error(`${what} not ready in 30 s:\n${p.text()}`);
    await sleep(20);
  }
}

// ---------------------------------------------------------------------------------------------
// Destinations

/** A destination server started for one run. */
interface Server {
  proc: Proc;
  /** Where the sidecar sends (`--out`). */
  out: string;
  /** Events stored so far (the stream's messages, XLEN, lines received). */
  count(): Promise<number>;
  /** Stops it and removes its directory. */
  close(): Promise<void>;
}

async function tempDir(kit: BenchKit, what: string): Promise<string> {
  await Deno.mkdir(kit.work, { recursive: true });
  return await Deno.makeTempDir({ dir: kit.work, prefix: `${what}-` });
}

/**
 * `dead_letter=` in the scratch directory: the default under /var/lib/vmq-sidecar need not
 * exist on a development machine (and nothing is refused in these runs anyway).
 */
function deadLetter(kit: BenchKit): string {
  return `dead_letter=${encodeURIComponent(`${kit.work}/net-dead-letter.ndjson`)}`;
}

async function startNats(kit: BenchKit): Promise<Server & { url: string }> {
  const dir = await tempDir(kit, "nats");
  const port = freePort(), mon = freePort();
  const proc = spawn([
    "nats-server",
    "-js",
    "-a",
    "127.0.0.1",
    "-p",
    String(port),
    "-m",
    String(mon),
    "-sd",
    `${dir}/js`,
  ], dir);
  const close = async () => {
    await proc.stop();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  };
  try {
    await waitFor(
      "nats-server",
      proc,
      async () => /Server is ready/.test(proc.text()) && await accepts(port),
    );
  } catch (e) {
    await close();
    throw e;
  }
  return {
    proc,
    url: `nats://127.0.0.1:${port}`,
    out: `nats://127.0.0.1:${port}?create_stream=VMQ&on_full=block&${deadLetter(kit)}`,
    count: async () => {
      const r = await fetch(`http://127.0.0.1:${mon}/jsz`);
      return Number((await r.json()).messages ?? 0);
    },
    close,
  };
}

/** A minimal RESP connection for `XLEN` (one command at a time). */
class RespProbe {
  #buf = new Uint8Array(4096);
  private constructor(readonly conn: Deno.TcpConn) {}
  static async open(port: number): Promise<RespProbe> {
    return new RespProbe(await Deno.connect({ hostname: "127.0.0.1", port }));
  }
  async xlen(key: string): Promise<number> {
    await this.conn.write(new TextEncoder().encode(`XLEN ${key}\r\n`));
    let got = "";
    while (!got.endsWith("\r\n")) {
      const n = await this.conn.read(this.#buf);
      if (n === null) throw new Error("redis closed the connection");
      got += new TextDecoder().decode(this.#buf.subarray(0, n));
    }
    if (got[0] !== ":") throw new Error(`XLEN ${key}: ${got.trim()}`);
    return Number(got.slice(1));
  }
  close(): void {
    try {
      this.conn.close();
    } catch { /* closed */ }
  }
}

const REDIS_KEY = "vmq:events:on_publish"; // the default key template for on_publish events

async function startRedis(
  kit: BenchKit,
  key = REDIS_KEY,
): Promise<Server & { port: number }> {
  const dir = await tempDir(kit, "redis");
  const port = freePort();
  const proc = spawn([
    "redis-server",
    "--port",
    String(port),
    "--bind",
    "127.0.0.1",
    "--dir",
    dir,
    "--save",
    "",
    "--appendonly",
    "no",
  ], dir);
  let probe: RespProbe | undefined;
  const close = async () => {
    probe?.close();
    await proc.stop();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  };
  try {
    await waitFor(
      "redis-server",
      proc,
      async () => /Ready to accept connections/.test(proc.text()) && await accepts(port),
    );
    probe = await RespProbe.open(port);
  } catch (e) {
    await close();
    throw e;
  }
  return {
    proc,
    port,
    out: `redis://127.0.0.1:${port}?on_full=block`,
    count: () => probe!.xlen(key),
    close,
  };
}

async function startReceiver(kit: BenchKit): Promise<Server> {
  const port = freePort();
  const proc = spawn([
    Deno.execPath(),
    "run",
    "--allow-net=127.0.0.1",
    `${kit.root}scripts/_ndjson_receiver.ts`,
    "--port",
    String(port),
  ]);
  try {
    await waitFor("ndjson receiver", proc, () => accepts(port));
  } catch (e) {
    await proc.stop();
    throw e;
  }
  return {
    proc,
    out: `http://127.0.0.1:${port}/events?on_full=block&${deadLetter(kit)}`,
    count: async () => Number(await (await fetch(`http://127.0.0.1:${port}/count`)).text()),
    close: async () => void await proc.stop(),
  };
}

// ---------------------------------------------------------------------------------------------
// One run

/** One measured run of a contender. */
interface NetResult {
  contender: string;
  eventsPerSec: number;
  /** CPU of the contender (the sidecar or the native tool), µs per event. */
  cpuUs: number;
  /** CPU of the destination server, µs per event. */
  serverCpuUs: number;
  peakRssMiB: number;
  driverCpu: number;
  otherCpu: number;
}

/** Polls `count` until it reaches `n`; fails when it does not move for 60 s. */
async function untilStored(what: string, n: number, count: () => Promise<number>, every: number) {
  let last = -1, movedAt = performance.now();
  while (true) {
    const c = await count();
    if (c >= n) return;
    if (c !== last) (last = c), movedAt = performance.now();
    else if (performance.now() - movedAt > 60_000) {
      throw new Error(`${what}: the destination holds ${c} of ${n} events and stopped growing`);
    }
    await sleep(every);
  }
}

async function relayOnce(
  kit: BenchKit,
  name: string,
  server: Server,
  inp: NetInput,
  a: NetArgs,
  profile?: (p: unknown) => void,
  root?: string,
): Promise<NetResult> {
  const port = freePort();
  // The journal of buffer=disk outputs in the scratch directory (a fresh one per run; the
  // default /var/lib/vmq-sidecar need not exist on a development machine).
  const dataDir = await Deno.makeTempDir({ dir: kit.work, prefix: "net-data-" });
  let argv = kit.mainTs([
    "--listen",
    `127.0.0.1:${port}`,
    "--data-dir",
    dataDir,
    "--out",
    server.out,
  ], root);
  const inspectPort = profile ? freePort() : 0;
  if (inspectPort) {
    argv = [argv[0], argv[1], `--inspect=127.0.0.1:${inspectPort}`, ...argv.slice(2)];
  }
  const side = spawn(argv);
  try {
    await waitFor(name, side, () => accepts(port));
    const stopProfile = inspectPort ? await kit.attachProfiler(inspectPort) : undefined;
    const pid = side.child.pid, spid = server.proc.child.pid;
    const cpu0 = cpuSeconds(pid), scpu0 = cpuSeconds(spid), busy0 = machineBusySeconds();
    const load = kit.drive(port, inp, { conns: a.conns, driver: "loadgen" });
    let failed: unknown;
    load.catch((e) => failed = e);
    await untilStored(name, inp.frames, async () => {
      if (failed) throw failed;
      if (side.exited()) throw new Error(`${name} exited early:\n${side.text()}`);
      return await server.count();
    }, 10);
    const endMs = nowMs();
    const cpu = cpuSeconds(pid) - cpu0, scpu = cpuSeconds(spid) - scpu0;
    const rss = peakRssMiB(pid);
    const busy = machineBusySeconds() - busy0;
    if (stopProfile) profile!(await stopProfile());
    const sent = await load;
    await side.stop();
    const m = /stopped: (\d+) events/.exec(side.text());
    if (!m || Number(m[1]) !== inp.frames) {
      throw new Error(`${name}: summary does not report ${inp.frames} events:\n${side.text()}`);
    }
    const seconds = (endMs - sent.startMs) / 1000;
    return {
      contender: name,
      eventsPerSec: inp.frames / seconds,
      cpuUs: cpu * 1e6 / inp.frames,
      serverCpuUs: scpu * 1e6 / inp.frames,
      peakRssMiB: rss,
      driverCpu: sent.cpuSeconds / seconds,
      otherCpu: Math.max(0, busy - cpu - scpu - sent.cpuSeconds) / seconds,
    };
  } finally {
    await side.stop();
  }
}

/** Runs a native tool under /usr/bin/time; returns its output, CPU seconds and max RSS. */
async function timed(kit: BenchKit, argv: string[]) {
  const timeFile = `${kit.work}/net-time.txt`;
  const out = await new Deno.Command("/usr/bin/time", {
    args: ["-f", "%U %S %M", "-o", timeFile, ...argv],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  const text = dec.decode(out.stdout) + dec.decode(out.stderr);
  if (!out.success) throw new Error(`${argv[0]} failed:\n${text}`);
  const [u, s, m] = (await Deno.readTextFile(timeFile)).trim().split("\n").pop()!.split(" ");
  return { text, cpu: Number(u) + Number(s), rssMiB: Number(m) / 1024 };
}

async function jspubOnce(kit: BenchKit, a: NetArgs): Promise<NetResult> {
  const nats = await startNats(kit);
  try {
    const spid = nats.proc.child.pid;
    const scpu0 = cpuSeconds(spid), busy0 = machineBusySeconds(), t0 = performance.now();
    const r = await timed(kit, [
      `${kit.peerBin}/jspub`,
      "-url",
      nats.url,
      "-n",
      String(a.count),
      "-size",
      String(a.size),
      "-pending",
      "4096",
    ]);
    const wall = (performance.now() - t0) / 1000;
    const scpu = cpuSeconds(spid) - scpu0, busy = machineBusySeconds() - busy0;
    const m = /stored=(\d+) seconds=\S+ msgs_per_s=(\d+)/.exec(r.text);
    if (!m) throw new Error(`jspub: unexpected output:\n${r.text}`);
    if (Number(m[1]) !== a.count) {
      throw new Error(`jspub: the stream holds ${m[1]} of ${a.count} messages`);
    }
    return {
      contender: "jspub (ceiling)",
      eventsPerSec: Number(m[2]),
      cpuUs: r.cpu * 1e6 / a.count,
      serverCpuUs: scpu * 1e6 / a.count,
      peakRssMiB: r.rssMiB,
      driverCpu: 0,
      otherCpu: Math.max(0, busy - r.cpu - scpu) / wall,
    };
  } finally {
    await nats.close();
  }
}

async function redisBenchmarkOnce(kit: BenchKit, a: NetArgs): Promise<NetResult> {
  const key = "vmq:ceiling";
  const redis = await startRedis(kit, key);
  try {
    const spid = redis.proc.child.pid;
    const scpu0 = cpuSeconds(spid), busy0 = machineBusySeconds(), t0 = performance.now();
    const r = await timed(kit, [
      "redis-benchmark",
      "-h",
      "127.0.0.1",
      "-p",
      String(redis.port),
      "-P",
      "200",
      "-n",
      String(a.count),
      "--csv",
      "XADD",
      key,
      "*",
      "field",
      "x".repeat(a.size),
    ]);
    const wall = (performance.now() - t0) / 1000;
    const scpu = cpuSeconds(spid) - scpu0, busy = machineBusySeconds() - busy0;
    const m = /^"XADD[^"]*","([\d.]+)"/m.exec(r.text);
    if (!m) throw new Error(`redis-benchmark: unexpected output:\n${r.text}`);
    const stored = await redis.count();
    if (stored !== a.count) throw new Error(`redis-benchmark: XLEN ${stored} of ${a.count}`);
    return {
      contender: "redis-benchmark -P 200 (ceiling)",
      eventsPerSec: Number(m[1]),
      cpuUs: r.cpu * 1e6 / a.count,
      serverCpuUs: scpu * 1e6 / a.count,
      peakRssMiB: r.rssMiB,
      driverCpu: 0,
      otherCpu: Math.max(0, busy - r.cpu - scpu) / wall,
    };
  } finally {
    await redis.close();
  }
}

/** `s` with its output's backlog in memory (`buffer=memory`) instead of the disk journal. */
function inMemory(s: Server): Server {
  return { ...s, out: `${s.out}${s.out.includes("?") ? "&" : "?"}buffer=memory` };
}

async function withServer(
  start: () => Promise<Server>,
  run: (s: Server) => Promise<NetResult>,
): Promise<NetResult> {
  const s = await start();
  try {
    return await run(s);
  } finally {
    await s.close();
  }
}

// ---------------------------------------------------------------------------------------------
// The set

/** Frames of on_publish events whose JSON message (no newline) averages `size` bytes. */
async function sizedInput(kit: BenchKit, a: NetArgs): Promise<NetInput & { msgBytes: number }> {
  const probe = 400;
  const sample = await kit.input(`publish-${probe}-2000`, 2000, {
    kind: "publish",
    payload: probe,
  });
  const base = sample.jsonBytes / sample.frames - 1 - Math.ceil(probe / 3) * 4;
  const payload = Math.max(0, Math.round((a.size - base) * 3 / 4));
  const inp = await kit.input(`publish-${payload}-${a.count}`, a.count, {
    kind: "publish",
    payload,
  });
  return { ...inp, msgBytes: inp.jsonBytes / inp.frames - 1 };
}

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}

/**
 * Self time of a CPU profile by origin: each sample goes to the nearest frame (itself or a
 * caller) in a file of this repository (`lib/…`) or of an npm package (`@nats-io/nats-core`),
 * so runtime code and native calls (ops, socket writes, hashing) count for whoever called them;
 * GC, idle and program time stay apart. A markdown table of the top `top` origins.
 */
export function profileByOrigin(profile: unknown, root: string, top = 14): string {
  const p = profile as { nodes: ProfileNode[] };
  const parent = new Map<number, ProfileNode>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n);
  const origin = (url: string) => originOf(url, root, url.startsWith(`file://${root}`));
  const self = new Map<string, number>();
  let total = 0;
  for (const n of p.nodes) {
    const hits = n.hitCount ?? 0;
    if (!hits) continue;
    total += hits;
    let key: string | undefined;
    const f = n.callFrame.functionName;
    if (!n.callFrame.url && /^\((garbage collector|idle|program)\)$/.test(f)) key = f;
    for (let at: ProfileNode | undefined = n; !key && at; at = parent.get(at.id)) {
      key = origin(at.callFrame.url);
    }
    key ??= "Deno runtime, event loop (no caller in lib/ or a package)";
    self.set(key, (self.get(key) ?? 0) + hits);
  }
  const rows = [...self].sort((a, b) => b[1] - a[1]).slice(0, top);
  return [
    "| % of samples | origin (with the runtime and native calls it made) |",
    "|---:|---|",
    ...rows.map(([k, v]) => `| ${(v * 100 / total).toFixed(1)} | ${k} |`),
  ].join("\n");
}

/**
 * Total (inclusive) time of the functions of this repository and of npm packages in a CPU
 * profile: each sample counts once for every distinct such function on its stack. A markdown
 * table of the top `top`.
 */
export function profileInclusive(profile: unknown, root: string, top = 20): string {
  const p = profile as { nodes: ProfileNode[] };
  const parent = new Map<number, ProfileNode>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n);
  const incl = new Map<string, number>();
  let total = 0;
  for (const n of p.nodes) {
    const hits = n.hitCount ?? 0;
    if (!hits) continue;
    total += hits;
    const seen = new Set<string>();
    for (let at: ProfileNode | undefined = n; at; at = parent.get(at.id)) {
      const f = at.callFrame, file = originOf(f.url, root);
      if (!file) continue;
      const key = `${f.functionName || "(anonymous)"} (${file}:${f.lineNumber + 1})`;
      if (seen.has(key)) continue;
      seen.add(key);
      incl.set(key, (incl.get(key) ?? 0) + hits);
    }
  }
  const rows = [...incl].sort((a, b) => b[1] - a[1]).slice(0, top);
  return [
    "| total % | function |",
    "|---:|---|",
    ...rows.map(([k, v]) => `| ${(v * 100 / total).toFixed(1)} | \`${k}\` |`),
  ].join("\n");
}

/** `lib/…` for a file of the repository, `package/path` for an npm package's; else undefined. */
function originOf(url: string, root: string, file = true): string | undefined {
  if (url.startsWith(`file://${root}`)) return url.slice(`file://${root}`.length);
  const m = /\/npm\/[^/]+\/((?:@[^/]+\/)?[^/]+)\/[^/]+\/(.*)$/.exec(url);
  return m ? (file ? `${m[1]}/${m[2]}` : m[1]) : undefined;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

const fmtInt = (n: number) => Math.round(n).toLocaleString("en-US");

/** Runs the network set; returns its report (markdown) for the bench's output. */
export async function runNet(a: NetArgs, kit: BenchKit): Promise<string> {
  const notes: string[] = [];
  const have = {
    nats: await onPath("nats-server"),
    redis: await onPath("redis-server"),
    redisBenchmark: await onPath("redis-benchmark"),
    jspub: await Deno.stat(`${kit.peerBin}/jspub`).then(() => true, () => false),
  };
  if (!have.jspub) {
    const peers = findPeersDir(kit.root);
    notes.push(
      `jspub not found in ${kit.peerBin}: the JetStream ceiling is skipped. Build it with ` +
        (peers
          ? `\`bash ${peers}/go/build.sh\``
          : "`bash ../shared/peers/go/build.sh` (no shared/peers found beside the repository; " +
            "set PEERS_DIR)") +
        " — it installs Go and golang-github-nats-io-go-nats-dev from Debian when missing and " +
        "builds into $PEER_BUILD_DIR/bin (default /tmp/seed-go-build/bin) — then run again.",
    );
  }
  if (!have.nats) notes.push("nats-server not on PATH: the NATS rows are skipped.");
  if (!have.redis) notes.push("redis-server not on PATH: the Redis rows are skipped.");
  else if (!have.redisBenchmark) {
    notes.push("redis-benchmark not on PATH (Debian: redis-tools): the Redis ceiling is skipped.");
  }
  for (const n of notes) console.error(`net: ${n}`);

  const inp = await sizedInput(kit, a);
  console.error(
    `network set: ${a.count} events of ${inp.msgBytes.toFixed(0)} B JSON, ${a.conns} connections`,
  );
  type Row = { dest: string; name: string; run: () => Promise<NetResult>; ceiling?: boolean };
  const rows: Row[] = [];
  if (have.nats && have.jspub) {
    rows.push({
      dest: "nats",
      name: "jspub (ceiling)",
      ceiling: true,
      run: () => jspubOnce(kit, a),
    });
  }
  if (have.nats) {
    rows.push({
      dest: "nats",
      name: "main.ts → NATS",
      run: () =>
        withServer(() => startNats(kit), (s) => relayOnce(kit, "main.ts → NATS", s, inp, a)),
    });
  }
  if (have.nats) {
    // The same relay with the in-memory queue: the journal's cost (issue 12 item 7: within 10 %).
    rows.push({
      dest: "nats",
      name: "main.ts → NATS (buffer=memory)",
      run: () =>
        withServer(
          () => startNats(kit).then(inMemory),
          (s) => relayOnce(kit, "main.ts → NATS (buffer=memory)", s, inp, a),
        ),
    });
  }
  if (have.redis && have.redisBenchmark) {
    rows.push({
      dest: "redis",
      name: "redis-benchmark -P 200 (ceiling)",
      ceiling: true,
      run: () => redisBenchmarkOnce(kit, a),
    });
  }
  if (have.redis) {
    rows.push({
      dest: "redis",
      name: "main.ts → Redis",
      run: () =>
        withServer(() => startRedis(kit), (s) => relayOnce(kit, "main.ts → Redis", s, inp, a)),
    });
  }
  if (have.redis) {
    rows.push({
      dest: "redis",
      name: "main.ts → Redis (buffer=memory)",
      run: () =>
        withServer(
          () => startRedis(kit).then(inMemory),
          (s) => relayOnce(kit, "main.ts → Redis (buffer=memory)", s, inp, a),
        ),
    });
  }
  rows.push({
    dest: "http",
    name: "main.ts → HTTP",
    run: () =>
      withServer(() => startReceiver(kit), (s) => relayOnce(kit, "main.ts → HTTP", s, inp, a)),
  });
  if (a.only.length > 0) {
    rows.splice(
      0,
      rows.length,
      ...rows.filter((r) => a.only.includes(r.dest)),
    );
  }
  if (a.baseline) {
    // Every relay row once more from the baseline checkout, right after its own row.
    const starts = {
      nats: () => startNats(kit),
      redis: () => startRedis(kit),
      http: () => startReceiver(kit),
    };
    for (let i = rows.length - 1; i >= 0; i--) {
      const row = rows[i];
      if (row.ceiling) continue;
      const name = `${row.name} (baseline)`, root = a.baseline;
      rows.splice(i + 1, 0, {
        dest: row.dest,
        name,
        run: () =>
          withServer(
            starts[row.dest as keyof typeof starts],
            (s) => relayOnce(kit, name, s, inp, a, undefined, root),
          ),
      });
    }
  }

  const results = new Map<string, NetResult[]>();
  for (let r = 0; r < a.runs; r++) {
    for (const row of rows) {
      const res = await row.run();
      console.error(
        `  run ${r + 1}/${a.runs} ${row.name.padEnd(33)} ${fmtInt(res.eventsPerSec).padStart(9)} ` +
          `ev/s ${res.cpuUs.toFixed(2)} µs/ev server ${res.serverCpuUs.toFixed(2)} µs/ev ` +
          `${res.peakRssMiB.toFixed(0)} MiB (driver ${res.driverCpu.toFixed(2)} CPUs, other ` +
          `${res.otherCpu.toFixed(2)} CPUs)`,
      );
      results.set(row.name, [...(results.get(row.name) ?? []), res]);
    }
  }
  const med = (name: string) => {
    const rs = results.get(name)!;
    return {
      eventsPerSec: median(rs.map((r) => r.eventsPerSec)),
      cpuUs: median(rs.map((r) => r.cpuUs)),
      serverCpuUs: median(rs.map((r) => r.serverCpuUs)),
      peakRssMiB: median(rs.map((r) => r.peakRssMiB)),
      driverCpu: median(rs.map((r) => r.driverCpu)),
      otherCpu: Math.max(...rs.map((r) => r.otherCpu)),
      all: rs.map((r) => fmtInt(r.eventsPerSec / 1000) + "k").join(", "),
    };
  };
  const DEST = { nats: "NATS JetStream (file)", redis: "Redis Streams", http: "HTTP webhook" };
  const table = [
    "| destination | contender | events/s | runs | CPU µs/event | server CPU µs/event | peak RSS MiB | vs ceiling | driver / other CPUs |",
    "|---|---|---:|---|---:|---:|---:|---:|---:|",
  ];
  for (const row of rows) {
    const m = med(row.name);
    const ceil = rows.find((c) => c.ceiling && c.dest === row.dest);
    const ratio = row.ceiling
      ? "1.00×"
      : ceil
      ? `${(m.eventsPerSec / med(ceil.name).eventsPerSec).toFixed(2)}×`
      : row.dest === "http"
      ? `${(m.eventsPerSec / 200_000).toFixed(2)}× of 200k`
      : "–";
    table.push(
      `| ${DEST[row.dest as keyof typeof DEST]} | ${row.name} | ${
        fmtInt(m.eventsPerSec)
      } | ${m.all} | ${m.cpuUs.toFixed(2)} | ${m.serverCpuUs.toFixed(2)} | ${
        m.peakRssMiB.toFixed(0)
      } | ${ratio} | ${m.driverCpu.toFixed(2)} / ${m.otherCpu.toFixed(2)} |`,
    );
  }
  const load = Deno.loadavg().map((l) => l.toFixed(1)).join(" ");
  const report = [
    `\n### Network outputs: ${fmtInt(a.count)} on_publish events, ${
      inp.msgBytes.toFixed(0)
    } B JSON messages (native tools: ${a.size} B), ${a.conns} connections, medians of ${a.runs}\n`,
    table.join("\n"),
    `\n(server CPU: nats-server, redis-server, or the HTTP receiver; load average at the end: ${load})`,
    ...notes.map((n) => `\n${n}`),
  ];

  if (a.profile) {
    for (
      const [dest, start] of [
        ["NATS", () => startNats(kit)],
        ["NATS (buffer=memory)", () => startNats(kit).then(inMemory)],
        ["Redis", () => startRedis(kit)],
        ["Redis (buffer=memory)", () => startRedis(kit).then(inMemory)],
      ] as [string, () => Promise<Server>][]
    ) {
      // Not HTTP: with an inspector attached, Deno reports every fetch (body included) to it,
      // which then takes most of the time (op_inspector_emit_protocol_event); use perf there.
      if (dest.startsWith("NATS") ? !have.nats : !have.redis) continue;
      if (a.only.length > 0 && !a.only.includes(dest.split(" ")[0].toLowerCase())) continue;
      console.error(`profile: main.ts → ${dest}`);
      let prof: unknown;
      const res = await withServer(
        start,
        (s) => relayOnce(kit, `main.ts → ${dest}`, s, inp, a, (p) => prof = p),
      );
      const file = `${kit.work}/net-${dest.toLowerCase().replace(/[^a-z]+/g, "-")}.cpuprofile`;
      await Deno.writeTextFile(file, JSON.stringify(prof));
      report.push(
        `\n### Where the time goes (main.ts → ${dest}, ${fmtInt(res.eventsPerSec)} events/s ` +
          `under the profiler; ${file})\n`,
        "By origin (self time, with the runtime and native calls each origin made):\n",
        profileByOrigin(prof, kit.root),
        "\nTotal (inclusive) time of the busiest functions:\n",
        profileInclusive(prof, kit.root),
        "\nSelf time, top functions:\n",
        kit.profileSummary(prof, 15),
      );
    }
  }
  return report.join("\n");
}

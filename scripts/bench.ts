/**
 * End-to-end benchmark (`deno task bench`): the same realistic frames, the same machine, one
 * run; each contender is a subprocess on a free loopback port, driven over 100 connections.
 *
 * Contenders: `drain` (Go, reads bytes only: the loopback ceiling), `main.ts` JSON to a file,
 * JSON to /dev/null, protobuf passthrough to a file and to /dev/null, and the Go peer
 * `seed-go -out json` / `-out none` (built by ../shared/peers/go/build.sh when available).
 *
 * Measured per run: events/s from the load generator's first write until the contender has
 * written all its output (main.ts: `/proc/PID/io` wchar reaches the expected output size; Go
 * tools: they exit after N events), CPU µs/event (user+sys of the contender during the load,
 * from `/proc/PID/stat` or `/usr/bin/time`), peak RSS (VmHWM or max RSS). Medians of `--runs`.
 *
 *   deno task bench                       # main table, medians of 3
 *   deno task bench --sweep payload,conns # + events/s vs payload size and connection count
 *   deno task bench --latency             # + p99 latency at half the max rate
 *   deno task bench --profile             # + where the time goes (CPU profile, top functions)
 *   deno task bench --soak 600            # + RSS over a 10-minute run at full load
 *   deno task bench --net [--size B] [--count N] # only the network set (scripts/bench_net.ts)
 *
 * @module
 */
import { parseArgs } from "node:util";
import { findPeersDir, NET_USAGE, NetArgsError, parseNetArgs, runNet } from "./bench_net.ts";
import { writeFramesFile } from "./mkframes.ts";
import { ByteBuffer, type LoadResult, readLength, writeFrameJsonCode } from "../lib/internal.ts";

const ROOT = new URL("../", import.meta.url).pathname;
// VMQ_BENCH_DIR: a directory of its own, for benches run side by side (outputs, inputs, profiles).
const WORK = Deno.env.get("VMQ_BENCH_DIR") ?? "/tmp/vmq-sidecar/bench";
const PEERS = findPeersDir(ROOT); // ../shared/peers (of the main checkout or a worktree's parent)
const PEER_BUILD = `${PEERS ?? `${ROOT}../shared/peers`}/go/build.sh`;
const PEER_BIN = Deno.env.get("PEER_BUILD_DIR")
  ? `${Deno.env.get("PEER_BUILD_DIR")}/bin`
  : "/tmp/seed-go-build/bin";
const CLK_TCK = 100;

const { values: args } = parseArgs({
  args: Deno.args,
  options: {
    events: { type: "string", default: "2000000" },
    runs: { type: "string", default: "3" },
    conns: { type: "string", default: "100" },
    only: { type: "string" },
    driver: { type: "string", default: "loadgen" },
    sweep: { type: "string" },
    latency: { type: "boolean" },
    rate: { type: "string" },
    profile: { type: "boolean" },
    "profile-target": { type: "string", default: "main.ts json file" },
    soak: { type: "string" },
    "no-table": { type: "boolean" },
    "main-args": { type: "string" },
    "v8-flags": { type: "string" },
    net: { type: "boolean" },
    size: { type: "string" },
    count: { type: "string" },
    baseline: { type: "string" },
    help: { type: "boolean", short: "h" },
  },
});
// ---------------------------------------------------------------------------------------------
// Inputs

interface Input {
  path: string;
  frames: number;
  bytes: number;
  /** Bytes of the JSON lines main.ts writes for these frames (payload base64). */
  jsonBytes: number;
  /** Frames per connection file for blast (path, frames), made on demand. */
  blast?: { path: string; repeat: number };
}

async function input(
  name: string,
  frames: number,
  o: { kind?: "mix" | "publish"; payload?: number } = {},
): Promise<Input> {
  await Deno.mkdir(WORK, { recursive: true });
  const path = `${WORK}/${name}.bin`;
  const infoPath = `${path}.json`;
  let info: { frames: number; bytes: number; jsonBytes: number } | undefined;
  try {
    info = JSON.parse(await Deno.readTextFile(infoPath));
    if (info!.frames !== frames || (await Deno.stat(path)).size !== info!.bytes) info = undefined;
  } catch { /* make it */ }
  if (!info) {
    console.error(`making ${path} (${frames} frames) ...`);
    const w = await writeFramesFile(path, { kind: o.kind ?? "mix", n: frames, payload: o.payload });
    info = { ...w, jsonBytes: await jsonSize(path) };
    await Deno.writeTextFile(infoPath, JSON.stringify(info));
  }
  return { path, ...info };
}

/** The size of main.ts's JSON output for a frames file, computed with the same writer. */
async function jsonSize(path: string): Promise<number> {
  const data = await Deno.readFile(path);
  const out = new ByteBuffer(1 << 20);
  let total = 0;
  for (let p = 0; p < data.length;) {
    const len = readLength(data, p);
    if (writeFrameJsonCode(out, data.subarray(p + 4, p + 4 + len), "base64") >= 0) out.byte(0x0a);
    if (out.pos > 512 * 1024) (total += out.pos), out.reset();
    p += 4 + len;
  }
  return total + out.pos;
}

/**
 * For blast, which sends one file over each connection: an input whose file holds the first
 * frames/conns frames (expected sizes scaled accordingly).
 */
async function blastInput(inp: Input, conns: number): Promise<Input> {
  if (inp.frames % conns !== 0) throw new Error(`blast needs events divisible by ${conns}`);
  const per = inp.frames / conns;
  const path = inp.path.replace(/\.bin$/, `.per${conns}.bin`);
  const infoPath = `${path}.json`;
  let info: { frames: number; bytes: number; jsonBytes: number };
  try {
    info = JSON.parse(await Deno.readTextFile(infoPath));
  } catch {
    const data = await Deno.readFile(inp.path);
    let p = 0;
    for (let i = 0; i < per; i++) p += 4 + readLength(data, p);
    await Deno.writeFile(path, data.subarray(0, p));
    info = { frames: per, bytes: p, jsonBytes: await jsonSize(path) };
    await Deno.writeTextFile(infoPath, JSON.stringify(info));
  }
  return {
    path: inp.path,
    frames: info.frames * conns,
    bytes: info.bytes * conns,
    jsonBytes: info.jsonBytes * conns,
    blast: { path, repeat: 1 },
  };
}

// ---------------------------------------------------------------------------------------------
// Process probes

const nowMs = () => performance.timeOrigin + performance.now();

function cpuTicks(pid: number): number {
  const s = Deno.readTextFileSync(`/proc/${pid}/stat`);
  const f = s.slice(s.lastIndexOf(")") + 2).split(" ");
  return Number(f[11]) + Number(f[12]); // utime, stime (fields 14, 15)
}

function statusKiB(pid: number, key: string): number {
  const m = new RegExp(`^${key}:\\s+(\\d+) kB`, "m").exec(
    Deno.readTextFileSync(`/proc/${pid}/status`),
  );
  return m ? Number(m[1]) : NaN;
}

/** CPU ticks spent by the whole machine (all processes) so far. */
function machineBusyTicks(): number {
  const f = Deno.readTextFileSync("/proc/stat").split("\n")[0].trim().split(/\s+/).slice(1)
    .map(Number);
  return f[0] + f[1] + f[2] + f[5] + f[6] + f[7]; // user nice system irq softirq steal
}

function wchar(pid: number): number {
  return Number(/^wchar: (\d+)/m.exec(Deno.readTextFileSync(`/proc/${pid}/io`))![1]);
}

/** Write system calls made so far by process `pid` (socket reads are not counted there). */
function syscw(pid: number): number {
  return Number(/^syscw: (\d+)/m.exec(Deno.readTextFileSync(`/proc/${pid}/io`))![1]);
}

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

async function waitListening(port: number, child: Deno.ChildProcess, what: string): Promise<void> {
  let exited = false;
  child.status.then(() => exited = true);
  const deadline = performance.now() + 30_000;
  while (performance.now() < deadline) {
    if (exited) throw new Error(`${what} exited before listening`);
    try {
      const c = await Deno.connect({ hostname: "127.0.0.1", port });
      c.close();
      return;
    } catch {
      await sleep(20);
    }
  }
  throw new Error(`${what} did not listen on ${port}`);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function collect(stream: ReadableStream<Uint8Array> | null): Promise<string> {
  if (!stream) return Promise.resolve("");
  return new Response(stream).text();
}

// ---------------------------------------------------------------------------------------------
// Contenders

type Group = "ceiling" | "json" | "protobuf";

interface Contender {
  name: string;
  group: Group;
  /** Go tools exit by themselves after the input; main.ts is watched through /proc. */
  kind: "go" | "ts";
  /** Command (argv) for a port and input. */
  argv(port: number, inp: Input): string[];
  /** main.ts: stdout to /dev/null. */
  devNull?: boolean;
  /** main.ts: the output file (checked for size), if any. */
  outFile?: string;
  /** Expected bytes written (main.ts). */
  expect?(inp: Input): number;
}

const OUT_JSON = `${WORK}/out.jsonl`;
const OUT_PB = `${WORK}/out.pb`;
const GO_OUT = `${WORK}/seed-go.jsonl`;

/**
 * The flags of `deno task start` (permission set, V8 flags) of the checkout at `root`, with its
 * `deno.json` named explicitly (so `-P` reads that checkout's permission set), `--v8-flags` added.
 */
function startFlags(root = ROOT): string[] {
  const start = (JSON.parse(Deno.readTextFileSync(`${root}deno.json`)).tasks.start as string)
    .split(" ").slice(2, -1);
  start.unshift(`--config=${root}deno.json`);
  const extra = args["v8-flags"];
  if (!extra) return start;
  const i = start.findIndex((f) => f.startsWith("--v8-flags="));
  if (i < 0) return [`--v8-flags=${extra}`, ...start];
  return start.with(i, `${start[i]},${extra}`);
}

function mainTs(extra: string[], root = ROOT): string[] {
  return [
    Deno.execPath(),
    "run",
    ...startFlags(root),
    `${root}main.ts`,
    "--admin",
    "off",
    ...extra,
    ...(args["main-args"]?.split(" ").filter(Boolean) ?? []),
  ];
}

function contenders(): Record<string, Contender> {
  const list: Contender[] = [
    {
      name: "drain",
      group: "ceiling",
      kind: "go",
      argv: (port, inp) => [
        `${PEER_BIN}/drain`,
        "-listen",
        `127.0.0.1:${port}`,
        "-expect-bytes",
        String(inp.bytes),
      ],
    },
    {
      name: "seed-go json",
      group: "json",
      kind: "go",
      argv: (port, inp) => [
        `${PEER_BIN}/seed-go`,
        "-listen",
        `127.0.0.1:${port}`,
        "-out",
        "json",
        "-file",
        GO_OUT,
        "-expect",
        String(inp.frames),
      ],
    },
    {
      name: "seed-go none",
      group: "protobuf",
      kind: "go",
      argv: (port, inp) => [
        `${PEER_BIN}/seed-go`,
        "-listen",
        `127.0.0.1:${port}`,
        "-out",
        "none",
        "-expect",
        String(inp.frames),
      ],
    },
    {
      name: "main.ts json file",
      group: "json",
      kind: "ts",
      outFile: OUT_JSON,
      argv: (port) => mainTs(["--listen", `127.0.0.1:${port}`, "--out", `file:${OUT_JSON}`]),
      expect: (inp) => inp.jsonBytes,
    },
    {
      name: "main.ts json /dev/null",
      group: "json",
      kind: "ts",
      devNull: true,
      argv: (port) => mainTs(["--listen", `127.0.0.1:${port}`, "--out", "stdout"]),
      expect: (inp) => inp.jsonBytes,
    },
    {
      name: "main.ts protobuf file",
      group: "protobuf",
      kind: "ts",
      outFile: OUT_PB,
      argv: (port) =>
        mainTs(["--listen", `127.0.0.1:${port}`, "--out", `file:${OUT_PB}?format=protobuf`]),
      expect: (inp) => inp.bytes,
    },
    {
      name: "main.ts protobuf /dev/null",
      group: "protobuf",
      kind: "ts",
      devNull: true,
      argv: (port) =>
        mainTs(["--listen", `127.0.0.1:${port}`, "--out", "stdout", "--format", "protobuf"]),
      expect: (inp) => inp.bytes,
    },
  ];
  const base = baselineRoot();
  if (base) {
    // Every main.ts contender once more from the baseline checkout, right after its own row, so a
    // run round alternates them (A, A′, B, B′ …) and both see the same machine conditions.
    const twins = list.flatMap((c) =>
      c.kind !== "ts" ? [c] : [c, {
        ...c,
        name: `${c.name} ${BASELINE_SUFFIX}`,
        argv: (port: number, inp: Input) =>
          c.argv(port, inp).map((a) => a === `${ROOT}main.ts` ? `${base}main.ts` : a)
            .map((a) => a.startsWith("--config=") ? `--config=${base}deno.json` : a),
      }]
    );
    return Object.fromEntries(twins.map((c) => [c.name, c]));
  }
  return Object.fromEntries(list.map((c) => [c.name, c]));
}

const BASELINE_SUFFIX = "(baseline)";

/** `--baseline DIR`: another checkout (e.g. `git worktree add /tmp/base pre-seams`), with a slash. */
function baselineRoot(): string | undefined {
  const dir = args.baseline;
  if (!dir) return undefined;
  return dir.endsWith("/") ? dir : `${dir}/`;
}

// ---------------------------------------------------------------------------------------------
// One run

interface Result {
  /** CPUs (0..nproc) used by neither the contender nor the driver during the run. */
  otherCpu: number;
  /** CPUs used by the driver. */
  driverCpu: number;
  contender: string;
  events: number;
  seconds: number;
  eventsPerSec: number;
  cpuUsPerEvent: number;
  peakRssMiB: number;
  /** Write system calls per 1000 events (main.ts; NaN for the Go tools). */
  writesPerKEvent: number;
}

interface RunOptions {
  conns: number;
  driver: "loadgen" | "blast";
  /** Events per second for the driver (0 = as fast as possible). */
  rate?: number;
  /** Stamp send times into the frames. */
  stamp?: boolean;
  /** Called while the load runs (e.g. to tail the output); returns a stop function. */
  during?: (pid: number, adminPort: number) => () => void;
  /** Attach a CPU profiler (main.ts only). */
  profile?: (inspectPort: number) => Promise<() => Promise<unknown>>;
  /** main.ts: serve the admin endpoints and call this with their port before stopping it. */
  scrape?: (adminPort: number) => Promise<void>;
}

async function runOnce(c: Contender, inp: Input, o: RunOptions): Promise<Result> {
  for (const f of [OUT_JSON, OUT_PB, GO_OUT]) await Deno.remove(f).catch(() => {});
  const port = freePort();
  const inspectPort = o.profile ? freePort() : undefined;
  let argv = c.argv(port, inp);
  if (c.kind === "ts" && inspectPort) {
    argv = [argv[0], argv[1], `--inspect=127.0.0.1:${inspectPort}`, ...argv.slice(2)];
  }
  const timeFile = `${WORK}/time.txt`;
  if (c.kind === "go") argv = ["/usr/bin/time", "-f", "%U %S %M", "-o", timeFile, ...argv];
  const adminPort = c.kind === "ts" && o.scrape ? freePort() : 0;
  if (adminPort) argv[argv.indexOf("off")] = `127.0.0.1:${adminPort}`;
  const child = new Deno.Command(argv[0], {
    args: argv.slice(1),
    stdout: c.devNull || c.kind === "go" ? "null" : "piped",
    stderr: "piped",
    stdin: "null",
  }).spawn();
  const stderr = collect(child.stderr);
  const stdout = c.devNull || c.kind === "go" ? Promise.resolve("") : collect(child.stdout);
  let exited = false;
  const status = child.status.then((s) => (exited = true, s));
  try {
    await waitListening(port, child, c.name);
    const stopProfile = o.profile && inspectPort ? await o.profile(inspectPort) : undefined;
    const pid = child.pid;
    const cpu0 = c.kind === "ts" ? cpuTicks(pid) : 0;
    const w0 = c.kind === "ts" ? wchar(pid) : 0;
    const sw0 = c.kind === "ts" ? syscw(pid) : 0;
    let writes = NaN;
    const stopDuring = o.during?.(pid, adminPort);
    const busy0 = machineBusyTicks();
    const load = drive(port, inp, o);
    let endMs: number;
    let cpu: number, rssKiB: number;
    if (c.kind === "ts") {
      const want = c.expect!(inp);
      const deadline = performance.now() + 600_000;
      while (true) {
        if (exited) throw new Error(`${c.name} exited early: ${await stderr}`);
        if (wchar(pid) - w0 >= want) break;
        if (performance.now() > deadline) throw new Error(`${c.name}: timeout`);
        await sleep(2);
      }
      endMs = nowMs();
      cpu = (cpuTicks(pid) - cpu0) / CLK_TCK;
      writes = syscw(pid) - sw0;
      rssKiB = statusKiB(pid, "VmHWM");
      stopDuring?.();
      const profile = await stopProfile?.();
      if (profile) lastProfile = profile;
      if (adminPort) await o.scrape!(adminPort);
      child.kill("SIGTERM");
      await status;
      const err = await stderr;
      const m = /stopped: (\d+) events/.exec(err);
      if (!m || Number(m[1]) !== inp.frames) {
        throw new Error(`${c.name}: summary does not report ${inp.frames} events:\n${err}`);
      }
      if (c.outFile) {
        const size = (await Deno.stat(c.outFile)).size;
        if (size !== want) throw new Error(`${c.name}: wrote ${size} bytes, expected ${want}`);
      }
    } else {
      const s = await status;
      endMs = nowMs();
      stopDuring?.();
      if (!s.success) throw new Error(`${c.name} failed: ${await stderr}`);
      const [u, sy, m] = (await Deno.readTextFile(timeFile)).trim().split("\n").pop()!.split(" ");
      cpu = Number(u) + Number(sy);
      rssKiB = Number(m);
    }
    const sent = await load;
    const busy = (machineBusyTicks() - busy0) / CLK_TCK;
    const seconds = (endMs - sent.startMs) / 1000;
    await stdout;
    return {
      otherCpu: Math.max(0, busy - cpu - sent.cpuSeconds) / seconds,
      driverCpu: sent.cpuSeconds / seconds,
      contender: c.name,
      events: inp.frames,
      seconds,
      eventsPerSec: inp.frames / seconds,
      cpuUsPerEvent: cpu * 1e6 / inp.frames,
      peakRssMiB: rssKiB / 1024,
      writesPerKEvent: writes * 1000 / inp.frames,
    };
  } finally {
    if (!exited) {
      try {
        child.kill("SIGKILL");
      } catch { /* gone */ }
      await status;
    }
  }
}

let lastProfile: unknown;

/** Runs the driver; resolves with its result (startMs = first write). */
async function drive(port: number, inp: Input, o: RunOptions): Promise<LoadResult> {
  const addr = `127.0.0.1:${port}`;
  if (o.driver === "blast") {
    const b = inp.blast!;
    const startMs = nowMs();
    const timeFile = `${WORK}/blast-time.txt`;
    const out = await new Deno.Command("/usr/bin/time", {
      args: [
        "-f",
        "%U %S",
        "-o",
        timeFile,
        `${PEER_BIN}/blast`,
        "-addr",
        addr,
        "-conns",
        String(o.conns),
        "-file",
        b.path,
        "-repeat",
        String(b.repeat),
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (!out.success) throw new Error(`blast failed: ${new TextDecoder().decode(out.stderr)}`);
    const [u, sy] = (await Deno.readTextFile(timeFile)).trim().split("\n").pop()!.split(" ");
    const endMs = nowMs();
    return {
      events: inp.frames,
      bytes: inp.bytes,
      seconds: (endMs - startMs) / 1000,
      eventsPerSec: inp.frames / ((endMs - startMs) / 1000),
      startMs,
      endMs,
      cpuSeconds: Number(u) + Number(sy),
    };
  }
  const cmd = [
    "run",
    "-P=bench",
    `${ROOT}scripts/loadgen.ts`,
    "--addr",
    addr,
    "--conns",
    String(o.conns),
    "--file",
    inp.path,
    "--events",
    String(inp.frames),
    "--json",
  ];
  if (o.rate) cmd.push("--rate", String(o.rate));
  if (o.stamp) cmd.push("--stamp");
  const out = await new Deno.Command(Deno.execPath(), {
    args: cmd,
    stdout: "piped",
    stderr: "piped",
  })
    .output();
  if (!out.success) throw new Error(`loadgen failed: ${new TextDecoder().decode(out.stderr)}`);
  return JSON.parse(new TextDecoder().decode(out.stdout));
}

// ---------------------------------------------------------------------------------------------
// Tables

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

function medianResult(rs: Result[]): Result {
  return {
    otherCpu: Math.max(...rs.map((r) => r.otherCpu)),
    driverCpu: median(rs.map((r) => r.driverCpu)),
    contender: rs[0].contender,
    events: rs[0].events,
    seconds: median(rs.map((r) => r.seconds)),
    eventsPerSec: median(rs.map((r) => r.eventsPerSec)),
    cpuUsPerEvent: median(rs.map((r) => r.cpuUsPerEvent)),
    peakRssMiB: median(rs.map((r) => r.peakRssMiB)),
    writesPerKEvent: median(rs.map((r) => r.writesPerKEvent)),
  };
}

const fmtInt = (n: number) => Math.round(n).toLocaleString("en-US");
const fmtX = (n: number | undefined) => n === undefined || !isFinite(n) ? "–" : `${n.toFixed(2)}×`;

async function runTable(
  names: string[],
  inp: Input,
  o: RunOptions,
  runs: number,
): Promise<Map<string, Result>> {
  const all = contenders();
  if (o.driver === "blast" && !inp.blast) inp = await blastInput(inp, o.conns);
  const results = new Map<string, Result[]>();
  for (let r = 0; r < runs; r++) {
    for (const name of names) {
      const res = await runOnce(all[name], inp, o);
      console.error(
        `  run ${r + 1}/${runs} ${name.padEnd(26)} ${fmtInt(res.eventsPerSec).padStart(11)} ev/s ` +
          `${res.cpuUsPerEvent.toFixed(2)} µs/ev ${res.peakRssMiB.toFixed(0)} MiB ` +
          `${res.writesPerKEvent.toFixed(1)} writes/1k ev ` +
          `(driver ${res.driverCpu.toFixed(2)} CPUs, other ${res.otherCpu.toFixed(2)} CPUs)`,
      );
      results.set(name, [...(results.get(name) ?? []), res]);
    }
  }
  // On a loaded machine the best round says more than the median: print it too.
  for (const [name, rs] of results) {
    console.error(
      `  best of ${rs.length} ${name.padEnd(26)} ${
        fmtInt(Math.max(...rs.map((r) => r.eventsPerSec))).padStart(11)
      } ev/s ${Math.min(...rs.map((r) => r.cpuUsPerEvent)).toFixed(2)} µs/ev`,
    );
  }
  return new Map([...results].map(([k, v]) => [k, medianResult(v)]));
}

function mainTable(res: Map<string, Result>): string {
  const drain = res.get("drain")?.eventsPerSec;
  const peer = (g: Group) =>
    res.get(g === "json" ? "seed-go json" : g === "protobuf" ? "seed-go none" : "")?.eventsPerSec;
  const all = contenders();
  const lines = [
    "| contender | events/s | CPU µs/event | peak RSS MiB | vs seed-go | vs drain | driver / other CPUs |" +
    (baselineRoot() ? " vs baseline ev/s · µs/ev |" : ""),
    "|---|---:|---:|---:|---:|---:|---:|" + (baselineRoot() ? "---:|" : ""),
  ];
  for (const r of res.values()) {
    const g = all[r.contender].group;
    const p = peer(g);
    const b = all[r.contender].kind === "ts" && !r.contender.endsWith(BASELINE_SUFFIX)
      ? res.get(`${r.contender} ${BASELINE_SUFFIX}`)
      : undefined;
    const vsBase = !baselineRoot()
      ? ""
      : b
      ? ` ${pct(r.eventsPerSec / b.eventsPerSec)} · ${pct(r.cpuUsPerEvent / b.cpuUsPerEvent)} |`
      : " – |";
    lines.push(
      `| ${r.contender} | ${fmtInt(r.eventsPerSec)} | ${r.cpuUsPerEvent.toFixed(2)} | ${
        r.peakRssMiB.toFixed(0)
      } | ${g === "ceiling" ? "–" : fmtX(p && r.eventsPerSec / p)} | ${
        fmtX(drain && r.eventsPerSec / drain)
      } | ${r.driverCpu.toFixed(2)} / ${r.otherCpu.toFixed(2)} |${vsBase}`,
    );
  }
  return lines.join("\n");
}

/** A ratio as a signed percentage change: 1.034 → "+3.4 %". */
function pct(x: number): string {
  if (!isFinite(x)) return "–";
  const d = (x - 1) * 100;
  return `${d >= 0 ? "+" : "−"}${Math.abs(d).toFixed(1)} %`;
}

// ---------------------------------------------------------------------------------------------
// Latency: tail the JSON output and compare each line's event timestamp (stamped at send time by
// the load generator) with the time the line is seen in the file.

/** Samples events stamped at `fromMs` or later (earlier ones are the warm-up). */
function tailLatency(path: string, samples: number[], fromMs: number): () => void {
  let stop = false;
  const buf = new Uint8Array(4 << 20);
  const dec = new TextDecoder();
  const key = new TextEncoder().encode(`"timestamp":"`);
  let n = 0;
  (async () => {
    let f: Deno.FsFile | undefined;
    while (!stop) {
      try {
        f ??= await Deno.open(path);
      } catch {
        await sleep(1);
        continue;
      }
      const r = f.readSync(buf); // sync: no turn of the event loop between "read" and "seen"
      if (r === null || r === 0) {
        await sleep(1);
        continue;
      }
      const seen = nowMs();
      // Every 50th whole line in this chunk (bytes only; just the timestamp is decoded).
      let at = buf.indexOf(0x0a) + 1;
      while (at > 0 && at < r) {
        const nl = buf.indexOf(0x0a, at);
        if (nl < 0 || nl >= r) break;
        if (n++ % 50 === 0) {
          const k = indexOfBytes(buf, key, at, Math.min(nl, at + 64));
          if (k >= 0) {
            const ts = dec.decode(buf.subarray(k + key.length, k + key.length + 30));
            const ms = Date.parse(ts.slice(0, 19) + "Z") + Number(ts.slice(19, 29)) * 1000;
            if (ms >= fromMs) samples.push(seen - ms);
          }
        }
        at = nl + 1;
      }
    }
    f?.close();
  })();
  return () => stop = true;
}

/**
 * "p50 ≤ x s, p99 ≤ y s (n events)" from a Prometheus histogram's cumulative buckets; what
 * `before` (an earlier scrape) already counted is left out.
 */
function histogramSummary(text: string, name: string, before = ""): string {
  const parse = (t: string) =>
    [...t.matchAll(new RegExp(`^${name}_bucket\\{[^}]*le="([^"]+)"[^}]*\\} (\\S+)$`, "gm"))]
      .map((m) => [m[1] === "+Inf" ? Infinity : Number(m[1]), Number(m[2])] as [number, number]);
  const earlier = new Map(parse(before));
  const buckets = parse(text).map(([le, c]) =>
    [le, c - (earlier.get(le) ?? 0)] as [number, number]
  );
  const total = buckets.at(-1)?.[1] ?? 0;
  if (!total) return "(no samples)";
  const q = (p: number) => buckets.find(([, c]) => c >= p * total)![0];
  const ms = (s: number) => isFinite(s) ? `${s * 1000} ms` : "+Inf";
  return `p50 ≤ ${ms(q(0.5))}, p90 ≤ ${ms(q(0.9))}, p99 ≤ ${ms(q(0.99))} (${total} events)`;
}

function indexOfBytes(buf: Uint8Array, needle: Uint8Array, from: number, to: number): number {
  outer: for (let i = from; i + needle.length <= to; i++) {
    for (let j = 0; j < needle.length; j++) if (buf[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}

// ---------------------------------------------------------------------------------------------
// CPU profile through the inspector (Chrome DevTools Protocol).

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}

async function attachProfiler(port: number): Promise<() => Promise<unknown>> {
  let list: { webSocketDebuggerUrl: string }[] = [];
  for (let i = 0; i < 100 && list.length === 0; i++) {
    try {
      list = await (await fetch(`http://127.0.0.1:${port}/json/list`)).json();
    } catch {
      await sleep(50);
    }
  }
  const ws = new WebSocket(list[0].webSocketDebuggerUrl);
  await new Promise((r, j) => (ws.onopen = r, ws.onerror = j));
  let id = 0;
  const pending = new Map<number, (v: unknown) => void>();
  ws.onmessage = (e) => {
    const m = JSON.parse(e.data);
    if (m.id !== undefined) pending.get(m.id)?.(m.result);
  };
  const call = (method: string, params: unknown = {}) =>
    new Promise<unknown>((resolve) => {
      pending.set(++id, resolve);
      ws.send(JSON.stringify({ id, method, params }));
    });
  await call("Profiler.enable");
  await call("Profiler.setSamplingInterval", { interval: 200 });
  await call("Profiler.start");
  return async () => {
    const r = await call("Profiler.stop") as { profile: unknown };
    ws.close();
    return r.profile;
  };
}

function profileSummary(profile: unknown, top = 25): string {
  const p = profile as { nodes: ProfileNode[] };
  const self = new Map<string, number>();
  let total = 0;
  for (const n of p.nodes) {
    const hits = n.hitCount ?? 0;
    total += hits;
    const f = n.callFrame;
    const file = f.url ? f.url.replace(/^.*\/(lib|scripts|ext|node_modules)\//, "$1/") : "";
    const key = f.functionName
      ? `${f.functionName} (${file}:${f.lineNumber + 1})`
      : file
      ? `(anonymous) (${file}:${f.lineNumber + 1})`
      : `(${f.url || "native"})`;
    self.set(key, (self.get(key) ?? 0) + hits);
  }
  const rows = [...self].sort((a, b) => b[1] - a[1]).slice(0, top);
  return [
    "| self % | function |",
    "|---:|---|",
    ...rows.map(([k, v]) => `| ${(v * 100 / total).toFixed(1)} | \`${k}\` |`),
  ].join("\n");
}

// ---------------------------------------------------------------------------------------------
// Main

async function machine(): Promise<string> {
  const cpu = /model name\s*:\s*(.*)/.exec(await Deno.readTextFile("/proc/cpuinfo"))?.[1];
  return `${
    new Date().toISOString().slice(0, 10)
  }; ${navigator.hardwareConcurrency} CPUs (${cpu}); ` +
    `Linux ${Deno.osRelease()}; Deno ${Deno.version.deno} (V8 ${Deno.version.v8})`;
}

async function havePeer(): Promise<boolean> {
  try {
    await Deno.stat(`${PEER_BIN}/seed-go`);
    return true;
  } catch { /* build it */ }
  try {
    const out = await new Deno.Command("bash", { args: [PEER_BUILD], stdout: "piped" }).output();
    return out.success;
  } catch {
    return false;
  }
}

// Usage and option checks here, after every declaration (contenders() reads OUT_JSON).
if (args.help) {
  console.log(
    "usage: deno task bench [--events N] [--runs N] [--conns N] [--only a,b] [--driver loadgen|blast]\n" +
      "                       [--sweep payload,conns] [--latency [--rate R]] [--profile]\n" +
      "                       [--soak SECONDS] [--no-table] [--main-args 'ARGS'] [--v8-flags F]\n" +
      "                       [--baseline DIR]   (every main.ts row also from the checkout DIR, interleaved)\n" +
      "contenders: " + Object.keys(contenders()).join(", ") + "\n" + NET_USAGE,
  );
  Deno.exit(0);
}
{
  const base = baselineRoot();
  try {
    if (base) Deno.statSync(`${base}main.ts`);
  } catch {
    console.error(
      `bench: --baseline ${args.baseline}: no main.ts there; give a checkout, e.g.\n` +
        `  git worktree add --detach /tmp/vmq-base pre-seams && deno task bench --baseline /tmp/vmq-base`,
    );
    Deno.exit(2);
  }
}
let netArgs: ReturnType<typeof parseNetArgs> | undefined;
try {
  if (args.net) netArgs = parseNetArgs(args);
  else if (args.size !== undefined || args.count !== undefined) {
    throw new NetArgsError("--size and --count belong to the network set: add --net");
  }
} catch (e) {
  if (!(e instanceof NetArgsError)) throw e;
  console.error(`bench: ${e.message}\n${NET_USAGE}`);
  Deno.exit(2);
}

if (netArgs) {
  const net = await runNet(netArgs, {
    root: ROOT,
    work: WORK,
    peerBin: PEER_BIN,
    mainTs,
    input,
    drive: (port, inp, o) => drive(port, inp, o),
    attachProfiler,
    profileSummary,
  });
  console.log(`Machine: ${await machine()}\n${net}`);
  Deno.exit(0);
}

const events = Number(args.events);
const runs = Number(args.runs);
const conns = Number(args.conns);
const driver = args.driver === "blast" ? "blast" : "loadgen";
const peer = await havePeer();
let names = Object.keys(contenders()).filter((n) => peer || contenders()[n].kind === "ts");
if (args.only) names = names.filter((n) => args.only!.split(",").some((o) => n.includes(o)));
const mix = await input(`mix-${events}`, events);
const report: string[] = [`Machine: ${await machine()}`];
if (!peer) report.push("(Go peer not built: seed-go and drain rows are missing)");
const base = { conns, driver } as RunOptions;
let maxJson: number | undefined;

if (!args["no-table"]) {
  console.error(
    `main table: ${events} events (${mix.bytes} bytes), ${conns} connections, ${driver}`,
  );
  const res = await runTable(names, mix, base, runs);
  maxJson = res.get("main.ts json file")?.eventsPerSec;
  report.push(
    `\n### ${events.toLocaleString("en-US")} events (mix, ${
      (mix.bytes / events).toFixed(0)
    } B/frame), ` +
      `${conns} connections, driver ${driver}, medians of ${runs}\n`,
    mainTable(res),
  );
}

for (const sweep of (args.sweep ?? "").split(",").filter(Boolean)) {
  const swNames = names.filter((n) =>
    ["main.ts json file", "main.ts protobuf file", "seed-go json"].includes(n)
  );
  const rows: string[] = [];
  if (sweep === "payload") {
    rows.push(
      "| payload B | " + swNames.map((n) => `${n} ev/s | µs/ev`).join(" | ") + " |",
      "|---:|" + swNames.map(() => "---:|---:").join("|") + "|",
    );
    for (const size of [64, 256, 1024, 4096, 16384, 65536]) {
      const n = Math.min(events, Math.floor(512e6 / (size + 200) / conns) * conns);
      const inp = await input(`publish-${size}-${n}`, n, { kind: "publish", payload: size });
      console.error(`payload ${size} B: ${n} events`);
      const res = await runTable(swNames, inp, base, runs);
      rows.push(
        `| ${size} | ` + swNames.map((k) => {
          const r = res.get(k)!;
          return `${fmtInt(r.eventsPerSec)} | ${r.cpuUsPerEvent.toFixed(2)}`;
        }).join(" | ") + " |",
      );
    }
  } else if (sweep === "conns") {
    rows.push(
      "| connections | " + swNames.map((n) => `${n} ev/s | µs/ev | RSS MiB`).join(" | ") + " |",
      "|---:|" + swNames.map(() => "---:|---:|---:").join("|") + "|",
    );
    for (const c of [1, 100, 1000]) {
      console.error(`${c} connections`);
      const res = await runTable(swNames, mix, { ...base, conns: c }, runs);
      rows.push(
        `| ${c} | ` + swNames.map((k) => {
          const r = res.get(k)!;
          return `${fmtInt(r.eventsPerSec)} | ${r.cpuUsPerEvent.toFixed(2)} | ${
            r.peakRssMiB.toFixed(0)
          }`;
        }).join(" | ") + " |",
      );
    }
  } else throw new Error(`unknown sweep ${sweep}`);
  report.push(`\n### vs ${sweep} (medians of ${runs})\n`, rows.join("\n"));
}

if (args.latency) {
  const rate = args.rate ? Number(args.rate) : maxJson ? Math.round(maxJson / 2) : 0;
  if (!rate) throw new Error("--latency needs --rate or the main table's main.ts json file row");
  const n = events; // at half the max rate: a few seconds
  const inp = n === events ? mix : await input(`mix-${n}`, n);
  const samples: number[] = [];
  const c = contenders()["main.ts json file"];
  console.error(`latency at ${rate} events/s (${n} events)`);
  // A freshly started sidecar runs unoptimized code for its first second (JIT): events of the
  // warm-up are left out, as a sidecar that has been running meets none of that.
  const WARMUP_MS = 1500;
  let warm = "", metrics = "";
  const r = await runOnce(c, inp, {
    ...base,
    driver: "loadgen",
    rate,
    stamp: true,
    during: (_pid, port) => {
      const stopTail = tailLatency(OUT_JSON, samples, nowMs() + WARMUP_MS);
      const t = setTimeout(async () => {
        warm = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      }, WARMUP_MS);
      return () => (stopTail(), clearTimeout(t));
    },
    scrape: async (port) => {
      metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    },
  });
  samples.sort((a, b) => a - b);
  const q = (p: number) => samples[Math.min(samples.length - 1, Math.floor(p * samples.length))];
  report.push(
    `\n### Latency at ${fmtInt(rate)} events/s (half the max), ${conns} connections, ` +
      `after a ${WARMUP_MS / 1000} s warm-up\n`,
    `socket write (event timestamp) → line in the output file, ${samples.length} sampled events: ` +
      `p50 ${q(0.5).toFixed(1)} ms, p90 ${q(0.9).toFixed(1)} ms, p99 ${q(0.99).toFixed(1)} ms, ` +
      `max ${samples[samples.length - 1].toFixed(1)} ms; achieved ${
        fmtInt(r.eventsPerSec)
      } events/s, ` +
      `${r.cpuUsPerEvent.toFixed(2)} µs/event, peak RSS ${r.peakRssMiB.toFixed(0)} MiB; ` +
      `load generator ${r.driverCpu.toFixed(2)} CPUs, bench and others ${
        r.otherCpu.toFixed(2)
      } CPUs`,
    `\n\nThe sidecar's own histograms (per batch, weighted by events): ` +
      `\`vmq_sidecar_event_latency_seconds\` (event timestamp → written): ` +
      `${histogramSummary(metrics, "vmq_sidecar_event_latency_seconds", warm)}; ` +
      `\`vmq_sidecar_output_latency_seconds\` (read → written): ` +
      `${histogramSummary(metrics, "vmq_sidecar_output_latency_seconds", warm)}`,
  );
}

if (args.profile) {
  const target = args["profile-target"]!;
  console.error(`profile: ${target}`);
  const rate = args.rate && !args.latency ? Number(args.rate) : 0; // --rate alone: profile at it
  await runOnce(contenders()[target], mix, { ...base, profile: attachProfiler, rate });
  report.push(`\n### Where the time goes (${target}, self time)\n`, profileSummary(lastProfile));
  await Deno.writeTextFile(`${WORK}/last.cpuprofile`, JSON.stringify(lastProfile));
}

if (args.soak) {
  report.push(await soak(Number(args.soak), mix));
}

/** One main.ts (JSON to a rotated file) under full load for `secs`; RSS sampled every second. */
async function soak(secs: number, inp: Input): Promise<string> {
  const port = freePort();
  const out = `${WORK}/soak.jsonl`;
  const argv = mainTs([
    "--listen",
    `127.0.0.1:${port}`,
    "--out",
    `file:${out}?rotate_bytes=1GiB&keep=1`,
  ]);
  const child = new Deno.Command(argv[0], { args: argv.slice(1), stdout: "null", stderr: "piped" })
    .spawn();
  const stderr = collect(child.stderr);
  await waitListening(port, child, "main.ts (soak)");
  const cpu0 = cpuTicks(child.pid);
  console.error(`soak: ${secs} s at full load`);
  const load = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-P=bench",
      `${ROOT}scripts/loadgen.ts`,
      "--addr",
      `127.0.0.1:${port}`,
      "--conns",
      String(conns),
      "--file",
      inp.path,
      "--events",
      "1e15",
    ],
    stdout: "null",
    stderr: "null",
  }).spawn();
  const rss: number[] = [];
  const t0 = performance.now();
  while (performance.now() - t0 < secs * 1000) {
    await sleep(1000);
    rss.push(statusKiB(child.pid, "VmRSS") / 1024);
  }
  load.kill("SIGKILL");
  await load.status;
  const cpu = (cpuTicks(child.pid) - cpu0) / CLK_TCK;
  const hwm = statusKiB(child.pid, "VmHWM") / 1024;
  child.kill("SIGTERM");
  await child.status;
  const n = Number(/stopped: (\d+) events/.exec(await stderr)?.[1] ?? NaN);
  for (const f of [out, `${out}.1`]) await Deno.remove(f).catch(() => {});
  const minute = (i: number) => rss.slice(i * 60, (i + 1) * 60);
  const perMinute = Array.from(
    { length: Math.ceil(rss.length / 60) },
    (_, i) => Math.max(...minute(i)).toFixed(0),
  ).join(", ");
  return `\n### Soak: ${secs} s at full load, JSON to a rotated file (1 GiB, keep 1), ${conns} connections\n\n` +
    `${fmtInt(n)} events (${fmtInt(n / secs)} events/s), ${
      (cpu * 1e6 / n).toFixed(2)
    } CPU µs/event; ` +
    `RSS max per minute (MiB): ${perMinute}; peak (VmHWM) ${hwm.toFixed(0)} MiB`;
}

console.log(report.join("\n"));

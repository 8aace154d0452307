/**
 * Slow, stalled and churning peers against the real main.ts (issue 15 item 7): slowloris
 * peers trickling a frame a byte at a time, peers announcing a large frame and stalling after
 * its first 64 KiB, connect/disconnect cycles, idle connections held open, and resets before
 * accept. Prints one line per phase: the sidecar's RSS (VmRSS), its open fds (both read from
 * `/proc/PID` of the child), and plugin connections open — at idle before, at the peak and at
 * idle after — with what the phase counted; then checks that a healthy peer is still served.
 *
 *   deno task slow-peers                                 # every phase, the sizes
 *   deno run -P=bench scripts/slow_peers.ts --phase slowloris --peers 200 --stall-ms 5000
 *   deno run -P=bench scripts/slow_peers.ts --phase churn --cycles 10000 --concurrency 100
 *
 * Spawns main.ts the way `deno task start` does (tests/_ops.ts) with `--stall-timeout
 * --stall-ms` (default 2000, so stalls end quickly; the product's default is 30000); resets
 * need `python3` (Deno cannot set SO_LINGER). Needs all permissions (/proc of the child).
 *
 * @module
 */
import { parseArgs } from "node:util";
import { type Ops, scrape, spawnSidecar } from "../tests/_ops.ts";
import { valueOf } from "../tests/_prom.ts";
import { distinctFrames } from "../tests/_servers.ts";

/** The sidecar's memory and descriptors at one moment. */
export interface PeerProbe {
  /** Resident set size (VmRSS), bytes. */
  rss: number;
  /** Open file descriptors (entries of /proc/PID/fd). */
  fds: number;
  /** Plugin connections open (`vmq_sidecar_connections_open`). */
  open: number;
}

/** What one phase did and saw. */
export interface SlowPhaseResult {
  /** Phase name. */
  phase: string;
  /** At idle before. */
  before: PeerProbe;
  /** Highest RSS (and most fds) seen during the phase. */
  peak: PeerProbe;
  /** At idle after (after the settle time). */
  after: PeerProbe;
  /** What the phase counted, e.g. `stalled=100`. */
  counted: string;
  /** Whether the phase's own expectation held (e.g. every stalled peer closed). */
  ok: boolean;
}

/** Sizes of the phases. */
export interface SlowPeersOptions {
  /** Slowloris peers (default 100). */
  peers?: number;
  /** Peers announcing a large frame and stalling (default 50). */
  largePeers?: number;
  /** Size the large frames announce (default 60 MiB). */
  largeBytes?: number;
  /** Connect/disconnect cycles (default 10000). */
  cycles?: number;
  /** Concurrent cycles (default 100). */
  concurrency?: number;
  /** Idle connections held open (default 1000). */
  idle?: number;
  /** How long the idle connections are held (default 3000 ms). */
  holdMs?: number;
  /** Resets before accept (default 300). */
  resets?: number;
  /** The sidecar's --stall-timeout (default 2000 ms). */
  stallMs?: number;
  /** Quiet time before the "after" probe (default 3000 ms). */
  settleMs?: number;
}

const MIB = 1024 * 1024;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The output of `cmd args` (for /proc without all permissions: the tests' set). */
async function output(cmd: string, args: string[]): Promise<string> {
  const r = await new Deno.Command(cmd, { args, stdin: "null", stderr: "null" }).output();
  return new TextDecoder().decode(r.stdout);
}

/**
 * Reads VmRSS from `/proc/PID/status` and counts `/proc/PID/fd` (directly with all
 * permissions, else through `cat` and `ls`: Deno reads /proc only with all permissions);
 * open connections from /metrics.
 */
export async function probePeers(s: Ops): Promise<PeerProbe> {
  const pid = s.proc.pid;
  let status: string, fds = 0;
  try {
    status = await Deno.readTextFile(`/proc/${pid}/status`);
    for (const _ of Deno.readDirSync(`/proc/${pid}/fd`)) fds++;
  } catch (e) {
    if (!(e instanceof Deno.errors.NotCapable)) throw e;
    status = await output("cat", [`/proc/${pid}/status`]);
    fds = (await output("ls", [`/proc/${pid}/fd`])).split("\n").filter(Boolean).length;
  }
  const rssKb = Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1] ?? NaN);
  const m = await scrape(s.adminPort);
  return { rss: rssKb * 1024, fds, open: valueOf(m, "vmq_sidecar_connections_open") ?? NaN };
}

/** A metric value by reason (0 when absent). */
async function reason(s: Ops, metric: string, r: string): Promise<number> {
  return valueOf(await scrape(s.adminPort), metric, { reason: r }) ?? 0;
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let at = 0; at < bytes.length;) at += await conn.write(bytes.subarray(at));
}

/** Resolves once the sidecar closed `conn` (EOF or reset), or after `ms` (false). */
async function closedWithin(conn: Deno.Conn, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const buf = new Uint8Array(16);
  const until = Date.now() + ms;
  try {
    while (Date.now() < until) {
      const r = await Promise.race([
        conn.read(buf).catch(() => null),
        new Promise<"wait">((res) => timer = setTimeout(() => res("wait"), until - Date.now())),
      ]);
      clearTimeout(timer);
      if (r === "wait") return false;
      if (r === null) return true;
    }
    return false;
  } finally {
    clearTimeout(timer);
  }
}

/** Runs `load` while sampling the peak every 250 ms; then settles and probes again. */
async function phase(
  s: Ops,
  name: string,
  settleMs: number,
  load: () => Promise<{ counted: string; ok: boolean }>,
): Promise<SlowPhaseResult> {
  const before = await probePeers(s);
  let peak = before, sampling = true;
  const sampler = (async () => {
    while (sampling) {
      await sleep(250);
      const p = await probePeers(s).catch(() => undefined);
      if (p && p.rss > peak.rss) peak = { ...p, fds: Math.max(p.fds, peak.fds) };
      else if (p && p.fds > peak.fds) peak = { ...peak, fds: p.fds, open: p.open };
    }
  })();
  let r: { counted: string; ok: boolean };
  try {
    r = await load();
  } finally {
    sampling = false;
    await sampler;
  }
  await sleep(settleMs);
  const after = await probePeers(s);
  return { phase: name, before, peak, after, ...r };
}

/** Slowloris: each peer announces a 1000-byte frame and sends a byte every stall/10 ms. */
export function slowloris(s: Ops, o: SlowPeersOptions = {}): Promise<SlowPhaseResult> {
  const peers = o.peers ?? 100, stall = o.stallMs ?? 2000;
  return phase(s, `slowloris x${peers}`, o.settleMs ?? 3000, async () => {
    const start = await reason(s, "vmq_sidecar_connection_errors_total", "stalled");
    const closed = await Promise.all(Array.from({ length: peers }, async () => {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port: s.port });
      conn.setNoDelay(true);
      let gone = false;
      const watch = closedWithin(conn, 20 * stall).then((c) => (gone = c));
      try {
        await writeAll(conn, new Uint8Array([0, 0, 3, 232]));
        // A byte every tenth of the timeout: 1000 bytes would take 100 timeouts.
        for (let i = 0; i < 1000 && !gone; i++) {
          await sleep(stall / 10);
          if (!gone) await writeAll(conn, new Uint8Array([0])).catch(() => (gone = true));
        }
        await watch;
        return gone;
      } finally {
        conn.close();
      }
    }));
    const stalled = await reason(s, "vmq_sidecar_connection_errors_total", "stalled") - start;
    const n = closed.filter(Boolean).length;
    return {
      counted: `closed=${n}/${peers} stalled=${stalled}`,
      ok: n === peers && stalled === peers,
    };
  });
}

/** Peers announcing a large frame, sending its first 64 KiB, then stalling. */
export function largeHeaders(s: Ops, o: SlowPeersOptions = {}): Promise<SlowPhaseResult> {
  const peers = o.largePeers ?? 50, size = o.largeBytes ?? 60 * MIB, stall = o.stallMs ?? 2000;
  return phase(s, `stalled ${size / MIB} MiB headers x${peers}`, o.settleMs ?? 3000, async () => {
    const start = await reason(s, "vmq_sidecar_connection_errors_total", "stalled");
    const head = new Uint8Array(4 + 64 * 1024);
    new DataView(head.buffer).setUint32(0, size);
    head[4] = 0x0a; // the start of an Any, as the plugin writes it
    const closed = await Promise.all(Array.from({ length: peers }, async () => {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port: s.port });
      try {
        await writeAll(conn, head);
        return await closedWithin(conn, 20 * stall);
      } finally {
        conn.close();
      }
    }));
    const stalled = await reason(s, "vmq_sidecar_connection_errors_total", "stalled") - start;
    const n = closed.filter(Boolean).length;
    return {
      counted: `closed=${n}/${peers} stalled=${stalled}`,
      ok: n === peers && stalled === peers,
    };
  });
}

/** Connect/disconnect cycles: each connects and closes at once, `concurrency` at a time. */
export function churn(s: Ops, o: SlowPeersOptions = {}): Promise<SlowPhaseResult> {
  const cycles = o.cycles ?? 10_000, concurrency = o.concurrency ?? 100;
  return phase(s, `connect/disconnect x${cycles}`, o.settleMs ?? 3000, async () => {
    const m0 = valueOf(await scrape(s.adminPort), "vmq_sidecar_connections_accepted_total") ?? 0;
    let next = 0;
    await Promise.all(Array.from({ length: concurrency }, async () => {
      while (next < cycles) {
        next++;
        const conn = await Deno.connect({ hostname: "127.0.0.1", port: s.port });
        conn.close();
      }
    }));
    // Accepted (the last ones maybe a moment later), none left open.
    let accepted = 0;
    for (let i = 0; i < 100; i++) {
      const m = await scrape(s.adminPort);
      accepted = (valueOf(m, "vmq_sidecar_connections_accepted_total") ?? 0) - m0;
      if (accepted >= cycles && valueOf(m, "vmq_sidecar_connections_open") === 0) break;
      await sleep(100);
    }
    return { counted: `accepted=${accepted}`, ok: accepted === cycles };
  });
}

/** Idle connections: opened, held `holdMs` without a byte, then closed by the peers. */
export function idle(s: Ops, o: SlowPeersOptions = {}): Promise<SlowPhaseResult> {
  const n = o.idle ?? 1000, hold = o.holdMs ?? 3000;
  return phase(s, `idle x${n}`, o.settleMs ?? 3000, async () => {
    const conns: Deno.TcpConn[] = [];
    try {
      for (let i = 0; i < n; i++) {
        conns.push(await Deno.connect({ hostname: "127.0.0.1", port: s.port }));
      }
      let open = 0;
      for (let i = 0; i < 100 && open < n; i++) {
        open = valueOf(await scrape(s.adminPort), "vmq_sidecar_connections_open") ?? 0;
        if (open < n) await sleep(100);
      }
      await sleep(hold);
      const still = valueOf(await scrape(s.adminPort), "vmq_sidecar_connections_open") ?? 0;
      return { counted: `open=${open} after ${hold} ms: ${still}`, ok: open === n && still === n };
    } finally {
      for (const c of conns) c.close();
    }
  });
}

/**
 * Resets before accept: the sidecar is stopped (SIGSTOP) while `resets` connections connect
 * and reset (SO_LINGER 0), so each accept then fails; a healthy peer connects after them.
 */
export function resets(s: Ops, o: SlowPeersOptions = {}): Promise<SlowPhaseResult> {
  const n = o.resets ?? 300;
  return phase(s, `resets before accept x${n}`, o.settleMs ?? 3000, async () => {
    const m0 = await scrape(s.adminPort);
    const failed0 = ["not_connected", "aborted", "other"].reduce(
      (t, r) => t + (valueOf(m0, "vmq_sidecar_accept_errors_total", { reason: r }) ?? 0),
      0,
    );
    const script = `
import socket, struct
socks = []
for _ in range(${n}):
    s = socket.socket()
    s.settimeout(5)
    s.connect(("127.0.0.1", ${s.port}))
    socks.append(s)
for s in socks:
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()
`;
    Deno.kill(s.proc.pid, "SIGSTOP");
    try {
      const r = await new Deno.Command("python3", { args: ["-c", script], stdin: "null" }).output();
      if (r.code !== 0) throw new Error(`python3: ${new TextDecoder().decode(r.stderr)}`);
    } finally {
      Deno.kill(s.proc.pid, "SIGCONT");
    }
    const served = await healthy(s, "after-resets");
    const m = await scrape(s.adminPort);
    const failed = ["not_connected", "aborted", "other"].reduce(
      (t, r) => t + (valueOf(m, "vmq_sidecar_accept_errors_total", { reason: r }) ?? 0),
      0,
    ) - failed0;
    const reset = (valueOf(m, "vmq_sidecar_connection_errors_total", { reason: "reset" }) ?? 0) -
      (valueOf(m0, "vmq_sidecar_connection_errors_total", { reason: "reset" }) ?? 0);
    // Each reset is either a failed accept or an accepted connection that reads a reset.
    return {
      counted: `failed accepts=${failed} resets read=${reset}; healthy peer served: ${served}`,
      ok: served,
    };
  });
}

/** Sends 100 events from a healthy peer; true once the sidecar counted all of them. */
export async function healthy(s: Ops, tag: string): Promise<boolean> {
  const received =
    async () => (valueOf(await scrape(s.adminPort), "vmq_sidecar_events_received_total", {
      hook: "on_publish",
    }) ?? 0);
  const before = await received();
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: s.port });
  try {
    for (const f of distinctFrames(tag, 100)) await writeAll(conn, f);
  } finally {
    conn.close();
  }
  for (let i = 0; i < 200; i++) {
    if ((await received()) - before >= 100) return true;
    await sleep(50);
  }
  return false;
}

/** One line for a phase: RSS and fds before → peak → after, and what it counted. */
export function formatSlowPhase(r: SlowPhaseResult): string {
  const mib = (b: number) => (b / MIB).toFixed(1);
  return `${r.phase.padEnd(34)} rss ${mib(r.before.rss)} → ${mib(r.peak.rss)} → ${
    mib(r.after.rss)
  } MiB  fds ${r.before.fds} → ${r.peak.fds} → ${r.after.fds}  open ${r.before.open} → ${r.after.open}  ${r.counted}${
    r.ok ? "" : "  UNEXPECTED"
  }`;
}

/** Spawns main.ts (start task flags) for these phases: a stall timeout, output discarded. */
export function spawnForSlowPeers(stallMs: number): Promise<Ops> {
  return spawnSidecar([
    "--listen",
    "127.0.0.1:0",
    "--admin",
    "127.0.0.1:0",
    "--stall-timeout",
    String(stallMs),
    "--out",
    "stdout?format=protobuf",
  ], { stdout: "null" });
}

const PHASES = {
  slowloris,
  large: largeHeaders,
  churn,
  idle,
  resets,
} as const;

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      phase: { type: "string", default: "all" },
      peers: { type: "string" },
      "large-peers": { type: "string" },
      cycles: { type: "string" },
      concurrency: { type: "string" },
      idle: { type: "string" },
      resets: { type: "string" },
      "stall-ms": { type: "string" },
      "settle-ms": { type: "string" },
    },
  });
  const num = (v: string | undefined) => (v === undefined ? undefined : Number(v));
  const o: SlowPeersOptions = {
    peers: num(values.peers),
    largePeers: num(values["large-peers"]),
    cycles: num(values.cycles),
    concurrency: num(values.concurrency),
    idle: num(values.idle),
    resets: num(values.resets),
    stallMs: num(values["stall-ms"]) ?? 2000,
    settleMs: num(values["settle-ms"]),
  };
  const names = values.phase === "all"
    ? Object.keys(PHASES) as (keyof typeof PHASES)[]
    : values.phase.split(",") as (keyof typeof PHASES)[];
  for (const n of names) {
    if (!(n in PHASES)) {
      console.error(`unknown phase ${n}; phases: ${Object.keys(PHASES).join(", ")}, all`);
      Deno.exit(2);
    }
  }
  const s = await spawnForSlowPeers(o.stallMs!);
  let failed = false;
  try {
    for (const n of names) {
      const r = await PHASES[n](s, o);
      console.log(formatSlowPhase(r));
      failed ||= !r.ok;
    }
    const served = await healthy(s, "final");
    console.log(`a healthy peer after every phase: ${served ? "served" : "NOT SERVED"}`);
    failed ||= !served;
  } finally {
    s.kill("SIGTERM");
    const r = await s.wait();
    if (r.code !== 0) console.error(`sidecar exited ${r.code}:\n${r.stderr.slice(-2000)}`);
  }
  Deno.exit(failed ? 1 : 0);
}

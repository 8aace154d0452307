// Limits against hostile or runaway peers (issue 15 item 3), on the real main.ts over real TCP:
// --max-connections refuses the excess (counted) and leaves the open ones unaffected; thousands
// of bad connections log a bounded number of lines (each reason's first few, then a summary per
// interval with counts per reason) while the metrics count every one of them.
import { assert, assertEquals } from "./_assert.ts";
import { scrape, spawnSidecar } from "./_ops.ts";
import { valueOf } from "./_prom.ts";
import { jsonLines, waitFor } from "./_sidecar.ts";
import { distinctFrames } from "./_servers.ts";
import { formatHeld, LogLimiter } from "../lib/internal.ts";

const ERRORS = "vmq_sidecar_connection_errors_total";
const REFUSED = "vmq_sidecar_connections_refused_total";

/** The counts per reason of every summary of held-back log lines in `stderr`, added up. */
function heldBack(stderr: string): Map<string, number> {
  const held = new Map<string, number>();
  const re = /held back \d+ log lines about plugin connections in the last \d+ s: ([^(]*) \(/g;
  for (const m of stderr.matchAll(re)) {
    for (const pair of m[1].split(", ")) {
      const [k, v] = pair.split("=");
      held.set(k, (held.get(k) ?? 0) + Number(v));
    }
  }
  return held;
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let at = 0; at < bytes.length;) at += await conn.write(bytes.subarray(at));
}

/** Resolves true once the peer closed `conn` (EOF or reset), false after 10 s. */
async function closedByPeer(conn: Deno.Conn): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const r = await Promise.race([
    conn.read(new Uint8Array(16)).catch(() => null),
    new Promise<"open">((res) => timer = setTimeout(() => res("open"), 10_000)),
  ]);
  clearTimeout(timer);
  return r === null;
}

Deno.test("--max-connections: the excess is refused and counted, the open ones are unaffected, a freed slot is reused", async () => {
  const s = await spawnSidecar([
    "--listen",
    "127.0.0.1:0",
    "--admin",
    "127.0.0.1:0",
    "--max-connections",
    "3",
  ]);
  s.readStdout();
  const holders: Deno.TcpConn[] = [];
  try {
    const frames = [0, 1, 2].map((h) => distinctFrames(`holder${h}`, 20));
    for (let h = 0; h < 3; h++) {
      const c = await Deno.connect({ hostname: "127.0.0.1", port: s.port });
      holders.push(c);
      for (const f of frames[h].slice(0, 10)) await writeAll(c, f);
    }
    await waitFor(() => s.stdout().includes('"holder2-9"'), "the holders' first events", 15_000);
    // 50 more while 3 are open: each closed at once, nothing of theirs delivered.
    const extra = distinctFrames("extra", 50);
    for (let i = 0; i < 50; i++) {
      const c = await Deno.connect({ hostname: "127.0.0.1", port: s.port });
      await writeAll(c, extra[i]).catch(() => {}); // may already be closed
      assert(await closedByPeer(c), `extra connection ${i} was not closed`);
      c.close();
    }
    const m = await scrape(s.adminPort);
    assertEquals(valueOf(m, REFUSED, { reason: "max_connections" }), 50);
    assertEquals(valueOf(m, "vmq_sidecar_connections_accepted_total"), 3);
    assertEquals(valueOf(m, "vmq_sidecar_connections_open"), 3);
    // The open ones go on as if nothing happened.
    for (let h = 0; h < 3; h++) for (const f of frames[h].slice(10)) await writeAll(holders[h], f);
    holders.pop()!.close();
    // Its slot is free again: a new connection is served.
    await waitFor(
      async () => valueOf(await scrape(s.adminPort), "vmq_sidecar_connections_open") === 2,
      "the closed holder's slot freed",
      10_000,
    );
    const late = await Deno.connect({ hostname: "127.0.0.1", port: s.port });
    await writeAll(late, distinctFrames("late", 1)[0]);
    late.close();
    for (const c of holders.splice(0)) c.close();
    await waitFor(() => s.stdout().includes('"late-0"'), "the late connection's event", 15_000);
    s.kill("SIGTERM");
    const { code, stdout, stderr } = await s.wait();
    assertEquals(code, 0, stderr);
    const ids = jsonLines(stdout).map((e) => e.client_id).sort();
    const want = [
      ...[0, 1, 2].flatMap((h) => frames[h].map((_, i) => `holder${h}-${i}`)),
      "late-0",
    ];
    assertEquals(ids, want.sort(), "every holder's event exactly once, none of the refused");
    // Refusals are logged within the per-connection limit (5, then summarized).
    assertEquals(stderr.match(/refused connection: 3 connections open/g)?.length, 5, stderr);
    assert(
      /held back 45 log lines about plugin connections .*: max_connections=45/.test(stderr),
      stderr,
    );
  } finally {
    for (const c of holders) c.close();
    try {
      s.kill("SIGKILL");
    } catch { /* exited */ }
    await s.proc.status;
  }
});

/** What each kind of bad connection sends, and the reason it is counted under. */
const BAD: readonly { reason: string; bytes: Uint8Array; closeFirst: boolean }[] = [
  // A length over --max-frame-bytes: the sidecar closes.
  { reason: "frame_too_large", bytes: new Uint8Array([0xff, 0xff, 0xff, 0xff]), closeFirst: false },
  // A 2-byte frame that is not an Any (field number 0): the sidecar closes.
  {
    reason: "malformed_envelope",
    bytes: new Uint8Array([0, 0, 0, 2, 0x00, 0x00]),
    closeFirst: false,
  },
  // 10 bytes of a frame announcing 100, then the peer closes.
  {
    reason: "truncated_frame",
    bytes: new Uint8Array([0, 0, 0, 100, ...new Uint8Array(10)]),
    closeFirst: true,
  },
];

async function badConnection(port: number, kind: (typeof BAD)[number]): Promise<void> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    for (let at = 0; at < kind.bytes.length;) at += await conn.write(kind.bytes.subarray(at));
    if (!kind.closeFirst) {
      // Wait (bounded) for the sidecar to close, so the TIME_WAIT is on its side.
      const timer = setTimeout(() => conn.close(), 10_000);
      await conn.read(new Uint8Array(16)).catch(() => null);
      clearTimeout(timer);
    }
  } finally {
    try {
      conn.close();
    } catch { /* closed by the timer */ }
  }
}

Deno.test("20,000 bad connections log a bounded number of lines; the counters count all of them", async () => {
  const N = 20_000, CONCURRENCY = 50;
  const s = await spawnSidecar(
    ["--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--max-frame-bytes", "1MiB"],
    { stdout: "null" },
  );
  const before = s.stderr().split("\n").length;
  try {
    let next = 0;
    await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
      while (next < N) {
        const i = next++;
        await badConnection(s.port, BAD[i % BAD.length]);
      }
    }));
    const count = async () => {
      const m = await scrape(s.adminPort);
      return BAD.map((b) => valueOf(m, ERRORS, { reason: b.reason }) ?? 0);
    };
    await waitFor(async () => (await count()).reduce((a, b) => a + b) >= N, `${N} errors`, 60_000);
    const counts = await count();
    assertEquals(
      counts,
      BAD.map((_, k) => Math.floor(N / BAD.length) + (k < N % BAD.length ? 1 : 0)),
    );
    s.kill("SIGTERM");
    const { code, stderr } = await s.wait();
    assertEquals(code, 0, stderr.slice(-2000));
    const lines = stderr.split("\n").slice(before - 1).filter((l) => l.length > 0);
    const perConnection = lines.filter((l) =>
      /closing connection|ended inside a frame|held back/.test(l)
    );
    console.log(
      `${N} bad connections: ${lines.length} log lines (${perConnection.length} about connections)`,
    );
    // Each reason's first 5, and a summary per 10 s (the test takes well under a few minutes).
    assert(perConnection.length <= BAD.length * 5 + 30, perConnection.slice(0, 40).join("\n"));
    assert(lines.length <= 100, lines.slice(0, 120).join("\n"));
    // The held-back lines are summarized with counts per reason (at the latest at the stop),
    // and together with the ones shown they add up to every error.
    const held = heldBack(stderr);
    BAD.forEach((b, k) => assertEquals(held.get(b.reason), counts[k] - 5, `${b.reason} held back`));
  } finally {
    try {
      s.kill("SIGKILL");
    } catch { /* exited */ }
    await s.proc.status;
  }
});

Deno.test("LogLimiter: first lines per reason, then one summary per interval with counts; a quiet interval ends the burst", async () => {
  const summaries: string[] = [];
  const limit = new LogLimiter({
    first: 2,
    intervalMs: 100,
    summary: (held, ms) => summaries.push(`${ms}:${formatHeld(held)}`),
  });
  const shown: string[] = [];
  for (let i = 0; i < 1000; i++) {
    const reason = i % 3 === 0 ? "reset" : "frame_too_large";
    const r = limit.allow(reason);
    if (r.ok) shown.push(`${reason}#${r.shown}`);
  }
  assertEquals(shown, ["reset#1", "frame_too_large#1", "frame_too_large#2", "reset#2"]);
  await waitFor(() => summaries.length === 1, "a summary", 5000);
  assertEquals(summaries, ["100:frame_too_large=664, reset=332"]);
  // Nothing held back for a whole interval: the burst is over and a reason shows again.
  await new Promise((r) => setTimeout(r, 350));
  assertEquals(limit.allow("reset").ok, true);
  assertEquals(limit.allow("reset").ok, true);
  assertEquals(limit.allow("reset").ok, false);
  limit.close(); // flushes what is held back, stops the timer
  assertEquals(summaries, ["100:frame_too_large=664, reset=332", "100:reset=1"]);
});

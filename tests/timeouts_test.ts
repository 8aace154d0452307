// Hostile and slow peers against the real main.ts over real TCP (issue 15 items 1 and 2): a
// frame that stalls (silent, or trickled a byte at a time) is closed after --stall-timeout and
// counted; a healthy connection pausing between frames is not; --idle-timeout is off by default
// and closes idle connections when set; peers outside --allow-peers are refused at once and
// counted; a non-loopback --listen needs --allow-peers.
import { assert, assertEquals } from "./_assert.ts";
import { type Ops, scrape, spawnSidecar } from "./_ops.ts";
import { valueOf } from "./_prom.ts";
import { runSidecar, sidecarTempDir, waitFor } from "./_sidecar.ts";
import { distinctFrames } from "./_servers.ts";
import { LOOPBACK_PEERS, parseCidr, peerAllowed } from "../lib/internal.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function spawn(extra: string[]): Promise<Ops> {
  return spawnSidecar(["--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0", ...extra]);
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let at = 0; at < bytes.length;) at += await conn.write(bytes.subarray(at));
}

/** Resolves true once the peer closed `conn` (EOF or reset), false if `ms` pass first. */
async function closedWithin(conn: Deno.Conn, ms: number): Promise<boolean> {
  const buf = new Uint8Array(64);
  const until = Date.now() + ms;
  while (Date.now() < until) {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const r = await Promise.race([
      conn.read(buf).catch(() => null),
      new Promise<"wait">((res) => timer = setTimeout(() => res("wait"), until - Date.now())),
    ]);
    clearTimeout(timer);
    if (r === "wait") return false;
    if (r === null) return true;
  }
  return false;
}

async function reasonCount(s: Ops, metric: string, reason: string): Promise<number | undefined> {
  return valueOf(await scrape(s.adminPort), metric, { reason });
}

const ERRORS = "vmq_sidecar_connection_errors_total";
const REFUSED = "vmq_sidecar_connections_refused_total";

Deno.test("stall timeout: a silent stall inside a frame is closed, counted and logged", async () => {
  const s = await spawn(["--stall-timeout", "500"]);
  try {
    assertEquals(await reasonCount(s, ERRORS, "stalled"), 0, "zero-initialised");
    assertEquals(await reasonCount(s, ERRORS, "idle"), 0, "zero-initialised");
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: s.port });
    // A frame announcing 1000 bytes, 10 of them sent, then silence.
    await writeAll(conn, new Uint8Array([0, 0, 3, 232, ...new Uint8Array(10)]));
    assert(await closedWithin(conn, 15_000), "the stalled connection was closed");
    conn.close();
    await waitFor(async () => (await reasonCount(s, ERRORS, "stalled")) === 1, "stalled = 1", 5000);
    assert(
      /did not complete within 500 ms \(--stall-timeout; 14 bytes of it read\)/.test(s.stderr()),
      s.stderr(),
    );
  } finally {
    s.kill("SIGTERM");
    await s.wait();
  }
});

Deno.test("stall timeout: a trickle (a byte every 1/10 of the timeout) is closed all the same", async () => {
  // The 1 byte/s slowloris scaled down: gaps far shorter than the timeout, so "no byte for N ms"
  // would never fire; the frame not completing within the timeout does.
  const s = await spawn(["--stall-timeout", "1000"]);
  try {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: s.port });
    conn.setNoDelay(true);
    await writeAll(conn, new Uint8Array([0, 0, 3, 232])); // announces 1000 bytes
    let closed = false;
    const watcher = closedWithin(conn, 30_000).then((c) => closed = c);
    let sent = 0;
    for (; sent < 300 && !closed; sent++) {
      try {
        await writeAll(conn, new Uint8Array([sent & 0xff]));
      } catch {
        break; // reset by the sidecar: closed
      }
      await sleep(100);
    }
    await watcher;
    conn.close();
    assert(closed, `still open after trickling ${sent} bytes`);
    assert(sent < 300, `trickled ${sent} bytes`);
    await waitFor(async () => (await reasonCount(s, ERRORS, "stalled")) === 1, "stalled = 1", 5000);
  } finally {
    s.kill("SIGTERM");
    await s.wait();
  }
});

Deno.test("a healthy connection pausing between frames is never closed; idle timeout off by default", async () => {
  const s = await spawn(["--stall-timeout", "500"]);
  s.readStdout();
  try {
    const frames = distinctFrames("healthy", 4);
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: s.port });
    conn.setNoDelay(true);
    for (const f of frames) {
      // Each frame in two writes well within the timeout, then a pause three times as long.
      await writeAll(conn, f.subarray(0, 7));
      await sleep(100);
      await writeAll(conn, f.subarray(7));
      await sleep(1500);
    }
    assert(!(await closedWithin(conn, 300)), "the healthy connection is still open");
    conn.close();
    await waitFor(() => s.stdout().split("\n").filter(Boolean).length === 4, "4 events", 10_000);
    assertEquals(await reasonCount(s, ERRORS, "stalled"), 0);
    assertEquals(await reasonCount(s, ERRORS, "idle"), 0);
  } finally {
    s.kill("SIGTERM");
    await s.wait();
  }
});

Deno.test("idle timeout, when set, closes a connection idle between frames and counts it", async () => {
  const s = await spawn(["--idle-timeout", "500"]);
  s.readStdout();
  try {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: s.port });
    await writeAll(conn, distinctFrames("idle", 1)[0]);
    assert(await closedWithin(conn, 15_000), "the idle connection was closed");
    conn.close();
    await waitFor(async () => (await reasonCount(s, ERRORS, "idle")) === 1, "idle = 1", 5000);
    assertEquals(await reasonCount(s, ERRORS, "stalled"), 0);
    await waitFor(() => s.stdout().includes('"idle-0"'), "the event before the idle close", 10_000);
    assert(/closing idle connection .*nothing received for 500 ms/.test(s.stderr()), s.stderr());
  } finally {
    s.kill("SIGTERM");
    await s.wait();
  }
});

Deno.test("--allow-peers: a peer outside the list is refused at once and counted", async () => {
  const s = await spawn(["--allow-peers", "10.0.0.0/8"]);
  s.readStdout();
  try {
    assertEquals(await reasonCount(s, REFUSED, "not_allowed"), 0, "zero-initialised");
    assertEquals(await reasonCount(s, REFUSED, "max_connections"), 0, "zero-initialised");
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: s.port });
    await writeAll(conn, distinctFrames("refused", 1)[0]).catch(() => {});
    assert(await closedWithin(conn, 10_000), "refused connection closed");
    conn.close();
    await waitFor(async () => (await reasonCount(s, REFUSED, "not_allowed")) === 1, "1", 5000);
    assertEquals(await reasonCount(s, REFUSED, "max_connections"), 0);
    assertEquals(valueOf(await scrape(s.adminPort), "vmq_sidecar_connections_accepted_total"), 0);
    assert(
      /refused connection from 127\.0\.0\.1:\d+: not in --allow-peers \(10\.0\.0\.0\/8\)/.test(
        s.stderr(),
      ),
      s.stderr(),
    );
  } finally {
    s.kill("SIGTERM");
    const r = await s.wait();
    assert(!r.stdout.includes("refused-0"), "nothing of the refused peer delivered");
  }
});

Deno.test("--allow-peers: a peer inside the list is served", async () => {
  const s = await spawn(["--allow-peers", "10.0.0.0/8, 127.0.0.1"]);
  s.readStdout();
  try {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: s.port });
    await writeAll(conn, distinctFrames("inside", 1)[0]);
    conn.close();
    await waitFor(() => s.stdout().includes('"inside-0"'), "the event", 10_000);
    assertEquals(await reasonCount(s, REFUSED, "not_allowed"), 0);
  } finally {
    s.kill("SIGTERM");
    await s.wait();
  }
});

Deno.test("a non-loopback --listen without --allow-peers → exit 2 saying so", async () => {
  const r = await runSidecar(["--listen", "0.0.0.0:0"]);
  assertEquals(r.code, 2, r.stderr);
  assert(
    /--listen: 0\.0\.0\.0 is not a loopback address: set --allow-peers/.test(r.stderr),
    r.stderr,
  );
});

Deno.test("--allow-peers is parsed strictly: exit 2 naming the flag", async () => {
  for (
    const bad of [
      "10.0.0.1/8",
      "10.0.0.0/33",
      "300.0.0.0/8",
      "10.0.0.0/",
      "fd00::/129",
      "10.0.0.0/8,,",
    ]
  ) {
    const r = await runSidecar(["--allow-peers", bad]);
    assertEquals(r.code, 2, `${bad}: ${r.stderr}`);
    assert(r.stderr.startsWith("vmq-sidecar: --allow-peers: "), `${bad}: ${r.stderr}`);
  }
  const r = await runSidecar(["--allow-peers", "10.0.0.1/8"]);
  assert(r.stderr.includes("did you mean 10.0.0.0/8?"), r.stderr);
});

Deno.test("peer matching: IPv4, IPv6, IPv4-mapped IPv6 against IPv4 ranges", () => {
  const ranges = ["10.0.0.0/8", "fd00::/8"].map(parseCidr);
  assert(peerAllowed(ranges, "10.1.2.3"));
  assert(!peerAllowed(ranges, "11.0.0.1"));
  assert(peerAllowed(ranges, "::ffff:10.1.2.3"), "IPv4-mapped matches the IPv4 range");
  assert(!peerAllowed(ranges, "::ffff:11.1.2.3"));
  assert(peerAllowed(ranges, "fd12:3456::1"));
  assert(!peerAllowed(ranges, "fe80::1"));
  const loop = LOOPBACK_PEERS.map(parseCidr);
  assert(peerAllowed(loop, "127.0.0.1") && peerAllowed(loop, "127.9.9.9"));
  assert(peerAllowed(loop, "::1") && peerAllowed(loop, "::ffff:127.0.0.1"));
  assert(!peerAllowed(loop, "::2") && !peerAllowed(loop, "192.168.0.1"));
  assertEquals(parseCidr("FD00:0::/8").text, "fd00::/8");
  assertEquals(parseCidr("::1").text, "::1/128");
  assertEquals(parseCidr("::/0").text, "::/0");
  assertEquals(parseCidr("1:0:0:2:0:0:0:0/128").text, "1:0:0:2::/128");
  assertEquals(parseCidr("1:0:0:2:3:0:0:4/128").text, "1::2:3:0:0:4/128");
  assertEquals(parseCidr("192.168.1.7").text, "192.168.1.7/32");
});

Deno.test("check-config prints the timeouts and allow_peers in force, defaults included", async () => {
  const dir = await sidecarTempDir();
  const withKeys = `${dir}/set.toml`, bare = `${dir}/bare.toml`;
  await Deno.writeTextFile(
    withKeys,
    'listen = "0.0.0.0:8890"\nstall_timeout_ms = 700\nidle_timeout_ms = 900\nallow_peers = ["10.0.0.0/8", "::ffff:0:0/96"]\n',
  );
  await Deno.writeTextFile(bare, 'listen = "127.0.0.1:8890"\n');
  const set = await runSidecar(["check-config", withKeys, "--file-only"]);
  assertEquals(set.code, 0, set.stderr);
  const doc = JSON.parse(set.stdout);
  assertEquals(doc.stall_timeout_ms, 700);
  assertEquals(doc.idle_timeout_ms, 900);
  assertEquals(doc.allow_peers, ["10.0.0.0/8", "::ffff:0:0/96"]);
  const def = await runSidecar(["check-config", bare, "--file-only"]);
  assertEquals(def.code, 0, def.stderr);
  const d = JSON.parse(def.stdout);
  assertEquals([d.stall_timeout_ms, d.idle_timeout_ms, d.allow_peers], [30000, 0, [
    "127.0.0.0/8",
    "::1/128",
  ]]);
});

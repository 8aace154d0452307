// The global memory budget of partially received frames (issue 15 item 3, --max-buffered-bytes),
// on the real main.ts over real TCP: peers announcing huge frames cannot make RSS grow past the
// budget (connections beyond it are not read until their frame fits), a valid peer's events
// still all arrive exactly once, the counters add up, and when every connection holds a partial
// frame nothing deadlocks (the stall timeout closes the stalled holders, the waiting frames
// then complete). Plus the frame reader with a budget under arbitrary chunking.
import { assert, assertEquals } from "./_assert.ts";
import { type Ops, scrape, spawnSidecar } from "./_ops.ts";
import { valueOf } from "./_prom.ts";
import { jsonLines, waitFor } from "./_sidecar.ts";
import { distinctFrames } from "./_servers.ts";
import { eventBody, fixtureVectors, frameOf } from "./_vectors.ts";
import { MemoryBudget, readFrameSlabs } from "../lib/internal.ts";

const MIB = 1024 * 1024;
const STALLED = { reason: "stalled" };
const ERRORS = "vmq_sidecar_connection_errors_total";

/** VmRSS and VmHWM (peak RSS) of the child, in bytes (through `cat`: Deno reads /proc only with all permissions). */
async function memoryOf(pid: number): Promise<{ rss: number; peak: number }> {
  const out = await new Deno.Command("cat", { args: [`/proc/${pid}/status`], stderr: "null" })
    .output();
  const status = new TextDecoder().decode(out.stdout);
  const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, "m").exec(status)?.[1]);
  return { rss: kb("VmRSS") * 1024, peak: kb("VmHWM") * 1024 };
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let at = 0; at < bytes.length;) at += await conn.write(bytes.subarray(at));
}

/**
 * A peer that announces a `size`-byte frame, sends `send` bytes of it (1 MiB writes) and then
 * waits until the sidecar closes the connection (at most `ms`). Resolves whether it was closed.
 */
async function stallingPeer(port: number, size: number, send: number, ms: number) {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const until = Date.now() + ms;
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    const head = new Uint8Array(4 + MIB);
    new DataView(head.buffer).setUint32(0, size);
    head[4] = 0x0a; // an Any's first field, as the plugin writes it
    const sending = (async () => {
      await writeAll(conn, head);
      for (let sent = MIB; sent < send;) await writeAll(conn, CHUNK), sent += MIB;
    })().catch(() => {}); // closed by the sidecar while writing: expected
    // Closed by the sidecar: a read ends (EOF or reset).
    const closed = await Promise.race([
      conn.read(new Uint8Array(16)).then(() => true, () => true),
      new Promise<boolean>((r) => timer = setTimeout(() => r(false), until - Date.now())),
    ]);
    clearTimeout(timer);
    conn.close();
    await sending;
    return closed;
  } catch (e) {
    clearTimeout(timer);
    try {
      conn.close();
    } catch { /* closed */ }
    throw e;
  }
}
const CHUNK = new Uint8Array(MIB);

/** `n` on_publish frames tagged `tag-i` whose payload is `payload` bytes. */
function bigFrames(tag: string, n: number, payload: number): Uint8Array[] {
  const template = fixtureVectors().find((v) => v.name === "027_on_publish_typical")!;
  return Array.from({ length: n }, (_, i) =>
    frameOf(eventBody("on_publish", {
      ...template.expected.event,
      client_id: `${tag}-${i}`,
      payload: new Uint8Array(payload).fill(0x41 + i),
    })));
}

async function metric(s: Ops, name: string, labels?: Record<string, string>): Promise<number> {
  return valueOf(await scrape(s.adminPort), name, labels) ?? NaN;
}

Deno.test("--max-buffered-bytes: 20 peers announcing 60 MiB frames and sending 30 MiB each: RSS stays within the budget, a valid peer's events arrive exactly once, counters add up", async () => {
  const budget = 192 * MIB, stallMs = 1000, peers = 20;
  const s = await spawnSidecar([
    "--listen",
    "127.0.0.1:0",
    "--admin",
    "127.0.0.1:0",
    "--payload",
    "omit",
    "--stall-timeout",
    String(stallMs),
    "--max-buffered-bytes",
    `${budget / MIB}MiB`,
  ]);
  s.readStdout();
  try {
    // Warm up (code paths, output buffers), then the baseline peak.
    const warm = distinctFrames("warm", 200);
    const w = await Deno.connect({ hostname: "127.0.0.1", port: s.port });
    for (const f of warm) await writeAll(w, f);
    w.close();
    await waitFor(() => s.stdout().includes('"warm-199"'), "the warm-up events", 15_000);
    const before = await memoryOf(s.proc.pid);

    const attack = Array.from(
      { length: peers },
      () => stallingPeer(s.port, 60 * MIB, 30 * MIB, 90_000),
    );
    // A valid peer meanwhile: small events and three 2 MiB ones (which must wait their turn).
    const small = distinctFrames("valid", 2000), large = bigFrames("large", 3, 2 * MIB);
    const valid = await Deno.connect({ hostname: "127.0.0.1", port: s.port });
    for (const [i, f] of small.entries()) {
      await writeAll(valid, f);
      if (i % 600 === 599) await writeAll(valid, large[(i - 599) / 600]);
    }
    valid.close();
    const closed = await Promise.all(attack);
    assertEquals(closed.filter(Boolean).length, peers, "every stalling peer closed");
    await waitFor(() => s.stdout().includes('"large-2"'), "the valid peer's large events", 60_000);
    await waitFor(() => s.stdout().includes('"valid-1999"'), "the valid peer's events", 60_000);
    const after = await memoryOf(s.proc.pid);
    const m = await scrape(s.adminPort);
    const grown = after.peak - before.peak;
    console.log(
      `peak RSS ${(before.peak / MIB).toFixed(0)} → ${(after.peak / MIB).toFixed(0)} MiB (+${
        (grown / MIB).toFixed(0)
      }; budget ${budget / MIB} MiB); waits ${valueOf(m, "vmq_sidecar_frame_buffer_waits_total")}`,
    );
    // The budget plus overhead: the 64 KiB read buffers, the queue, allocator slack.
    assert(grown < budget + 64 * MIB, `peak RSS grew by ${(grown / MIB).toFixed(0)} MiB`);
    assertEquals(valueOf(m, ERRORS, STALLED), peers);
    assertEquals(valueOf(m, "vmq_sidecar_frame_buffer_bytes"), 0);
    assertEquals(valueOf(m, "vmq_sidecar_frame_buffer_waiting"), 0);
    assertEquals(valueOf(m, "vmq_sidecar_frame_buffer_limit_bytes"), budget);
    // Three 60 MiB frames fit at once: the other 17 waited (the valid 2 MiB ones perhaps too).
    const waits = valueOf(m, "vmq_sidecar_frame_buffer_waits_total")!;
    assert(waits >= peers - 3 && waits <= peers - 3 + 3, `waits ${waits}`);
    s.kill("SIGTERM");
    const { code, stdout, stderr } = await s.wait();
    assertEquals(code, 0, stderr);
    const ids = jsonLines(stdout).map((e) => e.client_id).sort();
    const want = [
      ...warm.map((_, i) => `warm-${i}`),
      ...small.map((_, i) => `valid-${i}`),
      ...large.map((_, i) => `large-${i}`),
    ].sort();
    assertEquals(ids, want, "every valid event exactly once");
    // Logged, rate-limited: the first 5 waits, then a summary.
    const lines = stderr.match(/is not read until its \d+-byte frame fits/g)?.length ?? 0;
    assert(lines >= 1 && lines <= 5, `${lines} wait lines:\n${stderr}`);
  } finally {
    try {
      s.kill("SIGKILL");
    } catch { /* exited */ }
    await s.proc.status;
  }
});

Deno.test("--max-buffered-bytes: every connection inside a partial frame and the budget full: no deadlock — the stall timeout closes the stalled holders, the waiting frames then complete", async () => {
  const frame = 20 * MIB, stallMs = 3000;
  const s = await spawnSidecar([
    "--listen",
    "127.0.0.1:0",
    "--admin",
    "127.0.0.1:0",
    "--payload",
    "omit",
    "--stall-timeout",
    String(stallMs),
    "--max-buffered-bytes",
    "48MiB", // two 20 MiB frames
    "--max-connections",
    "6",
  ]);
  s.readStdout();
  try {
    const t0 = performance.now();
    // Two peers take the whole budget and stall.
    const stallers = [0, 1].map(() => stallingPeer(s.port, frame, MIB, 30_000));
    const held = 2 * (frame + 4);
    await waitFor(
      async () => (await metric(s, "vmq_sidecar_frame_buffer_bytes")) === held,
      "the stallers' reservations",
      10_000,
    );
    // Four valid peers (the connection limit reached: 6 open), each inside a 20 MiB frame.
    const frames = bigFrames("big", 4, frame - 1024), tails = distinctFrames("tail", 4);
    const valid = frames.map(async (f, i) => {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port: s.port });
      try {
        await writeAll(conn, f);
        await writeAll(conn, tails[i]);
      } finally {
        conn.close();
      }
    });
    await waitFor(
      async () => (await metric(s, "vmq_sidecar_frame_buffer_waiting")) === 4,
      "four connections waiting for the budget",
      10_000,
    );
    assertEquals(await metric(s, "vmq_sidecar_connections_open"), 6);
    assertEquals(await Promise.all(stallers), [true, true], "the stallers closed");
    await Promise.all(valid);
    for (const id of ["big-0", "big-1", "big-2", "big-3", "tail-3"]) {
      await waitFor(() => s.stdout().includes(`"${id}"`), id, 30_000);
    }
    const elapsed = performance.now() - t0;
    const m = await scrape(s.adminPort);
    assertEquals(valueOf(m, ERRORS, STALLED), 2);
    assertEquals(valueOf(m, "vmq_sidecar_frame_buffer_waits_total"), 4);
    assertEquals(valueOf(m, "vmq_sidecar_frame_buffer_bytes"), 0);
    console.log(`all complete ${(elapsed / 1000).toFixed(1)} s after the budget filled`);
    s.kill("SIGTERM");
    const { code, stdout, stderr } = await s.wait();
    assertEquals(code, 0, stderr);
    const ids = jsonLines(stdout).map((e) => e.client_id).sort();
    assertEquals(
      ids,
      [...frames.map((_, i) => `big-${i}`), ...tails.map((_, i) => `tail-${i}`)].sort(),
    );
  } finally {
    try {
      s.kill("SIGKILL");
    } catch { /* exited */ }
    await s.proc.status;
  }
});

Deno.test("readFrameSlabs with a budget: large frames reserved whole and released, every frame intact under random chunking", async () => {
  let seed = 7;
  const rnd = (n: number) => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) % n;
  for (let round = 0; round < 20; round++) {
    const sizes = Array.from({ length: 30 }, () => [0, 5, 300, 70_000, 200_000, 1_500_000][rnd(6)]);
    const frames = sizes.map((n, i) => new Uint8Array(n).fill(i + 1));
    const stream = new Uint8Array(frames.reduce((a, f) => a + 4 + f.length, 0));
    let at = 0;
    for (const f of frames) {
      new DataView(stream.buffer).setUint32(at, f.length);
      stream.set(f, at + 4);
      at += 4 + f.length;
    }
    const budget = new MemoryBudget({ capacity: 4 * MIB });
    let most = 0, pos = 0;
    const source = {
      read(p: Uint8Array): Promise<number | null> {
        most = Math.max(most, budget.held);
        if (pos === stream.length) return Promise.resolve(null);
        const n = Math.min(p.length, 1 + rnd(300_000), stream.length - pos);
        p.set(stream.subarray(pos, pos + n));
        pos += n;
        return Promise.resolve(n);
      },
    };
    const got: number[][] = [];
    for await (const slab of readFrameSlabs(source, { budget })) {
      for (let i = 0; i < slab.count; i++) {
        const f = slab.buf.subarray(slab.starts[i], slab.ends[i]);
        got.push([f.length, f[0] ?? 0, f[f.length - 1] ?? 0]);
      }
      // A large frame's buffer is reserved while its slab is handed out.
      if (slab.buf.length > 64 * 1024) assertEquals(budget.held, slab.buf.length);
      else assertEquals(budget.held, 0);
    }
    assertEquals(got, frames.map((f, i) => [f.length, f.length ? i + 1 : 0, f.length ? i + 1 : 0]));
    assertEquals(budget.held, 0, "released at the end");
    assert(most <= 2 * MIB, `held ${most}`);
  }
});

Deno.test("--max-buffered-bytes: a stop cuts the connections waiting for the budget at the grace deadline and counts them as discarded", async () => {
  const frame = 20 * MIB;
  const s = await spawnSidecar([
    "--listen",
    "127.0.0.1:0",
    "--admin",
    "127.0.0.1:0",
    "--stall-timeout",
    "60000", // nothing stalls out here: the stop must end the waits
    "--shutdown-grace",
    "1000",
    "--max-buffered-bytes",
    "48MiB",
  ]);
  s.readStdout();
  const conns: Deno.TcpConn[] = [];
  try {
    const head = new Uint8Array(4 + MIB);
    new DataView(head.buffer).setUint32(0, frame);
    head[4] = 0x0a;
    const writes: Promise<void>[] = [];
    for (let i = 0; i < 3; i++) {
      const c = await Deno.connect({ hostname: "127.0.0.1", port: s.port });
      conns.push(c);
      // Not awaited: the waiting connection is not read, its write may not complete.
      writes.push(writeAll(c, head).catch(() => {}));
      if (i === 1) {
        await waitFor(
          async () => (await metric(s, "vmq_sidecar_frame_buffer_bytes")) === 2 * (frame + 4),
          "the first two reservations",
          10_000,
        );
      }
    }
    await waitFor(
      async () => (await metric(s, "vmq_sidecar_frame_buffer_waiting")) === 1,
      "the third connection waiting for the budget",
      10_000,
    );
    const t0 = performance.now();
    s.kill("SIGTERM");
    const { code, stderr } = await s.wait();
    const ms = performance.now() - t0;
    // Lost at stop (three partial frames): exit 1, each connection counted, the waiting one
    // among those still sending (its socket held bytes it never read).
    assertEquals(code, 1, stderr);
    assert(/discarded at the grace deadline: connections=3 /.test(stderr), stderr);
    assert(/still-sending=[1-3]\b/.test(stderr), stderr);
    assert(ms < 10_000, `the stop took ${ms.toFixed(0)} ms`);
    for (const c of conns.splice(0)) c.close();
    await Promise.all(writes);
  } finally {
    for (const c of conns) {
      try {
        c.close();
      } catch { /* closed */ }
    }
    try {
      s.kill("SIGKILL");
    } catch { /* exited */ }
    await s.proc.status;
  }
});

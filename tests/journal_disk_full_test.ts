// Issue 12, a disk that stays full under an on_full=block output, end to end: the real main.ts
// runs under `ulimit -S -f 1` (SIGXFSZ ignored), so every journal segment write fails with EFBIG —
// a real kernel write error, as on a full disk. The output is down. Memory must stay bounded
// (the journal holds at most its 16 MiB cache of unwritten blocks, then reading pauses:
// backpressure reaches the plugin's connection), and once the disk has room again (the limit
// lifted with prlimit) reading resumes and every event is delivered.
import { assert, assertEquals } from "./_assert.ts";
import {
  listeningPort,
  ROOT,
  RUN_MAIN,
  sidecarTempDir,
  waitFor,
  withTestDeadLetter,
} from "./_sidecar.ts";
import { scrape } from "./_ops.ts";
import { valueOf } from "./_prom.ts";
import { distinctFrames, freePort, redisClient, startRedis, xlen } from "./_servers.ts";

/** main.ts (the start task's flags) under `ulimit -f blocks` with SIGXFSZ ignored. */
async function underFileLimit(blocks: number, args: string[]) {
  const proc = new Deno.Command("bash", {
    args: [
      "-c",
      `trap '' XFSZ; ulimit -S -f ${blocks}; exec "$@"`,
      "bash",
      Deno.execPath(),
      ...RUN_MAIN,
      ...withTestDeadLetter(args),
    ],
    cwd: ROOT,
    stdin: "null",
    stdout: "null",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
  let err = "";
  const stderrDone = (async () => {
    const dec = new TextDecoder();
    for await (const c of proc.stderr) err += dec.decode(c, { stream: true });
  })();
  const admin = () => Number(/admin endpoints on http:\/\/[^ ]*:(\d+)\//.exec(err)?.[1] ?? 0);
  await waitFor(() => listeningPort(err) > 0 && admin() > 0, `the sidecar listening:\n${err}`);
  return { proc, port: listeningPort(err), adminPort: admin(), stderr: () => err, stderrDone };
}

Deno.test("journal e2e: a disk that stays full with on_full=block: memory bounded, reading pauses (backpressure), resumes once the disk has room; every event delivered", async () => {
  const dir = await sidecarTempDir();
  const port = freePort(); // the output is down
  const out = `redis://127.0.0.1:${port}?key=full&on_full=block`;
  const output = { output: `redis://127.0.0.1:${port}/0` };
  const n = 120_000; // ≈ 50 MB: 3× the journal's 16 MiB bound of unwritten blocks
  const frames = distinctFrames("full", n);
  const s = await underFileLimit(1, [
    "--listen",
    "127.0.0.1:0",
    "--admin",
    "127.0.0.1:0",
    "--data-dir",
    dir,
    "--out",
    out,
  ]);
  const metric = async (name: string, labels: Record<string, string> = {}) =>
    valueOf(await scrape(s.adminPort), name, labels) ?? 0;
  let sent = false;
  let sendError: unknown;
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: s.port });
  const sending = (async () => {
    try {
      for (let i = 0; i < n; i += 500) {
        const chunk = frames.slice(i, i + 500);
        const bytes = new Uint8Array(chunk.reduce((k, f) => k + f.length, 0));
        let at = 0;
        for (const f of chunk) bytes.set(f, at), at += f.length;
        for (let w = 0; w < bytes.length;) w += await conn.write(bytes.subarray(w));
      }
      sent = true;
    } catch (e) {
      sendError = e;
    } finally {
      conn.close();
    }
  })();
  try {
    await waitFor(
      async () => await metric("vmq_sidecar_buffer_write_errors_total") > 0,
      "journal writes failing",
    );
    // Reading pauses: what was taken stops growing while the sender still has data to write.
    let taken = -1;
    await waitFor(
      async () => {
        const now = await metric("vmq_sidecar_output_events_received_total", output);
        const still = now === taken;
        taken = now;
        if (!still) await new Promise((r) => setTimeout(r, 1000));
        return still;
      },
      "reading to pause",
      60_000,
    );
    const rss = await metric("vmq_sidecar_process_resident_memory_bytes");
    const seen = `${taken} of ${n} events taken, RSS ${(rss / 2 ** 20).toFixed(0)} MiB, ` +
      `sender ${sent ? "done" : "held back"}`;
    assert(!sent, `the sender is held back (its writes wait): ${seen}`);
    assert(taken < n / 2, `few events taken while no journal write succeeds: ${seen}`);
    assert(rss < 200 * 2 ** 20, `memory bounded while the disk is full: ${seen}`);
    console.log(`disk full: ${seen}`);
    assertEquals(await metric("vmq_sidecar_output_events_dropped_total", output), 0);
    // The disk has room again: writes succeed at the next retry, reading resumes.
    const lift = await new Deno.Command("prlimit", {
      args: ["--pid", String(s.proc.pid), "--fsize=unlimited"],
    }).output();
    assertEquals(lift.code, 0, new TextDecoder().decode(lift.stderr));
    await waitFor(
      () => {
        if (sendError) throw new Error(`sending failed: ${sendError}\n${s.stderr()}`);
        return sent;
      },
      "every event read once the disk has room",
      60_000,
    );
    await using redis = await startRedis([], undefined, port);
    const client = await redisClient(redis.port);
    try {
      await waitFor(async () => await xlen(client, "full") >= n, `${n} delivered`, 120_000);
      assertEquals(await xlen(client, "full"), n, "each once");
      const v = (name: string) => metric(name, output);
      assertEquals(
        [
          await v("vmq_sidecar_output_events_received_total"),
          await v("vmq_sidecar_output_events_sent_total"),
        ],
        [n, n],
        "received = sent",
      );
      assert(/journal write to .* failed/.test(s.stderr()), s.stderr());
      assert(/journal writes to .* succeed again/.test(s.stderr()), s.stderr());
    } finally {
      client.destroy();
    }
  } finally {
    try {
      s.proc.kill("SIGKILL");
    } catch { /* exited */ }
    await s.proc.status;
    await s.stderrDone;
    await sending.catch(() => {});
  }
});

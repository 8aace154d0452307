// NATS output under faults and load, end to end with a real nats-server and the real main.ts:
// memory stays flat while publishing (issue 10 item 1), refused credentials and a server
// killed mid-stream never crash the process (item 2).
import { assert, assertEquals } from "./_assert.ts";
import { runNatsSoak } from "../scripts/nats_soak.ts";
import { sendChunks, sidecarTempDir, waitFor } from "./_sidecar.ts";
import { adminGet, fileLines, scrape, spawnSidecar } from "./_ops.ts";
import { valueOf } from "./_prom.ts";
import { distinctFrames, natsClient, startNats, streamCount } from "./_servers.ts";

const MiB = 1024 * 1024;

Deno.test("nats: RSS stays flat while publishing 400k distinct events (no per-publish state kept)", async () => {
  // A 4 MiB queue fills within the first 100k events; after that nothing should grow (seen:
  // ~1.5 MiB). Before: every batch stayed reachable, ~148 MiB over the measured 200k events;
  // then node:crypto's per-event hashers, ~47 MiB until the collector caught up.
  const r = await runNatsSoak({
    events: 400_000,
    rate: 0,
    step: 100_000,
    idleMs: 500,
    outputOptions: "queue_bytes=4MiB",
  });
  const at = (n: number) => r.samples.find((s) => !s.idle && s.sent >= n)!;
  const growth = at(400_000).rss - at(200_000).rss;
  const trace = r.samples.map((s) => `${s.sent}: ${(s.rss / MiB).toFixed(1)} MiB`).join(", ");
  assert(
    growth < 20 * MiB,
    `RSS grew ${(growth / MiB).toFixed(1)} MiB over 200k events (${trace})`,
  );
  assertEquals(r.stored, 400_000, "every event stored once");
  assertEquals(r.sent, 400_000);
});

Deno.test("nats: refused credentials (wrong token, none) never crash: logged once with the fix, /readyz says why, other outputs keep running, retries go on", async () => {
  await using nats = await startNats({ args: ["--auth", "tok-right-7f2a"] });
  const dir = await sidecarTempDir();
  const cases = Array.from({ length: 10 }, (_, i) => i % 2 === 0 ? "wrong" : "none");
  const frames = distinctFrames("c", 20);
  /** One start: what went wrong (empty when all held). */
  const run = async (kind: string, i: number): Promise<string[]> => {
    const file = `${dir}/events-${i}.jsonl`;
    const name = `nats://127.0.0.1:${nats.port}`;
    const out = kind === "wrong" ? `${name}?token_env=VMQ_SIDECAR_NATS_TOKEN` : name;
    const s = await spawnSidecar(
      ["--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--out", out, "--out", `file:${file}`],
      { stdout: "null", env: { VMQ_SIDECAR_NATS_TOKEN: "tok-wrong-0000" } },
    );
    let exited = false;
    s.proc.status.then(() => exited = true);
    const problems: string[] = [];
    try {
      const errors = async () =>
        valueOf(await scrape(s.adminPort), "vmq_sidecar_output_errors_total", { output: name }) ??
          0;
      await sendChunks(s.port, frames.slice(0, 10));
      await waitFor(() => exited || fileLines(file).length >= 10, "10 events in the file", 10_000);
      if (exited) return [`crashed:\n${s.stderr()}`];
      const e1 = await errors();
      await new Promise((r) => setTimeout(r, 1500)); // retries against the refusing server
      if (exited) return [`crashed:\n${s.stderr()}`];
      await sendChunks(s.port, frames.slice(10));
      await waitFor(() => exited || fileLines(file).length >= 20, "20 events in the file", 10_000);
      if (exited) return [`crashed:\n${s.stderr()}`];
      await waitFor(async () => await errors() > e1, "the NATS output retrying", 10_000)
        .catch((e) => problems.push(e.message));
      const ready = await adminGet(s.adminPort, "/readyz");
      if (
        ready.status !== 503 ||
        !new RegExp(`output ${name.replaceAll(".", "\\.")}: .*authoriz`, "i").test(ready.body)
      ) {
        problems.push(
          `/readyz does not name the output and the reason: ${ready.status} ${ready.body}`,
        );
      }
      const stderr = s.stderr();
      const hint = kind === "wrong" ? /VMQ_SIDECAR_NATS_TOKEN/g : /token_env=VMQ_SIDECAR_/g;
      const hints = stderr.match(hint)?.length ?? 0;
      if (hints !== 1) problems.push(`the fix (${hint.source}) logged ${hints} times, not once`);
      if (stderr.includes("tok-wrong-0000")) problems.push("the secret is in the log");
      const guard = valueOf(await scrape(s.adminPort), "vmq_sidecar_unhandled_errors_total");
      if (guard !== 0) problems.push(`vmq_sidecar_unhandled_errors_total is ${guard}, not 0`);
    } finally {
      if (!exited) s.kill("SIGTERM");
      const w = await s.wait();
      if (/Uncaught|unhandled (error|rejection)/i.test(w.stderr)) problems.push("unhandled error");
      if (problems.length) problems.push(`stderr:\n${w.stderr}`);
    }
    return problems;
  };
  const results: string[][] = [];
  for (let i = 0; i < cases.length; i += 5) {
    results.push(...await Promise.all(cases.slice(i, i + 5).map((k, j) => run(k, i + j))));
  }
  const crashed = results.filter((p) => p[0]?.startsWith("crashed")).length;
  const failed = results.map((p, i) => [i, p] as const).filter(([, p]) => p.length > 0);
  assertEquals(
    failed.length,
    0,
    `${crashed} of ${cases.length} starts crashed; ${failed.length} failed:\n` +
      failed.map(([i, p]) => `run ${i} (${cases[i]}): ${p.join("\n")}`).join("\n---\n"),
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test("nats: server killed (SIGKILL) mid-stream and restarted: no unhandled error, every event stored once", async () => {
  await using nats = await startNats();
  const name = `nats://127.0.0.1:${nats.port}`;
  const s = await spawnSidecar(
    ["--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--out", `${name}?create_stream=EV`],
    { stdout: "null" },
  );
  const n = 3000;
  const frames = distinctFrames("k", n);
  try {
    const sending = (async () => {
      for (let i = 0; i < n / 2; i += 50) await sendChunks(s.port, frames.slice(i, i + 50));
    })();
    const nc = await natsClient(nats.port);
    await waitFor(async () => await streamCount(nc, "EV") >= 100, "some events stored");
    await nc.close();
    await nats.stop("SIGKILL");
    await sending;
    await sendChunks(s.port, frames.slice(n / 2));
    await new Promise((r) => setTimeout(r, 700)); // reconnect attempts against a closed port
    await nats.start();
    const nc2 = await natsClient(nats.port);
    try {
      await waitFor(async () => await streamCount(nc2, "EV") >= n, `${n} events stored`, 60_000);
      assertEquals(await streamCount(nc2, "EV"), n, "each event once");
    } finally {
      await nc2.close();
    }
    const m = await scrape(s.adminPort);
    assertEquals(valueOf(m, "vmq_sidecar_unhandled_errors_total"), 0, "the guard never fired");
  } finally {
    s.kill("SIGTERM");
    const w = await s.wait();
    assert(!/Uncaught|unhandled (error|rejection)/i.test(w.stderr), w.stderr);
  }
});

// The Sidecar as a library user drives it, in this process, through the public lib/mod.ts only:
// started from code with the admin endpoints on a free port and a file output, frames over real
// TCP, /metrics (with a counter the user registered), /readyz, a reload with a changed config,
// the SIGHUP-style reopen, and a graceful, idempotent stop whose summary adds up (issue 11
// item 6, issue 14 item 1's foundation).
import {
  type OutputSpec,
  Sidecar,
  type SidecarConfig,
  StartupError,
  type Summary,
} from "../lib/mod.ts";
import { assert, assertEquals, assertRejects } from "./_assert.ts";
import { parseExposition, valueOf } from "./_prom.ts";
import { fileLines, fixtureStream } from "./_ops.ts";
import { ROOT, sendChunks, sidecarTempDir, waitFor } from "./_sidecar.ts";

const stream = fixtureStream();
const hooksOf = (path: string) => fileLines(path).map((l) => JSON.parse(l).hook as string);

/** A file output as a library user writes it by hand. */
function fileOutput(path: string, hooks: OutputSpec["hooks"] = null): OutputSpec {
  return {
    kind: "file",
    target: path,
    format: "json",
    payload: "base64",
    hooks,
    topics: null,
    queueBytes: 16 << 20,
    onFull: "block",
    options: {},
  };
}

/** A whole configuration written by hand: plugin and admin listeners on free ports. */
function configOf(outputs: OutputSpec[], admin: SidecarConfig["admin"] = {
  hostname: "127.0.0.1",
  port: 0,
}): SidecarConfig {
  return {
    listen: { hostname: "127.0.0.1", port: 0 },
    admin,
    maxFrameBytes: 1 << 20,
    maxConnections: 100,
    maxBufferedBytes: 256 << 20,
    stallTimeoutMs: 30_000,
    idleTimeoutMs: 0,
    allowPeers: ["127.0.0.0/8"],
    logLevel: "warning",
    logFormat: "text",
    shutdownGraceMs: 2_000,
    outputs,
  };
}

async function get(port: number, path: string): Promise<{ status: number; body: string }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`);
  return { status: res.status, body: await res.text() };
}

/** Every output's tally adds up: given = sent + dead-lettered + lost + dropped + unflushed. */
function assertTalliesAddUp(s: Summary): void {
  for (const [name, t] of Object.entries(s.outputs)) {
    assertEquals(t.given, t.sent + t.deadLettered + t.lost + t.dropped + t.unflushed, name);
  }
}

Deno.test("Sidecar from code: admin, frames over TCP, user metrics, readiness, reload, reopen, stop", async () => {
  const dir = await sidecarTempDir();
  const [a, b] = [`${dir}/a.jsonl`, `${dir}/b.jsonl`];
  const config = configOf([fileOutput(a)]);
  let next: SidecarConfig = config;
  const sidecar = await Sidecar.start({ config, reloadFrom: () => next });
  try {
    const admin = sidecar.adminAddr;
    assert(admin !== undefined && admin.port > 0, "admin listening on a free port");
    assert(sidecar.addr.port > 0);

    // The user's own counter on the sidecar's /metrics.
    const seen = sidecar.metrics.counter("app_frames_seen_total", "Frames the app saw.", ["hook"]);
    seen.inc(["on_publish"], 3);

    const ready = await get(admin.port, "/readyz");
    assertEquals([ready.status, ready.body], [200, "ready\n"]);
    assertEquals(sidecar.readiness(), { ready: true, reasons: [] });
    assertEquals((await get(admin.port, "/healthz")).body, "ok\n");

    await sendChunks(sidecar.addr.port, [stream.bytes]);
    await waitFor(() => fileLines(a).length === stream.events, "every event in a");
    const m = parseExposition((await get(admin.port, "/metrics")).body);
    assertEquals(valueOf(m, "app_frames_seen_total", { hook: "on_publish" }), 3);
    assertEquals(
      valueOf(m, "vmq_sidecar_events_received_total", { hook: "on_publish" }),
      stream.byHook.on_publish,
    );
    assertEquals(valueOf(m, "vmq_sidecar_ready", {}), 1);
    assert(valueOf(m, "vmq_sidecar_build_info", { version: "0.1.0" }) === 1);

    // reload() re-reads what reloadFrom gives: a second output, a's hooks narrowed.
    next = configOf([fileOutput(a, ["on_register"]), fileOutput(b, ["on_publish"])]);
    assertEquals(await sidecar.reload(), true);
    assertEquals(sidecar.config.outputs.length, 2);
    // A config given to reload() directly is applied the same way; a bad one changes nothing.
    const bad = configOf([fileOutput(`${dir}/missing/x.jsonl`)]);
    assertEquals(await sidecar.reload(bad), false);
    assertEquals(sidecar.config.outputs.length, 2);
    await sendChunks(sidecar.addr.port, [stream.bytes]);
    await waitFor(
      () =>
        fileLines(b).length === stream.byHook.on_publish &&
        fileLines(a).length === stream.events + stream.byHook.on_register,
      "the second round split by the reloaded hooks",
    );
    assert(hooksOf(b).every((h) => h === "on_publish"));
    const after = parseExposition((await get(admin.port, "/metrics")).body);
    assertEquals(valueOf(after, "vmq_sidecar_config_reloads_total", { result: "success" }), 1);
    assertEquals(valueOf(after, "vmq_sidecar_config_reloads_total", { result: "failure" }), 1);

    // reopen() (what SIGHUP does after the reload): a moved file is written anew.
    await Deno.rename(b, `${b}.1`);
    await sidecar.reopen();
    await sendChunks(sidecar.addr.port, [stream.bytes]);
    await waitFor(() => fileLines(b).length === stream.byHook.on_publish, "b reopened");

    const stopping = sidecar.stop();
    assert(sidecar.stop() === stopping, "stop() is idempotent (one stop, one summary)");
    const summary = await stopping;
    assertEquals(await sidecar.close(), summary, "close() is stop()");
    assertEquals(summary.total, 3 * stream.events);
    assertEquals(summary.lostAtStop, false);
    assertEquals(Object.keys(summary.outputs).length, 2);
    assertTalliesAddUp(summary);
    // Stopped: the admin listener is closed, reload and reopen change nothing.
    await assertRejects(() => fetch(`http://127.0.0.1:${admin.port}/readyz`), TypeError);
    assertEquals(await sidecar.reload(), false);
    assertEquals(sidecar.readiness().ready, false);
  } finally {
    await sidecar.stop();
  }
});

Deno.test("Sidecar from code: an admin address in use is a StartupError (required) or a warning (optional)", async () => {
  const dir = await sidecarTempDir();
  const taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    const config = configOf([fileOutput(`${dir}/x.jsonl`)], {
      hostname: "127.0.0.1",
      port: taken.addr.port,
    });
    const e = await assertRejects(() => Sidecar.start({ config }), StartupError);
    assert(/admin .*address already in use/.test(e.message), e.message);
    const optional = await Sidecar.start({ config, admin: "optional" });
    try {
      assertEquals(optional.adminAddr, undefined);
      assertEquals(optional.readiness().ready, true);
    } finally {
      await optional.stop();
    }
    // A file output that cannot be written: the StartupError names the output and what to do.
    const denied = configOf([fileOutput(`${dir}/missing/x.jsonl`)], null);
    const p = await assertRejects(() => Sidecar.start({ config: denied }), StartupError);
    assert(
      p.message.startsWith(`output 1 (file): cannot open output file ${dir}/missing/x.jsonl`),
      p.message,
    );
    assert(p.message.includes("mkdir -p"), p.message);
  } finally {
    taken.close();
  }
});

Deno.test("Sidecar.reload(): whatever reloadFrom throws fails the reload (false, counted, nothing changed); nothing to re-read rejects", async () => {
  const dir = await sidecarTempDir();
  const config = configOf([fileOutput(`${dir}/a.jsonl`)], null);
  let fail: Error | undefined = new Error("disk on fire");
  const sidecar = await Sidecar.start({
    config,
    reloadFrom: () => {
      if (fail) throw fail;
      return config;
    },
  });
  try {
    assertEquals(await sidecar.reload(), false);
    fail = undefined;
    assertEquals(await sidecar.reload(), true);
    const m = parseExposition(sidecar.metrics.render());
    assertEquals(valueOf(m, "vmq_sidecar_config_reloads_total", { result: "failure" }), 1);
    assertEquals(valueOf(m, "vmq_sidecar_config_reloads_total", { result: "success" }), 1);
    const plain = await Sidecar.start({ config: configOf([fileOutput(`${dir}/b.jsonl`)], null) });
    try {
      const e = await assertRejects(() => plain.reload(), TypeError);
      assert(/reloadFrom/.test(e.message), e.message);
    } finally {
      await plain.stop();
    }
  } finally {
    await sidecar.stop();
  }
});

/** The README's Library example of the Sidecar, run as written (ports and path moved). */
Deno.test("the README Sidecar example relays events, serves its own counter on /metrics, stops on SIGTERM", async () => {
  const readme = await Deno.readTextFile(new URL("README.md", ROOT));
  const blocks = [...readme.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1])
    // The plugin example ("Write your own plugin", run by docs_test.ts) starts one too.
    .filter((code) => code.includes("await Sidecar.start(") && !code.includes("defineHandler("));
  assertEquals(blocks.length, 1, "one README block starts a Sidecar");
  const dir = await sidecarTempDir();
  const events = `${dir}/events.jsonl`;
  const script = `${dir}/readme_sidecar.ts`;
  let code = blocks[0].replaceAll('from "./lib/', `from "${new URL("lib/", ROOT).href}`);
  for (
    const [from, to] of [["/tmp/vmq-sidecar/events.jsonl", events], ["port: 8890", "port: 0"], [
      "port: 8891",
      "port: 0",
    ]]
  ) {
    assert(code.includes(from), `the example contains ${from}`);
    code = code.replaceAll(from, to);
  }
  await Deno.writeTextFile(script, code);
  const check = await new Deno.Command(Deno.execPath(), {
    args: ["check", "--no-lock", "--quiet", script],
    cwd: dir,
    stdin: "null",
    env: { NO_COLOR: "1" },
    signal: AbortSignal.timeout(120_000),
  }).output();
  assertEquals(check.code, 0, new TextDecoder().decode(check.stderr));
  const proc = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--no-lock", "--quiet", script],
    cwd: dir,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
  let out = "";
  const reading = (async () => {
    const dec = new TextDecoder();
    for await (const c of proc.stdout) out += dec.decode(c, { stream: true });
  })();
  const stderr = new Response(proc.stderr).text();
  const kill = setTimeout(() => proc.kill("SIGKILL"), 60_000);
  try {
    await waitFor(() => /admin on 127\.0\.0\.1:\d+\n/.test(out), "the example listening");
    const [, port, adminPort] = /listening on 127\.0\.0\.1:(\d+), admin on 127\.0\.0\.1:(\d+)\n/
      .exec(out)!.map(Number);
    await sendChunks(port, [stream.bytes]);
    await waitFor(() => fileLines(events).length === stream.events, "every event in the file");
    const m = parseExposition((await get(adminPort, "/metrics")).body);
    assertEquals(valueOf(m, "app_starts_total", {}), 1);
    assertEquals(
      valueOf(m, "vmq_sidecar_events_received_total", { hook: "on_publish" }),
      stream.byHook.on_publish,
    );
    proc.kill("SIGTERM");
    const status = await proc.status;
    await reading;
    assertEquals(status.code, 0, await stderr);
    assert(out.endsWith(`stopped: ${stream.events} events\n`), out);
  } finally {
    clearTimeout(kill);
    try {
      proc.kill("SIGKILL");
    } catch { /* exited */ }
    await proc.status;
    await reading;
    await stderr;
  }
});

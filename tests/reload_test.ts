// SIGHUP reload of the config file with the real main.ts: good files change hooks and outputs
// without a restart, bad ones change nothing and say why; outputs kept across reloads lose and
// duplicate nothing while events flow.
import { assert, assertEquals } from "./_assert.ts";
import { valueOf } from "./_prom.ts";
import { fileLines, fixtureStream, type Ops, scrape, spawnSidecar } from "./_ops.ts";
import { sendChunks, sidecarTempDir, waitFor } from "./_sidecar.ts";

const stream = fixtureStream();
const hooksOf = (path: string) => fileLines(path).map((l) => JSON.parse(l).hook as string);
const count = (path: string, hook: string) => hooksOf(path).filter((h) => h === hook).length;

/** Sends SIGHUP and waits until the reload counter of `result` reaches `n`. */
async function reload(s: Ops, result: "success" | "failure", n: number): Promise<void> {
  s.kill("SIGHUP");
  await waitFor(async () => {
    const m = await scrape(s.adminPort);
    return valueOf(m, "vmq_sidecar_config_reloads_total", { result }) === n;
  }, `reload ${result} #${n}`);
}

async function start(config: string): Promise<Ops> {
  return await spawnSidecar(
    ["--config", config, "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0"],
    { stdout: "null" },
  );
}

Deno.test("SIGHUP with a good file: hooks change in place, outputs are added and disabled", async () => {
  const dir = await sidecarTempDir();
  const [a, b, c] = ["a", "b", "c"].map((n) => `${dir}/${n}.jsonl`);
  const config = `${dir}/vmq-sidecar.toml`;
  await Deno.writeTextFile(
    config,
    `[[outputs]]
url = "file:${a}"
hooks = ["on_register"]

[[outputs]]
url = "file:${b}"
hooks = ["on_publish"]
`,
  );
  const s = await start(config);
  try {
    await sendChunks(s.port, [stream.bytes]);
    await waitFor(
      () =>
        fileLines(a).length === stream.byHook.on_register &&
        fileLines(b).length === stream.byHook.on_publish,
      "first round",
    );
    await Deno.writeTextFile(
      config,
      `[[outputs]]
url = "file:${a}"
hooks = ["on_client_gone"]

[[outputs]]
url = "file:${b}"
hooks = ["on_publish"]
enabled = false

[[outputs]]
url = "file:${c}"
`,
    );
    await reload(s, "success", 1);
    await sendChunks(s.port, [stream.bytes]);
    await waitFor(
      () =>
        fileLines(c).length === stream.events &&
        fileLines(a).length === stream.byHook.on_register + stream.byHook.on_client_gone,
      "second round",
    );
    assertEquals(count(a, "on_register"), stream.byHook.on_register);
    assertEquals(count(a, "on_client_gone"), stream.byHook.on_client_gone);
    assertEquals(fileLines(b).length, stream.byHook.on_publish, "disabled output got nothing more");
    const m = await scrape(s.adminPort);
    assertEquals(
      valueOf(m, "vmq_sidecar_output_events_sent_total", { output: `file:${c}` }),
      stream.events,
    );
    assertEquals(valueOf(m, "vmq_sidecar_output_queue_events", { output: `file:${b}` }), undefined);
    assertEquals(valueOf(m, "vmq_sidecar_config_last_reload_successful"), 1);
    assert(
      s.stderr().includes(
        `config reloaded from ${config}: outputs file:${a}, file:${c}; added file:${c};` +
          ` removed file:${b}; hooks or topics changed file:${a}`,
      ),
      s.stderr(),
    );
  } finally {
    s.kill("SIGTERM");
    const { code, stderr } = await s.wait();
    assertEquals(code, 0, stderr);
  }
});

Deno.test("SIGHUP with a bad file keeps the running config and logs why (line and key)", async () => {
  const dir = await sidecarTempDir();
  const a = `${dir}/a.jsonl`;
  const config = `${dir}/vmq-sidecar.toml`;
  const good = `max_connections = 100

[[outputs]]
url = "file:${a}"
hooks = ["on_register"]
`;
  await Deno.writeTextFile(config, good);
  const s = await start(config);
  try {
    // 1: an unknown hook on line 5.
    await Deno.writeTextFile(config, good.replace('["on_register"]', '["on_register", "on_foo"]'));
    await reload(s, "failure", 1);
    assert(
      s.stderr().includes(
        `config reload failed, the running configuration stays in force: ${config}:5:` +
          ` outputs[1].hooks: unknown hook "on_foo"`,
      ),
      s.stderr(),
    );
    assertEquals(
      valueOf(await scrape(s.adminPort), "vmq_sidecar_config_last_reload_successful"),
      0,
    );
    // 2: not TOML.
    await Deno.writeTextFile(config, `${good}\n[[outputs]\n`);
    await reload(s, "failure", 2);
    assert(s.stderr().includes(`${config}:7: syntax: invalid TOML`), s.stderr());
    // 3: valid, but an output that cannot be opened (outside the permitted paths).
    await Deno.writeTextFile(
      config,
      `${good}\n[[outputs]]\nurl = "file:/var/tmp/vmq-denied.jsonl"\n`,
    );
    await reload(s, "failure", 3);
    assert(
      s.stderr().includes(
        "outputs[2]: cannot open output file /var/tmp/vmq-denied.jsonl: no write permission",
      ),
      s.stderr(),
    );
    // The old configuration still runs: only on_register reaches the file.
    await sendChunks(s.port, [stream.bytes]);
    await waitFor(() => fileLines(a).length === stream.byHook.on_register, "old config in force");
    assertEquals(new Set(hooksOf(a)), new Set(["on_register"]));
    // 4: fixed, with a setting that needs a restart: applied, with a warning.
    await Deno.writeTextFile(
      config,
      good.replace("max_connections = 100", "max_connections = 200"),
    );
    await reload(s, "success", 1);
    assert(
      s.stderr().includes(
        "config reload: max_connections changed; this takes effect only after a restart",
      ),
      s.stderr(),
    );
    assertEquals(
      valueOf(await scrape(s.adminPort), "vmq_sidecar_config_last_reload_successful"),
      1,
    );
  } finally {
    s.kill("SIGTERM");
    const { code, stderr } = await s.wait();
    assertEquals(code, 0, stderr);
  }
});

Deno.test("reloads while events flow: an output kept across reloads gets every event exactly once", async () => {
  const dir = await sidecarTempDir();
  const kept = `${dir}/kept.jsonl`, extra = `${dir}/extra.jsonl`;
  const config = `${dir}/vmq-sidecar.toml`;
  const base = `[[outputs]]\nurl = "file:${kept}"\n`;
  const more = `${base}\n[[outputs]]\nurl = "file:${extra}"\nhooks = ["on_publish"]\n`;
  await Deno.writeTextFile(config, base);
  const s = await start(config);
  try {
    // One connection stays open; each round writes more events, then reloads while the
    // sidecar may still be reading them.
    const copies = 60;
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: s.port });
    try {
      for (let i = 1; i <= 4; i++) {
        for (let k = 0; k < copies / 4; k++) {
          for (let at = 0; at < stream.bytes.length;) {
            at += await conn.write(stream.bytes.subarray(at));
          }
        }
        await Deno.writeTextFile(config, i % 2 ? more : base);
        await reload(s, "success", i);
      }
    } finally {
      conn.close();
    }
    await waitFor(() => fileLines(kept).length === copies * stream.events, "every event kept");
    const lines = fileLines(kept);
    assertEquals(lines.length, copies * stream.events);
    for (const [hook, n] of Object.entries(stream.byHook)) {
      assertEquals(lines.filter((l) => JSON.parse(l).hook === hook).length, n * copies, hook);
    }
    // What the temporary output got is whole lines of on_publish only.
    assert(hooksOf(extra).every((h) => h === "on_publish"));
  } finally {
    s.kill("SIGTERM");
    const { code, stderr } = await s.wait();
    assertEquals(code, 0, stderr);
  }
});

Deno.test("without --config, SIGHUP only reopens the output files", async () => {
  const dir = await sidecarTempDir();
  const s = await spawnSidecar(
    ["--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--out", `file:${dir}/x.jsonl`],
    { stdout: "null" },
  );
  try {
    s.kill("SIGHUP");
    await waitFor(() => s.stderr().includes("SIGHUP: reopening output files"), "reopen logged");
    const m = await scrape(s.adminPort);
    assertEquals(valueOf(m, "vmq_sidecar_config_reloads_total", { result: "success" }), undefined);
  } finally {
    s.kill("SIGTERM");
    const { code, stderr } = await s.wait();
    assertEquals(code, 0, stderr);
  }
});

Deno.test("events held by an output a reload removed count as lost at stop (exit 1); SIGHUP during the stop is ignored", async () => {
  const dir = await sidecarTempDir();
  const a = `${dir}/a.jsonl`;
  const config = `${dir}/vmq-sidecar.toml`;
  const closed = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const deadPort = closed.addr.port;
  closed.close(); // nothing listens there: the HTTP output fails and retries
  const fileOutput = `[[outputs]]
url = "file:${a}"
`;
  await Deno.writeTextFile(
    config,
    `shutdown_grace_ms = 300

${fileOutput}
[[outputs]]
url = "http://127.0.0.1:${deadPort}/events"
dead_letter = "${dir}/dead-letter.ndjson"
`,
  );
  const s = await start(config);
  await sendChunks(s.port, [stream.bytes]);
  await waitFor(() => fileLines(a).length === stream.events, "file output");
  await Deno.writeTextFile(config, `shutdown_grace_ms = 300\n\n${fileOutput}`);
  await reload(s, "success", 1); // the HTTP output is retired with its events unsent
  s.kill("SIGTERM");
  await waitFor(() => /SIGTERM received/.test(s.stderr()), "the stop to begin");
  s.kill("SIGHUP");
  const r = await s.wait();
  assertEquals(r.code, 1, r.stderr);
  assert(/events lost at stop: .*http:\/\/127\.0\.0\.1/.test(r.stderr), r.stderr);
  assert(/SIGHUP while stopping: ignored/.test(r.stderr), r.stderr);
  assert(!/config reloaded from/.test(r.stderr.split("SIGTERM received")[1]), r.stderr);
});

Deno.test("a reload runs the start-time preflight: an output whose dead-letter directory is missing fails the reload, nothing changes", async () => {
  const dir = await sidecarTempDir();
  const a = `${dir}/a.jsonl`;
  const config = `${dir}/vmq-sidecar.toml`;
  const fileOutput = `[[outputs]]
url = "file:${a}"
`;
  await Deno.writeTextFile(config, fileOutput);
  const s = await start(config);
  try {
    await Deno.writeTextFile(
      config,
      `${fileOutput}
[[outputs]]
url = "http://127.0.0.1:9/events"
dead_letter = "${dir}/missing/dead-letter.ndjson"
`,
    );
    await reload(s, "failure", 1);
    assert(/config reload failed.*dead-letter file/.test(s.stderr()), s.stderr());
    const m = await scrape(s.adminPort);
    assertEquals(valueOf(m, "vmq_sidecar_config_reloads_total", { result: "success" }), 0);
    assert(!/127\.0\.0\.1:9/.test(s.stderr().split("config reload failed")[0]), s.stderr());
    await sendChunks(s.port, [stream.bytes]);
    await waitFor(() => fileLines(a).length === stream.events, "the file output still runs");
  } finally {
    s.kill("SIGTERM");
    const r = await s.wait();
    assertEquals(r.code, 0, r.stderr);
  }
});

Deno.test("an order=client output added by a reload reports vmq_sidecar_reorder_*; a reload that removes it drops its series", async () => {
  const dir = await sidecarTempDir();
  const [a, c] = ["a", "c"].map((n) => `${dir}/${n}.jsonl`);
  const config = `${dir}/vmq-sidecar.toml`;
  await Deno.writeTextFile(config, `[[outputs]]\nurl = "file:${a}"\n`);
  const s = await start(config);
  const label = { output: `file:${c}` };
  try {
    await Deno.writeTextFile(
      config,
      `[[outputs]]\nurl = "file:${a}"\n\n[[outputs]]\nurl = "file:${c}"\norder = "client"\n`,
    );
    await reload(s, "success", 1);
    await sendChunks(s.port, [stream.bytes]);
    await waitFor(() => fileLines(c).length === stream.events, "the ordered output's events");
    let m = await scrape(s.adminPort);
    // Before: registered only at start when some output ordered — all three were absent here.
    assertEquals(valueOf(m, "vmq_sidecar_reorder_held_events", label), 0);
    assertEquals(valueOf(m, "vmq_sidecar_reorder_late_total", label), 0);
    assertEquals(valueOf(m, "vmq_sidecar_reorder_early_total", label), 0);
    await Deno.writeTextFile(config, `[[outputs]]\nurl = "file:${a}"\n`);
    await reload(s, "success", 2);
    m = await scrape(s.adminPort);
    assertEquals(valueOf(m, "vmq_sidecar_reorder_held_events", label), undefined);
    assertEquals(valueOf(m, "vmq_sidecar_reorder_late_total", label), undefined);
    assertEquals(valueOf(m, "vmq_sidecar_reorder_early_total", label), undefined);
  } finally {
    s.kill("SIGTERM");
    const { code, stderr } = await s.wait();
    assertEquals(code, 0, stderr);
  }
});

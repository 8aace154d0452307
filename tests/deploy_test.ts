// deploy/: what the unit, the Grafana dashboard and the Prometheus alert rules refer to exists —
// the unit's Documentation= file is installed by the documented install steps.
import { assert, assertEquals } from "./_assert.ts";
import { ROOT, sidecarTempDir, waitFor } from "./_sidecar.ts";
import { scrape, spawnSidecar } from "./_ops.ts";
import { startNats, startReceiver, startRedis } from "./_servers.ts";

const read = (path: string) => Deno.readTextFileSync(new URL(path, ROOT));

/** The `install SRC DEST` steps of the ```sh block under "## Install (systemd)" in operations.md. */
function documentedInstalls(): Map<string, { src: string; line: string }> {
  const doc = read("docs/operations.md");
  const section = doc.slice(doc.indexOf("## Install (systemd)"));
  const block = /```sh\n([\s\S]*?)```/.exec(section)?.[1];
  assert(block, "no sh block under ## Install (systemd)");
  const installs = new Map<string, { src: string; line: string }>(); // by destination
  for (const line of block.split("\n")) {
    const words = line.replace(/#.*$/, "").trim().split(/\s+/);
    if (words[0] !== "install") continue;
    const dir = words.includes("-t") ? words[words.indexOf("-t") + 1] : undefined;
    const args = words.slice(1).filter((w, i, a) =>
      !w.startsWith("-") && a[i - 1] !== "-m" && a[i - 1] !== "-t"
    );
    const base = (p: string) => p.split("/").pop();
    if (dir) { for (const src of args) installs.set(`${dir}/${base(src)}`, { src, line }); }
    else {
      const [src, dest] = args;
      installs.set(dest.endsWith("/") ? dest + base(src) : dest, { src, line });
    }
  }
  return installs;
}

Deno.test("the unit's Documentation= files are installed by the documented install steps", async () => {
  const unit = read("deploy/vmq-sidecar.service");
  const uris = unit.split("\n").filter((l) => l.startsWith("Documentation="))
    .flatMap((l) => l.slice("Documentation=".length).trim().split(/\s+/));
  assert(uris.length > 0, "no Documentation=");
  const installs = documentedInstalls();
  for (const uri of uris) {
    // Only what can be checked here: a file the install steps put in place.
    assert(uri.startsWith("file:///"), `${uri}: not a file: URI, cannot be checked`);
    const path = new URL(uri).pathname;
    const step = installs.get(path);
    assert(step, `${uri}: no install step in docs/operations.md puts a file at ${path}`);
    assert(Deno.statSync(new URL(step.src, ROOT)).isFile, `${step.src} (for ${path}) missing`);
    // The unit's own header shows the same step.
    assert(
      unit.includes(`#           ${step.line.trim()}\n`),
      `the unit's comment lacks: ${step.line}`,
    );
    // The step itself, run with its absolute paths below a scratch root, puts the file there.
    const root = await Deno.makeTempDir({ prefix: "vmq-sidecar-install-" });
    try {
      const line = step.line.replace(/(^|\s)\//g, `$1${root}/`);
      const r = await new Deno.Command("sh", { args: ["-c", line], cwd: ROOT }).output();
      assertEquals(r.code, 0, new TextDecoder().decode(r.stderr));
      assertEquals(
        await Deno.readTextFile(`${root}${path}`),
        await Deno.readTextFile(new URL(step.src, ROOT)),
      );
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  }
  assertEquals(new Set(uris).size, uris.length);
});

// ---------------------------------------------------------------------------------------------
// deploy/grafana-dashboard.json and deploy/prometheus-alerts.yml

// deno-lint-ignore no-explicit-any
type Json = any;
const dashboard: Json = JSON.parse(read("deploy/grafana-dashboard.json"));
/** Every panel, rows' nested panels included. */
const panels: Json[] = dashboard.panels.flatMap((p: Json) => [p, ...(p.panels ?? [])]);
const dashboardExprs: string[] = panels.flatMap((p) => (p.targets ?? []).map((t: Json) => t.expr));
/** The alert rules' expressions (one `expr:` line each, as the file writes them). */
const alertExprs: string[] = [...read("deploy/prometheus-alerts.yml").matchAll(/^ +expr: (.+)$/gm)]
  .map((m) => m[1]);

/** Metric names an expression reads: ours, the standard process_* ones and Prometheus' `up`. */
function metricNames(expr: string): string[] {
  const ids = expr.replace(/"[^"]*"/g, '""').match(/[a-zA-Z_:][a-zA-Z0-9_:]*/g) ?? [];
  return ids.filter((id) => /^(vmq_sidecar_|process_)/.test(id) || id === "up");
}

Deno.test("grafana dashboard: valid JSON, a datasource variable, every panel placed and with targets", () => {
  assertEquals(typeof dashboard.uid, "string");
  assertEquals(typeof dashboard.title, "string");
  assert(Number.isInteger(dashboard.schemaVersion) && dashboard.schemaVersion >= 36);
  const vars: Json[] = dashboard.templating.list;
  const ds = vars.find((v) => v.type === "datasource");
  assert(ds, "no datasource variable");
  assertEquals([ds.name, ds.query], ["datasource", "prometheus"]);
  const names = new Set(vars.map((v) => v.name));
  for (const v of vars.filter((v) => v.type === "query")) {
    assertEquals(v.datasource?.uid, "${datasource}", v.name);
  }
  const ids = new Set<number>();
  const cells = new Set<string>();
  for (const p of panels) {
    assert(Number.isInteger(p.id) && !ids.has(p.id), `panel id ${p.id} missing or twice`);
    ids.add(p.id);
    assert(typeof p.title === "string" && p.title.length > 0, `panel ${p.id}: no title`);
    const g = p.gridPos;
    assert(g && g.w > 0 && g.h > 0 && g.x >= 0 && g.x + g.w <= 24, `${p.title}: gridPos`);
    for (let x = g.x; x < g.x + g.w; x++) {
      for (let y = g.y; y < g.y + g.h; y++) {
        assert(!cells.has(`${x},${y}`), `${p.title}: overlaps another panel at ${x},${y}`);
        cells.add(`${x},${y}`);
      }
    }
    if (p.type === "row") continue;
    assert(["timeseries", "stat", "heatmap"].includes(p.type), `${p.title}: type ${p.type}`);
    assertEquals(p.datasource, { type: "prometheus", uid: "${datasource}" }, p.title);
    assert(Array.isArray(p.targets) && p.targets.length > 0, `${p.title}: no targets`);
    const refIds = p.targets.map((t: Json) => t.refId);
    assertEquals(new Set(refIds).size, refIds.length, `${p.title}: refIds`);
    for (const t of p.targets) {
      assertEquals(t.datasource, p.datasource, `${p.title} ${t.refId}`);
      assert(typeof t.expr === "string" && metricNames(t.expr).length > 0, `${p.title}: expr`);
      for (const [, v] of t.expr.matchAll(/\$(\w+)/g)) {
        assert(names.has(v) || v.startsWith("__"), `${p.title}: undefined variable $${v}`);
      }
    }
  }
});

/** Runs promtool; its exit code and output. */
async function promtool(...args: string[]): Promise<{ code: number; out: string }> {
  const r = await new Deno.Command("promtool", { args, cwd: ROOT }).output();
  const dec = new TextDecoder();
  return { code: r.code, out: dec.decode(r.stdout) + dec.decode(r.stderr) };
}

Deno.test("promtool check rules: the alert rules, and the dashboard's queries as recording rules", async () => {
  const alerts = await promtool("check", "rules", "deploy/prometheus-alerts.yml");
  assertEquals(alerts.code, 0, alerts.out);
  assert(alerts.out.includes(`SUCCESS: ${alertExprs.length} rules found`), alerts.out);
  // The dashboard's PromQL, with Grafana's variables substituted, must parse too.
  const dir = await Deno.makeTempDir({ prefix: "vmq-sidecar-promtool-" });
  try {
    const rules = dashboardExprs.map((e, i) =>
      `      - record: dashboard:query_${i}\n        expr: ${
        JSON.stringify(e.replaceAll("$__rate_interval", "5m").replaceAll("$instance", ".*"))
      }`
    );
    await Deno.writeTextFile(
      `${dir}/dashboard.yml`,
      `groups:\n  - name: dashboard\n    rules:\n${rules.join("\n")}\n`,
    );
    const r = await promtool("check", "rules", `${dir}/dashboard.yml`);
    assertEquals(r.code, 0, r.out);
    assert(r.out.includes(`SUCCESS: ${dashboardExprs.length} rules found`), r.out);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("promtool test rules: a healthy sidecar raises no alert, each failure its own", async () => {
  const r = await promtool("test", "rules", "tests/alerts.promtool.yml");
  assertEquals(r.code, 0, r.out);
  assert(r.out.includes("SUCCESS"), r.out);
});

Deno.test("every metric the dashboard and the alerts use is exported, for every kind of output", async () => {
  const used = new Set([...dashboardExprs, ...alertExprs].flatMap(metricNames));
  used.delete("up"); // Prometheus' own, per scrape target
  assert(used.size > 15, [...used].join(" "));
  await using nats = await startNats();
  await using redis = await startRedis();
  await using http = startReceiver();
  const dir = await sidecarTempDir();
  const outputs = [
    `file:${dir}/events.jsonl`,
    `nats://127.0.0.1:${nats.port}?create_stream=EV&dead_letter=${dir}/nats-dead.ndjson`,
    `redis://127.0.0.1:${redis.port}/0`,
    `http://127.0.0.1:${http.port}/?dead_letter=${dir}/http-dead.ndjson`,
  ];
  const config = `${dir}/vmq-sidecar.toml`; // with --config: the config_* metrics too
  await Deno.writeTextFile(config, outputs.map((u) => `[[outputs]]\nurl = "${u}"\n`).join("\n"));
  const s = await spawnSidecar(
    ["--config", config, "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0"],
    { stdout: "null" },
  );
  try {
    let m = await scrape(s.adminPort);
    await waitFor(async () => {
      m = await scrape(s.adminPort);
      return m.get("vmq_sidecar_ready")?.samples[0]?.value === 1;
    }, "ready (every output connected)");
    const samples = [...m.values()].flatMap((f) => f.samples);
    const byName = Map.groupBy(samples, (x) => x.name);
    const kinds = new Set(
      samples.filter((x) => x.name === "vmq_sidecar_output_connected").map((x) => x.labels.output),
    );
    assertEquals(kinds.size, outputs.length, [...kinds].join(" "));
    for (const name of used) {
      const series = byName.get(name);
      assert(series, `${name}: used by the dashboard or the alerts, not exported`);
      if ("output" in series[0].labels) {
        // Per-output metrics exist for each kind of output from the start.
        const of = new Set(series.map((x) => x.labels.output));
        for (const o of kinds) assert(of.has(o), `${name}: no series for output ${o}`);
      }
    }
  } finally {
    s.kill("SIGTERM");
    const { code, stderr } = await s.wait();
    await Deno.remove(dir, { recursive: true });
    assertEquals(code, 0, stderr);
  }
});

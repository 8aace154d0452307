// The one settings table (lib/app/settings.ts): every row is in --help, in check-config's
// output with its default, and in docs/configuration.md; the reload keeps exactly the restart
// rows; loadConfig builds what the command line builds.
import { assert, assertEquals } from "./_assert.ts";
import { ROOT, RUN_MAIN, runSidecar, sidecarTempDir } from "./_sidecar.ts";
import {
  CONFIG_FLAG,
  defaultText,
  effectiveDocument,
  FILE_KEYS,
  keepRestartOnly,
  OUTPUTS_SETTING,
  parseCommandLine,
  resolveConfig,
  RESTART_ONLY,
  restartOnlyChanges,
  SETTING_ROWS,
  SETTINGS,
} from "../lib/internal.ts";
import { loadConfig, type SidecarConfig } from "../lib/mod.ts";

async function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [...RUN_MAIN, ...args],
    cwd: ROOT,
    stdin: "null",
    env: { NO_COLOR: "1" },
    signal: AbortSignal.timeout(30_000),
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

async function writeConfig(text: string): Promise<string> {
  const path = `${await sidecarTempDir()}/settings.toml`;
  await Deno.writeTextFile(path, text);
  return path;
}

/** A TOML value as docs/configuration.md writes it in its default column. */
function docValue(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map((x) => JSON.stringify(x)).join(", ")}]`;
  return typeof v === "string" ? JSON.stringify(v) : String(v);
}

/** `value` as a TOML document line. */
function tomlLine(key: string, value: unknown): string {
  return `${key} = ${JSON.stringify(value)}`;
}

Deno.test("settings: every row is in --help with its default, and --help lists nothing else", async () => {
  const help = await runSidecar(["--help"]);
  assertEquals(help.code, 0, help.stderr);
  // The flag entries: "  --flag METAVAR   help…" and their continuation lines.
  const entries = new Map<string, string>();
  let current = "";
  for (const line of help.stdout.split("\n")) {
    const m = /^ {2}(--[a-z-]+) /.exec(line);
    if (m) entries.set(current = m[1], line);
    else if (current && /^ {28}/.test(line)) {
      entries.set(current, `${entries.get(current)} ${line.trim()}`);
    } else current = "";
  }
  for (const s of SETTING_ROWS) {
    const entry = entries.get(s.flag);
    assert(entry, `${s.flag} missing from --help:\n${help.stdout}`);
    assert(entry.startsWith(`  ${s.flag} ${s.metavar} `), entry);
    assert(entry.includes(`(default ${defaultText(s)})`), `${s.flag}: no default in ${entry}`);
  }
  assert(entries.get(OUTPUTS_SETTING.flag)?.includes("default stdout"), help.stdout);
  assert(entries.has(CONFIG_FLAG.flag), help.stdout);
  assertEquals(
    [...entries.keys()].sort(),
    [
      CONFIG_FLAG.flag,
      OUTPUTS_SETTING.flag,
      ...SETTING_ROWS.map((s) => s.flag),
    ]
      .sort(),
  );
  assert(/^ {2}-h, --help /m.test(help.stdout) && /^ {2}-V, --version /m.test(help.stdout));
  assert(help.stdout.split("\n").every((l) => l.length <= 100), "a --help line over 100 columns");
});

Deno.test("settings: check-config prints every row with its default, normalized; show round-trips", async () => {
  const path = await writeConfig('[[outputs]]\nurl = "stdout"\n');
  const r = await run(["check-config", path, "--file-only"]);
  assertEquals(r.code, 0, r.stderr);
  const doc = JSON.parse(r.stdout);
  assertEquals(Object.keys(doc).sort(), [...FILE_KEYS].sort());
  for (const s of SETTING_ROWS) {
    assertEquals(doc[s.key], JSON.parse(JSON.stringify(s.show(s.default))), s.key);
    // What check-config prints is a value the file accepts, meaning the same.
    assertEquals(s.parse(s.key, doc[s.key]), s.default, `${s.key} does not round-trip`);
    assertEquals(
      s.parse(s.flag, Array.isArray(doc[s.key]) ? doc[s.key].join(",") : String(doc[s.key])),
      s.default,
      s.flag,
    );
  }
  // Every example value: accepted, normalized, and printed as given.
  const examples = await writeConfig(
    [...SETTING_ROWS.map((s) => tomlLine(s.key, s.example)), '[[outputs]]\nurl = "stdout"'].join(
      "\n",
    ),
  );
  const e = await run(["check-config", examples, "--file-only"]);
  assertEquals(e.code, 0, e.stderr);
  const got = JSON.parse(e.stdout);
  for (const s of SETTING_ROWS) {
    const v = s.parse(s.key, s.example);
    assert(JSON.stringify(v) !== JSON.stringify(s.default), `${s.key}: the example is the default`);
    assertEquals(got[s.key], JSON.parse(JSON.stringify(s.show(v))), s.key);
  }
});

Deno.test("settings: every row is in docs/configuration.md with its flag, default and reload", async () => {
  const doc = await Deno.readTextFile(new URL("../docs/configuration.md", import.meta.url));
  for (const s of SETTING_ROWS) {
    const line = doc.split("\n").find((l) => l.startsWith(`| \`${s.key}\` | \`${s.flag}\` |`));
    assert(line, `docs/configuration.md has no row for ${s.key} / ${s.flag}`);
    const cells = line.split(" | ");
    assert(
      cells[3].startsWith(`\`${docValue(s.show(s.default))}\``),
      `${s.key}: default ${cells[3]}`,
    );
    assertEquals(cells[4], s.reload, `${s.key}: reload`);
  }
  assert(
    doc.includes(`| \`${OUTPUTS_SETTING.key}\` | \`${OUTPUTS_SETTING.flag}\` |`),
    "outputs row",
  );
  // The reload section names every restart-only key.
  const reload = doc.slice(doc.indexOf("## Reload (SIGHUP)"));
  for (const name of RESTART_ONLY) {
    assert(
      reload.includes(`\`${SETTINGS[name].key}\``),
      `reload section lacks ${SETTINGS[name].key}`,
    );
  }
});

Deno.test("settings: a flag is its key with - for _ (an _ms key's flag drops _ms)", () => {
  for (const s of SETTING_ROWS) {
    const fromFlag = s.flag.slice(2).replaceAll("-", "_");
    assert(
      s.key === fromFlag || (s.key === `${fromFlag}_ms` && s.metavar === "MS"),
      `${s.flag} / ${s.key}`,
    );
  }
  assertEquals(new Set(SETTING_ROWS.map((s) => s.key)).size, SETTING_ROWS.length);
  assertEquals(new Set(SETTING_ROWS.map((s) => s.flag)).size, SETTING_ROWS.length);
});

Deno.test("settings: a reload keeps exactly the restart rows, and reports exactly those as changed", () => {
  const before = resolveConfig({ out: ["stdout"] }).config;
  const data = Object.fromEntries(SETTING_ROWS.map((s) => [s.key, s.example]));
  const after = resolveConfig({ out: ["stdout"] }, { path: "", data, lines: new Map() }).config;
  const runRows = SETTING_ROWS.filter((s) => s.reload !== "outputs");
  const c = before as unknown as Record<string, unknown>,
    n = after as unknown as Record<string, unknown>;
  for (const s of runRows) assert(JSON.stringify(c[s.name]) !== JSON.stringify(n[s.name]), s.name);
  assertEquals(
    restartOnlyChanges(before, after),
    SETTING_ROWS.filter((s) => s.reload === "restart").map((s) => s.key),
  );
  const kept = keepRestartOnly(after, before) as unknown as Record<string, unknown>;
  for (const s of runRows) {
    assertEquals(kept[s.name], s.reload === "restart" ? c[s.name] : n[s.name], s.name);
  }
  assertEquals(kept.outputs, after.outputs);
});

Deno.test("loadConfig: the configuration exactly as the command line builds it", async () => {
  const dir = await sidecarTempDir();
  const path = await writeConfig(`listen = "127.0.0.1:9000"
max_connections = 50
rotate_keep = 2

[[outputs]]
url = "file:${dir}/a.jsonl"
hooks = ["on_publish"]
`);
  const flags = ["--listen", "127.0.0.1:0", "--stall-timeout", "1000"];
  const cli = parseCommandLine(["--config", path, ...flags]);
  assert("run" in cli);
  const loaded: SidecarConfig = loadConfig({ flags, file: path });
  assertEquals(loaded, cli.run);
  assertEquals(loaded.listen, { hostname: "127.0.0.1", port: 0 });
  assertEquals(loaded.maxConnections, 50);
  assertEquals(loaded.stallTimeoutMs, 1000);
  assertEquals(loaded.outputs[0].options.keep, 2);
  // --config among the flags is the same as `file`.
  assertEquals(loadConfig({ flags: ["--config", path, ...flags] }), cli.run);
  // Values in code are validated as a file's keys, and replace the file's.
  const v = loadConfig({ file: path, values: { max_connections: 7, admin: "off" } });
  assertEquals([v.maxConnections, v.admin, v.listen.port], [7, null, 9000]);
  // A configuration built in code (no settings record) is shown with its own values.
  const shown = effectiveDocument({ config: v, outputs: [], hooks: null, file: null });
  assertEquals([shown.max_connections, shown.admin, shown.rotate_keep], [7, "off", 5]);
  const d = loadConfig();
  assertEquals(d.outputs.map((o) => o.kind), ["stdout"]);
  assertEquals(d.maxFrameBytes, SETTINGS.maxFrameBytes.default);
  let error = "";
  try {
    loadConfig({ values: { max_connections: 0 } });
  } catch (e) {
    error = (e as Error).message;
  }
  assert(/^max_connections: expected a whole number from 1/.test(error), error);
});

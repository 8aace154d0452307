// The docs are tested: every fenced block of README.md and docs/*.md is run here, or is marked
// `<!-- not run: REASON -->` on the line before it. JSON blocks parse, TOML blocks are valid
// config files, every TypeScript block type-checks and runs — the examples against the real
// sidecar (main.ts with the start task's permissions) and real nats-server / redis-server.
// The examples are user scripts, so they run with `-A` (not the sidecar's permission set).
import { assert, assertEquals } from "./_assert.ts";
import { jsonLines, ROOT, RUN_MAIN, sidecarTempDir, startSidecar, waitFor } from "./_sidecar.ts";
import { addStream, freePort, natsClient, startNats, startRedis, streamCount } from "./_servers.ts";
import { fixtureVectors } from "./_vectors.ts";
import { frameOf, PluginSender } from "../lib/testing.ts";
import type { SidecarEvent } from "../lib/mod.ts";

/** A fenced code block. */
interface Block {
  /** `README.md` or `docs/x.md`. */
  file: string;
  /** 1-based line of the opening fence. */
  line: number;
  /** The info string (`ts`, `sh`, `` for none). */
  lang: string;
  /** The text between the fences. */
  code: string;
  /** The reason of a `<!-- not run: … -->` marker before it. */
  notRun?: string;
}

const DOCS = [
  "README.md",
  ...[...Deno.readDirSync(new URL("docs/", ROOT))]
    .map((e) => `docs/${e.name}`).filter((n) => n.endsWith(".md")).sort(),
];

function blocksOf(file: string): Block[] {
  const lines = Deno.readTextFileSync(new URL(file, ROOT)).split("\n");
  const out: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(\S*)\s*$/.exec(lines[i]);
    if (!open) continue;
    let end = i + 1;
    while (end < lines.length && !/^```\s*$/.test(lines[end])) end++;
    let before = i - 1;
    while (before >= 0 && lines[before].trim() === "") before--;
    const notRun = /^<!-- not run: (.+?) -->$/.exec(lines[before]?.trim() ?? "")?.[1];
    out.push({
      file,
      line: i + 1,
      lang: open[1],
      code: lines.slice(i + 1, end).join("\n") + "\n",
      notRun,
    });
    i = end;
  }
  return out;
}

const BLOCKS = DOCS.flatMap(blocksOf);
const where = (b: Block) => `${b.file}:${b.line}`;

/** TypeScript examples run by a test below, recognised by a line of their code. */
const TS_RUNNERS: Record<string, string> = {
  "for await (const frames of readFrameBatches(conn": "the README library example",
  'Deno.serve({ hostname: "127.0.0.1", port: 9000 }': "the HTTP receiver",
  "const js = jetstream(nc);": "the NATS consumer",
  "const res = await redis.xRead(": "the Redis consumer",
  "const decode = (token: string)": "the subject token decoder",
  'name: "audit"': "the README plugin example",
};
/** Shell blocks run by a test below, by their first line. */
const SH_RUNNERS: Record<string, string> = {
  "deno task start": "the quick start",
  "deno task send ": "the quick start",
};
const runnerOf = (b: Block) =>
  Object.keys(b.lang === "sh" ? SH_RUNNERS : TS_RUNNERS).find((k) =>
    b.lang === "sh" ? `${b.code.split("\n")[0]} `.startsWith(k) : b.code.includes(k)
  );
const tsBlock = (key: string) => {
  const found = BLOCKS.filter((b) => b.lang === "ts" && b.code.includes(key));
  assertEquals(found.length, 1, `one block with ${key}`);
  return found[0];
};

Deno.test("docs: every code block is run by a test, or says why not", () => {
  assert(BLOCKS.length > 20, `${BLOCKS.length} blocks`);
  const unhandled = BLOCKS.filter((b) => {
    if (b.notRun !== undefined) return b.notRun.trim().length < 10; // a reason, not a tick
    if (b.lang === "json" || b.lang === "toml") return false;
    if (b.lang === "ts" || b.lang === "sh") return runnerOf(b) === undefined;
    return true;
  });
  assertEquals(unhandled.map((b) => `${where(b)} (${b.lang || "no language"})`), []);
});

Deno.test("docs: JSON blocks parse (one value, or one per line)", () => {
  for (const b of BLOCKS.filter((b) => b.lang === "json" && !b.notRun)) {
    try {
      JSON.parse(b.code);
    } catch {
      jsonLines(b.code); // JSON lines
    }
  }
});

async function runMain(args: string[], env: Record<string, string> = {}) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [...RUN_MAIN, ...args],
    cwd: ROOT,
    stdin: "null",
    env: { NO_COLOR: "1", ...env },
    signal: AbortSignal.timeout(30_000),
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

Deno.test("docs: TOML blocks are valid config files (check-config)", async () => {
  const dir = await sidecarTempDir();
  const toml = BLOCKS.filter((b) => b.lang === "toml" && !b.notRun);
  assert(toml.length > 0);
  for (const b of toml) {
    const path = `${dir}/block-${b.line}.toml`;
    await Deno.writeTextFile(path, b.code);
    // Secrets the block names (`*_env = "VMQ_SIDECAR_…"`) are set, as the operator would.
    const env = Object.fromEntries(
      [...b.code.matchAll(/_env = "(VMQ_SIDECAR_\w+)"/g)].map((m) => [m[1], "example"]),
    );
    const r = await runMain(["check-config", path, "--file-only"], env);
    assertEquals(r.code, 0, `${where(b)}: ${r.stderr}`);
  }
});

/** Writes a TypeScript block to a file of its own; `./lib/` imports point at the clone. */
function scriptOf(dir: string, b: Block, replace: [string, string][] = []): string {
  let code = b.code.replaceAll('from "./lib/', `from "${new URL("lib/", ROOT).href}`);
  for (const [from, to] of replace) {
    assert(code.includes(from), `${where(b)} contains ${from}`);
    code = code.replaceAll(from, to);
  }
  const path = `${dir}/${b.file.replace(/\W/g, "_")}_${b.line}.ts`;
  Deno.writeTextFileSync(path, code);
  return path;
}

/**
 * Deno flags for a block's script: the clone's config for examples of the library (`./lib/`),
 * none for the standalone ones (a consumer's own script: its imports must work as written).
 */
const denoOpts = (path: string) =>
  Deno.readTextFileSync(path).includes(new URL("lib/", ROOT).href)
    ? ["--config", new URL("deno.json", ROOT).pathname, "--no-lock", "--quiet"]
    : ["--no-config", "--no-lock", "--quiet"];

Deno.test("docs: every TypeScript block type-checks", async () => {
  const dir = await sidecarTempDir();
  const files = BLOCKS.filter((b) => b.lang === "ts" && !b.notRun).map((b) => scriptOf(dir, b));
  // One `deno check` per kind of script (with / without the clone's config).
  for (const lib of [true, false]) {
    const group = files.filter((f) => denoOpts(f).includes("--config") === lib);
    if (group.length === 0) continue;
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["check", ...denoOpts(group[0]), ...group],
      cwd: dir,
      stdin: "null",
      env: { NO_COLOR: "1" },
    }).output();
    assertEquals(out.code, 0, new TextDecoder().decode(out.stderr));
  }
});

/** A running example script: its stdout and stderr as they come. */
function runScript(path: string) {
  const proc = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", ...denoOpts(path), path],
    cwd: path.slice(0, path.lastIndexOf("/")),
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
  let out = "", err = "";
  const dec = new TextDecoder(), dec2 = new TextDecoder();
  const done = Promise.all([
    (async () => {
      for await (const c of proc.stdout) out += dec.decode(c, { stream: true });
    })(),
    (async () => {
      for await (const c of proc.stderr) err += dec2.decode(c, { stream: true });
    })(),
  ]);
  const stop = async () => {
    try {
      proc.kill("SIGTERM");
    } catch { /* exited */ }
    const s = await proc.status;
    await done;
    return s;
  };
  return { stdout: () => out, stderr: () => err, status: proc.status, stop };
}

const lines = (s: string) => s.split("\n").filter((l) => l !== "");
const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
/** Text of `console.log` lines (values may hold newlines: the vectors have such client ids). */
const logged = (rows: string[]) => rows.map((r) => `${r}\n`).join("");
const sendVectors = (port: number) => runMain(["send", "--to", `127.0.0.1:${port}`]);
const EVENTS = fixtureVectors().filter((v) => v.expected.hook !== null);

async function accepts(port: number): Promise<boolean> {
  try {
    (await Deno.connect({ hostname: "127.0.0.1", port })).close();
    return true;
  } catch {
    return false;
  }
}

Deno.test("docs: the README library example prints on_publish events and survives a cut stream", async () => {
  const dir = await sidecarTempDir();
  const port = freePort();
  const b = tsBlock("for await (const frames of readFrameBatches(conn");
  const script = runScript(scriptOf(dir, b, [["port: 8890", `port: ${port}`]]));
  try {
    await waitFor(() => accepts(port), "the example listening");
    const want = EVENTS.filter((v) => v.expected.hook === "on_publish").map((v) =>
      `${v.expected.event!.topic} ${atob(v.expected.event!.payload as string).length}`
    );
    assertEquals((await sendVectors(port)).code, 0);
    await waitFor(() => script.stdout().length >= logged(want).length, "on_publish lines");
    assertEquals(script.stdout(), logged(want));
    // A stream cut inside a frame: that connection ends with a message, the example runs on.
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    await conn.write(new Uint8Array([0, 0, 0, 100, 1, 2, 3]));
    conn.close();
    await waitFor(() => script.stderr().includes("TruncatedFrameError"), "the cut reported");
    assert(/127\.0\.0\.1:\d+: TruncatedFrameError: closing the connection/.test(script.stderr()));
    assertEquals((await sendVectors(port)).code, 0);
    await waitFor(() => script.stdout().length >= 2 * logged(want).length, "the second pass");
    assertEquals(script.stdout(), logged([...want, ...want]));
  } finally {
    await script.stop();
  }
});

Deno.test("docs: the HTTP receiver example gets every event from a real sidecar", async () => {
  const dir = await sidecarTempDir();
  const port = freePort();
  const b = tsBlock('Deno.serve({ hostname: "127.0.0.1", port: 9000 }');
  const script = runScript(scriptOf(dir, b, [["port: 9000", `port: ${port}`]]));
  try {
    await waitFor(() => accepts(port), "the receiver listening");
    const sidecar = await startSidecar([
      "--listen",
      "127.0.0.1:0",
      "--admin",
      "off",
      "--out",
      `http://127.0.0.1:${port}/?linger_ms=0`,
    ], { stdout: "null" });
    assertEquals((await sendVectors(sidecar.port)).code, 0);
    await waitFor(() => lines(script.stdout()).length >= EVENTS.length, "every hook printed");
    sidecar.kill("SIGTERM");
    assertEquals((await sidecar.wait()).code, 0);
    assertEquals(
      lines(script.stdout()).sort(),
      EVENTS.map((v) => v.expected.hook as string).sort(),
    );
  } finally {
    await script.stop();
  }
});

Deno.test("docs: the NATS consumer example reads back every event the sidecar published", async () => {
  const dir = await sidecarTempDir();
  await using nats = await startNats();
  const nc = await natsClient(nats.port);
  try {
    await addStream(nc, "VMQ", ["vmq.events.>"]);
    const sidecar = await startSidecar([
      "--listen",
      "127.0.0.1:0",
      "--admin",
      "off",
      "--out",
      `nats://127.0.0.1:${nats.port}`,
    ], { stdout: "null" });
    assertEquals((await sendVectors(sidecar.port)).code, 0);
    await waitFor(async () => await streamCount(nc, "VMQ") === EVENTS.length, "stored");
    sidecar.kill("SIGTERM");
    assertEquals((await sidecar.wait()).code, 0);
    const b = tsBlock("const js = jetstream(nc);");
    const script = runScript(
      scriptOf(dir, b, [['servers: "127.0.0.1:4222"', `servers: "127.0.0.1:${nats.port}"`]]),
    );
    const status = await Promise.race([
      script.status,
      new Promise<null>((r) => setTimeout(() => r(null), 30_000)),
    ]);
    const s = await script.stop();
    assert(status !== null, `the example did not end:\n${script.stderr()}`);
    assertEquals(s.code, 0, script.stderr());
    // "seq hook client_id Nats-Msg-Id", in stream order.
    const want = EVENTS.map((v, i) =>
      escape(`${i + 1} ${v.expected.hook} ${v.expected.event!.client_id} `) + "[0-9a-f]{32}\n"
    ).join("");
    assert(new RegExp(`^${want}$`).test(script.stdout()), script.stdout());
  } finally {
    await nc.close();
  }
});

Deno.test("docs: the Redis consumer example reads the on_publish stream the sidecar wrote", async () => {
  const dir = await sidecarTempDir();
  await using redis = await startRedis();
  const sidecar = await startSidecar([
    "--listen",
    "127.0.0.1:0",
    "--admin",
    "off",
    "--out",
    `redis://127.0.0.1:${redis.port}/0`,
  ], { stdout: "null" });
  assertEquals((await sendVectors(sidecar.port)).code, 0);
  sidecar.kill("SIGTERM");
  assertEquals((await sidecar.wait()).code, 0);
  const b = tsBlock("const res = await redis.xRead(");
  const script = runScript(
    scriptOf(dir, b, [["redis://127.0.0.1:6379/0", `redis://127.0.0.1:${redis.port}/0`]]),
  );
  const publishes = EVENTS.filter((v) => v.expected.hook === "on_publish");
  try {
    // "entry-id id client_id" per on_publish event; it follows the stream: stopped here.
    const want = new RegExp(
      "^" + publishes.map((v) =>
        `\\d+-\\d+ [0-9a-f]+ ${escape(v.expected.event!.client_id as string)}\n`
      ).join("") + "$",
    );
    await waitFor(() =>
      want.test(script.stdout()), `every on_publish: ${script.stdout()}`);
  } finally {
    await script.stop();
  }
});

Deno.test("docs: the subject token decoder inverts the escaping", async () => {
  const dir = await sidecarTempDir();
  const b = tsBlock("const decode = (token: string)");
  const path = scriptOf(dir, b);
  await Deno.writeTextFile(
    path,
    `console.log(JSON.stringify([decode("%"), decode("sensor%2E7"), decode("a%20b%25")]));\n`,
    { append: true },
  );
  const script = runScript(path);
  const s = await script.status;
  await script.stop();
  assertEquals(s.code, 0, script.stderr());
  assertEquals(script.stdout(), '["","sensor.7","a b%"]\n');
});

Deno.test("docs: the quick start: deno task start, then deno task send, prints every sample event", async () => {
  // Its blocks, as written.
  const start = BLOCKS.find((b) => b.file === "README.md" && b.code === "deno task start\n");
  const send = BLOCKS.find((b) => b.file === "README.md" && b.code.startsWith("deno task send "));
  assert(start && send, "the quick start blocks");
  for (const port of [8890, 8891]) {
    if (!await accepts(port)) continue;
    console.log(`port ${port} is taken on this host: the quick start cannot run on its defaults`);
    return;
  }
  // `deno task start` is main.ts with the start task's flags (tests/tasks_test.ts).
  const sidecar = await startSidecar([]);
  assertEquals(sidecar.port, 8890);
  const out = await new Deno.Command(Deno.execPath(), {
    args: send.code.split("#")[0].trim().split(/\s+/).slice(1),
    cwd: ROOT,
    stdin: "null",
    env: { NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1" },
    signal: AbortSignal.timeout(30_000),
  }).output();
  sidecar.kill("SIGINT");
  const r = await sidecar.wait();
  assertEquals(out.code, 0, new TextDecoder().decode(out.stderr));
  assertEquals(r.code, 0, r.stderr);
  assertEquals(jsonLines(r.stdout).length, EVENTS.length);
  assert(/stopped: 149 events \(on_register=13 .*\); empty frames 1;/.test(r.stderr), r.stderr);
});

Deno.test("docs: the README plugin example handles one client's events in broker order, rejects, exports its metric", async () => {
  const dir = await sidecarTempDir();
  const port = freePort(), admin = freePort();
  const b = tsBlock('name: "audit"');
  const script = runScript(scriptOf(dir, b, [
    ["127.0.0.1:8890", `127.0.0.1:${port}`],
    ["127.0.0.1:8891", `127.0.0.1:${admin}`],
  ]));
  try {
    await waitFor(() => accepts(port), "the plugin listening");
    const at = (n: number) => ({ seconds: 1_764_620_000n, nanos: n * 1000 });
    const pub = (n: number, topic: string, size: number) =>
      ({
        hook: "on_publish",
        timestamp: at(n),
        username: "u",
        client_id: "car-1",
        mountpoint: "",
        qos: 1,
        topic,
        payload: new Uint8Array(size),
        retain: false,
        matched_acl: { name: "", pattern: "" },
        session_id: "s1",
      }) as SidecarEvent;
    const events: SidecarEvent[] = [
      ...[1, 2, 3, 4, 5].map((n) => pub(n, `devices/car-1/t${n}`, n)),
      pub(6, "other/x", 1), // not devices/#: filtered out
      pub(7, "devices/car-1/big", 2000), // rejected
      {
        hook: "on_client_offline",
        timestamp: at(9),
        client_id: "car-1",
        mountpoint: "",
        session_id: "s1",
        reason: "REASON_NORMAL_DISCONNECT",
      } as SidecarEvent,
    ];
    // The offline first, the publishes after, over 8 connections: the handler sees broker order.
    const sender = await PluginSender.connect({ port, connections: 8, seed: 2 });
    for (const e of [...events].reverse()) await sender.send(frameOf(e).subarray(4));
    await sender.close();
    await waitFor(() => script.stdout().includes("offline"), "the offline line");
    assertEquals(lines(script.stdout()), [
      ...[1, 2, 3, 4, 5].map((n) =>
        `2025-12-01T20:13:20.00000${n}000Z car-1 devices/car-1/t${n} ${n} bytes`
      ),
      "car-1 offline after 5 publishes",
    ]);
    const metrics = await (await fetch(`http://127.0.0.1:${admin}/metrics`)).text();
    assert(metrics.includes("\naudit_clients 1\n"), metrics);
    assert(metrics.includes('vmq_sidecar_output_events_received_total{output="audit"} 7'), metrics);
  } finally {
    const status = await script.stop();
    assertEquals(status.code, 0, script.stderr());
  }
});

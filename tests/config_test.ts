// The configuration file with the real main.ts: check-config, errors naming the line and the
// key, flags over file, per-output options, secrets from the environment (masked).
import { assert, assertEquals } from "./_assert.ts";
import { fileLines, fixtureStream, spawnSidecar } from "./_ops.ts";
import { ROOT, RUN_MAIN, runSidecar, sendChunks, sidecarTempDir, waitFor } from "./_sidecar.ts";
import { effectiveDocument, maskUrl, resolveConfig } from "../lib/internal.ts";

async function run(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [...RUN_MAIN, ...args],
    cwd: ROOT,
    stdin: "null",
    env: { NO_COLOR: "1", ...env },
    // A config wrongly accepted would run the sidecar until stopped: bound the wait.
    signal: AbortSignal.timeout(30_000),
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

async function writeConfig(text: string): Promise<string> {
  const path = `${await sidecarTempDir()}/vmq-sidecar.toml`;
  await Deno.writeTextFile(path, text);
  return path;
}

const EXAMPLE = "deploy/vmq-sidecar.toml";

/** `deno task check-config ARGS` from the clone: exit code, stdout, stderr without the task line. */
async function checkConfigTask(args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["task", "check-config", ...args],
    cwd: ROOT,
    stdin: "null",
    env: { NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1" },
    signal: AbortSignal.timeout(30_000),
  }).output();
  const dec = new TextDecoder();
  const stderr = dec.decode(out.stderr).split("\n").filter((l) => !l.startsWith("Task ")).join(
    "\n",
  );
  return { code: out.code, stdout: dec.decode(out.stdout), stderr };
}

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

Deno.test("check-config accepts deploy/vmq-sidecar.toml from the clone and prints the effective config", async () => {
  // --file-only: the file itself; its output directories are this host's business (below).
  const r = await checkConfigTask([EXAMPLE, "--file-only"]);
  assertEquals(r.code, 0, r.stderr);
  assertEquals(r.stderr.trim(), `vmq-sidecar: ${EXAMPLE}: valid`);
  const doc = JSON.parse(r.stdout);
  assertEquals(doc.listen, "127.0.0.1:8890");
  assertEquals(doc.admin, "127.0.0.1:8891");
  assertEquals(doc.outputs.length, 3);
  assertEquals(doc.outputs[1].hooks, [
    "on_register",
    "on_register_failed",
    "on_client_offline",
    "on_client_gone",
  ]);
  assertEquals(doc.outputs[2].enabled, false);
  assertEquals(doc.outputs[2].topics, ["devices/+/telemetry", "fleet/#"]);
  assertEquals(doc.outputs[2].on_full, "drop");
  // Normalized: sizes in bytes.
  assertEquals(doc.outputs[0].rotate_bytes, 256 * 1024 * 1024);
  assertEquals(doc.outputs[2].rotate_bytes, 0); // every default shown
  // The TOML it prints is itself a valid config with the same effective result.
  const toml = await run([
    "check-config",
    await writeConfig(
      await Deno.readTextFile(
        new URL(`../${EXAMPLE}`, import.meta.url),
      ),
    ),
    "--emit",
    "toml",
    "--file-only",
  ]);
  assertEquals(toml.code, 0, toml.stderr);
  const again = await run(["check-config", await writeConfig(toml.stdout), "--file-only"]);
  assertEquals(again.code, 0, again.stderr);
  assertEquals(JSON.parse(again.stdout), doc);

  // With this host's checks: valid where /var/log/vmq-sidecar exists, else exit 2 saying so.
  const host = await checkConfigTask([EXAMPLE]);
  if (exists("/var/log/vmq-sidecar")) assertEquals(host.code, 0, host.stderr);
  else {
    assertEquals(host.code, 2, host.stderr);
    assertEquals(host.stdout, "");
    assert(
      host.stderr.startsWith(
        `vmq-sidecar: ${EXAMPLE}:26: outputs[1]: cannot open output file /var/log/vmq-sidecar/events.jsonl: directory /var/log/vmq-sidecar does not exist: create it`,
      ),
      host.stderr,
    );
  }
});

Deno.test("check-config checks what start checks: output and dead-letter directories exist and are writable", async () => {
  const dir = await sidecarTempDir();
  try {
    const example = await Deno.readTextFile(new URL(`../${EXAMPLE}`, import.meta.url));
    const here = example.replaceAll("/var/log/vmq-sidecar", `${dir}/log`)
      .replaceAll("/var/lib/vmq-sidecar", `${dir}/lib`) +
      `\n[[outputs]]\nurl = "nats://127.0.0.1:1"\ndead_letter = "${dir}/lib/dead-letter.ndjson"\n`;
    const path = `${dir}/vmq-sidecar.toml`;
    await Deno.writeTextFile(path, here);
    // Directories missing: every problem, one line each, with its line; exit 2 (start: 1).
    const missing = await run(["check-config", path]);
    assertEquals(missing.code, 2, missing.stderr);
    const lines = missing.stderr.trimEnd().split("\n");
    assertEquals(lines.length, 3, missing.stderr);
    assert(
      lines[0].startsWith(
        `vmq-sidecar: ${path}:26: outputs[1]: cannot open output file ${dir}/log/events.jsonl: directory ${dir}/log does not exist: create it`,
      ),
      lines[0],
    );
    assert(
      lines[1].includes(`outputs[2]: cannot open output file ${dir}/log/sessions.jsonl`),
      lines[1],
    );
    assert(
      lines[2].includes(
        `outputs[4]: cannot write the dead-letter file ${dir}/lib/dead-letter.ndjson: directory ${dir}/lib does not exist`,
      ) && lines[2].includes("or set dead_letter=PATH"),
      lines[2],
    );
    const start = await run(["--config", path, "--listen", "127.0.0.1:0", "--admin", "off"]);
    assertEquals(start.code, 1, start.stderr);
    assertEquals(start.stderr, missing.stderr);
    // Created: valid, and the check leaves nothing behind (no output file, no probe).
    await Deno.mkdir(`${dir}/log`);
    await Deno.mkdir(`${dir}/lib`);
    const ok = await run(["check-config", path]);
    assertEquals(ok.code, 0, ok.stderr);
    assertEquals([...Deno.readDirSync(`${dir}/log`)], []);
    assertEquals([...Deno.readDirSync(`${dir}/lib`)], []);
    // Not writable (read-only directory; root may write anyway, so only when it cannot).
    await Deno.chmod(`${dir}/log`, 0o555);
    let writable = true;
    try {
      Deno.writeTextFileSync(`${dir}/log/probe`, "");
      Deno.removeSync(`${dir}/log/probe`);
    } catch {
      writable = false;
    }
    if (!writable) {
      const ro = await run(["check-config", path]);
      assertEquals(ro.code, 2, ro.stderr);
      assert(ro.stderr.includes(`${dir}/log is not writable`), ro.stderr);
    }
    await Deno.chmod(`${dir}/log`, 0o755);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("start: a network output whose default dead-letter file cannot be written exits 1 before connecting", async () => {
  if (exists("/var/lib/vmq-sidecar")) return; // the default directory exists on this host
  // Not through the test launchers, which give network outputs a dead_letter of their own.
  const dir = await sidecarTempDir();
  const empty = `${dir}/empty.toml`;
  await Deno.writeTextFile(empty, "");
  for (const sub of [[], ["check-config", empty]]) {
    const out = await new Deno.Command(Deno.execPath(), {
      args: [...RUN_MAIN, ...sub, "--listen", "127.0.0.1:0", "--out", "nats://127.0.0.1:1"],
      cwd: ROOT,
      stdin: "null",
      env: { NO_COLOR: "1" },
      signal: AbortSignal.timeout(30_000),
    }).output();
    const stderr = new TextDecoder().decode(out.stderr);
    assertEquals(out.code, sub.length ? 2 : 1, stderr);
    assertEquals(
      stderr.split("\n")[0],
      `vmq-sidecar: --out "nats://127.0.0.1:1": cannot write the dead-letter file /var/lib/vmq-sidecar/dead-letter.ndjson: directory /var/lib/vmq-sidecar does not exist: create it (mkdir -p /var/lib/vmq-sidecar; the systemd unit's StateDirectory= and LogsDirectory= create /var/lib/vmq-sidecar and /var/log/vmq-sidecar); or set dead_letter=PATH to a file this process may write (e.g. under /tmp/vmq-sidecar)`,
    );
  }
  await Deno.remove(dir, { recursive: true });
});

Deno.test("check-config: flags override the file, defaults flow into outputs", async () => {
  const path = await writeConfig(`listen = "127.0.0.1:9000"
hooks = ["on_publish"]
queue_bytes = "1MiB"
rotate_bytes = "10MiB"

[[outputs]]
url = "file:/tmp/vmq-sidecar/a.jsonl"

[[outputs]]
url = "file:/tmp/vmq-sidecar/b.jsonl?keep=2"
hooks = "all"
queue_bytes = 131072
`);
  const r = await run([
    "check-config",
    path,
    "--listen",
    "127.0.0.1:9001",
    "--hooks",
    "on_deliver,on_publish",
    "--admin",
    "off",
  ]);
  assertEquals(r.code, 0, r.stderr);
  const doc = JSON.parse(r.stdout);
  assertEquals(doc.listen, "127.0.0.1:9001");
  assertEquals(doc.admin, "off");
  assertEquals(doc.hooks, ["on_deliver", "on_publish"]);
  assertEquals(doc.outputs[0].hooks, ["on_deliver", "on_publish"]);
  assertEquals(doc.outputs[0].queue_bytes, 1048576);
  assertEquals(doc.outputs[0].rotate_bytes, 10485760);
  assertEquals(doc.outputs[1].hooks, "all");
  assertEquals(doc.outputs[1].queue_bytes, 131072);
  assertEquals(doc.outputs[1].keep, 2);
  // --out replaces the file's outputs.
  const o = await run(["check-config", path, "--out", "stdout"]);
  assertEquals(o.code, 0, o.stderr);
  assertEquals(JSON.parse(o.stdout).outputs.map((x: { url: string }) => x.url), ["stdout"]);
});

// [file text, line, message start] — the message names the file, the line and the key.
const BAD: [string, number, RegExp][] = [
  [
    'listen = "127.0.0.1:8890"\nadmin = 8891\n',
    2,
    /^admin: expected HOST:PORT or "off", got 8891$/,
  ],
  ['listen = "localhost"\n', 1, /^listen: expected host:port/],
  ['\n\nlisten = "127.0.0.1:1\n', 3, /^syntax: invalid TOML: /],
  ["listn = 1\n", 1, /^listn: unknown key; accepted: listen, admin, hooks/],
  ['max_connections = "many"\n', 1, /^max_connections: expected a whole number from 1/],
  ["max_frame_bytes = 0\n", 1, /^max_frame_bytes: expected a size of at least 1 bytes/],
  ['log_level = "loud"\n', 1, /^log_level: expected one of debug, info, warning, error, fatal/],
  [
    'hooks = [\n  "on_publish",\n  "on_publsh",\n]\n',
    1,
    /^hooks: unknown hook "on_publsh"; hooks are: on_register,/,
  ],
  [
    '# a comment\n[[outputs]]\nurl = "stdout"\n\n[[outputs]]\nurl = "ftp://x"\n',
    6,
    /^outputs\[2\]\.url: unknown output "ftp:\/\/x"; expected stdout, file:PATH/,
  ],
  [
    '[[outputs]]\nurl = "stdout"\n[[outputs]]\nurl = "file:/tmp/vmq-sidecar/x"\nkeep = 3\nrotate = "1MiB"\n',
    6,
    /^outputs\[2\]\.rotate: unknown option for file output; accepted: rotate_bytes, keep/,
  ],
  [
    '[[outputs]]\nurl = "file:/tmp/vmq-sidecar/x?keep=many"\n',
    1,
    /^outputs\[1\]\.keep: expected a whole number from 0 to 1000, got "many"$/,
  ],
  [
    '[[outputs]]\nurl = "stdout"\nhooks = ["on_publish"]\ntopics = """\na/b#"""\n',
    4,
    /^outputs\[1\]\.topics: invalid topic filter "a\/b#"/,
  ],
  [
    '[[outputs]]\nurl = "stdout"\n\n[[outputs]]\nformat = "json"\n',
    4,
    /^outputs\[2\]: missing url/,
  ],
  [
    '[[outputs]]\nurl = "stdout"\non_full = "maybe"\n',
    3,
    /^outputs\[1\]\.on_full: expected one of block, drop, got "maybe"$/,
  ],
  [
    '[[outputs]]\nurl = "stdout"\nenabled = "yes"\n',
    3,
    /^outputs\[1\]\.enabled: expected true or false, got "yes"$/,
  ],
  [
    '[[outputs]]\nurl = "stdout"\nenabled = false\n',
    1,
    /^outputs: every output has enabled = false; enable at least one$/,
  ],
  [
    'outputs = "stdout"\n',
    1,
    /^outputs: expected \[\[outputs\]\] tables/,
  ],
  [
    '[[outputs]]\nurl_env = "VMQ_SIDECAR_TEST_UNSET_URL"\n',
    2,
    /^outputs\[1\]\.url_env: environment variable VMQ_SIDECAR_TEST_UNSET_URL is not set$/,
  ],
  [
    '[[outputs]]\nurl_env = "HOME"\n',
    2,
    /^outputs\[1\]\.url_env: this binary may read only environment variables named VMQ_SIDECAR_\*; rename HOME$/,
  ],
  [
    '[[outputs]]\nurl = "stdout"\n[outputs.extra]\nflush = 5\n',
    4,
    /^outputs\[1\]\.extra\.flush: unknown option for stdout output/,
  ],
];

for (const [text, line, message] of BAD) {
  Deno.test(`config error at line ${line}: ${message.source.slice(1, 40)}`, async () => {
    const path = await writeConfig(text);
    for (const args of [["check-config", path], ["--config", path]]) {
      const r = await run(args);
      assertEquals(r.code, 2, r.stderr);
      const lines = r.stderr.trimEnd().split("\n");
      assertEquals(lines.length, 1, r.stderr);
      const prefix = `vmq-sidecar: ${path}:${line}: `;
      assert(lines[0].startsWith(prefix), `${lines[0]}\nexpected prefix ${prefix}`);
      assert(message.test(lines[0].slice(prefix.length)), lines[0]);
    }
  });
}

Deno.test("check-config: queue_bytes defaults by kind (16 MiB local, 64 MiB network) unless set", async () => {
  const path = await writeConfig(`
[[outputs]]
url = "file:/tmp/vmq-sidecar/q.jsonl"

[[outputs]]
url = "stdout"

[[outputs]]
url = "nats://127.0.0.1:4222"

[[outputs]]
url = "http://127.0.0.1:9/hook"
queue_bytes = "2MiB"
`);
  const sizes = async (...flags: string[]) => {
    const r = await run(["check-config", path, "--file-only", ...flags]);
    assertEquals(r.code, 0, r.stderr);
    return JSON.parse(r.stdout).outputs.map((o: { queue_bytes: number }) => o.queue_bytes);
  };
  const MiB = 1024 * 1024;
  assertEquals(await sizes(), [16 * MiB, 16 * MiB, 64 * MiB, 2 * MiB]);
  assertEquals(await sizes("--queue-bytes", "1MiB"), [MiB, MiB, MiB, 2 * MiB]);
  // SI units are powers of 1000, IEC units powers of 1024.
  assertEquals(await sizes("--queue-bytes", "10MB"), [10_000_000, 10_000_000, 10_000_000, 2 * MiB]);
  assertEquals(await sizes("--queue-bytes", "512kB"), [512_000, 512_000, 512_000, 2 * MiB]);
  assertEquals(await sizes("--queue-bytes", "1GB"), [1e9, 1e9, 1e9, 2 * MiB]);
});

Deno.test("--config: a missing file is a config error naming it", async () => {
  const r = await runSidecar(["--config", "/tmp/vmq-sidecar/does-not-exist.toml"]);
  assertEquals(r.code, 2, r.stderr);
  assertEquals(
    r.stderr.trimEnd(),
    "vmq-sidecar: --config: cannot read /tmp/vmq-sidecar/does-not-exist.toml: no such file",
  );
  const denied = await runSidecar(["check-config", "/var/tmp/vmq-sidecar.toml"]);
  assertEquals(denied.code, 2, denied.stderr);
  assert(
    denied.stderr.includes("may read config files only under /etc/vmq-sidecar"),
    denied.stderr,
  );
});

Deno.test("running with --config: outputs with their own hooks, flags over file, url from the environment", async () => {
  const dir = await sidecarTempDir();
  const taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const path = await writeConfig(`# the file's listen address is taken: --listen must win
listen = "127.0.0.1:${taken.addr.port}"
admin = "off"
hooks = ["on_register"]

[[outputs]]
url = "file:${dir}/default-hooks.jsonl"

[[outputs]]
url_env = "VMQ_SIDECAR_TEST_OUT"
hooks = ["on_publish", "on_deliver"]
payload = "omit"

[[outputs]]
url = "file:${dir}/disabled.jsonl"
enabled = false
`);
  try {
    const s = await spawnSidecar(
      ["--config", path, "--listen", "127.0.0.1:0", "--hooks", "on_register,on_client_gone"],
      { env: { VMQ_SIDECAR_TEST_OUT: `file:${dir}/publish.jsonl` }, admin: false },
    );
    const stream = fixtureStream();
    await sendChunks(s.port, [stream.bytes]);
    const byHook = stream.byHook;
    const a = `${dir}/default-hooks.jsonl`, b = `${dir}/publish.jsonl`;
    await waitFor(
      () =>
        fileLines(a).length === byHook.on_register + byHook.on_client_gone &&
        fileLines(b).length === byHook.on_publish + byHook.on_deliver,
      "both outputs written",
    );
    s.kill("SIGTERM");
    const { code, stderr } = await s.wait();
    assertEquals(code, 0, stderr);
    const hooksOf = (p: string) => new Set(fileLines(p).map((l) => JSON.parse(l).hook));
    assertEquals(hooksOf(a), new Set(["on_register", "on_client_gone"]));
    assertEquals(hooksOf(b), new Set(["on_publish", "on_deliver"]));
    assert(fileLines(b).every((l) => !("payload" in JSON.parse(l))), "payload = omit");
    assertEquals(fileLines(`${dir}/disabled.jsonl`).length, 0);
    assert(stderr.includes(`outputs: file:${a}, file:${b}`), stderr);
  } finally {
    taken.close();
  }
});

Deno.test("check-config masks secrets: environment values by their *_env name, others as ***", async () => {
  const path = await writeConfig(`[[outputs]]
url_env = "VMQ_SIDECAR_TEST_OUT"
`);
  const r = await run(["check-config", path], {
    VMQ_SIDECAR_TEST_OUT: "file:/tmp/vmq-sidecar/s.jsonl",
  });
  assertEquals(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout).outputs[0];
  assertEquals(out.url_env, "VMQ_SIDECAR_TEST_OUT");
  assert(!r.stdout.includes("/tmp/vmq-sidecar/s.jsonl"), r.stdout);

  // Network outputs: URL passwords, secret options and headers masked; env references kept.
  const net = await writeConfig(`[[outputs]]
url = "nats://svc:n4ts-pw@127.0.0.1:4222"
password_env = "VMQ_SIDECAR_TEST_PW"
subject = "vmq.{hook}"

[[outputs]]
url = "https://collector.example.com/x"
header.X-Tenant = "acme"
header.Authorization = "Bearer s3cr3t-token"
header_env.X-Api-Key = "VMQ_SIDECAR_TEST_KEY"

[[outputs]]
url = "redis://127.0.0.1:6379/0?password_env=VMQ_SIDECAR_TEST_PW"
`);
  const nr = await run(["check-config", net, "--file-only"], {
    VMQ_SIDECAR_TEST_PW: "env-pw-value",
    VMQ_SIDECAR_TEST_KEY: "env-key-value",
  });
  assertEquals(nr.code, 0, nr.stderr);
  for (const secret of ["n4ts-pw", "s3cr3t-token", "env-pw-value", "env-key-value"]) {
    assert(!nr.stdout.includes(secret), `${secret} printed:\n${nr.stdout}`);
  }
  const [nats, http, redis] = JSON.parse(nr.stdout).outputs;
  assertEquals(nats.url, "nats://svc:***@127.0.0.1:4222");
  assertEquals(nats.password_env, "VMQ_SIDECAR_TEST_PW");
  assertEquals(nats.subject, "vmq.{hook}");
  assertEquals(http["header.Authorization"], "***");
  // Every header value is masked: which header carries a secret is not guessed from its name.
  assertEquals(http["header.X-Tenant"], "***");
  assertEquals(http["header_env.X-Api-Key"], "VMQ_SIDECAR_TEST_KEY");
  assertEquals(redis.password_env, "VMQ_SIDECAR_TEST_PW");

  assertEquals(maskUrl("nats://user:s3cret@host:4222"), "nats://user:***@host:4222");
  assertEquals(maskUrl("redis://:s3cret@host:6379/0"), "redis://:***@host:6379/0");
  assertEquals(maskUrl("https://token@host/x"), "https://***@host/x");
  assertEquals(maskUrl("https://host/x?a=b@c"), "https://host/x?a=b@c");
  // Masked by rule, whatever the names: a secret option from the environment by its
  // reference, the URL's password, every header value; flags and files alike (unit level).
  const env = (n: string) => ({ VMQ_SIDECAR_NATS_PW: "pw-from-env" } as Record<string, string>)[n];
  const eff = resolveConfig(
    {
      out: [
        "nats://svc:url-pw@127.0.0.1:4222?subject=events&password_env=VMQ_SIDECAR_NATS_PW",
        "https://h:url-pw@127.0.0.1:9/x?header.X-Custom=hdr-secret&query.tenant=acme",
      ],
    },
    undefined,
    env,
  );
  const doc = effectiveDocument(eff) as { outputs: Record<string, unknown>[] };
  assertEquals(doc.outputs[0].url, "nats://svc:***@127.0.0.1:4222");
  assertEquals(doc.outputs[0].password_env, "VMQ_SIDECAR_NATS_PW");
  assertEquals(doc.outputs[0].subject, "events");
  assert(!("password" in doc.outputs[0]));
  assertEquals(doc.outputs[1]["header.X-Custom"], "***");
  assertEquals(doc.outputs[1]["query.tenant"], "acme");
  for (const secret of ["url-pw", "pw-from-env", "hdr-secret"]) {
    assert(!JSON.stringify(doc).includes(secret), `${secret} in ${JSON.stringify(doc)}`);
  }
});

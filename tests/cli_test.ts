// The command line: exit codes and messages of the real main.ts with the product permissions.
import { assert, assertEquals } from "./_assert.ts";
import { ROOT, RUN_MAIN, runSidecar, startSidecar } from "./_sidecar.ts";

Deno.test("--help and --version exit 0", async () => {
  const help = await runSidecar(["--help"]);
  assertEquals(help.code, 0);
  assert(help.stdout.includes("--listen HOST:PORT"), help.stdout);
  // Every build has every output kind.
  assert(!help.stdout.includes("where this build has them"), help.stdout);
  const version = await runSidecar(["--version"]);
  assertEquals(version.code, 0);
  assert(/^vmq-sidecar \d+\.\d+\.\d+\n$/.test(version.stdout), version.stdout);
});

const BAD: [string[], RegExp][] = [
  [["--nope"], /^vmq-sidecar: --nope: .*see --help$/],
  [["--listen", "localhost"], /^vmq-sidecar: --listen: expected host:port/],
  [["--listen", "127.0.0.1:70000"], /^vmq-sidecar: --listen: expected host:port/],
  [
    ["--hooks", "on_publish,on_foo"],
    /^vmq-sidecar: --hooks: unknown hook "on_foo"; hooks are: on_register,/,
  ],
  [["--payload", "hex"], /^vmq-sidecar: --payload: expected one of base64, utf8, omit, got "hex"$/],
  [["--format", "xml"], /^vmq-sidecar: --format: expected one of json, protobuf, got "xml"$/],
  [
    ["--max-frame-bytes", "0"],
    /^vmq-sidecar: --max-frame-bytes: expected a size of at least 1 bytes/,
  ],
  [["--max-frame-bytes", "12parsecs"], /^vmq-sidecar: --max-frame-bytes: expected a size/],
  [["--max-connections", "0"], /^vmq-sidecar: --max-connections: expected a whole number from 1/],
  // A value that starts with "-" is the flag's value, validated like any other.
  [
    ["--max-connections", "-1"],
    /^vmq-sidecar: --max-connections: expected a whole number from 1 to 1000000, got "-1"$/,
  ],
  [["--shutdown-grace", "-5"], /^vmq-sidecar: --shutdown-grace: expected a whole number from 0/],
  [["--listen"], /^vmq-sidecar: --listen: .*argument missing.*see --help$/],
  // A bare M/k/G could mean either: refused, with both spellings offered.
  [
    ["--queue-bytes", "10M"],
    /^vmq-sidecar: --queue-bytes: "10M" is ambiguous: write 10MiB \(10485760 bytes\) or 10MB \(10000000 bytes\)$/,
  ],
  [
    ["--log-level", "loud"],
    /^vmq-sidecar: --log-level: expected one of debug, info, warning, error, fatal/,
  ],
  [
    ["--out", "ftp://x"],
    /^vmq-sidecar: --out "ftp:\/\/x": unknown output "ftp:\/\/x"; expected stdout, file:PATH/,
  ],
  [
    ["--out", "file:/tmp/vmq-sidecar/x?rotate=1"],
    /^vmq-sidecar: --out ".*" rotate: unknown option for file output; accepted: rotate_bytes/,
  ],
  [
    ["--out", "stdout?on_full=maybe"],
    /^vmq-sidecar: --out "stdout\?on_full=maybe" on_full: expected one of block, drop/,
  ],
  [["--out", "stdout?topics=a/b#"], /topics: invalid topic filter "a\/b#"/],
  [["positional"], /^vmq-sidecar: arguments: Unexpected argument 'positional'/],
];

for (const [args, message] of BAD) {
  Deno.test(`bad flag ${args.join(" ")} → exit 2 with one line naming it`, async () => {
    const r = await runSidecar(args);
    assertEquals(r.code, 2, r.stderr);
    const lines = r.stderr.trimEnd().split("\n");
    assertEquals(lines.length, 1, r.stderr);
    assert(message.test(lines[0]), lines[0]);
  });
}

Deno.test("address in use → exit 1 with what to do", async () => {
  const taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    const r = await runSidecar(["--listen", `127.0.0.1:${taken.addr.port}`]);
    assertEquals(r.code, 1, r.stderr);
    assert(
      r.stderr.includes(`cannot listen on 127.0.0.1:${taken.addr.port}: address already in use`),
      r.stderr,
    );
  } finally {
    taken.close();
  }
});

Deno.test("listening where the binary has no net permission → exit 1 naming --allow-net", async () => {
  const r = await runSidecar(["--listen", "0.0.0.0:18999", "--allow-peers", "10.0.0.0/8"]);
  assertEquals(r.code, 1, r.stderr);
  assert(r.stderr.includes("cannot listen on 0.0.0.0:18999"), r.stderr);
  assert(r.stderr.includes("lacks --allow-net for 0.0.0.0:18999"), r.stderr);
  assert(r.stderr.includes("permissions.default.net in deno.json"), r.stderr);
});

Deno.test("a file output outside the permitted paths → exit 1 naming --allow-write", async () => {
  const r = await runSidecar(["--out", "file:/var/tmp/vmq-sidecar-denied.jsonl"]);
  assertEquals(r.code, 1, r.stderr);
  assert(r.stderr.includes("cannot open output file /var/tmp/vmq-sidecar-denied.jsonl"), r.stderr);
  assert(r.stderr.includes("lacks --allow-write for /var/tmp/vmq-sidecar-denied.jsonl"), r.stderr);
});

Deno.test("defaults: listens on 127.0.0.1:8890 and writes to stdout (skipped when 8890 is taken)", async () => {
  let free = true;
  try {
    Deno.listen({ hostname: "127.0.0.1", port: 8890 }).close();
  } catch {
    free = false;
  }
  if (!free) return;
  const sidecar = await startSidecar([]);
  assertEquals(sidecar.port, 8890);
  sidecar.kill("SIGINT");
  const { code, stderr } = await sidecar.wait();
  assertEquals(code, 0, stderr);
  assert(/outputs: stdout/.test(stderr), stderr);
  assert(/stopped: 0 events/.test(stderr), stderr);
});

Deno.test("an explicit --admin address in use: exit 1 before the plugin port ever accepts a connection", async () => {
  const taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const pluginPort = probe.addr.port;
  probe.close();
  try {
    const proc = new Deno.Command(Deno.execPath(), {
      args: [
        ...RUN_MAIN,
        "--listen",
        `127.0.0.1:${pluginPort}`,
        "--admin",
        `127.0.0.1:${taken.addr.port}`,
      ],
      cwd: ROOT,
      stdin: "null",
      stdout: "null",
      stderr: "piped",
      env: { NO_COLOR: "1" },
      signal: AbortSignal.timeout(30_000),
    }).spawn();
    let exited = false;
    const out = proc.output().then((o) => (exited = true, o));
    // Dial the plugin port until the process is gone: no connection may ever succeed.
    let accepted = 0;
    while (!exited) {
      try {
        (await Deno.connect({ hostname: "127.0.0.1", port: pluginPort })).close();
        accepted++;
      } catch { /* refused: not listening */ }
      await new Promise((r) => setTimeout(r, 2));
    }
    const { code, stderr } = await out;
    const text = new TextDecoder().decode(stderr);
    assertEquals(accepted, 0, `the plugin port accepted ${accepted} connections`);
    assertEquals(code, 1, text);
    assert(
      text.includes(
        `cannot listen for admin requests on 127.0.0.1:${taken.addr.port}: address already in use`,
      ),
      text,
    );
    assert(!text.includes("listening on"), text);
  } finally {
    taken.close();
  }
});

// End-to-end conformance of the aarch64 build: main.ts under the official aarch64 Deno (run by
// qemu-user) and under this x86_64 Deno get every vector frame of tests/fixtures/vectors over
// TCP; their outputs (JSON on stdout, protobuf frames and UTF-8 JSON in files) must be
// byte-identical. Not picked up by `deno task test` (no _test suffix): run by
// scripts/test-aarch64.sh (`deno task test:aarch64`), which sets VMQ_SIDECAR_AARCH64_DENO.
import { assert, assertEquals } from "./_assert.ts";
import { fixtureStream } from "./_ops.ts";
import { listeningPort, ROOT, RUN_MAIN, sendChunks, sidecarTempDir } from "./_sidecar.ts";

const AARCH64_DENO = Deno.env.get("VMQ_SIDECAR_AARCH64_DENO");
/** Emulated, the aarch64 Deno needs about a minute to start on a loaded machine. */
const START_TIMEOUT_MS = 10 * 60_000;

/** The outputs of one run, by name. */
type Outputs = Record<string, Uint8Array>;

/** Runs main.ts with `deno`, sends `bytes` (`events` events) on one connection, stops it; its outputs. */
async function relay(
  deno: string,
  bytes: Uint8Array,
  events: number,
  dir: string,
): Promise<Outputs> {
  const files = {
    "protobuf file": `${dir}/events.pb`,
    "utf8 JSON file": `${dir}/events.jsonl`,
  };
  const proc = new Deno.Command(deno, {
    args: [
      ...RUN_MAIN,
      "--listen",
      "127.0.0.1:0",
      "--admin",
      "off",
      "--out",
      "stdout",
      "--out",
      `file:${files["protobuf file"]}?format=protobuf`,
      "--out",
      `file:${files["utf8 JSON file"]}?payload=utf8`,
    ],
    cwd: ROOT,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
  let stderr = "";
  const stderrDone = (async () => {
    const dec = new TextDecoder();
    for await (const c of proc.stderr) stderr += dec.decode(c, { stream: true });
  })();
  const stdout = new Response(proc.stdout).bytes();
  let exited = false;
  const status = proc.status.then((s) => (exited = true, s));
  const until = Date.now() + START_TIMEOUT_MS;
  while (listeningPort(stderr) === 0 && !exited && Date.now() < until) {
    await new Promise((r) => setTimeout(r, 100));
  }
  const port = listeningPort(stderr);
  if (port === 0) {
    if (!exited) proc.kill("SIGKILL");
    await status;
    await stderrDone;
    throw new Error(`${deno}: main.ts did not start:\n${stderr}`);
  }
  await sendChunks(port, [bytes]);
  // This test is about the bytes each CPU writes, not about a stop racing the accept of a
  // connection: stop once the sidecar has written every event (under emulation a stop right
  // after the connection may find it still in the listen backlog).
  const lines = (b: Uint8Array) => b.reduce((n, x) => n + (x === 0x0a ? 1 : 0), 0);
  for (let i = 0; i < 1200 && !exited; i++) { // at most 2 minutes
    const have = lines(await Deno.readFile(files["utf8 JSON file"]).catch(() => new Uint8Array()));
    if (have >= events) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  proc.kill("SIGTERM"); // reads what the connection sent, flushes every output, exits 0
  const [s, out] = await Promise.all([status, stdout, stderrDone]);
  assertEquals(s.code, 0, `${deno}:\n${stderr}`);
  assert(stderr.includes("unflushed outputs: none"), stderr);
  const outputs: Outputs = { "stdout JSON": out };
  for (const [name, path] of Object.entries(files)) outputs[name] = await Deno.readFile(path);
  return outputs;
}

Deno.test("aarch64 Deno relays every vector frame byte-identically to x86_64", async () => {
  assert(AARCH64_DENO, "VMQ_SIDECAR_AARCH64_DENO is not set: run deno task test:aarch64");
  const arch = await new Deno.Command(AARCH64_DENO, {
    args: ["eval", "console.log(Deno.build.arch)"],
  })
    .output();
  assertEquals(new TextDecoder().decode(arch.stdout).trim(), "aarch64", "not an aarch64 Deno");
  assertEquals(Deno.build.arch, "x86_64");
  const stream = fixtureStream();
  const dir = await sidecarTempDir();
  try {
    await Deno.mkdir(`${dir}/x86_64`);
    await Deno.mkdir(`${dir}/aarch64`);
    const [x86, arm] = await Promise.all([
      relay(Deno.execPath(), stream.bytes, stream.events, `${dir}/x86_64`),
      relay(AARCH64_DENO, stream.bytes, stream.events, `${dir}/aarch64`),
    ]);
    const lines = new TextDecoder().decode(x86["stdout JSON"]).split("\n").filter(Boolean);
    assertEquals(lines.length, stream.events, "every event on stdout");
    for (const name of Object.keys(x86)) {
      assert(x86[name].length > 0, `${name}: empty`);
      assertEquals(arm[name].length, x86[name].length, `${name}: length`);
      const at = x86[name].findIndex((b, i) => b !== arm[name][i]);
      assertEquals(at, -1, `${name}: first differing byte at ${at}`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

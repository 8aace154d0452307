// `vmq-sidecar send` end to end: the real main.ts plays the plugin against a real sidecar
// (both with the start task's permission set); what the sidecar writes is what the vectors say.
import { assert, assertEquals } from "./_assert.ts";
import { jsonLines, ROOT, RUN_MAIN, runSidecar, sidecarTempDir, startSidecar } from "./_sidecar.ts";
import { concat, fixtureVectors, toOurJson } from "./_vectors.ts";
import { vectorFrames } from "../lib/internal.ts";

/** One JSON line, user_properties in key order (their order in the output is the wire's). */
// deno-lint-ignore no-explicit-any
const canon = (v: any) =>
  JSON.stringify(
    v?.user_properties
      ? { ...v, user_properties: Object.fromEntries(Object.entries(v.user_properties).sort()) }
      : v,
  );

async function send(args: string[], task = false) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: task ? ["task", "send", ...args] : [...RUN_MAIN, "send", ...args],
    cwd: ROOT,
    stdin: "null",
    env: { NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1" },
    signal: AbortSignal.timeout(30_000),
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

Deno.test("the frames built into send are the repository's vectors", () => {
  assertEquals(vectorFrames(), concat(fixtureVectors().map((v) => v.wire)));
});

Deno.test("deno task send: the sample events arrive as JSON lines, in order, exactly as the vectors say", async () => {
  const sidecar = await startSidecar(["--listen", "127.0.0.1:0", "--admin", "off"]);
  const r = await send(["--to", `127.0.0.1:${sidecar.port}`], true);
  sidecar.kill("SIGTERM");
  const { code, stdout, stderr } = await sidecar.wait();
  assertEquals(r.code, 0, r.stderr);
  assert(
    r.stderr.includes(`vmq-sidecar: sent 150 events (28358 bytes) to 127.0.0.1:${sidecar.port}`),
    r.stderr,
  );
  assertEquals(code, 0, stderr);
  const want = fixtureVectors().filter((v) => v.expected.hook !== null).map((v) =>
    canon(toOurJson(v.expected))
  );
  assertEquals(jsonLines(stdout).map(canon), want);
  assert(/stopped: 149 events .*empty frames 1;/.test(stderr), stderr);
});

Deno.test("send FILE --conns --rate --events: every event over several connections", async () => {
  const dir = await sidecarTempDir();
  try {
    const file = `${dir}/frames.bin`;
    await Deno.writeFile(file, vectorFrames());
    const sidecar = await startSidecar(["--listen", "127.0.0.1:0", "--admin", "off"]);
    const r = await send([
      file,
      "--to",
      `127.0.0.1:${sidecar.port}`,
      "--conns",
      "3",
      "--rate",
      "2000",
      "--events",
      "300",
    ]);
    sidecar.kill("SIGTERM");
    const { code, stdout, stderr } = await sidecar.wait();
    assertEquals(r.code, 0, r.stderr);
    assert(
      r.stderr.includes("sent 300 events") && r.stderr.includes("over 3 connections"),
      r.stderr,
    );
    assertEquals(code, 0, stderr);
    // Two passes over the 150 frames: each event twice (the empty frame is counted, not written).
    const want = fixtureVectors().filter((v) => v.expected.hook !== null).flatMap((v) => {
      const line = canon(toOurJson(v.expected));
      return [line, line];
    }).sort();
    assertEquals(jsonLines(stdout).map(canon).sort(), want);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("send: nothing listening → exit 1 saying so; bad flags → exit 2 naming the flag", async () => {
  const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = probe.addr.port;
  probe.close();
  const refused = await send(["--to", `127.0.0.1:${port}`]);
  assertEquals(refused.code, 1, refused.stderr);
  assertEquals(
    refused.stderr.trimEnd(),
    `vmq-sidecar: cannot send to 127.0.0.1:${port}: connection refused: is the sidecar running there? (deno task start)`,
  );
  for (
    const [args, message] of [
      [["--rate", "-1"], /^vmq-sidecar: --rate: expected a whole number from 0/],
      [["--conns", "0"], /^vmq-sidecar: --conns: expected a whole number from 1/],
      [["--to", "nowhere"], /^vmq-sidecar: --to: expected host:port/],
      [["--vectors", "x.bin"], /^vmq-sidecar: send: give --vectors or one FILE, not both/],
    ] as const
  ) {
    const r = await send([...args]);
    assertEquals(r.code, 2, r.stderr);
    assert(message.test(r.stderr), r.stderr);
  }
  const help = await runSidecar(["send", "--help"]);
  assertEquals(help.code, 0);
  assert(help.stdout.includes("Usage: vmq-sidecar send"), help.stdout);
});

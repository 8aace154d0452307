// lib/app/preflight.ts: the start-time checks of the files outputs write.
import { assert, assertEquals } from "./_assert.ts";
import { type OutputSpec, preflight } from "../lib/internal.ts";
import { RUN_MAIN, sidecarTempDir } from "./_sidecar.ts";

const ROOT = new URL("..", import.meta.url);

Deno.test("preflight: a FIFO as a file output does not hang start (not a regular file: skipped)", async () => {
  const dir = await sidecarTempDir();
  const fifo = `${dir}/events.fifo`;
  const mk = await new Deno.Command("mkfifo", { args: [fifo] }).output();
  assertEquals(mk.code, 0, "mkfifo");
  const config = `${dir}/vmq-sidecar.toml`;
  await Deno.writeTextFile(config, `[[outputs]]\nurl = "file:${fifo}"\n`);
  const t0 = performance.now();
  const out = await new Deno.Command(Deno.execPath(), {
    args: [...RUN_MAIN, "check-config", config],
    cwd: ROOT,
    stdin: "null",
    env: { NO_COLOR: "1" },
    signal: AbortSignal.timeout(15_000), // blocked opening the FIFO: killed
  }).output();
  const stderr = new TextDecoder().decode(out.stderr);
  assert(
    out.signal === null,
    `check-config hung ${Math.round(performance.now() - t0)} ms on a FIFO`,
  );
  assertEquals(out.code, 0, stderr);
});

Deno.test("preflight: a relative path's directory is the working directory", async () => {
  const dir = await sidecarTempDir();
  const gone = `${dir}/gone`;
  await Deno.mkdir(gone);
  const cwd = Deno.cwd();
  Deno.chdir(gone);
  try {
    await Deno.remove(gone); // the working directory no longer exists: creating the file fails
    const spec = { kind: "file", target: "events.jsonl", options: {} } as unknown as OutputSpec;
    const problems = preflight([{ spec, source: "outputs[0]" }]);
    assertEquals(problems.length, 1);
    assert(problems[0].message.includes("directory . does not exist"), problems[0].message);
  } finally {
    Deno.chdir(cwd);
  }
});

// The process guard (lib/app/_process_guard.ts) in a real subprocess: an uncaught error and an
// unhandled rejection are logged and counted, and the process keeps running.
import { assert, assertEquals } from "./_assert.ts";

Deno.test("process guard: an uncaught error and an unhandled rejection are logged, counted, survived", async () => {
  const guard = new URL("../lib/app/_process_guard.ts", import.meta.url).href;
  const log = new URL("../lib/app/log.ts", import.meta.url).href;
  const dir = await Deno.makeTempDir();
  const script = `${dir}/guarded.ts`;
  await Deno.writeTextFile(
    script,
    `import { installProcessGuard, unhandledErrors } from "${guard}";
import { configureLogging } from "${log}";
configureLogging("info");
installProcessGuard();
setTimeout(() => { throw new Error("boom-from-a-callback"); }, 0);
Promise.reject(new Error("nobody-awaits-this"));
await new Promise((r) => setTimeout(r, 200));
console.log("alive", unhandledErrors());
`,
  );
  try {
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--quiet",
        "--config",
        new URL("../deno.json", import.meta.url).pathname,
        script,
      ],
      env: { NO_COLOR: "1" },
    }).output();
    const stdout = new TextDecoder().decode(out.stdout),
      stderr = new TextDecoder().decode(out.stderr);
    assertEquals(out.code, 0, stderr);
    assertEquals(stdout.trim(), "alive 2", stderr);
    assert(/unhandled error .*boom-from-a-callback/.test(stderr), stderr);
    assert(/unhandled rejection .*nobody-awaits-this/.test(stderr), stderr);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

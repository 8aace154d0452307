// deno.json tasks: the release binaries embed exactly the runtime flags (permission set, V8
// flags) that `deno task start` and every test run main.ts with (tests/_sidecar.ts RUN_MAIN).
import { assertEquals } from "./_assert.ts";
import { ROOT, RUN_MAIN } from "./_sidecar.ts";

const tasks: Record<string, string> =
  JSON.parse(Deno.readTextFileSync(new URL("deno.json", ROOT))).tasks;

/** The flags of a `deno <sub> [flags] main.ts` task, without --target/--output and their values. */
function runtimeFlags(task: string, sub: string): string[] {
  const words = tasks[task].split(" ");
  assertEquals([words[0], words[1], words.at(-1)], ["deno", sub, "main.ts"], task);
  const flags: string[] = [];
  for (let i = 2; i < words.length - 1; i++) {
    if (words[i] === "--target" || words[i] === "--output") i++;
    else flags.push(words[i]);
  }
  return flags;
}

Deno.test("the compile tasks embed the flags the start task and the tests run main.ts with", () => {
  const start = runtimeFlags("start", "run");
  assertEquals(RUN_MAIN, ["run", ...start, "main.ts"]);
  assertEquals(start.includes("-P"), true, "the permission set of deno.json");
  // `--quiet` silences `deno run`'s own notes (the permission-set warning); a compiled binary
  // prints none, so the compile tasks do not carry it.
  assertEquals(start.includes("--quiet"), true, "deno run --quiet");
  // A missing permission fails with the sidecar's message instead of prompting on a terminal.
  assertEquals(start.includes("--no-prompt"), true, "--no-prompt");
  for (const task of ["compile", "compile:aarch64"]) {
    assertEquals(runtimeFlags(task, "compile"), start.filter((f) => f !== "--quiet"), task);
  }
});

Deno.test("deno task start prints no Deno warning (only the task line and the program's output)", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["task", "start", "--version"],
    cwd: ROOT,
    stdin: "null",
    env: { NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1" },
  }).output();
  const stderr = new TextDecoder().decode(out.stderr);
  assertEquals(out.code, 0, stderr);
  assertEquals(new TextDecoder().decode(out.stdout), "vmq-sidecar 0.1.0\n");
  const lines = stderr.split("\n").filter((l) => l.trim() !== "");
  assertEquals(lines.filter((l) => !l.startsWith("Task start ")), [], stderr);
});

Deno.test("the check-config task: the start task's permission set, reading also the clone (.)", () => {
  const config = JSON.parse(Deno.readTextFileSync(new URL("deno.json", ROOT)));
  const words = tasks["check-config"].split(" ");
  assertEquals(words.slice(0, 2), ["deno", "run"]);
  assertEquals(words.slice(-2), ["main.ts", "check-config"]);
  const start = runtimeFlags("start", "run").filter((f) => !f.startsWith("--v8-flags="));
  const read = [...config.permissions.default.read, "."].join(",");
  // --allow-read replaces the set's read list: the set's own list plus the clone.
  assertEquals(words.slice(2, -2), [...start, `--allow-read=${read}`]);
});

Deno.test("the send task runs main.ts send with the start task's permission set", () => {
  const start = runtimeFlags("start", "run").filter((f) => !f.startsWith("--v8-flags="));
  assertEquals(tasks.send, ["deno", "run", ...start, "main.ts", "send"].join(" "));
});

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
  assertEquals(RUN_MAIN, ["run", ...start, "--quiet", "main.ts"]);
  assertEquals(start.includes("-P"), true, "the permission set of deno.json");
  for (const task of ["compile", "compile:aarch64"]) {
    assertEquals(runtimeFlags(task, "compile"), start, task);
  }
});

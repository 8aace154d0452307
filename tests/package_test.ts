// The library as a package (issue 14 phase 2, item 4): `deno publish --dry-run` passes but for
// the licence (the owners must choose one), and a project in a temporary directory outside the
// repository depends on `jsr:@vmq/sidecar` linked to this checkout (deno.json "links": the
// package's own name, exports and import map are used, as from JSR), writes a handler against the
// public exports, and `deno check` and a run with only --allow-net=127.0.0.1 pass.
import { assert, assertEquals } from "./_assert.ts";

const ROOT = new URL("../", import.meta.url);

async function deno(args: string[], cwd: string): Promise<{ code: number; out: string }> {
  const r = await new Deno.Command(Deno.execPath(), {
    args,
    cwd,
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  const dec = new TextDecoder();
  return { code: r.code, out: dec.decode(r.stdout) + dec.decode(r.stderr) };
}

Deno.test("package: deno publish --dry-run finds no problem but the missing licence", async () => {
  const r = await deno(["publish", "--dry-run", "--allow-dirty"], ROOT.pathname);
  if (r.code === 0) return; // a licence was chosen
  const problems = [...r.out.matchAll(/^error\[([a-z-]+)\]/gm)].map((m) => m[1]);
  assertEquals(problems, ["missing-license"], r.out);
  assert(r.out.includes("Found 1 problem"), r.out);
});

const CONFIG = (root: string) =>
  JSON.stringify({
    imports: { "@vmq/sidecar": "jsr:@vmq/sidecar@^0.1.0" },
    links: [root],
  });

const HANDLER = `import { defineHandler, EventTime, type OnPublishEvent } from "@vmq/sidecar";
import { startTestSidecar } from "@vmq/sidecar/testing";

const bytes = new Map<string, number>();
let last: EventTime | undefined;
const meter = defineHandler({
  name: "meter",
  topics: ["devices/#"],
  onPublish(e: OnPublishEvent, ctx) {
    bytes.set(e.client_id, (bytes.get(e.client_id) ?? 0) + e.payload.length);
    if (last && ctx.time.isBefore(last)) throw new Error("out of order");
    last = ctx.time;
  },
});
const t = await startTestSidecar({ handlers: [meter] });
for (let i = 0; i < 20; i++) {
  await t.send({
    hook: "on_publish", timestamp: { seconds: 1700000000n, nanos: i }, username: "u",
    client_id: "car-1", mountpoint: "", qos: 1, topic: i % 2 ? "devices/x" : "other",
    payload: new Uint8Array(i), retain: false, matched_acl: { name: "", pattern: "" },
    session_id: "s",
  });
}
const summary = await t.close();
console.log(JSON.stringify({ bytes: bytes.get("car-1"), given: summary.outputs.meter.given }));
`;

Deno.test("package: a project outside the repository links the package, writes a handler, checks and runs it", async () => {
  const dir = await Deno.makeTempDir({ prefix: "vmq-sidecar-pkg-" });
  try {
    assert(!dir.startsWith(ROOT.pathname), `${dir} is inside the repository`);
    await Deno.writeTextFile(`${dir}/deno.json`, CONFIG(ROOT.pathname));
    await Deno.writeTextFile(`${dir}/handler.ts`, HANDLER);
    const check = await deno(["check", "--quiet", "handler.ts"], dir);
    assertEquals(check.code, 0, `deno check failed:\n${check.out}`);
    const run = await deno(
      ["run", "--quiet", "--no-prompt", "--allow-net=127.0.0.1", "handler.ts"],
      dir,
    );
    assertEquals(run.code, 0, `deno run failed:\n${run.out}`);
    // Odd i from 1 to 19 on devices/x: 1 + 3 + … + 19 = 100 bytes, 10 events.
    assertEquals(JSON.parse(run.out.trim().split("\n").at(-1)!), { bytes: 100, given: 10 });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

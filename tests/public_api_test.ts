// The library as a user outside this repository sees it: a script in a temporary directory (with
// its own empty deno.json, so not this repository's import map) imports lib/mod.ts by file URL,
// decodes a conformance vector with decodeEvent and renders it with eventToJson and
// writeFrameJson; `deno check` and `deno run` on it must both succeed (issue 11, item 2).
import { assert, assertEquals } from "./_assert.ts";

const ROOT = new URL("../", import.meta.url);
const MOD = new URL("lib/mod.ts", ROOT).href;
const VECTOR = new URL("fixtures/vectors/001_on_register_typical", import.meta.url).pathname;

const USER_SCRIPT = `import { ByteBuffer, decodeEvent, eventToJson, writeFrameJson } from "${MOD}";

const file = await Deno.readFile(Deno.args[0]);
const frame = file.subarray(4); // the 4-byte big-endian length prefix
const r = decodeEvent(frame);
if (!r.ok) throw new Error("decode failed: " + r.error.message);
const out = new ByteBuffer(1024);
const written: number = writeFrameJson(out, frame, "base64");
if (written < 0) throw new Error("writeFrameJson failed: " + written);
console.log(JSON.stringify({
  hook: r.event.hook,
  eventJson: eventToJson(r.event),
  frameJson: new TextDecoder().decode(out.bytes()),
}));
`;

async function deno(args: string[], cwd: string): Promise<{ code: number; out: string }> {
  const r = await new Deno.Command(Deno.execPath(), {
    args,
    cwd,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
    signal: AbortSignal.timeout(180_000),
  }).output();
  const out = new TextDecoder().decode(r.stdout);
  const err = new TextDecoder().decode(r.stderr);
  return { code: r.code, out: r.code === 0 ? out : `${out}\n${err}` };
}

Deno.test("public API: a script outside the repository imports lib/mod.ts by path, type-checks and runs", async () => {
  const dir = await Deno.makeTempDir({ prefix: "vmq-sidecar-user-" });
  try {
    assert(!dir.startsWith(ROOT.pathname), `${dir} is inside the repository`);
    await Deno.writeTextFile(`${dir}/deno.json`, "{}\n");
    await Deno.writeTextFile(`${dir}/user.ts`, USER_SCRIPT);

    const check = await deno(["check", "--quiet", "user.ts"], dir);
    assertEquals(check.code, 0, `deno check failed:\n${check.out}`);

    const run = await deno(
      ["run", "--quiet", "--no-prompt", `--allow-read=${VECTOR}.bin`, "user.ts", `${VECTOR}.bin`],
      dir,
    );
    assertEquals(run.code, 0, `deno run failed:\n${run.out}`);
    const got = JSON.parse(run.out);
    const expected = JSON.parse(await Deno.readTextFile(`${VECTOR}.json`));
    assertEquals(got.hook, "on_register");
    const eventJson = JSON.parse(got.eventJson);
    assertEquals(eventJson.client_id, expected.event.client_id);
    assertEquals(eventJson.session_id, expected.event.session_id);
    assertEquals(JSON.parse(got.frameJson), eventJson);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

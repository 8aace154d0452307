// The library as a user outside this repository sees it: a script in a temporary directory (with
// its own empty deno.json, so not this repository's import map) imports lib/mod.ts by file URL,
// decodes a conformance vector with decodeEvent and renders it with eventToJson and
// writeFrameJson; `deno check` and `deno run` on it must both succeed (issue 11, item 2). A second
// script starts a whole Sidecar from code with its admin endpoints, registers its own metric,
// relays a frame sent over TCP and stops, with only the permissions it needs (issue 11, item 6).
import { assert, assertEquals } from "./_assert.ts";

const ROOT = new URL("../", import.meta.url);
const MOD = new URL("lib/mod.ts", ROOT).href;
const VECTOR = new URL("fixtures/vectors/001_on_register_typical", import.meta.url).pathname;

const USER_SCRIPT = `import {
  ByteBuffer,
  decodeEvent,
  eventToJson,
  type FrameJsonResult,
  writeFrameJson,
} from "${MOD}";

const file = await Deno.readFile(Deno.args[0]);
const frame = file.subarray(4); // the 4-byte big-endian length prefix
const r = decodeEvent(frame);
if (!r.ok) throw new Error("decode failed: " + r.error.message);
const out = new ByteBuffer(1024);
const written: FrameJsonResult = writeFrameJson(out, frame, "base64");
if (!written.ok) throw new Error("writeFrameJson failed: " + written.error);
if (written.hook !== r.event.hook) throw new Error("hooks differ: " + written.hook);
console.log(JSON.stringify({
  hook: r.event.hook,
  eventJson: eventToJson(r.event),
  frameJson: new TextDecoder().decode(out.bytes()),
}));
`;

const SIDECAR_SCRIPT = `import { Sidecar, type SidecarConfig } from "${MOD}";

const [vector, out] = Deno.args;
const config: SidecarConfig = {
  listen: { hostname: "127.0.0.1", port: 0 },
  admin: { hostname: "127.0.0.1", port: 0 },
  maxFrameBytes: 1 << 20,
  maxConnections: 10,
  maxBufferedBytes: 256 << 20,
  stallTimeoutMs: 30_000,
  idleTimeoutMs: 0,
  allowPeers: ["127.0.0.0/8"],
  logLevel: "warning",
  logFormat: "text",
  shutdownGraceMs: 2_000,
  outputs: [{
    kind: "file", target: out, format: "json", payload: "base64",
    hooks: null, topics: null, queueBytes: 1 << 20, onFull: "block", options: {},
  }],
};
const sidecar = await Sidecar.start({ config });
const mine = sidecar.metrics.gauge("user_answer", "A gauge the user registered.");
mine.set([], 42);
const admin = \`http://127.0.0.1:\${sidecar.adminAddr!.port}\`;
const readyz = await (await fetch(\`\${admin}/readyz\`)).text();
const conn = await Deno.connect({ hostname: "127.0.0.1", port: sidecar.addr.port });
await conn.write(await Deno.readFile(vector));
conn.close();
const until = Date.now() + 30_000;
while (sidecar.summary().total < 1 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
const metrics = await (await fetch(\`\${admin}/metrics\`)).text();
const summary = await sidecar.stop();
console.log(JSON.stringify({
  readyz,
  userGauge: /^user_answer 42$/m.test(metrics),
  received: /^vmq_sidecar_events_received_total\\{hook="on_register"\\} 1$/m.test(metrics),
  total: summary.total,
  line: JSON.parse(await Deno.readTextFile(out)).hook,
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

Deno.test("public API: a project outside the repository starts a Sidecar with admin from code, with only the permissions it needs", async () => {
  const dir = await Deno.makeTempDir({ prefix: "vmq-sidecar-user-" });
  try {
    assert(!dir.startsWith(ROOT.pathname), `${dir} is inside the repository`);
    await Deno.writeTextFile(`${dir}/deno.json`, "{}\n");
    await Deno.writeTextFile(`${dir}/sidecar.ts`, SIDECAR_SCRIPT);

    const check = await deno(["check", "--quiet", "sidecar.ts"], dir);
    assertEquals(check.code, 0, `deno check failed:\n${check.out}`);

    const out = `${dir}/events.jsonl`;
    const run = await deno(
      [
        "run",
        "--quiet",
        "--no-prompt",
        "--allow-net=127.0.0.1",
        `--allow-read=${VECTOR}.bin,${dir}`,
        `--allow-write=${dir}`,
        "sidecar.ts",
        `${VECTOR}.bin`,
        out,
      ],
      dir,
    );
    assertEquals(run.code, 0, `deno run failed:\n${run.out}`);
    assertEquals(JSON.parse(run.out), {
      readyz: "ready\n",
      userGauge: true,
      received: true,
      total: 1,
      line: "on_register",
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

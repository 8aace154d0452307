// Secrets never leave the sidecar (issue 15, item 5): secret values fed through every path —
// flags, the config file, the environment, URL user info and query options, headers, tokens,
// bad values that produce errors, destinations that refuse them — must appear in no log line,
// no error message, no check-config output, no metric and no readiness text of the real
// main.ts. Masking is by rule (every header value, every user-info password, every secret
// option), so the test uses header and option names that look harmless.
import { assert, assertEquals } from "./_assert.ts";
import { ROOT, RUN_MAIN, sendChunks, sidecarTempDir, waitFor } from "./_sidecar.ts";
import {
  addStream,
  distinctFrames,
  runOutputs,
  startNats,
  startReceiver,
  startRedis,
  stopOutputs,
  streamCount,
} from "./_servers.ts";
import { connect } from "@nats-io/transport-node";
import { adminGet, spawnSidecar } from "./_ops.ts";

/** Every secret, by where it is fed in; each is unique so that any leak is found. */
const S = {
  natsUrlPassword: "sEcr3t-natsurlpw-7f1",
  natsTokenEnv: "sEcr3t-natstoken-env-2c9",
  redisQueryPassword: "sEcr3t-redisqpw-5d3",
  redisEnvPassword: "sEcr3t-redisenvpw-8a4",
  httpUrlPassword: "sEcr3t-httpurlpw-3b7",
  headerFlag: "sEcr3t-hdrflag-9e2",
  headerToml: "sEcr3t-hdrtoml-4f6",
  headerEnv: "sEcr3t-hdrenv-1a8",
  urlEnv: "sEcr3t-urlenvpw-6c5",
  badFlagPassword: "sEcr3t-badflagpw-0d1",
  badHeader: "sEcr3t-badhdr-7e3",
  badToml: "sEcr3t-badtoml-2f4",
  natsUrlToken: "sEcr3t-natsurltoken-5b8",
};

/** The secrets and the forms they could leak in (as such, inside Basic auth). */
function forms(): [string, string][] {
  const out: [string, string][] = [];
  for (const [name, v] of Object.entries(S)) {
    out.push([name, v]);
  }
  for (const [user, pass] of [["svc", S.natsUrlPassword], ["hook", S.httpUrlPassword]]) {
    out.push([`basic ${user}`, btoa(`${user}:${pass}`)]);
  }
  return out;
}

function assertNoSecret(where: string, text: string): void {
  for (const [name, form] of forms()) {
    assert(!text.includes(form), `${name} leaked in ${where}:\n${text}`);
  }
}

const ENV = {
  VMQ_SIDECAR_T_NATS_TOKEN: S.natsTokenEnv,
  VMQ_SIDECAR_T_REDIS_PW: S.redisEnvPassword,
  VMQ_SIDECAR_T_HDR: S.headerEnv,
  VMQ_SIDECAR_T_URL: "", // set per test: a URL with credentials
};

async function run(args: string[], env: Record<string, string>) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [...RUN_MAIN, ...args],
    cwd: ROOT,
    stdin: "null",
    env: { NO_COLOR: "1", ...env },
    signal: AbortSignal.timeout(30_000),
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

Deno.test("secrets: no secret in logs, errors, check-config, metrics or readiness, whatever path it came by", async () => {
  const dir = await sidecarTempDir();
  // Destinations that refuse the credentials they are given.
  await using nats = await startNats({ args: ["--user", "svc", "--pass", "the-right-one-a1"] });
  await using natsToken = await startNats({ args: ["--auth", "the-right-token-b2"] });
  await using redis = await startRedis(["--requirepass", "the-right-one-c3"]);
  await using redisEnv = await startRedis(["--requirepass", "the-right-one-d4"]);
  // An HTTP receiver that refuses every request (401) and one that accepts.
  await using refuse = startReceiver(() => new Response("go away", { status: 401 }));
  await using accept = startReceiver();
  const env = {
    ...ENV,
    VMQ_SIDECAR_T_URL: `http://hook:${S.urlEnv}@127.0.0.1:${accept.port}/from-env`,
  };
  const config = `${dir}/secrets.toml`;
  const toml = `log_level = "debug"

[[outputs]]
url = "nats://svc:${S.natsUrlPassword}@127.0.0.1:${nats.port}"
dead_letter = "${dir}/dl-nats.ndjson"

[[outputs]]
url = "nats://127.0.0.1:${natsToken.port}"
token_env = "VMQ_SIDECAR_T_NATS_TOKEN"
dead_letter = "${dir}/dl-nats2.ndjson"

[[outputs]]
url = "redis://127.0.0.1:${redisEnv.port}/0"
password_env = "VMQ_SIDECAR_T_REDIS_PW"

[[outputs]]
url = "http://127.0.0.1:${refuse.port}/refuse"
header.X-Tenant = "${S.headerToml}"
header_env.X-Trace = "VMQ_SIDECAR_T_HDR"
dead_letter = "${dir}/dl-http.ndjson"
linger_ms = 0

[[outputs]]
url_env = "VMQ_SIDECAR_T_URL"
linger_ms = 0
dead_letter = "${dir}/dl-http2.ndjson"
`;
  await Deno.writeTextFile(config, toml);
  const flagOuts = [
    `nats://${S.natsUrlToken}@127.0.0.1:${natsToken.port}?dead_letter=${dir}/dl-nats3.ndjson`,
    `redis://127.0.0.1:${redis.port}/0?password=${S.redisQueryPassword}`,
    `http://hook:${S.httpUrlPassword}@127.0.0.1:${refuse.port}/flag?header.X-Request-Source=${S.headerFlag}&linger_ms=0&dead_letter=${dir}/dl-http3.ndjson`,
  ];

  // 2. check-config of the file, with and without the flag outputs.
  const cc = await run(["check-config", config, "--file-only"], env);
  assertEquals(cc.code, 0, cc.stderr);
  assertNoSecret("check-config (file)", cc.stdout + cc.stderr);
  const ccToml = await run(["check-config", config, "--file-only", "--emit", "toml"], env);
  assertEquals(ccToml.code, 0, ccToml.stderr);
  assertNoSecret("check-config --emit toml", ccToml.stdout + ccToml.stderr);
  const ccFlags = await run(
    ["check-config", config, "--file-only", ...flagOuts.flatMap((o) => ["--out", o])],
    env,
  );
  assertEquals(ccFlags.code, 0, ccFlags.stderr);
  assertNoSecret("check-config (flags)", ccFlags.stdout + ccFlags.stderr);

  // 3. Bad values next to secrets, from flags and from the file: errors name keys, not values.
  const badOuts: string[][] = [
    ["--out", `nats://svc:${S.badFlagPassword}@127.0.0.1:4222?ack_timeout_ms=1`],
    ["--out", `nats://svc:${S.badFlagPassword}@127.0.0.1:4222?nope=1`],
    ["--out", `nats://svc:${S.badFlagPassword}@127.0.0.1:4222/path`],
    ["--out", `nats://svc:${S.badFlagPassword}@127.0.0.1:99999`],
    ["--out", `https://svc:${S.badFlagPassword}@[::1/x`],
    ["--out", `http://u:${S.badFlagPassword}@127.0.0.1:9/x?header.Bad%20Name=${S.badHeader}`],
    ["--out", `http://127.0.0.1:9/x?header.Content-Type=${S.badHeader}`],
    ["--out", `http://127.0.0.1:9/x?header.A=${S.badHeader}&header.a=${S.badHeader}`],
    ["--out", `ftp://u:${S.badFlagPassword}@host/x`],
    ["--out", `redis://u:${S.badFlagPassword}@127.0.0.1:6379/x`],
    ["--out", `nats://127.0.0.1:4222?token=${S.badFlagPassword}&user=svc`],
    ["--out", `redis://127.0.0.1:6379/0?password=${S.badFlagPassword}&password_env=X_NOPE`],
  ];
  for (const args of badOuts) {
    const r = await run(["--listen", "127.0.0.1:0", ...args], env);
    assertEquals(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
    assertNoSecret(`error of ${args[1].slice(0, 30)}…`, r.stdout + r.stderr);
  }
  const badTomls = [
    `[[outputs]]\nurl = "http://127.0.0.1:9/x"\nheader.X-A = "${S.badToml}"\nnope = 1\n`,
    `[[outputs]]\nurl = "http://127.0.0.1:9/x"\nheader.X-A = "${S.badToml}"\nheader_env.X-A = "VMQ_SIDECAR_T_HDR"\n`,
    `[[outputs]]\nurl = "nats://svc:${S.badToml}@127.0.0.1:4222"\ntoken = "x"\n`,
    `[[outputs]]\nurl = "http://127.0.0.1:9/x"\nheader = "${S.badToml}"\n`,
  ];
  for (const [i, text] of badTomls.entries()) {
    const path = `${dir}/bad-${i}.toml`;
    await Deno.writeTextFile(path, text);
    for (const args of [["check-config", path], ["--config", path]]) {
      const r = await run(args, env);
      assertEquals(r.code, 2, `${text}: ${r.stderr}`);
      assertNoSecret(`error of bad file ${i}`, r.stdout + r.stderr);
    }
  }

  // 4. Running: every output, events through all of them, destinations refusing.
  const s = await spawnSidecar(
    [
      "--config",
      config,
      "--listen",
      "127.0.0.1:0",
      "--admin",
      "127.0.0.1:0",
      ...flagOuts.flatMap((o) => ["--out", o]),
    ],
    { env, stdout: "null" },
  );
  try {
    // --out replaces the file's outputs: run the file's too, in a second sidecar.
    const f = await spawnSidecar(
      ["--config", config, "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0"],
      { env, stdout: "null" },
    );
    try {
      for (const p of [s, f]) await sendChunks(p.port, distinctFrames("secret", 20));
      await waitFor(
        () => refuse.requests.length >= 2 && accept.requests.length >= 1,
        "the receivers got requests",
      );
      // The secrets did reach the destinations (so they were in play).
      const got = [...refuse.requests, ...accept.requests].map((r) =>
        [...r.headers.entries()].join(";")
      ).join("\n");
      for (const v of [S.headerFlag, S.headerToml, S.headerEnv]) assert(got.includes(v), v);
      await waitFor(
        () => /NOAUTH|WRONGPASS|invalid|Authorization/i.test(s.stderr() + f.stderr()),
        "a destination refused the credentials",
      );
      // A reload (SIGHUP) logs the outputs again.
      f.kill("SIGHUP");
      await waitFor(() => /config reloaded/.test(f.stderr()), "reloaded");
      for (const p of [s, f]) {
        for (const path of ["/metrics", "/readyz", "/healthz"]) {
          const r = await adminGet(p.adminPort, path);
          assertNoSecret(`${path}`, r.body);
        }
      }
    } finally {
      f.kill("SIGTERM");
      const r = await f.wait();
      assertNoSecret("the file's sidecar stderr", r.stderr);
    }
  } finally {
    s.kill("SIGTERM");
    const r = await s.wait();
    assertNoSecret("the flags' sidecar stderr", r.stderr);
  }
  // Refused batches went to the dead-letter files, without the request headers.
  for (const name of ["dl-http.ndjson", "dl-http3.ndjson"]) {
    const text = await Deno.readTextFile(`${dir}/${name}`);
    assert(text.includes("HTTP 401"), text);
    assertNoSecret(name, text);
  }
  await Deno.remove(dir, { recursive: true });
});

Deno.test("secrets: a NATS URL's lone user info is a token: it authenticates, and is never logged", async () => {
  const token = "sEcr3t-urltoken-ok-4e2";
  await using nats = await startNats({ args: ["--auth", token] });
  const nc = await connect({ servers: `127.0.0.1:${nats.port}`, token });
  try {
    await addStream(nc, "EV", ["vmq.events.>"]);
    const s = await runOutputs([`nats://${token}@127.0.0.1:${nats.port}`], {
      flags: ["--log-level", "debug"],
    });
    await sendChunks(s.port, distinctFrames("tok", 10));
    await waitFor(async () => await streamCount(nc, "EV") >= 10, "10 events stored");
    const stderr = await stopOutputs(s);
    assert(!stderr.includes(token), stderr);
    // An error names the URL with its user info masked.
    const cc = await run(["--out", `nats://${token}@127.0.0.1:${nats.port}?nope=1`], {});
    assertEquals(cc.code, 2, cc.stderr);
    assert(cc.stderr.includes("nats://***@127.0.0.1"), cc.stderr);
  } finally {
    await nc.close();
  }
});

// Output option schemas (lib/outputs/<kind>/kind.ts, lib/outputs/options.ts): every option of
// every kind means the same from a URL query and from a config file table; one unknown-option
// check; one secret resolver (`*_env`) for both; typed values reach the spec, defaults filled.
import { assert, assertEquals } from "./_assert.ts";
import { sidecarTempDir } from "./_sidecar.ts";
import {
  effectiveDocument,
  factoryOf,
  normalizeOptions,
  OUTPUT_KINDS,
  type OutputSpec,
  resolveConfig,
} from "../lib/internal.ts";

/** A base URL of each kind. */
const BASE: Record<string, string> = {
  stdout: "stdout",
  file: "file:/tmp/vmq-sidecar/options.jsonl",
  nats: "nats://127.0.0.1:4222",
  redis: "rediss://127.0.0.1:6380/2",
  http: "https://127.0.0.1:9/hook",
};

const ca = `${await sidecarTempDir()}/ca.pem`;
await Deno.writeTextFile(ca, "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n");

/**
 * A non-default value of every option: [TOML value, URL query text, parsed value]. A new
 * option needs a line here (the first test says which).
 */
const SAMPLES: Record<string, Record<string, [unknown, string, unknown]>> = {
  stdout: {
    flush_ms: [25, "25", 25],
    order: ["client", "client", "client"],
    order_window_ms: [250, "250", 250],
  },
  file: {
    rotate_bytes: ["1MiB", "1MiB", 1048576],
    keep: [2, "2", 2],
    flush_ms: [0, "0", 0],
    order: ["client", "client", "client"],
    order_window_ms: [250, "250", 250],
  },
  nats: {
    subject: ["vmq.{hook}.x", "vmq.{hook}.x", "vmq.{hook}.x"],
    user: ["svc", "svc", "svc"],
    password: ["pw", "pw", "pw"],
    token: [undefined, "", undefined], // exclusive with user: sampled in its own case below
    tls: [true, "yes", true],
    tls_ca: [ca, ca, ca],
    create_stream: ["EVENTS", "EVENTS", "EVENTS"],
    ack_timeout_ms: [1000, "1000", 1000],
    dead_letter: [
      "/tmp/vmq-sidecar/dl.ndjson",
      "/tmp/vmq-sidecar/dl.ndjson",
      "/tmp/vmq-sidecar/dl.ndjson",
    ],
    batch_events: [10, "10", 10],
    batch_bytes: ["64KiB", "64KiB", 65536],
    linger_ms: [5, "5", 5],
    buffer: ["memory", "memory", "memory"],
    buffer_bytes: ["64MiB", "64MiB", 67108864],
    concurrency: [8, "8", 8],
    order: ["client", "client", "client"],
    order_window_ms: [250, "250", 250],
  },
  redis: {
    key: ["k:{hook}", "k:{hook}", "k:{hook}"],
    maxlen: [1000, "1000", 1000],
    username: ["u", "u", "u"],
    password: ["pw", "pw", "pw"],
    tls_ca: [ca, ca, ca],
    timeout_ms: [500, "500", 500],
    batch_events: [10, "10", 10],
    batch_bytes: [2048, "2048", 2048],
    linger_ms: [5, "5", 5],
    buffer: ["memory", "memory", "memory"],
    buffer_bytes: ["64MiB", "64MiB", 67108864],
    concurrency: [8, "8", 8],
    order: ["client", "client", "client"],
    order_window_ms: [250, "250", 250],
  },
  http: {
    header: [{ "X-Tenant": "acme" }, "", { "X-Tenant": "acme" }],
    query: [{ tenant: "acme" }, "", { tenant: "acme" }],
    timeout_ms: [1000, "1000", 1000],
    retry_after_max_ms: [0, "0", 0],
    dead_letter: [
      "/tmp/vmq-sidecar/dl.ndjson",
      "/tmp/vmq-sidecar/dl.ndjson",
      "/tmp/vmq-sidecar/dl.ndjson",
    ],
    tls_ca: [ca, ca, ca],
    batch_events: [10, "10", 10],
    batch_bytes: ["2MiB", "2MiB", 2097152],
    linger_ms: [0, "0", 0],
    buffer: ["memory", "memory", "memory"],
    buffer_bytes: ["64MiB", "64MiB", 67108864],
    concurrency: [8, "8", 8],
    order: ["client", "client", "client"],
    order_window_ms: [250, "250", 250],
  },
};

/** The query text of a sample (prefix options as `NAME.SUB=value`). */
function query(option: string, sample: [unknown, string, unknown]): string[] {
  if (sample[0] === undefined) return [];
  if (typeof sample[0] === "object" && sample[0] !== null) {
    return Object.entries(sample[0]).map(([k, v]) =>
      `${option}.${k}=${encodeURIComponent(String(v))}`
    );
  }
  return [`${option}=${encodeURIComponent(sample[1])}`];
}

function fromUrl(url: string, env?: (n: string) => string | undefined): OutputSpec {
  return resolveConfig({ out: [url] }, undefined, env).config.outputs[0];
}

function fromTable(table: Record<string, unknown>, env?: (n: string) => string | undefined) {
  const data = { outputs: [table] };
  return resolveConfig({}, { path: "", data, lines: new Map() }, env).config.outputs[0];
}

Deno.test("output options: every option of every kind is parsed the same from a URL query and a table, typed", () => {
  for (const kind of OUTPUT_KINDS) {
    const samples = SAMPLES[kind.kind];
    assert(samples, `no samples for ${kind.kind}`);
    assertEquals(Object.keys(samples).sort(), Object.keys(kind.options).sort(), kind.kind);
    const table: Record<string, unknown> = { url: BASE[kind.kind] };
    const q: string[] = [];
    for (const [option, sample] of Object.entries(samples)) {
      if (sample[0] !== undefined) table[option] = sample[0];
      q.push(...query(option, sample));
    }
    const a = fromUrl(`${BASE[kind.kind]}?${q.join("&")}`);
    const b = fromTable(table);
    assertEquals(a, b, kind.kind);
    for (const [option, sample] of Object.entries(samples)) {
      assertEquals(a.options[option], sample[2], `${kind.kind} ${option}`);
    }
    // Without options: every option has its default.
    const d = fromUrl(BASE[kind.kind]);
    // Creating the sink normalizes a spec's options: for parsed ones, a no-op.
    for (const spec of [a, d]) {
      const again = normalizeOptions(kind.options, { ...spec.options }, "k", {
        rotateBytes: 0,
        rotateKeep: 5,
      });
      assertEquals(again, spec.options, `${kind.kind}: normalizing parsed options changed them`);
    }
    for (const [option, spec] of Object.entries(kind.options)) {
      const dflt = typeof spec.default === "function"
        ? spec.default({ rotateBytes: 0, rotateKeep: 5 })
        : spec.default;
      assertEquals(d.options[option], dflt, `${kind.kind} ${option} default`);
    }
  }
  // The NATS token, which excludes a user.
  const t = fromTable({ url: BASE.nats, token: "tk" });
  assertEquals([t.options.token, fromUrl(`${BASE.nats}?token=tk`).options.token], ["tk", "tk"]);
});

Deno.test("output options: one unknown-option check, the same message from a URL and a table", () => {
  for (const kind of OUTPUT_KINDS) {
    let fromQuery = "", fromFile = "";
    try {
      fromUrl(`${BASE[kind.kind]}?nope=1`);
    } catch (e) {
      fromQuery = (e as Error).message;
    }
    try {
      fromTable({ url: BASE[kind.kind], nope: 1 });
    } catch (e) {
      fromFile = (e as Error).message;
    }
    const why = `unknown option for ${kind.kind} output; accepted: `;
    assert(fromQuery.includes(` nope: ${why}`), fromQuery);
    assert(fromFile.startsWith(`outputs[1].nope: ${why}`), fromFile);
    assertEquals(fromQuery.slice(fromQuery.indexOf(why)), fromFile.slice(fromFile.indexOf(why)));
    // Every option is listed, secrets with their _env form, then the common ones.
    for (const [name, spec] of Object.entries(kind.options)) {
      const shown = spec.prefix ? `${name}.NAME` : name;
      assert(fromFile.includes(shown), `${kind.kind}: ${shown} not in ${fromFile}`);
      if (spec.secret) assert(fromFile.includes(spec.prefix ? `${name}_env.NAME` : `${name}_env`));
    }
    assert(fromFile.endsWith("format, payload, hooks, topics, queue_bytes, on_full"), fromFile);
  }
});

Deno.test("output options: *_env secrets resolve the same from a URL query and a table, and are masked", () => {
  const env = (n: string) =>
    ({ VMQ_SIDECAR_T_PW: "env-pw", VMQ_SIDECAR_T_KEY: "env-key" } as Record<string, string>)[n];
  const cases: [string, string, Record<string, unknown>, string, unknown][] = [
    [
      BASE.nats,
      "user=svc&password_env=VMQ_SIDECAR_T_PW",
      {
        user: "svc",
        password_env: "VMQ_SIDECAR_T_PW",
      },
      "password",
      "env-pw",
    ],
    [
      BASE.redis,
      "password_env=VMQ_SIDECAR_T_PW",
      { password_env: "VMQ_SIDECAR_T_PW" },
      "password",
      "env-pw",
    ],
    [
      BASE.http,
      "header_env.X-Api-Key=VMQ_SIDECAR_T_KEY",
      { header_env: { "X-Api-Key": "VMQ_SIDECAR_T_KEY" } },
      "header",
      { "X-Api-Key": "env-key" },
    ],
  ];
  for (const [base, q, table, option, value] of cases) {
    const a = fromUrl(`${base}?${q}`, env), b = fromTable({ url: base, ...table }, env);
    assertEquals(a, b, base);
    assertEquals(a.options[option], value, base);
    const doc = JSON.stringify(
      effectiveDocument(resolveConfig({ out: [`${base}?${q}`] }, undefined, env)),
    );
    assert(!doc.includes("env-pw") && !doc.includes("env-key"), doc);
    assert(
      doc.includes(
        option === "header"
          ? '"header_env.X-Api-Key":"VMQ_SIDECAR_T_KEY"'
          : '"password_env":"VMQ_SIDECAR_T_PW"',
      ),
      doc,
    );
  }
  // Both forms, an unset variable: the same errors either way.
  const errors = (url: string, table: Record<string, unknown>) => {
    const out: string[] = [];
    for (const f of [() => fromUrl(url, env), () => fromTable(table, env)]) {
      try {
        f();
        out.push("accepted");
      } catch (e) {
        const m = (e as Error).message;
        assert(/[ .]password_env: [^:]+$/.test(m), m); // names the option, then says why
        out.push(m.split(": ").at(-1)!);
      }
    }
    return out;
  };
  const both = errors(`${BASE.redis}?password=x&password_env=VMQ_SIDECAR_T_PW`, {
    url: BASE.redis,
    password: "x",
    password_env: "VMQ_SIDECAR_T_PW",
  });
  assertEquals(both[0], both[1]);
  assert(both[0].includes("give password or password_env, not both"), both[0]);
  const unset = errors(`${BASE.redis}?password_env=VMQ_SIDECAR_T_UNSET`, {
    url: BASE.redis,
    password_env: "VMQ_SIDECAR_T_UNSET",
  });
  assertEquals(unset[0], unset[1]);
  assert(unset[0].includes("environment variable VMQ_SIDECAR_T_UNSET is not set"), unset[0]);
});

Deno.test("output options: typed values, not text (lists and numbers from TOML kept as such)", () => {
  const o = fromTable({
    url: BASE.http,
    hooks: ["on_publish"],
    topics: ["a/+", "b/#"],
    queue_bytes: 131072,
    batch_bytes: 4096,
  });
  assertEquals(o.hooks, ["on_publish"]);
  assertEquals(o.topics, ["a/+", "b/#"]);
  assertEquals(o.queueBytes, 131072);
  assertEquals(o.options.batch_bytes, 4096);
  let error = "";
  try {
    fromTable({ url: BASE.nats, ack_timeout_ms: true });
  } catch (e) {
    error = (e as Error).message;
  }
  assertEquals(
    error,
    "outputs[1].ack_timeout_ms: expected a whole number from 100 to 600000, got true",
  );
});

Deno.test("output options: a spec built in code gets its options parsed and defaults filled when its sink is created", async () => {
  const dir = await sidecarTempDir();
  const spec = (kind: "file" | "stdout", target: string, options: Record<string, unknown>) => ({
    kind,
    target,
    format: "json" as const,
    payload: "base64" as const,
    hooks: null,
    topics: null,
    queueBytes: 1 << 20,
    onFull: "block" as const,
    options,
  });
  const out = await factoryOf(spec("stdout", "stdout", {}), "code").create(
    spec("stdout", "stdout", {}),
    "code",
  );
  assertEquals(out.queue.lingerMs, 10);
  await out.sink.close();
  // Options as text (the form before typed options) are parsed too.
  const f = spec("file", `${dir}/code.jsonl`, { keep: "2", flush_ms: "0" });
  const file = await factoryOf(f, "code").create(f, "code");
  assertEquals(file.queue.lingerMs, 0);
  await file.sink.close();
  let error = "";
  try {
    const bad = spec("file", `${dir}/code.jsonl`, { kep: 2 });
    await factoryOf(bad, "code").create(bad, "code");
  } catch (e) {
    error = (e as Error).message;
  }
  assert(error.startsWith("code kep: unknown option for file output"), error);
  await Deno.remove(dir, { recursive: true });
});

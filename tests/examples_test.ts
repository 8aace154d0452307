// The examples (issue 14 phase 2, item 3), each run exactly as `deno task example:NAME` runs it
// (the task's own permission flags, read from deno.json), on port 0, driven by the test kit's
// plugin-like sender over real sockets (events spread over many connections, with jitter).
import { assert, assertEquals } from "./_assert.ts";
import { mulberry32 } from "./_vectors.ts";
import { parseExposition, valueOf } from "./_prom.ts";
import { ROOT, WRITABLE_TMP } from "./_sidecar.ts";
import type { OnPublishEvent, SidecarEvent } from "../lib/mod.ts";
import { topicMatches } from "../lib/mod.ts";
import { frameOf, PluginSender } from "../lib/testing.ts";

const T0 = 1_764_620_000_000_000_000n; // ns

interface Example {
  child: Deno.ChildProcess;
  plugin: number;
  http: number;
  stderr: () => string;
  stop(): Promise<void>;
}

/** Spawns `deno task example:NAME` as deno.json says (its flags), with `args`; waits for both ports. */
async function runExample(name: string, args: string[]): Promise<Example> {
  const config = JSON.parse(await Deno.readTextFile(new URL("deno.json", ROOT)));
  const task = (config.tasks[`example:${name}`] as string).split(" ");
  assertEquals(task[0], "deno");
  assert(
    !task.some((a) => /^(-A|--allow-all|-P)$/.test(a)),
    `example:${name} must name its permissions`,
  );
  const child = new Deno.Command("deno", {
    args: [...task.slice(1), "--listen", "127.0.0.1:0", "--http", "127.0.0.1:0", ...args],
    cwd: ROOT,
    stdout: "null",
    stderr: "piped",
  }).spawn();
  let text = "";
  const reader = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
  const pumping = (async () => {
    for (;;) {
      const r = await reader.read();
      if (r.done) return;
      text += r.value;
    }
  })();
  const end = performance.now() + 30_000;
  let plugin = 0, http = 0;
  while (!(plugin && http)) {
    if (performance.now() > end) {
      child.kill("SIGKILL");
      await child.status;
      throw new Error(`example ${name} did not start:\n${text}`);
    }
    plugin = Number(/plugin listener on [\d.]+:(\d+)/.exec(text)?.[1] ?? 0);
    http = Number(/http on [\d.]+:(\d+)/.exec(text)?.[1] ?? 0);
    await new Promise((r) => setTimeout(r, 25));
  }
  return {
    child,
    plugin,
    http,
    stderr: () => text,
    async stop() {
      try {
        child.kill("SIGTERM");
      } catch { /* exited */ }
      const timer = setTimeout(() => child.kill("SIGKILL"), 15_000);
      const status = await child.status;
      clearTimeout(timer);
      await pumping;
      assertEquals(status.code, 0, `example ${name} exit: ${text}`);
    },
  };
}

async function until<T>(what: string, get: () => Promise<T>, ok: (v: T) => boolean): Promise<T> {
  const end = performance.now() + 30_000;
  let v = await get();
  while (!ok(v)) {
    if (performance.now() > end) {
      throw new Error(`timed out waiting for ${what}: ${JSON.stringify(v)}`);
    }
    await new Promise((r) => setTimeout(r, 50));
    v = await get();
  }
  return v;
}

function ts(ns: bigint) {
  return { seconds: ns / 1_000_000_000n, nanos: Number(ns % 1_000_000_000n) };
}

function shuffle<T>(a: T[], rng: () => number): T[] {
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}

async function sendAll(port: number, events: SidecarEvent[], seed: number): Promise<void> {
  const sender = await PluginSender.connect({ port, connections: 50, seed, jitterMs: 3 });
  for (const e of events) await sender.send(frameOf(e).subarray(4));
  await sender.close();
}

Deno.test("example presence: GET /online is exact under reordering and takeover", async () => {
  const rng = mulberry32(14);
  const events: SidecarEvent[] = [];
  const truth = new Set<string>();
  for (let c = 0; c < 150; c++) {
    const mountpoint = c % 5 === 0 ? "mp" : "", client_id = `client-${c}`;
    const base = { mountpoint, client_id, username: "u" };
    let t = T0 + BigInt(c) * 1_000_000n, session = "", online = false, n = 0;
    for (let step = 0; step < 1 + Math.floor(rng() * 6); step++) {
      t += BigInt(1 + Math.floor(rng() * 1000));
      const r = rng();
      if (!online || r < 0.35) {
        // A new session: a first connect, a reconnect, or a takeover of the running one (whose
        // offline, stamped after the new register, may arrive in any order).
        const old = session;
        session = r < 0.1 && old ? old : `${client_id}-s${n++}`; // sometimes the same id again
        events.push(
          {
            ...base,
            hook: "on_register",
            session_id: session,
            peer_addr: "127.0.0.1",
            peer_port: 1,
            user_properties: {},
            timestamp: ts(t),
          } as SidecarEvent,
        );
        if (online && old !== session) {
          t += 1n;
          events.push(
            {
              ...base,
              hook: "on_client_offline",
              session_id: old,
              reason: "REASON_SESSION_TAKEN_OVER",
              timestamp: ts(t),
            } as SidecarEvent,
          );
        }
        online = true;
      } else {
        const hook = r < 0.7 ? "on_client_offline" : "on_client_gone";
        events.push(
          {
            ...base,
            hook,
            session_id: session,
            ...(hook === "on_client_offline" ? { reason: "REASON_NORMAL_DISCONNECT" } : {}),
            timestamp: ts(t),
          } as SidecarEvent,
        );
        online = false;
      }
    }
    if (online) truth.add(JSON.stringify([mountpoint, client_id]));
  }
  shuffle(events, rng);
  // The test can fail: handling in arrival order (no session logic) gets this input wrong.
  const naive = new Map<string, boolean>();
  for (const e of events) {
    const k = JSON.stringify([
      (e as { mountpoint: string }).mountpoint,
      (e as { client_id: string }).client_id,
    ]);
    naive.set(k, e.hook === "on_register");
  }
  const naiveOnline = [...naive].filter(([, v]) => v).map(([k]) => k);
  assert(naiveOnline.length !== truth.size || naiveOnline.some((k) => !truth.has(k)));

  const ex = await runExample("presence", []);
  try {
    await sendAll(ex.plugin, events, 3);
    const want = [...truth].sort();
    const got = await until("presence", async () => {
      const r = await fetch(`http://127.0.0.1:${ex.http}/online`);
      return ((await r.json()) as unknown[]).map((p) => JSON.stringify(p)).sort();
    }, (v) => JSON.stringify(v) === JSON.stringify(want));
    assertEquals(got, want);
    assertEquals(
      await fetch(`http://127.0.0.1:${ex.http}/nope`).then((r) => (r.body?.cancel(), r.status)),
      404,
    );
  } finally {
    await ex.stop();
  }
});

function pub(i: number, topic: string): OnPublishEvent {
  return {
    hook: "on_publish",
    timestamp: ts(T0 + BigInt(i) * 1000n),
    username: "u",
    client_id: `c${i % 7}`,
    mountpoint: "",
    qos: 1,
    topic,
    payload: new TextEncoder().encode(`p${i}`),
    retain: false,
    matched_acl: { name: "", pattern: "" },
    session_id: "s",
  };
}

const TOPICS = [
  "devices/a/telemetry",
  "devices/b/telemetry",
  "devices/a/alarm",
  "alerts/x",
  "alerts/x/y",
  "other",
  "devices",
];

Deno.test("example topic-counter: per filter on the sidecar's /metrics, promtool-clean", async () => {
  const filters = ["devices/+/telemetry", "devices/#", "alerts/#", "+"];
  const rng = mulberry32(5);
  const sent = [...Array(400).keys()].map((i) => pub(i, TOPICS[Math.floor(rng() * TOPICS.length)]));
  const ex = await runExample("topic-counter", filters.flatMap((f) => ["--filter", f]));
  try {
    await sendAll(ex.plugin, sent, 4);
    const want = Object.fromEntries(
      filters.map((f) => [f, sent.filter((e) => topicMatches(f, e.topic)).length]),
    );
    const text = await until(
      "counts",
      () => fetch(`http://127.0.0.1:${ex.http}/metrics`).then((r) => r.text()),
      (t) => {
        const fam = parseExposition(t);
        return filters.every((f) =>
          valueOf(fam, "topic_publishes_total", { filter: f }) === want[f]
        );
      },
    );
    const fam = parseExposition(text);
    const matching = sent.filter((e) => filters.some((f) => topicMatches(f, e.topic))).length;
    assertEquals(
      valueOf(fam, "vmq_sidecar_output_events_received_total", { output: "topic-counter" }),
      matching,
    );
    const r = new Deno.Command("promtool", {
      args: ["check", "metrics"],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const w = r.stdin.getWriter();
    await w.write(new TextEncoder().encode(text));
    await w.close();
    const out = await r.output();
    const said = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
    assertEquals(out.code, 0, said);
  } finally {
    await ex.stop();
  }
});

Deno.test("example webhook-filter: exactly the matching publishes reach the webhook; a 503 is retried", async () => {
  const bodies: string[] = [];
  let requests = 0;
  const receiver = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    const text = await req.text();
    if (requests++ === 0) return new Response("busy", { status: 503 });
    bodies.push(text);
    return new Response("ok");
  });
  const deadLetter = `${WRITABLE_TMP}/webhook-example-${crypto.randomUUID()}.ndjson`;
  // Its own journal directory: a journal left by an earlier run would be replayed (at least once).
  const dataDir = `${WRITABLE_TMP}/webhook-example-${crypto.randomUUID()}`;
  const topics = ["alerts/#", "devices/+/alarm"];
  const ex = await runExample("webhook-filter", [
    "--to",
    `http://127.0.0.1:${receiver.addr.port}/hook`,
    ...topics.flatMap((t) => ["--topic", t]),
    "--dead-letter",
    deadLetter,
    "--data-dir",
    dataDir,
  ]);
  try {
    const rng = mulberry32(9);
    const sent = [...Array(300).keys()].map((i) =>
      pub(i, TOPICS[Math.floor(rng() * TOPICS.length)])
    );
    const subscribe: SidecarEvent = {
      hook: "on_subscribe",
      timestamp: ts(T0),
      username: "u",
      client_id: "c",
      mountpoint: "",
      topics: [{ topic: "alerts/x", qos: 1 }],
      session_id: "s",
      user_properties: {},
    } as unknown as SidecarEvent;
    await sendAll(ex.plugin, [...sent, subscribe], 5);
    const want = sent.filter((e) => topics.some((f) => topicMatches(f, e.topic)))
      .map((e) => `${e.topic} ${new TextDecoder().decode(e.payload)}`).sort();
    const lines = () =>
      bodies.flatMap((b) => b.trim().split("\n")).filter(Boolean).map((l) => JSON.parse(l));
    await until("webhook", () => Promise.resolve(lines().length), (n) => n >= want.length);
    const got = lines().map((l) => `${l.topic} ${atob(l.payload)}`).sort();
    assertEquals(got, want);
    assert(lines().every((l) => l.hook === "on_publish"));
    assert(requests >= 2, "the 503 was not retried");
  } finally {
    await ex.stop();
    await receiver.shutdown();
    await Deno.remove(deadLetter).catch(() => {});
    await Deno.remove(dataDir, { recursive: true }).catch(() => {});
  }
});

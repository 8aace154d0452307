// The admin listener of the real main.ts: /metrics scraped during an end-to-end run and parsed
// strictly, counters equal to what was sent (by hook); /healthz; /readyz flipping when an
// output cannot keep up.
import { assert, assertEquals } from "./_assert.ts";
import { ExpositionError, parseExposition, valueOf } from "./_prom.ts";
import { adminGet, fileLines, fixtureStream, type Ops, scrape, spawnSidecar } from "./_ops.ts";
import { RUN_MAIN, sendChunks, sidecarTempDir, waitFor } from "./_sidecar.ts";
import {
  anyOf,
  EXPECTED_HOOKS,
  field,
  frameOf,
  message,
  timestampMsg,
  typeUrlFor,
} from "./_vectors.ts";
import { startRedis } from "./_servers.ts";

/** Plugin and admin listeners on free ports. */
const ON_FREE_PORTS = ["--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0"];

/** main.ts with a JSON file output and the admin listener, on free ports. */
async function spawnToFile(): Promise<{ s: Ops; out: string }> {
  const out = `${await sidecarTempDir()}/events.jsonl`;
  return { s: await spawnSidecar([...ON_FREE_PORTS, "--out", `file:${out}`]), out };
}

const HOOKS = Object.keys(EXPECTED_HOOKS);

Deno.test("the exposition parser accepts the format and rejects what the format forbids", () => {
  const good = `# HELP a_total Things, with \\\\ and \\n.
# TYPE a_total counter
a_total{hook="x",path="a\\"b\\\\c\\nd"} 3
a_total{hook="y"} 1e3
# TYPE h_seconds histogram
h_seconds_bucket{output="o",le="0.1"} 1
h_seconds_bucket{output="o",le="+Inf"} 2
h_seconds_sum{output="o"} 0.3
h_seconds_count{output="o"} 2
h_seconds_bucket{output="p",le="0.1"} 0
h_seconds_bucket{output="p",le="+Inf"} 0
h_seconds_sum{output="p"} 0
h_seconds_count{output="p"} 0
g NaN
`;
  const f = parseExposition(good);
  assertEquals(f.get("a_total")?.help, "Things, with \\ and \n.");
  assertEquals(valueOf(f, "a_total", { hook: "x", path: 'a"b\\c\nd' }), 3);
  assertEquals(valueOf(f, "a_total", { hook: "y" }), 1000);
  assertEquals(valueOf(f, "h_seconds_count", { output: "o" }), 2);
  assertEquals(f.get("h_seconds")?.samples.length, 8);
  const bad = [
    "a 1", // no final newline
    "a x\n",
    'a{b="c} 1\n',
    "a{b=c} 1\n",
    'a{b="\\t"} 1\n',
    "1a 1\n",
    "a 1\nb 1\na 2\n",
    "a 1\na 2\n",
    "a 1\n# TYPE a counter\n",
    "# TYPE a counter\n# TYPE a counter\n",
    "# TYPE a thing\n",
    '# TYPE h histogram\nh_bucket{le="1"} 1\nh_sum 1\nh_count 1\n',
    '# TYPE h histogram\nh_bucket{le="1"} 2\nh_bucket{le="+Inf"} 1\nh_sum 1\nh_count 1\n',
    '# TYPE h histogram\nh_bucket{le="+Inf"} 2\nh_sum 1\nh_count 1\n',
    '# TYPE h histogram\nh_bucket{le="+Inf"} 2\nh_count 2\n',
    "a 1 x\n",
  ];
  for (const text of bad) {
    let threw = false;
    try {
      parseExposition(text);
    } catch (e) {
      threw = e instanceof ExpositionError;
    }
    assert(threw, `accepted ${JSON.stringify(text)}`);
  }
});

Deno.test("/metrics during an end-to-end run: counters equal what was sent, by hook", async () => {
  const { s, out } = await spawnToFile();
  try {
    // Before anything is sent: every hook present at 0, the sidecar ready.
    const before = await scrape(s.adminPort);
    for (const h of HOOKS) {
      assertEquals(valueOf(before, "vmq_sidecar_events_received_total", { hook: h }), 0, h);
    }
    const stream = fixtureStream();
    const conns = 3;
    await Promise.all(Array.from({ length: conns }, () => sendChunks(s.port, [stream.bytes])));
    // One frame of a type this build does not know, one that is not an Any at all.
    const unknown = frameOf(anyOf("type.googleapis.com/eventssidecar.v1.OnAuthM5", field(1, 1)));
    await sendChunks(s.port, [unknown]);
    await sendChunks(s.port, [frameOf(Uint8Array.of(0x08))]);
    const total = stream.events * conns;
    await waitFor(() => fileLines(out).length === total, `${total} lines in ${out}`);
    await waitFor(async () => {
      const m = await scrape(s.adminPort);
      return valueOf(m, "vmq_sidecar_connections_open") === 0 &&
        valueOf(m, "vmq_sidecar_output_events_sent_total", { output: `file:${out}` }) === total;
    }, "connections closed and events acknowledged");

    const r = await adminGet(s.adminPort, "/metrics");
    assertEquals(r.status, 200);
    assert(r.type.startsWith("text/plain; version=0.0.4"), r.type);
    const m = parseExposition(r.body);
    for (const h of HOOKS) {
      assertEquals(
        valueOf(m, "vmq_sidecar_events_received_total", { hook: h }),
        (stream.byHook[h] ?? 0) * conns,
        h,
      );
    }
    assertEquals(
      valueOf(m, "vmq_sidecar_received_bytes_total"),
      stream.bytes.length * conns + unknown.length + 5,
    );
    assertEquals(
      valueOf(m, "vmq_sidecar_frames_rejected_total", { reason: "empty" }),
      stream.empty * conns,
    );
    assertEquals(valueOf(m, "vmq_sidecar_frames_rejected_total", { reason: "unknown_type" }), 1);
    assertEquals(
      valueOf(m, "vmq_sidecar_frames_rejected_total", { reason: "malformed_envelope" }),
      1,
    );
    assertEquals(
      valueOf(m, "vmq_sidecar_connection_errors_total", { reason: "malformed_envelope" }),
      1,
    );
    assertEquals(valueOf(m, "vmq_sidecar_connections_accepted_total"), conns + 2);
    assertEquals(valueOf(m, "vmq_sidecar_connections_open"), 0);
    const o = { output: `file:${out}` };
    assertEquals(valueOf(m, "vmq_sidecar_output_events_sent_total", o), total);
    assertEquals(valueOf(m, "vmq_sidecar_output_events_dropped_total", o), 0);
    assertEquals(valueOf(m, "vmq_sidecar_output_errors_total", o), 0);
    assertEquals(valueOf(m, "vmq_sidecar_output_retries_total", o), 0);
    assertEquals(valueOf(m, "vmq_sidecar_output_queue_events", o), 0);
    assertEquals(valueOf(m, "vmq_sidecar_output_queue_bytes", o), 0);
    assertEquals(valueOf(m, "vmq_sidecar_output_latency_seconds_count", o), total);
    assertEquals(
      valueOf(m, "vmq_sidecar_output_latency_seconds_bucket", { ...o, le: "+Inf" }),
      total,
    );
    assert(valueOf(m, "vmq_sidecar_output_latency_seconds_sum", o)! > 0);
    assert(valueOf(m, "vmq_sidecar_process_resident_memory_bytes")! > 1e6);
    assertEquals(valueOf(m, "vmq_sidecar_ready"), 1);
    assertEquals(valueOf(m, "vmq_sidecar_output_connected", o), 1);
    assertEquals(valueOf(m, "vmq_sidecar_build_info", { version: "0.1.0" }), 1);

    // Conventions: our prefix, HELP text, counters end in _total, units spelled out.
    for (const f of m.values()) {
      assert(
        f.name.startsWith("vmq_sidecar_") || STANDARD_PROCESS_METRICS.includes(f.name),
        f.name,
      );
      assert(f.help.length > 0, `${f.name} has no HELP`);
      assert(f.type !== "untyped", `${f.name} has no TYPE`);
      assertEquals(f.type === "counter", f.name.endsWith("_total"), f.name);
      assert(!/_(ms|milliseconds|kb|mb|kib|mib)(_|$)/.test(f.name), `${f.name}: base units`);
      if (f.type === "histogram") assert(f.name.endsWith("_seconds"), f.name);
    }

    const health = await adminGet(s.adminPort, "/healthz");
    assertEquals([health.status, health.body], [200, "ok\n"]);
    const ready = await adminGet(s.adminPort, "/readyz");
    assertEquals([ready.status, ready.body], [200, "ready\n"]);
    assertEquals((await adminGet(s.adminPort, "/nope")).status, 404);
    assertEquals((await adminGet(s.adminPort, "/metrics", "POST")).status, 405);
  } finally {
    s.kill("SIGTERM");
    const { code, stderr } = await s.wait();
    assertEquals(code, 0, stderr);
  }
});

/** Connection error reasons the docs list (docs/operations.md, Metrics). */
const CONNECTION_ERROR_REASONS = [
  "frame_too_large",
  "truncated_frame",
  "malformed_envelope",
  "reset",
  "io",
];

/** The standard process metrics Prometheus client libraries export (and this one does). */
const STANDARD_PROCESS_METRICS = [
  "process_cpu_seconds_total",
  "process_resident_memory_bytes",
  "process_start_time_seconds",
];

/** A raw HTTP/1.1 request over TCP: the status line and headers, and the bytes after them. */
async function rawRequest(
  port: number,
  method: string,
  path: string,
): Promise<{ head: string; headers: Record<string, string>; body: Uint8Array }> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const chunks: Uint8Array[] = [];
  try {
    await conn.write(
      new TextEncoder().encode(
        `${method} ${path} HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n`,
      ),
    );
    const buf = new Uint8Array(65536);
    const until = Date.now() + 10_000;
    for (;;) {
      if (Date.now() > until) throw new Error(`${method} ${path}: no end of response`);
      const n = await conn.read(buf);
      if (n === null) break;
      chunks.push(buf.slice(0, n));
    }
  } finally {
    conn.close();
  }
  const all = new Uint8Array(chunks.reduce((a, c) => a + c.length, 0));
  let at = 0;
  for (const c of chunks) all.set(c, at), at += c.length;
  const text = new TextDecoder().decode(all);
  const end = text.indexOf("\r\n\r\n");
  assert(end > 0, `no header end in ${JSON.stringify(text.slice(0, 200))}`);
  const [head, ...lines] = text.slice(0, end).split("\r\n");
  const headers: Record<string, string> = {};
  for (const l of lines) {
    const i = l.indexOf(":");
    headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
  }
  return {
    head,
    headers,
    body: all.subarray(new TextEncoder().encode(text.slice(0, end + 4)).length),
  };
}

Deno.test("/metrics before any event: every family has series (zeros per reason, hook, output), process metrics, HEAD", async () => {
  const startedBefore = Date.now() / 1000;
  const { s, out } = await spawnToFile();
  try {
    const m = await scrape(s.adminPort);
    for (const f of m.values()) assert(f.samples.length > 0, `${f.name}: declared without series`);
    for (const reason of CONNECTION_ERROR_REASONS) {
      assertEquals(valueOf(m, "vmq_sidecar_connection_errors_total", { reason }), 0, reason);
    }
    for (const reason of ["empty", "unknown_type", "malformed_envelope"]) {
      assertEquals(valueOf(m, "vmq_sidecar_frames_rejected_total", { reason }), 0, reason);
    }
    for (const h of HOOKS) {
      assertEquals(valueOf(m, "vmq_sidecar_events_received_total", { hook: h }), 0, h);
    }
    const o = { output: `file:${out}` };
    for (
      const name of [
        "vmq_sidecar_output_events_sent_total",
        "vmq_sidecar_output_events_dropped_total",
        "vmq_sidecar_output_events_undecodable_total",
        "vmq_sidecar_output_events_dead_lettered_total",
        "vmq_sidecar_output_errors_total",
        "vmq_sidecar_output_retries_total",
        "vmq_sidecar_output_queue_events",
        "vmq_sidecar_output_queue_bytes",
        "vmq_sidecar_output_latency_seconds_count",
        "vmq_sidecar_event_latency_seconds_count",
      ]
    ) assertEquals(valueOf(m, name, o), 0, name);
    assertEquals(valueOf(m, "vmq_sidecar_output_latency_seconds_bucket", { ...o, le: "+Inf" }), 0);

    // The standard process metrics, with their standard types.
    for (const name of STANDARD_PROCESS_METRICS) assert(m.has(name), `${name} missing`);
    assertEquals(m.get("process_cpu_seconds_total")?.type, "counter");
    assertEquals(m.get("process_resident_memory_bytes")?.type, "gauge");
    assertEquals(m.get("process_start_time_seconds")?.type, "gauge");
    const cpu = valueOf(m, "process_cpu_seconds_total")!;
    assert(cpu > 0 && cpu < 600, `cpu ${cpu} s`);
    assert(valueOf(m, "process_resident_memory_bytes")! > 10e6);
    const started = valueOf(m, "process_start_time_seconds")!;
    assert(started >= startedBefore - 1 && started <= Date.now() / 1000, `started ${started}`);
    // CPU time only grows: after relaying events it is at least what it was.
    await sendChunks(s.port, [fixtureStream().bytes]);
    await waitFor(async () => {
      const later = await scrape(s.adminPort);
      return (valueOf(later, "vmq_sidecar_output_events_sent_total", o) ?? 0) > 0 &&
        valueOf(later, "process_cpu_seconds_total")! >= cpu;
    }, "events written, CPU time not decreasing");

    // HEAD answers GET's headers without the body: its content-length is GET's (the
    // exposition's length varies by a few bytes between scrapes: RSS, CPU time).
    const get = await rawRequest(s.adminPort, "GET", "/metrics");
    const head = await rawRequest(s.adminPort, "HEAD", "/metrics");
    assertEquals(head.head, "HTTP/1.1 200 OK");
    assertEquals(head.body.length, 0, "HEAD sent a body");
    assertEquals(Number(get.headers["content-length"]), get.body.length);
    const length = Number(head.headers["content-length"]);
    assert(
      Math.abs(length - get.body.length) < 100,
      `HEAD content-length ${length}, GET ${get.body.length}`,
    );
    assertEquals(head.headers["content-type"], get.headers["content-type"]);
    const hz = await rawRequest(s.adminPort, "HEAD", "/healthz");
    assertEquals([hz.headers["content-length"], hz.body.length], ["3", 0]);
  } finally {
    s.kill("SIGTERM");
    const { code, stderr } = await s.wait();
    assertEquals(code, 0, stderr);
  }
});

Deno.test("vmq_sidecar_event_latency_seconds: from the event's broker timestamp to its write", async () => {
  const { s, out } = await spawnToFile();
  const o = { output: `file:${out}` };
  const offline = (ts: Uint8Array | undefined) =>
    frameOf(anyOf(
      typeUrlFor("on_client_offline"),
      message(...(ts ? [field(1, ts)] : []), field(2, "client-1")),
    ));
  const sent = (n: number) => async () =>
    valueOf(await scrape(s.adminPort), "vmq_sidecar_output_events_sent_total", o) === n;
  try {
    // Ten events an hour old (one read: the batch is measured from its first event).
    const hourAgo = Date.now() / 1000 - 3600;
    const old = Array.from({ length: 10 }, () => offline(timestampMsg(Math.floor(hourAgo), 5e8)));
    await sendChunks(s.port, [...old]);
    await waitFor(sent(10), "10 events written");
    let m = await scrape(s.adminPort);
    const h = "vmq_sidecar_event_latency_seconds";
    assertEquals(valueOf(m, `${h}_count`, o), 10);
    assertEquals(valueOf(m, `${h}_bucket`, { ...o, le: "30" }), 0);
    assertEquals(valueOf(m, `${h}_bucket`, { ...o, le: "+Inf" }), 10);
    const mean = valueOf(m, `${h}_sum`, o)! / 10;
    assert(mean > 3599 && mean < 3700, `mean ${mean} s, want about 3600`);

    // A broker clock ahead of ours counts as 0; an event without a timestamp is not observed.
    await sendChunks(s.port, [offline(timestampMsg(Math.floor(Date.now() / 1000) + 3600))]);
    await waitFor(sent(11), "11 events written");
    await sendChunks(s.port, [offline(undefined)]);
    await waitFor(sent(12), "12 events written");
    await sendChunks(s.port, [offline(new Uint8Array(0))]); // present but empty: no time either
    await waitFor(sent(13), "13 events written");
    m = await scrape(s.adminPort);
    assertEquals(valueOf(m, `${h}_count`, o), 11);
    assertEquals(valueOf(m, `${h}_bucket`, { ...o, le: "0.001" }), 1);
    assertEquals(valueOf(m, "vmq_sidecar_output_latency_seconds_count", o), 13);
  } finally {
    s.kill("SIGTERM");
    await s.wait();
  }
});

Deno.test("/readyz turns 503 while an output's queue is full and 200 once it drains", async () => {
  // stdout is a pipe nobody reads at first: its queue (64 KiB, the minimum) fills up.
  const s = await spawnSidecar([
    ...ON_FREE_PORTS,
    "--queue-bytes",
    "64KiB",
  ]);
  const stream = fixtureStream();
  const copies = 40; // ~1.1 MiB of events: more than pipe buffer + queue
  let sending: Promise<void> | undefined;
  try {
    assertEquals((await adminGet(s.adminPort, "/readyz")).status, 200);
    sending = sendChunks(s.port, Array.from({ length: copies }, () => stream.bytes));
    let body = "";
    await waitFor(async () => {
      const r = await adminGet(s.adminPort, "/readyz");
      body = r.body;
      return r.status === 503;
    }, "/readyz 503");
    assert(
      /^not ready\noutput stdout: queue at \d+ of 65536 bytes \(reading paused\)/.test(body),
      body,
    );
    assertEquals(valueOf(await scrape(s.adminPort), "vmq_sidecar_ready"), 0);
    s.readStdout();
    await sending;
    await waitFor(
      async () => (await adminGet(s.adminPort, "/readyz")).status === 200,
      "/readyz 200",
    );
    await waitFor(
      () => s.stdout().split("\n").filter(Boolean).length === copies * stream.events,
      "every event on stdout",
    );
  } finally {
    s.kill("SIGTERM");
    const { code, stderr } = await s.wait();
    await sending?.catch(() => {});
    assertEquals(code, 0, stderr);
  }
});

Deno.test("--admin off: no admin listener; an explicit --admin address in use: exit 1", async () => {
  const s = await spawnSidecar(["--listen", "127.0.0.1:0", "--admin", "off"], { admin: false });
  s.kill("SIGTERM");
  const r = await s.wait();
  assertEquals(r.code, 0, r.stderr);
  assert(!r.stderr.includes("admin endpoints"), r.stderr);

  const taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        ...RUN_MAIN,
        "--listen",
        "127.0.0.1:0",
        "--admin",
        `127.0.0.1:${taken.addr.port}`,
      ],
      cwd: new URL("../", import.meta.url),
      stdin: "null",
      stdout: "null",
      env: { NO_COLOR: "1" },
    }).output();
    const stderr = new TextDecoder().decode(out.stderr);
    assertEquals(out.code, 1, stderr);
    assert(
      stderr.includes(
        `cannot listen for admin requests on 127.0.0.1:${taken.addr.port}: address already in use`,
      ),
      stderr,
    );
  } finally {
    taken.close();
  }
});

Deno.test("/readyz turns 503 when a redis-server output is stopped and 200 when it is back", async () => {
  await using redis = await startRedis();
  const url = `redis://127.0.0.1:${redis.port}/0`;
  const s = await spawnSidecar([
    ...ON_FREE_PORTS,
    "--shutdown-grace",
    "300",
    "--out",
    url,
  ], { stdout: "null" });
  const status = async () => (await adminGet(s.adminPort, "/readyz")).status;
  try {
    await waitFor(async () => await status() === 200, "ready with redis up");
    const m = await scrape(s.adminPort);
    const name = [...m.get("vmq_sidecar_output_connected")!.samples][0].labels.output;
    assertEquals(valueOf(m, "vmq_sidecar_output_connected", { output: name }), 1);
    await redis.stop();
    let body = "";
    await waitFor(async () => {
      const r = await adminGet(s.adminPort, "/readyz");
      body = r.body;
      return r.status === 503;
    }, "/readyz 503 with redis down");
    assert(body.includes(`output ${name}: not connected`), body);
    assertEquals(
      valueOf(await scrape(s.adminPort), "vmq_sidecar_output_connected", { output: name }),
      0,
    );
    await redis.start();
    await waitFor(async () => await status() === 200, "ready again with redis back");
    assertEquals(
      valueOf(await scrape(s.adminPort), "vmq_sidecar_output_connected", { output: name }),
      1,
    );
  } finally {
    s.kill("SIGTERM");
    await s.wait();
  }
});

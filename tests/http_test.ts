// HTTP webhook output, end to end: the real main.ts (default permissions) receives frames over
// TCP and POSTs them to a receiver in this test (Deno.serve on 127.0.0.1).
import { assert, assertEquals } from "./_assert.ts";
import { concat, fixtureVectors, toOurJson, type Vector } from "./_vectors.ts";
import { jsonLines, runSidecar, sendChunks, sidecarTempDir, waitFor } from "./_sidecar.ts";
import { fixtureStream } from "./_ops.ts";
import {
  distinctFrames,
  freePort,
  makeCertificates,
  type Received,
  runOutputs,
  sha256Id,
  startReceiver,
  stopOutputs,
} from "./_servers.ts";

const events = (): Vector[] => fixtureVectors().filter((v) => v.expected.hook !== null);
const ok = () => new Response(null, { status: 204 });

/** Events of the accepted (2xx) JSON requests, in order. */
// deno-lint-ignore no-explicit-any
function accepted(requests: Received[]): any[] {
  return requests.filter((r) => r.status < 300).flatMap((r) => jsonLines(r.body));
}

// Tests that check the order across requests run with one request at a time (`concurrency=1`):
// with several in flight, requests may arrive in any order (docs/outputs.md); the window itself
// is tests/http_concurrency_test.ts.
Deno.test("http: every fixture event is POSTed as ndjson in order, batches bounded by batch_events, headers from options and env", async () => {
  await using rx = startReceiver();
  const s = await runOutputs([
    `http://127.0.0.1:${rx.port}/ingest?batch_events=20&concurrency=1&header.X-Tenant=t1` +
    `&header_env.Authorization=VMQ_SIDECAR_WEBHOOK_AUTH&query.source=vmq`,
  ], { env: { VMQ_SIDECAR_WEBHOOK_AUTH: "Bearer tok-secret" } });
  await sendChunks(s.port, [fixtureStream().bytes]);
  const want = events();
  await waitFor(() => accepted(rx.requests).length >= want.length, "all events");
  const stderr = await stopOutputs(s);
  assertEquals(accepted(rx.requests), want.map((v) => toOurJson(v.expected)));
  assert(rx.requests.length >= Math.ceil(want.length / 20), `${rx.requests.length} requests`);
  for (const r of rx.requests) {
    const lines = jsonLines(r.body).length;
    assert(lines >= 1 && lines <= 20, `a batch of ${lines} events`);
    assertEquals(r.headers.get("content-type"), "application/x-ndjson");
    assertEquals(r.headers.get("x-vmq-sidecar-events"), String(lines));
    assertEquals(r.headers.get("idempotency-key"), await sha256Id(r.body));
    assertEquals(r.headers.get("authorization"), "Bearer tok-secret");
    assertEquals(r.headers.get("x-tenant"), "t1");
    assertEquals(r.url, `http://127.0.0.1:${rx.port}/ingest?source=vmq`);
  }
  assert(!stderr.includes("tok-secret"), stderr);
});

Deno.test("http: format=protobuf POSTs the length-prefixed frames exactly as received", async () => {
  await using rx = startReceiver();
  const s = await runOutputs([`http://127.0.0.1:${rx.port}/raw?format=protobuf&concurrency=1`]);
  await sendChunks(s.port, [fixtureStream().bytes]);
  const want = events();
  const frames = () => {
    const out: Uint8Array[] = [];
    for (const r of rx.requests) {
      assertEquals(r.headers.get("content-type"), "application/x-protobuf");
      const dv = new DataView(r.body.buffer, r.body.byteOffset, r.body.length);
      for (let p = 0; p < r.body.length;) {
        const n = dv.getUint32(p);
        out.push(r.body.subarray(p, p + 4 + n));
        p += 4 + n;
      }
    }
    return out;
  };
  await waitFor(() => frames().length >= want.length, "all frames");
  await stopOutputs(s);
  assertEquals(concat(frames()), concat(want.map((v) => v.wire)));
});

Deno.test("http: 500 and 429 are retried (Retry-After honoured) with the same batch and key; delivered once", async () => {
  // First request: 500; second: 429 with Retry-After: 2; then 204.
  await using rx = startReceiver((i) =>
    i === 0
      ? new Response("boom", { status: 500 })
      : i === 1
      ? new Response("slow down", { status: 429, headers: { "retry-after": "2" } })
      : ok()
  );
  const s = await runOutputs([`http://127.0.0.1:${rx.port}/?linger_ms=0`]);
  await sendChunks(s.port, distinctFrames("h", 5));
  await waitFor(() => accepted(rx.requests).length >= 5, "5 events accepted");
  const stderr = await stopOutputs(s);
  const [a, b, c] = rx.requests;
  assertEquals([a.status, b.status, c.status], [500, 429, 204]);
  assertEquals(b.body, a.body, "the retry sends the same batch");
  assertEquals(c.body, a.body, "the retry sends the same batch");
  assertEquals(c.headers.get("idempotency-key"), a.headers.get("idempotency-key"));
  assert(c.at - b.at >= 1900, `retried ${Math.round(c.at - b.at)} ms after a Retry-After of 2 s`);
  assertEquals(accepted(rx.requests).map((e) => e.client_id), [0, 1, 2, 3, 4].map((i) => `h-${i}`));
  assertEquals(rx.requests.length, 3);
  assert(/HTTP 500/.test(stderr), stderr);
});

Deno.test("http: a 400 puts the batch in the dead-letter file (counted), later batches go on", async () => {
  const dir = await sidecarTempDir();
  const deadLetter = `${dir}/dead.ndjson`;
  await using rx = startReceiver((i) =>
    i === 0 ? new Response('{"error":"bad tenant"}', { status: 400 }) : ok()
  );
  const s = await runOutputs([
    `http://127.0.0.1:${rx.port}/?batch_events=10&linger_ms=0&concurrency=1&dead_letter=${deadLetter}`,
  ]);
  const n = 50;
  await sendChunks(s.port, distinctFrames("d", n));
  const dead = () => {
    try {
      return jsonLines(Deno.readTextFileSync(deadLetter));
    } catch {
      return [];
    }
  };
  const deadEvents = () => dead().flatMap((r) => jsonLines(r.body));
  await waitFor(
    () => accepted(rx.requests).length + deadEvents().length >= n,
    "every event accepted or dead-lettered",
  );
  const stderr = await stopOutputs(s);
  const records = dead();
  assertEquals(records.length, 1);
  const r = records[0];
  assertEquals(r.status, 400);
  assertEquals(r.output, `http://127.0.0.1:${rx.port}`);
  assertEquals(r.response, '{"error":"bad tenant"}');
  assertEquals(r.content_type, "application/x-ndjson");
  assertEquals(r.events, jsonLines(r.body).length);
  assertEquals(rx.requests[0].body, new TextEncoder().encode(r.body), "the refused body as sent");
  const ids = [...deadEvents(), ...accepted(rx.requests)].map((e) => e.client_id);
  assertEquals(ids, Array.from({ length: n }, (_, i) => `d-${i}`), "all, once, in order");
  assert(/refused \(HTTP 400/.test(stderr), stderr);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("http: receiver down at start, then stopped mid-stream and restarted: every event at least once; no query in logs", async () => {
  const port = freePort();
  const s = await runOutputs([
    `http://127.0.0.1:${port}/?batch_events=50&linger_ms=0&query.key=qs-secret`,
  ]);
  const n = 3000;
  const frames = distinctFrames("x", n);
  await sendChunks(s.port, frames.slice(0, 100));
  await waitFor(() => /cannot reach the server/.test(s.stderr()), "a connection failure");
  await using rx = startReceiver(ok, port);
  const sending = (async () => {
    for (let i = 100; i < n / 2; i += 50) await sendChunks(s.port, frames.slice(i, i + 50));
  })();
  await waitFor(() => accepted(rx.requests).length >= 300, "some events");
  await rx.stop();
  await sending;
  await sendChunks(s.port, frames.slice(n / 2));
  await new Promise((r) => setTimeout(r, 500)); // let a few retries fail
  rx.start();
  const distinct = () => new Set(accepted(rx.requests).map((e) => e.client_id));
  await waitFor(() => distinct().size >= n, `${n} distinct events`, 60_000);
  const stderr = await stopOutputs(s);
  const all = accepted(rx.requests);
  const got = distinct();
  for (let i = 0; i < n; i++) assert(got.has(`x-${i}`), `x-${i} missing`);
  console.log(`http restart: ${all.length} events received for ${n}, ${all.length - n} duplicates`);
  assert((stderr.match(/cannot reach the server/g)?.length ?? 0) <= 2, stderr);
  assert(/Connection refused/.test(stderr), stderr);
  assert(!stderr.includes("qs-secret"), "the URL's query is not logged");
});

Deno.test("http: bad options exit 2 with one line naming the option", async () => {
  const bad: [string, RegExp][] = [
    [
      "http://127.0.0.1:9/?header.Content-Type=text/plain",
      /header\.Content-Type: Content-Type is set by the sidecar/,
    ],
    ["http://127.0.0.1:9/?header.Bad%20Name=x", /invalid header name "Bad Name"/],
    [
      "http://127.0.0.1:9/?header_env.Authorization=SECRET_X",
      /header_env\.Authorization: .*rename SECRET_X/,
    ],
    [
      "http://127.0.0.1:9/?headers=x",
      /headers: unknown option for http output; accepted: timeout_ms,.*header\.NAME/,
    ],
    ["http://127.0.0.1:9/?batch_events=0", /batch_events: expected a whole number from 1/],
    ["http://127.0.0.1:9/?linger_ms=forever", /linger_ms: expected a whole number/],
    ["http://127.0.0.1:9/?tls_ca=/x.pem", /tls_ca: tls_ca needs an https:\/\/ URL/],
  ];
  for (const [out, message] of bad) {
    const r = await runSidecar(["--listen", "127.0.0.1:0", "--out", out]);
    assertEquals(r.code, 2, `${out}: ${r.stderr}`);
    assertEquals(r.stderr.trimEnd().split("\n").length, 1, r.stderr);
    assert(message.test(r.stderr), `${out}: ${r.stderr}`);
  }
});

Deno.test("http: https with tls_ca verifies the receiver against that CA", async () => {
  const dir = await sidecarTempDir();
  const tls = await makeCertificates(dir);
  await using rx = startReceiver(ok, 0, tls);
  const s = await runOutputs([`https://127.0.0.1:${rx.port}/secure?tls_ca=${tls.ca}&linger_ms=0`]);
  await sendChunks(s.port, distinctFrames("t", 20));
  await waitFor(() => accepted(rx.requests).length >= 20, "20 events over TLS");
  const stderr = await stopOutputs(s);
  assert(stderr.includes(`https://127.0.0.1:${rx.port}/secure`), stderr);
  assertEquals(
    accepted(rx.requests).map((e) => e.client_id),
    Array.from({ length: 20 }, (_, i) => `t-${i}`),
  );
  await Deno.remove(dir, { recursive: true });
});

// NATS JetStream output, end to end: the real main.ts (default permissions) receives the
// fixture frames over TCP and publishes them to a real nats-server -js; the test reads the
// stream back with the NATS client library.
import { assert, assertEquals } from "./_assert.ts";
import { eventBody, fixtureVectors, frameOf, toOurJson, type Vector } from "./_vectors.ts";
import { runSidecar, sendChunks, sidecarTempDir, waitFor } from "./_sidecar.ts";
import { fixtureStream, scrape, spawnSidecar } from "./_ops.ts";
import { valueOf } from "./_prom.ts";
import { connect } from "@nats-io/transport-node";
import {
  addStream,
  distinctFrames,
  makeCertificates,
  natsClient,
  runOutputs,
  sha256Id,
  startNats,
  stopOutputs,
  type StoredEvent,
  streamCount,
  streamEvents,
} from "./_servers.ts";

const events = (): Vector[] => fixtureVectors().filter((v) => v.expected.hook !== null);
const utf8 = new TextDecoder();

/** The subject-token escaping as docs/outputs.md states it, written independently. */
function escapeToken(v: string): string {
  if (v === "") return "%";
  let out = "";
  for (const ch of v) {
    if (/[%.*>\s]/u.test(ch) || /\p{Cc}/u.test(ch)) {
      for (const b of new TextEncoder().encode(ch)) {
        out += "%" + b.toString(16).toUpperCase().padStart(2, "0");
      }
    } else out += ch;
  }
  return out;
}

Deno.test("nats: every fixture event arrives once, in order, with subject vmq.events.<hook>, JSON body and Nats-Msg-Id", async () => {
  await using nats = await startNats();
  const sidecar = await runOutputs([`nats://127.0.0.1:${nats.port}?create_stream=VMQ`]);
  const nc = await natsClient(nats.port);
  try {
    const stream = fixtureStream();
    await sendChunks(sidecar.port, [stream.bytes]);
    const want = events();
    assertEquals(want.length, stream.events);
    await waitFor(async () => await streamCount(nc, "VMQ") >= want.length, "all events in VMQ");
    const stderr = await stopOutputs(sidecar);
    const got = await streamEvents(nc, "VMQ");
    assertEquals(got.length, want.length, "exactly one message per event");
    for (const [i, v] of want.entries()) {
      const m = got[i];
      assertEquals(m.subject, `vmq.events.${v.expected.hook}`, v.name);
      assertEquals(JSON.parse(utf8.decode(m.data)), toOurJson(v.expected), v.name);
      assertEquals(m.msgId, await sha256Id(v.body), v.name);
    }
    assert(/created stream VMQ for vmq\.events\.\*/.test(stderr), stderr);
  } finally {
    await nc.close();
  }
});

Deno.test("nats: format=protobuf publishes the Any bytes unchanged (round trip)", async () => {
  await using nats = await startNats();
  const nc = await natsClient(nats.port);
  try {
    await addStream(nc, "RAW", ["raw.>"]);
    const sidecar = await runOutputs([
      `nats://127.0.0.1:${nats.port}?format=protobuf&subject=raw.{hook}`,
    ]);
    await sendChunks(sidecar.port, [fixtureStream().bytes]);
    const want = events();
    await waitFor(async () => await streamCount(nc, "RAW") >= want.length, "all events in RAW");
    await stopOutputs(sidecar);
    const got = await streamEvents(nc, "RAW");
    assertEquals(got.length, want.length);
    for (const [i, v] of want.entries()) {
      assertEquals(got[i].subject, `raw.${v.expected.hook}`, v.name);
      assertEquals(got[i].data, v.body, v.name);
    }
  } finally {
    await nc.close();
  }
});

Deno.test("nats: {mountpoint} and {client_id} are escaped reversibly into single subject tokens", async () => {
  await using nats = await startNats();
  const nc = await natsClient(nats.port);
  try {
    await addStream(nc, "BYCLIENT", ["c.>"]);
    const template = fixtureVectors().find((v) => v.name === "001_on_register_typical")!;
    const odd = ["a.b c*>%", "", "tab\there", "ünï.cödé", "%2E", "new\nline", "x\u00a0y"];
    const crafted = odd.map((id, i) =>
      frameOf(eventBody("on_register", {
        ...template.expected.event,
        mountpoint: i % 2 ? "" : `mp.${i}`,
        client_id: id,
      }))
    );
    const sidecar = await runOutputs([
      `nats://127.0.0.1:${nats.port}?subject=c.{mountpoint}.{client_id}.{hook}`,
    ]);
    const fixtures = events();
    await sendChunks(sidecar.port, [fixtureStream().bytes, ...crafted]);
    const total = fixtures.length + crafted.length;
    await waitFor(async () => await streamCount(nc, "BYCLIENT") >= total, "all events");
    await stopOutputs(sidecar);
    const got = await streamEvents(nc, "BYCLIENT");
    assertEquals(got.length, total);
    const expected = [
      ...fixtures.map((v) => v.expected.event!),
      ...odd.map((id, i) => ({ mountpoint: i % 2 ? "" : `mp.${i}`, client_id: id })),
    ];
    const hooks = [...fixtures.map((v) => v.expected.hook!), ...odd.map(() => "on_register")];
    got.forEach((m: StoredEvent, i) => {
      const e = expected[i];
      assertEquals(
        m.subject,
        `c.${escapeToken(e.mountpoint)}.${escapeToken(e.client_id)}.${hooks[i]}`,
        `event ${i}`,
      );
      // Reversible: four tokens, each decoding back to the value.
      const tokens = m.subject.split(".");
      assertEquals(tokens.length, 4, m.subject);
      const unescape = (t: string) => (t === "%" ? "" : decodeURIComponent(t));
      assertEquals([unescape(tokens[1]), unescape(tokens[2])], [e.mountpoint, e.client_id]);
    });
  } finally {
    await nc.close();
  }
});

Deno.test("nats: server stopped mid-stream and restarted: every event stored exactly once (Nats-Msg-Id dedupe)", async () => {
  await using nats = await startNats();
  const nc = await natsClient(nats.port);
  try {
    await addStream(nc, "EV", ["vmq.events.>"]);
    const sidecar = await runOutputs([`nats://127.0.0.1:${nats.port}`]);
    const n = 4000;
    const frames = distinctFrames("r", n);
    // First half in small writes; stop the server while the sidecar is publishing.
    const first = frames.slice(0, n / 2);
    const sending = (async () => {
      for (let i = 0; i < first.length; i += 50) {
        await sendChunks(sidecar.port, first.slice(i, i + 50));
      }
    })();
    await waitFor(async () => await streamCount(nc, "EV") >= 200, "some events stored");
    await nats.stop();
    await sending;
    // Second half while the server is down: the sidecar's queue keeps them.
    await sendChunks(sidecar.port, frames.slice(n / 2));
    await new Promise((r) => setTimeout(r, 500)); // let a few retries fail
    await nats.start();
    await waitFor(async () => await streamCount(nc, "EV") >= n, `${n} events stored`, 60_000);
    const stderr = await stopOutputs(sidecar);
    const got = await streamEvents(nc, "EV");
    const ids = got.map((m) => JSON.parse(utf8.decode(m.data)).client_id as string);
    assertEquals(got.length, n, "stored messages (duplicates would make this larger)");
    assertEquals(new Set(ids).size, n, "distinct events");
    const distinct = new Set(ids);
    for (let i = 0; i < n; i++) assert(distinct.has(`r-${i}`), `r-${i} missing`);
    // Logged once per state change, not per event or per retry.
    const failed = stderr.match(/failed, retrying/g)?.length ?? 0;
    const recovered = stderr.match(/recovered after/g)?.length ?? 0;
    assert(
      failed >= 1 && failed === recovered,
      `failed ${failed}, recovered ${recovered}:\n${stderr}`,
    );
    assert(failed <= 3, `too many failure logs (${failed}):\n${stderr}`);
  } finally {
    await nc.close();
  }
});

for (const limit of ["the server's max_payload", "the stream's max_msg_size"]) {
  Deno.test(`nats: an event above ${limit} goes to the dead-letter file, the rest to the stream`, async () => {
    const serverLimit = limit.includes("max_payload");
    await using nats = await startNats(serverLimit ? { config: "max_payload: 1024\n" } : {});
    const dir = await sidecarTempDir();
    const nc = await natsClient(nats.port);
    try {
      await addStream(nc, "EV", ["vmq.events.>"], serverLimit ? {} : { max_msg_size: 1024 });
      const deadLetter = `${dir}/dead.ndjson`;
      const sidecar = await runOutputs([`nats://127.0.0.1:${nats.port}?dead_letter=${deadLetter}`]);
      await sendChunks(sidecar.port, [fixtureStream().bytes]);
      const want = events();
      const dead = () => {
        try {
          return Deno.readTextFileSync(deadLetter).split("\n").filter(Boolean).map((l) =>
            JSON.parse(l)
          );
        } catch {
          return [];
        }
      };
      await waitFor(
        async () => await streamCount(nc, "EV") + dead().length >= want.length,
        "every event stored or dead-lettered",
      );
      await stopOutputs(sidecar);
      const stored = (await streamEvents(nc, "EV")).map((m) => JSON.parse(utf8.decode(m.data)));
      const refused = dead();
      assert(refused.length >= 1, "some fixture events exceed 1024 bytes");
      for (const r of refused) {
        assertEquals(r.events, 1);
        assertEquals(r.content_type, "application/x-ndjson");
        assertEquals(r.output, `nats://127.0.0.1:${nats.port}`);
        assert(/max_payload|max_msg_size/.test(r.reason), r.reason);
        assert(new TextEncoder().encode(r.body).length > 900, "only large events are refused");
        assert(r.body.endsWith("\n"));
      }
      const all = [...stored, ...refused.map((r) => JSON.parse(r.body))];
      assertEquals(all.length, want.length, "nothing lost, nothing twice");
      const key = (e: unknown): string =>
        JSON.stringify(
          e,
          (_, v) =>
            v && typeof v === "object" && !Array.isArray(v)
              ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : 1)))
              : v,
        );
      assertEquals(
        new Set(all.map(key)),
        new Set(want.map((v) => key(toOurJson(v.expected)))),
      );
    } finally {
      await nc.close();
      await Deno.remove(dir, { recursive: true });
    }
  });
}

Deno.test("nats: token and user/password come from VMQ_SIDECAR_* variables; no secret in names or logs", async () => {
  const token = "tok-3c1f-secret", password = "pw-9a7e-secret";
  for (
    const [args, query, env] of [
      [["--auth", token], "token_env=VMQ_SIDECAR_NATS_TOKEN", { VMQ_SIDECAR_NATS_TOKEN: token }],
      [
        ["--user", "relay", "--pass", password],
        "user=relay&password_env=VMQ_SIDECAR_NATS_PASSWORD",
        { VMQ_SIDECAR_NATS_PASSWORD: password },
      ],
    ] as const
  ) {
    await using nats = await startNats({ args: [...args] });
    const nc = await connect({
      servers: `127.0.0.1:${nats.port}`,
      ...(args[0] === "--auth" ? { token } : { user: "relay", pass: password }),
    });
    try {
      await addStream(nc, "EV", ["vmq.events.>"]);
      const sidecar = await runOutputs([`nats://127.0.0.1:${nats.port}?${query}`], {
        flags: ["--log-level", "debug"],
        env,
      });
      const frames = distinctFrames("a", 10);
      await sendChunks(sidecar.port, frames);
      await waitFor(async () => await streamCount(nc, "EV") >= 10, "10 events stored");
      const stderr = await stopOutputs(sidecar);
      assert(!stderr.includes("secret"), stderr);
      assert(stderr.includes(`nats://127.0.0.1:${nats.port}`), stderr);
    } finally {
      await nc.close();
    }
  }
});

const BAD_NATS: [string, RegExp][] = [
  [
    "nats://127.0.0.1:4222?subject=vmq.*.{hook}",
    /subject: "vmq\.\*\.\{hook\}" is not a valid subject/,
  ],
  ["nats://127.0.0.1:4222?subject=vmq..{hook}", /subject: .* is not a valid subject/],
  ["nats://127.0.0.1:4222?subject=vmq.{topic}", /subject: unknown placeholder \{topic\}/],
  ["nats://127.0.0.1:4222?stream=x", /stream: unknown option for nats output; accepted: subject,/],
  [
    "nats://127.0.0.1:4222?token_env=HOME",
    /token_env: .*only environment variables named VMQ_SIDECAR_\*; rename HOME/,
  ],
  [
    "nats://127.0.0.1:4222?token_env=VMQ_SIDECAR_UNSET_91",
    /token_env: environment variable VMQ_SIDECAR_UNSET_91 is not set/,
  ],
  ["nats://127.0.0.1:4222?password=x", /password: a password needs user=NAME/],
  ["nats://127.0.0.1:4222?create_stream=a.b", /create_stream: expected a stream name/],
  ["nats://127.0.0.1:4222/sub", /a nats:\/\/ URL has no path/],
  ["nats://127.0.0.1:4222?ack_timeout_ms=5", /ack_timeout_ms: expected a whole number from 100/],
];

Deno.test("nats: bad options exit 2 with one line naming the option", async () => {
  for (const [out, message] of BAD_NATS) {
    const r = await runSidecar(["--listen", "127.0.0.1:0", "--out", out]);
    assertEquals(r.code, 2, `${out}: ${r.stderr}`);
    assertEquals(r.stderr.trimEnd().split("\n").length, 1, r.stderr);
    assert(message.test(r.stderr), `${out}: ${r.stderr}`);
  }
});

Deno.test("nats: a dead_letter path outside the permitted directories fails at startup (exit 1, names --allow-write)", async () => {
  const r = await runSidecar([
    "--listen",
    "127.0.0.1:0",
    "--out",
    "nats://127.0.0.1:4222?dead_letter=/root/dead.ndjson",
  ]);
  assertEquals(r.code, 1, r.stderr);
  assert(/dead-letter file \/root\/dead\.ndjson.*--allow-write/s.test(r.stderr), r.stderr);
});

Deno.test("nats: TLS: tls_ca verifies the server against that CA; without it the certificate is refused", async () => {
  const dir = await sidecarTempDir();
  const tls = await makeCertificates(dir);
  await using nats = await startNats({
    args: ["--tls", "--tlscert", tls.cert, "--tlskey", tls.key],
  });
  const nc = await natsClient(nats.port, tls);
  try {
    await addStream(nc, "EV", ["vmq.events.>"]);
    const untrusted = await runOutputs([`nats://127.0.0.1:${nats.port}?tls=true`], {
      flags: ["--shutdown-grace", "200"],
    });
    await sendChunks(untrusted.port, distinctFrames("u", 3));
    await waitFor(() => /failed, retrying/.test(untrusted.stderr()), "a refused connection");
    untrusted.kill("SIGTERM");
    const u = await untrusted.wait();
    assert(/certificate/i.test(u.stderr), u.stderr);
    assertEquals(await streamCount(nc, "EV"), 0);

    const s = await runOutputs([`nats://127.0.0.1:${nats.port}?tls_ca=${tls.ca}`]);
    await sendChunks(s.port, distinctFrames("t", 20));
    await waitFor(async () => await streamCount(nc, "EV") >= 20, "20 events over TLS");
    await stopOutputs(s);
    const ids = (await streamEvents(nc, "EV")).map((m) =>
      JSON.parse(utf8.decode(m.data)).client_id
    );
    assertEquals(ids, Array.from({ length: 20 }, (_, i) => `t-${i}`));
  } finally {
    await nc.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("nats: no stream captures the subject: retried (logged once, naming the subject) until one exists; nothing lost", async () => {
  await using nats = await startNats();
  const nc = await natsClient(nats.port);
  try {
    const s = await runOutputs([`nats://127.0.0.1:${nats.port}`]);
    await sendChunks(s.port, distinctFrames("s", 500));
    await waitFor(
      () => /no JetStream stream captures subject vmq\.events\.on_publish/.test(s.stderr()),
      "the missing stream reported",
    );
    await addStream(nc, "LATE", ["vmq.events.>"]);
    await waitFor(async () => await streamCount(nc, "LATE") >= 500, "500 events in LATE");
    const stderr = await stopOutputs(s);
    const ids = (await streamEvents(nc, "LATE")).map((m) =>
      JSON.parse(utf8.decode(m.data)).client_id
    );
    assertEquals(ids, Array.from({ length: 500 }, (_, i) => `s-${i}`));
    assertEquals(stderr.match(/no JetStream stream captures/g)?.length, 1, stderr);
  } finally {
    await nc.close();
  }
});

Deno.test("nats: a batch retried after a partial failure is stored once (Nats-Msg-Id dedupe, deterministic)", async () => {
  // on_publish has a stream from the start; on_deliver gets one only after the batch was
  // retried at least twice: every retry publishes the on_publish events again.
  await using nats = await startNats();
  const nc = await natsClient(nats.port);
  const s = await spawnSidecar([
    "--listen",
    "127.0.0.1:0",
    "--admin",
    "127.0.0.1:0",
    "--out",
    `nats://127.0.0.1:${nats.port}`,
  ], { stdout: "null" });
  try {
    await addStream(nc, "PUB", ["vmq.events.on_publish"]);
    const n = 200;
    const frames = distinctFrames("p", n).flatMap((f, i) => [
      f,
      frameOf(eventBody("on_deliver", {
        timestamp: { seconds: 1700000000, nanos: i },
        client_id: `d-${i}`,
        topic: "a/b",
        matched_acl: { name: "", pattern: "" },
      })),
    ]);
    await sendChunks(s.port, frames);
    const name = `nats://127.0.0.1:${nats.port}`;
    await waitFor(
      async () =>
        (valueOf(await scrape(s.adminPort), "vmq_sidecar_output_retries_total", { output: name }) ??
          0) >= 2,
      "two retries",
    );
    // The failing batch's on_publish events were stored by its first attempt and published
    // again by each retry. (Reads hold at most 64 KiB, so the frames may span several batches:
    // only the first batch has been attempted yet.)
    const stored = await streamCount(nc, "PUB");
    assert(stored > 0 && stored <= n, `the first attempt stored on_publish events (${stored})`);
    await addStream(nc, "DEL", ["vmq.events.on_deliver"]);
    await waitFor(async () => await streamCount(nc, "DEL") >= n, "on_deliver events stored");
    s.kill("SIGTERM");
    const r = await s.wait();
    assertEquals(r.code, 0, r.stderr);
    assertEquals(await streamCount(nc, "PUB"), n, "retries stored nothing twice");
    const pub = (await streamEvents(nc, "PUB")).map((m) =>
      JSON.parse(utf8.decode(m.data)).client_id
    );
    assertEquals(pub, Array.from({ length: n }, (_, i) => `p-${i}`));
  } finally {
    await nc.close();
  }
});

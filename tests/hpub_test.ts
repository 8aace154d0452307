// NATS protocol writer and ack tracker (lib/outputs/nats/_hpub.ts) against a real nats-server
// with JetStream: HpubEncoder's messages over a plain TCP socket (CONNECT, SUB, HPUB — no
// client library) stored exactly as today's NatsSink (the real main.ts) stores them, acks
// counted by AckTracker, deduplication by Nats-Msg-Id, "no responders", and the server
// protocol reader fed random chunks.
import { assert, assertEquals, assertThrows } from "./_assert.ts";
import { fixtureStream } from "./_ops.ts";
import { concat, eventBody, fixtureVectors, frameOf, mulberry32 } from "./_vectors.ts";
import { sendChunks, waitFor } from "./_sidecar.ts";
import {
  addStream,
  distinctFrames,
  natsClient,
  runOutputs,
  sha256Id,
  startNats,
  stopOutputs,
  streamCount,
  streamEvents,
} from "./_servers.ts";
import {
  ACKED,
  AckTracker,
  ByteBuffer,
  FAILED,
  HpubEncoder,
  NameTemplate,
  NatsOpReader,
  NatsProtocolError,
  writeFrameJsonCode,
} from "../lib/internal.ts";

const enc = new TextEncoder();
const INBOX = "_INBOX.relaytest";

function testStream(): { bytes: Uint8Array; count: number; events: number } {
  const template = fixtureVectors().find((v) => v.name === "027_on_publish_typical")!;
  const sized = [0, 5, 500, 700, 2000, 9000, 3].map((n, i) =>
    frameOf(eventBody("on_publish", {
      ...template.expected.event,
      client_id: `sized-${i}`,
      payload: new Uint8Array(n).fill(0x61 + i),
    }))
  );
  const bytes = concat([fixtureStream().bytes, ...distinctFrames("hpub", 40), ...sized]);
  let count = 0, events = 0;
  const dv = new DataView(bytes.buffer, bytes.byteOffset);
  for (let p = 0; p < bytes.length; count++) {
    const n = dv.getUint32(p);
    if (writeFrameJsonCode(new ByteBuffer(), bytes.subarray(p + 4, p + 4 + n), "base64") >= 0) {
      events++;
    }
    p += 4 + n;
  }
  return { bytes, count, events };
}

/** A bare protocol connection: CONNECT with headers, SUB to the inbox, acks into `tracker`. */
async function rawConnection(port: number, tracker: AckTracker) {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const errors: string[] = [];
  const write = async (b: Uint8Array) => {
    for (let p = 0; p < b.length;) p += await conn.write(b.subarray(p));
  };
  const reader = new NatsOpReader({
    msg: (buf, s, e, status, ds, de) => tracker.ack(buf, s, e, status, ds, de),
    ping: () => void write(enc.encode("PONG\r\n")).catch(() => {}),
    error: (m) => errors.push(m),
  });
  const reading = (async () => {
    const buf = new Uint8Array(65536);
    try {
      for (let n; (n = await conn.read(buf)) !== null;) reader.push(buf.subarray(0, n));
    } catch { /* closed */ }
  })();
  await write(enc.encode(
    'CONNECT {"verbose":false,"pedantic":false,"headers":true,"no_responders":true,"protocol":1}\r\n' +
      `SUB ${INBOX}.* 1\r\n`,
  ));
  return {
    write,
    errors,
    async close() {
      conn.close();
      await reading;
    },
  };
}

/** Publishes `batch` as generation `gen` and waits (bounded) for every ack. */
async function publish(
  c: Awaited<ReturnType<typeof rawConnection>>,
  tracker: AckTracker,
  e: HpubEncoder,
  batch: { bytes: Uint8Array; count: number },
  gen: number,
): Promise<number> {
  const out = new ByteBuffer(256);
  tracker.begin(gen, batch.count);
  const n = e.encode(batch, gen, out);
  await c.write(out.bytes());
  tracker.issued(n);
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([
    tracker.done,
    new Promise<void>((resolve) => timer = setTimeout(resolve, 15_000)),
  ]);
  clearTimeout(timer);
  assertEquals(tracker.settled, n, `acks for generation ${gen} (errors: ${c.errors})`);
  return n;
}

Deno.test("HpubEncoder: the same messages (subject, body, Nats-Msg-Id) as NatsSink (main.ts) for the same frames; AckTracker counts every ack; a resend is deduplicated", async () => {
  await using nats = await startNats();
  const nc = await natsClient(nats.port);
  try {
    const batch = testStream();
    await addStream(nc, "NEW", ["new.>"]);
    const s = await runOutputs([
      `nats://127.0.0.1:${nats.port}?create_stream=OLD&subject=old.{hook}`,
    ]);
    await sendChunks(s.port, [batch.bytes]);
    await waitFor(async () => await streamCount(nc, "OLD") >= batch.events, "sink");
    await stopOutputs(s);

    const tracker = new AckTracker(INBOX);
    const c = await rawConnection(nats.port, tracker);
    const e = new HpubEncoder("test", {
      format: "json",
      payload: "base64",
      subject: new NameTemplate("subject", "new.{hook}"),
    });
    e.inbox = INBOX;
    try {
      const n = await publish(c, tracker, e, batch, 1);
      assertEquals(n, batch.events);
      assertEquals(tracker.failures, 0, tracker.firstError);
      assert([...tracker.state.subarray(0, n)].every((s) => s === ACKED));
      // The same batch again (a retry): acknowledged as duplicates, nothing stored twice.
      await publish(c, tracker, e, batch, 2);
      assertEquals(tracker.failures, 0, tracker.firstError);
      assertEquals(await streamCount(nc, "NEW"), batch.events);
      // An ack of the earlier generation is ignored.
      const late = enc.encode(`${INBOX}.1_0`);
      tracker.begin(3, 1);
      tracker.ack(late, 0, late.length, 0, 0, 0);
      assertEquals(tracker.settled, 0);
    } finally {
      await c.close();
    }
    const old = await streamEvents(nc, "OLD"), mine = await streamEvents(nc, "NEW");
    assertEquals(mine.length, old.length);
    for (let i = 0; i < old.length; i++) {
      assertEquals(mine[i].subject, old[i].subject.replace(/^old\./, "new."), `#${i}`);
      assertEquals(mine[i].msgId, old[i].msgId, `#${i}`);
      assertEquals(mine[i].data, old[i].data, `#${i}`);
    }
    const first = await sha256Id(distinctFrames("hpub", 1)[0].subarray(4));
    assert(mine.some((m) => m.msgId === first), "Nats-Msg-Id is the event id");
  } finally {
    await nc.close();
  }
});

Deno.test("AckTracker: publishes to a subject no stream captures settle FAILED with noStream (503 no responders)", async () => {
  await using nats = await startNats();
  const tracker = new AckTracker(INBOX);
  const c = await rawConnection(nats.port, tracker);
  try {
    const e = new HpubEncoder("test", {
      format: "protobuf",
      payload: "base64",
      subject: new NameTemplate("subject", "nostream.{hook}"),
    });
    e.inbox = INBOX;
    const frames = distinctFrames("nr", 5);
    const n = await publish(c, tracker, e, { bytes: concat(frames), count: 5 }, 7);
    assertEquals(n, 5);
    assertEquals(tracker.failures, 5);
    assert(tracker.noStream);
    assert([...tracker.state.subarray(0, 5)].every((s) => s === FAILED));
  } finally {
    await c.close();
  }
});

Deno.test("NatsOpReader: the same operations whatever the chunking (seeded random splits, 300 rounds); garbage is a NatsProtocolError", () => {
  const body = new Uint8Array(200).map((_, i) => (i * 29) & 255); // has CR and LF bytes
  const wire = concat([
    enc.encode('INFO {"server_id":"x","headers":true}\r\nPING\r\n+OK\r\n'),
    enc.encode('MSG _INBOX.a.1_0 1 25\r\n{"stream":"S","seq":1}xyz\r\n'),
    enc.encode("HMSG _INBOX.a.1_1 1 16 16\r\nNATS/1.0 503\r\n\r\n\r\n"),
    enc.encode("msg sub.j 2 reply.to 200\r\n"),
    body,
    enc.encode("\r\n-ERR 'Maximum Payload Violation'\r\nPONG\r\n"),
  ]);
  const run = (chunks: Uint8Array[]) => {
    const got: unknown[] = [];
    const r = new NatsOpReader({
      msg: (buf, s, e, status, ds, de) =>
        got.push([new TextDecoder().decode(buf.subarray(s, e)), status, [...buf.subarray(ds, de)]]),
      ping: () => got.push("PING"),
      error: (m) => got.push(`ERR ${m}`),
      info: (j) => got.push(JSON.parse(j)),
    });
    for (const c of chunks) {
      r.push(c);
      c.fill(0);
    }
    return got;
  };
  const want = run([wire.slice()]);
  assertEquals(want.length, 6);
  assertEquals(want[0], { server_id: "x", headers: true });
  assertEquals(want[1], "PING");
  assertEquals(want[2], ["_INBOX.a.1_0", 0, [...enc.encode('{"stream":"S","seq":1}xyz')]]);
  assertEquals(want[3], ["_INBOX.a.1_1", 503, []]);
  assertEquals(want[4], ["sub.j", 0, [...body]]);
  assertEquals(want[5], "ERR Maximum Payload Violation");
  const rng = mulberry32(29);
  for (let round = 0; round < 300; round++) {
    const chunks: Uint8Array[] = [];
    for (let p = 0; p < wire.length;) {
      const n = 1 + Math.floor(rng() * (round % 2 ? 3 : 50));
      chunks.push(wire.slice(p, p + n));
      p += n;
    }
    assertEquals(run(chunks), want, `round ${round}`);
  }
  const noop = { msg() {}, ping() {}, error() {} };
  assertThrows(() => new NatsOpReader(noop).push(enc.encode("WHAT\r\n")), NatsProtocolError);
  assertThrows(() => new NatsOpReader(noop).push(enc.encode("MSG a 1 x\r\n")), NatsProtocolError);
});

// RESP writer and reader (lib/outputs/redis/_resp.ts): XaddEncoder's commands against what
// today's RedisSink stores (the real main.ts into a real redis-server, read back with XRANGE),
// the encoded bytes parsed back argument by argument, and the reply parser fed random chunks.
import { assert, assertEquals, assertThrows } from "./_assert.ts";
import { fixtureStream } from "./_ops.ts";
import { concat, eventBody, fixtureVectors, frameOf, mulberry32 } from "./_vectors.ts";
import { sendChunks, waitFor } from "./_sidecar.ts";
import {
  distinctFrames,
  redisClient,
  runOutputs,
  sha256Id,
  startRedis,
  stopOutputs,
  xlen,
  xrange,
} from "./_servers.ts";
import {
  ByteBuffer,
  eventId,
  eventIdFast,
  HOOKS,
  NameTemplate,
  RedisPipelineConnection,
  RespError,
  RespProtocolError,
  RespReader,
  type RespValue,
  writeEventId,
  writeFrameJsonCode,
  XaddEncoder,
} from "../lib/internal.ts";

const utf8 = new TextDecoder();
const enc = new TextEncoder();

/** Frames whose JSON bodies cross the 2-, 3- and 4-digit length boundaries. */
function sizedFrames(): Uint8Array[] {
  const template = fixtureVectors().find((v) => v.name === "027_on_publish_typical")!;
  return [0, 1, 5, 40, 300, 520, 560, 700, 760, 2000, 7000, 8000, 3].map((n, i) =>
    frameOf(eventBody("on_publish", {
      ...template.expected.event,
      client_id: `sized-${i}`,
      payload: new Uint8Array(n).fill(0x30 + (i % 10)),
    }))
  );
}

/** A frame stream: every fixture frame (events and non-events), distinct and sized events. */
function testStream(): { bytes: Uint8Array; count: number } {
  const parts = [fixtureStream().bytes, ...distinctFrames("resp", 50), ...sizedFrames()];
  const bytes = concat(parts);
  let count = 0;
  for (let p = 0; p < bytes.length; count++) {
    p += 4 + new DataView(bytes.buffer, bytes.byteOffset + p).getUint32(0);
  }
  return { bytes, count };
}

function anyFrames(batch: { bytes: Uint8Array; count: number }): Uint8Array[] {
  const out: Uint8Array[] = [];
  const dv = new DataView(batch.bytes.buffer, batch.bytes.byteOffset);
  for (let p = 0, i = 0; i < batch.count; i++) {
    const n = dv.getUint32(p);
    out.push(batch.bytes.subarray(p + 4, p + 4 + n));
    p += 4 + n;
  }
  return out;
}

function parseAll(bytes: Uint8Array): RespValue[] {
  const out: RespValue[] = [];
  new RespReader((v) => out.push(v)).push(bytes);
  return out;
}

Deno.test("XaddEncoder: each command parses back to XADD key [MAXLEN ~ N] * hook H id ID event JSON, body lengths across digit boundaries", async () => {
  const batch = testStream();
  for (const maxLen of [0, 5000]) {
    const e = new XaddEncoder("redis://test", {
      format: "json",
      payload: "base64",
      key: new NameTemplate("key", "k:{hook}"),
      maxLen,
    });
    const out = new ByteBuffer(64); // small: the encoder must grow it, also mid-body
    const n = e.encode(batch, out);
    const cmds = parseAll(out.bytes()) as Uint8Array[][];
    assertEquals(cmds.length, n);
    let i = 0;
    for (const frame of anyFrames(batch)) {
      const json = new ByteBuffer(1024);
      const hook = writeFrameJsonCode(json, frame, "base64");
      if (hook < 0) continue;
      const args = cmds[i++].map((a) => utf8.decode(a));
      const cap = maxLen > 0 ? ["MAXLEN", "~", String(maxLen)] : [];
      assertEquals(args, [
        "XADD",
        `k:${HOOKS[hook]}`,
        ...cap,
        "*",
        "hook",
        HOOKS[hook],
        "id",
        await sha256Id(frame),
        "event",
        utf8.decode(json.bytes()),
      ]);
    }
    assertEquals(i, n, "one command per event, none for the frames that are no event");
    assert(n > 60 && n < batch.count, `${n} of ${batch.count}`);
  }
});

Deno.test("XaddEncoder: the same entries as RedisSink (main.ts) for the same frames — JSON with maxlen, protobuf by client_id (XRANGE, byte for byte)", async () => {
  await using redis = await startRedis();
  const client = await redisClient(redis.port);
  try {
    const batch = testStream();
    const base = `redis://127.0.0.1:${redis.port}/0`;
    const s = await runOutputs([
      `${base}?key=old:{hook}&maxlen=100000`,
      `${base}?key=oldp:{client_id}&format=protobuf`,
    ]);
    await sendChunks(s.port, [batch.bytes]);
    const events = anyFrames(batch).filter((f) =>
      writeFrameJsonCode(new ByteBuffer(), f, "base64") >= 0
    )
      .length;
    const total = async (pattern: string) => {
      let sum = 0;
      for (const k of await client.sendCommand(["KEYS", pattern]) as Uint8Array[]) {
        sum += await xlen(client, utf8.decode(k));
      }
      return sum;
    };
    await waitFor(async () => await total("old:*") + await total("oldp:*") >= 2 * events, "sink");
    await stopOutputs(s);

    const conn = await RedisPipelineConnection.connect({
      name: "test",
      host: "127.0.0.1",
      port: redis.port,
      database: 0,
    });
    for (
      const [key, format, maxLen] of [
        ["new:{hook}", "json", 100000],
        ["newp:{client_id}", "protobuf", 0],
      ] as const
    ) {
      const e = new XaddEncoder("test", {
        format,
        payload: "base64",
        key: new NameTemplate("key", key),
        maxLen,
      });
      const out = new ByteBuffer(1024);
      const n = e.encode(batch, out);
      assertEquals(n, events);
      const r = await conn.send(out.bytes(), n).result;
      assert(r.ok && r.errors.length === 0, JSON.stringify(r));
    }
    await conn.close();

    for (const [oldP, newP] of [["old:", "new:"], ["oldp:", "newp:"]]) {
      const keys = (await client.sendCommand(["KEYS", `${oldP}*`]) as Uint8Array[])
        .map((k) => utf8.decode(k).slice(oldP.length)).sort();
      assert(keys.length >= (oldP === "old:" ? 5 : 60), `${keys.length} keys`);
      let entries = 0;
      for (const k of keys) {
        const a = await xrange(client, oldP + k), b = await xrange(client, newP + k);
        assertEquals(b.length, a.length, k);
        for (let i = 0; i < a.length; i++) {
          assertEquals(Object.keys(b[i].fields), Object.keys(a[i].fields), k);
          for (const f of Object.keys(a[i].fields)) {
            assertEquals(b[i].fields[f], a[i].fields[f], `${k} #${i} ${f}`);
          }
        }
        entries += a.length;
      }
      assertEquals(entries, events, oldP);
    }
  } finally {
    client.destroy();
  }
});

Deno.test("RespReader: the same replies whatever the chunking (seeded random splits, 300 rounds), nested arrays, nulls, errors, binary bulk", () => {
  const bin = new Uint8Array(300).map((_, i) => (i * 37) & 255); // has CR and LF bytes
  const wire = concat([
    enc.encode("+OK\r\n$15\r\n1700000000000-0\r\n-WRONGTYPE Operation against a key\r\n"),
    enc.encode(":42\r\n:-7\r\n$-1\r\n*-1\r\n$0\r\n\r\n*0\r\n"),
    enc.encode("*3\r\n$3\r\nabc\r\n*2\r\n:1\r\n-ERR inner\r\n+x\r\n%1\r\n+k\r\n:2\r\n"),
    enc.encode(`$${bin.length}\r\n`),
    bin,
    enc.encode("\r\n"),
  ]);
  const norm = (v: RespValue): unknown =>
    v instanceof RespError
      ? { error: v.message }
      : v instanceof Uint8Array
      ? { bulk: [...v] }
      : Array.isArray(v)
      ? v.map(norm)
      : v;
  const want = parseAll(wire).map(norm);
  assertEquals(want.slice(0, 9), [
    "OK",
    { bulk: [...enc.encode("1700000000000-0")] },
    { error: "WRONGTYPE Operation against a key" },
    42,
    -7,
    null,
    null,
    { bulk: [] },
    [],
  ]);
  assertEquals(want[9], [{ bulk: [97, 98, 99] }, [1, { error: "ERR inner" }], "x"]);
  assertEquals(want[10], ["k", 2]);
  assertEquals(want[11], { bulk: [...bin] });
  const rng = mulberry32(13);
  for (let round = 0; round < 300; round++) {
    const got: unknown[] = [];
    const r = new RespReader((v) => got.push(norm(v)));
    for (let p = 0; p < wire.length;) {
      const n = 1 + Math.floor(rng() * (round % 3 === 0 ? 4 : 64));
      const chunk = wire.slice(p, p + n);
      r.push(chunk);
      chunk.fill(0); // the reader must have copied what it keeps
      p += n;
    }
    assertEquals(got, want, `round ${round}`);
  }
});

Deno.test("RespReader: garbage is a RespProtocolError, a reply past maxPending too", () => {
  assertThrows(() => new RespReader(() => {}).push(enc.encode("?what\r\n")), RespProtocolError);
  assertThrows(() => new RespReader(() => {}).push(enc.encode(":12a\r\n")), RespProtocolError);
  assertThrows(
    () => new RespReader(() => {}).push(enc.encode("$3\r\nabcd\r\n")),
    RespProtocolError,
  );
  const r = new RespReader(() => {}, 1024);
  r.push(enc.encode("$5000\r\n"));
  assertThrows(() => r.push(new Uint8Array(70_000)), RespProtocolError);
});

Deno.test("eventIdFast and writeEventId (the id XaddEncoder and HpubEncoder write) equal WebCrypto's SHA-256 prefix and eventId, 0..300 bytes and 1 MiB", async () => {
  const out = new ByteBuffer(16);
  for (const n of [...Array.from({ length: 301 }, (_, i) => i), 1 << 20]) {
    const data = new Uint8Array(n).map((_, i) => (i * 131 + n * 7) & 255);
    const want = await sha256Id(data);
    assertEquals(eventIdFast(data), want, `${n} bytes`);
    assertEquals(eventId(data), want, `${n} bytes`);
    out.reset();
    out.byte(0x2a);
    writeEventId(out, data.subarray(0)); // a view at offset 0 of its buffer
    assertEquals(utf8.decode(out.bytes()), `*${want}`, `${n} bytes`);
  }
  // A view into a larger buffer (as frames are, inside a batch).
  const big = new Uint8Array(1000).map((_, i) => i & 255);
  assertEquals(eventIdFast(big.subarray(37, 937)), await sha256Id(big.slice(37, 937)));
});

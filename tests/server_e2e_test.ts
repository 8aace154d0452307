// End-to-end: the real main.ts subprocess (product permission set) fed over real TCP.
import { assert, assertEquals } from "./_assert.ts";
import {
  allVectors,
  eventBody,
  fixtureVectors,
  frameOf,
  mulberry32,
  randomChunks,
  toOurJson,
} from "./_vectors.ts";
import { jsonLines, sendChunks, startSidecar } from "./_sidecar.ts";

/** JSON text of an event with map keys sorted (map order is not part of the contract). */
// deno-lint-ignore no-explicit-any
const canon = (v: any) =>
  JSON.stringify(
    v?.user_properties
      ? { ...v, user_properties: Object.fromEntries(Object.entries(v.user_properties).sort()) }
      : v,
  );

/** Per-connection variant of the fixture stream: every event's client_id names its connection. */
function uniqueStream(conn: number) {
  const frames: Uint8Array[] = [];
  const expected: string[] = [];
  for (const [i, v] of fixtureVectors().entries()) {
    if (v.expected.hook === null) {
      frames.push(v.wire); // the empty frame: counted, no line
      continue;
    }
    const event = { ...v.expected.event, client_id: `c${conn}-e${i}` };
    frames.push(frameOf(eventBody(v.expected.hook, event)));
    expected.push(canon(toOurJson({ ...v.expected, event })));
  }
  const bytes = new Uint8Array(frames.reduce((n, f) => n + f.length, 0));
  const starts: number[] = [];
  let at = 0;
  for (const f of frames) {
    starts.push(at);
    bytes.set(f, at);
    at += f.length;
  }
  return { bytes, starts, expected };
}

Deno.test("the whole vector stream (multi-MiB frames included) over one connection arrives complete and in order", async () => {
  const vectors = allVectors();
  const sidecar = await startSidecar(["--listen", "127.0.0.1:0"]);
  const stream = vectors.map((v) => v.wire);
  await sendChunks(sidecar.port, stream);
  sidecar.kill("SIGTERM");
  const { code, stdout, stderr } = await sidecar.wait();
  assertEquals(code, 0, stderr);
  const got = jsonLines(stdout).map(canon);
  const want = vectors.filter((v) => v.expected.hook !== null).map((v) =>
    canon(toOurJson(v.expected))
  );
  assertEquals(got.length, want.length);
  for (let i = 0; i < want.length; i++) {
    assertEquals(got[i].slice(0, 2000), want[i].slice(0, 2000), `line ${i + 1}`);
  }
  assertEquals(got, want);
  assert(/stopped: 156 events .*empty frames 1;/.test(stderr), stderr);
});

Deno.test("100 concurrent connections in random chunkings: every event exactly once, per-connection order kept", async () => {
  const conns = 100;
  const streams = Array.from({ length: conns }, (_, c) => uniqueStream(c));
  const sidecar = await startSidecar(["--listen", "127.0.0.1:0"]);
  await Promise.all(
    streams.map((s, c) =>
      sendChunks(
        sidecar.port,
        randomChunks(s.bytes, mulberry32(1000 + c), { maxChunk: 4096, frameStarts: s.starts }),
      )
    ),
  );
  sidecar.kill("SIGTERM");
  const { code, stdout, stderr } = await sidecar.wait();
  assertEquals(code, 0, stderr);
  const lines = jsonLines(stdout);
  const byConn = new Map<number, string[]>();
  for (const l of lines) {
    const c = Number(/^c(\d+)-/.exec(l.client_id)![1]);
    (byConn.get(c) ?? byConn.set(c, []).get(c)!).push(canon(l));
  }
  assertEquals(lines.length, conns * streams[0].expected.length);
  for (let c = 0; c < conns; c++) {
    assertEquals(byConn.get(c), streams[c].expected, `connection ${c}`);
  }
});

Deno.test("a bad length field cuts only its connection; a parallel connection's events all arrive", async () => {
  const good = uniqueStream(1);
  const bad = uniqueStream(2);
  // Connection 2: three valid frames, then a length field of 4 GiB - 1, then more frames.
  const firstThree = bad.bytes.subarray(0, bad.starts[3]);
  const poison = new Uint8Array([0xff, 0xff, 0xff, 0xff, 1, 2, 3]);
  const sidecar = await startSidecar(["--listen", "127.0.0.1:0", "--max-frame-bytes", "1MiB"]);
  await Promise.all([
    sendChunks(sidecar.port, randomChunks(good.bytes, mulberry32(7), { frameStarts: good.starts })),
    sendChunks(sidecar.port, [firstThree, poison, bad.bytes.subarray(bad.starts[3])]).catch(
      () => {},
    ),
  ]);
  sidecar.kill("SIGTERM");
  const { code, stdout, stderr } = await sidecar.wait();
  assertEquals(code, 0, stderr);
  const lines = jsonLines(stdout).map(canon);
  assertEquals(lines.filter((l) => l.includes('"c1-')), good.expected);
  assertEquals(lines.filter((l) => l.includes('"c2-')), bad.expected.slice(0, 3));
  assert(
    /frame of 4294967295 bytes from 127\.0\.0\.1:\d+ exceeds the maximum of 1048576 bytes/.test(
      stderr,
    ),
    stderr,
  );
  assert(/connection errors: frame_too_large=1;/.test(stderr), stderr);
});

Deno.test("a frame that is not a protobuf Any closes its connection and is counted; the others flow", async () => {
  const good = uniqueStream(3);
  const garbage = frameOf(new Uint8Array([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f])); // length beyond end
  const sidecar = await startSidecar(["--listen", "127.0.0.1:0"]);
  await sendChunks(sidecar.port, [
    good.bytes.subarray(0, good.starts[2]),
    garbage,
    good.bytes.subarray(good.starts[2]),
  ])
    .catch(() => {});
  await sendChunks(sidecar.port, [good.bytes]);
  sidecar.kill("SIGTERM");
  const { code, stdout, stderr } = await sidecar.wait();
  assertEquals(code, 0, stderr);
  assertEquals(jsonLines(stdout).map(canon), [...good.expected.slice(0, 2), ...good.expected]);
  assert(/not a valid protobuf Any/.test(stderr), stderr);
  assert(/malformed 1;/.test(stderr) && /malformed_envelope=1/.test(stderr), stderr);
});

Deno.test("a stream that ends inside a frame: earlier events delivered, the truncation logged and counted", async () => {
  const s = uniqueStream(4);
  const cut = s.starts[5] + 9; // inside frame 5's body
  const sidecar = await startSidecar(["--listen", "127.0.0.1:0"]);
  await sendChunks(sidecar.port, [s.bytes.subarray(0, cut)]);
  await new Promise((r) => setTimeout(r, 200));
  sidecar.kill("SIGTERM");
  const { code, stdout, stderr } = await sidecar.wait();
  assertEquals(code, 0, stderr);
  assertEquals(jsonLines(stdout).map(canon), s.expected.slice(0, 5));
  assert(/ended inside a frame: 9 bytes received, \d+ bytes missing/.test(stderr), stderr);
  assert(/truncated_frame=1/.test(stderr), stderr);
});

Deno.test("SIGTERM right after the senders close loses nothing", async () => {
  const streams = Array.from({ length: 20 }, (_, c) => uniqueStream(100 + c));
  const sidecar = await startSidecar(["--listen", "127.0.0.1:0"]);
  await Promise.all(streams.map((s) => sendChunks(sidecar.port, [s.bytes])));
  sidecar.kill("SIGTERM"); // no pause: the last bytes may still sit in socket buffers
  const { code, stdout, stderr } = await sidecar.wait();
  assertEquals(code, 0, stderr);
  const got = jsonLines(stdout).map(canon).sort();
  assertEquals(got, streams.flatMap((s) => s.expected).sort());
});

Deno.test("--max-connections: connections beyond the limit are closed and counted, the others served", async () => {
  const s = uniqueStream(5);
  const sidecar = await startSidecar(["--listen", "127.0.0.1:0", "--max-connections", "1"]);
  const holder = await Deno.connect({ hostname: "127.0.0.1", port: sidecar.port });
  await holder.write(s.bytes.subarray(0, s.starts[1]));
  // A second connection while the first is open: refused (closed by the sidecar).
  const extra = await Deno.connect({ hostname: "127.0.0.1", port: sidecar.port });
  const eof = await extra.read(new Uint8Array(1)).catch(() => null);
  assertEquals(eof, null);
  extra.close();
  await holder.write(s.bytes.subarray(s.starts[1]));
  holder.close();
  sidecar.kill("SIGTERM");
  const { code, stdout, stderr } = await sidecar.wait();
  assertEquals(code, 0, stderr);
  assertEquals(jsonLines(stdout).map(canon), s.expected);
  assert(/refused connection: 1 connections open/.test(stderr), stderr);
});

Deno.test("an output URL's topic filter keeps + as the MQTT wildcard (not a space)", async () => {
  const s = uniqueStream(6);
  const sidecar = await startSidecar([
    "--listen",
    "127.0.0.1:0",
    "--out",
    "stdout?hooks=on_publish&topics=devices/+/telemetry",
  ]);
  await sendChunks(sidecar.port, [s.bytes]);
  sidecar.kill("SIGTERM");
  const { code, stdout, stderr } = await sidecar.wait();
  assertEquals(code, 0, stderr);
  const want = s.expected.map((l) => JSON.parse(l)).filter((e) =>
    e.hook === "on_publish" && /^devices\/[^/]+\/telemetry$/.test(e.topic)
  );
  assert(want.length >= 2, "the fixtures have matching publishes");
  assertEquals(jsonLines(stdout), want);
});

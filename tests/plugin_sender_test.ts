// PluginSender (lib/testing/plugin_sender.ts): a pool of real TCP connections, each frame on a
// random one. Checked at the receiving sockets (every frame once, per-connection order kept, the
// spread reproducible from the seed), against the real sidecar (main.ts with the start task's
// permissions), and for its close/flush/backpressure/error semantics.
import { assert, assertEquals, assertRejects } from "./_assert.ts";
import { jsonLines, startSidecar } from "./_sidecar.ts";
import { fixtureVectors, toOurJson } from "./_vectors.ts";
import { PluginSender, readFrames, vectorFrames } from "../lib/internal.ts";

/** JSON lines as comparable strings, user_properties in key order (the wire's order is kept). */
const canonicalLines = (text: Uint8Array | string) =>
  jsonLines(text).map((v) =>
    JSON.stringify(
      v?.user_properties
        ? { ...v, user_properties: Object.fromEntries(Object.entries(v.user_properties).sort()) }
        : v,
    )
  );

/** A listener on 127.0.0.1 that reads frames from every connection it accepts. */
function frameCollector() {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const perConn: Uint8Array[][] = [];
  const readers: Promise<void>[] = [];
  const accepting = (async () => {
    for await (const conn of listener) {
      const frames: Uint8Array[] = [];
      perConn.push(frames);
      readers.push((async () => {
        try {
          for await (const f of readFrames(conn)) frames.push(f.slice());
        } finally {
          try {
            conn.close();
          } catch { /* closed by readFrames */ }
        }
      })());
    }
  })().catch(() => {});
  return {
    port: (listener.addr as Deno.NetAddr).port,
    perConn,
    /** Stops accepting and waits until every accepted connection reached EOF. */
    async done(): Promise<void> {
      listener.close();
      await accepting;
      await Promise.all(readers);
    },
  };
}

/** A frame body carrying a sequence number (4 bytes) and padding: what arrived is checkable. */
function seqBody(i: number, size: number): Uint8Array {
  const b = new Uint8Array(size);
  new DataView(b.buffer).setUint32(0, i);
  b.fill(i & 0xff, 4);
  return b;
}
const seqOf = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset).getUint32(0);

Deno.test("PluginSender: every frame arrives once, in order per connection, spread at random over the pool", async () => {
  const spreads: number[][] = [];
  for (const round of [0, 1]) {
    const server = frameCollector();
    const sender = await PluginSender.connect({ port: server.port, connections: 8, seed: 1234 });
    assertEquals(sender.seed, 1234);
    const N = 3000;
    for (let i = 0; i < N; i++) await sender.send(seqBody(i, 8 + (i % 300)));
    await sender.close();
    await server.done();
    assertEquals(server.perConn.length, 8, `round ${round}: connections accepted`);
    const seen = new Set<number>();
    for (const frames of server.perConn) {
      // TCP keeps one connection's frames in the order they were sent.
      for (let k = 1; k < frames.length; k++) assert(seqOf(frames[k - 1]) < seqOf(frames[k]));
      for (const f of frames) {
        const i = seqOf(f);
        assert(!seen.has(i), `frame ${i} twice`);
        seen.add(i);
        assertEquals(f.length, 8 + (i % 300));
      }
    }
    assertEquals(seen.size, N);
    assertEquals(sender.framesWritten, N);
    const spread = sender.framesPerConnection;
    assertEquals(spread.reduce((a, b) => a + b, 0), N);
    // Every connection used, none takes most.
    for (const n of spread) assert(n > N / 8 / 2 && n < N / 8 * 2, `spread ${spread}`);
    // Random, not round robin (never the same twice running) nor sticky (always the same):
    // consecutive frames share a connection about 1 time in 8.
    const connOf: number[] = [];
    server.perConn.forEach((frames, c) => frames.forEach((f) => (connOf[seqOf(f)] = c)));
    let repeats = 0;
    for (let i = 1; i < N; i++) if (connOf[i] === connOf[i - 1]) repeats++;
    assert(repeats > N / 8 / 2 && repeats < N / 8 * 2, `${repeats} repeats of ${N}`);
    // What each socket received is what the sender says it wrote there.
    assertEquals(server.perConn.map((f) => f.length).sort(), [...spread].sort());
    spreads.push(spread);
  }
  assertEquals(spreads[0], spreads[1], "the same seed spreads the frames the same way");
});

Deno.test("PluginSender: the vectors over 20 connections reach the real sidecar, every event once", async () => {
  const sidecar = await startSidecar(["--listen", "127.0.0.1:0", "--admin", "off"]);
  let stdout: Uint8Array, stderr: string, code: number;
  try {
    const sender = await PluginSender.connect({ port: sidecar.port, connections: 20, seed: 7 });
    await sender.sendFrames(vectorFrames());
    await sender.close();
    assertEquals(sender.framesWritten, 150);
  } finally {
    sidecar.kill("SIGTERM");
    ({ code, stdout, stderr } = await sidecar.wait());
  }
  assertEquals(code, 0, stderr);
  const want = fixtureVectors().filter((v) => v.expected.hook !== null)
    .map((v) => JSON.stringify(toOurJson(v.expected)));
  // Across connections the order is not kept: compare as multisets.
  assertEquals(canonicalLines(stdout).sort(), canonicalLines(want.join("\n")).sort());
  assert(/stopped: 149 events .*empty frames 1;/.test(stderr), stderr);
});

Deno.test("PluginSender: send waits at maxQueuedBytes; flush means written; close half-closes and is idempotent", async () => {
  // A peer that does not read at first: the kernel buffers fill, then sends must wait.
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const accepted = listener.accept();
  const max = 256 * 1024, size = 16 * 1024;
  const sender = await PluginSender.connect({
    port: (listener.addr as Deno.NetAddr).port,
    connections: 1,
    maxQueuedBytes: max,
  });
  const peer = await accepted;
  listener.close();
  let peak = 0;
  const total = 600; // 9.6 MiB: more than loopback socket buffers hold
  const sending = (async () => {
    for (let i = 0; i < total; i++) {
      await sender.send(seqBody(i, size));
      peak = Math.max(peak, sender.queuedBytes);
    }
    await sender.flush();
    assertEquals(sender.queuedBytes, 0);
    assertEquals(sender.framesWritten, total, "flush resolves once everything is written");
    await sender.close();
    await sender.close(); // idempotent
  })();
  let got = 0, last = -1;
  for await (const f of readFrames(peer)) {
    assertEquals(seqOf(f), last + 1);
    last = seqOf(f);
    got++;
  }
  peer.close();
  await sending;
  assertEquals(got, total, "EOF (half-close) only after every frame");
  assert(peak <= max + size + 4, `queued ${peak} > ${max} + one frame`);
  await assertRejects(() => sender.send(seqBody(0, 8)), Error);
});

Deno.test("PluginSender: a peer that goes away fails send/flush/close with the socket's error, never unhandled", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const accepted = listener.accept();
  const sender = await PluginSender.connect({
    port: (listener.addr as Deno.NetAddr).port,
    connections: 1,
  });
  (await accepted).close();
  listener.close();
  let failure: unknown;
  for (let i = 0; i < 500 && failure === undefined; i++) {
    try {
      await sender.send(seqBody(i, 16 * 1024));
      await sender.flush();
    } catch (e) {
      failure = e;
    }
  }
  assert(failure instanceof Error, "writing to a closed peer must fail within 500 frames");
  await assertRejects(() => sender.close(), Error);
  await assertRejects(() => PluginSender.connect({ port: 1, connectTimeoutMs: 0 }), Error);
});

Deno.test("PluginSender: close is bounded — a peer that never reads gets its connections closed after timeoutMs", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const accepted = listener.accept();
  const sender = await PluginSender.connect({
    port: (listener.addr as Deno.NetAddr).port,
    connections: 1,
    maxQueuedBytes: 64 << 20,
  });
  const peer = await accepted; // never read
  listener.close();
  try {
    for (let i = 0; i < 400; i++) await sender.send(seqBody(i, 64 * 1024)); // 25 MiB
    await assertRejects(() => sender.flush({ timeoutMs: 100 }), Error);
    const e = await assertRejects(() => sender.close({ timeoutMs: 200 }), Error);
    assert(/bytes not written within 200 ms/.test(e.message), e.message);
    assert(sender.framesWritten < 400);
  } finally {
    peer.close();
  }
});

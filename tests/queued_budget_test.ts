// The global budget of everything the outputs queue in memory (issue 15 item 3,
// --max-queued-bytes): many outputs, each under its own queue_bytes, cannot add up past it — at
// the budget the plugin connections stop being read (backpressure), not growth; drop outputs
// drop beyond half of it, so a dead one never stalls the others. On the real main.ts over real
// TCP with real HTTP receivers and files; plus the buffers' and the router's accounting in
// process.
import { assert, assertEquals } from "./_assert.ts";
import { type Ops, scrape, spawnSidecar } from "./_ops.ts";
import { type Family, valueOf } from "./_prom.ts";
import { jsonLines, sidecarTempDir, waitFor } from "./_sidecar.ts";
import { type Received, startReceiver } from "./_servers.ts";
import { eventBody, fixtureVectors, frameOf } from "./_vectors.ts";
import { defineHandler, loadConfig, Sidecar } from "../lib/mod.ts";
import {
  ByteBuffer,
  DELIVERED,
  Delivery,
  DISPATCH_BACKPRESSURE,
  DISPATCH_OK,
  MemoryBudget,
  MemoryBuffer,
  Router,
  type SendResult,
} from "../lib/internal.ts";

const MIB = 1024 * 1024;

/** VmRSS and VmHWM (peak RSS) of the child, in bytes (through `cat`: Deno reads /proc only with all permissions). */
async function memoryOf(pid: number): Promise<{ rss: number; peak: number }> {
  const out = await new Deno.Command("cat", { args: [`/proc/${pid}/status`], stderr: "null" })
    .output();
  const status = new TextDecoder().decode(out.stdout);
  const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, "m").exec(status)?.[1]);
  return { rss: kb("VmRSS") * 1024, peak: kb("VmHWM") * 1024 };
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let at = 0; at < bytes.length;) at += await conn.write(bytes.subarray(at));
}

/** `n` on_publish frames tagged `tag-i` whose payload is `payload` bytes. */
function frames(tag: string, n: number, payload: number): Uint8Array[] {
  const template = fixtureVectors().find((v) => v.name === "027_on_publish_typical")!;
  return Array.from({ length: n }, (_, i) =>
    frameOf(eventBody("on_publish", {
      ...template.expected.event,
      client_id: `${tag}-${i}`,
      payload: new Uint8Array(payload).fill(0x41 + (i % 26)),
    })));
}

/** One connection writing `all` frames (in 64 KiB writes); `done` once everything is written. */
function sender(port: number, all: readonly Uint8Array[]) {
  let written = 0, done = false;
  const run = (async () => {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    try {
      let pending: Uint8Array[] = [], size = 0;
      const flush = async () => {
        const buf = new Uint8Array(size);
        let at = 0;
        for (const f of pending) buf.set(f, at), at += f.length;
        await writeAll(conn, buf);
        written += size;
        pending = [], size = 0;
      };
      for (const f of all) {
        pending.push(f), size += f.length;
        if (size >= 64 * 1024) await flush();
      }
      if (size > 0) await flush();
      done = true;
    } finally {
      conn.close();
    }
  })();
  return {
    run,
    get written() {
      return written;
    },
    get done() {
      return done;
    },
  };
}

/** Client ids of the events each request path got (2xx answers only). */
function idsByPath(requests: readonly Received[]): Map<string, string[]> {
  const by = new Map<string, string[]>();
  for (const r of requests) {
    if (r.status >= 300) continue;
    const path = new URL(r.url).pathname;
    const ids = by.get(path) ?? [];
    for (const e of jsonLines(r.body)) ids.push(e.client_id);
    by.set(path, ids);
  }
  return by;
}

/** Per-output counters from /metrics. */
function counters(m: Map<string, Family>, output: string) {
  const v = (name: string, labels: Record<string, string> = {}) =>
    valueOf(m, name, { output, ...labels }) ?? 0;
  return {
    received: v("vmq_sidecar_output_events_received_total"),
    sent: v("vmq_sidecar_output_events_sent_total"),
    deadLettered: v("vmq_sidecar_output_events_dead_lettered_total"),
    undecodable: v("vmq_sidecar_output_events_undecodable_total"),
    lost: v("vmq_sidecar_output_events_lost_total", { reason: "dead_letter_failed" }),
    dropped: v("vmq_sidecar_output_events_dropped_total"),
    queued: v("vmq_sidecar_output_queue_events"),
    bytes: v("vmq_sidecar_output_queue_bytes"),
  };
}

function assertAddsUp(c: ReturnType<typeof counters>, what: string): void {
  assertEquals(
    c.sent + c.deadLettered + c.undecodable + c.lost + c.dropped + c.queued,
    c.received,
    `${what}: received = sent + dead-lettered + undecodable + lost + dropped + queued (${
      JSON.stringify(c)
    })`,
  );
}

/** Polls `read` until it gives the same value twice `stableMs` apart (at most `ms`). */
async function settled(read: () => Promise<number>, stableMs: number, ms: number) {
  const until = Date.now() + ms;
  let last = await read();
  while (Date.now() < until) {
    await new Promise((r) => setTimeout(r, stableMs));
    const now = await read();
    if (now === last) return now;
    last = now;
  }
  return last;
}

async function stopped(s: Ops): Promise<{ code: number; stderr: string }> {
  s.kill("SIGTERM");
  const { code, stderr } = await s.wait();
  return { code, stderr };
}

Deno.test("--max-queued-bytes: 8 buffer=memory on_full=block HTTP outputs (queue_bytes 32 MiB each) to a receiver that is down: their queues together stay within the 64 MiB budget, the plugin connection is not read, RSS bounded; once it is back every event arrives exactly once per output, counters add up", async () => {
  const budget = 64 * MIB, outputs = 8, n = 5000, payload = 4096; // 5000 × ~4.4 KiB ≈ 21 MiB
  const receiver = startReceiver();
  const port = receiver.port;
  const paths = Array.from({ length: outputs }, (_, i) => `/o${i}`);
  const names = paths.map((p) => `http://127.0.0.1:${port}${p}`);
  const s = await spawnSidecar([
    "--listen",
    "127.0.0.1:0",
    "--admin",
    "127.0.0.1:0",
    "--payload",
    "omit",
    "--max-queued-bytes",
    `${budget / MIB}MiB`,
    ...names.flatMap((u) => ["--out", `${u}?buffer=memory&queue_bytes=32MiB&on_full=block`]),
  ], { stdout: "null" });
  try {
    // Warm up (code paths, one batch per output), then the receiver goes away.
    const warm = frames("warm", 100, payload);
    await sender(s.port, warm).run;
    await waitFor(
      () =>
        [...idsByPath(receiver.requests).values()].filter((v) => v.length === 100).length ===
          outputs,
      "the warm-up events at every output",
      30_000,
    );
    await receiver.stop();
    const before = await memoryOf(s.proc.pid);

    const load = frames("load", n, payload);
    const total = load.reduce((a, f) => a + f.length, 0);
    const writer = sender(s.port, load);
    writer.run.catch(() => {}); // awaited below
    const queuedSum = async () => {
      const m = await scrape(s.adminPort);
      return names.reduce((a, o) => a + counters(m, o).bytes, 0);
    };
    await waitFor(async () => await queuedSum() >= budget, "the budget full", 30_000);
    const held = await settled(queuedSum, 1000, 30_000);
    const m = await scrape(s.adminPort);
    const after = await memoryOf(s.proc.pid);
    const grown = after.peak - before.peak;
    console.log(
      `queued ${(held / MIB).toFixed(1)} MiB in ${outputs} outputs (budget ${
        budget / MIB
      } MiB); sender wrote ${(writer.written / MIB).toFixed(1)} of ${
        (total / MIB).toFixed(1)
      } MiB; peak RSS +${(grown / MIB).toFixed(0)} MiB; budget waits ${
        valueOf(m, "vmq_sidecar_queued_budget_waits_total")
      }`,
    );
    // At most one read (64 KiB, to every output) over the budget.
    assert(held <= budget + outputs * 256 * 1024, `queued ${held} bytes, budget ${budget}`);
    assert(!writer.done, "the plugin connection is not read while the budget is full");
    // The budget plus overhead: read buffers, chunk slack, allocator (measured +71 MiB; without
    // the budget the queues took 164 MiB, RSS +172 MiB).
    assert(grown < budget + 48 * MIB, `peak RSS grew by ${(grown / MIB).toFixed(0)} MiB`);
    assertEquals(valueOf(m, "vmq_sidecar_queued_bytes"), held);
    assertEquals(valueOf(m, "vmq_sidecar_queued_limit_bytes"), budget);
    assert(valueOf(m, "vmq_sidecar_queued_budget_waits_total")! >= 1, "waits counted");
    for (const o of names) {
      assertAddsUp(counters(m, o), o);
      assertEquals(counters(m, o).dropped, 0, `${o} blocks, never drops`);
    }

    // The receiver is back: everything goes out, each event once per output.
    receiver.start();
    await writer.run;
    await waitFor(
      () => [...idsByPath(receiver.requests).values()].every((v) => v.length >= 100 + n),
      "every event at every output",
      90_000,
    );
    const want = [...warm, ...load].map((_, i) => i < 100 ? `warm-${i}` : `load-${i - 100}`)
      .sort();
    const by = idsByPath(receiver.requests);
    for (const p of paths) assertEquals(by.get(p)!.sort(), want, `${p}: every event exactly once`);
    const end = await scrape(s.adminPort);
    for (const o of names) {
      const c = counters(end, o);
      assertAddsUp(c, o);
      assertEquals([c.received, c.sent, c.queued], [100 + n, 100 + n, 0], o);
    }
    assertEquals(valueOf(end, "vmq_sidecar_queued_bytes"), 0);
    const { code, stderr } = await stopped(s);
    assertEquals(code, 0, stderr);
  } finally {
    try {
      s.kill("SIGKILL");
    } catch { /* exited */ }
    await s.proc.status;
    await receiver.stop();
  }
});

Deno.test("--max-queued-bytes: 8 file outputs into FIFOs nobody reads (queue_bytes 64 MiB each): their queues together stay within the 32 MiB budget, RSS bounded; once the FIFOs are read every event arrives exactly once in each, counters add up", async () => {
  const budget = 32 * MIB, outputs = 8, n = 5000, payload = 2048;
  const dir = await sidecarTempDir();
  const fifos = Array.from({ length: outputs }, (_, i) => `${dir}/fifo${i}`);
  for (const f of fifos) {
    const r = await new Deno.Command("mkfifo", { args: [f] }).output();
    assert(r.success, `mkfifo ${f}`);
  }
  // The read ends: each open completes once the sidecar opens its write end.
  const opening = fifos.map((f) => Deno.open(f, { read: true }));
  const names = fifos.map((f) => `file:${f}`);
  const s = await spawnSidecar([
    "--listen",
    "127.0.0.1:0",
    "--admin",
    "127.0.0.1:0",
    "--max-queued-bytes",
    `${budget / MIB}MiB`,
    ...fifos.flatMap((f) => ["--out", `file:${f}?queue_bytes=64MiB`]),
  ], { stdout: "null" });
  const readers = await Promise.all(opening);
  let reading: Promise<string>[] = [];
  try {
    const before = await memoryOf(s.proc.pid);
    const load = frames("fifo", n, payload);
    const writer = sender(s.port, load);
    writer.run.catch(() => {}); // awaited below
    const queuedSum = async () => {
      const m = await scrape(s.adminPort);
      return names.reduce((a, o) => a + counters(m, o).bytes, 0);
    };
    // Each file output pauses readers by itself at a quarter of its queue (a write in flight
    // that does not end): 8 × 16 MiB without the budget.
    await waitFor(async () => await queuedSum() >= budget, "the budget full", 30_000);
    const held = await settled(queuedSum, 1000, 30_000);
    const m = await scrape(s.adminPort);
    const after = await memoryOf(s.proc.pid);
    const grown = after.peak - before.peak;
    console.log(
      `queued ${(held / MIB).toFixed(1)} MiB in ${outputs} file outputs (budget ${
        budget / MIB
      } MiB); sender wrote ${(writer.written / MIB).toFixed(1)} MiB; peak RSS +${
        (grown / MIB).toFixed(0)
      } MiB`,
    );
    // Measured: 32.1 MiB queued, peak RSS +39 MiB; without the budget 116 MiB and +125 MiB.
    // At most one read's events (64 KiB of frames, encoded, to every output) over the budget.
    assert(held <= budget + outputs * 512 * 1024, `queued ${held} bytes, budget ${budget}`);
    assert(!writer.done, "the plugin connection is not read while the budget is full");
    assert(grown < budget + 48 * MIB, `peak RSS grew by ${(grown / MIB).toFixed(0)} MiB`);
    assertEquals(valueOf(m, "vmq_sidecar_queued_bytes"), held);
    for (const o of names) assertAddsUp(counters(m, o), o);

    // The FIFOs are read: everything arrives, once.
    reading = readers.map(async (r) => {
      const dec = new TextDecoder();
      let text = "";
      for await (const c of r.readable) text += dec.decode(c, { stream: true });
      return text;
    });
    await writer.run;
    await waitFor(
      async () => {
        const m = await scrape(s.adminPort);
        return names.every((o) => counters(m, o).sent === n);
      },
      "every event written to every FIFO",
      90_000,
    );
    const end = await scrape(s.adminPort);
    for (const o of names) {
      const c = counters(end, o);
      assertAddsUp(c, o);
      assertEquals([c.received, c.sent, c.queued, c.dropped], [n, n, 0, 0], o);
    }
    assertEquals(valueOf(end, "vmq_sidecar_queued_bytes"), 0);
    const { code, stderr } = await stopped(s);
    assertEquals(code, 0, stderr);
    const want = load.map((_, i) => `fifo-${i}`).sort();
    for (const [i, text] of (await Promise.all(reading)).entries()) {
      assertEquals(
        jsonLines(text).map((e) => e.client_id).sort(),
        want,
        `${fifos[i]}: every event exactly once`,
      );
    }
  } finally {
    try {
      s.kill("SIGKILL");
    } catch { /* exited */ }
    await s.proc.status;
    if (reading.length === 0) { for (const r of readers) r.close(); }
    await Promise.allSettled(reading);
  }
});

Deno.test("--max-queued-bytes: an on_full=drop output whose destination is down drops beyond half of the budget and never stalls a blocking file output: every event reaches the file exactly once, counters add up", async () => {
  const budget = 8 * MIB, n = 4000, payload = 4096; // ≈ 17 MiB: twice the budget
  const dir = await sidecarTempDir();
  const receiver = startReceiver();
  const port = receiver.port;
  await receiver.stop(); // down for good
  const http = `http://127.0.0.1:${port}/dropper`, file = `${dir}/events.ndjson`;
  const s = await spawnSidecar([
    "--listen",
    "127.0.0.1:0",
    "--admin",
    "127.0.0.1:0",
    "--payload",
    "omit",
    "--max-queued-bytes",
    `${budget / MIB}MiB`,
    "--out",
    `${http}?buffer=memory&queue_bytes=64MiB&on_full=drop`,
    "--out",
    `file:${file}`,
  ], { stdout: "null" });
  try {
    const load = frames("e", n, payload);
    const writer = sender(s.port, load);
    await writer.run; // not blocked for good: the drop output never holds more than half
    await waitFor(
      async () => (await Deno.readTextFile(file).catch(() => "")).split("\n").length > n,
      "every event in the file",
      60_000,
    );
    const m = await scrape(s.adminPort);
    const dropper = counters(m, http), local = counters(m, `file:${file}`);
    console.log(
      `drop output holds ${(dropper.bytes / MIB).toFixed(1)} MiB (budget ${
        budget / MIB
      } MiB), dropped ${dropper.dropped} of ${n}`,
    );
    assert(dropper.bytes <= budget / 2, `the drop output holds ${dropper.bytes} bytes`);
    assert(dropper.dropped > 0, "beyond half of the budget it drops");
    assertAddsUp(dropper, http);
    assertEquals(dropper.received, n);
    assertAddsUp(local, "file");
    assertEquals([local.received, local.sent, local.dropped], [n, n, 0], "file");
    const ids = jsonLines(await Deno.readTextFile(file)).map((e) => e.client_id).sort();
    assertEquals(ids, load.map((_, i) => `e-${i}`).sort(), "every event exactly once");
    const { code, stderr } = await stopped(s);
    // The drop output could not flush what it holds: exit 1 (unflushed), said in the log.
    assertEquals(code, 1, stderr);
    assert(/dropping events: the outputs' in-memory queues hold/.test(stderr), stderr);
  } finally {
    try {
      s.kill("SIGKILL");
    } catch { /* exited */ }
    await s.proc.status;
  }
});

Deno.test("--max-queued-bytes: 4 handlers (bufferBytes 8 MiB each) whose calls do not return: their buffers together stay within the 4 MiB budget, the connection is not read; once the calls return every event is handled exactly once", async () => {
  const budget = 4 * MIB, n = 4000, payload = 2048; // ≈ 9 MiB
  let open = false;
  const gate: (() => void)[] = [];
  const seen = Array.from({ length: 4 }, () => [] as string[]);
  const handlers = seen.map((ids, i) =>
    defineHandler({
      name: `h${i}`,
      order: "none",
      concurrency: 4,
      bufferBytes: 8 * MIB,
      async onPublish(e) {
        if (!open) await new Promise<void>((r) => gate.push(r));
        ids.push(e.client_id);
      },
    })
  );
  const config = {
    ...loadConfig({ flags: ["--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0"] }),
    outputs: [],
    logLevel: "error" as const,
    maxQueuedBytes: budget,
  };
  const sidecar = await Sidecar.start({ config, handlers, handlerBuffer: "memory" });
  let stopped = false;
  try {
    const admin = sidecar.adminAddr!.port;
    const load = frames("h", n, payload);
    const writer = sender(sidecar.addr.port, load);
    writer.run.catch(() => {}); // awaited below
    const queuedSum = async () => {
      const m = await scrape(admin);
      return seen.reduce((a, _, i) => a + counters(m, `h${i}`).bytes, 0);
    };
    await waitFor(async () => await queuedSum() >= budget, "the budget full", 30_000);
    const held = await settled(queuedSum, 500, 30_000);
    console.log(
      `handler buffers hold ${(held / MIB).toFixed(1)} MiB (budget ${
        budget / MIB
      } MiB); sender wrote ${(writer.written / MIB).toFixed(1)} MiB`,
    );
    assert(held <= budget + 4 * 256 * 1024, `queued ${held} bytes, budget ${budget}`);
    assert(!writer.done, "the plugin connection is not read while the budget is full");
    open = true;
    for (const g of gate.splice(0)) g();
    await writer.run;
    await waitFor(() => seen.every((ids) => ids.length >= n), "every event handled", 60_000);
    const want = load.map((_, i) => `h-${i}`).sort();
    for (const [i, ids] of seen.entries()) assertEquals(ids.sort(), want, `h${i}: exactly once`);
    const m = await scrape(admin);
    assertEquals(valueOf(m, "vmq_sidecar_queued_bytes"), 0);
    const summary = await sidecar.stop();
    stopped = true;
    for (let i = 0; i < 4; i++) {
      const o = summary.outputs[`h${i}`];
      assertEquals([o.given, o.sent, o.unflushed], [n, n, 0], `h${i}`);
    }
  } finally {
    open = true;
    for (const g of gate.splice(0)) g();
    if (!stopped) await sidecar.stop();
  }
});

// ---------------------------------------------------------------------------------------------
// In process: the buffers charge the budget and give it back; the router pauses on it.

Deno.test("MemoryBuffer with a budget: appendFrame, appendRun and commit charge it; ack and close release it", async () => {
  const budget = new MemoryBudget({ capacity: 1 << 20 });
  const a = new MemoryBuffer({ maxBytes: 1 << 20, budget });
  const b = new MemoryBuffer({ maxBytes: 1 << 20, budget });
  const ca = a.cursor("a");
  b.cursor("b");
  a.appendFrame(new Uint8Array(100), 0, 100);
  a.seal();
  const run = new Uint8Array(2 * (4 + 10));
  new DataView(run.buffer).setUint32(0, 10), new DataView(run.buffer).setUint32(14, 10);
  b.appendRun(run, 0, run.length, 2);
  const out = b.tail(new ByteBuffer(0), 64);
  out.buf.set([1, 2, 3, 4, 5], out.pos), out.pos += 5;
  b.commit(out, 1);
  b.seal();
  assertEquals(budget.held, 104 + 28 + 5);
  assertEquals([a.bytes, b.bytes], [104, 33]);
  a.ack(ca, a.read(ca)!);
  assertEquals(budget.held, 33);
  await b.close(); // unacknowledged: released, still counted as unflushed
  assertEquals([budget.held, b.bytes, b.records], [0, 33, 3]);
  b.appendFrame(new Uint8Array(10), 0, 10); // after close: not charged
  assertEquals(budget.held, 0);
  await a.close();
  assertEquals(budget.held, 0);
});

/** A sink whose sends wait until `open()` (or answer at once when open). */
function gatedSink(name: string) {
  let opened = false;
  const waiting: (() => void)[] = [];
  let sent = 0;
  return {
    name,
    get sent() {
      return sent;
    },
    open() {
      opened = true;
      for (const w of waiting.splice(0)) w();
    },
    send: async (b: { count: number }): Promise<SendResult> => {
      if (!opened) await new Promise<void>((r) => waiting.push(r));
      sent += b.count;
      return DELIVERED;
    },
    close: async () => {},
  };
}

Deno.test("Router with a budget: outputs each under their own size add up to it → backpressure, blocked until half of it is free; then everything is sent; a reload keeps the budget", async () => {
  const budget = new MemoryBudget({ capacity: 64 * 1024 });
  const sinks = Array.from({ length: 4 }, (_, i) => gatedSink(`s${i}`));
  const router = new Router(
    sinks.map((sink) => ({ sink, queue: { maxBytes: 1 << 20, batchBytes: 4096 } })),
    undefined,
    (sink, o) => new Delivery(sink, o),
    budget,
  );
  const frame = frames("r", 1, 1000)[0].subarray(4); // the Any bytes
  let result = DISPATCH_OK, pushed = 0;
  for (; pushed < 1000 && result === DISPATCH_OK; pushed++) result = router.dispatch([frame]);
  assertEquals(result, DISPATCH_BACKPRESSURE, "the budget is full: backpressure");
  assert(budget.held >= budget.capacity && budget.held < budget.capacity + 4 * 1100);
  assert(router.blocked);
  for (const q of router.queues) {
    assert(q.bytes < q.options.maxBytes / 4, "each far under its size");
  }
  let resumed = false;
  const writable = router.writable().then(() => resumed = true);
  await new Promise((r) => setTimeout(r, 20));
  assert(!resumed && router.blocked, "still paused: nothing was acknowledged");
  for (const s of sinks) s.open();
  await writable;
  assert(budget.held <= budget.capacity / 2);
  assertEquals(router.budgetWaits, 1);
  // A reload: the new output's buffer charges the same budget.
  const extra = gatedSink("extra");
  extra.open();
  const removed = router.reconfigure([
    ...sinks.map((sink) => ({ sink })),
    { sink: extra, queue: { batchBytes: 4096 } },
  ]);
  assertEquals(removed.length, 0);
  router.dispatch([frame]);
  assert(budget.held > 0);
  assert(await router.close(5000), "flushed");
  assertEquals(budget.held, 0);
  for (const s of sinks) assertEquals(s.sent, pushed + 1);
  assertEquals(extra.sent, 1);
});

Deno.test("Router with a budget: only drop outputs never pause readers; a drop output drops beyond half of the budget", async () => {
  const budget = new MemoryBudget({ capacity: 64 * 1024 });
  const sink = gatedSink("d");
  const router = new Router(
    [{ sink, queue: { maxBytes: 1 << 20, onFull: "drop", batchBytes: 4096 } }],
    undefined,
    (s, o) => new Delivery(s, o),
    budget,
  );
  const frame = frames("d", 1, 1000)[0].subarray(4);
  for (let i = 0; i < 200; i++) assertEquals(router.dispatch([frame]), DISPATCH_OK);
  assert(!router.blocked);
  const q = router.queues[0];
  assert(budget.held <= budget.capacity / 2, `held ${budget.held}`);
  assert(q.stats.dropped > 0);
  assertEquals(q.stats.received, 200);
  sink.open();
  assert(await router.close(5000));
  assertEquals(q.stats.sent + q.stats.dropped, 200);
  assertEquals(budget.held, 0);
});

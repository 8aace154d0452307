// Per-client order for the built-in outputs (`order=client`, issue 14 item 2): the real main.ts,
// driven by the plugin-like sender over 100 connections with each client's events sent in a
// shuffled order; the ordered file output has every client's events in broker-time order, the
// same events in an output without the option beside it do not.
import { assert, assertEquals } from "./_assert.ts";
import { clientPublish, mulberry32 } from "./_vectors.ts";
import { fileLines, scrape, spawnSidecar } from "./_ops.ts";
import { valueOf } from "./_prom.ts";
import { runSidecar, sidecarTempDir, waitFor } from "./_sidecar.ts";
import { PluginSender } from "../lib/testing.ts";
import {
  decodeEvent,
  DELIVERED,
  Delivery,
  forEachFrame,
  MemoryBudget,
  orderedDeliveries,
  OrderedFront,
} from "../lib/internal.ts";

/** An on_publish of `client` at BASE + `ms` ms, its topic `t/CLIENT/TAG`. */
function publish(client: number, ms: number, tag: string): Uint8Array {
  return clientPublish(client, ms, `t/${client}/${tag}`);
}

/** Per client, how many of its events come after a later one (by the sequence in the topic). */
function inversions(lines: string[]): { clients: number; inverted: number; events: number } {
  const last = new Map<string, number>();
  let inverted = 0, events = 0;
  const bad = new Set<string>();
  for (const line of lines) {
    const e = JSON.parse(line);
    const [, client, tag] = (e.topic as string).split("/");
    if (tag === "late") continue;
    events++;
    const seq = Number(tag);
    if (seq < (last.get(client) ?? -1)) {
      inverted++;
      bad.add(client);
    } else last.set(client, seq);
  }
  return { clients: bad.size, inverted, events };
}

Deno.test("order=client: each client's events in broker-time order over 100 connections; late ones counted; the unordered output beside it is out of order", async () => {
  const dir = await sidecarTempDir();
  const ordered = `${dir}/ordered.jsonl`, plain = `${dir}/plain.jsonl`;
  // A window well above the sender's burst (a loaded CI machine stalls for tens of ms).
  const s = await spawnSidecar([
    "--listen",
    "127.0.0.1:0",
    "--admin",
    "127.0.0.1:0",
    "--out",
    `file:${ordered}?order=client&order_window_ms=1000`,
    "--out",
    `file:${plain}`,
  ]);
  const CLIENTS = 200, ROUNDS = 10, K = 5, N = CLIENTS * ROUNDS * K;
  try {
    const sender = await PluginSender.connect({
      port: s.port,
      connections: 100,
      seed: 14,
      jitterMs: 1,
    });
    const rng = mulberry32(14);
    for (let r = 0; r < ROUNDS; r++) {
      // The round's events of every client, in one random order (each client's shuffled too).
      const round: [number, number][] = [];
      for (let c = 0; c < CLIENTS; c++) for (let i = 0; i < K; i++) round.push([c, r * K + i]);
      for (let i = round.length - 1; i > 0; i--) {
        const j = Math.floor(rng() * (i + 1));
        [round[i], round[j]] = [round[j], round[i]];
      }
      for (const [c, seq] of round) await sender.send(publish(c, seq, String(seq)));
    }
    await sender.flush({ timeoutMs: 30_000 });
    await waitFor(() => fileLines(ordered).length === N, `${N} lines in the ordered file`, 60_000);

    // Past the window: an event earlier than what client 0 had released goes out at once, late.
    await sender.send(publish(0, 0, "late"));
    await sender.close({ timeoutMs: 30_000 });
    const label = { output: `file:${ordered}` };
    let lateSeen: number | undefined;
    await waitFor(
      async () => {
        const m = await scrape(s.adminPort);
        lateSeen = valueOf(m, "vmq_sidecar_reorder_late_total", label);
        return lateSeen === 1;
      },
      "the late event counted",
      30_000,
    ).catch((e) => {
      // More than 1: events of the stream itself reached the sidecar later than the window
      // after a later one of their client (an overloaded machine), not only the extra one.
      throw new Error(`${e.message}: vmq_sidecar_reorder_late_total = ${lateSeen}`);
    });
    const m = await scrape(s.adminPort);
    assertEquals(valueOf(m, "vmq_sidecar_reorder_early_total", label), 0);
    assertEquals(valueOf(m, "vmq_sidecar_reorder_held_events", label), 0);
    assertEquals(
      valueOf(m, "vmq_sidecar_reorder_late_total", { output: `file:${plain}` }),
      undefined,
    );

    s.kill("SIGTERM");
    const { code, stderr } = await s.wait();
    assertEquals(code, 0, stderr);
    // Counters add up: everything given was written, once.
    assert(
      stderr.includes(
        `file:${ordered} given=${N + 1} sent=${N + 1} dead-lettered=0 lost=0 dropped=0 unflushed=0`,
      ),
      stderr.slice(-2000),
    );
    const got = fileLines(ordered), control = fileLines(plain);
    assertEquals(got.length, N + 1);
    assertEquals(control.length, N + 1);
    const o = inversions(got), p = inversions(control);
    assertEquals(o, { clients: 0, inverted: 0, events: N }, "order=client output");
    // The control: the same events as received are out of order for most clients.
    assert(p.clients > CLIENTS / 2, `only ${p.clients} clients out of order without the option`);
    assertEquals(JSON.parse(got.at(-1)!).topic, "t/0/late");
  } finally {
    try {
      s.kill("SIGKILL");
    } catch { /* exited */ }
    await s.wait().catch(() => {});
  }
});

Deno.test("order options: declared in the output schema (bad values and unknown combinations fail the start with what to write)", async () => {
  const dir = await sidecarTempDir();
  const cases: [string, RegExp][] = [
    [`file:${dir}/a.jsonl?order=sorted`, /order: expected client or none, got "sorted"/],
    [`file:${dir}/a.jsonl?order=client&order_window_ms=0`, /order_window_ms: .*1 to 60000/],
    [`file:${dir}/a.jsonl?order_windows=5`, /unknown option for file output; accepted: .*order/],
  ];
  for (const [url, expected] of cases) {
    const r = await runSidecar(["--listen", "127.0.0.1:0", "--out", url]);
    assert(r.code !== 0, `${url}: started`);
    assert(expected.test(r.stderr), `${url}: ${r.stderr}`);
  }
  // An HTTP output with buffer=memory orders; a config file takes the same keys.
  const file = `${dir}/ordered.toml`;
  await Deno.writeTextFile(
    file,
    `[[outputs]]\nurl = "http://127.0.0.1:9/x"\nbuffer = "memory"\norder = "client"\n` +
      `order_window_ms = 250\ndead_letter = "${dir}/dead.ndjson"\n`,
  );
  const ok = await runSidecar(["check-config", file]);
  assertEquals(ok.code, 0, ok.stderr);
  assert(
    /"order": "client"/.test(ok.stdout) && /"order_window_ms": 250/.test(ok.stdout),
    ok.stdout,
  );
  // With buffer=disk (a network output's default) too: ordered on the journal's read side.
  const disk = `${dir}/ordered-disk.toml`;
  await Deno.writeTextFile(
    disk,
    `data_dir = "${dir}/data"\n[[outputs]]\nurl = "http://127.0.0.1:9/x"\norder = "client"\n` +
      `dead_letter = "${dir}/dead.ndjson"\n`,
  );
  const okDisk = await runSidecar(["check-config", disk]);
  assertEquals(okDisk.code, 0, okDisk.stderr);
  assert(/"order": "client"/.test(okDisk.stdout), okDisk.stdout);
});

/** A delivery to a sink recording the topics it was sent, in order. */
function recording(onFull: "block" | "drop" = "block", maxBytes = 1 << 20, budget?: MemoryBudget) {
  const topics: string[] = [];
  const sink = {
    name: "rec",
    send: (b: { bytes: Uint8Array; count: number }) => {
      forEachFrame(b, (f) => {
        const r = decodeEvent(f);
        if (r.ok && r.event.hook === "on_publish") topics.push(r.event.topic);
      });
      return Promise.resolve(DELIVERED);
    },
    close: async () => {},
  };
  const d = orderedDeliveries((s, o) => new Delivery(s, o))(sink, {
    order: "client",
    orderWindowMs: 60_000, // nothing is due by itself: only flush and close release
    onFull,
    maxBytes,
    budget,
  });
  return { d, topics };
}

Deno.test("order: the front holds events out of the delivery's counts until released; a flush releases them in client order; counters add up", async () => {
  const { d, topics } = recording();
  assert(d.front instanceof OrderedFront);
  const front = d.front as OrderedFront;
  // Client 1: 3, 1, 2; client 2: 2, 1 — as frames of one read, then one run of length-prefixed ones.
  for (const [c, ms] of [[1, 3], [2, 2], [1, 1]]) {
    const f = publish(c, ms, String(ms));
    front.pushAt(f, 0, f.length);
  }
  const run = [publish(2, 1, "1"), publish(1, 2, "2")].map((f) => {
    const out = new Uint8Array(4 + f.length);
    new DataView(out.buffer).setUint32(0, f.length);
    out.set(f, 4);
    return out;
  });
  const bytes = new Uint8Array(run[0].length + run[1].length);
  bytes.set(run[0]);
  bytes.set(run[1], run[0].length);
  front.pushRun(bytes, 0, bytes.length, 2);
  front.kick();
  assertEquals([front.held, d.stats.received, d.events], [5, 0, 0]);
  assert(await d.flush(5000));
  assertEquals([front.held, d.stats.received, d.stats.sent, d.events], [0, 5, 5, 0]);
  const of = (c: number) => topics.filter((t) => t.startsWith(`t/${c}/`));
  assertEquals([of(1), of(2)], [["t/1/1", "t/1/2", "t/1/3"], ["t/2/1", "t/2/2"]]);
  // After a close nothing is held and the stage's timer is gone (the test's sanitizer checks it).
  const late = publish(1, 0, "0");
  front.pushAt(late, 0, late.length);
  assertEquals(front.stage.late, 1); // earlier than what client 1 had released: passed on at once
  await d.flush(5000);
  await d.close();
  assertEquals([d.stats.received, d.stats.sent, front.held], [6, 6, 0]);
});

Deno.test("order: what the front holds is charged to the shared budget (max_queued_bytes) while held, moved to the queue at release, all given back once sent", async () => {
  const budget = new MemoryBudget({ capacity: 1 << 20 });
  const { d } = recording("block", 1 << 20, budget);
  const front = d.front as OrderedFront;
  let bytes = 0;
  for (let i = 0; i < 100; i++) {
    const f = publish(i % 7, i, String(i));
    front.pushAt(f, 0, f.length);
    bytes += f.length;
  }
  // Before: the stage's copies were outside the budget (held 0 with 100 events in the stage).
  assertEquals([front.held, budget.held], [100, bytes]);
  front.release(); // into the delivery's queue: charged there (with the length prefixes) instead
  assertEquals([front.held, budget.held], [0, bytes + 4 * 100]);
  assert(await d.flush(5000));
  assertEquals(budget.held, 0);
  await d.close();
  assertEquals(budget.held, 0);
});

Deno.test("order: on_full=drop behind the front drops (and counts) at release, never in the front", async () => {
  const { d } = recording("drop", 4096);
  const front = d.front as OrderedFront;
  for (let i = 0; i < 200; i++) {
    const f = publish(i % 7, i, String(i));
    front.pushAt(f, 0, f.length);
  }
  assertEquals(front.held, 200);
  front.release(); // 200 events into a 4 KiB queue: most dropped, all counted
  const s = d.stats;
  assertEquals(s.received, 200);
  assert(s.dropped > 0, `${s.dropped} dropped`);
  await d.flush(5000);
  await d.close();
  assertEquals(s.sent + s.dropped, 200);
});

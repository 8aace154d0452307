// Router (lib/pipeline/router.ts, today's Router): backpressure from blocking outputs, drop
// outputs never block, hook filters, rejected frames counted, per-output metrics.
import { assert, assertEquals } from "./_assert.ts";
import {
  DeadLetterFile,
  DISPATCH_BACKPRESSURE,
  DISPATCH_MALFORMED,
  DISPATCH_OK,
  Metrics,
  Router,
  type Sink,
} from "../lib/internal.ts";
import { fixtureVectors } from "./_vectors.ts";
import { failingOneEventLetters, letter, publish, RecordingSink } from "./_delivery_kit.ts";

Deno.test("router: a full blocking output asks the reader to wait, and lets it go at half", async () => {
  const sink = new RecordingSink();
  let release!: () => void;
  sink.gate = new Promise((r) => release = r);
  const p = new Router([{ sink, queue: { maxBytes: 64 * 1024, onFull: "block" } }]);
  const frame = publish(0, 1000);
  let r = DISPATCH_OK;
  let dispatched = 0;
  while (r === DISPATCH_OK && dispatched < 1000) {
    r = p.dispatch([frame]);
    dispatched++;
  }
  assertEquals(r, DISPATCH_BACKPRESSURE);
  assert(dispatched < 100, `blocked only after ${dispatched} frames`);
  let resumed = false;
  const waiting = p.writable().then(() => resumed = true);
  await new Promise((r) => setTimeout(r, 20));
  assertEquals(resumed, false);
  release();
  await waiting;
  assert(await p.close(5000));
  assertEquals(sink.frames.length, dispatched);
});

Deno.test("router: a dead output with on_full=drop never blocks a healthy one", async () => {
  const healthy = new RecordingSink("healthy");
  const dead = new RecordingSink("dead");
  dead.gate = new Promise(() => {}); // never acknowledges
  const p = new Router([
    { sink: healthy },
    { sink: dead, queue: { maxBytes: 64 * 1024, onFull: "drop" } },
  ]);
  for (let i = 0; i < 2000; i++) assertEquals(p.dispatch([publish(i)]), DISPATCH_OK);
  await p.queues[0].flush(5000);
  assertEquals(healthy.frames.length, 2000);
  assert(p.queues[1].stats.dropped > 0);
  assert(p.queues[1].bytes <= 64 * 1024);
});

Deno.test("router: hooks filter per output; empty, unknown and malformed frames are counted", async () => {
  const all = new RecordingSink("all");
  const subs = new RecordingSink("subs");
  const p = new Router([{ sink: all }, {
    sink: subs,
    hooks: new Set(["on_subscribe"] as const),
  }]);
  const vectors = fixtureVectors();
  const frames = vectors.map((v) => v.body);
  assertEquals(p.dispatch(frames), DISPATCH_OK);
  const unknown = new Uint8Array([0x0a, 3, 0x61, 0x62, 0x63]); // type_url "abc"
  assertEquals(p.dispatch([unknown]), DISPATCH_OK);
  assertEquals(p.dispatch([new Uint8Array([0x0a, 9, 1])]), DISPATCH_MALFORMED);
  assert(await p.close(5000));
  const events = vectors.filter((v) => v.expected.hook !== null);
  assertEquals(all.frames.length, events.length);
  assertEquals(subs.frames.length, events.filter((v) => v.expected.hook === "on_subscribe").length);
  assertEquals(p.emptyFrames, 1);
  assertEquals(p.unknownType, 1);
  assertEquals(p.malformed, 1);
  assertEquals(p.totalReceived, events.length);
});

Deno.test("router metrics: every term of received = sent + dead_lettered + lost + dropped + queued is a per-output counter of the Router", async () => {
  const m = new Metrics();
  const dir = await Deno.makeTempDir();
  const reporting: Sink = {
    name: "reporting",
    send: () => Promise.resolve({ outcome: "delivered", rejected: [letter(2), letter(1)] }),
    close: () => Promise.resolve(),
    deadLetter: failingOneEventLetters(new DeadLetterFile(`${dir}/dead.ndjson`, "reporting")),
  };
  const p = new Router([{ sink: reporting }], m);
  p.dispatch(Array.from({ length: 10 }, (_, i) => publish(i)));
  assert(await p.queues[0].flush(5000));
  const text = m.render();
  const value = (name: string) =>
    Number(new RegExp(`^${name}\\{output="reporting"[^}]*\\} (\\S+)$`, "m").exec(text)?.[1]);
  assertEquals(value("vmq_sidecar_output_events_received_total"), 10);
  assertEquals(value("vmq_sidecar_output_events_sent_total"), 7);
  assertEquals(value("vmq_sidecar_output_events_dead_lettered_total"), 2);
  assertEquals(value("vmq_sidecar_output_events_lost_total"), 1);
  assertEquals(value("vmq_sidecar_output_events_dropped_total"), 0);
  assert(!text.includes("vmq_sidecar_output_dead_lettered_total"), "old name gone");
  await p.close(1000);
  await Deno.remove(dir, { recursive: true });
});

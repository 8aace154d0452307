// ReorderStage (lib/handlers/reorder.ts): per-client broker-timestamp order within a window.
// Deterministic tests drive it with a manual clock; the last one feeds it from real sockets,
// the events spread over many connections at random by the plugin-like sender.
import { assert, assertEquals, assertThrows } from "./_assert.ts";
import { eventBody, fixtureVectors, mulberry32 } from "./_vectors.ts";
import {
  decodeEvent,
  PluginSender,
  readFrames,
  type ReorderClock,
  ReorderStage,
  type SidecarEvent,
} from "../lib/internal.ts";

/** A clock the test moves by hand; timers run when their time is reached. */
class ManualClock implements ReorderClock {
  t = 0;
  #timers = new Map<number, { at: number; fn: () => void }>();
  #next = 0;
  now(): number {
    return this.t;
  }
  setTimeout(fn: () => void, ms: number): number {
    this.#timers.set(++this.#next, { at: this.t + ms, fn });
    return this.#next;
  }
  clearTimeout(handle: unknown): void {
    this.#timers.delete(handle as number);
  }
  get pending(): number {
    return this.#timers.size;
  }
  /** Moves to `t`, running every timer due on the way at its own time. */
  advanceTo(t: number): void {
    for (let guard = 0; guard < 1_000_000; guard++) {
      let id = -1, at = Infinity;
      for (const [k, v] of this.#timers) if (v.at < at) (id = k), (at = v.at);
      if (id < 0 || at > t) break;
      const timer = this.#timers.get(id)!;
      this.#timers.delete(id);
      this.t = Math.max(this.t, at);
      timer.fn();
    }
    this.t = t;
  }
}

/** An on_publish frame of `client` at broker time `seconds`.`nanos`, tagged `id` in its topic. */
function publish(client: string, seconds: number, nanos: number, id: string, mountpoint = "") {
  return eventBody("on_publish", {
    timestamp: { seconds, nanos },
    client_id: client,
    mountpoint,
    username: "u",
    qos: 1,
    topic: `t/${id}`,
    payload: new Uint8Array(16),
    retain: false,
    matched_acl: { name: "", pattern: "" },
    session_id: "s",
  });
}

/** What was released: each frame's id (topic after `t/`), late flag and release time. */
function recorder(clock: { now(): number }) {
  const out: { id: string; late: boolean; at: number; event: SidecarEvent }[] = [];
  return {
    out,
    ids: () => out.map((r) => r.id),
    release: (frame: Uint8Array, late: boolean) => {
      const r = decodeEvent(frame);
      if (!r.ok) {
        out.push({ id: `(${r.error.kind})`, late, at: clock.now(), event: undefined as never });
        return;
      }
      const topic = "topic" in r.event ? r.event.topic : "";
      out.push({ id: topic.slice(2), late, at: clock.now(), event: r.event });
    },
  };
}

const T0 = 1_764_600_000;

Deno.test("reorder: one client's events out of order within the window come out in timestamp order", () => {
  const clock = new ManualClock();
  const rec = recorder(clock);
  const stage = new ReorderStage({ windowMs: 100, clock, release: rec.release });
  // Broker order a1 < a2 < a3 < a4 < a5 (by timestamp); arrival order 3, 1, 2, 5, 4.
  const order = [3, 1, 2, 5, 4];
  order.forEach((n, i) => {
    clock.advanceTo(i * 10);
    stage.push(publish("a", T0, n * 1000, `a${n}`));
  });
  assertEquals(rec.ids(), [], "nothing before the first window ends");
  assertEquals(stage.held, 5);
  clock.advanceTo(99);
  assertEquals(rec.ids(), []);
  clock.advanceTo(100); // a3's window ends: a3 and everything before it
  assertEquals(rec.ids(), ["a1", "a2", "a3"]);
  assertEquals(rec.out.map((r) => r.at), [100, 100, 100]);
  clock.advanceTo(130); // a5's window (arrived at 30) ends: a4 and a5
  assertEquals(rec.ids(), ["a1", "a2", "a3", "a4", "a5"]);
  assertEquals(rec.out.map((r) => r.at), [100, 100, 100, 130, 130]);
  assertEquals([stage.received, stage.released, stage.held, stage.late], [5, 5, 0, 0]);
  assertEquals(clock.pending, 0, "no timer once nothing is held");
  stage.close();
});

Deno.test("reorder: an event later than the window is released at once, flagged late and counted", () => {
  const clock = new ManualClock();
  const rec = recorder(clock);
  const stage = new ReorderStage({ windowMs: 100, clock, release: rec.release });
  stage.push(publish("a", T0, 2, "a2"));
  clock.advanceTo(100);
  assertEquals(rec.ids(), ["a2"]);
  clock.advanceTo(150);
  stage.push(publish("a", T0, 1, "a1")); // 150 ms after a2: beyond the window
  assertEquals(rec.out.map((r) => [r.id, r.late, r.at]), [["a2", false, 100], ["a1", true, 150]]);
  assertEquals(stage.late, 1);
  // The same timestamp as the last released one is not late (ties are in order).
  stage.push(publish("a", T0, 2, "a2bis"));
  clock.advanceTo(250);
  assertEquals(rec.out.at(-1)!.id, "a2bis");
  assertEquals(rec.out.at(-1)!.late, false);
  assertEquals([stage.received, stage.released, stage.late], [3, 3, 1]);
  stage.close();
});

Deno.test("reorder: clients are independent — (mountpoint, client_id) is the key; ties keep arrival order", () => {
  const clock = new ManualClock();
  const rec = recorder(clock);
  const stage = new ReorderStage({ windowMs: 50, clock, release: rec.release });
  stage.push(publish("a", T0, 9, "a9"));
  stage.push(publish("a", T0, 5, "a5-first"));
  stage.push(publish("a", T0, 5, "a5-second")); // equal times: arrival order
  clock.advanceTo(20);
  stage.push(publish("b", T0, 1, "b1")); // another client: its own window, never late vs a
  stage.push(publish("a", T0, 1, "mp-a1", "mp1")); // client a on another mountpoint: another key
  clock.advanceTo(50);
  assertEquals(rec.ids(), ["a5-first", "a5-second", "a9"]);
  clock.advanceTo(70);
  assertEquals(rec.ids().slice(3), ["b1", "mp-a1"]);
  assertEquals(stage.late, 0);
  // Client ids differing only after a would-be separator do not collide.
  stage.push(publish("x", T0, 5, "k1", "m"));
  stage.push(publish("mx", T0, 1, "k2", ""));
  clock.advanceTo(200);
  assertEquals(rec.ids().slice(5), ["k1", "k2"]);
  assertEquals(stage.late, 0);
  stage.close();
});

Deno.test("reorder: frames without a client or timestamp are released at once, unordered", () => {
  const clock = new ManualClock();
  const rec = recorder(clock);
  const stage = new ReorderStage({ clock, release: rec.release });
  const vectors = fixtureVectors();
  const empty = vectors.find((v) => v.expected.hook === null)!;
  const zeroTime = vectors.find((v) => v.name === "030_on_publish_zero")!;
  stage.push(empty.body); // the empty Any
  stage.push(zeroTime.body); // no timestamp on the wire
  stage.push(new Uint8Array([0x0a, 0x05, 0x41])); // truncated: malformed envelope
  const p = publish("a", T0, 1, "x");
  stage.push(p.subarray(0, p.length - 3)); // a value cut short: malformed
  assertEquals(stage.unordered, 4);
  assertEquals(stage.released, 4);
  assertEquals(stage.held, 0);
  stage.close();
});

Deno.test("reorder: memory is bounded — beyond maxEvents/maxBytes the oldest go early, order kept", () => {
  const clock = new ManualClock();
  const rec = recorder(clock);
  const stage = new ReorderStage({ windowMs: 1000, maxEvents: 3, clock, release: rec.release });
  stage.push(publish("a", T0, 5, "a5"));
  stage.push(publish("b", T0, 1, "b1"));
  stage.push(publish("a", T0, 3, "a3"));
  assertEquals(rec.ids(), []);
  stage.push(publish("c", T0, 1, "c1")); // 4 held > 3: the oldest (a5) goes, a3 before it
  assertEquals(rec.ids(), ["a3", "a5"]);
  assertEquals(stage.early, 2);
  assertEquals(stage.held, 2);
  stage.push(publish("a", T0, 4, "a4")); // after a5 was released: late
  assertEquals(rec.out.at(-1), { ...rec.out.at(-1)!, id: "a4", late: true });
  assertEquals(stage.late, 1);

  const bytesRec = recorder(clock);
  const frame = publish("c0", T0, 1, "x"); // the size of each frame below
  const byBytes = new ReorderStage({
    windowMs: 1000,
    maxBytes: frame.length * 2,
    clock,
    release: bytesRec.release,
  });
  for (let i = 0; i < 5; i++) byBytes.push(publish(`c${i}`, T0, 1, "x"));
  assertEquals(byBytes.held, 2);
  assert(byBytes.heldBytes <= frame.length * 2, `${byBytes.heldBytes}`);
  assertEquals(byBytes.early, 3);
  stage.close();
  byBytes.close();
  assertEquals(clock.pending, 0);
});

Deno.test("reorder: flush releases everything in order per client; close stops the timer; push after close throws", () => {
  const clock = new ManualClock();
  const rec = recorder(clock);
  const stage = new ReorderStage({ windowMs: 100, clock, release: rec.release });
  stage.push(publish("a", T0, 3, "a3"));
  stage.push(publish("b", T0, 2, "b2"));
  stage.push(publish("a", T0, 1, "a1"));
  assertEquals(clock.pending, 1);
  stage.close();
  assertEquals(rec.ids(), ["a1", "a3", "b2"]);
  assertEquals(clock.pending, 0);
  assertThrows(() => stage.push(publish("a", T0, 9, "a9")), Error);
  stage.close(); // idempotent
});

Deno.test("reorder: a release callback that throws is reported, and the stage goes on", () => {
  const clock = new ManualClock();
  const errors: unknown[] = [];
  const got: number[] = [];
  const stage = new ReorderStage({
    windowMs: 0,
    clock,
    release: (frame) => {
      got.push(frame.length);
      if (got.length === 1) throw new Error("handler bug");
    },
    onError: (e) => errors.push(e),
  });
  stage.push(publish("a", T0, 1, "1"));
  stage.push(publish("a", T0, 2, "2"));
  assertEquals(got.length, 2);
  assertEquals(errors.length, 1);
  assertEquals([stage.received, stage.released], [2, 2]);
  stage.close();
});

Deno.test("reorder: idle clients are remembered for late detection only up to maxIdleClients / rememberMs", () => {
  const clock = new ManualClock();
  const stage = new ReorderStage({
    windowMs: 0,
    maxIdleClients: 10,
    rememberMs: 1000,
    clock,
    release: () => {},
  });
  for (let i = 0; i < 100; i++) stage.push(publish(`c${i}`, T0, 5, "x"));
  assert(stage.clients <= 11, `${stage.clients} clients remembered`);
  stage.push(publish("c99", T0, 1, "x")); // still remembered: late
  assertEquals(stage.late, 1);
  clock.advanceTo(1000);
  stage.push(publish("other", T0, 1, "x")); // forgetting happens as clients come and go
  assert(stage.clients <= 2, `${stage.clients} clients after rememberMs`);
  stage.close();
});

interface Sim {
  client: number;
  n: number; // position in the client's broker order
  arrival: number;
}

/** The guarantee, checked on a release record: order is broken only by late events, and only
 *  when a later event of the client arrived more than the window before the late one. */
function checkGuarantee(
  arrivals: Map<string, Sim>,
  released: { id: string; late: boolean; at: number }[],
  windowMs: number,
): { late: number } {
  const lastN = new Map<number, number>();
  const seen = new Set<string>();
  let late = 0;
  for (const r of released) {
    assert(!seen.has(r.id), `${r.id} released twice`);
    seen.add(r.id);
    const s = arrivals.get(r.id)!;
    // Released no later than its window's end (the manual clock runs timers on time).
    assert(r.at <= s.arrival + windowMs, `${r.id} held ${r.at - s.arrival} ms`);
    const prev = lastN.get(s.client) ?? -1;
    if (r.late) {
      late++;
      assert(s.n < prev, `${r.id} flagged late but in order`);
      // Some later event of its client arrived at least the window before it.
      const witness = [...arrivals.values()].some((o) =>
        o.client === s.client && o.n > s.n && s.arrival - o.arrival >= windowMs
      );
      assert(witness, `${r.id} late without a later event ${windowMs} ms before it`);
    } else {
      assert(s.n > prev, `${r.id} released after n=${prev} of its client, not flagged late`);
      lastN.set(s.client, s.n);
    }
  }
  assertEquals(seen.size, arrivals.size, "every event released");
  return { late };
}

Deno.test("reorder: seeded random arrivals — within the window always in order, beyond it flagged late, never lost", () => {
  for (
    const [seed, windowMs, maxDelay] of [[1, 100, 100], [2, 100, 60], [3, 40, 200], [4, 0, 30]]
  ) {
    const rng = mulberry32(seed);
    const clock = new ManualClock();
    const rec = recorder(clock);
    const stage = new ReorderStage({ windowMs, clock, release: rec.release });
    // 20 clients, 60 events each, produced 1 ms apart in broker time; each arrives after a
    // random delay of 0..maxDelay ms (different connections, busy readers).
    const arrivals = new Map<string, Sim>();
    const list: (Sim & { id: string; ns: number })[] = [];
    const counters = new Array(20).fill(0);
    for (let t = 0; t < 1200; t++) {
      const client = Math.floor(rng() * 20), n = counters[client]++;
      const s = {
        client,
        n,
        arrival: t + Math.floor(rng() * maxDelay),
        id: `${client}-${n}`,
        ns: t,
      };
      list.push(s);
      arrivals.set(s.id, s);
    }
    list.sort((a, b) => a.arrival - b.arrival);
    for (const s of list) {
      clock.advanceTo(s.arrival);
      stage.push(
        publish(`c${s.client}`, T0 + Math.floor(s.ns / 1000), (s.ns % 1000) * 1e6, s.id),
      );
      assertEquals(stage.received, stage.released + stage.held);
    }
    clock.advanceTo(list.at(-1)!.arrival + windowMs);
    assertEquals(stage.held, 0);
    const { late } = checkGuarantee(arrivals, rec.out, windowMs);
    assertEquals(late, stage.late);
    if (windowMs >= maxDelay) assertEquals(late, 0, `seed ${seed}: delays within the window`);
    else assert(late > 0, `seed ${seed}: delays beyond the window must show late events`);
    stage.close();
  }
});

Deno.test("reorder: real sockets — events of 24 clients spread over 16 connections at random", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const windowMs = 100; // the default
  const arrivals = new Map<string, Sim>();
  const arrivalOrder: string[] = [];
  const released: { id: string; late: boolean; at: number }[] = [];
  const stage = new ReorderStage({
    release: (frame, late) => {
      const r = decodeEvent(frame);
      assert(r.ok && r.event.hook === "on_publish");
      released.push({ id: r.event.topic.slice(2), late, at: performance.now() });
    },
  });
  const readers: Promise<void>[] = [];
  const accepting = (async () => {
    for await (const conn of listener) {
      readers.push((async () => {
        for await (const frame of readFrames(conn)) {
          const at = performance.now();
          stage.push(frame, at);
          const r = decodeEvent(frame);
          assert(r.ok && r.event.hook === "on_publish");
          const id = r.event.topic.slice(2);
          const [client, n] = id.split("-").map(Number);
          arrivals.set(id, { client, n, arrival: at });
          arrivalOrder.push(id);
        }
      })());
    }
  })().catch(() => {});

  // Broker order: 24 clients × 50 events, timestamps 10 µs apart. Sent in a slightly shuffled
  // order (neighbours swapped), so some inversions travel on one connection and must arrive.
  const rng = mulberry32(99);
  const events: { id: string; client: number; ns: number }[] = [];
  const counters = new Array(24).fill(0);
  for (let i = 0; i < 1200; i++) {
    const client = Math.floor(rng() * 24);
    events.push({ id: `${client}-${counters[client]++}`, client, ns: i * 10_000 });
  }
  for (let i = 0; i + 1 < events.length; i++) {
    if (rng() < 0.3) [events[i], events[i + 1]] = [events[i + 1], events[i]];
  }
  const sender = await PluginSender.connect({
    port: (listener.addr as Deno.NetAddr).port,
    connections: 16,
    seed: 2026,
    jitterMs: 5,
  });
  try {
    for (const e of events) {
      await sender.send(
        publish(`c${e.client}`, T0 + Math.floor(e.ns / 1e9), e.ns % 1e9, e.id),
      );
    }
  } finally {
    await sender.close();
  }
  for (let i = 0; i < 600 && arrivals.size < events.length; i++) {
    await new Promise((r) => setTimeout(r, 50));
  }
  listener.close();
  await accepting;
  await Promise.all(readers);
  assertEquals(arrivals.size, events.length, "every frame arrived");
  for (let i = 0; i < 600 && stage.held > 0; i++) await new Promise((r) => setTimeout(r, 20));
  assertEquals(stage.held, 0, "everything released once the windows ended");
  stage.close();

  // There was disorder to repair: per client, arrivals out of broker order.
  let inversions = 0;
  const lastArrived = new Map<number, number>();
  for (const id of arrivalOrder) {
    const s = arrivals.get(id)!;
    if (s.n < (lastArrived.get(s.client) ?? -1)) inversions++;
    lastArrived.set(s.client, Math.max(s.n, lastArrived.get(s.client) ?? -1));
  }
  assert(inversions > 0, "the arrivals must have been out of order somewhere");
  // Released: in order except late events, each late only past the window (timers may fire
  // late on a busy machine, which holds events longer, never shorter).
  const lastN = new Map<number, number>();
  let late = 0;
  for (const r of released) {
    const s = arrivals.get(r.id)!;
    const prev = lastN.get(s.client) ?? -1;
    if (r.late) {
      late++;
      assert(s.n < prev);
      const witness = [...arrivals.values()].some((o) =>
        o.client === s.client && o.n > s.n && s.arrival - o.arrival >= windowMs
      );
      assert(witness, `${r.id} late without a later event ${windowMs} ms before it`);
    } else {
      assert(s.n > prev, `${r.id} out of order`);
      lastN.set(s.client, s.n);
    }
  }
  assertEquals(released.length, events.length);
  assertEquals(late, stage.late);
  assertEquals([stage.unordered, stage.early], [0, 0]);
});

Deno.test("reorder: read from a backlog with arrival times and a read-horizon clock, the release is the live one", () => {
  // The design (docs/design/handlers.md §2.3): behind the buffer, frames are read long after
  // they arrived. Timed by read time, every window has ended at once and nothing is reordered;
  // timed by the read horizon (the arrival time of what is read next), the release is exactly
  // what the stage would have done live.
  const rng = mulberry32(5);
  const frames: { frame: Uint8Array; arrival: number; id: string }[] = [];
  const counters = new Array(10).fill(0);
  for (let t = 0; t < 600; t++) {
    const c = Math.floor(rng() * 10), n = counters[c]++;
    frames.push({
      frame: publish(`c${c}`, T0, t * 1000, `${c}-${n}`),
      arrival: t + Math.floor(rng() * 80),
      id: `${c}-${n}`,
    });
  }
  frames.sort((a, b) => a.arrival - b.arrival);
  const run = (mode: "live" | "read time" | "horizon") => {
    const clock = new ManualClock();
    const rec = recorder(clock);
    const stage = new ReorderStage({ windowMs: 100, clock, release: rec.release });
    clock.advanceTo(mode === "live" ? 0 : 1_000_000); // replay: read long after
    for (const f of frames) {
      if (mode === "live") clock.advanceTo(f.arrival);
      if (mode === "horizon") {
        clock.t = f.arrival; // the horizon: what is read next arrived then
        stage.poll();
      }
      stage.push(f.frame, mode === "live" ? undefined : f.arrival);
    }
    if (mode === "horizon") clock.t = 1_000_000; // caught up: the horizon is now
    clock.advanceTo(clock.t + 100);
    stage.close();
    return rec.out.map((r) => `${r.id}${r.late ? "!" : ""}`);
  };
  const live = run("live");
  assertEquals(run("horizon"), live);
  const byReadTime = run("read time");
  assertEquals(
    byReadTime.map((id) => id.replace("!", "")),
    frames.map((f) => f.id),
    "by read time: arrival order, nothing fixed",
  );
  assert(byReadTime.some((id) => id.endsWith("!")), "by read time: disorder shows as late");
  assert(!live.some((id) => id.endsWith("!")), "live: delays (< 80 ms) are within the window");
  assert(byReadTime.join() !== live.join(), "the arrivals had disorder to fix");
});

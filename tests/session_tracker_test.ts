// SessionTracker (lib/handlers/sessions.ts): presence right in any arrival order — takeovers,
// offline before register, reconnects with the same session id — checked against the ground
// truth of generated histories fed in shuffled order (beyond any reordering window), and on
// events decoded from real frames.
import { assert, assertEquals } from "./_assert.ts";
import { eventBody, mulberry32 } from "./_vectors.ts";
import {
  decodeEvent,
  type OnlineSession,
  SessionTracker,
  type SidecarEvent,
} from "../lib/internal.ts";

const T0 = 1_764_600_000n;
type SessionHook =
  | "on_register"
  | "on_client_wakeup"
  | "on_client_offline"
  | "on_client_gone"
  | "on_session_expired";

/** A typed session event of `client` at broker time T0 s + `ns` ns. */
function ev(
  hook: SessionHook,
  client: string,
  sid: string,
  ns: number,
  mountpoint = "",
): SidecarEvent {
  const timestamp = { seconds: T0 + BigInt(Math.floor(ns / 1e9)), nanos: ns % 1e9 };
  const base = { timestamp, client_id: client, mountpoint, session_id: sid };
  switch (hook) {
    case "on_register":
      return { ...base, hook, peer_addr: "", peer_port: 0, username: "", user_properties: {} };
    case "on_client_wakeup":
    case "on_session_expired":
      return { ...base, hook };
    default:
      return { ...base, hook, reason: "REASON_NORMAL_DISCONNECT", username: "" };
  }
}

function permutations<T>(xs: T[]): T[][] {
  if (xs.length <= 1) return [xs];
  return xs.flatMap((x, i) =>
    permutations([...xs.slice(0, i), ...xs.slice(i + 1)]).map((p) => [x, ...p])
  );
}

/** Feeds `events` in every order and returns the distinct outcomes (online session or "offline"). */
function outcomes(events: SidecarEvent[], client = "c"): Set<string> {
  const seen = new Set<string>();
  for (const order of permutations(events)) {
    const t = new SessionTracker();
    for (const e of order) t.observe(e);
    seen.add(t.session("", client)?.sessionId ?? "offline");
  }
  return seen;
}

Deno.test("SessionTracker: register → online; offline, gone or expired of that session → offline", () => {
  for (const end of ["on_client_offline", "on_client_gone", "on_session_expired"] as const) {
    const t = new SessionTracker();
    assertEquals(t.observe(ev("on_register", "c", "s1", 1)), true);
    assert(t.isOnline("", "c"));
    const s = t.session("", "c")!;
    assertEquals([s.mountpoint, s.clientId, s.sessionId], ["", "c", "s1"]);
    assertEquals(s.since.epochNanos, T0 * 1_000_000_000n + 1n);
    assertEquals(t.observe(ev("on_client_wakeup", "c", "s1", 2)), false, "still online");
    assertEquals(t.observe(ev(end, "c", "s1", 3)), true);
    assert(!t.isOnline("", "c"), end);
    assertEquals([t.onlineCount, t.offlineRemembered], [0, 1]);
  }
});

Deno.test("SessionTracker: a takeover is online with the new session in every arrival order", () => {
  // s1 registers; s2 takes over (registers); the broker then sends s1's offline.
  const history = [
    ev("on_register", "c", "s1", 10),
    ev("on_register", "c", "s2", 20),
    ev("on_client_offline", "c", "s1", 21),
  ];
  assertEquals(outcomes(history), new Set(["s2"]));
  // Then s2 disconnects: offline in every order.
  assertEquals(outcomes([...history, ev("on_client_gone", "c", "s2", 30)]), new Set(["offline"]));
});

Deno.test("SessionTracker: an offline that arrives before its register still ends the session", () => {
  const t = new SessionTracker();
  assertEquals(t.observe(ev("on_client_offline", "c", "s1", 20)), false);
  assertEquals(t.observe(ev("on_register", "c", "s1", 10)), false, "registered, but ended since");
  assert(!t.isOnline("", "c"));
  assertEquals(
    outcomes([ev("on_register", "c", "s1", 10), ev("on_client_offline", "c", "s1", 20)]),
    new Set(["offline"]),
  );
});

Deno.test("SessionTracker: a reconnect with the same session id is online after its later start, in any order", () => {
  const history = [
    ev("on_register", "c", "s1", 10),
    ev("on_client_offline", "c", "s1", 20),
    ev("on_register", "c", "s1", 30),
    ev("on_client_wakeup", "c", "s1", 31),
  ];
  assertEquals(outcomes(history), new Set(["s1"]));
  // An unknown session's end is kept: when that session's start arrives, it is already over.
  assertEquals(
    outcomes([
      ev("on_register", "c", "s1", 10),
      ev("on_register", "c", "s2", 20),
      ev("on_client_gone", "c", "s2", 25),
    ]),
    new Set(["offline"]),
  );
});

Deno.test("SessionTracker: clients are (mountpoint, client_id); other hooks are ignored", () => {
  const t = new SessionTracker();
  t.observe(ev("on_register", "c", "s1", 1, "mp1"));
  t.observe(ev("on_register", "c", "s2", 1, ""));
  t.observe(ev("on_client_offline", "c", "s1", 2, "mp1"));
  assertEquals([t.isOnline("mp1", "c"), t.isOnline("", "c")], [false, true]);
  t.observe(ev("on_register", "1:c", "s3", 1, "m")); // would collide with a naive "m:1:c" key
  t.observe(ev("on_register", "c", "s4", 1, "m:1"));
  assertEquals([...t.online()].map((s) => s.sessionId).sort(), ["s2", "s3", "s4"]);
  const publish = decodeEvent(eventBody("on_publish", {
    timestamp: { seconds: 1, nanos: 0 },
    client_id: "z",
    session_id: "s9",
    matched_acl: { name: "", pattern: "" },
  }));
  assert(publish.ok);
  assertEquals(t.observe(publish.event), false);
  assertEquals(t.onlineCount, 3);
});

/** Generates a client's true history and whether (and with which session) it ends online. */
function history(rng: () => number, client: string, mountpoint: string) {
  const events: SidecarEvent[] = [];
  let t = Math.floor(rng() * 1000), sid = "", online = false, n = 0;
  const steps = 1 + Math.floor(rng() * 8);
  for (let i = 0; i < steps; i++) {
    t += 1 + Math.floor(rng() * 5_000_000); // up to 5 ms apart
    const r = rng();
    if (!online) {
      // Connect: a new session, or the previous id again (a persistent session).
      if (sid === "" || r < 0.6) sid = `${client}-s${n++}`;
      events.push(ev("on_register", client, sid, t, mountpoint));
      if (rng() < 0.5) events.push(ev("on_client_wakeup", client, sid, t + 1, mountpoint));
      online = true;
    } else if (r < 0.4) {
      const hook = rng() < 0.5 ? "on_client_offline" : "on_client_gone";
      events.push(ev(hook, client, sid, t, mountpoint));
      if (rng() < 0.3) events.push(ev("on_session_expired", client, sid, t + 7, mountpoint));
      online = false;
    } else {
      // Takeover: the new session registers, then the old one's offline follows.
      const old = sid;
      sid = `${client}-s${n++}`;
      events.push(ev("on_register", client, sid, t, mountpoint));
      events.push(ev("on_client_offline", client, old, t + 2, mountpoint));
    }
  }
  return { events, online, sid };
}

Deno.test("SessionTracker: generated histories fed fully shuffled give the true presence (seeded)", () => {
  for (const seed of [1, 2, 3]) {
    const rng = mulberry32(seed);
    const truth = new Map<string, string | undefined>();
    const all: SidecarEvent[] = [];
    for (let i = 0; i < 400; i++) {
      const client = `dev-${i}`, mountpoint = i % 3 === 0 ? "mp" : "";
      const h = history(rng, client, mountpoint);
      truth.set(`${mountpoint}/${client}`, h.online ? h.sid : undefined);
      all.push(...h.events);
    }
    // Arrival in any order at all (far beyond a reordering window).
    for (let i = all.length - 1; i > 0; i--) {
      const j = Math.floor(rng() * (i + 1));
      [all[i], all[j]] = [all[j], all[i]];
    }
    const t = new SessionTracker();
    for (const e of all) t.observe(e);
    const got = new Map<string, string>();
    for (const s of t.online()) got.set(`${s.mountpoint}/${s.clientId}`, s.sessionId);
    let wrong = 0;
    for (const [k, sid] of truth) if (got.get(k) !== sid) wrong++;
    assertEquals(wrong, 0, `seed ${seed}: clients judged wrong`);
    // What arrival order alone gives (start → online, any end → offline): often wrong here.
    const naive = new Map<string, string>();
    for (const e of all) {
      if (!("session_id" in e)) continue;
      const k = `${e.mountpoint}/${e.client_id}`;
      if (e.hook === "on_register" || e.hook === "on_client_wakeup") naive.set(k, e.session_id);
      else naive.delete(k);
    }
    let naiveWrong = 0;
    for (const [k, sid] of truth) if (naive.get(k) !== sid) naiveWrong++;
    assert(naiveWrong > 0, `seed ${seed}: the shuffle must defeat an arrival-order tracker`);
    assertEquals(t.onlineCount, [...truth.values()].filter((s) => s !== undefined).length);
    assertEquals(t.onlineCount + t.offlineRemembered, truth.size);
  }
});

Deno.test("SessionTracker: bounded — offline clients beyond maxOfflineClients are forgotten, online never", () => {
  const t = new SessionTracker({ maxOfflineClients: 50 });
  for (let i = 0; i < 500; i++) {
    t.observe(ev("on_register", `c${i}`, "s", 1));
    if (i % 2 === 0) t.observe(ev("on_client_gone", `c${i}`, "s", 2));
  }
  assertEquals(t.onlineCount, 250);
  assertEquals(t.offlineRemembered, 50);
  const online: OnlineSession[] = [...t.online()];
  assert(online.every((s) => Number(s.clientId.slice(1)) % 2 === 1));
  // Pending ends of unknown sessions are bounded per client.
  const p = new SessionTracker({ maxPendingEnds: 2 });
  for (let i = 0; i < 20; i++) p.observe(ev("on_client_offline", "x", `old-${i}`, 100 + i));
  p.observe(ev("on_register", "x", "old-19", 50)); // its end (at 119) is among the newest kept
  assert(!p.isOnline("", "x"));
});

Deno.test("SessionTracker: events decoded from real frames (register, takeover offline)", () => {
  const frame = (
    hook: SessionHook,
    sid: string,
    ns: number,
    extra: Record<string, unknown> = {},
  ) => {
    const r = decodeEvent(eventBody(hook, {
      timestamp: { seconds: Number(T0), nanos: ns },
      client_id: "car-7",
      mountpoint: "fleet",
      session_id: sid,
      ...extra,
    }));
    assert(r.ok);
    return r.event;
  };
  const t = new SessionTracker();
  t.observe(frame("on_register", "new", 20));
  t.observe(frame("on_client_offline", "old", 30, { reason: "REASON_SESSION_TAKEN_OVER" }));
  t.observe(frame("on_register", "old", 10));
  assertEquals(t.session("fleet", "car-7")?.sessionId, "new");
  assertEquals(t.session("fleet", "car-7")?.since.toRfc3339().slice(-11), ".000000020Z");
});

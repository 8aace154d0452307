/**
 * Session-aware presence: {@linkcode SessionTracker} knows which clients are online from their
 * session events, in whatever order those arrive.
 *
 * @module
 */
import type { SidecarEvent } from "../schema/events.ts";
import { EventTime } from "./timestamps.ts";

/** The session a client is online with, as {@linkcode SessionTracker} reports it. */
export interface OnlineSession {
  /** Mountpoint (`""` for the default). */
  readonly mountpoint: string;
  /** MQTT client id. */
  readonly clientId: string;
  /** The session id of its newest session. */
  readonly sessionId: string;
  /** Broker time of that session's newest `on_register` / `on_client_wakeup`. */
  readonly since: EventTime;
}

/** Options of a {@linkcode SessionTracker}. */
export interface SessionTrackerOptions {
  /**
   * Offline clients remembered, so that their late events are judged right (default 100 000);
   * beyond it the longest offline is forgotten. Online clients are never forgotten.
   */
  readonly maxOfflineClients?: number;
  /**
   * Ends (offline/gone/expired) of sessions not known yet kept per client, newest first
   * (default 8): they end such a session when its start arrives later.
   */
  readonly maxPendingEnds?: number;
}

interface ClientState {
  readonly key: string;
  readonly mountpoint: string;
  readonly clientId: string;
  /** The newest start (register/wakeup) by broker time; "" / -1n when none seen. */
  sessionId: string;
  startNs: bigint;
  since: EventTime | undefined;
  /** Latest end time per session id, only ends at or after `startNs`. */
  readonly ends: Map<string, bigint>;
  online: boolean;
}

const START_HOOKS = new Set(["on_register", "on_client_wakeup"]);
const END_HOOKS = new Set(["on_client_offline", "on_client_gone", "on_session_expired"]);

/**
 * Who is online, from `on_register` / `on_client_wakeup` (a session starts) and
 * `on_client_offline` / `on_client_gone` / `on_session_expired` (a session ends), judged by
 * broker time and session id rather than arrival order: a client is online iff its newest
 * session (the greatest start time) started and has had no end of the same `session_id` since.
 * So an old session's offline that arrives after a takeover's new registration does not take
 * the client offline; an offline that arrives before the registration it follows is applied
 * when that arrives; a session id reused by a reconnect is online again after a later start.
 *
 * The result depends only on which events were observed, not on their order: it is right past
 * any reordering window (within the bounds of `maxOfflineClients` and `maxPendingEnds`). Other
 * hooks are ignored. Each event costs O(1) (plus O(`maxPendingEnds`) for an unknown session's end).
 *
 * @example
 * ```ts
 * import { SessionTracker } from "./sessions.ts";
 * const presence = new SessionTracker();
 * const base = { mountpoint: "", client_id: "car-1", username: "" };
 * // A takeover, arriving out of order: the old session's offline comes last.
 * presence.observe({ ...base, hook: "on_register", session_id: "s2", peer_addr: "", peer_port: 0,
 *   user_properties: {}, timestamp: { seconds: 1764620000n, nanos: 2 } });
 * presence.observe({ ...base, hook: "on_client_offline", session_id: "s1",
 *   reason: "REASON_SESSION_TAKEN_OVER", timestamp: { seconds: 1764620000n, nanos: 3 } });
 * console.log(presence.isOnline("", "car-1")); // true: s2 is the newest session
 * ```
 */
export class SessionTracker {
  readonly #online = new Map<string, ClientState>();
  /** Offline clients, longest offline first (Map order = insertion order). */
  readonly #offline = new Map<string, ClientState>();
  readonly #maxOffline: number;
  readonly #maxPendingEnds: number;

  /** A tracker with nobody online. */
  constructor(options: SessionTrackerOptions = {}) {
    this.#maxOffline = options.maxOfflineClients ?? 100_000;
    this.#maxPendingEnds = options.maxPendingEnds ?? 8;
  }

  /** Clients online now. */
  get onlineCount(): number {
    return this.#online.size;
  }

  /** Offline clients remembered (bounded by `maxOfflineClients`). */
  get offlineRemembered(): number {
    return this.#offline.size;
  }

  /**
   * Takes one event; returns whether its client went online or offline because of it. Events
   * of other hooks (and `on_register_failed`) change nothing.
   */
  observe(event: SidecarEvent): boolean {
    const isStart = START_HOOKS.has(event.hook), isEnd = END_HOOKS.has(event.hook);
    if (!isStart && !isEnd) return false;
    const e = event as SidecarEvent & { mountpoint: string; client_id: string; session_id: string };
    const c = this.#stateOf(e.mountpoint, e.client_id);
    const ns = EventTime.nanos(e);
    if (isStart) {
      // Equal times (two sessions in one nanosecond): the greater id wins, in any arrival order.
      if (
        ns > c.startNs ||
        (ns === c.startNs && (c.since === undefined || e.session_id > c.sessionId))
      ) {
        c.sessionId = e.session_id;
        c.startNs = ns;
        c.since = EventTime.of(e);
        for (const [sid, end] of c.ends) if (end < ns) c.ends.delete(sid);
      }
    } else if (ns >= c.startNs) {
      const prev = c.ends.get(e.session_id);
      if (prev === undefined || ns > prev) {
        c.ends.delete(e.session_id);
        c.ends.set(e.session_id, ns);
        this.#boundEnds(c);
      }
    }
    const online = c.since !== undefined && !((c.ends.get(c.sessionId) ?? -1n) >= c.startNs);
    const changed = online !== c.online;
    c.online = online;
    this.#file(c);
    return changed;
  }

  /** Whether `clientId` on `mountpoint` is online. */
  isOnline(mountpoint: string, clientId: string): boolean {
    return this.#online.has(keyOf(mountpoint, clientId));
  }

  /** The session `clientId` on `mountpoint` is online with, or undefined when offline. */
  session(mountpoint: string, clientId: string): OnlineSession | undefined {
    const c = this.#online.get(keyOf(mountpoint, clientId));
    return c && sessionOf(c);
  }

  /** Every client online now, with its session. */
  *online(): IterableIterator<OnlineSession> {
    for (const c of this.#online.values()) yield sessionOf(c);
  }

  #stateOf(mountpoint: string, clientId: string): ClientState {
    const key = keyOf(mountpoint, clientId);
    const c = this.#online.get(key) ?? this.#offline.get(key);
    if (c) return c;
    return {
      key,
      mountpoint,
      clientId,
      sessionId: "",
      startNs: -1n,
      since: undefined,
      ends: new Map(),
      online: false,
    };
  }

  /** Keeps at most maxPendingEnds ends, dropping the oldest by time (never the current one's). */
  #boundEnds(c: ClientState): void {
    while (c.ends.size > this.#maxPendingEnds) {
      let oldest: string | undefined, at = 0n;
      for (const [sid, end] of c.ends) {
        if (sid !== c.sessionId && (oldest === undefined || end < at)) (oldest = sid), (at = end);
      }
      if (oldest === undefined) break;
      c.ends.delete(oldest);
    }
  }

  /** Puts `c` in the online or offline map; forgets the longest offline beyond the bound. */
  #file(c: ClientState): void {
    if (c.online) {
      this.#offline.delete(c.key);
      this.#online.set(c.key, c);
      return;
    }
    this.#online.delete(c.key);
    if (!this.#offline.has(c.key)) {
      this.#offline.set(c.key, c);
      for (const k of this.#offline.keys()) {
        if (this.#offline.size <= this.#maxOffline) break;
        this.#offline.delete(k);
      }
    }
  }
}

/** Length-prefixed mountpoint, then the client id: distinct pairs give distinct keys. */
function keyOf(mountpoint: string, clientId: string): string {
  return `${mountpoint.length}:${mountpoint}${clientId}`;
}

function sessionOf(c: ClientState): OnlineSession {
  return {
    mountpoint: c.mountpoint,
    clientId: c.clientId,
    sessionId: c.sessionId,
    since: c.since!,
  };
}

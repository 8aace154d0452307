/**
 * The handler API: {@linkcode defineHandler} turns typed functions per hook into a
 * {@linkcode Handler} that `Sidecar.start({ handlers })` runs behind the same buffer as every
 * output. Acknowledgement is the function's result: return (or resolve) acks the event, a throw
 * retries it with backoff, a {@linkcode Reject} sends it to the dead-letter file at once.
 *
 * @module
 */
import type { Hook } from "../schema/hooks.ts";
import { HOOKS } from "../schema/hooks.ts";
import type { SidecarEvent } from "../schema/events.ts";
import type { EventTime } from "./timestamps.ts";

/** The typed event of hook `H`, e.g. `EventOf<"on_publish">` is `OnPublishEvent`. */
export type EventOf<H extends Hook> = Extract<SidecarEvent, { hook: H }>;

/** What a handler call is given besides the event. */
export interface HandlerContext {
  /** The event's broker time (exact nanoseconds in `epochNanos`; a `Date`). */
  readonly time: EventTime;
  /**
   * Whether it arrived later than the ordering window: a later event of its client was already
   * handled (counted in `vmq_sidecar_reorder_late_total`). Always false with `order: "none"`.
   */
  readonly late: boolean;
  /** 1 for the first call with this event, 2 for its first retry, … */
  readonly attempt: number;
  /** Aborted when the sidecar stops (after the grace): give up long work. */
  readonly signal: AbortSignal;
  /** The handler's name. */
  readonly handler: string;
}

/** A function handling one event: sync or async; return = ack, throw = retry. */
export type HandlerFn<E> = (event: E, ctx: HandlerContext) => void | Promise<void>;

/** The functions of a handler per hook (`onPublish` for `on_publish`, …). */
export interface HookHandlers {
  /** `on_register`. */
  readonly onRegister?: HandlerFn<EventOf<"on_register">>;
  /** `on_register_failed`. */
  readonly onRegisterFailed?: HandlerFn<EventOf<"on_register_failed">>;
  /** `on_publish`. */
  readonly onPublish?: HandlerFn<EventOf<"on_publish">>;
  /** `on_subscribe`. */
  readonly onSubscribe?: HandlerFn<EventOf<"on_subscribe">>;
  /** `on_unsubscribe`. */
  readonly onUnsubscribe?: HandlerFn<EventOf<"on_unsubscribe">>;
  /** `on_deliver`. */
  readonly onDeliver?: HandlerFn<EventOf<"on_deliver">>;
  /** `on_delivery_complete`. */
  readonly onDeliveryComplete?: HandlerFn<EventOf<"on_delivery_complete">>;
  /** `on_offline_message`. */
  readonly onOfflineMessage?: HandlerFn<EventOf<"on_offline_message">>;
  /** `on_client_wakeup`. */
  readonly onClientWakeup?: HandlerFn<EventOf<"on_client_wakeup">>;
  /** `on_client_offline`. */
  readonly onClientOffline?: HandlerFn<EventOf<"on_client_offline">>;
  /** `on_client_gone`. */
  readonly onClientGone?: HandlerFn<EventOf<"on_client_gone">>;
  /** `on_session_expired`. */
  readonly onSessionExpired?: HandlerFn<EventOf<"on_session_expired">>;
  /** `on_message_drop`. */
  readonly onMessageDrop?: HandlerFn<EventOf<"on_message_drop">>;
  /** The catch-all: every hook without its own function (in `hooks`). */
  readonly onEvent?: HandlerFn<SidecarEvent>;
}

/** Retries of an event whose handler threw. */
export interface RetryOptions {
  /** First delay in ms (default 100). */
  readonly initialMs?: number;
  /** Longest delay in ms (default 30 000). */
  readonly maxMs?: number;
  /**
   * Calls before the event goes to the dead-letter file (default 10, ≈ 3 min with the default
   * delays; `Infinity`: retry for ever, holding that client's lane and the buffer behind it).
   */
  readonly maxAttempts?: number;
}

/** What {@linkcode defineHandler} takes: a name, its functions, filters and limits. */
export interface HandlerSpec extends HookHandlers {
  /** The handler's name: the `output` label of its metrics, in logs and dead letters. */
  readonly name: string;
  /**
   * Hooks it receives (default: the hooks it has a function for; every hook with `onEvent`).
   */
  readonly hooks?: readonly Hook[];
  /** MQTT topic filters (`+`, `#`), as the `topics` of outputs (default: every topic). */
  readonly topics?: readonly string[];
  /**
   * `"client"` (default): the events of one `(mountpoint, client_id)` in broker-time order
   * within `orderWindowMs`, handled one at a time; `"none"`: buffer order, no window, calls
   * for one client may overlap.
   */
  readonly order?: "client" | "none";
  /** How long an event waits for earlier events of its client (ms, default 100). */
  readonly orderWindowMs?: number;
  /** Handler calls in flight at most, over all clients (default 64). */
  readonly concurrency?: number;
  /** Events read ahead from the buffer at most (held, waiting or in a call; default 10 000). */
  readonly maxInFlight?: number;
  /** Retries of throwing calls. */
  readonly retry?: RetryOptions;
  /** Its buffer's budget in bytes (default 64 MiB); when full, reading sockets pauses. */
  readonly bufferBytes?: number;
  /**
   * Where {@linkcode Reject}ed and given-up events are appended (one JSON line each, the frame
   * as base64; default `/var/lib/vmq-sidecar/dead-letter.ndjson`). Needs write permission; an
   * append that fails counts the event as lost (logged).
   */
  readonly deadLetter?: string;
}

/** A handler ready for `Sidecar.start({ handlers: [...] })` (see {@linkcode defineHandler}). */
export interface Handler {
  /** The spec it was defined with (defaults not applied). */
  readonly spec: HandlerSpec;
  /** The hooks it receives. */
  readonly hooks: readonly Hook[];
  /** The function for `hook`, or undefined. */
  fnOf(hook: Hook): HandlerFn<SidecarEvent> | undefined;
}

/** `on_client_offline` → `onClientOffline`. */
function methodOf(hook: Hook): keyof HookHandlers {
  return hook.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase()) as keyof HookHandlers;
}

/**
 * A handler from its functions per hook.
 *
 * @example Count publishes, re-try what fails, dead-letter what is bad
 * ```ts
 * import { defineHandler, Reject } from "../mod.ts";
 * let count = 0;
 * const counter = defineHandler({
 *   name: "counter",
 *   topics: ["devices/#"],
 *   onPublish(e) {
 *     if (e.payload.length === 0) throw new Reject("empty payload");
 *     count++;
 *   },
 * });
 * console.log(counter.hooks); // [ "on_publish" ]
 * ```
 */
export function defineHandler(spec: HandlerSpec): Handler {
  if (typeof spec.name !== "string" || spec.name === "") {
    throw new TypeError("defineHandler: `name` must be a non-empty string");
  }
  const fns = new Map<Hook, HandlerFn<SidecarEvent>>();
  for (const hook of HOOKS) {
    const fn = spec[methodOf(hook)] as HandlerFn<SidecarEvent> | undefined;
    if (fn !== undefined && typeof fn !== "function") {
      throw new TypeError(`defineHandler(${spec.name}): ${methodOf(hook)} must be a function`);
    }
    if (fn) fns.set(hook, fn);
  }
  const catchAll = spec.onEvent;
  const hooks = spec.hooks ?? (catchAll ? [...HOOKS] : HOOKS.filter((h) => fns.has(h)));
  if (hooks.length === 0) {
    throw new TypeError(
      `defineHandler(${spec.name}): no hooks: give a function per hook (onPublish, …) or onEvent`,
    );
  }
  for (const h of hooks) {
    if (!fns.has(h) && !catchAll) {
      throw new TypeError(
        `defineHandler(${spec.name}): hook ${h} has no function: add ${methodOf(h)} or onEvent`,
      );
    }
  }
  for (
    const [k, v] of Object.entries({
      concurrency: spec.concurrency,
      maxInFlight: spec.maxInFlight,
    })
  ) {
    if (v !== undefined && !(Number.isInteger(v) && v >= 1)) {
      throw new RangeError(`defineHandler(${spec.name}): ${k} must be an integer ≥ 1, not ${v}`);
    }
  }
  return {
    spec,
    hooks,
    fnOf: (hook) => fns.get(hook) ?? catchAll,
  };
}

/**
 * Thrown by a handler for an event that must not be retried: it goes to the handler's
 * dead-letter file at once, with `message` as the reason.
 *
 * @example
 * ```ts
 * import { Reject } from "../mod.ts";
 * const e = new Reject("payload is not JSON");
 * console.log(e instanceof Error, e.name); // true "Reject"
 * ```
 */
export class Reject extends Error {
  /** A rejection saying why. */
  constructor(reason: string, options?: ErrorOptions) {
    super(reason, options);
    this.name = "Reject";
  }
}

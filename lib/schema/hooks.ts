/**
 * The 13 broker hooks, their protobuf message names and `type_url`s.
 *
 * @module
 */

/** Every hook the plugin relays, in the protocol's order. */
export const HOOKS = [
  "on_register",
  "on_register_failed",
  "on_publish",
  "on_subscribe",
  "on_unsubscribe",
  "on_deliver",
  "on_delivery_complete",
  "on_offline_message",
  "on_client_wakeup",
  "on_client_offline",
  "on_client_gone",
  "on_session_expired",
  "on_message_drop",
] as const;

/** A broker hook name, e.g. `"on_publish"`. */
export type Hook = typeof HOOKS[number];

/** The protobuf message name of each hook (note `OnClientWakeUp` with a capital U). */
export const MESSAGE_NAMES: Readonly<Record<Hook, string>> = {
  on_register: "OnRegister",
  on_register_failed: "OnRegisterFailed",
  on_publish: "OnPublish",
  on_subscribe: "OnSubscribe",
  on_unsubscribe: "OnUnsubscribe",
  on_deliver: "OnDeliver",
  on_delivery_complete: "OnDeliveryComplete",
  on_offline_message: "OnOfflineMessage",
  on_client_wakeup: "OnClientWakeUp",
  on_client_offline: "OnClientOffline",
  on_client_gone: "OnClientGone",
  on_session_expired: "OnSessionExpired",
  on_message_drop: "OnMessageDrop",
};

/** Prefix of every event's `type_url`. */
export const TYPE_URL_PREFIX = "type.googleapis.com/eventssidecar.v1.";

/** The `type_url` of a hook's message. */
export function typeUrlOf(hook: Hook): string {
  return TYPE_URL_PREFIX + MESSAGE_NAMES[hook];
}

/** Whether `name` is one of the 13 hook names. */
export function isHook(name: string): name is Hook {
  return (HOOKS as readonly string[]).includes(name);
}

const typeUrlBytes: Uint8Array[] = HOOKS.map((h) => new TextEncoder().encode(typeUrlOf(h)));
/**
 * Each type_url as 8-byte pieces (at 0, 8, 16, …, the last one ending at its end), read as
 * little-endian doubles: `===` on two doubles is a bit-exact compare unless one is NaN or zero,
 * and these ASCII bytes never make either (checked below) — a NaN read from input only fails.
 */
const typeUrlPieces: Float64Array[] = typeUrlBytes.map((b) => {
  const v = new DataView(b.buffer, b.byteOffset, b.length);
  const pieces = new Float64Array(Math.ceil(b.length / 8));
  for (let k = 0; k < pieces.length; k++) {
    pieces[k] = v.getFloat64(Math.min(8 * k, b.length - 8), true);
    if (Number.isNaN(pieces[k]) || pieces[k] === 0) {
      throw new Error("type_url piece not comparable");
    }
  }
  return pieces;
});
// Candidates bucketed by type_url length: at most 3 share a length.
const byLength: number[][] = [];
typeUrlBytes.forEach((bytes, i) => (byLength[bytes.length] ??= []).push(i));

// A DataView of the last buffer looked at: the frames of one read share it.
let viewOf: Uint8Array | undefined;
let view: DataView = new DataView(new ArrayBuffer(0));

/**
 * The hook index (into {@linkcode HOOKS}) of the `type_url` held in `buf[start, end)`,
 * or -1 when it is not one of ours. Compares bytes, 8 at a time; allocates nothing (but a view
 * per buffer).
 */
export function hookIndexOfTypeUrl(buf: Uint8Array, start: number, end: number): number {
  const candidates = byLength[end - start];
  if (candidates === undefined) return -1;
  if (viewOf !== buf) {
    view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    viewOf = buf;
  }
  const last = end - start - 8;
  outer: for (let c = 0; c < candidates.length; c++) {
    const want = typeUrlPieces[candidates[c]];
    // From the end: the message names differ there; the shared prefix is checked last.
    if (view.getFloat64(start + last, true) !== want[want.length - 1]) continue;
    for (let k = want.length - 2; k >= 0; k--) {
      if (view.getFloat64(start + 8 * k, true) !== want[k]) continue outer;
    }
    return candidates[c];
  }
  return -1;
}

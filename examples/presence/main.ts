/**
 * Presence: who is online. `GET /online` on `--http` (default 127.0.0.1:8891) answers a JSON
 * array of `[mountpoint, client_id]` of the clients online now — right however the plugin's
 * connections reorder events and under session takeover (an old session's offline that arrives
 * after the new session registered does not take the client offline): SessionTracker judges by
 * broker time and session id, the handler receives each client's events in order.
 *
 *     deno task example:presence --listen 127.0.0.1:8890 --http 127.0.0.1:8891
 *
 * @module
 */
import { defineHandler, SessionTracker, Sidecar } from "../../lib/mod.ts";
import { parseFlags, sidecarConfig, stopOnSignals } from "../_flags.ts";

const flags = parseFlags(Deno.args, { http: "127.0.0.1:8891" });
const presence = new SessionTracker();

const sidecar = await Sidecar.start({
  config: sidecarConfig(flags.listen, null),
  handlers: [defineHandler({
    name: "presence",
    hooks: [
      "on_register",
      "on_client_wakeup",
      "on_client_offline",
      "on_client_gone",
      "on_session_expired",
    ],
    onEvent: (e) => void presence.observe(e),
  })],
});

const server = Deno.serve({
  ...flags.http,
  onListen: (a) => console.error(`presence: http on ${a.hostname}:${a.port}`),
}, (req) => {
  const path = new URL(req.url).pathname;
  if (req.method !== "GET" || path !== "/online") {
    return new Response("not found\n", { status: 404 });
  }
  return Response.json([...presence.online()].map((s) => [s.mountpoint, s.clientId]));
});
console.error(`presence: plugin listener on ${sidecar.addr.hostname}:${sidecar.addr.port}`);

stopOnSignals(async () => {
  await sidecar.stop();
  await server.shutdown();
});

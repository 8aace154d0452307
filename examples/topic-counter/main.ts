/**
 * Topic counter: publishes per MQTT topic filter, as the counter
 * `topic_publishes_total{filter="…"}` on the sidecar's own `/metrics` (served on
 * `--http`, default 127.0.0.1:8892, with `/healthz` and `/readyz`). Filters: `--filter F`
 * (repeatable; default `#`).
 *
 *     deno task example:topic-counter --filter 'devices/+/telemetry' --filter 'alerts/#'
 *
 * @module
 */
import { defineHandler, Sidecar, topicMatches } from "../../lib/mod.ts";
import { parseFlags, sidecarConfig, stopOnSignals } from "../_flags.ts";

const flags = parseFlags(Deno.args, { http: "127.0.0.1:8892" }, ["filter"]);
const filters = flags.other.get("filter") ?? ["#"];

const counter = defineHandler({
  name: "topic-counter",
  topics: filters, // only publishes matching some filter reach the handler
  order: "none", // counting does not need per-client order: no window, no added latency
  onPublish(e) {
    for (const f of filters) if (topicMatches(f, e.topic)) publishes.inc([f]);
  },
});
const sidecar = await Sidecar.start({
  config: sidecarConfig(flags.listen, flags.http),
  handlers: [counter],
});
const publishes = sidecar.metrics.counter(
  "topic_publishes_total",
  "Publishes whose topic matches the filter (one publish counts once per matching filter).",
  ["filter"],
);
for (const f of filters) publishes.inc([f], 0); // exported at 0 from the start

const a = sidecar.adminAddr!;
console.error(`topic-counter: http on ${a.hostname}:${a.port}`);
console.error(`topic-counter: plugin listener on ${sidecar.addr.hostname}:${sidecar.addr.port}`);
stopOnSignals(() => sidecar.stop());

/**
 * Webhook filter: forwards only the publishes of some topics to an HTTP endpoint, with the
 * built-in HTTP output (batches of JSON lines, retries, dead-letter file). `--to URL` (required)
 * is the webhook; `--topic F` (repeatable; default `#`) the MQTT filters; `--http`
 * (default 127.0.0.1:8893) serves the sidecar's `/metrics`, `/healthz` and `/readyz`;
 * `--dead-letter FILE` (default /tmp/vmq-sidecar/webhook-dead-letter.ndjson) takes what the
 * webhook refuses (a 4xx); `--data-dir DIR` (default /tmp/vmq-sidecar/webhook-filter) holds the
 * disk journal of its backlog.
 *
 *     deno task example:webhook-filter --to http://127.0.0.1:9000/hook --topic 'alerts/#'
 *
 * @module
 */
import { loadConfig, Sidecar } from "../../lib/mod.ts";
import { parseFlags, sidecarConfig, stopOnSignals } from "../_flags.ts";

const flags = parseFlags(Deno.args, { http: "127.0.0.1:8893" }, [
  "to",
  "topic",
  "dead-letter",
  "data-dir",
]);
const to = flags.other.get("to")?.at(-1);
if (!to) throw new Error("--to URL is required (the webhook, e.g. http://127.0.0.1:9000/hook)");
const topics = flags.other.get("topic") ?? ["#"];
const deadLetter = flags.other.get("dead-letter")?.at(-1) ??
  "/tmp/vmq-sidecar/webhook-dead-letter.ndjson";

// The HTTP output exactly as `--out` builds it: on_publish events of these topics only.
const { outputs } = loadConfig({
  values: {
    outputs: [{
      url: to,
      hooks: ["on_publish"],
      topics,
      dead_letter: deadLetter,
      linger_ms: 20,
    }],
  },
  env: () => undefined,
});
// The HTTP output's backlog is journaled on disk (buffer=disk, the default for network outputs):
// under /tmp/vmq-sidecar, the one directory this example's permission set may write.
const dataDir = flags.other.get("data-dir")?.at(-1) ?? "/tmp/vmq-sidecar/webhook-filter";
const sidecar = await Sidecar.start({
  config: { ...sidecarConfig(flags.listen, flags.http), outputs, dataDir },
});
const a = sidecar.adminAddr!;
console.error(`webhook-filter: http on ${a.hostname}:${a.port}`);
console.error(`webhook-filter: plugin listener on ${sidecar.addr.hostname}:${sidecar.addr.port}`);
stopOnSignals(() => sidecar.stop());

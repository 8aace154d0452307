/**
 * MQTT topic filters (`+` one level, `#` the rest) applied to topic-bearing events: `topic`
 * of publish/deliver/delivery_complete/offline_message/message_drop, and `topics` of
 * subscribe/unsubscribe (the event passes when any of its topics matches). Events without a
 * topic are not filtered by topic.
 *
 * @module
 */
import { type EnvelopeRanges, parseEnvelope } from "../wire/envelope.ts";
import { forEachTopic } from "../codec/slots.ts";

/**
 * Whether MQTT topic filter `filter` matches `topic`. Per MQTT, wildcards at the first level
 * do not match topics starting with `$`.
 *
 * @example
 * ```ts
 * import { topicMatches } from "../mod.ts";
 * topicMatches("devices/+/telemetry", "devices/a1/telemetry"); // true
 * topicMatches("cmd/#", "cmd"); // true
 * ```
 */
export function topicMatches(filter: string, topic: string): boolean {
  const f = filter.split("/"), t = topic.split("/");
  if (topic.startsWith("$") && (f[0] === "+" || f[0] === "#")) return false;
  for (let i = 0; i < f.length; i++) {
    if (f[i] === "#") return true;
    if (i >= t.length) return false;
    if (f[i] !== "+" && f[i] !== t[i]) return false;
  }
  return f.length === t.length;
}

const ranges: EnvelopeRanges = { typeUrlStart: 0, typeUrlEnd: 0, valueStart: 0, valueEnd: 0 };

/**
 * Makes a frame filter for the pipeline from MQTT topic filters.
 *
 * @example
 * ```ts
 * import { topicFilter } from "../mod.ts";
 * const accept = topicFilter(["devices/#"]);
 * ```
 */
export function topicFilter(
  filters: readonly string[],
): (frame: Uint8Array, hook: number) => boolean {
  const anyMatch = (topic: string) => filters.some((f) => topicMatches(f, topic));
  return (frame, hook) => {
    if (parseEnvelope(frame, ranges) !== hook) return false;
    switch (forEachTopic(frame, hook, ranges.valueStart, ranges.valueEnd, anyMatch)) {
      case "matched":
        return true;
      case "unmatched":
        return false;
      case "no_topics":
        return true;
      case "malformed":
        return true; // let the output count it as undecodable
    }
  };
}

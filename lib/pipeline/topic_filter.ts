/**
 * MQTT topic filters (`+` one level, `#` the rest) applied to topic-bearing events: `topic`
 * of publish/deliver/delivery_complete/offline_message/message_drop, and `topics` of
 * subscribe/unsubscribe (the event passes when any of its topics matches). Events without a
 * topic are not filtered by topic.
 *
 * @module
 */
import { type EnvelopeRanges, parseEnvelope } from "../wire/envelope.ts";
import { HOOK_TABLES, Kind } from "../schema/tables.ts";
import { LEN, WireCursor, WireError } from "../wire/cursor.ts";

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

interface TopicField {
  no: number;
  /** For repeated messages (TopicInfo), the sub-field number holding the topic. */
  subNo: number;
}

// Per hook: where its topics are, or undefined for events without a topic.
const TOPIC_FIELDS: (TopicField | undefined)[] = HOOK_TABLES.map((t) => {
  for (const f of t.fields) {
    if (f.name === "topic" && f.kind === Kind.String) return { no: f.no, subNo: 0 };
    if (f.name === "topics" && f.kind === Kind.RepeatedString) return { no: f.no, subNo: 0 };
    if (f.name === "topics" && f.kind === Kind.RepeatedMessage) {
      const sub = f.sub!.fields.find((s) => s.name === "topic")!;
      return { no: f.no, subNo: sub.no };
    }
  }
  return undefined;
});

const cursor = new WireCursor();
const inner = new WireCursor();
const ranges: EnvelopeRanges = { typeUrlStart: 0, typeUrlEnd: 0, valueStart: 0, valueEnd: 0 };
const text = new TextDecoder("utf-8", { ignoreBOM: true });

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
    const tf = TOPIC_FIELDS[hook];
    if (!tf) return true;
    if (parseEnvelope(frame, ranges) < 0) return false;
    const c = cursor;
    c.reset(frame, ranges.valueStart, ranges.valueEnd);
    let topic = ""; // a plain topic field defaults to "" when absent; the last one wins
    try {
      while (c.pos < c.end) {
        const tag = c.varint32();
        if (tag >>> 3 !== tf.no || (tag & 7) !== LEN) {
          c.skip(tag & 7);
          continue;
        }
        const end = c.lenEnd();
        if (tf.subNo === 0) {
          topic = text.decode(frame.subarray(c.pos, end));
          if (TOPIC_IS_LIST[hook] && anyMatch(topic)) return true;
        } else if (anyMatch(subTopic(frame, c.pos, end, tf.subNo))) return true;
        c.pos = end;
      }
    } catch (e) {
      if (e instanceof WireError) return true; // let the output count it as undecodable
      throw e;
    }
    return TOPIC_IS_LIST[hook] ? false : anyMatch(topic);
  };
}

const TOPIC_IS_LIST = HOOK_TABLES.map((t) => t.fields.some((f) => f.name === "topics"));

function subTopic(frame: Uint8Array, start: number, end: number, no: number): string {
  const c = inner;
  c.reset(frame, start, end);
  let topic = "";
  while (c.pos < c.end) {
    const tag = c.varint32();
    if (tag >>> 3 === no && (tag & 7) === LEN) {
      const e = c.lenEnd();
      topic = text.decode(frame.subarray(c.pos, e));
      c.pos = e;
    } else c.skip(tag & 7);
  }
  return topic;
}

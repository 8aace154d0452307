// Private: the reader of record for event messages. One table-driven pass puts every field of a
// message into reused slots (numbers, byte ranges, range lists) without decoding a string;
// the JSON writer, the typed decoder and the field accessors below (topic filter, name
// templates, event time) all read events through it, so they cannot disagree on what a frame
// holds. Throws WireError on malformed bytes (callers turn it into their typed result).
import type { Timestamp } from "../schema/events.ts";
import { HOOK_TABLES, Kind, type MessageTable } from "../schema/tables.ts";
import { WireCursor, WireError } from "../wire/cursor.ts";

/** The parsed fields of one message (reused: valid until the next parse of the same table). */
export interface Slots {
  table: MessageTable;
  /** Numeric value (int32, enum, bool) or range start per field. */
  a: Int32Array;
  /** Range end per field; -1 when absent (0 for a present varint field). */
  b: Int32Array;
  /** Ranges (start, end pairs) of list-like fields: repeated, map, and sub-messages (merged). */
  lists: RangeList[];
  subs: (Slots | undefined)[];
  /** Indices of the list-like fields. */
  listFields: number[];
  /** The key of each field (`,"name":`), and as the first key of a nested object (`"name":`). */
  keys: Uint8Array[];
  nestedKeys: Uint8Array[];
}

/** (start, end) pairs in a reused, growable Int32Array: no allocation once warm. */
export class RangeList {
  v: Int32Array = new Int32Array(16);
  n = 0;
  push(start: number, end: number): void {
    if (this.n + 2 > this.v.length) {
      const g = new Int32Array(this.v.length * 2);
      g.set(this.v);
      this.v = g;
    }
    this.v[this.n++] = start;
    this.v[this.n++] = end;
  }
}

/** Whether fields of `kind` collect ranges in a {@linkcode RangeList} (repeated, map, message). */
export function isList(kind: Kind): boolean {
  return kind >= Kind.Timestamp;
}

const slotsByTable = new Map<MessageTable, Slots>();
/** The (shared, reused) slots of `table`. */
export function slotsOf(table: MessageTable): Slots {
  let s = slotsByTable.get(table);
  if (s) return s;
  const n = table.fields.length;
  s = {
    table,
    a: new Int32Array(n),
    b: new Int32Array(n),
    lists: [],
    subs: [],
    listFields: [],
    keys: table.fields.map((f) => f.key),
    nestedKeys: table.fields.map((f, i) => i === 0 ? f.key.slice(1) : f.key),
  };
  slotsByTable.set(table, s);
  for (let i = 0; i < n; i++) {
    s.lists.push(new RangeList());
    const sub = table.fields[i].sub;
    s.subs.push(sub && slotsOf(sub));
    if (isList(table.fields[i].kind)) s.listFields.push(i);
  }
  return s;
}

/** The slots of each hook's event message, by hook index. */
export const HOOK_SLOTS: readonly Slots[] = HOOK_TABLES.map(slotsOf);

const cursor = new WireCursor();

/**
 * Parses the message whose encoding is the concatenation of the `ranges` pairs `[from, to)` of
 * `buf` into `s`, merging in order as protobuf does: the last value of a scalar wins, repeated
 * and message fields collect every range. A known field number with another wire type is an
 * unknown field (skipped, as protoc does).
 */
export function parseSlots(
  buf: Uint8Array,
  s: Slots,
  ranges: RangeList,
  from = 0,
  to: number = ranges.n,
): void {
  const fields = s.table.fields, a = s.a, b = s.b, lists = s.lists, listFields = s.listFields;
  const indexByNo = s.table.indexByNo, list = ranges.v;
  b.fill(-1);
  for (let i = 0; i < listFields.length; i++) lists[listFields[i]].n = 0;
  const c = cursor;
  for (let r = from; r < to; r += 2) {
    c.reset(buf, list[r], list[r + 1]);
    while (c.pos < c.end) {
      const tag = c.tag();
      const idx = indexByNo[tag >>> 3];
      const wt = tag & 7;
      if (idx === undefined) {
        c.skip(tag);
        continue;
      }
      const f = fields[idx];
      if (wt !== f.wireType) {
        c.skip(tag); // a known number with another wire type is an unknown field, as in protoc
        continue;
      }
      if (wt === 0) {
        a[idx] = f.kind === Kind.Bool ? (c.varint64() !== 0 ? 1 : 0) : c.varint32();
        b[idx] = 0;
      } else {
        const end = c.lenEnd();
        if (isList(f.kind)) lists[idx].push(c.pos, end);
        else {
          a[idx] = c.pos;
          b[idx] = end;
        }
        c.pos = end;
      }
    }
  }
}

const valueRange = new RangeList();
/** Parses the event message `buf[valueStart, valueEnd)` of hook index `hook`; returns its slots. */
export function parseEvent(
  buf: Uint8Array,
  hook: number,
  valueStart: number,
  valueEnd: number,
): Slots {
  const s = HOOK_SLOTS[hook];
  valueRange.n = 0;
  valueRange.push(valueStart, valueEnd);
  parseSlots(buf, s, valueRange);
  return s;
}

/** A `google.protobuf.Timestamp` as read: seconds as a double (exact to 2⁵³), nanos as int32. */
export interface TimestampParts {
  seconds: number;
  nanos: number;
}

/** Reads the Timestamp whose encoding is the concatenation of `ranges` (merged: last wins). */
export function readTimestamp(buf: Uint8Array, ranges: RangeList, out: TimestampParts): void {
  let seconds = 0, nanos = 0;
  const c = cursor, list = ranges.v;
  for (let r = 0; r < ranges.n; r += 2) {
    c.reset(buf, list[r], list[r + 1]);
    while (c.pos < c.end) {
      const tag = c.tag();
      if (tag === 0x08) seconds = c.varint64();
      else if (tag === 0x10) nanos = c.varint32();
      else c.skip(tag);
    }
  }
  out.seconds = seconds;
  out.nanos = nanos;
}

/** {@linkcode readTimestamp} with exact int64 seconds (the typed decoder's slow path). */
export function readTimestampExact(buf: Uint8Array, ranges: RangeList): Timestamp {
  let seconds = 0n, nanos = 0;
  const c = cursor, list = ranges.v;
  for (let r = 0; r < ranges.n; r += 2) {
    c.reset(buf, list[r], list[r + 1]);
    while (c.pos < c.end) {
      const tag = c.tag();
      if (tag === 0x08) seconds = c.varint64BigInt();
      else if (tag === 0x10) nanos = c.varint32();
      else c.skip(tag);
    }
  }
  return { seconds, nanos };
}

/**
 * The key and value ranges of each `map<string,string>` entry in `ranges` (one entry per
 * pair), into `keys` and `values` (reset first). An entry without a key or value has `(0, 0)`.
 * Entries keep their wire order; duplicates are the caller's business (last value wins).
 */
export function readMapEntries(
  buf: Uint8Array,
  ranges: RangeList,
  keys: RangeList,
  values: RangeList,
): void {
  keys.n = values.n = 0;
  const list = ranges.v, c = cursor;
  for (let r = 0; r < ranges.n; r += 2) {
    let ks = 0, ke = 0, vs = 0, ve = 0;
    c.reset(buf, list[r], list[r + 1]);
    while (c.pos < c.end) {
      const tag = c.tag();
      if (tag === 0x0a || tag === 0x12) {
        const end = c.lenEnd();
        if (tag === 0x0a) (ks = c.pos), (ke = end);
        else (vs = c.pos), (ve = end);
        c.pos = end;
      } else c.skip(tag);
    }
    keys.push(ks, ke);
    values.push(vs, ve);
  }
}

// ---------------------------------------------------------------------------------------------
// Field accessors: one field of an event, read through the slots.

const utf8 = new TextDecoder("utf-8", { ignoreBOM: true });

/**
 * `buf[start, end)` as text (lenient UTF-8: invalid sequences become U+FFFD). Short ASCII —
 * topics, client ids, mountpoints — is built in place: a TextDecoder call costs more than the
 * field itself.
 */
export function decodeText(buf: Uint8Array, start: number, end: number): string {
  if (end - start <= 64) {
    let ascii = true;
    for (let i = start; i < end; i++) if (buf[i] >= 0x80) ascii = false;
    if (ascii) {
      return String.fromCharCode.apply(null, buf.subarray(start, end) as unknown as number[]);
    }
  }
  return utf8.decode(buf.subarray(start, end));
}

const FIELD_INDEX: readonly Map<string, number>[] = HOOK_TABLES.map((t) =>
  new Map(t.fields.map((f, i) => [f.name, i]))
);

/**
 * The value of top-level string field `name` of the event message `buf[vs, ve)` of hook index
 * `hook`: `""` when absent (proto3 default), when the hook has no such string field, or when
 * the message is malformed (the output counts it as undecodable anyway). Invalid UTF-8 becomes
 * U+FFFD, as in the JSON form.
 */
export function stringField(
  buf: Uint8Array,
  hook: number,
  vs: number,
  ve: number,
  name: string,
): string {
  one[0] = name;
  stringFields(buf, hook, vs, ve, one, oneOut);
  return oneOut[0];
}
const one = [""], oneOut = [""];

/** {@linkcode stringField} for several `names` with one parse: `out[k]` is `names[k]`'s value. */
export function stringFields(
  buf: Uint8Array,
  hook: number,
  vs: number,
  ve: number,
  names: readonly string[],
  out: string[],
): void {
  let s: Slots | undefined;
  try {
    s = parseEvent(buf, hook, vs, ve);
  } catch (e) {
    if (!(e instanceof WireError)) throw e;
  }
  const fields = HOOK_TABLES[hook].fields, index = FIELD_INDEX[hook];
  for (let k = 0; k < names.length; k++) {
    const i = index.get(names[k]);
    out[k] = s === undefined || i === undefined || fields[i].kind !== Kind.String || s.b[i] < 0
      ? ""
      : decodeText(buf, s.a[i], s.b[i]);
  }
}

/** What {@linkcode forEachTopic} found. */
export type TopicScan =
  /** `fn` returned true for a topic (the scan stopped there). */
  | "matched"
  /** `fn` saw every topic (possibly none) and returned false for each. */
  | "unmatched"
  /** The hook's events carry no topic. */
  | "no_topics"
  /** The event message is malformed; `fn` may have seen some of its topics. */
  | "malformed";

interface TopicPlace {
  /** Index of the `topic` / `topics` field. */
  index: number;
  kind: Kind;
  /** For repeated TopicInfo: index of `topic` in the sub-message. */
  subIndex: number;
}
const TOPIC_PLACE: readonly (TopicPlace | undefined)[] = HOOK_TABLES.map((t) => {
  for (let index = 0; index < t.fields.length; index++) {
    const f = t.fields[index];
    if (f.name === "topic" && f.kind === Kind.String) return { index, kind: f.kind, subIndex: -1 };
    if (f.name === "topics" && f.kind === Kind.RepeatedString) {
      return { index, kind: f.kind, subIndex: -1 };
    }
    if (f.name === "topics" && f.kind === Kind.RepeatedMessage) {
      const subIndex = f.sub!.fields.findIndex((s) => s.name === "topic" && s.kind === Kind.String);
      if (subIndex >= 0) return { index, kind: f.kind, subIndex };
    }
  }
  return undefined;
});

/**
 * Calls `fn` with each topic of the event message `buf[vs, ve)` of hook index `hook` — `topic`
 * of publish/deliver/delivery_complete/offline_message/message_drop (once, `""` when absent),
 * each `topics` entry of subscribe/unsubscribe — until `fn` returns true.
 */
export function forEachTopic(
  buf: Uint8Array,
  hook: number,
  vs: number,
  ve: number,
  fn: (topic: string) => boolean,
): TopicScan {
  const place = TOPIC_PLACE[hook];
  if (!place) return "no_topics";
  try {
    const s = parseEvent(buf, hook, vs, ve), i = place.index;
    if (place.kind === Kind.String) {
      const topic = s.b[i] < 0 ? "" : decodeText(buf, s.a[i], s.b[i]);
      return fn(topic) ? "matched" : "unmatched";
    }
    const list = s.lists[i], v = list.v, n = list.n;
    if (place.kind === Kind.RepeatedString) {
      for (let r = 0; r < n; r += 2) {
        if (fn(decodeText(buf, v[r], v[r + 1]))) return "matched";
      }
      return "unmatched";
    }
    const sub = s.subs[i]!, j = place.subIndex;
    for (let r = 0; r < n; r += 2) {
      parseSlots(buf, sub, list, r, r + 2);
      if (fn(sub.b[j] < 0 ? "" : decodeText(buf, sub.a[j], sub.b[j]))) return "matched";
    }
    return "unmatched";
  } catch (e) {
    if (e instanceof WireError) return "malformed";
    throw e;
  }
}

const TIMESTAMP_INDEX: readonly number[] = HOOK_TABLES.map((t) =>
  t.fields.findIndex((f) => f.name === "timestamp" && f.kind === Kind.Timestamp)
);
const ts: TimestampParts = { seconds: 0, nanos: 0 };
const tsRanges = new RangeList();

/** How {@linkcode timestampRanges} reads a field, by field number (what parseSlots reads). */
const SCAN_UNKNOWN = 0, SCAN_INT = 1, SCAN_BOOL = 2, SCAN_LEN = 3, SCAN_TIMESTAMP = 4;
/** Per hook index: the {@linkcode SCAN_UNKNOWN}… code of each field number of its event. */
const TIMESTAMP_SCAN: readonly Uint8Array[] = HOOK_TABLES.map((t, h) => {
  const codes = new Uint8Array(Math.max(0, ...t.fields.map((f) => f.no)) + 1);
  t.fields.forEach((f, i) => {
    codes[f.no] = i === TIMESTAMP_INDEX[h]
      ? SCAN_TIMESTAMP
      : f.wireType === 0
      ? (f.kind === Kind.Bool ? SCAN_BOOL : SCAN_INT)
      : SCAN_LEN;
  });
  return codes;
});

/**
 * The ranges of the timestamp field of the event message `buf[vs, ve)` of hook index `hook`
 * into `tsRanges`: {@linkcode parseSlots}'s pass (the same reads, so the same bytes are
 * malformed) without storing the other fields. The router reads one event time per socket
 * read; a full parse there cost ~0.25 µs per read, a third of a small read's routing.
 */
function timestampRanges(buf: Uint8Array, hook: number, vs: number, ve: number): void {
  const codes = TIMESTAMP_SCAN[hook], c = cursor;
  tsRanges.n = 0;
  c.reset(buf, vs, ve);
  while (c.pos < c.end) {
    const tag = c.tag();
    const no = tag >>> 3, wt = tag & 7;
    const code = no < codes.length ? codes[no] : SCAN_UNKNOWN;
    // A known number with another wire type is an unknown field, as in parseSlots.
    if (code === SCAN_UNKNOWN || wt !== (code <= SCAN_BOOL ? 0 : 2)) c.skip(tag);
    else if (code === SCAN_INT) c.varint32();
    else if (code === SCAN_BOOL) c.varint64();
    else {
      const end = c.lenEnd();
      if (code === SCAN_TIMESTAMP) tsRanges.push(c.pos, end);
      c.pos = end;
    }
  }
}

/**
 * Milliseconds since the Unix epoch of the `timestamp` of the event message `buf[vs, ve)` of
 * hook index `hook` (merged like every other reader: the last seconds/nanos win); `Infinity`
 * when it has none, its seconds are not positive, or the message is malformed.
 */
export function eventTimeMs(buf: Uint8Array, hook: number, vs: number, ve: number): number {
  const i = TIMESTAMP_INDEX[hook];
  if (i < 0) return Infinity;
  try {
    timestampRanges(buf, hook, vs, ve);
    readTimestamp(buf, tsRanges, ts);
  } catch (e) {
    if (e instanceof WireError) return Infinity;
    throw e;
  }
  // No seconds (an empty or zero timestamp): not a time the broker could have sent.
  return ts.seconds > 0 ? ts.seconds * 1000 + ts.nanos / 1e6 : Infinity;
}

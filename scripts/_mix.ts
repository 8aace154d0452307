// Private to the scripts: a tiny protobuf encoder and a realistic event mix, the same mix as
// the Go peer's `mkstream -kind mix` (40% on_publish, 40% on_deliver, 5% on_delivery_complete,
// 5% on_subscribe, 3% on_register, 3% on_client_offline, 2% on_unsubscribe, 2% on_client_gone;
// payloads uniformly random 64..512 bytes; ≈435 bytes a frame).
//
// Every frame's timestamp is encoded with a fixed width (5-byte seconds, 5-byte nanos — a
// padded varint, which protobuf decoders accept) at a known offset, so the load generator can
// stamp the send time into a frame in place (`stampFrame`) to measure end-to-end latency.

import { encodeFrame } from "../lib/mod.ts";

const enc = new TextEncoder();

/** A deterministic PRNG (mulberry32) returning floats in [0, 1). */
export function rng32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A growable protobuf writer (proto3: default values are left out by the helpers). */
export class PbWriter {
  buf = new Uint8Array(1024);
  pos = 0;

  #room(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const next = new Uint8Array(Math.max(this.buf.length * 2, this.pos + n));
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
  }

  varint(v: number): void {
    this.#room(10);
    while (v >= 0x80) {
      this.buf[this.pos++] = (v % 128) | 0x80;
      v = Math.floor(v / 128);
    }
    this.buf[this.pos++] = v;
  }

  /** A varint padded to exactly 5 bytes (values < 2^35). */
  varint5(v: number): void {
    this.#room(5);
    for (let i = 0; i < 4; i++) {
      this.buf[this.pos++] = (v % 128) | 0x80;
      v = Math.floor(v / 128);
    }
    this.buf[this.pos++] = v;
  }

  raw(b: Uint8Array): void {
    this.#room(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }

  lenField(no: number, b: Uint8Array): void {
    this.varint((no << 3) | 2);
    this.varint(b.length);
    this.raw(b);
  }

  string(no: number, s: string): void {
    if (s !== "") this.lenField(no, enc.encode(s));
  }

  bytes(no: number, b: Uint8Array): void {
    if (b.length > 0) this.lenField(no, b);
  }

  int(no: number, v: number): void {
    if (v === 0) return;
    this.varint(no << 3);
    this.varint(v);
  }

  bool(no: number, v: boolean): void {
    if (v) this.int(no, 1);
  }

  /** Field `no` as a sub-message written by `fn` (always present, even when empty). */
  message(no: number, fn: (w: PbWriter) => void): void {
    const w = new PbWriter();
    fn(w);
    this.lenField(no, w.finish());
  }

  /** Field 1 as a Timestamp of fixed width: 0a 0c 08 <5 bytes> 10 <5 bytes>. */
  timestamp(seconds: number, nanos: number): void {
    this.#room(14);
    this.buf[this.pos++] = 0x0a;
    this.buf[this.pos++] = 12;
    this.buf[this.pos++] = 0x08;
    this.varint5(seconds);
    this.buf[this.pos++] = 0x10;
    this.varint5(nanos);
  }

  finish(): Uint8Array {
    return this.buf.slice(0, this.pos);
  }
}

const TYPE_PREFIX = "type.googleapis.com/eventssidecar.v1.";

/** Wraps an event message into a frame: u32 length + `Any{type_url, value}`. */
export function frameOf(message: string, value: Uint8Array): Uint8Array {
  const any = new PbWriter();
  any.string(1, TYPE_PREFIX + message);
  any.lenField(2, value);
  return encodeFrame(any.finish());
}

/** The kinds of the mix with their share in percent. */
export const MIX: readonly (readonly [string, number])[] = [
  ["OnPublish", 40],
  ["OnDeliver", 40],
  ["OnDeliveryComplete", 5],
  ["OnSubscribe", 5],
  ["OnRegister", 3],
  ["OnClientOffline", 3],
  ["OnUnsubscribe", 2],
  ["OnClientGone", 2],
];

/** Options of {@linkcode MixGenerator}. */
export interface MixOptions {
  /** Seed of the PRNG (default 1). */
  seed?: number;
  /** `mix` (default) or `publish` (only OnPublish). */
  kind?: "mix" | "publish";
  /** Smallest payload (default 64). */
  payloadMin?: number;
  /** Largest payload (default 512). */
  payloadMax?: number;
  /** Distinct clients (default 1000). */
  clients?: number;
}

const REASONS = [2, 5, 17, 9]; // normal disconnect, keep alive, tcp closed, client disconnect
const DEVICE_TYPES = ["sensor-v2", "sensor-v3", "gateway"];
const REGIONS = ["eu-west-1", "us-east-1", "ap-south-1"];

/** Generates realistic frames, deterministic for a seed. */
export class MixGenerator {
  readonly #rnd: () => number;
  readonly #kind: "mix" | "publish";
  readonly #pmin: number;
  readonly #pmax: number;
  readonly #sessions: string[] = [];
  readonly #clients: number;
  #clockMs = 1717171717123;
  #clockNs = 456789;

  constructor(o: MixOptions = {}) {
    this.#rnd = rng32(o.seed ?? 1);
    this.#kind = o.kind ?? "mix";
    this.#pmin = o.payloadMin ?? 64;
    this.#pmax = o.payloadMax ?? 512;
    this.#clients = o.clients ?? 1000;
    for (let i = 0; i < this.#clients; i++) this.#sessions.push(this.#uuid());
  }

  #int(n: number): number {
    return Math.floor(this.#rnd() * n);
  }

  #uuid(): string {
    const h = (n: number) => {
      let s = "";
      for (let i = 0; i < n; i++) s += "0123456789abcdef"[this.#int(16)];
      return s;
    };
    return `${h(8)}-${h(4)}-4${h(3)}-${"89ab"[this.#int(4)]}${h(3)}-${h(12)}`;
  }

  #payload(): Uint8Array {
    const n = this.#pmin + this.#int(this.#pmax - this.#pmin + 1);
    const p = new Uint8Array(n);
    for (let i = 0; i < n; i += 4) {
      const v = (this.#rnd() * 4294967296) >>> 0;
      p[i] = v;
      if (i + 1 < n) p[i + 1] = v >>> 8;
      if (i + 2 < n) p[i + 2] = v >>> 16;
      if (i + 3 < n) p[i + 3] = v >>> 24;
    }
    return p;
  }

  #ts(w: PbWriter): void {
    // 1..100 µs later, with nanos, like mkstream.
    const stepNs = 1000 + this.#int(99000);
    this.#clockNs += stepNs;
    this.#clockMs += Math.floor(this.#clockNs / 1e6);
    this.#clockNs %= 1e6;
    const ms = this.#clockMs;
    w.timestamp(Math.floor(ms / 1000), (ms % 1000) * 1e6 + this.#clockNs);
  }

  #acl(w: PbWriter, no: number): void {
    w.message(no, (m) => {
      m.string(1, "devices");
      m.string(2, "devices/+/telemetry");
    });
  }

  /** The kinds of `n` frames with the exact shares of the mix, shuffled. */
  kinds(n: number): string[] {
    if (this.#kind === "publish") return new Array(n).fill("OnPublish");
    const kinds: string[] = [];
    for (const [k, pct] of MIX) for (let i = 0; i < Math.floor(n * pct / 100); i++) kinds.push(k);
    while (kinds.length < n) kinds.push("OnPublish");
    for (let i = kinds.length - 1; i > 0; i--) {
      const j = this.#int(i + 1);
      [kinds[i], kinds[j]] = [kinds[j], kinds[i]];
    }
    return kinds;
  }

  /** One frame (length prefix included) of message `kind`. */
  frame(kind: string): Uint8Array {
    const w = new PbWriter();
    const id = this.#int(this.#clients);
    const cid = `client-${id}`, user = `user-${id}`, sess = this.#sessions[id];
    const topic = (i: number) => `devices/${i}/telemetry`;
    this.#ts(w);
    switch (kind) {
      case "OnPublish":
        w.string(2, user);
        w.string(3, cid);
        w.int(5, this.#int(3));
        w.string(6, topic(id));
        w.bytes(7, this.#payload());
        w.bool(8, this.#int(20) === 0);
        this.#acl(w, 9);
        w.string(10, sess);
        break;
      case "OnDeliver":
      case "OnDeliveryComplete": {
        const to = this.#int(this.#clients);
        w.string(2, `user-${to}`);
        w.string(3, `client-${to}`);
        w.string(5, topic(id));
        w.int(6, kind === "OnDeliver" ? this.#int(3) : 1 + this.#int(2));
        w.bool(7, kind === "OnDeliver" && this.#int(20) === 0);
        w.bytes(8, this.#payload());
        this.#acl(w, 9);
        w.bool(10, this.#int(10) === 0);
        w.string(11, this.#sessions[to]);
        break;
      }
      case "OnSubscribe":
        w.string(2, cid);
        w.string(4, user);
        for (const [t, q] of [[id, 1], [this.#int(this.#clients), this.#int(3)]]) {
          w.message(5, (m) => {
            m.string(1, topic(t));
            m.int(2, q);
            this.#acl(m, 3);
          });
        }
        w.string(6, sess);
        break;
      case "OnRegister": {
        const peer = `10.${this.#int(256)}.${this.#int(256)}.${1 + this.#int(254)}`;
        w.string(2, peer);
        w.int(3, 30000 + this.#int(30000));
        w.string(4, user);
        w.string(6, cid);
        const props: [string, string][] = [
          ["app_version", `1.${this.#int(10)}.${this.#int(20)}`],
          ["device_type", DEVICE_TYPES[this.#int(3)]],
          ["region", REGIONS[id % 3]],
        ];
        for (const [k, v] of props) {
          w.message(7, (m) => {
            m.string(1, k);
            m.string(2, v);
          });
        }
        w.string(8, sess);
        break;
      }
      case "OnClientOffline":
      case "OnClientGone":
        w.string(2, cid);
        w.int(4, REASONS[this.#int(REASONS.length)]);
        w.string(5, user);
        w.string(6, sess);
        break;
      case "OnUnsubscribe":
        w.string(2, user);
        w.string(3, cid);
        w.string(5, topic(id));
        w.string(6, sess);
        break;
      default:
        throw new Error(`unknown kind ${kind}`);
    }
    return frameOf(kind, w.finish());
  }
}

/**
 * Offset of the 5-byte `seconds` varint inside a frame written by {@linkcode MixGenerator}
 * (length prefix included), or -1 when the frame does not carry a fixed-width timestamp.
 */
export function timestampOffset(frame: Uint8Array, at = 0): number {
  let p = at + 4;
  if (frame[p] !== 0x0a) return -1;
  const urlLen = frame[p + 1];
  p += 2 + urlLen;
  if (frame[p++] !== 0x12) return -1;
  while (frame[p++] >= 0x80); // value length
  if (frame[p] !== 0x0a || frame[p + 1] !== 12 || frame[p + 2] !== 0x08) return -1;
  return p + 3;
}

/** Writes `ms` (a Unix time in ms, fractional) into the fixed-width timestamp at `off`. */
export function stampAt(buf: Uint8Array, off: number, ms: number): void {
  let s = Math.floor(ms / 1000);
  let ns = Math.floor((ms - s * 1000) * 1e6);
  for (let i = 0; i < 4; i++) {
    buf[off++] = (s % 128) | 0x80;
    s = Math.floor(s / 128);
  }
  buf[off++] = s;
  off++; // 0x10
  for (let i = 0; i < 4; i++) {
    buf[off++] = (ns % 128) | 0x80;
    ns = Math.floor(ns / 128);
  }
  buf[off] = ns;
}

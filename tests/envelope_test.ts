// The envelope parser and type_url lookup on the hot path, against a plain reference: every
// type_url at every alignment, every single-byte change of one, and envelopes encoded in ways
// the plugin does not use (fields reordered or repeated, unknown fields, long varints, cut).
import { assertEquals } from "./_assert.ts";
import {
  hookIndexOfTypeUrl,
  HOOKS,
  MALFORMED_ENVELOPE,
  parseEnvelopeAt,
  typeUrlOf,
  UNKNOWN_TYPE,
} from "../lib/internal.ts";
import { concat, mulberry32, randomBytes, tag, varint } from "./_vectors.ts";

const utf8 = new TextEncoder();
const URLS = HOOKS.map((h) => typeUrlOf(h));

function lookupAt(url: Uint8Array, offset: number): number {
  const buf = new Uint8Array(offset + url.length + 3).fill(0x2e);
  buf.set(url, offset);
  return hookIndexOfTypeUrl(buf, offset, offset + url.length);
}

Deno.test("hookIndexOfTypeUrl: every type_url at every alignment, and only those", () => {
  const dec = new TextDecoder();
  for (let h = 0; h < URLS.length; h++) {
    const url = utf8.encode(URLS[h]);
    for (let offset = 0; offset < 9; offset++) assertEquals(lookupAt(url, offset), h, URLS[h]);
    assertEquals(lookupAt(url.subarray(0, url.length - 1), 3), -1);
    assertEquals(lookupAt(concat([url, Uint8Array.of(0x73)]), 3), -1);
    // Any one byte changed — including to bytes whose 8-byte piece reads as NaN or zero.
    for (let i = 0; i < url.length; i++) {
      for (const b of [url[i] ^ 1, url[i] ^ 0x20, 0x00, 0x7f, 0xff, 0xf0, 0x80]) {
        const changed = url.slice();
        changed[i] = b;
        const want = URLS.indexOf(dec.decode(changed));
        assertEquals(lookupAt(changed, i % 8), want, `${URLS[h]} byte ${i} = ${b}`);
      }
    }
  }
  assertEquals(lookupAt(new Uint8Array(0), 0), -1);
  assertEquals(lookupAt(new Uint8Array(46).fill(0xff), 1), -1);
});

/** A plain reading of an `Any`: last type_url and value win; -3 marks malformed. */
function reference(buf: Uint8Array, start: number, end: number): [number, number, number] {
  let p = start, url: [number, number] = [start, start], value: [number, number] = [start, start];
  const varintAt = (): number => {
    let v = 0, mul = 1;
    for (let i = 0; i < 10; i++) {
      if (p >= end) throw new Error("cut");
      const b = buf[p++];
      v += (b & 0x7f) * mul;
      mul *= 128;
      if (b < 0x80) return v;
    }
    throw new Error("long varint");
  };
  try {
    while (p < end) {
      const t = varintAt(), no = Math.floor(t / 8), wt = t % 8;
      if (no === 0 || ((no === 1 || no === 2) && wt !== 2)) return [MALFORMED_ENVELOPE, 0, 0];
      if (wt === 0) varintAt();
      else if (wt === 1 || wt === 5) p += wt === 1 ? 8 : 4;
      else if (wt === 2) {
        const n = varintAt();
        if (p + n > end) throw new Error("cut");
        if (no === 1) url = [p, p + n];
        if (no === 2) value = [p, p + n];
        p += n;
      } else throw new Error("wire type");
      if (p > end) throw new Error("cut");
    }
  } catch {
    return [MALFORMED_ENVELOPE, 0, 0];
  }
  const hook = URLS.indexOf(new TextDecoder().decode(buf.subarray(url[0], url[1])));
  return [hook < 0 ? UNKNOWN_TYPE : hook, value[0], value[1]];
}

Deno.test("parseEnvelopeAt equals a plain reading on the plugin's encoding and on others", () => {
  const rng = mulberry32(11);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rng() * xs.length)];
  /** A LEN field, its length varint sometimes padded to a non-minimal form. */
  const lenField = (no: number, data: Uint8Array): Uint8Array => {
    const len = varint(data.length);
    if (rng() < 0.2) {
      len[len.length - 1] |= 0x80;
      len.push(0);
    }
    return concat([Uint8Array.from([...tag(no, 2), ...len]), data]);
  };
  const ranges = { typeUrlStart: 0, typeUrlEnd: 0, valueStart: 0, valueEnd: 0 };
  for (let round = 0; round < 3000; round++) {
    const url = utf8.encode(rng() < 0.9 ? pick(URLS) : pick(URLS) + "x");
    const value = randomBytes(pick([0, 1, 20, 127, 128, 300, 20000, 16383, 16384]), rng);
    const parts = [lenField(1, url), lenField(2, value)];
    const r = rng();
    if (r < 0.1) parts.reverse();
    else if (r < 0.2) parts.push(Uint8Array.from([...tag(3, 0), ...varint(5)]));
    else if (r < 0.3) parts.unshift(lenField(1, utf8.encode(pick(URLS))));
    else if (r < 0.35) parts.push(lenField(2, value.subarray(1)));
    else if (r < 0.4) parts.push(Uint8Array.from(tag(1, 0)));
    let body = concat(parts);
    if (rng() < 0.15) body = body.subarray(0, Math.floor(rng() * body.length));
    const offset = Math.floor(rng() * 8);
    // Whatever follows a frame in the read buffer (the next frame, stale bytes) must not count.
    const buf = randomBytes(offset + body.length + 4, rng);
    buf.set(body, offset);
    const want = reference(buf, offset, offset + body.length);
    const got = parseEnvelopeAt(buf, offset, offset + body.length, ranges);
    assertEquals(got, want[0], `round ${round}`);
    if (got >= 0) assertEquals([ranges.valueStart, ranges.valueEnd], [want[1], want[2]]);
  }
});

Deno.test("parseEnvelopeAt: a value length cut by the frame's end is malformed, whatever follows", () => {
  const ranges = { typeUrlStart: 0, typeUrlEnd: 0, valueStart: 0, valueEnd: 0 };
  const url = utf8.encode(URLS[2]);
  const head = concat([Uint8Array.of(0x0a, url.length), url, Uint8Array.of(0x12)]);
  // The value's length varint (3 bytes for ≥ 16 KiB) stops after 0, 1 or 2 of its bytes.
  for (const lenBytes of [[], [0x80], [0x80, 0x80]]) {
    for (const after of [0x00, 0x7f, 0x80, 0xff]) {
      const frame = concat([head, Uint8Array.from(lenBytes)]);
      const buf = concat([frame, new Uint8Array(8).fill(after)]);
      assertEquals(
        parseEnvelopeAt(buf, 0, frame.length, ranges),
        MALFORMED_ENVELOPE,
        `${lenBytes} | ${after}`,
      );
    }
  }
});

// The one length-prefix helper: big-endian, unsigned, every boundary value; encodeFrame and
// forEachFrame agree with an independent DataView encoding.
import { encodeFrame, forEachFrame } from "../lib/mod.ts";
import { FRAME_HEADER, readLength, writeLength } from "../lib/internal.ts";
import { assert, assertBytesEqual, assertEquals, assertStrictEquals } from "./_assert.ts";
import { mulberry32, randomBytes } from "./_vectors.ts";

Deno.test("length prefix: readLength/writeLength are u32 big-endian at any offset", () => {
  const values = [0, 1, 0x7f, 0x80, 0xff, 0x100, 0xffff, 0x10000, 0x7fffffff, 0x80000000];
  values.push(0xffffffff, 64 * 1024 * 1024, 64 * 1024 * 1024 + 1);
  for (const n of values) {
    for (const at of [0, 1, 3]) {
      const b = new Uint8Array(at + 8).fill(0xaa);
      writeLength(b, at, n);
      const expected = new Uint8Array(at + 8).fill(0xaa);
      new DataView(expected.buffer).setUint32(at, n);
      assertBytesEqual(b, expected, `writeLength(${n}) at ${at}`);
      assertStrictEquals(readLength(b, at), n);
    }
  }
  assertStrictEquals(FRAME_HEADER, 4);
});

Deno.test("length prefix: encodeFrame and forEachFrame round-trip random bodies", () => {
  const rng = mulberry32(11);
  const bodies = Array.from(
    { length: 50 },
    (_, i) => randomBytes(i === 7 ? 0 : Math.floor(rng() * 300), rng),
  );
  const frames = bodies.map(encodeFrame);
  for (let i = 0; i < bodies.length; i++) {
    const dv = new DataView(frames[i].buffer);
    assertStrictEquals(dv.getUint32(0), bodies[i].length);
    assertBytesEqual(frames[i].subarray(4), bodies[i]);
  }
  const bytes = new Uint8Array(frames.reduce((n, f) => n + f.length, 0));
  let p = 0;
  for (const f of frames) bytes.set(f, p), p += f.length;
  const seen: number[] = [];
  forEachFrame({ bytes, count: frames.length }, (frame, index) => {
    assertBytesEqual(frame, bodies[index], `frame ${index}`);
    seen.push(index);
  });
  assertEquals(seen, bodies.map((_, i) => i));
});

/**
 * Files that still read a length prefix by hand, each with its reason. Remove an entry once the
 * file uses readLength: a listed file without such a read fails the test.
 */
const OWN_LENGTH_READS: Record<string, string> = {};

Deno.test("length prefix: lib/ reads it only through wire/length_prefix.ts (issue 11 item 5)", async () => {
  const lib = new URL("../lib/", import.meta.url);
  // The big-endian u32 read written out: `(b[p] << 24) | … >>> 0`.
  const ownRead = /<<\s*24\)\s*\|[^;]*>>>\s*0/;
  const found: string[] = [];
  const walk = async (dir: URL): Promise<void> => {
    for await (const e of Deno.readDir(dir)) {
      if (e.isDirectory) await walk(new URL(`${e.name}/`, dir));
      else if (e.name.endsWith(".ts")) {
        const url = new URL(e.name, dir);
        if (ownRead.test(await Deno.readTextFile(url))) found.push(url.href.slice(lib.href.length));
      }
    }
  };
  await walk(lib);
  const unexpected = found.filter((f) => f !== "wire/length_prefix.ts" && !(f in OWN_LENGTH_READS));
  assertEquals(
    unexpected.sort(),
    [],
    "read the length prefix with readLength (wire/length_prefix.ts)",
  );
  assert(
    found.includes("wire/length_prefix.ts"),
    "the pattern no longer matches readLength itself",
  );
  for (const f of Object.keys(OWN_LENGTH_READS)) {
    assert(found.includes(f), `${f} no longer reads the length prefix by hand: drop its entry`);
  }
});

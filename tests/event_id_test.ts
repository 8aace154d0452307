// The event id of a batch (EventIds: the 4-lane WebAssembly SHA-256, and its JavaScript
// fallback) against WebCrypto's SHA-256 (the first 16 bytes, hex): the fixture vectors and the
// large ones, every length 0..300, random lengths up to 70 KiB, batches of 1..9 frames of mixed
// lengths (each lane ends and refills at different blocks), subarrays at odd offsets, batches
// larger than the module's memory and a frame larger than it.
import { assert, assertEquals } from "./_assert.ts";
import { ByteBuffer, eventIdBackend, EventIds, eventIdWasmBytes } from "../lib/internal.ts";
import { allVectors, concat } from "./_vectors.ts";
import { encodeFrame } from "../lib/mod.ts";
import { renderSha256WasmModule, SHA256_WASM_FILE } from "../scripts/gen_sha256_wasm.ts";

const text = new TextDecoder();
const CAP = 4 * 1024 * 1024; // SHA256_WASM_MAX_PAGES pages

async function webCryptoIds(frames: readonly Uint8Array[]): Promise<string[]> {
  return await Promise.all(frames.map(async (f) => {
    const d = new Uint8Array(await crypto.subtle.digest("SHA-256", f.slice()));
    return [...d.subarray(0, 16)].map((b) => b.toString(16).padStart(2, "0")).join("");
  }));
}

function split(hex: Uint8Array, n: number): string[] {
  return Array.from({ length: n }, (_, i) => text.decode(hex.subarray(32 * i, 32 * i + 32)));
}

/** A small deterministic PRNG (tests must be reproducible). */
function rng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function bytes(n: number, seed: number): Uint8Array {
  const r = rng(seed);
  return Uint8Array.from({ length: n }, () => (r() * 256) | 0);
}

/**
 * Checks `frames` through both entry points: `ofBatch` over the length-prefixed batch (at an odd
 * offset of a larger buffer) and `of` over the frames themselves.
 */
async function check(ids: EventIds, frames: readonly Uint8Array[], what: string): Promise<void> {
  const want = await webCryptoIds(frames);
  const batch = concat(frames.map((f) => encodeFrame(f)));
  const padded = new Uint8Array(batch.length + 8);
  padded.set(batch, 3);
  const view = padded.subarray(3, 3 + batch.length);
  assertEquals(split(ids.ofBatch(view, frames.length), frames.length), want, `${what} (ofBatch)`);
  assertEquals(split(ids.of(frames), frames.length), want, `${what} (of)`);
}

// First in the file: the module is instantiated by this test (the others share it).
Deno.test("EventIds: the module's memory grows only to the largest call, never past 4 MiB", () => {
  assertEquals(eventIdWasmBytes(), 0, "not instantiated before its first use");
  assertEquals(eventIdBackend("wasm"), "wasm");
  assertEquals(eventIdWasmBytes(), 64 * 1024, "instantiated with its initial page");
  const ids = new EventIds();
  ids.of([new Uint8Array(100), new Uint8Array(100)]);
  assertEquals(eventIdWasmBytes(), 64 * 1024);
  const frames = Array.from({ length: 400 }, () => new Uint8Array(650));
  ids.of(frames);
  // 2304 bytes of tables, 400 × (4 + 650) of frames, 400 × 32 of hex: 5 pages.
  assertEquals(eventIdWasmBytes(), 5 * 64 * 1024);
  ids.of([new Uint8Array(100), new Uint8Array(100)]);
  assertEquals(eventIdWasmBytes(), 5 * 64 * 1024, "it does not shrink, nor grow for less");
  const small = new Uint8Array(100), huge = new Uint8Array(8 * 1024 * 1024);
  ids.of([small, small, huge, small, small]); // huge: larger than the memory, hashed in JS
  assertEquals(eventIdWasmBytes(), 5 * 64 * 1024, "a frame above the cap does not grow it");
  ids.of(Array.from({ length: 100 }, () => new Uint8Array(100_000))); // in chunks of ~40
  const grown = eventIdWasmBytes();
  assert(grown > CAP - 256 * 1024 && grown <= CAP, `${grown} bytes`);
});

for (const backend of ["wasm", "js"] as const) {
  const named = (name: string) => `EventIds (${backend}): ${name}`;
  const ids = new EventIds();
  const using = () => assertEquals(eventIdBackend(backend), backend);

  Deno.test(
    named("the fixture and large vectors (1 MiB, 5 MiB: above the module's memory)"),
    async () => {
      using();
      const frames = allVectors().map((v) => v.body);
      assert(frames.some((f) => f.length > CAP), "a frame larger than the module's memory");
      await check(ids, frames, "vectors");
      if (backend === "wasm") assert(eventIdWasmBytes() <= CAP, `${eventIdWasmBytes()} bytes`);
    },
  );

  Deno.test(named("every length 0..300, one batch and one frame per batch"), async () => {
    using();
    const frames = Array.from({ length: 301 }, (_, n) => bytes(n, n));
    await check(ids, frames, "0..300");
    const want = await webCryptoIds(frames);
    for (let n = 0; n <= 300; n++) {
      assertEquals(split(ids.of([frames[n]]), 1), [want[n]], `${n} bytes alone`);
      // Two lanes busy (a frame alone is hashed in JavaScript: one lane of four is slower).
      const pair = split(ids.of([frames[n], frames[300 - n]]), 2);
      assertEquals(pair, [want[n], want[300 - n]], `${n} and ${300 - n} bytes`);
    }
  });

  Deno.test(named("random lengths up to 70 KiB"), async () => {
    using();
    const r = rng(7);
    const frames = Array.from({ length: 60 }, (_, i) => bytes((r() * 70 * 1024) | 0, 1000 + i));
    await check(ids, frames, "random lengths");
  });

  Deno.test(
    named("batches of 1..9 frames of mixed lengths (lanes end and refill apart)"),
    async () => {
      using();
      // Around the padding's boundaries (55/56 bytes: one or two tail blocks; 64: no full block
      // left in the tail) and longer ones, so the lanes end at different blocks.
      const lengths = [0, 1, 55, 56, 63, 64, 65, 119, 120, 128, 650, 1000, 4096, 9000];
      const r = rng(11);
      for (let k = 1; k <= 9; k++) {
        for (let round = 0; round < 12; round++) {
          const frames = Array.from(
            { length: k },
            (_, i) => bytes(lengths[(r() * lengths.length) | 0], k * 100 + round * 10 + i),
          );
          await check(ids, frames, `${k} frames, round ${round}`);
        }
      }
    },
  );

  Deno.test(named("frames that are subarrays at odd offsets of one buffer"), async () => {
    using();
    const big = bytes(20_000, 3);
    const frames: Uint8Array[] = [];
    for (let at = 1, n = 0; at + n < big.length; at += n + 3, n = (n * 7 + 61) % 1500) {
      frames.push(big.subarray(at, at + n));
    }
    await check(ids, frames, "subarrays");
  });

  Deno.test(named("a batch larger than the module's memory is hashed in chunks"), async () => {
    using();
    const frames = Array.from({ length: 70 }, (_, i) => bytes(70_000 + i, 5000 + i));
    assert(frames.reduce((a, f) => a + f.length, 0) > CAP);
    await check(ids, frames, "6 MiB batch");
    if (backend === "wasm") assert(eventIdWasmBytes() <= CAP, `${eventIdWasmBytes()} bytes`);
  });

  Deno.test(
    named("write() appends frame i's id; ids of an earlier batch are replaced"),
    async () => {
      using();
      const frames = [bytes(10, 1), bytes(700, 2), bytes(70, 3)];
      const want = await webCryptoIds(frames);
      ids.of([bytes(5, 9), bytes(6, 9)]);
      ids.of(frames);
      const out = new ByteBuffer(4);
      out.writeAscii("*");
      for (const i of [2, 0, 1]) ids.write(out, i);
      assertEquals(text.decode(out.bytes()), `*${want[2]}${want[0]}${want[1]}`);
    },
  );
}

Deno.test("EventIds: the WebAssembly module is used where WASM SIMD is available (here)", () => {
  assertEquals(eventIdBackend("wasm"), "wasm");
});

Deno.test(`${SHA256_WASM_FILE} is not stale (scripts/gen_sha256_wasm.ts reproduces it)`, async () => {
  const committed = await Deno.readTextFile(new URL(`../${SHA256_WASM_FILE}`, import.meta.url));
  assertEquals(committed, renderSha256WasmModule(), "run `deno task gen`");
});

// `decode --on-error skip` of the real main.ts does not trust one bad length (issue 15 item 4):
// a bogus 64 MiB length mid-way — on an intact frame, or on junk — loses only the bytes it
// covers up to the next plausible frame, not the rest of the capture; many of them cost
// bounded work, and the problem lines are rate-limited while every problem is counted.
import { assert, assertEquals } from "./_assert.ts";
import { ROOT, RUN_MAIN, sidecarTempDir } from "./_sidecar.ts";
import { concat, fixtureVectors } from "./_vectors.ts";

// deno-lint-ignore no-explicit-any
type Json = any;

const SIXTY_FOUR_MIB = [0x04, 0, 0, 0]; // 67108864: exactly --max-frame-bytes, so legal

async function decode(args: string[]): Promise<{ code: number; lines: Json[]; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [...RUN_MAIN, "decode", ...args],
    cwd: ROOT,
    stdin: "null",
    env: { NO_COLOR: "1" },
    signal: AbortSignal.timeout(120_000),
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  const lines = text.split("\n").filter(Boolean).map((l) => JSON.parse(l));
  return { code: out.code, lines, stderr: new TextDecoder().decode(out.stderr) };
}

async function captureFile(bytes: Uint8Array): Promise<string> {
  const path = `${await sidecarTempDir()}/capture.bin`;
  await Deno.writeFile(path, bytes);
  return path;
}

const vectors = fixtureVectors();
/** The events' client ids (or their hook, when they have none) in stream order. */
const key = (e: Json) => `${e.hook}:${e.client_id ?? ""}:${e.topic ?? ""}:${e.offset}`;

/** `copies` copies of the fixture stream, each frame with its offset in the result. */
function capture(copies: number): { parts: Uint8Array[]; events: number } {
  const parts: Uint8Array[] = [];
  for (let c = 0; c < copies; c++) for (const v of vectors) parts.push(v.wire);
  const events = copies * vectors.filter((v) => v.expected.hook !== null).length;
  return { parts, events };
}

Deno.test("decode skip: a bogus 64 MiB length on a frame mid-way loses that frame only", async () => {
  const { parts, events } = capture(20); // ≈ 1 MB after the bad length: less than it announces
  const k = parts.length / 2 + 3;
  assert(vectors[3].expected.hook !== null);
  const bad = parts[k].slice();
  bad.set(SIXTY_FOUR_MIB, 0);
  parts[k] = bad;
  const bytes = concat(parts);
  const at = parts.slice(0, k).reduce((n, p) => n + p.length, 0);
  const clean = await decode([await captureFile(concat(capture(20).parts)), "--offsets"]);
  assertEquals(clean.code, 0, clean.stderr);
  assertEquals(clean.lines.length, events);
  const r = await decode([await captureFile(bytes), "--on-error", "skip", "--offsets"]);
  assertEquals(r.code, 1, r.stderr);
  console.log(`events recovered: ${r.lines.length} of ${events - 1}`);
  assertEquals(
    r.lines.map(key),
    clean.lines.filter((e) => e.offset !== at).map(key),
    "every event but the one whose length is bad",
  );
  assert(
    r.stderr.includes(
      `offset ${at}: length prefix says 67108864 bytes, but its Any ends after ${
        parts[k].length - 4
      }; skipped ${parts[k].length} bytes, resuming at offset ${at + parts[k].length}`,
    ),
    r.stderr,
  );
});

Deno.test("decode skip: a bogus 64 MiB length on junk mid-way: the events after it are recovered", async () => {
  const { parts, events } = capture(20);
  const k = parts.length / 2;
  const junk = new Uint8Array([...SIXTY_FOUR_MIB, ...new Uint8Array(1000).fill(0xee)]);
  const at = parts.slice(0, k).reduce((n, p) => n + p.length, 0);
  const bytes = concat([...parts.slice(0, k), junk, ...parts.slice(k)]);
  const r = await decode([await captureFile(bytes), "--on-error", "skip"]);
  assertEquals(r.code, 1, r.stderr);
  console.log(`events recovered: ${r.lines.length} of ${events}`);
  assertEquals(r.lines.length, events, r.stderr);
  assert(
    r.stderr.includes(
      `offset ${at}: length prefix says 67108864 bytes, more than the rest of the stream;` +
        ` skipped ${junk.length} bytes, resuming at offset ${at + junk.length}`,
    ),
    r.stderr,
  );
  // A capture that really ends inside a frame is still reported as cut.
  const cut = await decode([await captureFile(bytes.subarray(0, at + 10)), "--on-error", "skip"]);
  assertEquals(cut.code, 1);
  assert(cut.stderr.includes(`offset ${at}: the stream ends inside a frame (10 bytes`), cut.stderr);
});

Deno.test("decode skip: 2,230 bogus lengths cost bounded work, few lines, all counted", async () => {
  // First half: a 64 MiB length on 7 junk bytes before every non-empty frame. Second half: the length
  // of every other event frame replaced by 64 MiB. Each is one problem.
  const { parts, events } = capture(20);
  const half = parts.length / 2;
  const mixed: Uint8Array[] = [];
  let bogus = 0, lost = 0;
  for (const [i, p] of parts.entries()) {
    if (i < half && p.length > 4) { // (an empty frame is no frame start to resume at)
      mixed.push(new Uint8Array([...SIXTY_FOUR_MIB, 1, 2, 3, 4, 5, 6, 7]), p);
      bogus++;
    } else if (i % 2 === 1 && vectors[i % vectors.length].expected.hook !== null) {
      const bad = p.slice();
      bad.set(SIXTY_FOUR_MIB, 0);
      mixed.push(bad);
      bogus++, lost++;
    } else mixed.push(p);
  }
  const r = await decode([await captureFile(concat(mixed)), "--on-error", "skip"]);
  assertEquals(r.code, 1);
  const lines = r.stderr.split("\n").filter(Boolean);
  console.log(`${bogus} bogus lengths: ${r.lines.length} events, ${lines.length} stderr lines`);
  assertEquals(r.lines.length, events - lost, r.stderr.slice(0, 3000));
  // 10 lines per kind, a summary of the rest (at the end, or every 10 s), the totals.
  assert(lines.length <= 2 * 10 + 10, lines.slice(0, 40).join("\n"));
  assert(/\d+ more problem lines not shown \(cut=\d+, bad_length=\d+\)/.test(r.stderr), r.stderr);
  assert(lines.at(-1)!.includes(` ${bogus} bad-bytes problems`), lines.at(-1));
});

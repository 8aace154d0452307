// `vmq-sidecar decode` of the real main.ts: the fixture stream decodes to the upstream
// expectations (timestamps as RFC 3339 with 9 fractional digits, "hook" first); bad bytes are
// reported with their offset, and --on-error stop|skip behave as documented.
import { assert, assertEquals } from "./_assert.ts";
import { ROOT, RUN_MAIN, sidecarTempDir } from "./_sidecar.ts";
import { allVectors, anyOf, field, fixtureVectors, frameOf, type Vector } from "./_vectors.ts";

// deno-lint-ignore no-explicit-any
type Json = any;

/** Our JSON form of an upstream expectation: hook first, timestamp as RFC 3339 (9 digits). */
function expectedLine(v: Vector): Json {
  const e = v.expected;
  const out: Json = { hook: e.hook };
  for (const [k, val] of Object.entries(e.event!)) {
    if (k === "timestamp") {
      const secs = Number(val.seconds ?? 0), nanos = Number(val.nanos ?? 0);
      const iso = new Date(secs * 1000).toISOString(); // YYYY-MM-DDTHH:MM:SS.mmmZ
      out[k] = `${iso.slice(0, 19)}.${String(nanos).padStart(9, "0")}Z`;
    } else out[k] = val;
  }
  return out;
}

async function decode(
  args: string[],
  stdin?: Uint8Array,
): Promise<{ code: number; lines: Json[]; stderr: string }> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [...RUN_MAIN, "decode", ...args],
    cwd: ROOT,
    stdin: stdin ? "piped" : "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
  // Write while reading: a large output would otherwise fill the pipe and stall both ends.
  const writing = stdin
    ? (async () => {
      const w = child.stdin.getWriter();
      await w.write(stdin);
      await w.close();
    })()
    : undefined;
  const out = await child.output();
  await writing;
  const text = new TextDecoder().decode(out.stdout);
  const lines = text.split("\n").filter(Boolean).map((l) => JSON.parse(l));
  return { code: out.code, lines, stderr: new TextDecoder().decode(out.stderr) };
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

const vectors = fixtureVectors();
const events = vectors.filter((v) => v.expected.hook !== null);
const stream = concat(vectors.map((v) => v.wire));
const starts: number[] = [];
vectors.reduce((at, v) => (starts.push(at), at + v.wire.length), 0);

async function streamFile(bytes: Uint8Array): Promise<string> {
  const path = `${await sidecarTempDir()}/capture.bin`;
  await Deno.writeFile(path, bytes);
  return path;
}

Deno.test("decode of the fixture stream (a file) equals the vectors' expectations, hook first", async () => {
  const r = await decode([await streamFile(stream)]);
  assertEquals(r.code, 0, r.stderr);
  assertEquals(r.lines.length, events.length);
  events.forEach((v, i) => {
    const want = expectedLine(v);
    assertEquals(r.lines[i], want, v.name);
    assertEquals(Object.keys(r.lines[i]), Object.keys(want), `${v.name}: key order`);
  });
  assert(r.stderr.includes(`${events.length} events, 1 empty frames`), r.stderr);
});

Deno.test("decode of all 157 vectors (1 and 5 MiB payloads included) from stdin, skip mode", async () => {
  const all = allVectors();
  const r = await decode(["--on-error", "skip"], concat(all.map((v) => v.wire)));
  assertEquals(r.code, 0, r.stderr);
  const want = all.filter((v) => v.expected.hook !== null).map(expectedLine);
  assertEquals(r.lines.length, want.length);
  r.lines.forEach((l, i) => assertEquals(l, want[i]));
});

Deno.test("decode from stdin with --offsets and --payload omit", async () => {
  const r = await decode(["-", "--offsets", "--payload", "omit"], stream);
  assertEquals(r.code, 0, r.stderr);
  const want = vectors.flatMap((v, i) => {
    if (v.expected.hook === null) return [];
    const { payload: _, ...rest } = expectedLine(v);
    return [{ ...rest, offset: starts[i] }];
  });
  assertEquals(r.lines, want);
});

Deno.test("bad bytes at the start (a capture cut mid-stream): stop reports offset 0; skip resyncs", async () => {
  const junk = Uint8Array.from({ length: 777 }, (_, i) => (i * 131 + 7) & 255);
  junk[0] = 0x7f; // a length prefix far over the limit
  const bytes = concat([junk, stream]);
  const stop = await decode([], bytes);
  assertEquals(stop.code, 1);
  assertEquals(stop.lines.length, 0);
  assert(
    /offset 0: length prefix says \d+ bytes, over --max-frame-bytes/.test(stop.stderr),
    stop.stderr,
  );
  const skip = await decode(["--on-error", "skip"], bytes);
  assertEquals(skip.code, 1, skip.stderr);
  assertEquals(skip.lines, events.map(expectedLine));
  assert(skip.stderr.includes("skipped 777 bytes, resuming at offset 777"), skip.stderr);
});

Deno.test("a frame that is not an Any in the middle: stop there, or skip just that frame", async () => {
  const k = 40; // corrupt the 41st frame's body, keep its length prefix
  const bytes = stream.slice();
  const at = starts[k];
  bytes.fill(0xff, at + 4, at + vectors[k].wire.length);
  const stop = await decode([], bytes);
  assertEquals(stop.code, 1);
  assertEquals(stop.lines, vectors.slice(0, k).filter((v) => v.expected.hook).map(expectedLine));
  assert(
    stop.stderr.includes(
      `offset ${at}: frame of ${vectors[k].body.length} bytes is not a protobuf Any; stopping`,
    ),
    stop.stderr,
  );
  const skip = await decode(["--on-error", "skip"], bytes);
  assertEquals(skip.code, 1);
  assertEquals(
    skip.lines,
    vectors.filter((v, i) => i !== k && v.expected.hook).map(expectedLine),
  );
  assert(
    skip.stderr.includes(
      `offset ${at}: frame of ${vectors[k].body.length} bytes is not a protobuf Any; skipped ${
        vectors[k].wire.length
      } bytes, resuming at offset ${starts[k + 1]}`,
    ),
    skip.stderr,
  );
});

Deno.test("a corrupt length prefix in the middle: skip finds the next frame start", async () => {
  const k = 60;
  const bytes = stream.slice();
  // Claims 16 MiB: over --max-frame-bytes 1MiB, so framing is lost at that offset.
  bytes.set([1, 0, 0, 0], starts[k]);
  const skip = await decode(["--on-error", "skip", "--max-frame-bytes", "1MiB"], bytes);
  assertEquals(skip.code, 1);
  assertEquals(
    skip.lines,
    vectors.filter((v, i) => i !== k && v.expected.hook).map(expectedLine),
  );
  assert(
    skip.stderr.includes(
      `offset ${starts[k]}: length prefix says 16777216 bytes, over --max-frame-bytes 1048576;` +
        ` skipped ${vectors[k].wire.length} bytes, resuming at offset ${starts[k + 1]}`,
    ),
    skip.stderr,
  );
});

Deno.test("a stream cut inside a frame: what came before, then the offset of the cut", async () => {
  const k = 100;
  const bytes = stream.subarray(0, starts[k] + 10);
  const r = await decode(["--on-error", "skip"], bytes);
  assertEquals(r.code, 1);
  assertEquals(r.lines, vectors.slice(0, k).filter((v) => v.expected.hook).map(expectedLine));
  assert(
    r.stderr.includes(
      `offset ${starts[k]}: the stream ends inside a frame (10 bytes of it present`,
    ),
    r.stderr,
  );
});

Deno.test("garbage with no frame after it: skip reports that framing is lost", async () => {
  const junk = new Uint8Array(5000).fill(0xee);
  const r = await decode(["--on-error", "skip"], concat([stream.subarray(0, starts[3]), junk]));
  assertEquals(r.code, 1);
  assertEquals(r.lines.length, 3);
  assert(
    r.stderr.includes(`offset ${starts[3]}: `) &&
      r.stderr.includes("no frame start found in the remaining 5000 bytes: framing is lost"),
    r.stderr,
  );
});

Deno.test("a frame of an unknown type is reported and skipped, not an error", async () => {
  const unknown = frameOf(anyOf("type.googleapis.com/eventssidecar.v1.OnAuthM5", field(1, 7)));
  const r = await decode(
    [],
    concat([stream.subarray(0, starts[2]), unknown, stream.subarray(starts[2])]),
  );
  assertEquals(r.code, 0, r.stderr);
  assertEquals(r.lines, events.map(expectedLine));
  assert(
    r.stderr.includes(
      `offset ${starts[2]}: frame of ${
        unknown.length - 4
      } bytes has an unknown type_url "type.googleapis.com/eventssidecar.v1.OnAuthM5"; skipped`,
    ),
    r.stderr,
  );
});

Deno.test("decode: bad flags exit 2, an unreadable file exits 1 naming the permission", async () => {
  const bad = await decode(["--on-error", "maybe"]);
  assertEquals(bad.code, 2);
  assert(
    bad.stderr.startsWith('vmq-sidecar: --on-error: expected one of stop, skip, got "maybe"'),
    bad.stderr,
  );
  const two = await decode(["a", "b"]);
  assertEquals(two.code, 2, two.stderr);
  const denied = await decode(["/var/tmp/vmq-sidecar-capture.bin"]);
  assertEquals(denied.code, 1);
  assert(denied.stderr.includes("cannot read /var/tmp/vmq-sidecar-capture.bin"), denied.stderr);
  assert(
    denied.stderr.includes("vmq-sidecar decode < /var/tmp/vmq-sidecar-capture.bin"),
    denied.stderr,
  );
});

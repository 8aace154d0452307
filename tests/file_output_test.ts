// File output: whole lines under concurrency, size rotation and reopen on SIGHUP (logrotate).
import { assert, assertEquals } from "./_assert.ts";
import { eventBody, fixtureVectors, frameOf } from "./_vectors.ts";
import {
  listeningPort,
  sendChunks,
  sidecarTempDir,
  spawnMain,
  startSidecar,
  waitFor,
} from "./_sidecar.ts";

/** `n` distinct on_publish frames (client_id `p<tag>-<i>`), ~300-500 bytes each. */
function publishFrames(tag: string, n: number): Uint8Array[] {
  const template = fixtureVectors().find((v) => v.name === "027_on_publish_typical")!;
  return Array.from({ length: n }, (_, i) =>
    frameOf(eventBody("on_publish", {
      ...template.expected.event,
      client_id: `p${tag}-${i}`,
      payload: new Uint8Array(64 + (i % 200)).fill(0x41 + (i % 26)),
    })));
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) (out.set(p, at), at += p.length);
  return out;
}

/** Every line of the files in `dir` whose name starts with `base`, parsed (fails on a torn line). */
function linesIn(dir: string, base: string): { files: Map<string, number>; ids: string[] } {
  const files = new Map<string, number>();
  const ids: string[] = [];
  for (const e of Deno.readDirSync(dir)) {
    if (!e.name.startsWith(base)) continue;
    const text = Deno.readTextFileSync(`${dir}/${e.name}`);
    files.set(e.name, new TextEncoder().encode(text).length);
    if (text.length) assert(text.endsWith("\n"), `${e.name} ends inside a line`);
    for (const line of text.split("\n")) if (line) ids.push(JSON.parse(line).client_id);
  }
  return { files, ids };
}

Deno.test("file output with rotation: no line lost, torn or interleaved across rotations; sizes bounded", async () => {
  const dir = await sidecarTempDir();
  const conns = 20, perConn = 500;
  const rotate = 64 * 1024;
  const sidecar = await startSidecar([
    "--listen",
    "127.0.0.1:0",
    "--out",
    `file:${dir}/events.jsonl?rotate_bytes=${rotate}&keep=1000`,
  ], { stdout: "null" });
  await Promise.all(
    Array.from(
      { length: conns },
      (_, c) => sendChunks(sidecar.port, [concat(publishFrames(`${c}`, perConn))]),
    ),
  );
  sidecar.kill("SIGTERM");
  const { code, stderr } = await sidecar.wait();
  assertEquals(code, 0, stderr);
  const { files, ids } = linesIn(dir, "events.jsonl");
  assertEquals(ids.length, conns * perConn);
  assertEquals(new Set(ids).size, conns * perConn, "duplicates");
  assert(files.size > 10, `expected many rotated files, got ${files.size}`);
  for (const [name, size] of files) assert(size <= rotate, `${name} is ${size} bytes > ${rotate}`);
  // Per-connection order survives rotation: read files oldest (highest suffix) first.
  const order = [...files.keys()].sort((a, b) => suffix(b) - suffix(a));
  const seq = order.flatMap((f) => Deno.readTextFileSync(`${dir}/${f}`).split("\n").filter(Boolean))
    .map((l) => JSON.parse(l).client_id as string);
  for (let c = 0; c < conns; c++) {
    const mine = seq.filter((id) => id.startsWith(`p${c}-`));
    assertEquals(mine, Array.from({ length: perConn }, (_, i) => `p${c}-${i}`));
  }
  await Deno.remove(dir, { recursive: true });
});

function suffix(name: string): number {
  const m = /\.(\d+)$/.exec(name);
  return m ? Number(m[1]) : 0;
}

Deno.test("file output reopens on SIGHUP: a logrotate-style move loses nothing", async () => {
  const dir = await sidecarTempDir();
  const path = `${dir}/events.jsonl`;
  const sidecar = await startSidecar(["--listen", "127.0.0.1:0", "--out", `file:${path}`], {
    stdout: "null",
  });
  await sendChunks(sidecar.port, [concat(publishFrames("a", 300))]);
  await waitFor(() => linesIn(dir, "events.jsonl").ids.length === 300, "first 300 lines");
  await Deno.rename(path, `${dir}/moved.jsonl`); // what logrotate does before HUP
  sidecar.kill("SIGHUP");
  await waitFor(async () => {
    try {
      await Deno.stat(path);
      return true;
    } catch {
      return false;
    }
  }, "the file to be reopened");
  await sendChunks(sidecar.port, [concat(publishFrames("b", 300))]);
  sidecar.kill("SIGTERM");
  const { code, stderr } = await sidecar.wait();
  assertEquals(code, 0, stderr);
  const moved = Deno.readTextFileSync(`${dir}/moved.jsonl`).split("\n").filter(Boolean);
  const fresh = Deno.readTextFileSync(path).split("\n").filter(Boolean);
  assertEquals(
    moved.map((l) => JSON.parse(l).client_id),
    Array.from({ length: 300 }, (_, i) => `pa-${i}`),
  );
  assertEquals(
    fresh.map((l) => JSON.parse(l).client_id),
    Array.from({ length: 300 }, (_, i) => `pb-${i}`),
  );
  assert(/SIGHUP: reopening output files/.test(stderr), stderr);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("protobuf format to a file writes the frames exactly as received", async () => {
  const dir = await sidecarTempDir();
  const frames = fixtureVectors().filter((v) => v.expected.hook !== null).map((v) => v.wire);
  const sidecar = await startSidecar([
    "--listen",
    "127.0.0.1:0",
    "--out",
    `file:${dir}/frames.bin?format=protobuf`,
  ], { stdout: "null" });
  await sendChunks(sidecar.port, frames);
  sidecar.kill("SIGTERM");
  const { code, stderr } = await sidecar.wait();
  assertEquals(code, 0, stderr);
  assertEquals(Deno.readFileSync(`${dir}/frames.bin`), concat(frames));
  await Deno.remove(dir, { recursive: true });
});

Deno.test("stdout, payload=utf8, read slowly: 100 KiB control-byte payloads (escaped, the encoder grows its chunk) keep every line intact", async () => {
  const { proc, stderr, stderrDone } = await spawnMain(
    // The reader below is slow on purpose (2 ms per chunk, far more when the machine is loaded):
    // draining ~25 MiB through it can outlast the default 5 s stop grace, which is not what this
    // test is about (every line intact, in order) — give the stop all the time the reader needs.
    ["--listen", "127.0.0.1:0", "--out", "stdout?payload=utf8", "--shutdown-grace", "120000"],
    { stdout: "piped" },
    (err) => listeningPort(err) > 0,
  );
  // A slow reader: the sidecar's writes wait, batches queue up behind them and are coalesced.
  const parts: Uint8Array[] = [];
  const reading = (async () => {
    for await (const chunk of proc.stdout) {
      parts.push(chunk);
      await new Promise((r) => setTimeout(r, 2));
    }
  })();
  const conns = 4, perConn = 100;
  // Text payloads of 1-50 KiB; every 4th is 100 KiB of 0x01 (~600 KiB of JSON once escaped).
  const frames = (c: number) =>
    Array.from({ length: perConn }, (_, i) =>
      frameOf(eventBody("on_publish", {
        timestamp: { seconds: 1700000000, nanos: 0 },
        client_id: `u${c}-${i}`,
        topic: `t/${c}`,
        payload: i % 4 === 3
          ? new Uint8Array(100 * 1024).fill(0x01)
          : new Uint8Array(1000 + 997 * (i % 50)).fill(0x61),
      })));
  await Promise.all(
    Array.from(
      { length: conns },
      (_, c) => sendChunks(listeningPort(stderr()), [concat(frames(c))]),
    ),
  );
  proc.kill("SIGTERM");
  const { code } = await proc.status;
  await Promise.all([reading, stderrDone]);
  assertEquals(code, 0, stderr());
  const ids = new TextDecoder().decode(concat(parts)).split("\n").filter(Boolean).map((l) => {
    try {
      return JSON.parse(l).client_id as string;
    } catch {
      return "<not JSON>";
    }
  });
  assertEquals(ids.filter((id) => id === "<not JSON>").length, 0, "lines that are not JSON");
  for (let c = 0; c < conns; c++) {
    const mine = ids.filter((id) => id.startsWith(`u${c}-`));
    assertEquals(mine, Array.from({ length: perConn }, (_, i) => `u${c}-${i}`));
  }
});

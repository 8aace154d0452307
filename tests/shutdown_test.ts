// Stopping under load: the real main.ts subprocess (product permission set) fed over many real
// TCP connections, SIGTERM while an output blocks; what each output got is counted at the
// destination and held against the stop summary.
import { assert, assertEquals } from "./_assert.ts";
import { fileLines } from "./_ops.ts";
import { distinctFrames, freePort, runOutputs } from "./_servers.ts";
import { sidecarTempDir, waitFor } from "./_sidecar.ts";

/** The stop summary line and its event total (fails the test when it is missing). */
function summaryOf(stderr: string): { total: number; line: string } {
  const line = stderr.split("\n").find((l) => l.startsWith("vmq-sidecar: stopped:"));
  assert(line, `no stop summary in:\n${stderr}`);
  return { total: Number(/stopped: (\d+) events/.exec(line)![1]), line };
}

/** The per-output tallies of a summary line: name → counts. */
function tallies(line: string): Map<string, Record<string, number>> {
  const part = /; outputs: (.*?); discarded at the grace deadline:/.exec(line)?.[1] ?? "";
  const out = new Map<string, Record<string, number>>();
  const re =
    /(\S+) given=(\d+) sent=(\d+) dead-lettered=(\d+) lost=(\d+) dropped=(\d+) unflushed=(\d+)/g;
  for (const m of part.matchAll(re)) {
    const [given, sent, deadLettered, lost, dropped, unflushed] = m.slice(2).map(Number);
    out.set(m[1], { given, sent, deadLettered, lost, dropped, unflushed });
  }
  return out;
}

/**
 * `conns` connections that each write their own distinct frames (client_id `<tag>c<i>-<n>`)
 * in 16 KiB writes, at most `perConn` frames each (with `cycle`, those over and over), until
 * `stop()` or until a write fails (the sidecar closed the connection).
 */
function senders(port: number, conns: number, tag: string, perConn = 2000, cycle = false) {
  let stopping = false;
  const runs = Array.from({ length: conns }, async (_, c) => {
    const frames = distinctFrames(`${tag}c${c}`, perConn);
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    try {
      let i = 0;
      while (!stopping && (cycle || i < perConn)) {
        if (cycle) i %= perConn;
        const parts: Uint8Array[] = [];
        let n = 0;
        while (i < perConn && n < 16 * 1024) (n += frames[i].length), parts.push(frames[i++]);
        const chunk = new Uint8Array(n);
        let at = 0;
        for (const p of parts) chunk.set(p, at), (at += p.length);
        for (let w = 0; w < chunk.length;) w += await conn.write(chunk.subarray(w));
      }
    } catch {
      /* closed by the sidecar's stop */
    } finally {
      try {
        conn.close();
      } catch { /* already closed */ }
    }
  });
  return {
    /** Resolves once every connection sent its frames (or failed) and closed. */
    done: Promise.all(runs),
    stop: async () => {
      stopping = true;
      await Promise.all(runs);
    },
  };
}

Deno.test("SIGTERM while a NATS output (server down, on_full=block) blocks: the file output gets every event read; NATS's are counted unflushed", async () => {
  const dir = await sidecarTempDir();
  const file = `${dir}/events.jsonl`;
  const dead = freePort(); // nothing listens: the NATS output never connects
  const natsName = `nats://127.0.0.1:${dead}`;
  const s = await runOutputs([
    `file:${file}`,
    `${natsName}?on_full=block&queue_bytes=256KiB`,
  ], { flags: ["--shutdown-grace", "1000"] });
  const load = senders(s.port, 40, "s");
  try {
    // Reading stops once the NATS queue is full: wait for the file to have that much.
    await waitFor(() => fileLines(file).length >= 500, "500 lines in the file");
    await new Promise((r) => setTimeout(r, 300)); // every reader now waits for queue room
    s.kill("SIGTERM");
    const r = await s.wait();
    await load.stop();
    const { total, line } = summaryOf(r.stderr);
    const lines = fileLines(file);
    assertEquals(lines.length, total, `file lines vs the summary's events read: ${line}`);
    assertEquals(new Set(lines.map((l) => JSON.parse(l).client_id)).size, total, "no duplicates");
    assertEquals(r.code, 1, "NATS could not be flushed: exit 1");
    const unflushed = new RegExp(`unflushed outputs: ${natsName.replaceAll(".", "\\.")}=(\\d+);`);
    assertEquals(Number(unflushed.exec(line)?.[1]), total, `NATS holds every event read: ${line}`);
    const t = tallies(line);
    assertEquals(t.get(`file:${file}`), {
      given: total,
      sent: total,
      deadLettered: 0,
      lost: 0,
      dropped: 0,
      unflushed: 0,
    }, line);
    assertEquals(t.get(natsName), {
      given: total,
      sent: 0,
      deadLettered: 0,
      lost: 0,
      dropped: 0,
      unflushed: total,
    }, line);
    assert(
      r.stderr.includes(`vmq-sidecar: events lost at stop: ${natsName}: ${total} events not`),
      r.stderr,
    );
  } finally {
    await load.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("SIGTERM while peers keep sending past the grace period: what was read reaches the file, the cut connections are counted, exit 1", async () => {
  const dir = await sidecarTempDir();
  const file = `${dir}/events.jsonl`;
  const s = await runOutputs([`file:${file}`], { flags: ["--shutdown-grace", "300"] });
  const load = senders(s.port, 10, "k", 500, true);
  try {
    await waitFor(() => fileLines(file).length >= 2000, "2000 lines in the file");
    s.kill("SIGTERM");
    const r = await s.wait();
    await load.stop();
    const { total, line } = summaryOf(r.stderr);
    assertEquals(fileLines(file).length, total, `file lines vs events read: ${line}`);
    assertEquals(tallies(line).get(`file:${file}`), {
      given: total,
      sent: total,
      deadLettered: 0,
      lost: 0,
      dropped: 0,
      unflushed: 0,
    }, line);
    const cut =
      /discarded at the grace deadline: connections=(\d+) bytes=(\d+) frames=(\d+) still-sending=(\d+)$/
        .exec(line);
    assert(cut, `the connections cut while sending are counted: ${line}`);
    const [conns, bytes, frames, still] = cut.slice(1).map(Number);
    assert(conns >= 1 && conns <= 10 && bytes > 0 && frames > 0, line);
    // Still sending when closed: a sender that paused a moment (a busy machine) was closed as
    // quiet, so this is at most every cut connection, not a fixed number.
    assert(still <= conns, line);
    assert(/\nvmq-sidecar: events lost at stop: \d+ connections cut/.test(r.stderr), r.stderr);
    assertEquals(r.code, 1, "events were lost: exit 1");
  } finally {
    await load.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("SIGTERM with half a frame received: the connection is read until the deadline, then its bytes are counted as discarded (exit 1); the events before it arrive", async () => {
  const dir = await sidecarTempDir();
  const file = `${dir}/events.jsonl`;
  const s = await runOutputs([`file:${file}`], { flags: ["--shutdown-grace", "500"] });
  const frames = distinctFrames("h", 11);
  const half = frames[10].subarray(0, 100);
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: s.port });
  try {
    for (const f of frames.slice(0, 10)) await conn.write(f);
    await conn.write(half);
    await waitFor(() => fileLines(file).length >= 10, "10 lines in the file");
    s.kill("SIGTERM");
    const r = await s.wait();
    const { total, line } = summaryOf(r.stderr);
    assertEquals(total, 10, line);
    assertEquals(fileLines(file).length, 10, line);
    assert(
      /discarded at the grace deadline: connections=1 bytes=100 frames=0 still-sending=0$/.test(
        line,
      ),
      line,
    );
    assert(r.stderr.includes("events lost at stop: 1 connections cut"), r.stderr);
    assertEquals(r.code, 1, "the partial frame is lost: exit 1");
  } finally {
    try {
      conn.close();
    } catch { /* closed by the sidecar */ }
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a clean stop: every output's tally adds up, nothing discarded, no loss line, exit 0", async () => {
  const dir = await sidecarTempDir();
  const file = `${dir}/events.jsonl`;
  const s = await runOutputs([`file:${file}`, `file:${dir}/pub.jsonl?hooks=on_subscribe`]);
  const load = senders(s.port, 20, "c", 300);
  await load.done; // all sent and closed
  try {
    s.kill("SIGTERM");
    const r = await s.wait();
    const { total, line } = summaryOf(r.stderr);
    assertEquals(total, 20 * 300, line);
    assertEquals(fileLines(file).length, total);
    const t = tallies(line);
    assertEquals(t.get(`file:${file}`), {
      given: total,
      sent: total,
      deadLettered: 0,
      lost: 0,
      dropped: 0,
      unflushed: 0,
    }, line);
    assertEquals(t.get(`file:${dir}/pub.jsonl`), {
      given: 0,
      sent: 0,
      deadLettered: 0,
      lost: 0,
      dropped: 0,
      unflushed: 0,
    }, line);
    assert(/unflushed outputs: none; .*discarded at the grace deadline: none$/.test(line), line);
    assert(!r.stderr.includes("events lost"), r.stderr);
    assertEquals(r.code, 0, r.stderr);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("SIGTERM with events still in socket buffers behind a blocked output: each event sent is in the file or counted as discarded, exactly", async () => {
  const dir = await sidecarTempDir();
  const file = `${dir}/events.jsonl`;
  const dead = freePort();
  const s = await runOutputs([
    `file:${file}`,
    `nats://127.0.0.1:${dead}?buffer=memory&on_full=block&queue_bytes=64KiB`,
  ], { flags: ["--shutdown-grace", "300"] });
  // 40 × 200 events of ~430 bytes: each connection's 86 KB fit in the kernel's socket buffers,
  // so every sender finishes and closes while the sidecar has stopped reading.
  const conns = 40, perConn = 200;
  const load = senders(s.port, conns, "b", perConn);
  try {
    await load.done;
    s.kill("SIGTERM");
    const r = await s.wait();
    const { total, line } = summaryOf(r.stderr);
    const cut =
      /discarded at the grace deadline: connections=(\d+) bytes=(\d+) frames=(\d+) still-sending=(\d+)$/
        .exec(line);
    assert(cut, `what the sockets held is counted: ${line}`);
    const [cutConns, , frames, still] = cut.slice(1).map(Number);
    assertEquals(total + frames, conns * perConn, `delivered + discarded = sent: ${line}`);
    assert(frames > 0 && cutConns >= 1, line);
    assertEquals(still, 0, `every sender had finished: ${line}`);
    assertEquals(fileLines(file).length, total, `file lines vs events read: ${line}`);
    assertEquals(tallies(line).get(`nats://127.0.0.1:${dead}`)?.unflushed, total, line);
    assertEquals(r.code, 1);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

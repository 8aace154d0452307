// Handlers on the disk journal by default (issue 14: "with the disk journal: at-least-once across
// crashes"): a real process running `Sidecar.start` with a handler and no buffer option is killed
// with SIGKILL mid-stream and started again on the same data directory; every event it had taken
// reaches the handler at least once (counted by unique id), the duplicates are counted, and the
// replayed events are ordered per client as live ones are.
import { assert, assertEquals } from "./_assert.ts";
import { clientPublish } from "./_vectors.ts";
import { fileLines, scrape } from "./_ops.ts";
import { valueOf } from "./_prom.ts";
import { ROOT, sidecarTempDir, waitFor } from "./_sidecar.ts";
import { PluginSender } from "../lib/testing.ts";

/** An on_publish of client `c`, its `seq`-th, at BASE + 2·seq ms; topic `t/C/SEQ`. */
function publish(c: number, seq: number): Uint8Array {
  return clientPublish(c, 2 * seq, `t/${c}/${seq}`, 32);
}

interface Child {
  readonly proc: Deno.ChildProcess;
  readonly port: number;
  readonly adminPort: number;
  stderr(): string;
  /** Waits for exit (bounded: SIGKILL after 30 s). */
  wait(): Promise<Deno.CommandStatus>;
}

/** tests/_handler_child.ts on free ports, its journal in `dataDir`, its effects in `outFile`. */
async function startChild(dataDir: string, outFile: string): Promise<Child> {
  const proc = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--quiet",
      "tests/_handler_child.ts",
      "127.0.0.1:0",
      "127.0.0.1:0",
      dataDir,
      outFile,
    ],
    cwd: ROOT,
    stdin: "null",
    stdout: "null",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
  let err = "";
  const stderrDone = (async () => {
    const dec = new TextDecoder();
    for await (const c of proc.stderr) err += dec.decode(c, { stream: true });
  })();
  let exited = false;
  const status = proc.status.then((s) => (exited = true, s));
  const ports = () => /child: plugin (\d+) admin (\d+)/.exec(err);
  for (let i = 0; i < 600 && !ports() && !exited; i++) await new Promise((r) => setTimeout(r, 50));
  const m = ports();
  if (!m) {
    if (!exited) proc.kill("SIGKILL");
    await status;
    await stderrDone;
    throw new Error(`the handler child did not start:\n${err}`);
  }
  return {
    proc,
    port: Number(m[1]),
    adminPort: Number(m[2]),
    stderr: () => err,
    wait: async () => {
      const timer = setTimeout(() => {
        if (!exited) proc.kill("SIGKILL");
      }, 30_000);
      const s = await status;
      clearTimeout(timer);
      await stderrDone;
      return s;
    },
  };
}

async function metric(c: Child, name: string): Promise<number> {
  return valueOf(await scrape(c.adminPort), name, { output: "record" }) ?? 0;
}

Deno.test("handlers: on the disk journal by default — kill -9 mid-stream, restart: every event taken is handled at least once, duplicates counted, the replay ordered per client", async () => {
  const dir = await sidecarTempDir();
  const data = `${dir}/data`, out1 = `${dir}/handled-1.txt`, out2 = `${dir}/handled-2.txt`;
  const CLIENTS = 100, PER_CLIENT = 300, N = CLIENTS * PER_CLIENT;
  const c1 = await startChild(data, out1);
  let taken = 0;
  try {
    const sender = await PluginSender.connect({ port: c1.port, connections: 100, seed: 12 });
    // Paced (a flush and a pause per round of one event per client), so that the kill comes
    // while events are still arriving, also on a fast idle machine (asserted below).
    const sending = (async () => {
      for (let seq = 0; seq < PER_CLIENT; seq++) {
        for (let c = 0; c < CLIENTS; c++) await sender.send(publish(c, seq));
        await sender.flush({ timeoutMs: 10_000 });
        await new Promise((r) => setTimeout(r, 3));
      }
    })().catch(() => {}); // the sidecar goes away mid-stream: the writes fail
    await waitFor(
      async () => await metric(c1, "vmq_sidecar_output_events_received_total") >= N / 3,
      `${N / 3} events taken`,
      60_000,
    );
    taken = await metric(c1, "vmq_sidecar_output_events_received_total");
    c1.proc.kill("SIGKILL");
    await c1.wait();
    await sending;
    await sender.close({ timeoutMs: 1000 }).catch(() => {});
  } finally {
    try {
      c1.proc.kill("SIGKILL");
    } catch { /* killed above */ }
    await c1.wait();
  }
  assert(taken < N, `the kill came before the end of the load (${taken} of ${N} taken)`);
  const handledBefore = fileLines(out1).length;

  const c2 = await startChild(data, out2);
  let summary = "";
  try {
    await waitFor(
      async () => await metric(c2, "vmq_sidecar_output_queue_events") === 0,
      "the replay drained",
      60_000,
    );
    const replayed = await metric(c2, "vmq_sidecar_output_events_received_total");
    assertEquals(await metric(c2, "vmq_sidecar_output_events_sent_total"), replayed);
    c2.proc.kill("SIGTERM");
    assertEquals((await c2.wait()).code, 0, c2.stderr());
    summary = /child: stopped: (.*)/.exec(c2.stderr())?.[1] ?? "";
  } finally {
    try {
      c2.proc.kill("SIGKILL");
    } catch { /* exited */ }
    await c2.wait();
  }
  const lines1 = fileLines(out1), lines2 = fileLines(out2);
  const unique = new Set<string>();
  for (const l of [...lines1, ...lines2]) unique.add(l.split(" ")[0]);
  for (const topic of unique) assert(/^t\/\d+\/\d+$/.test(topic), `not an event sent: ${topic}`);
  const duplicates = lines1.length + lines2.length - unique.size;
  assert(
    unique.size >= taken,
    `${unique.size} distinct events handled of ${taken} taken before the kill` +
      ` (${handledBefore} handled before it, ${lines2.length} after the restart)`,
  );
  // Counters add up in the second run: what it replayed (counted as given) was all handled.
  const tally = JSON.parse(summary);
  assertEquals(
    [tally.sent, tally.deadLettered, tally.lost, tally.dropped, tally.unflushed],
    [tally.given, 0, 0, 0, 0],
    summary,
  );
  assert(tally.given > 0, `nothing replayed: ${summary}`);

  // Duplicates: events handled before the kill whose batch was not acknowledged on disk yet
  // (read ahead, or acknowledged after the last cursor save): bounded by what was taken.
  assert(duplicates <= taken, `${duplicates} duplicates`);
  assertEquals(tally.given, lines2.length, "the second run handled what it replayed");

  // The replay is ordered per client like live events (only ones flagged late may go back).
  const last = new Map<string, number>();
  let inverted = 0;
  for (const l of lines2) {
    const [topic, late] = l.split(" ");
    const [, c, seq] = topic.split("/");
    if (late === "1") continue;
    if (Number(seq) < (last.get(c) ?? -1)) inverted++;
    else last.set(c, Number(seq));
  }
  assertEquals(inverted, 0, "replayed events out of client order");
  console.log(
    `kill -9: ${taken} taken, ${handledBefore} handled before the kill, ${lines2.length} replayed` +
      ` after it, ${unique.size} distinct, ${duplicates} duplicates`,
  );
});

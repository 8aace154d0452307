// Per-client order when the sidecar stalls (a loaded machine deschedules it; here SIGSTOP for
// longer than the window): an event that reached its socket within the window of a later one
// of its client is still ordered before it, not released after it flagged late. Before the fix
// the stage's timer ran before the pending socket read after the stall: [t/1/2, t/1/1], late 1.
import { assertEquals } from "./_assert.ts";
import { clientPublish, frameOf } from "./_vectors.ts";
import { fileLines, scrape, spawnSidecar } from "./_ops.ts";
import { valueOf } from "./_prom.ts";
import { sidecarTempDir, waitFor } from "./_sidecar.ts";

function frame(client: number, ms: number, tag: string): Uint8Array {
  return frameOf(clientPublish(client, ms, `t/${client}/${tag}`));
}

Deno.test("order=client: a sidecar stalled past the window still orders what reached its sockets within the window", async () => {
  const dir = await sidecarTempDir();
  const ordered = `${dir}/ordered.jsonl`;
  const s = await spawnSidecar([
    "--listen",
    "127.0.0.1:0",
    "--admin",
    "127.0.0.1:0",
    "--out",
    `file:${ordered}?order=client&order_window_ms=300`,
  ]);
  const a = await Deno.connect({ hostname: "127.0.0.1", port: s.port });
  const b = await Deno.connect({ hostname: "127.0.0.1", port: s.port });
  try {
    const label = { output: `file:${ordered}` };
    await b.write(frame(1, 20, "2")); // B, then A (earlier) on another connection
    await waitFor(
      async () =>
        valueOf(await scrape(s.adminPort), "vmq_sidecar_reorder_held_events", label) === 1,
      "B held",
      10_000,
    );
    s.kill("SIGSTOP"); // B held; its window (300 ms) ends while the process is stopped
    await new Promise((r) => setTimeout(r, 20));
    await a.write(frame(1, 10, "1")); // 20 ms after B: well within the window, into the socket
    await new Promise((r) => setTimeout(r, 800));
    s.kill("SIGCONT");
    await waitFor(() => fileLines(ordered).length === 2, "2 lines", 10_000);
    const m = await scrape(s.adminPort);
    const topics = fileLines(ordered).map((l) => JSON.parse(l).topic);
    assertEquals({ topics, late: valueOf(m, "vmq_sidecar_reorder_late_total", label) }, {
      topics: ["t/1/1", "t/1/2"],
      late: 0,
    });
  } finally {
    a.close();
    b.close();
    try {
      s.kill("SIGKILL");
    } catch { /* exited */ }
    await s.wait().catch(() => {});
  }
});

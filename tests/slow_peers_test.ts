// scripts/slow_peers.ts at reduced sizes against the real main.ts (issue 15 item 7): slowloris
// and stalled large-header peers are all closed by the stall timeout and counted, idle
// connections stay open (no idle timeout by default), resets before accept do not hold up a
// healthy peer; afterwards the fds are back and RSS near its start. Generous bounds only.
import { assert, assertEquals } from "./_assert.ts";
import {
  churn,
  formatSlowPhase,
  healthy,
  idle,
  largeHeaders,
  resets,
  slowloris,
  type SlowPhaseResult,
  spawnForSlowPeers,
} from "../scripts/slow_peers.ts";

const MIB = 1024 * 1024;

Deno.test("slow and churning peers: every stall closed and counted, fds back, RSS near its start", async () => {
  const stallMs = 1000;
  const s = await spawnForSlowPeers(stallMs);
  const results: SlowPhaseResult[] = [];
  try {
    const o = { stallMs, settleMs: 1500 };
    results.push(await slowloris(s, { ...o, peers: 30 }));
    results.push(await largeHeaders(s, { ...o, largePeers: 10 }));
    results.push(await churn(s, { ...o, cycles: 1000, concurrency: 50 }));
    results.push(await idle(s, { ...o, idle: 200, holdMs: 2 * stallMs }));
    results.push(await resets(s, { ...o, resets: 300 }));
    const lines = results.map(formatSlowPhase);
    console.log(lines.join("\n"));
    for (const [i, r] of results.entries()) assert(r.ok, lines[i]);
    const first = results[0].before, last = results.at(-1)!.after;
    // ± the admin scrape's connection; the python helper's resets leave nothing behind.
    assert(last.fds <= first.fds + 3, `fds ${first.fds} → ${last.fds}`);
    assertEquals(last.open, 0);
    assert(last.rss - first.rss < 100 * MIB, `RSS ${first.rss} → ${last.rss}`);
    assert(await healthy(s, "after-all"), "a healthy peer is served after every phase");
  } finally {
    s.kill("SIGTERM");
    assertEquals((await s.wait()).code, 0);
  }
});

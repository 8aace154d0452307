// The module graph (issue 11, items 2 and 4): importing the public entry — or parsing flags,
// checking a config, validating a reload — loads no output client library; each kind's sink
// module is loaded on use through a literal dynamic import, which `deno compile` embeds: every
// lib/outputs/*/sink.ts and its npm packages are in main.ts's graph.
import { assert, assertEquals } from "./_assert.ts";

const ROOT = new URL("../", import.meta.url);

interface Dependency {
  specifier: string;
  isDynamic?: boolean;
  code?: { specifier: string };
  type?: { specifier: string };
}
interface Info {
  roots: string[];
  modules: { specifier: string; dependencies?: Dependency[] }[];
}

async function info(entry: string): Promise<Info> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", entry],
    cwd: ROOT,
    stdin: "null",
    stderr: "inherit",
    signal: AbortSignal.timeout(120_000),
  }).output();
  assertEquals(out.code, 0, `deno info ${entry}`);
  return JSON.parse(new TextDecoder().decode(out.stdout));
}

/** Every module reached from the roots; `staticOnly`: without following dynamic imports. */
function reached(graph: Info, staticOnly: boolean): Set<string> {
  const byName = new Map(graph.modules.map((m) => [m.specifier, m]));
  const seen = new Set<string>();
  const stack = [...graph.roots];
  while (stack.length) {
    const s = stack.pop()!;
    if (seen.has(s)) continue;
    seen.add(s);
    for (const d of byName.get(s)?.dependencies ?? []) {
      if (staticOnly && d.isDynamic) continue;
      for (const r of [d.code?.specifier, d.type?.specifier]) if (r) stack.push(r);
    }
  }
  return seen;
}

const CLIENTS = [/^npm:\/?@nats-io\//, /^npm:\/?@redis\/client/];
const CODEC_LIBS = [/^npm:\/?protobufjs/, /^npm:\/?long@/];
const clientsIn = (mods: Set<string>, libs: RegExp[]) =>
  [...mods].filter((m) => libs.some((re) => re.test(m)));

Deno.test("graph: lib/mod.ts, flag parsing, check-config and reload reach no output client statically", async () => {
  for (
    const entry of [
      "lib/mod.ts",
      "lib/app/flags.ts",
      "lib/app/commands/check_config.ts",
      "lib/app/config_file.ts",
      "lib/app/reload.ts",
    ]
  ) {
    const mods = reached(await info(entry), true);
    assertEquals(clientsIn(mods, CLIENTS), [], `${entry} reaches an output client`);
    assertEquals(
      [...mods].filter((m) => /\/lib\/outputs\/[^/]+\/sink\.ts$/.test(m)),
      [],
      `${entry} imports a sink module statically`,
    );
  }
  // The only place a kind's sink module is loaded: creating a sink (Sidecar.start, reload).
  const registry = await Deno.readTextFile(new URL("lib/outputs/registry.ts", ROOT));
  assert(/await kind\.load\(\)/.test(registry), "factoryOf loads the kind");
  for (
    const file of [
      "lib/app/config_file.ts",
      "lib/app/output_url.ts",
      "lib/app/flags.ts",
      "lib/app/commands/check_config.ts",
    ]
  ) {
    const text = await Deno.readTextFile(new URL(file, ROOT));
    assert(!/\.load\(\)/.test(text), `${file} loads a sink module`);
  }
});

Deno.test("graph: lib/mod.ts reaches neither protobufjs nor long statically", async () => {
  const mods = reached(await info("lib/mod.ts"), true);
  assertEquals(clientsIn(mods, CODEC_LIBS), []);
});

Deno.test("graph: every lib/outputs/*/sink.ts and its npm client packages are in main.ts's graph (compile embeds them)", async () => {
  const graph = await info("main.ts");
  const all = reached(graph, false);
  const sinks: string[] = [];
  for await (const d of Deno.readDir(new URL("lib/outputs", ROOT))) {
    if (!d.isDirectory) continue;
    try {
      Deno.statSync(new URL(`lib/outputs/${d.name}/sink.ts`, ROOT));
      sinks.push(d.name);
    } catch { /* a kind without its own sink module (stdout: file/sink.ts) */ }
  }
  assert(sinks.length >= 4, `sink modules: ${sinks}`);
  for (const kind of sinks) {
    const url = new URL(`lib/outputs/${kind}/sink.ts`, ROOT).href;
    assert(all.has(url), `${url} is not in main.ts's graph`);
    // Reached only through a dynamic import from main.ts: not statically.
    assert(!reached(graph, true).has(url), `${url} is imported statically by main.ts`);
  }
  // The NATS sink uses its client package; the Redis sink speaks RESP itself (no package).
  assert([...all].some((m) => CLIENTS[0].test(m)), `${CLIENTS[0]} is not in main.ts's graph`);
  assertEquals(clientsIn(all, [CLIENTS[1]]), [], "main.ts reaches @redis/client");
});

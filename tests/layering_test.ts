// The layering rules of docs/design/refactor-plan.md §0, checked on the real module graph of
// every lib/ file (`deno info --json`, which tells type-only from value imports and marks dynamic
// ones): schema ← wire ← codec ← pipeline ← outputs ← app; root files (lib/*.ts, lib/_deps/)
// may be imported by all; nothing outside app/ imports app/; pipeline/ may import only the types
// of outputs/contract.ts from outputs/; ingest/ may import wire/ and pipeline/router.ts; only an
// outputs/<kind>/sink.ts imports an output client library; an outputs/<kind>/ folder imports no
// other kind's folder (what kinds share lives in outputs/); a private `_name.ts` is imported only
// from its own folder. The public entries (mod.ts, internal.ts, testing.ts) may import anything;
// tests, benches and scripts import lib/ only through them (plan §2.2).
import { assert, assertEquals } from "./_assert.ts";

const LIB = new URL("../lib/", import.meta.url);

/**
 * Known exceptions, each with the reason it must stay for now. An edge listed here that no
 * longer exists fails the test (remove it from the list), so the list cannot go stale.
 */
const EXCEPTIONS: readonly { from: string; to: string; reason: string }[] = [
  {
    from: "outputs/stdout/kind.ts",
    to: "outputs/file/sink.ts",
    reason: "stdout's sink is FileSink's writer on fd 1 (one synchronous writer for both)",
  },
  {
    from: "outputs/file/sink.ts",
    to: "outputs/stdout/kind.ts",
    reason: "the same: file/sink.ts builds the stdout sink from stdout's options type",
  },
];

/**
 * Files exempt by name while a rewrite is in flight (none now: the Buffer/Delivery split has
 * landed). Add a name only with the rewrite that removes it.
 */
const REWRITTEN = new Set<string>([]);

/** Layers a folder may import besides itself and the root files. */
const MAY_IMPORT: Record<string, readonly string[]> = {
  schema: [],
  wire: ["schema"],
  codec: ["schema", "wire"],
  // A handler is an output instance on the same seams (Buffer, Delivery, the Sink contract).
  handlers: ["schema", "wire", "codec", "pipeline", "outputs"],
  // The test kit is the top layer: it starts a whole Sidecar (app/) with handlers.
  testing: ["schema", "wire", "codec", "handlers", "pipeline", "ingest", "outputs", "app"],
  pipeline: ["schema", "wire", "codec"],
  ingest: ["schema", "wire"],
  outputs: ["schema", "wire", "codec", "pipeline"],
  app: ["schema", "wire", "codec", "handlers", "pipeline", "ingest", "outputs"],
  "": ["schema"], // root files: errors.ts, parse.ts (hook names), _permissions.ts, …
};

const ENTRIES = new Set(["mod.ts", "internal.ts", "testing.ts"]);

/** Test files that import lib/ files directly, with the reason. */
const DIRECT_IMPORTERS: Record<string, string> = {
  "tests/disk_journal_test.ts": "journal internals (HEADER_BYTES, Buffer types) while the " +
    "Buffer/Delivery split (D1–D3) rewrites lib/pipeline/",
};
const CLIENT_SHIMS = new Set([
  "_deps/nats_jetstream.ts",
  "_deps/nats_transport_node.ts",
  "_deps/redis_client.ts",
]);

interface Dependency {
  isDynamic?: boolean;
  code?: { specifier: string };
  type?: { specifier: string };
}
interface Info {
  modules: { specifier: string; dependencies?: Dependency[] }[];
}

/** An import of one lib/ file by another (lib-relative paths). */
interface Edge {
  from: string;
  to: string;
  /** Only types are imported (`import type`, `export type … from`): erased at run time. */
  typeOnly: boolean;
}

async function* tsFiles(dir: URL): AsyncGenerator<URL> {
  for await (const e of Deno.readDir(dir)) {
    if (e.isDirectory) yield* tsFiles(new URL(`${e.name}/`, dir));
    else if (e.name.endsWith(".ts")) yield new URL(e.name, dir);
  }
}

/** Every import between lib/ files, from one `deno info` over a root importing all of them. */
async function libEdges(): Promise<Edge[]> {
  const dir = await Deno.makeTempDir({ prefix: "layering-" });
  try {
    const files: string[] = [];
    for await (const url of tsFiles(LIB)) files.push(url.href);
    assert(files.length > 50, `only ${files.length} lib/ files found`);
    const root = `${dir}/all.ts`;
    await Deno.writeTextFile(root, files.map((f) => `import "${f}";\n`).join(""));
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["info", "--json", root],
      cwd: dir,
      stdin: "null",
      stderr: "inherit",
      signal: AbortSignal.timeout(120_000),
    }).output();
    assertEquals(out.code, 0, "deno info over every lib/ file");
    const info = JSON.parse(new TextDecoder().decode(out.stdout)) as Info;
    const edges: Edge[] = [];
    for (const m of info.modules) {
      if (!m.specifier.startsWith(LIB.href)) continue;
      const from = m.specifier.slice(LIB.href.length);
      for (const d of m.dependencies ?? []) {
        const target = d.code?.specifier ?? d.type?.specifier;
        if (!target?.startsWith(LIB.href)) continue;
        edges.push({ from, to: target.slice(LIB.href.length), typeOnly: d.code === undefined });
      }
    }
    return edges;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** `outputs/nats/sink.ts` → `outputs`; a root file → `""`. */
function layerOf(path: string): string {
  const slash = path.indexOf("/");
  return slash < 0 || path.startsWith("_deps/") ? "" : path.slice(0, slash);
}

function folderOf(path: string): string {
  return path.slice(0, path.lastIndexOf("/") + 1);
}

/** Why `e` breaks a rule, or undefined when it keeps them all. */
function violation(e: Edge): string | undefined {
  const from = layerOf(e.from), to = layerOf(e.to);
  const name = e.to.slice(e.to.lastIndexOf("/") + 1);
  if (CLIENT_SHIMS.has(e.to) && !/^outputs\/[a-z]+\/sink\.ts$/.test(e.from)) {
    return "only an outputs/<kind>/sink.ts imports an output client library";
  }
  if (e.to === "_deps/smol_toml.ts" && from !== "app") return "only app/ reads TOML";
  if (name.startsWith("_") && to !== "" && !e.from.startsWith(folderOf(e.to))) {
    return `${name} is private to ${folderOf(e.to)}`;
  }
  const kindFrom = /^outputs\/([a-z]+)\//.exec(e.from)?.[1];
  const kindTo = /^outputs\/([a-z]+)\//.exec(e.to)?.[1];
  if (kindFrom && kindTo && kindFrom !== kindTo) {
    return `outputs/${kindFrom}/ imports another kind's folder: move what they share to outputs/`;
  }
  if (to === "" || to === from) return undefined;
  if (to === "app" && from !== "testing") {
    return "nothing outside app/ (and the test kit) imports app/";
  }
  if (from === "pipeline" && to === "outputs") {
    return e.to === "outputs/contract.ts" && e.typeOnly
      ? undefined
      : "pipeline/ imports only the types of outputs/contract.ts from outputs/";
  }
  if (from === "ingest" && e.to === "pipeline/router.ts") return undefined;
  const allowed = MAY_IMPORT[from];
  if (allowed === undefined) return `lib/${from}/ is not in the layering table of this test`;
  return allowed.includes(to)
    ? undefined
    : `${from}/ may import only ${
      allowed.length ? allowed.join(", ") + " and " : ""
    }the root files`;
}

/** The edges that break a rule, as `from → to: why`, minus the listed exceptions. */
function violations(edges: readonly Edge[]): string[] {
  const excepted = new Set(EXCEPTIONS.map((x) => `${x.from} → ${x.to}`));
  const out: string[] = [];
  for (const e of edges) {
    if (ENTRIES.has(e.from) || REWRITTEN.has(e.from)) continue;
    const why = violation(e);
    if (why !== undefined && !excepted.has(`${e.from} → ${e.to}`)) {
      out.push(`lib/${e.from} → lib/${e.to}: ${why}`);
    }
  }
  return out.sort();
}

Deno.test("layering: every import between lib/ files keeps the rules of the plan (§0)", async () => {
  const edges = await libEdges();
  assert(edges.length > 200, `only ${edges.length} imports between lib/ files found`);
  const bad = violations(edges);
  assertEquals(bad.length, 0, `${bad.length} imports break the layering:\n  ${bad.join("\n  ")}`);
  const present = new Set(edges.map((e) => `${e.from} → ${e.to}`));
  for (const x of EXCEPTIONS) {
    assert(violation({ from: x.from, to: x.to, typeOnly: true }), `${x.from} → ${x.to} is allowed`);
    assert(present.has(`${x.from} → ${x.to}`), `exception ${x.from} → ${x.to} is gone: remove it`);
  }
});

Deno.test("layering: the rules refuse what they are meant to refuse", () => {
  const refused: Edge[] = [
    { from: "outputs/options.ts", to: "app/config.ts", typeOnly: false },
    { from: "outputs/registry.ts", to: "app/settings.ts", typeOnly: false },
    { from: "outputs/nats/sink.ts", to: "app/config.ts", typeOnly: true },
    { from: "wire/envelope.ts", to: "codec/slots.ts", typeOnly: false },
    { from: "codec/slots.ts", to: "pipeline/buffer.ts", typeOnly: true },
    { from: "pipeline/buffer.ts", to: "outputs/encoding.ts", typeOnly: true },
    { from: "pipeline/buffer.ts", to: "outputs/contract.ts", typeOnly: false },
    { from: "ingest/server.ts", to: "pipeline/buffer.ts", typeOnly: false },
    { from: "outputs/options.ts", to: "_deps/redis_client.ts", typeOnly: false },
    { from: "outputs/nats/kind.ts", to: "_deps/nats_jetstream.ts", typeOnly: false },
    { from: "outputs/file/kind.ts", to: "_deps/smol_toml.ts", typeOnly: false },
    { from: "outputs/encoding.ts", to: "codec/_base64.ts", typeOnly: false },
    { from: "outputs/http/kind.ts", to: "outputs/redis/kind.ts", typeOnly: false },
  ];
  for (const e of refused) assert(violation(e), `${e.from} → ${e.to} should be refused`);
  const allowed: Edge[] = [
    { from: "pipeline/buffer.ts", to: "outputs/contract.ts", typeOnly: true },
    { from: "ingest/server.ts", to: "pipeline/router.ts", typeOnly: false },
    { from: "outputs/nats/sink.ts", to: "_deps/nats_jetstream.ts", typeOnly: false },
    { from: "outputs/options.ts", to: "parse.ts", typeOnly: false },
    { from: "parse.ts", to: "schema/hooks.ts", typeOnly: false },
    { from: "outputs/options.ts", to: "outputs/_sha256.ts", typeOnly: false },
    { from: "outputs/http/sink.ts", to: "outputs/_ca_file.ts", typeOnly: false },
    { from: "outputs/nats/sink.ts", to: "outputs/nats/kind.ts", typeOnly: false },
    { from: "wire/frame_reader.ts", to: "_regions.ts", typeOnly: false },
    { from: "app/config_file.ts", to: "_deps/smol_toml.ts", typeOnly: false },
    { from: "app/settings.ts", to: "outputs/options.ts", typeOnly: false },
  ];
  for (const e of allowed) assertEquals(violation(e), undefined, `${e.from} → ${e.to}`);
});

Deno.test("layering: tests, benches and scripts import lib/ only through mod.ts, internal.ts, testing.ts", async () => {
  const root = new URL("../", import.meta.url);
  const bad: string[] = [];
  const direct = new Set<string>();
  for (const dir of ["tests/", "benches/", "scripts/"]) {
    for await (const url of tsFiles(new URL(dir, root))) {
      const rel = url.href.slice(root.href.length);
      const src = await Deno.readTextFile(url);
      for (const m of src.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*|^import\s+)"([^"]+)"/gm)) {
        const target = new URL(m[1], url).href;
        if (!target.startsWith(LIB.href) || ENTRIES.has(target.slice(LIB.href.length))) continue;
        if (rel in DIRECT_IMPORTERS) direct.add(rel);
        else bad.push(`${rel} imports ${m[1]}`);
      }
    }
  }
  assertEquals(bad, [], "import it from lib/internal.ts (add the export there)");
  for (const f of Object.keys(DIRECT_IMPORTERS)) {
    assert(direct.has(f), `${f} no longer imports lib/ files directly: drop its entry`);
  }
});

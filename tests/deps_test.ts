// npm packages reach lib/ only through lib/_deps/*.ts (one file per package, full `npm:`
// specifiers) so a script outside this repository can import lib/ by path (tests/public_api_test.ts);
// each shim's version must equal the deno.json "imports" entry (one version per dependency).
import { assert, assertEquals } from "./_assert.ts";

const LIB = new URL("../lib/", import.meta.url);
const CONFIG = JSON.parse(
  await Deno.readTextFile(new URL("../deno.json", import.meta.url)),
) as { imports: Record<string, string> };

async function* tsFiles(dir: URL): AsyncGenerator<URL> {
  for await (const e of Deno.readDir(dir)) {
    if (e.isDirectory) yield* tsFiles(new URL(`${e.name}/`, dir));
    else if (e.name.endsWith(".ts")) yield new URL(e.name, dir);
  }
}

/** Module specifiers of `import … from` / `export … from` / `import(…)` in `src`. */
function specifiers(src: string): string[] {
  const out: string[] = [];
  for (const m of src.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*|^import\s+)"([^"]+)"/gm)) {
    out.push(m[1]);
  }
  return out;
}

Deno.test("deps: lib/ names npm packages only in lib/_deps/, with the versions of deno.json", async () => {
  const shims: string[] = [];
  for await (const url of tsFiles(LIB)) {
    const rel = url.pathname.slice(LIB.pathname.length);
    const specs = specifiers(await Deno.readTextFile(url));
    if (rel.startsWith("_deps/")) {
      shims.push(rel);
      assert(specs.length > 0, `${rel} re-exports nothing`);
      for (const s of specs) {
        const m = /^npm:((?:@[^/@]+\/)?[^/@]+)@([^/]+)(\/.*)?$/.exec(s);
        assert(m, `${rel}: ${s} is not a full npm: specifier`);
        assertEquals(`npm:${m[1]}@${m[2]}`, CONFIG.imports[m[1]], `${rel}: ${m[1]} version`);
      }
    } else {
      for (const s of specs) {
        assert(
          s.startsWith(".") || s.startsWith("node:"),
          `lib/${rel} imports "${s}": import npm packages through lib/_deps/`,
        );
      }
    }
  }
  assertEquals(shims.length, 5, `shims: ${shims.sort().join(", ")}`);
});

Deno.test("deps: lib/ decodes without protobufjs or long (only scripts/gen.ts and tests use them)", async () => {
  for await (const url of tsFiles(LIB)) {
    const src = await Deno.readTextFile(url);
    for (const s of specifiers(src)) {
      assert(!/protobufjs|(^|[:/])long(@|$)/.test(s), `${url.pathname} imports ${s}`);
    }
    assert(!/Reader\.prototype/.test(src), `${url.pathname} patches a third-party prototype`);
  }
});

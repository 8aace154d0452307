// deploy/: what the unit, the Grafana dashboard and the Prometheus alert rules refer to exists —
// the unit's Documentation= file is installed by the documented install steps.
import { assert, assertEquals } from "./_assert.ts";
import { ROOT } from "./_sidecar.ts";

const read = (path: string) => Deno.readTextFileSync(new URL(path, ROOT));

/** The `install SRC DEST` steps of the ```sh block under "## Install (systemd)" in operations.md. */
function documentedInstalls(): Map<string, { src: string; line: string }> {
  const doc = read("docs/operations.md");
  const section = doc.slice(doc.indexOf("## Install (systemd)"));
  const block = /```sh\n([\s\S]*?)```/.exec(section)?.[1];
  assert(block, "no sh block under ## Install (systemd)");
  const installs = new Map<string, { src: string; line: string }>(); // by destination
  for (const line of block.split("\n")) {
    const words = line.replace(/#.*$/, "").trim().split(/\s+/);
    if (words[0] !== "install") continue;
    const dir = words.includes("-t") ? words[words.indexOf("-t") + 1] : undefined;
    const args = words.slice(1).filter((w, i, a) =>
      !w.startsWith("-") && a[i - 1] !== "-m" && a[i - 1] !== "-t"
    );
    const base = (p: string) => p.split("/").pop();
    if (dir) { for (const src of args) installs.set(`${dir}/${base(src)}`, { src, line }); }
    else {
      const [src, dest] = args;
      installs.set(dest.endsWith("/") ? dest + base(src) : dest, { src, line });
    }
  }
  return installs;
}

Deno.test("the unit's Documentation= files are installed by the documented install steps", async () => {
  const unit = read("deploy/vmq-sidecar.service");
  const uris = unit.split("\n").filter((l) => l.startsWith("Documentation="))
    .flatMap((l) => l.slice("Documentation=".length).trim().split(/\s+/));
  assert(uris.length > 0, "no Documentation=");
  const installs = documentedInstalls();
  for (const uri of uris) {
    // Only what can be checked here: a file the install steps put in place.
    assert(uri.startsWith("file:///"), `${uri}: not a file: URI, cannot be checked`);
    const path = new URL(uri).pathname;
    const step = installs.get(path);
    assert(step, `${uri}: no install step in docs/operations.md puts a file at ${path}`);
    assert(Deno.statSync(new URL(step.src, ROOT)).isFile, `${step.src} (for ${path}) missing`);
    // The unit's own header shows the same step.
    assert(
      unit.includes(`#           ${step.line.trim()}\n`),
      `the unit's comment lacks: ${step.line}`,
    );
    // The step itself, run with its absolute paths below a scratch root, puts the file there.
    const root = await Deno.makeTempDir({ prefix: "vmq-sidecar-install-" });
    try {
      const line = step.line.replace(/(^|\s)\//g, `$1${root}/`);
      const r = await new Deno.Command("sh", { args: ["-c", line], cwd: ROOT }).output();
      assertEquals(r.code, 0, new TextDecoder().decode(r.stderr));
      assertEquals(
        await Deno.readTextFile(`${root}${path}`),
        await Deno.readTextFile(new URL(step.src, ROOT)),
      );
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  }
  assertEquals(new Set(uris).size, uris.length);
});

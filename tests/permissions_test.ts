// Least privilege (issue 15 item 6), on the real main.ts with the start task's permission set:
// a read or write outside the permitted paths (directly, through `..` or through a symlink)
// and a listen outside the permitted hosts fail with an error naming the right --allow-* flag
// and a value Deno accepts (IPv6 in brackets), and nothing is created outside.
import { assert, assertEquals } from "./_assert.ts";
import { ROOT, RUN_MAIN, runSidecar, sidecarTempDir } from "./_sidecar.ts";
import { netFlagValue, permissionHint } from "../lib/internal.ts";

/** A directory outside every permitted path, removed after `fn`. */
async function withOutsideDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ dir: "/var/tmp", prefix: "vmq-sidecar-outside-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function run(args: string[]): Promise<{ code: number; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [...RUN_MAIN, ...args],
    cwd: ROOT,
    stdin: "null",
    stdout: "null",
    env: { NO_COLOR: "1" },
    signal: AbortSignal.timeout(30_000),
  }).output();
  return { code: out.code, stderr: new TextDecoder().decode(out.stderr) };
}

Deno.test("permissions: a listen outside the permitted hosts names --allow-net with IPv6 in brackets", async () => {
  const plugin = await runSidecar([
    "--listen",
    "[fd00::1]:28890",
    "--allow-peers",
    "fd00::/8",
    "--admin",
    "off",
  ]);
  assertEquals(plugin.code, 1, plugin.stderr);
  assert(plugin.stderr.includes("lacks --allow-net for [fd00::1]:28890:"), plugin.stderr);
  assert(plugin.stderr.includes("deno run -P --allow-net=[fd00::1]:28890 main.ts"), plugin.stderr);
  const admin = await runSidecar(["--listen", "127.0.0.1:0", "--admin", "[fd00::1]:28891"]);
  assertEquals(admin.code, 1, admin.stderr);
  assert(admin.stderr.includes("--allow-net=[fd00::1]:28891 main.ts"), admin.stderr);
});

Deno.test("permissions: a file output outside the permitted paths (direct, ../, symlink) names the flag; nothing is written", async () => {
  await withOutsideDir(async (outside) => {
    const direct = await runSidecar([
      "--listen",
      "127.0.0.1:0",
      "--out",
      `file:${outside}/e.jsonl`,
    ]);
    assertEquals(direct.code, 1, direct.stderr);
    assert(direct.stderr.includes(`lacks --allow-write for ${outside}/e.jsonl:`), direct.stderr);
    // `..` out of a permitted directory: the hint names the path it leads to.
    assert(outside.startsWith("/var/"), outside);
    const up = `/tmp/vmq-sidecar/../../${outside.slice(1)}/up.jsonl`;
    const dots = await runSidecar(["--listen", "127.0.0.1:0", "--out", `file:${up}`]);
    assertEquals(dots.code, 1, dots.stderr);
    assert(
      dots.stderr.includes(`lacks --allow-write for ${outside}/up.jsonl (${up} leads there)`),
      dots.stderr,
    );
    // Symlinks in a permitted directory: to the outside directory, to a file there (it
    // exists: it must stay untouched), to a missing file there. Deno checks the path as given.
    const dir = await sidecarTempDir();
    await Deno.writeTextFile(`${outside}/exists.jsonl`, "");
    await Deno.symlink(outside, `${dir}/outside`);
    await Deno.symlink(`${outside}/exists.jsonl`, `${dir}/exists.jsonl`);
    await Deno.symlink(`${outside}/dangling.jsonl`, `${dir}/dangling.jsonl`);
    for (
      const [path, leads] of [
        [`${dir}/outside/e.jsonl`, `${outside}/e.jsonl`],
        [`${dir}/exists.jsonl`, `${outside}/exists.jsonl`],
        [`${dir}/dangling.jsonl`, `${outside}/dangling.jsonl`],
      ]
    ) {
      for (const out of [`file:${path}`, `nats://127.0.0.1:1?subject=s&dead_letter=${path}`]) {
        const r = await runSidecar(["--listen", "127.0.0.1:0", "--admin", "off", "--out", out]);
        assertEquals(r.code, 1, r.stderr);
        assert(
          r.stderr.includes(`lacks --allow-write for ${leads} (${path} leads there)`),
          r.stderr,
        );
      }
    }
    const created = [...Deno.readDirSync(outside)].map((e) => e.name);
    assertEquals(created, ["exists.jsonl"], "nothing was created outside");
    assertEquals(Deno.readTextFileSync(`${outside}/exists.jsonl`), "", "nothing was written");
  });
});

Deno.test("permissions: reading a file outside the permitted paths names --allow-read, not write", async () => {
  await withOutsideDir(async (outside) => {
    const file = `${outside}/capture.bin`;
    await Deno.writeFile(file, new Uint8Array([0, 0, 0, 0]));
    for (const args of [["decode", file], ["send", file, "--to", "127.0.0.1:1"]]) {
      const r = await run(args);
      assertEquals(r.code, 1, r.stderr);
      assert(r.stderr.includes(`lacks --allow-read for ${file}:`), `${args[0]}: ${r.stderr}`);
      assert(!r.stderr.includes("--allow-write"), `${args[0]}: ${r.stderr}`);
    }
    const config = `${outside}/vmq-sidecar.toml`;
    await Deno.writeTextFile(config, 'listen = "127.0.0.1:0"\n');
    const c = await runSidecar(["--config", config]);
    assertEquals(c.code, 2, c.stderr);
    assert(c.stderr.includes("add its directory to permissions.default.read"), c.stderr);
  });
});

Deno.test("permissionHint: the kind and resource Deno names win over the caller's guess", () => {
  const readDenied = new Deno.errors.NotCapable(
    'Requires read access to "/srv/events/e.jsonl", run again with the --allow-read flag',
  );
  const h = permissionHint(readDenied, "write", "/srv/events/e.jsonl");
  assert(
    h.includes(
      "lacks --allow-read for /srv/events/e.jsonl (writing it needs --allow-write there as well)",
    ),
    h,
  );
  assert(h.includes("--allow-read=/srv/events/e.jsonl main.ts"), h);
  const v6 = new Deno.errors.NotCapable(
    'Requires net access to "[::]:28890", run again with the --allow-net flag',
  );
  assert(permissionHint(v6, "net", ":::28890").includes("--allow-net=[::]:28890 main.ts"));
  // Without a resource in the message: the caller's, made valid for the flag.
  const bare = new Deno.errors.NotCapable("Requires net access");
  assert(permissionHint(bare, "net", "::1:28890").includes("--allow-net=[::1]:28890 main.ts"));
  assertEquals(netFlagValue("127.0.0.1:8890"), "127.0.0.1:8890");
  assertEquals(netFlagValue(":::8890"), "[::]:8890");
  assertEquals(netFlagValue("[::1]:8890"), "[::1]:8890");
  assertEquals(netFlagValue("nats.internal:4222"), "nats.internal:4222");
  assertEquals(permissionHint(new Error("other"), "read", "/x"), "");
});

// `deno task bench --net`: its options and usage, and how it finds the shared peers directory
// (cheap checks only: no servers, no load, no timing).
import { assert, assertEquals, assertThrows } from "./_assert.ts";
import { ROOT } from "./_sidecar.ts";
import { findPeersDir, NetArgsError, parseNetArgs } from "../scripts/bench_net.ts";

Deno.test("bench --net options: defaults, and bad values are refused with the option's name", () => {
  assertEquals(parseNetArgs({}), {
    size: 650,
    count: 300_000,
    runs: 3,
    conns: 100,
    profile: false,
    only: [],
  });
  assertEquals(
    parseNetArgs({ size: "1024", count: "50_000", runs: "1", conns: "10", profile: true }),
    { size: 1024, count: 50_000, runs: 1, conns: 10, profile: true, only: [] },
  );
  assertEquals(parseNetArgs({ only: "redis,http", baseline: "/tmp/base" }), {
    size: 650,
    count: 300_000,
    runs: 3,
    conns: 100,
    profile: false,
    only: ["redis", "http"],
    baseline: "/tmp/base/",
  });
  for (
    const [bad, name] of [
      [{ size: "abc" }, "--size"],
      [{ size: "10" }, "--size"],
      [{ count: "0" }, "--count"],
      [{ count: "1.5" }, "--count"],
      [{ runs: "-1" }, "--runs"],
      [{ conns: "" }, "--conns"],
      [{ only: "redis,kafka" }, "--only"],
    ] as const
  ) {
    const e = assertThrows(() => parseNetArgs(bad), NetArgsError);
    assert(e.message.startsWith(name), `${JSON.stringify(bad)}: ${e.message}`);
  }
});

Deno.test("the peers directory is found beside the repository or a parent, or via PEERS_DIR", () => {
  const tmp = Deno.makeTempDirSync({ prefix: "vmq-sidecar-peers-" });
  try {
    Deno.mkdirSync(`${tmp}/shared/peers/go`, { recursive: true });
    Deno.writeTextFileSync(`${tmp}/shared/peers/go/build.sh`, "");
    Deno.mkdirSync(`${tmp}/main`);
    Deno.mkdirSync(`${tmp}/wt/branch`, { recursive: true });
    assertEquals(findPeersDir(`${tmp}/main/`, ""), `${tmp}/shared/peers`); // ../shared/peers
    assertEquals(findPeersDir(`${tmp}/wt/branch/`, ""), `${tmp}/shared/peers`); // a worktree
    assertEquals(findPeersDir(`${tmp}/wt/branch/`, `${tmp}/shared/peers`), `${tmp}/shared/peers`);
    assertEquals(findPeersDir(`${tmp}/wt/branch/`, `${tmp}/nowhere`), undefined);
    Deno.removeSync(`${tmp}/shared`, { recursive: true });
    assertEquals(findPeersDir(`${tmp}/wt/branch/`, ""), undefined);
  } finally {
    Deno.removeSync(tmp, { recursive: true });
  }
});

async function bench(...args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-P=bench", "scripts/bench.ts", ...args],
    cwd: ROOT,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

Deno.test("deno task bench: --help shows the network set; bad --net options exit 2 before any run", async () => {
  const help = await bench("--help");
  assertEquals(help.code, 0, help.stderr);
  assert(/--net \[--size BYTES\] \[--count N\]/.test(help.stdout), help.stdout);
  const bad = await bench("--net", "--size", "12");
  assertEquals(bad.code, 2, bad.stderr);
  assert(bad.stderr.includes('bench: --size "12": expected a whole number'), bad.stderr);
  assert(bad.stderr.includes("network set: deno task bench --net"), bad.stderr);
  const alone = await bench("--count", "1000");
  assertEquals(alone.code, 2, alone.stderr);
  assert(alone.stderr.includes("add --net"), alone.stderr);
});

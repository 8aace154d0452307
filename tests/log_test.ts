// The diagnostics format of the real main.ts: `--log-format json` (and `log_format` in the
// config file, changed by SIGHUP) turns every stderr line into one JSON object; text stays the
// default.
import { assert, assertEquals } from "./_assert.ts";
import { type Ops, scrape, spawnSidecar } from "./_ops.ts";
import { runSidecar, sendChunks, sidecarTempDir, waitFor } from "./_sidecar.ts";
import { frameOf } from "./_vectors.ts";
import { valueOf } from "./_prom.ts";

const ON_FREE_PORTS = ["--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0"];

/** Kills `s` if it still runs (after a failed assertion). */
function stop(s: Ops): void {
  try {
    s.kill("SIGKILL");
  } catch { /* already exited */ }
}

/** One JSON log record as LogTape's JSON-lines formatter writes it. */
interface JsonRecord {
  "@timestamp": string;
  level: string;
  logger: string;
  message: string;
  properties: Record<string, unknown>;
}

/** Parses every line of `stderr` as a JSON record; fails naming the first line that is not. */
function jsonRecords(stderr: string): JsonRecord[] {
  const lines = stderr.split("\n");
  assertEquals(lines.pop(), "", "stderr does not end with a newline");
  return lines.map((line, i) => {
    let r: JsonRecord;
    try {
      r = JSON.parse(line);
    } catch {
      throw new Error(`stderr line ${i + 1} is not JSON: ${line}`);
    }
    assert(typeof r === "object" && r !== null && !Array.isArray(r), line);
    assert(!Number.isNaN(Date.parse(r["@timestamp"])), `no @timestamp: ${line}`);
    assert(["DEBUG", "INFO", "WARN", "ERROR", "FATAL"].includes(r.level), `level: ${line}`);
    assert(r.logger === "vmq_sidecar" || r.logger.startsWith("vmq_sidecar."), `logger: ${line}`);
    assertEquals(typeof r.message, "string", line);
    assert(typeof r.properties === "object" && r.properties !== null, `properties: ${line}`);
    return r;
  });
}

Deno.test("--log-format json: every stderr line is one JSON object with level, logger, message, properties", async () => {
  const dir = await sidecarTempDir();
  const out = `${dir}/events.jsonl`;
  const s = await spawnSidecar([...ON_FREE_PORTS, "--log-format", "json", "--out", `file:${out}`]);
  try {
    // A frame that is not a protobuf Any: its connection is closed with an ERROR record.
    await sendChunks(s.port, [frameOf(Uint8Array.of(0x08))]);
    await waitFor(() => s.stderr().includes("not a valid protobuf Any"), "the error logged");
    s.kill("SIGTERM");
    const { code, stderr } = await s.wait();
    assertEquals(code, 0, stderr);
    const records = jsonRecords(stderr);
    const listening = records.find((r) => r.message.startsWith("listening on "));
    assert(listening, stderr);
    assertEquals(listening.level, "INFO");
    assertEquals(listening.logger, "vmq_sidecar");
    assertEquals(listening.properties.addr, `127.0.0.1:${s.port}`);
    assertEquals(listening.properties.outputs, `file:${out}`);
    assertEquals(listening.message, `listening on 127.0.0.1:${s.port}; outputs: file:${out}`);
    const closed = records.find((r) => r.message.includes("not a valid protobuf Any"));
    assert(closed, stderr);
    assertEquals([closed.level, closed.logger], ["ERROR", "vmq_sidecar.server"]);
    assert(/^127\.0\.0\.1:\d+$/.test(String(closed.properties.peer)), JSON.stringify(closed));
    assert(records.some((r) => r.message === "SIGTERM received"), stderr);
    // The stop summary is a record too, its counts as properties.
    const summary = records.at(-1)!;
    assert(summary.message.startsWith("stopped: 0 events"), summary.message);
    assertEquals(summary.logger, "vmq_sidecar");
    assertEquals(summary.properties.total, 0);
    assertEquals(summary.properties.malformed, 1);
    assertEquals(summary.properties.connectionErrors, { malformed_envelope: 1 });
    assertEquals(summary.properties.unflushed, []);
  } finally {
    stop(s);
    await s.wait().catch(() => {});
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("text stays the default log format; --log-format xml exits 2 naming the flag", async () => {
  const s = await spawnSidecar(ON_FREE_PORTS, { stdout: "null" });
  s.kill("SIGTERM");
  const { code, stderr } = await s.wait();
  assertEquals(code, 0, stderr);
  // The admin listener is bound first (it logs first), then the plugin port.
  const lines = stderr.split("\n");
  const text = /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} [+-]\d\d:\d\d \[INF\] vmq_sidecar(·\w+)?: /;
  assert(text.test(lines[0]), lines[0]);
  assert(
    lines.some((l) => text.test(l) && / \[INF\] vmq_sidecar: listening on /.test(l)),
    stderr,
  );
  assert(stderr.includes("\nvmq-sidecar: stopped: 0 events"), stderr);

  const bad = await runSidecar(["--log-format", "xml"]);
  assertEquals(bad.code, 2, bad.stderr);
  assertEquals(bad.stderr, 'vmq-sidecar: --log-format: expected one of text, json, got "xml"\n');
});

Deno.test("log_format in the config file: checked, shown by check-config, changed by SIGHUP", async () => {
  const dir = await sidecarTempDir();
  const config = `${dir}/vmq-sidecar.toml`;
  const file = (format: string) =>
    `log_format = "${format}"\n\n[[outputs]]\nurl = "file:${dir}/events.jsonl"\n`;
  try {
    await Deno.writeTextFile(config, file("loud"));
    const bad = await runSidecar(["--config", config]);
    assertEquals(bad.code, 2, bad.stderr);
    assert(
      bad.stderr.includes(`${config}:1: log_format: expected one of text, json, got "loud"`),
      bad.stderr,
    );

    await Deno.writeTextFile(config, file("json"));
    const check = await runSidecar(["check-config", config]);
    assertEquals(check.code, 0, check.stderr);
    assertEquals(JSON.parse(check.stdout).log_format, "json");

    // Start in text, reload into JSON: the lines after the reload are JSON records.
    await Deno.writeTextFile(config, file("text"));
    const s = await spawnSidecar(["--config", config, ...ON_FREE_PORTS], { stdout: "null" });
    try {
      assert(s.stderr().includes("[INF] vmq_sidecar: listening on"), s.stderr());
      await Deno.writeTextFile(config, file("json"));
      const before = s.stderr().length;
      s.kill("SIGHUP");
      await waitFor(async () => {
        const m = await scrape(s.adminPort);
        return valueOf(m, "vmq_sidecar_config_reloads_total", { result: "success" }) === 1;
      }, "the reload");
      s.kill("SIGTERM");
      const { code, stderr } = await s.wait();
      assertEquals(code, 0, stderr);
      // The SIGHUP line is still text (written before the new file is read); then JSON.
      const after = stderr.slice(before).split("\n");
      assert(/\[INF\] vmq_sidecar: SIGHUP: reloading /.test(after[0]), after[0]);
      const records = jsonRecords(after.slice(1).join("\n"));
      assert(records.some((r) => r.message.startsWith("config reloaded from ")), stderr);
      assert(records.at(-1)!.message.startsWith("stopped: "), stderr);
    } finally {
      stop(s);
      await s.wait().catch(() => {});
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

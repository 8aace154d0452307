// A handler sidecar as its own process, for tests that kill it (tests/handlers_journal_test.ts):
// `Sidecar.start` with one handler on the default buffer (the disk journal in --data-dir), which
// appends `TOPIC LATE` of every publish it handles to OUT_FILE (a synchronous write: the effect
// is on disk before the call acknowledges the event).
//
//   deno run -A tests/_handler_child.ts LISTEN ADMIN DATA_DIR OUT_FILE
import { defineHandler, loadConfig, Sidecar } from "../lib/mod.ts";

const [listen, admin, dataDir, outFile] = Deno.args;
const config = loadConfig({
  flags: ["--listen", listen, "--admin", admin, "--data-dir", dataDir, "--log-level", "info"],
});
const out = Deno.openSync(outFile, { append: true, create: true, write: true });
const utf8 = new TextEncoder();
const record = defineHandler({
  name: "record",
  deadLetter: `${dataDir}/dead-letter.ndjson`,
  onPublish(e, ctx) {
    out.writeSync(utf8.encode(`${e.topic} ${ctx.late ? 1 : 0}\n`));
  },
});
const sidecar = await Sidecar.start({ config: { ...config, outputs: [] }, handlers: [record] });
console.error(`child: plugin ${sidecar.addr.port} admin ${sidecar.adminAddr?.port ?? 0}`);
Deno.addSignalListener("SIGTERM", () => {
  sidecar.stop().then((s) => {
    console.error(`child: stopped: ${JSON.stringify(s.outputs.record)}`);
    Deno.exit(0);
  });
});

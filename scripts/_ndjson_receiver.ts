/**
 * A minimal HTTP webhook receiver for the network bench (scripts/bench_net.ts): answers every
 * POST with 204 and counts the ndjson lines (newline bytes) of the bodies; `GET /count` answers
 * that count.
 *
 *   deno run --allow-net=127.0.0.1 scripts/_ndjson_receiver.ts --port 9000
 *
 * @module
 */
import { parseArgs } from "node:util";

const { values } = parseArgs({ args: Deno.args, options: { port: { type: "string" } } });
let lines = 0;
Deno.serve(
  { hostname: "127.0.0.1", port: Number(values.port ?? 0), onListen: () => {} },
  async (req) => {
    if (req.method === "GET") return new Response(String(lines));
    const body = await req.bytes();
    for (let i = body.indexOf(0x0a); i >= 0; i = body.indexOf(0x0a, i + 1)) lines++;
    return new Response(null, { status: 204 });
  },
);

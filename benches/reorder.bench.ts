// ReorderStage cost per frame (`deno bench -P=test benches/reorder.bench.ts`): 2000 on_publish
// frames of 10 000 clients pushed at 100k ev/s of a manual clock (≈ 10 000 held with the default
// 100 ms window), against decodeEvent of the same frames as the yardstick.
import { decodeEvent, ReorderStage } from "../lib/internal.ts";
import { eventBody } from "../tests/_vectors.ts";

const frames: Uint8Array[] = [];
for (let i = 0; i < 2000; i++) {
  frames.push(eventBody("on_publish", {
    timestamp: { seconds: 1_764_600_000, nanos: ((i * 7919) % 2000) * 1000 },
    client_id: `client-${i % 10_000}`,
    topic: "devices/a/telemetry",
    payload: new Uint8Array(200),
    qos: 1,
    matched_acl: { name: "", pattern: "" },
    session_id: "3c39f716-b06a-41ec-94bf-5e6c44168955",
  }));
}

let t = 0;
const clock = { now: () => t, setTimeout: () => 0, clearTimeout: () => {} };
for (const copy of [true, false]) {
  let released = 0;
  const stage = new ReorderStage({ copy, clock, release: () => void released++ });
  Deno.bench({
    name: `push 2000 frames (copy: ${copy})`,
    group: "reorder",
    baseline: copy,
    fn() {
      for (const f of frames) {
        t += 0.01;
        stage.push(f);
      }
    },
  });
}

Deno.bench({
  name: "decodeEvent 2000 frames (yardstick)",
  group: "reorder",
  fn() {
    for (const f of frames) if (!decodeEvent(f).ok) throw new Error("undecodable");
  },
});

// JSON writing: `deno bench -P=test benches/` (task bench:micro). Events/s is 1 / time per
// iteration (times the event count where a bench converts several events).
import {
  ByteBuffer,
  decodeEvent,
  eventToJson,
  HOOKS,
  NameTemplate,
  type PayloadMode,
  topicFilter,
  writeBase64,
  writeFrameJsonCode,
  writeTimestamp,
} from "../lib/internal.ts";
import { fixtureVectors, largeVectors, mulberry32, randomBytes } from "../tests/_vectors.ts";

const vectors = fixtureVectors().filter((v) => v.expected.hook !== null);
const out = new ByteBuffer(8 << 20);

function write(body: Uint8Array, mode: PayloadMode = "base64"): void {
  out.pos = 0;
  if (writeFrameJsonCode(out, body, mode) < 0) throw new Error("not an event");
}

// One typical frame per hook (the first vector of each hook, usually `_typical`).
for (const hook of HOOKS) {
  const v = vectors.find((x) => x.expected.hook === hook && x.name.includes("typical")) ??
    vectors.find((x) => x.expected.hook === hook)!;
  Deno.bench({
    name: `writeFrameJsonCode ${v.name} (${v.body.length} B)`,
    group: "writeFrameJsonCode per hook",
    baseline: hook === "on_publish",
    fn: () => write(v.body),
  });
}

const publish = vectors.find((v) => v.name === "027_on_publish_typical")!;
for (const mode of ["base64", "utf8", "omit"] as const) {
  Deno.bench({
    name: `writeFrameJsonCode on_publish typical, payload ${mode}`,
    group: "payload modes",
    baseline: mode === "base64",
    fn: () => write(publish.body, mode),
  });
}

const all = vectors.map((v) => v.body);
Deno.bench({
  name: `writeFrameJsonCode, ${all.length} vectors`,
  group: "wire path vs typed path",
  baseline: true,
  fn: () => {
    for (const body of all) write(body);
  },
});
Deno.bench({
  name: `decodeEvent + eventToJson, ${all.length} vectors`,
  group: "wire path vs typed path",
  fn: () => {
    for (const body of all) {
      const r = decodeEvent(body);
      if (!r.ok) throw r.error;
      eventToJson(r.event);
    }
  },
});
Deno.bench({
  name: `decodeEvent only, ${all.length} vectors`,
  group: "wire path vs typed path",
  fn: () => {
    for (const body of all) if (!decodeEvent(body).ok) throw new Error("bad");
  },
});

const p256 = randomBytes(256, mulberry32(256));
Deno.bench({
  name: "writeBase64 256 B",
  group: "base64 of a 256 B payload",
  baseline: true,
  fn: () => {
    out.pos = 0;
    writeBase64(out, p256, 0, p256.length);
  },
});
Deno.bench({
  name: "btoa(String.fromCharCode(...)) 256 B (reference)",
  group: "base64 of a 256 B payload",
  fn: () => {
    btoa(String.fromCharCode(...p256));
  },
});

let second = 1771844336;
Deno.bench({
  name: "writeTimestamp, same second (cached prefix)",
  group: "timestamp",
  baseline: true,
  fn: () => {
    out.pos = 0;
    writeTimestamp(out, 1771844336, 146092036);
  },
});
Deno.bench({
  name: "writeTimestamp, a new second every call",
  group: "timestamp",
  fn: () => {
    out.pos = 0;
    writeTimestamp(out, second++, 146092036);
  },
});

const large = largeVectors().find((v) => v.no === 34)!; // 1 MiB payload
Deno.bench({
  name: `writeFrameJsonCode 1 MiB payload frame (${large.body.length} B), base64`,
  group: "large payload",
  baseline: true,
  fn: () => write(large.body),
});
Deno.bench({
  name: `writeFrameJsonCode 1 MiB payload frame (${large.body.length} B), utf8 (falls back)`,
  group: "large payload",
  fn: () => write(large.body, "utf8"),
});

// Field readers of the routing and naming steps (per event, on the slots accessors).
const subscribe = vectors.find((v) => v.name === "050_on_subscribe_many_topics")!;
const publishHook = HOOKS.indexOf("on_publish"), subscribeHook = HOOKS.indexOf("on_subscribe");
const devices = topicFilter(["devices/+/telemetry", "nothing/#"]);
Deno.bench({
  name: "topicFilter on_publish typical",
  group: "field readers",
  baseline: true,
  fn: () => {
    devices(publish.body, publishHook);
  },
});
Deno.bench({
  name: `topicFilter on_subscribe many topics (${subscribe.body.length} B)`,
  group: "field readers",
  fn: () => {
    devices(subscribe.body, subscribeHook);
  },
});
const subject = new NameTemplate("subject", "vmq.{mountpoint}.{client_id}.{hook}");
Deno.bench({
  name: "NameTemplate {mountpoint}.{client_id} on_publish typical",
  group: "field readers",
  fn: () => {
    subject.render(publishHook, publish.body);
  },
});

// The schema: the generated descriptors are not stale, and they match protocol.md's table
// (written out by hand in tests/_vectors.ts) field for field.
import { SCHEMA_JSON } from "../lib/internal.ts";
import { HOOKS, isHook, MESSAGE_NAMES, TYPE_URL_PREFIX, typeUrlOf } from "../lib/mod.ts";
import { OUTPUT_FILE, renderSchemaModule } from "../scripts/gen.ts";
import { assert, assertEquals, assertStrictEquals } from "./_assert.ts";
import {
  EXPECTED_ENUMS,
  EXPECTED_HOOKS,
  EXPECTED_MESSAGES,
  type FieldSpec,
  typeUrlFor,
} from "./_vectors.ts";

// deno-lint-ignore no-explicit-any
type Json = any;
const pkg: Record<string, Json> = SCHEMA_JSON.nested.eventssidecar.nested.v1.nested;

Deno.test("lib/schema/_generated.ts is not stale (renderSchemaModule() reproduces it)", async () => {
  const file = await Deno.readTextFile(new URL(`../${OUTPUT_FILE}`, import.meta.url));
  const rendered = await renderSchemaModule();
  assert(rendered === file, `${OUTPUT_FILE} is stale: run \`deno task gen\``);
});

/** A generated field descriptor in protocol.md's notation. */
function typeOf(f: Json): string {
  if (f.keyType !== undefined) return `map<${f.keyType},${f.type}>`;
  const base = f.type === "google.protobuf.Timestamp" ? "Timestamp" : f.type;
  return f.rule === "repeated" ? `repeated ${base}` : base;
}

Deno.test("the schema has exactly the 13 event messages, 2 shared messages and 2 enums", () => {
  const events = Object.values(EXPECTED_HOOKS);
  assertStrictEquals(new Set(events).size, 13);
  assertEquals(
    Object.keys(pkg).sort(),
    [...Object.keys(EXPECTED_MESSAGES), ...Object.keys(EXPECTED_ENUMS)].sort(),
  );
  for (const name of events) assert(pkg[name]?.fields, `${name} is not a message`);
});

Deno.test("every message has the exact field numbers, names and types of protocol.md", () => {
  for (const [name, expected] of Object.entries(EXPECTED_MESSAGES)) {
    const actual: FieldSpec[] = Object.entries<Json>(pkg[name].fields)
      .map(([field, f]) => [f.id, field, typeOf(f)] as unknown as FieldSpec);
    // Same fields, and declared in field-number order (the JSON form's key order).
    assertEquals(actual, [...expected], name);
    const numbers = actual.map((f) => f[0]);
    assertEquals(numbers, [...numbers].sort((a, b) => a - b), `${name}: field order`);
    for (const f of Object.values<Json>(pkg[name].fields)) {
      assert(f.options === undefined || !("packed" in f.options), `${name}: packed option`);
    }
  }
  // No oneofs, extensions or nested declarations that the hand-written table would miss.
  for (const name of Object.keys(EXPECTED_MESSAGES)) {
    assertEquals(Object.keys(pkg[name]).filter((k) => k !== "fields"), [], name);
  }
});

Deno.test("enums have the exact names and numbers of protocol.md", () => {
  for (const [name, names] of Object.entries(EXPECTED_ENUMS)) {
    const expected = Object.fromEntries(names.map((n, i) => [n, i]));
    assertEquals({ ...pkg[name].values }, expected, name);
    assertEquals(Object.keys(pkg[name].values), [...names], `${name}: order`);
  }
});

Deno.test("google.protobuf.Timestamp is int64 seconds = 1, int32 nanos = 2", () => {
  const ts = SCHEMA_JSON.nested.google.nested.protobuf.nested.Timestamp;
  assertEquals(
    Object.entries<Json>(ts.fields).map(([n, f]) => [f.id, n, f.type]),
    [[1, "seconds", "int64"], [2, "nanos", "int32"]],
  );
});

Deno.test("hooks, message names and type URLs match protocol.md's table", () => {
  assertEquals([...HOOKS], Object.keys(EXPECTED_HOOKS));
  assertEquals({ ...MESSAGE_NAMES }, { ...EXPECTED_HOOKS });
  assertStrictEquals(TYPE_URL_PREFIX, "type.googleapis.com/eventssidecar.v1.");
  for (const hook of HOOKS) {
    assertStrictEquals(typeUrlOf(hook), typeUrlFor(hook));
    assert(isHook(hook));
  }
  assertStrictEquals(
    typeUrlOf("on_client_wakeup"),
    "type.googleapis.com/eventssidecar.v1.OnClientWakeUp",
  );
  assert(!isHook("on_auth_m5") && !isHook("OnPublish") && !isHook(""));
});

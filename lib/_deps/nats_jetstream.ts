// The one place lib/ names npm package `@nats-io/jetstream`: lib files import it from here, so a script
// outside this repository (without its import map) resolves it too. Keep the version equal to
// deno.json "imports" (tests/deps_test.ts checks).
export { jetstreamManager } from "npm:@nats-io/jetstream@^3.4.0";

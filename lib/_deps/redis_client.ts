// The one place lib/ names npm package `@redis/client`: lib files import it from here, so a script
// outside this repository (without its import map) resolves it too. Keep the version equal to
// deno.json "imports" (tests/deps_test.ts checks).
export { createClient } from "npm:@redis/client@^6.3.1";

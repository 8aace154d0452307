// The one place lib/ names npm package `long`: lib files import it from here, so a script
// outside this repository (without its import map) resolves it too. Keep the version equal to
// deno.json "imports" (tests/deps_test.ts checks).
export { default as Long } from "npm:long@^5.3.2";

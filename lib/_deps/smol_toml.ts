// The one place lib/ names npm package `smol-toml`: lib files import it from here, so a script
// outside this repository (without its import map) resolves it too. Keep the version equal to
// deno.json "imports" (tests/deps_test.ts checks).
export { parse, stringify, TomlError } from "npm:smol-toml@^1.9.1";

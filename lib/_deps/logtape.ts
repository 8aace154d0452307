// The one place lib/ names npm package `@logtape/logtape`: lib files import it from here, so a script
// outside this repository (without its import map) resolves it too. Keep the version equal to
// deno.json "imports" (tests/deps_test.ts checks).
export {
  configureSync,
  getJsonLinesFormatter,
  getLogger,
  getTextFormatter,
  type LogRecord,
  type TextFormatter,
} from "npm:@logtape/logtape@^2.4.2";

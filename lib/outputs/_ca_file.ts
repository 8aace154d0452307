/**
 * The `tls_ca` option of the network outputs (Redis, HTTP): reading the CA file it names.
 *
 * @module
 */
import { ConfigError } from "../errors.ts";

/** Reads a CA file named by option `tls_ca`; throws ConfigError naming it. */
export function readCaFile(path: string, key: string): string {
  try {
    return Deno.readTextFileSync(path);
  } catch (e) {
    throw new ConfigError(`${key} tls_ca`, `cannot read ${path}: ${(e as Error).message}`);
  }
}

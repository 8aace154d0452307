/**
 * Value parsers shared by the settings table (app/) and the output option schemas (outputs/):
 * each takes the key it reads (for the message) and throws {@linkcode ConfigError} naming that
 * key and what is accepted.
 *
 * @module
 */
import { ConfigError } from "./errors.ts";
import { type Hook, HOOKS, isHook } from "./schema/hooks.ts";

/** A `host:port` address. */
export interface HostPort {
  /** Host name or IP. */
  hostname: string;
  /** Port. */
  port: number;
}

/** Parses `host:port` (`[v6]:port` for IPv6). */
export function parseHostPort(key: string, value: string): HostPort {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\s]+)):(\d{1,5})$/.exec(value.trim());
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) {
    throw new ConfigError(
      key,
      `expected host:port (e.g. 127.0.0.1:8890), got ${JSON.stringify(value)}`,
    );
  }
  return { hostname: m[1] ?? m[2], port };
}

const SIZE_UNITS: Record<string, number> = {
  "": 1,
  b: 1,
  kb: 1000,
  mb: 1000 ** 2,
  gb: 1000 ** 3,
  kib: 1024,
  mib: 1024 ** 2,
  gib: 1024 ** 3,
};

/**
 * Parses a byte size: `1048576`, `512KiB`, `64MiB`, `1GiB` (IEC units, powers of 1024) or
 * `64MB`, `500kB`, `1GB` (SI units, powers of 1000); units are case-insensitive. A bare `k`,
 * `M` or `G` is refused as ambiguous.
 */
export function parseSize(key: string, value: string | number, min = 0): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(String(value));
  const unit = m ? SIZE_UNITS[m[2].toLowerCase()] : undefined;
  if (m && unit === undefined && /^[kmg]$/i.test(m[2])) {
    const k = "kmg".indexOf(m[2].toLowerCase()) + 1;
    const iec = `${m[1]}${["Ki", "Mi", "Gi"][k - 1]}B`, si = `${m[1]}${["k", "M", "G"][k - 1]}B`;
    throw new ConfigError(
      key,
      `${JSON.stringify(String(value).trim())} is ambiguous: write ${iec} (${
        Math.floor(Number(m[1]) * 1024 ** k)
      } bytes) or ${si} (${Math.floor(Number(m[1]) * 1000 ** k)} bytes)`,
    );
  }
  const n = m && unit ? Math.floor(Number(m[1]) * unit) : NaN;
  if (!Number.isSafeInteger(n) || n < min) {
    throw new ConfigError(
      key,
      `expected a size of at least ${min} bytes like 1048576, 512KiB, 64MiB, 1GiB or 64MB, got ${
        JSON.stringify(String(value))
      }`,
    );
  }
  return n;
}

/** Parses a whole number in `[min, max]`. */
export function parseIntIn(key: string, value: string | number, min: number, max: number): number {
  const n = typeof value === "number" ? value : /^\s*\d+\s*$/.test(value) ? Number(value) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    throw new ConfigError(
      key,
      `expected a whole number from ${min} to ${max}, got ${JSON.stringify(String(value))}`,
    );
  }
  return n;
}

/** Parses one of `allowed`. */
export function parseChoice<T extends string>(
  key: string,
  value: string,
  allowed: readonly T[],
): T {
  if (!(allowed as readonly string[]).includes(value)) {
    throw new ConfigError(
      key,
      `expected one of ${allowed.join(", ")}, got ${JSON.stringify(value)}`,
    );
  }
  return value as T;
}

/** Parses a comma-separated hook list (`all` = every hook). */
export function parseHooks(key: string, value: string | string[]): Hook[] | null {
  const names = (Array.isArray(value) ? value : value.split(",")).map((s) => s.trim()).filter(
    Boolean,
  );
  if (names.length === 1 && names[0] === "all") return null;
  if (names.length === 0) {
    throw new ConfigError(key, `expected hook names, e.g. on_publish,on_deliver`);
  }
  for (const n of names) {
    if (!isHook(n)) {
      throw new ConfigError(
        key,
        `unknown hook ${JSON.stringify(n)}; hooks are: ${HOOKS.join(", ")}`,
      );
    }
  }
  return [...new Set(names as Hook[])];
}

/** Validates MQTT topic filters (`+` and `#` as whole levels, `#` last). */
export function parseTopicFilters(key: string, value: string | string[]): string[] {
  const filters = (Array.isArray(value) ? value : value.split(",")).map((s) => s.trim()).filter(
    Boolean,
  );
  if (filters.length === 0) {
    throw new ConfigError(key, "expected MQTT topic filters, e.g. devices/+/telemetry,cmd/#");
  }
  for (const f of filters) {
    const levels = f.split("/");
    levels.forEach((l, i) => {
      if (
        (l.includes("+") && l !== "+") ||
        (l.includes("#") && (l !== "#" || i !== levels.length - 1))
      ) {
        throw new ConfigError(
          key,
          `invalid topic filter ${JSON.stringify(f)}: + and # must be whole levels, # only last`,
        );
      }
    });
  }
  return filters;
}

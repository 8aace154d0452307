/**
 * The `http(s)://URL` output kind (webhook): its options and their rules. The sink module
 * (`./sink.ts`) is loaded when an output is created.
 *
 * @module
 */
import { ConfigError } from "../../errors.ts";
import type { OutputKindDescriptor } from "../registry.ts";
import {
  type BatchOptions,
  batchSchema,
  type BufferOptions,
  bufferSchema,
  type ConcurrencyOptions,
  concurrencySchema,
  intOption,
  type OrderOptions,
  orderSchema,
  parseUrl,
  textOption,
  textTableOption,
} from "../options.ts";
import { DEFAULT_DEAD_LETTER } from "../dead_letter.ts";
import { readCaFile } from "../_ca_file.ts";

/** Options of an HTTP output. */
export interface HttpOptions extends BatchOptions, BufferOptions, ConcurrencyOptions, OrderOptions {
  /** Extra request headers, by name as given (`header.NAME`; every value is a secret). */
  header: Record<string, string>;
  /** Query parameters appended to the URL (`query.NAME`). */
  query: Record<string, string>;
  /** Per-request timeout, in ms. */
  timeout_ms: number;
  /** Longest `Retry-After` honoured, in ms. */
  retry_after_max_ms: number;
  /** Where refused batches go. */
  dead_letter: string;
  /** CA certificates (PEM file) to trust; needs `https://`. */
  tls_ca: string | undefined;
}

const HTTP_EXAMPLE = "https://collector.example.com/vmq/events";
const RESERVED = ["content-type", "content-length", "idempotency-key", "host"];

/** The request headers of `o.header` by lower-case name, validated (`KEY header.NAME`). */
export function requestHeaders(o: { header: Record<string, string> }, key: string) {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(o.header)) {
    const at = `${key} header.${name}`;
    if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name)) {
      throw new ConfigError(at, `invalid header name ${JSON.stringify(name)}`);
    }
    const lower = name.toLowerCase();
    if (RESERVED.includes(lower)) throw new ConfigError(at, `${name} is set by the sidecar`);
    if (headers[lower] !== undefined) throw new ConfigError(at, `header ${name} is given twice`);
    headers[lower] = value;
  }
  return headers;
}

/** The HTTP output kind. */
export const httpKind: OutputKindDescriptor<HttpOptions> = {
  kind: "http",
  match: (base) => /^https?:\/\//.test(base) ? base : undefined,
  local: false,
  // Each send is its own request, with no state shared between them.
  maxConcurrency: 64,
  example: HTTP_EXAMPLE,
  options: {
    timeout_ms: { parse: intOption(100, 600_000), default: 30_000, help: "request timeout" },
    retry_after_max_ms: {
      parse: intOption(0, 3_600_000),
      default: 60_000,
      help: "longest Retry-After honoured",
    },
    dead_letter: {
      parse: textOption,
      default: DEFAULT_DEAD_LETTER,
      help: "file of batches refused for good",
    },
    tls_ca: { parse: textOption, default: undefined, help: "CA file to trust (https://)" },
    ...batchSchema({ events: 1000, bytes: 1024 * 1024, lingerMs: 100 }),
    ...bufferSchema(),
    ...concurrencySchema(),
    ...orderSchema(),
    header: {
      parse: textTableOption,
      default: {},
      prefix: true,
      secret: true,
      help: "a request header (header_env.NAME: from an environment variable)",
    },
    query: { parse: textTableOption, default: {}, prefix: true, help: "a query parameter" },
  },
  check(target, o, key) {
    const url = parseUrl(key, target, HTTP_EXAMPLE);
    const headers = requestHeaders(o, key);
    if ((url.username || url.password) && headers.authorization !== undefined) {
      throw new ConfigError(
        `${key} header.Authorization`,
        "header Authorization is given twice (the URL's user info sets it)",
      );
    }
    if (o.tls_ca !== undefined) {
      if (url.protocol !== "https:") {
        throw new ConfigError(`${key} tls_ca`, "tls_ca needs an https:// URL");
      }
      readCaFile(o.tls_ca, key);
    }
  },
  load: () => import("./sink.ts").then((m) => m.httpFactory),
};

/**
 * The `redis://HOST:PORT/DB` (and `rediss://`) output kind (Streams): its options and their
 * rules. Imports no Redis client: the sink module (`./sink.ts`) is loaded when an output is
 * created.
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
} from "../options.ts";
import { NameTemplate } from "../name_template.ts";
import { readCaFile } from "../_ca_file.ts";

/** Default stream key template: one stream per hook. */
export const DEFAULT_KEY = "vmq:events:{hook}";

/** Options of a Redis output. */
export interface RedisOptions
  extends BatchOptions, BufferOptions, ConcurrencyOptions, OrderOptions {
  /** Stream key template (`{hook}`, `{mountpoint}`, `{client_id}`). */
  key: string;
  /** Approximate stream length cap (`MAXLEN ~ N`); 0 = none. */
  maxlen: number;
  /** ACL user name (default: the URL's user info). */
  username: string | undefined;
  /** Password (secret; default: the URL's user info). */
  password: string | undefined;
  /** CA certificates (PEM file) to trust; needs `rediss://`. */
  tls_ca: string | undefined;
  /** How long to wait for a batch's `EXEC` reply, in ms. */
  timeout_ms: number;
}

const REDIS_EXAMPLE = "redis://127.0.0.1:6379/0";

/** The database number of a `redis://` URL's path; throws ConfigError. */
export function redisDatabase(url: URL, key: string): number {
  const db = url.pathname.replace(/^\//, "");
  if (db !== "" && !/^\d+$/.test(db)) {
    throw new ConfigError(key, `the path of a redis:// URL is the database number, got /${db}`);
  }
  return db === "" ? 0 : intOption(0, 1_000_000)(key, db);
}

/** The Redis output kind. */
export const redisKind: OutputKindDescriptor<RedisOptions> = {
  kind: "redis",
  match: (base) => /^rediss?:\/\//.test(base) ? base : undefined,
  local: false,
  // RedisSink pipelines one MULTI/EXEC block per batch in flight, each settled by its own EXEC.
  maxConcurrency: 64,
  example: REDIS_EXAMPLE,
  options: {
    key: { parse: textOption, default: DEFAULT_KEY, help: "stream key template" },
    maxlen: { parse: intOption(1, 2 ** 52), default: 0, help: "approximate stream length cap" },
    username: { parse: textOption, default: undefined, help: "ACL user name" },
    password: { parse: textOption, default: undefined, secret: true, help: "password" },
    tls_ca: { parse: textOption, default: undefined, help: "CA file to trust (rediss://)" },
    timeout_ms: { parse: intOption(100, 600_000), default: 10_000, help: "EXEC reply timeout" },
    ...batchSchema({ events: 1000, bytes: 256 * 1024, lingerMs: 0 }),
    ...bufferSchema(),
    ...concurrencySchema(),
    ...orderSchema(),
  },
  check(target, o, key) {
    const url = parseUrl(key, target, REDIS_EXAMPLE);
    redisDatabase(url, key);
    if (o.tls_ca !== undefined) {
      if (url.protocol !== "rediss:") {
        throw new ConfigError(`${key} tls_ca`, "tls_ca needs a rediss:// URL");
      }
      readCaFile(o.tls_ca, key);
    }
    new NameTemplate(`${key} key`, o.key);
  },
  load: () => import("./sink.ts").then((m) => m.redisFactory),
};

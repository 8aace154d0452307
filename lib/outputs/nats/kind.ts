/**
 * The `nats://HOST:PORT` output kind (JetStream): its options and their rules. Imports no
 * NATS client: the sink module (`./sink.ts`) is loaded when an output is created.
 *
 * @module
 */
import { ConfigError } from "../../errors.ts";
import type { OutputKindDescriptor } from "../registry.ts";
import {
  type BatchOptions,
  batchSchema,
  boolOption,
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
import { DEFAULT_DEAD_LETTER } from "../dead_letter.ts";
import { NameTemplate } from "../name_template.ts";

/** Default subject template. */
export const DEFAULT_SUBJECT = "vmq.events.{hook}";

/**
 * Escapes a value for use as (part of) one NATS subject token, reversibly: `%`, `.`, `*`, `>`,
 * whitespace and control characters become `%XX` (UTF-8 bytes, upper-case hex, as
 * `encodeURIComponent` writes them) and the empty string becomes `%`. Undo with
 * {@linkcode unescapeSubjectToken}.
 *
 * @example
 * ```ts
 * import { escapeSubjectToken } from "./kind.ts";
 * escapeSubjectToken("a.b c"); // "a%2Eb%20c"
 * escapeSubjectToken(""); // "%"
 * ```
 */
export function escapeSubjectToken(value: string): string {
  if (value === "") return "%";
  return value.replace(/[%.*>\s\p{Cc}]/gu, (ch) => {
    const c = ch.charCodeAt(0);
    return c < 0x80 ? `%${c.toString(16).toUpperCase().padStart(2, "0")}` : encodeURIComponent(ch);
  });
}

/** The value {@linkcode escapeSubjectToken} escaped. */
export function unescapeSubjectToken(token: string): string {
  return token === "%" ? "" : decodeURIComponent(token);
}

/** Options of a NATS output. */
export interface NatsOptions extends BatchOptions, BufferOptions, ConcurrencyOptions, OrderOptions {
  /** Subject template (`{hook}`, `{mountpoint}`, `{client_id}`). */
  subject: string;
  /** User name (default: the URL's user info). */
  user: string | undefined;
  /** Password (secret; default: the URL's user info). */
  password: string | undefined;
  /** Token (secret). */
  token: string | undefined;
  /** TLS with the system roots. */
  tls: boolean;
  /** CA file to trust (implies TLS). */
  tls_ca: string | undefined;
  /** Stream to create when missing. */
  create_stream: string | undefined;
  /** How long to wait for each publish acknowledgement, in ms. */
  ack_timeout_ms: number;
  /** Where events the server refuses for good go. */
  dead_letter: string;
}

const NATS_EXAMPLE = "nats://127.0.0.1:4222";

/** The subject template of `o`, validated: `KEY subject` errors. */
export function subjectTemplate(o: { subject: string }, key: string): NameTemplate {
  const subject = new NameTemplate(`${key} subject`, o.subject, escapeSubjectToken);
  if (!/^[^\s.*>]+(\.[^\s.*>]+)*$/u.test(subject.fill("x"))) {
    throw new ConfigError(
      `${key} subject`,
      `${JSON.stringify(subject.source)} is not a valid subject to publish to: tokens separated` +
        ` by single dots, no spaces, no * or > wildcards`,
    );
  }
  return subject;
}

/** The NATS output kind. */
export const natsKind: OutputKindDescriptor<NatsOptions> = {
  kind: "nats",
  match: (base) => /^nats:\/\//.test(base) ? base : undefined,
  local: false,
  // NatsSink tracks the acks of each batch in flight on its own (found by the batch in the reply subject).
  maxConcurrency: 64,
  example: NATS_EXAMPLE,
  options: {
    subject: { parse: textOption, default: DEFAULT_SUBJECT, help: "subject template" },
    user: { parse: textOption, default: undefined, help: "user name" },
    password: { parse: textOption, default: undefined, secret: true, help: "password" },
    token: { parse: textOption, default: undefined, secret: true, help: "token" },
    tls: { parse: boolOption, default: false, help: "TLS with the system roots" },
    tls_ca: { parse: textOption, default: undefined, help: "CA file to trust (implies TLS)" },
    create_stream: {
      parse: (key, raw) => {
        const name = textOption(key, raw);
        if (!/^[A-Za-z0-9_-]+$/.test(name)) {
          throw new ConfigError(
            key,
            `expected a stream name of letters, digits, - and _, got ${JSON.stringify(name)}`,
          );
        }
        return name;
      },
      default: undefined,
      help: "stream to create when missing",
    },
    ack_timeout_ms: {
      parse: intOption(100, 600_000),
      default: 5000,
      help: "publish acknowledgement timeout",
    },
    dead_letter: {
      parse: textOption,
      default: DEFAULT_DEAD_LETTER,
      help: "file of events refused for good",
    },
    ...batchSchema({ events: 1000, bytes: 256 * 1024, lingerMs: 0 }),
    ...bufferSchema(),
    ...concurrencySchema(),
    ...orderSchema(),
  },
  check(target, o, key) {
    const url = parseUrl(key, target, NATS_EXAMPLE);
    if (url.pathname !== "" && url.pathname !== "/") {
      throw new ConfigError(key, `a nats:// URL has no path; give the subject as ?subject=...`);
    }
    subjectTemplate(o, key);
    // A lone user info (`nats://TOKEN@host`) is a token, as NATS URLs mean it.
    const urlToken = url.username !== "" && url.password === "" && o.user === undefined &&
      o.password === undefined;
    if (urlToken && o.token !== undefined) {
      throw new ConfigError(`${key} token`, "give the token in the URL or as token, not both");
    }
    const user = urlToken ? undefined : o.user ?? (url.username || undefined);
    const password = o.password ?? (url.password || undefined);
    if (o.token !== undefined && user !== undefined) {
      throw new ConfigError(`${key} token`, "give a token or a user and password, not both");
    }
    if (password !== undefined && user === undefined) {
      throw new ConfigError(`${key} password`, "a password needs user=NAME");
    }
  },
  load: () => import("./sink.ts").then((m) => m.natsFactory),
};

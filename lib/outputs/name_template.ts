// Private: name templates of the network outputs (NATS subjects, Redis stream keys) with the
// placeholders {hook}, {mountpoint} and {client_id}; mountpoint and client_id are read from
// the wire through the slots accessor stringFields (one parse per event).
import { type EnvelopeRanges, parseEnvelope } from "../wire/envelope.ts";
import { ConfigError } from "../errors.ts";
import { HOOKS } from "../schema/hooks.ts";
import { stringFields } from "../codec/slots.ts";

/** The placeholders a template may use. */
export const PLACEHOLDERS = ["hook", "mountpoint", "client_id"] as const;
type Placeholder = typeof PLACEHOLDERS[number];

/** A literal run or a placeholder. */
export type Part = { literal: string } | { field: Placeholder };

const ranges: EnvelopeRanges = { typeUrlStart: 0, typeUrlEnd: 0, valueStart: 0, valueEnd: 0 };

/**
 * A parsed template such as `vmq.events.{hook}`. Values are passed through `escape` before
 * they are inserted.
 */
export class NameTemplate {
  /** The template as written. */
  readonly source: string;
  /** Whether the template uses {mountpoint} or {client_id} (read from each event). */
  readonly readsFields: boolean;
  readonly #parts: readonly Part[];
  readonly #escape: (value: string) => string;
  readonly #byHook: readonly string[] | undefined;
  /** The event fields the parts read, in order, and their values for the event at hand. */
  readonly #fields: readonly string[];
  readonly #values: string[];

  /** Parses `source`; throws ConfigError (for `key`) on an unknown or unbalanced placeholder. */
  constructor(key: string, source: string, escape: (value: string) => string = (v) => v) {
    this.source = source;
    this.#escape = escape;
    const parts: Part[] = [];
    const re = /\{([^{}]*)\}/g;
    let last = 0;
    const literal = (text: string) => {
      if (/[{}]/.test(text)) {
        throw new ConfigError(key, `unbalanced { or } in ${JSON.stringify(source)}`);
      }
      if (text) parts.push({ literal: text });
    };
    for (let m; (m = re.exec(source));) {
      const name = m[1] as Placeholder;
      if (!PLACEHOLDERS.includes(name)) {
        throw new ConfigError(
          key,
          `unknown placeholder {${m[1]}} in ${JSON.stringify(source)}; use ${
            PLACEHOLDERS.map((p) => `{${p}}`).join(", ")
          }`,
        );
      }
      literal(source.slice(last, m.index));
      parts.push({ field: name });
      last = m.index + m[0].length;
    }
    literal(source.slice(last));
    this.#parts = parts;
    this.#fields = parts.flatMap((p) => ("field" in p && p.field !== "hook" ? [p.field] : []));
    this.#values = this.#fields.map(() => "");
    this.readsFields = parts.some((p) => "field" in p && p.field !== "hook");
    // Only {hook}: one precomputed name per hook, no per-event work.
    this.#byHook = this.readsFields
      ? undefined
      : HOOKS.map((_, h) => this.#render(h, new Uint8Array(0)));
  }

  /** The name for an event of hook index `hook` whose `Any` bytes are `frame`. */
  render(hook: number, frame: Uint8Array): string {
    return this.#byHook ? this.#byHook[hook] : this.#render(hook, frame);
  }

  /** The name with every placeholder replaced by `value` as is (for validation and wildcards). */
  fill(value: string): string {
    return this.#parts.map((p) => ("literal" in p ? p.literal : value)).join("");
  }

  /** The parts, for callers that map placeholders themselves (e.g. to subject wildcards). */
  get parts(): readonly Part[] {
    return this.#parts;
  }

  #render(hook: number, frame: Uint8Array): string {
    const names = this.#fields, values = this.#values;
    if (names.length > 0) {
      if (parseEnvelope(frame, ranges) === hook) {
        stringFields(frame, hook, ranges.valueStart, ranges.valueEnd, names, values);
      } else values.fill(""); // the frame does not parse: the output counts it anyway
    }
    let out = "";
    for (let i = 0, k = 0; i < this.#parts.length; i++) {
      const p = this.#parts[i];
      if ("literal" in p) out += p.literal;
      else if (p.field === "hook") out += this.#escape(HOOKS[hook]);
      else out += this.#escape(values[k++]);
    }
    return out;
  }
}

// A strict parser of the Prometheus text exposition format 0.0.4, for the tests.
//
// Why not an npm parser: `parse-prometheus-text-format` (the maintained-looking one, 1.1.1)
// runs under Deno but merges every series of a labelled histogram into one (labels, `_sum` and
// `_count` lost) and accepts non-numeric sample values; prom-client and the OpenTelemetry
// exporter only write the format. Written from the format's specification
// (prometheus.io/docs/instrumenting/exposition_formats), independent of lib/app/metrics.ts.
//
// Rejected: malformed lines, bad names, bad label syntax or escapes, non-float values, a TYPE
// after samples or twice, samples of one family not contiguous, duplicate series, histograms
// without a +Inf bucket, with decreasing cumulative buckets, or a _count differing from +Inf.

/** One sample line. */
export interface Sample {
  /** Full sample name (with `_bucket`, `_sum`, `_count` suffixes). */
  name: string;
  /** Label values by name. */
  labels: Record<string, string>;
  /** The value. */
  value: number;
}

/** A metric family. */
export interface Family {
  /** Family name. */
  name: string;
  /** Declared type (`untyped` when no TYPE line). */
  type: "counter" | "gauge" | "histogram" | "summary" | "untyped";
  /** HELP text, unescaped. */
  help: string;
  /** Its samples in order. */
  samples: Sample[];
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const TYPES = ["counter", "gauge", "histogram", "summary", "untyped"];

/** Parse failure, naming the line. */
export class ExpositionError extends Error {}

function parseValue(s: string, line: number): number {
  if (s === "+Inf" || s === "Inf") return Infinity;
  if (s === "-Inf") return -Infinity;
  if (s === "NaN") return NaN;
  if (!/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(s)) {
    throw new ExpositionError(`line ${line}: bad value ${JSON.stringify(s)}`);
  }
  return Number(s);
}

function unescapeHelp(s: string, line: number): string {
  return s.replace(/\\(.)?/g, (_, c) => {
    if (c === "\\") return "\\";
    if (c === "n") return "\n";
    throw new ExpositionError(`line ${line}: bad escape in HELP`);
  });
}

function parseSample(text: string, line: number): Sample {
  const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)/.exec(text);
  if (!m) throw new ExpositionError(`line ${line}: bad metric name`);
  const name = m[1];
  let i = name.length;
  const labels: Record<string, string> = {};
  if (text[i] === "{") {
    i++;
    for (;;) {
      while (text[i] === " ") i++;
      if (text[i] === "}") {
        i++;
        break;
      }
      const lm = /^[a-zA-Z_][a-zA-Z0-9_]*/.exec(text.slice(i));
      if (!lm) throw new ExpositionError(`line ${line}: bad label name`);
      const label = lm[0];
      i += label.length;
      if (text[i] !== "=" || text[i + 1] !== '"') {
        throw new ExpositionError(`line ${line}: expected ="value" after label ${label}`);
      }
      i += 2;
      let value = "";
      for (;;) {
        const c = text[i++];
        if (c === undefined) throw new ExpositionError(`line ${line}: unterminated label value`);
        if (c === '"') break;
        if (c === "\\") {
          const e = text[i++];
          if (e === "\\") value += "\\";
          else if (e === '"') value += '"';
          else if (e === "n") value += "\n";
          else throw new ExpositionError(`line ${line}: bad escape \\${e} in label value`);
        } else value += c;
      }
      if (label in labels) throw new ExpositionError(`line ${line}: label ${label} twice`);
      labels[label] = value;
      while (text[i] === " ") i++;
      if (text[i] === ",") i++;
      else if (text[i] !== "}") throw new ExpositionError(`line ${line}: expected , or }`);
    }
  }
  if (text[i] !== " ") throw new ExpositionError(`line ${line}: expected a space before the value`);
  const rest = text.slice(i).trim().split(/ +/);
  if (rest.length > 2) throw new ExpositionError(`line ${line}: trailing text`);
  if (rest.length === 2 && !/^-?\d+$/.test(rest[1])) {
    throw new ExpositionError(`line ${line}: bad timestamp`);
  }
  return { name, labels, value: parseValue(rest[0], line) };
}

/** The family a sample name belongs to, given the families declared so far. */
function familyOf(name: string, families: Map<string, Family>): string {
  for (const suffix of ["_bucket", "_sum", "_count"]) {
    if (name.endsWith(suffix)) {
      const base = name.slice(0, -suffix.length);
      const f = families.get(base);
      if (f && (f.type === "histogram" || (f.type === "summary" && suffix !== "_bucket"))) {
        return base;
      }
    }
  }
  return name;
}

/** Parses an exposition; throws {@linkcode ExpositionError} at the first violation. */
export function parseExposition(text: string): Map<string, Family> {
  if (text.length > 0 && !text.endsWith("\n")) throw new ExpositionError("no final newline");
  const families = new Map<string, Family>();
  const closed = new Set<string>();
  let current: string | undefined;
  const family = (name: string, line: number): Family => {
    if (current !== name) {
      if (current !== undefined) closed.add(current);
      if (closed.has(name)) {
        throw new ExpositionError(`line ${line}: family ${name} appears in two places`);
      }
      current = name;
    }
    let f = families.get(name);
    if (!f) families.set(name, f = { name, type: "untyped", help: "", samples: [] });
    return f;
  };
  const seenTypes = new Set<string>(), seenHelp = new Set<string>();
  text.split("\n").forEach((raw, idx) => {
    const line = idx + 1;
    if (raw.trim() === "") return;
    if (raw.startsWith("#")) {
      const m = /^# (HELP|TYPE) (\S+)(?: (.*))?$/.exec(raw);
      if (!m) return; // a plain comment
      const [, kind, name, rest = ""] = m;
      if (!NAME.test(name)) throw new ExpositionError(`line ${line}: bad name ${name}`);
      const f = family(name, line);
      if (kind === "TYPE") {
        if (seenTypes.has(name)) throw new ExpositionError(`line ${line}: second TYPE for ${name}`);
        if (f.samples.length) throw new ExpositionError(`line ${line}: TYPE after samples`);
        if (!TYPES.includes(rest)) throw new ExpositionError(`line ${line}: bad type ${rest}`);
        seenTypes.add(name);
        f.type = rest as Family["type"];
      } else {
        if (seenHelp.has(name)) throw new ExpositionError(`line ${line}: second HELP for ${name}`);
        seenHelp.add(name);
        f.help = unescapeHelp(rest, line);
      }
      return;
    }
    const s = parseSample(raw, line);
    const f = family(familyOf(s.name, families), line);
    const key = s.name + JSON.stringify(Object.entries(s.labels).sort());
    if (f.samples.some((o) => o.name + JSON.stringify(Object.entries(o.labels).sort()) === key)) {
      throw new ExpositionError(`line ${line}: duplicate series ${s.name}`);
    }
    if (f.type === "histogram" && s.name === `${f.name}_bucket` && !("le" in s.labels)) {
      throw new ExpositionError(`line ${line}: bucket without le`);
    }
    f.samples.push(s);
  });
  for (const f of families.values()) if (f.type === "histogram") checkHistogram(f);
  return families;
}

function checkHistogram(f: Family): void {
  const series = new Map<string, { buckets: [number, number][]; sum?: number; count?: number }>();
  for (const s of f.samples) {
    const { le, ...rest } = s.labels;
    const key = JSON.stringify(Object.entries(rest).sort());
    let h = series.get(key);
    if (!h) series.set(key, h = { buckets: [] });
    if (s.name === `${f.name}_bucket`) h.buckets.push([parseValue(le, 0), s.value]);
    else if (s.name === `${f.name}_sum`) h.sum = s.value;
    else if (s.name === `${f.name}_count`) h.count = s.value;
    else throw new ExpositionError(`histogram ${f.name}: unexpected sample ${s.name}`);
  }
  for (const [key, h] of series) {
    const last = h.buckets.at(-1);
    if (!last || last[0] !== Infinity) throw new ExpositionError(`${f.name}${key}: no +Inf bucket`);
    for (let i = 1; i < h.buckets.length; i++) {
      if (h.buckets[i][0] <= h.buckets[i - 1][0] || h.buckets[i][1] < h.buckets[i - 1][1]) {
        throw new ExpositionError(`${f.name}${key}: buckets not ascending and cumulative`);
      }
    }
    if (h.sum === undefined || h.count === undefined) {
      throw new ExpositionError(`${f.name}${key}: _sum or _count missing`);
    }
    if (h.count !== last[1]) throw new ExpositionError(`${f.name}${key}: _count != +Inf bucket`);
  }
}

/** The value of the sample `name` with exactly `labels` (undefined when absent). */
export function valueOf(
  families: Map<string, Family>,
  name: string,
  labels: Record<string, string> = {},
): number | undefined {
  const want = JSON.stringify(Object.entries(labels).sort());
  for (const f of families.values()) {
    for (const s of f.samples) {
      if (s.name === name && JSON.stringify(Object.entries(s.labels).sort()) === want) {
        return s.value;
      }
    }
  }
  return undefined;
}

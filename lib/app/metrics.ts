/**
 * A small metrics registry with Prometheus text exposition (format 0.0.4): counters, gauges
 * and histograms with fixed label names. Hot-path updates are a Map lookup and an add.
 *
 * @module
 */

/** Label names of a metric. */
export type Labels = readonly string[];

/** A monotonically increasing counter per label combination. */
export class Counter {
  /** Values by joined label values. */
  readonly values: Map<string, number> = new Map();
  /** Creates a counter; use {@linkcode Metrics.counter}. */
  constructor(readonly name: string, readonly help: string, readonly labelNames: Labels) {}
  /** Adds `n` (default 1) for `labels` (values in the order of `labelNames`). */
  inc(labels: readonly string[] = [], n = 1): void {
    const k = labels.join("\u0000");
    this.values.set(k, (this.values.get(k) ?? 0) + n);
  }
  /** The current value for `labels`. */
  get(labels: readonly string[] = []): number {
    return this.values.get(labels.join("\u0000")) ?? 0;
  }
}

/** A value that goes up and down, set directly or read from a callback at scrape time. */
export class Gauge {
  /** Values by joined label values. */
  readonly values: Map<string, number> = new Map();
  /** Creates a gauge; use {@linkcode Metrics.gauge}. */
  constructor(readonly name: string, readonly help: string, readonly labelNames: Labels) {}
  /** Sets the value for `labels`. */
  set(labels: readonly string[], v: number): void {
    this.values.set(labels.join("\u0000"), v);
  }
  /** Adds `n` (may be negative) for `labels`. */
  add(labels: readonly string[], n: number): void {
    const k = labels.join("\u0000");
    this.values.set(k, (this.values.get(k) ?? 0) + n);
  }
  /** The current value for `labels`. */
  get(labels: readonly string[] = []): number {
    return this.values.get(labels.join("\u0000")) ?? 0;
  }
}

/** A histogram with fixed buckets (upper bounds, ascending). */
export class Histogram {
  /** Per label key: bucket counts (non-cumulative), sum and count. */
  readonly series: Map<string, { buckets: Float64Array; sum: number; count: number }> = new Map();
  /** Creates a histogram; use {@linkcode Metrics.histogram}. */
  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelNames: Labels,
    readonly bounds: readonly number[],
  ) {}
  /** Creates the series of `labels` at zero (so it is exported before the first observation). */
  init(labels: readonly string[]): void {
    const k = labels.join("\u0000");
    if (!this.series.has(k)) {
      this.series.set(k, { buckets: new Float64Array(this.bounds.length + 1), sum: 0, count: 0 });
    }
  }
  /** Records `v` for `labels`, `n` times (default once). */
  observe(labels: readonly string[], v: number, n = 1): void {
    const k = labels.join("\u0000");
    let s = this.series.get(k);
    if (!s) {
      s = { buckets: new Float64Array(this.bounds.length + 1), sum: 0, count: 0 };
      this.series.set(k, s);
    }
    let i = 0;
    while (i < this.bounds.length && v > this.bounds[i]) i++;
    s.buckets[i] += n;
    s.sum += v * n;
    s.count += n;
  }
}

type Metric = Counter | Gauge | Histogram;

/**
 * The registry. One per process; names follow Prometheus conventions (`_total`, units).
 *
 * @example
 * ```ts
 * import { Metrics } from "../mod.ts";
 * const m = new Metrics();
 * const c = m.counter("demo_events_total", "Events.", ["hook"]);
 * c.inc(["on_publish"]);
 * console.log(m.render());
 * ```
 */
export class Metrics {
  readonly #metrics = new Map<string, Metric>();
  readonly #collectors: (() => void)[] = [];

  /** Registers `fn` to run before each render, to copy hot-path tallies into metrics. */
  onCollect(fn: () => void): void {
    this.#collectors.push(fn);
  }

  /** Gets or creates a counter. */
  counter(name: string, help: string, labelNames: Labels = []): Counter {
    return this.#get(name, () => new Counter(name, help, labelNames)) as Counter;
  }
  /** Gets or creates a gauge. */
  gauge(name: string, help: string, labelNames: Labels = []): Gauge {
    return this.#get(name, () => new Gauge(name, help, labelNames)) as Gauge;
  }
  /** Gets or creates a histogram. */
  histogram(name: string, help: string, labelNames: Labels, bounds: readonly number[]): Histogram {
    return this.#get(name, () => new Histogram(name, help, labelNames, bounds)) as Histogram;
  }
  #get(name: string, make: () => Metric): Metric {
    let m = this.#metrics.get(name);
    if (!m) this.#metrics.set(name, m = make());
    return m;
  }

  /** Renders every metric in the Prometheus text format. */
  render(): string {
    for (const c of this.#collectors) c();
    const lines: string[] = [];
    for (const m of this.#metrics.values()) {
      const type = m instanceof Counter ? "counter" : m instanceof Gauge ? "gauge" : "histogram";
      lines.push(`# HELP ${m.name} ${m.help.replace(/\\/g, "\\\\").replace(/\n/g, "\\n")}`);
      lines.push(`# TYPE ${m.name} ${type}`);
      if (m instanceof Histogram) {
        for (const [k, s] of m.series) {
          let cum = 0;
          m.bounds.forEach((b, i) => {
            cum += s.buckets[i];
            lines.push(`${m.name}_bucket${labelText(m.labelNames, k, ["le", fmt(b)])} ${cum}`);
          });
          lines.push(`${m.name}_bucket${labelText(m.labelNames, k, ["le", "+Inf"])} ${s.count}`);
          lines.push(`${m.name}_sum${labelText(m.labelNames, k)} ${fmt(s.sum)}`);
          lines.push(`${m.name}_count${labelText(m.labelNames, k)} ${s.count}`);
        }
      } else {
        for (const [k, v] of m.values) {
          lines.push(`${m.name}${labelText(m.labelNames, k)} ${fmt(v)}`);
        }
      }
    }
    return lines.join("\n") + "\n";
  }
}

function fmt(v: number): string {
  return Number.isFinite(v) ? String(v) : v > 0 ? "+Inf" : v < 0 ? "-Inf" : "NaN";
}

function labelText(names: Labels, key: string, extra?: [string, string]): string {
  const values = names.length ? key.split("\u0000") : [];
  const pairs = names.map((n, i) => `${n}="${escapeLabel(values[i] ?? "")}"`);
  if (extra) pairs.push(`${extra[0]}="${extra[1]}"`);
  return pairs.length ? `{${pairs.join(",")}}` : "";
}

function escapeLabel(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');
}

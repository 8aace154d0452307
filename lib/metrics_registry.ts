/**
 * What the data path needs of a metrics registry: the server, the router, the journal and the
 * handler deliveries register their metrics through these interfaces, so no layer below app/
 * imports app/. The application's registry (app/metrics.ts `Metrics`) has this shape; the
 * type check where the application passes it in is the proof.
 *
 * @module
 */

/** A monotonically increasing counter per label combination. */
export interface CounterMetric {
  /** Values by joined label values (`\u0000` between them). */
  readonly values: Map<string, number>;
  /** Adds `n` (default 1) for `labels` (values in the order of the label names). */
  inc(labels?: readonly string[], n?: number): void;
  /** The current value for `labels`. */
  get(labels?: readonly string[]): number;
}

/** A value that goes up and down, set directly or copied in at collection time. */
export interface GaugeMetric {
  /** Values by joined label values (`\u0000` between them). */
  readonly values: Map<string, number>;
  /** Sets the value for `labels`. */
  set(labels: readonly string[], v: number): void;
  /** Adds `n` (may be negative) for `labels`. */
  add(labels: readonly string[], n: number): void;
  /** The current value for `labels`. */
  get(labels?: readonly string[]): number;
}

/** A histogram with fixed buckets. */
export interface HistogramMetric {
  /** Creates the series of `labels` at zero (exported before the first observation). */
  init(labels: readonly string[]): void;
  /** Records `v` for `labels`, `n` times (default once). */
  observe(labels: readonly string[], v: number, n?: number): void;
}

/** A registry of named metrics (get or create by name), with collection callbacks. */
export interface MetricsRegistry {
  /** Registers `fn` to run before each scrape, to copy hot-path tallies into metrics. */
  onCollect(fn: () => void): void;
  /** Gets or creates a counter. */
  counter(name: string, help: string, labelNames?: readonly string[]): CounterMetric;
  /** Gets or creates a gauge. */
  gauge(name: string, help: string, labelNames?: readonly string[]): GaugeMetric;
  /** Gets or creates a histogram with the bucket upper bounds `bounds` (ascending). */
  histogram(
    name: string,
    help: string,
    labelNames: readonly string[],
    bounds: readonly number[],
  ): HistogramMetric;
}

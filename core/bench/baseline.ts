/**
 * Comparing sweep results with a saved baseline (pure), as pytest-benchmark's
 * `--benchmark-compare-fail` does: configurations are matched by id, and for each metric the
 * change is `delta % = 100 * (current - baseline) / baseline`. A metric regresses when it moves in
 * its bad direction by more than the threshold (strictly): throughput down, latency or memory up.
 * Configurations present on one side only are listed, never failures.
 *
 * Only gated metrics fail a comparison. By default these are the ones a sweep measures stably:
 * throughput (over every measured step), mean latency, and memory. Percentiles of a few dozen
 * steps (a text p99 in an 8:1 run rests on a handful of samples) move by 20-50% between identical
 * runs on a shared machine, so they are printed but gate only when asked for. A mean latency that
 * moves beyond the threshold but within the two runs' combined 95% margin of error is noise,
 * not a regression.
 */
import type { ConfigResult, SweepResults } from "./results.ts"

export type Direction = "higher-is-better" | "lower-is-better"

/** Default of `--fail-over`. */
export const DEFAULT_THRESHOLD_PCT = 15

export interface MetricDef {
  /** Dotted name as printed: `throughput.stepsPerSec`, `latency.visual.p99`, `memory.swing.max`. */
  readonly name: string
  readonly direction: Direction
  readonly get: (c: ConfigResult) => number | undefined
  /** Whether a regression of this metric fails the comparison unless the caller picks the gated set. */
  readonly gated: boolean
  /** The measurement's 95% margin of error, in the metric's unit, when known. */
  readonly noise?: ((c: ConfigResult) => number | undefined) | undefined
}

/** The metrics compared, in print order. */
export const METRICS: ReadonlyArray<MetricDef> = [
  {
    name: "throughput.stepsPerSec",
    direction: "higher-is-better",
    gated: true,
    get: (c) => c.throughput.stepsPerSec,
  },
  {
    name: "throughput.samplesPerSec",
    direction: "higher-is-better",
    gated: true,
    get: (c) => c.throughput.samplesPerSec,
  },
  {
    name: "latency.visual.mean",
    direction: "lower-is-better",
    gated: true,
    get: (c) => c.latency.visual?.mean,
    noise: (c) => c.latency.visual?.moe,
  },
  {
    name: "latency.visual.p50",
    direction: "lower-is-better",
    gated: false,
    get: (c) => c.latency.visual?.p50,
  },
  {
    name: "latency.visual.p99",
    direction: "lower-is-better",
    gated: false,
    get: (c) => c.latency.visual?.p99,
  },
  {
    name: "latency.text.mean",
    direction: "lower-is-better",
    gated: true,
    get: (c) => c.latency.text?.mean,
    noise: (c) => c.latency.text?.moe,
  },
  { name: "latency.text.p50", direction: "lower-is-better", gated: false, get: (c) => c.latency.text?.p50 },
  { name: "latency.text.p99", direction: "lower-is-better", gated: false, get: (c) => c.latency.text?.p99 },
  { name: "memory.peak", direction: "lower-is-better", gated: true, get: (c) => c.memory?.peak },
  {
    name: "memory.swing.max",
    direction: "lower-is-better",
    gated: true,
    get: (c) => c.memory?.swing?.max ?? undefined,
  },
]

export const METRIC_NAMES: ReadonlyArray<string> = METRICS.map((m) => m.name)

/**
 * `changed`: beyond the threshold in the bad direction on a metric that does not gate;
 * `noise`: beyond the threshold but within the combined margin of error.
 */
export type DeltaStatus = "ok" | "improved" | "regressed" | "changed" | "noise" | "missing"

export interface MetricDelta {
  readonly config: string
  readonly metric: string
  readonly direction: Direction
  readonly baseline: number | undefined
  readonly current: number | undefined
  /**
   * 100 * (current - baseline) / baseline; 0 when both are 0, ±Infinity when only the baseline is 0;
   * undefined when either side lacks the metric.
   */
  readonly deltaPct: number | undefined
  readonly status: DeltaStatus
}

export interface Comparison {
  readonly thresholdPct: number
  /** The metrics whose regressions fail the comparison. */
  readonly gated: ReadonlyArray<string>
  readonly deltas: ReadonlyArray<MetricDelta>
  readonly regressions: ReadonlyArray<MetricDelta>
  /** Ids in the baseline but not in the current results, and the other way round. */
  readonly missingInCurrent: ReadonlyArray<string>
  readonly missingInBaseline: ReadonlyArray<string>
  /** Set when the two results come from different machines (the numbers may not be comparable). */
  readonly machineNote: string | undefined
}

export const deltaPct = (baseline: number, current: number): number =>
  baseline === 0
    ? current === 0
      ? 0
      : current > 0
        ? Number.POSITIVE_INFINITY
        : Number.NEGATIVE_INFINITY
    : (100 * (current - baseline)) / Math.abs(baseline)

/** Status of one metric's change against a threshold in percent (> threshold in the bad direction). */
export const classify = (direction: Direction, delta: number, thresholdPct: number): DeltaStatus => {
  const worse = direction === "higher-is-better" ? -delta : delta
  if (worse > thresholdPct) return "regressed"
  if (-worse > thresholdPct) return "improved"
  return "ok"
}

const finite = (x: number | undefined): number | undefined =>
  x !== undefined && Number.isFinite(x) ? x : undefined

/** Compares `current` with `baseline`; `thresholdPct` defaults to 10. */
export const compareResults = (
  baseline: SweepResults,
  current: SweepResults,
  options: { readonly thresholdPct?: number; readonly gate?: ReadonlyArray<string> } = {},
): Comparison => {
  const thresholdPct = options.thresholdPct ?? DEFAULT_THRESHOLD_PCT
  if (!(thresholdPct >= 0)) throw new RangeError(`thresholdPct must be >= 0, got ${thresholdPct}`)
  const gated = new Set(options.gate ?? METRICS.filter((m) => m.gated).map((m) => m.name))
  for (const g of gated) if (!METRIC_NAMES.includes(g)) throw new RangeError(`unknown metric "${g}"`)
  const base = new Map(baseline.configs.map((c) => [c.id, c]))
  const curIds = new Set(current.configs.map((c) => c.id))
  const deltas: MetricDelta[] = []
  for (const c of current.configs) {
    const b = base.get(c.id)
    if (!b) continue
    for (const m of METRICS) {
      const bv = finite(m.get(b))
      const cv = finite(m.get(c))
      if (bv === undefined || cv === undefined) {
        // A metric only one side has (a modality absent): say so, unless neither has it.
        if (bv !== undefined || cv !== undefined)
          deltas.push({
            config: c.id,
            metric: m.name,
            direction: m.direction,
            baseline: bv,
            current: cv,
            deltaPct: undefined,
            status: "missing",
          })
        continue
      }
      const d = deltaPct(bv, cv)
      let status = classify(m.direction, d, thresholdPct)
      if (status === "regressed") {
        const nb = m.noise?.(b)
        const nc = m.noise?.(c)
        if (!gated.has(m.name)) status = "changed"
        else if (nb !== undefined && nc !== undefined && Math.abs(cv - bv) <= Math.hypot(nb, nc))
          status = "noise"
      }
      deltas.push({
        config: c.id,
        metric: m.name,
        direction: m.direction,
        baseline: bv,
        current: cv,
        deltaPct: d,
        status,
      })
    }
  }
  const bm = baseline.machine
  const cm = current.machine
  const machineNote =
    bm.cpu !== cm.cpu || bm.cores !== cm.cores || (bm.gpu ?? "") !== (cm.gpu ?? "")
      ? `baseline machine (${bm.cpu}, ${bm.cores} cores${bm.gpu ? `, ${bm.gpu}` : ""}) differs from this one (${cm.cpu}, ${cm.cores} cores${cm.gpu ? `, ${cm.gpu}` : ""})`
      : undefined
  return {
    thresholdPct,
    gated: METRIC_NAMES.filter((n) => gated.has(n)),
    deltas,
    regressions: deltas.filter((d) => d.status === "regressed"),
    missingInCurrent: baseline.configs.filter((c) => !curIds.has(c.id)).map((c) => c.id),
    missingInBaseline: current.configs.filter((c) => !base.has(c.id)).map((c) => c.id),
    machineNote,
  }
}

/** `-52.3%`, `+4.1%`, `+∞%`. */
export const formatDelta = (d: number | undefined): string =>
  d === undefined
    ? "—"
    : !Number.isFinite(d)
      ? `${d > 0 ? "+" : "-"}∞%`
      : `${d > 0 ? "+" : d < 0 ? "" : "±"}${d.toFixed(1)}%`

/** One line naming every regression, for the exit-1 message. */
export const regressionSummary = (c: Comparison): string =>
  `${c.regressions.length} metric(s) regressed beyond ${c.thresholdPct}%: ${c.regressions
    .map((r) => `${r.config} ${r.metric} ${formatDelta(r.deltaPct)}`)
    .join(", ")}`

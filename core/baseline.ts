/**
 * Comparing sweep results with a saved baseline (pure), as pytest-benchmark's
 * `--benchmark-compare-fail` does: configurations are matched by id, and for each metric the
 * change is `delta % = 100 * (current - baseline) / baseline`. A metric regresses when it moves in
 * its bad direction by more than the threshold (strictly): throughput down, latency or memory up.
 * Configurations present on one side only are listed, never failures.
 */
import type { ConfigResult, SweepResults } from "./report/results.ts"

export type Direction = "higher-is-better" | "lower-is-better"

export interface MetricDef {
  /** Dotted name as printed: `throughput.stepsPerSec`, `latency.visual.p99`, `memory.swing.max`. */
  readonly name: string
  readonly direction: Direction
  readonly get: (c: ConfigResult) => number | undefined
}

/** The metrics compared, in print order. */
export const METRICS: ReadonlyArray<MetricDef> = [
  { name: "throughput.stepsPerSec", direction: "higher-is-better", get: (c) => c.throughput.stepsPerSec },
  { name: "throughput.samplesPerSec", direction: "higher-is-better", get: (c) => c.throughput.samplesPerSec },
  { name: "latency.visual.p50", direction: "lower-is-better", get: (c) => c.latency.visual?.p50 },
  { name: "latency.visual.p99", direction: "lower-is-better", get: (c) => c.latency.visual?.p99 },
  { name: "latency.text.p50", direction: "lower-is-better", get: (c) => c.latency.text?.p50 },
  { name: "latency.text.p99", direction: "lower-is-better", get: (c) => c.latency.text?.p99 },
  { name: "memory.peak", direction: "lower-is-better", get: (c) => c.memory?.peak },
  { name: "memory.swing.max", direction: "lower-is-better", get: (c) => c.memory?.swing?.max ?? undefined },
]

export type DeltaStatus = "ok" | "improved" | "regressed" | "missing"

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
  options: { readonly thresholdPct?: number } = {},
): Comparison => {
  const thresholdPct = options.thresholdPct ?? 10
  if (!(thresholdPct >= 0)) throw new RangeError(`thresholdPct must be >= 0, got ${thresholdPct}`)
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
      deltas.push({
        config: c.id,
        metric: m.name,
        direction: m.direction,
        baseline: bv,
        current: cv,
        deltaPct: d,
        status: classify(m.direction, d, thresholdPct),
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

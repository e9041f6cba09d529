/**
 * Comparing sweep results with a saved baseline (pure), as pytest-benchmark's
 * `--benchmark-compare-fail` does: configurations are matched by id, and for each metric the
 * change is `delta % = 100 * (current - baseline) / baseline`. A metric regresses when it moves in
 * its bad direction by more than the threshold (strictly): throughput down, latency or memory up.
 * Configurations present on one side only are listed, never failures. A configuration that aborted
 * (its run stopped early, `ConfigResult.aborted`) has no metrics to compare: it is listed as
 * aborted on its side, and one that completed in the baseline but aborts now fails the
 * comparison (an out-of-memory after a change is a regression); aborted on both sides does not.
 *
 * Only gated metrics fail a comparison. By default these are the ones a sweep measures stably:
 * throughput (over every measured step), mean latency, and memory. Percentiles of a few dozen
 * steps (a text p99 in an 8:1 run rests on a handful of samples) move by 20-50% between identical
 * runs on a shared machine, so they are printed but gate only when asked for. A mean latency that
 * moves beyond the threshold but within the two runs' combined 95% margin of error is noise,
 * not a regression.
 */
import { formatBytes, formatMs, formatNumber } from "../common/index.ts"
import { figureLabel } from "./memory-figure.ts"
import type { ConfigResult, SweepResults } from "./results.ts"

export type Direction = "higher-is-better" | "lower-is-better"

/** Default of `--fail-over`. */
export const DEFAULT_THRESHOLD_PCT = 15

export interface MetricDef {
  /** Dotted name as printed: `throughput.stepsPerSec`, `latency.visual.p99`, `memory.swing.max`. */
  readonly name: string
  /** The value with its unit, for people: `90.6 samples/s`, `45.0 ms`, `16.6 GiB`. */
  readonly format: (x: number) => string
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
    format: (x) => `${formatNumber(x)} steps/s`,
    direction: "higher-is-better",
    gated: true,
    get: (c) => c.throughput.stepsPerSec,
  },
  {
    name: "throughput.samplesPerSec",
    format: (x) => `${formatNumber(x)} samples/s`,
    direction: "higher-is-better",
    gated: true,
    get: (c) => c.throughput.samplesPerSec,
  },
  {
    name: "latency.visual.mean",
    format: formatMs,
    direction: "lower-is-better",
    gated: true,
    get: (c) => c.latency.visual?.mean,
    noise: (c) => c.latency.visual?.moe,
  },
  {
    name: "latency.visual.p50",
    format: formatMs,
    direction: "lower-is-better",
    gated: false,
    get: (c) => c.latency.visual?.p50,
  },
  {
    name: "latency.visual.p99",
    format: formatMs,
    direction: "lower-is-better",
    gated: false,
    get: (c) => c.latency.visual?.p99,
  },
  {
    name: "latency.text.mean",
    format: formatMs,
    direction: "lower-is-better",
    gated: true,
    get: (c) => c.latency.text?.mean,
    noise: (c) => c.latency.text?.moe,
  },
  {
    name: "latency.text.p50",
    format: formatMs,
    direction: "lower-is-better",
    gated: false,
    get: (c) => c.latency.text?.p50,
  },
  {
    name: "latency.text.p99",
    format: formatMs,
    direction: "lower-is-better",
    gated: false,
    get: (c) => c.latency.text?.p99,
  },
  {
    name: "memory.peak",
    format: formatBytes,
    direction: "lower-is-better",
    gated: true,
    get: (c) => c.memory?.peak,
  },
  {
    name: "memory.swing.max",
    format: formatBytes,
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

/** A configuration that aborted on one side or both: the reasons, from its `RunAborted`. */
export interface AbortedConfig {
  readonly config: string
  readonly baseline: string | undefined
  readonly current: string | undefined
}

export interface Comparison {
  readonly thresholdPct: number
  /** The metrics whose regressions fail the comparison. */
  readonly gated: ReadonlyArray<string>
  readonly deltas: ReadonlyArray<MetricDelta>
  readonly regressions: ReadonlyArray<MetricDelta>
  /** Configurations in both results that aborted on either side (no metric of theirs is compared). */
  readonly aborted: ReadonlyArray<AbortedConfig>
  /** Configurations that completed in the baseline and abort now: failures like regressions. */
  readonly newlyAborted: ReadonlyArray<AbortedConfig>
  /** Whether the comparison fails: a gated regression or a newly aborted configuration. */
  readonly failed: boolean
  /** Ids in the baseline but not in the current results, and the other way round. */
  readonly missingInCurrent: ReadonlyArray<string>
  readonly missingInBaseline: ReadonlyArray<string>
  /** Set when the two results come from different machines (the numbers may not be comparable). */
  readonly machineNote: string | undefined
  /**
   * Configurations whose memory figures differ (an in-step peak against allocated bytes, say):
   * their memory metrics measure different things, so they are not compared; one sentence each.
   */
  readonly figureNotes: ReadonlyArray<string>
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
  const aborted: AbortedConfig[] = []
  const figureNotes: string[] = []
  for (const c of current.configs) {
    const b = base.get(c.id)
    if (!b) continue
    if (b.aborted !== undefined || c.aborted !== undefined) {
      aborted.push({ config: c.id, baseline: b.aborted, current: c.aborted })
      continue
    }
    const bf = b.memoryFigure
    const cf = c.memoryFigure
    const otherFigure =
      bf !== undefined && cf !== undefined && (bf.source !== cf.source || bf.origin !== cf.origin)
    if (otherFigure)
      figureNotes.push(
        `${c.id}: memory is ${figureLabel(cf, c.steps)} now but ${figureLabel(bf, b.steps)} in the baseline; its memory metrics are not compared`,
      )
    for (const m of METRICS) {
      if (otherFigure && m.name.startsWith("memory.")) continue
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
  const regressions = deltas.filter((d) => d.status === "regressed")
  const newlyAborted = aborted.filter((a) => a.baseline === undefined && a.current !== undefined)
  return {
    thresholdPct,
    gated: METRIC_NAMES.filter((n) => gated.has(n)),
    deltas,
    regressions,
    aborted,
    newlyAborted,
    failed: regressions.length > 0 || newlyAborted.length > 0,
    missingInCurrent: baseline.configs.filter((c) => !curIds.has(c.id)).map((c) => c.id),
    missingInBaseline: current.configs.filter((c) => !base.has(c.id)).map((c) => c.id),
    machineNote,
    figureNotes,
  }
}

/** `-52.3%`, `+4.1%`, `+∞%`. */
export const formatDelta = (d: number | undefined): string =>
  d === undefined
    ? "—"
    : !Number.isFinite(d)
      ? `${d > 0 ? "+" : "-"}∞%`
      : `${d > 0 ? "+" : d < 0 ? "" : "±"}${d.toFixed(1)}%`

/** The first few items, then how many more: a line stays readable when a whole sweep regressed. */
const listed = (items: ReadonlyArray<string>, max = 6): string =>
  items.length <= max
    ? items.join(", ")
    : `${items.slice(0, max).join(", ")} and ${items.length - max} more (see the table)`

/** One line naming the regressions and newly aborted configurations (the first few), for the exit-1 message. */
export const regressionSummary = (c: Comparison): string =>
  [
    ...(c.regressions.length > 0
      ? [
          `${c.regressions.length} metric(s) regressed beyond ${c.thresholdPct}%: ${listed(
            c.regressions.map((r) => `${r.config} ${r.metric} ${formatDelta(r.deltaPct)}`),
          )}`,
        ]
      : []),
    ...(c.newlyAborted.length > 0
      ? [
          `${c.newlyAborted.length} configuration(s) completed in the baseline but aborted now: ${listed(
            c.newlyAborted.map((a) => `${a.config} (${a.current})`),
          )}`,
        ]
      : []),
  ].join("; ")

const metricDef = new Map(METRICS.map((m) => [m.name, m]))

const STATUS_TEXT: Record<DeltaStatus, string> = {
  ok: "ok",
  improved: "improved",
  regressed: "REGRESSED",
  changed: "changed (not gated)",
  noise: "within noise",
  missing: "one side only",
}

/** The comparison's table: one row per compared metric, then one per aborted configuration. */
export const comparisonRows = (c: Comparison): ReadonlyArray<ReadonlyArray<string>> => {
  const fmt = (d: MetricDelta, x: number | undefined) =>
    x === undefined ? "—" : (metricDef.get(d.metric)?.format ?? formatNumber)(x)
  const side = (reason: string | undefined) => (reason === undefined ? "completed" : "aborted")
  return [
    ...c.deltas.map((d) => [
      d.config,
      d.metric,
      fmt(d, d.baseline),
      fmt(d, d.current),
      formatDelta(d.deltaPct),
      STATUS_TEXT[d.status],
    ]),
    ...c.aborted.map((a) => [
      a.config,
      "(all metrics)",
      side(a.baseline),
      side(a.current),
      "—",
      a.baseline !== undefined && a.current !== undefined
        ? "aborted on both sides"
        : a.current !== undefined
          ? "REGRESSED (aborts now)"
          : "completes now (aborted in the baseline)",
    ]),
  ]
}

export const COMPARISON_HEADERS = ["config", "metric", "baseline", "current", "delta", "status"] as const

/**
 * The verdict in one line: `all 36 gated metrics within 15% (6 configs; 2 improved)` when all is
 * well, else how many regressed and how many configurations abort now.
 */
export const comparisonVerdict = (c: Comparison): string => {
  const gatedDeltas = c.deltas.filter((d) => c.gated.includes(d.metric) && d.deltaPct !== undefined)
  const configs = new Set(c.deltas.map((d) => d.config)).size
  const improved = gatedDeltas.filter((d) => d.status === "improved").length
  const noise = gatedDeltas.filter((d) => d.status === "noise").length
  const extra = [
    `${configs} config${configs === 1 ? "" : "s"} compared`,
    ...(improved > 0 ? [`${improved} improved`] : []),
    ...(noise > 0 ? [`${noise} beyond ${c.thresholdPct}% but within the measurements' noise`] : []),
    ...(c.aborted.length > c.newlyAborted.length
      ? [`${c.aborted.length - c.newlyAborted.length} aborted config(s) not compared`]
      : []),
  ].join("; ")
  if (!c.failed && gatedDeltas.length === 0)
    return `no gated metric to compare: no configuration completed on both sides (${extra})`
  if (!c.failed) return `all ${gatedDeltas.length} gated metrics within ${c.thresholdPct}% (${extra})`
  return `${regressionSummary(c)} (${c.regressions.length} of ${gatedDeltas.length} gated metrics; ${extra})`
}

/** The aborted configurations' reasons, one line each: `aborted in the baseline: ID: REASON`. */
export const abortedLines = (c: Comparison): ReadonlyArray<string> =>
  c.aborted.flatMap((a) => [
    ...(a.baseline !== undefined ? [`aborted in the baseline: ${a.config}: ${a.baseline}`] : []),
    ...(a.current !== undefined ? [`aborted now: ${a.config}: ${a.current}`] : []),
  ])

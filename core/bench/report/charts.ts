/**
 * The report's charts: vega-lite specs built from the results, compiled to vega and rendered to SVG
 * in Node by vega's headless renderer (`view.toSVG()`; no canvas needed), so the HTML report needs
 * no script to show them.
 *
 * Every chart is a set of small multiples (a panel per target, per target and batch, or per
 * ratio) with labelled, shared axes where the numbers are comparable; an axis that does not start
 * at 0 says so in its title or note. Legends sit above the panels and name every colour. Marks
 * carry a `description` (the SVG's `aria-label`), so a reader with a screen reader, and the tests,
 * can tell which configuration a mark belongs to.
 */
import type { TopLevelSpec } from "vega-lite"
import type { Statistics } from "../../common/index.ts"
import { figureTag } from "../memory-figure.ts"
import type { ConfigResult, SweepResults } from "../results.ts"
import { abortShort, isSimulated, ratioLabel, targetKey, targetText, visualShare } from "../target.ts"

export type ChartId = "throughput" | "latency" | "p99" | "memory" | "loss"

export interface ChartSpec {
  /** Stable id: the HTML figure's `data-chart`. */
  readonly id: ChartId
  readonly title: string
  /** A sentence under the title (what is drawn, what is marked, what is left out). */
  readonly note?: string | undefined
  readonly spec: TopLevelSpec
}

/** About the width the report's page gives a chart (the page is at most 1120 px wide). */
const CONTENT_WIDTH = 1040

/** Same colours and shapes for a modality in every chart. */
const MODALITY_COLORS = ["#4c78a8", "#e45756"] as const
const modalityColor = {
  field: "modality",
  type: "nominal",
  title: "Modality",
  scale: { domain: ["visual", "text"], range: [...MODALITY_COLORS] },
} as const
const modalityShape = {
  field: "modality",
  type: "nominal",
  title: "Modality",
  scale: { domain: ["visual", "text"], range: ["circle", "triangle-up"] },
} as const
/** Distinct colours for batch sizes or targets; 10 before any repeats (tableau10). */
const SERIES_SCHEME = "tableau10"
const ABORT_COLOR = "#b00020"

const baseConfig = {
  font: "sans-serif",
  background: "white",
  axis: { labelFontSize: 11, titleFontSize: 12 },
  header: { labelFontSize: 12, titleFontSize: 12 },
  legend: {
    labelFontSize: 12,
    titleFontSize: 12,
    labelLimit: 0,
    titleLimit: 800,
    orient: "top",
    direction: "horizontal",
    columns: 4,
    columnPadding: 16,
  },
  title: { anchor: "start", fontSize: 12, fontWeight: "normal", subtitleFontSize: 11 },
} as const

// ---------------------------------------------------------------------------------------------
// What the sweep ran on, in words
// ---------------------------------------------------------------------------------------------

/** Where the sweep's time and memory came from: the sim's cost model, a real step, or both. */
export type SweepClock = "measured" | "simulated" | "mixed"

export const sweepClock = (results: SweepResults): SweepClock => {
  const sim = results.configs.filter(isSimulated).length
  return sim === 0 ? "measured" : sim === results.configs.length ? "simulated" : "mixed"
}

/** `measured`, `simulated`, or `simulated for sim targets, measured for the others`. */
export const clockWords = (clock: SweepClock): string =>
  clock === "mixed" ? "simulated for sim targets, measured for the others" : clock

/** How a chart groups the configurations: by target, by batch, and the two together. */
interface Grouping {
  /** The target in words (adapter, backend or hardware, model or preset, the worker's host when several ran it). */
  readonly target: (c: ConfigResult) => string
  /** `b16/8` */
  readonly batch: (c: ConfigResult) => string
  /** Target and batch: a line across ratios. */
  readonly series: (c: ConfigResult) => string
  readonly targets: ReadonlyArray<string>
  readonly batches: ReadonlyArray<string>
  readonly seriesNames: ReadonlyArray<string>
}

const batchText = (c: ConfigResult): string => `b${c.batch.visual}/${c.batch.text}`

/**
 * The line a configuration belongs to across ratios: its target (adapter, backend or hardware,
 * model or preset) and batch size, in words, plus the worker's host where the same target and
 * batch ran on several machines (a report across machines). Two targets whose words coincide get
 * their key too, so their points never join.
 */
export const grouping = (results: SweepResults): Grouping => {
  const targetBatch = (c: ConfigResult) => JSON.stringify([targetKey(c), c.batch.visual, c.batch.text])
  // Across machines: a target and batch that ran on several hosts is a line per host.
  const hosts = new Map<string, Set<string>>()
  for (const c of results.configs)
    if (c.worker) hosts.set(targetBatch(c), (hosts.get(targetBatch(c)) ?? new Set()).add(c.worker.host))
  const host = (c: ConfigResult) =>
    c.worker && (hosts.get(targetBatch(c))?.size ?? 1) > 1 ? c.worker.host : undefined
  const keyOf = (c: ConfigResult) => JSON.stringify([targetKey(c), host(c) ?? ""])
  const words = (c: ConfigResult) => {
    const h = host(c)
    return h === undefined ? targetText(c) : `${targetText(c)} on ${h}`
  }
  const textKeys = new Map<string, Set<string>>()
  for (const c of results.configs) {
    const t = words(c)
    textKeys.set(t, (textKeys.get(t) ?? new Set()).add(keyOf(c)))
  }
  const target = (c: ConfigResult) => {
    const t = words(c)
    return (textKeys.get(t)?.size ?? 1) > 1 ? `${t} (${targetKey(c)})` : t
  }
  const series = (c: ConfigResult) => `${target(c)} ${batchText(c)}`
  const once = (f: (c: ConfigResult) => string) => [...new Set(results.configs.map(f))]
  const byBatch = [...results.configs].sort(
    (a, b) => a.batch.visual - b.batch.visual || a.batch.text - b.batch.text,
  )
  return {
    target,
    batch: batchText,
    series,
    targets: once(target),
    batches: [...new Set(byBatch.map(batchText))],
    seriesNames: once(series),
  }
}

/** A line across ratios in words: `sim h100-sxm trex2-swin-t b16/8` (kept for callers of the old name). */
export const seriesOf = (results: SweepResults): ((c: ConfigResult) => string) => grouping(results).series

/** Ratio labels ordered by visual share V/(V+T): text-only ... 1:1 ... 16:1 ... visual-only. */
export const ratioOrder = (results: SweepResults): string[] =>
  [...new Map(results.configs.map((c) => [ratioLabel(c.ratio), c.ratio])).entries()]
    .sort(([, a], [, b]) => visualShare(a) - visualShare(b))
    .map(([label]) => label)

/** Whether a configuration stopped before it measured anything: nothing of it can be drawn. */
const goneBeforeMeasuring = (c: ConfigResult): boolean => c.aborted !== undefined && c.steps === 0

const abortedList = (results: SweepResults): string =>
  results.configs
    .filter((c) => c.aborted && c.series.step.length === 0)
    .map((c) => `${c.label} (${abortShort(c.aborted!)})`)
    .join(", ")

/** Panel columns for `n` facets in the content width: as many as fit at `minWidth`, at most `max`. */
const wrap = (n: number, minWidth: number, max: number): { columns: number; width: number } => {
  const columns = Math.max(1, Math.min(n, max, Math.floor(CONTENT_WIDTH / minWidth)))
  // Each panel also needs room for its y axis (about 60 px) and the spacing between panels.
  return { columns, width: Math.floor((CONTENT_WIDTH - columns * 75) / columns) }
}

const ratioAxis = (results: SweepResults) =>
  ({
    field: "ratio",
    type: "ordinal",
    sort: ratioOrder(results),
    title: "Ratio V:T (visual steps : text steps, by visual share)",
    axis: { labelAngle: 0, labelOverlap: false, labelFontSize: 10 },
    scale: { padding: 0.4 },
  }) as const

// ---------------------------------------------------------------------------------------------
// Throughput
// ---------------------------------------------------------------------------------------------

/**
 * The 95% interval of a configuration's samples/s. The total step time T is a sum of n_V visual
 * and n_T text step times; its margin of error is √((n_V·moe_V)² + (n_T·moe_T)²) (each modality's
 * moe is t(0.975, n−1)·sd/√n, so n·moe is the margin of a sum of n such steps), and samples/s
 * moves inversely with T. Undefined when neither modality has statistics.
 */
export const throughputInterval = (c: ConfigResult): { lo: number; hi: number } | undefined => {
  const parts = [c.latency.visual, c.latency.text].filter((s): s is Statistics => s !== undefined)
  if (parts.length === 0 || c.durationMs <= 0) return undefined
  const margin = Math.sqrt(parts.reduce((s, x) => s + (x.samplesCount * x.moe) ** 2, 0))
  if (!Number.isFinite(margin)) return undefined
  const samples = (c.throughput.samplesPerSec * c.durationMs) / 1000
  const lo = samples / ((c.durationMs + margin) / 1000)
  const hi = c.durationMs - margin > 0 ? samples / ((c.durationMs - margin) / 1000) : lo
  return { lo, hi: Math.max(hi, lo) }
}

/**
 * Samples/s against the ratio: a panel per target, a line per batch size, each point with its 95%
 * interval. The y axes do not start at 0, and each target has its own (an A100's line is not
 * flattened under an H100's). An aborted configuration is a gap in its line, marked in its own
 * target's panel at its ratio by a dashed rule and its reason in its batch's colour; never a 0.
 */
export const throughputChart = (results: SweepResults): ChartSpec => {
  const g = grouping(results)
  const abortedBatches = (t: string) =>
    g.batches.filter((b) => results.configs.some((c) => c.aborted && g.target(c) === t && g.batch(c) === b))
  const values = results.configs.map((c) => {
    const gone = goneBeforeMeasuring(c)
    const ci = gone ? undefined : throughputInterval(c)
    const target = g.target(c)
    return {
      ratio: ratioLabel(c.ratio),
      target,
      batch: g.batch(c),
      targetIndex: g.targets.indexOf(target),
      id: c.id,
      config: c.label,
      samplesPerSec: gone ? null : c.throughput.samplesPerSec,
      lo: ci?.lo ?? null,
      hi: ci?.hi ?? null,
      aborted: c.aborted ? abortShort(c.aborted) : null,
      abortLabel: c.aborted ? abortShort(c.aborted) : null,
      labelY: c.aborted ? 12 + 14 * abortedBatches(target).indexOf(g.batch(c)) : null,
      describe: gone
        ? `aborted: ${c.label}: ${c.aborted}`
        : `${c.label}: ${c.throughput.samplesPerSec.toPrecision(4)} samples/s${ci ? `, 95% CI ${ci.lo.toPrecision(4)} to ${ci.hi.toPrecision(4)}` : ""}`,
    }
  })
  const x = ratioAxis(results)
  const color = {
    field: "batch",
    type: "nominal",
    title: "Batch V/T (samples per visual / text step)",
    sort: g.batches,
    scale: { scheme: SERIES_SCHEME },
  } as const
  const { columns, width } = wrap(g.targets.length, 330, 3)
  const y = {
    field: "samplesPerSec",
    type: "quantitative",
    title: "Samples / s (axis not from 0)",
    scale: { zero: false },
  } as const
  const anyAborted = results.configs.some((c) => c.aborted)
  const sim = sweepClock(results) === "simulated"
  return {
    id: "throughput",
    title: `Throughput by ratio (samples/s, ${clockWords(sweepClock(results))}): a panel per target, a line per batch size`,
    note: [
      "Bars: 95% confidence interval of samples/s, from the per-step times' margin of error (√((n_V·moe_V)² + (n_T·moe_T)²) on the total step time).",
      sim ? "The sim's step times do not vary, so its intervals have no width." : "",
      "Each panel has its own y axis, and it does not start at 0.",
      anyAborted
        ? "An aborted configuration is a gap in its line, marked in its target's panel at its ratio by a dashed rule and its reason in its batch's colour (OOM = out of memory); it is not 0."
        : "",
    ]
      .filter((s) => s !== "")
      .join(" "),
    spec: {
      config: baseConfig,
      data: { values },
      facet: {
        field: "target",
        type: "nominal",
        title: null,
        // An index, not the array: vega-lite places cells by a sort array unreliably when cells are missing.
        sort: { field: "targetIndex", op: "min" },
        header: { labelFontWeight: "bold", labelLimit: width + 40 },
      },
      columns,
      resolve: { scale: { y: "independent" } },
      spec: {
        width,
        height: 230,
        layer: [
          {
            mark: { type: "line", invalid: "break-paths-filter-domains" },
            encoding: { x, y, color },
          },
          {
            transform: [{ filter: "datum.lo != null" }],
            mark: { type: "rule", strokeWidth: 1.5 },
            encoding: {
              x,
              y: { field: "lo", type: "quantitative" },
              y2: { field: "hi" },
              color,
              description: { field: "describe" },
            },
          },
          {
            transform: [{ filter: "datum.samplesPerSec != null" }],
            mark: { type: "point", filled: true, size: 60 },
            encoding: { x, y, color, description: { field: "describe" } },
          },
          {
            transform: [{ filter: "datum.aborted != null" }],
            mark: { type: "rule", strokeDash: [4, 3], strokeWidth: 1.5 },
            encoding: { x, color, description: { field: "describe" } },
          },
          {
            transform: [{ filter: "datum.aborted != null" }],
            mark: {
              type: "text",
              fontWeight: "bold",
              fontSize: 11,
              dx: 4,
              align: "left",
              baseline: "middle",
            },
            encoding: {
              x,
              y: { field: "labelY", type: "quantitative", scale: null },
              text: { field: "abortLabel" },
              color,
              description: { field: "describe" },
            },
          },
        ],
      },
    } as TopLevelSpec,
  }
}

// ---------------------------------------------------------------------------------------------
// Latency: the mean with its 95% interval, and the p99
// ---------------------------------------------------------------------------------------------

const latencyPanels = (
  results: SweepResults,
  id: "latency" | "p99",
  value: (s: Statistics) => { v: number; lo?: number; hi?: number },
): ChartSpec => {
  const g = grouping(results)
  const points = results.configs.flatMap((c) =>
    (["visual", "text"] as const).flatMap((modality) => {
      const s = c.latency[modality]
      if (!s) return []
      const { v, lo, hi } = value(s)
      return [
        {
          series: g.series(c),
          seriesIndex: g.seriesNames.indexOf(g.series(c)),
          ratio: ratioLabel(c.ratio),
          modality,
          ms: v,
          lo: lo ?? null,
          hi: hi ?? null,
          aborted: null,
          describe: `${c.label} ${modality}: ${id === "p99" ? "p99" : "mean"} ${v.toPrecision(4)} ms${lo !== undefined && hi !== undefined ? `, 95% CI ${lo.toPrecision(4)} to ${hi.toPrecision(4)} ms` : ""} (n ${s.samplesCount})`,
        },
      ]
    }),
  )
  const gone = results.configs
    .filter((c) => c.aborted && !c.latency.visual && !c.latency.text)
    .map((c) => ({
      series: g.series(c),
      seriesIndex: g.seriesNames.indexOf(g.series(c)),
      ratio: ratioLabel(c.ratio),
      modality: null,
      ms: null,
      lo: null,
      hi: null,
      aborted: abortShort(c.aborted!),
      describe: `aborted: ${c.label}: ${c.aborted}`,
    }))
  const x = ratioAxis(results)
  const { columns, width } = wrap(g.seriesNames.length, 300, 3)
  const y = {
    field: "ms",
    type: "quantitative",
    title: id === "p99" ? "p99 step time (ms)" : "Mean step time (ms)",
    scale: { zero: true },
  } as const
  const clock = clockWords(sweepClock(results))
  const layers: unknown[] = [
    {
      transform: [{ filter: "datum.ms != null" }],
      mark: { type: "line", strokeWidth: 1, opacity: 0.6 },
      encoding: { x, y, color: modalityColor },
    },
    ...(id === "latency"
      ? [
          {
            transform: [{ filter: "datum.lo != null" }],
            mark: { type: "errorbar", ticks: { size: 8 }, thickness: 1.5 },
            encoding: {
              x,
              y: { field: "lo", type: "quantitative", title: y.title },
              y2: { field: "hi" },
              color: modalityColor,
              description: { field: "describe" },
            },
          },
        ]
      : []),
    {
      transform: [{ filter: "datum.ms != null" }],
      mark: { type: "point", filled: true, size: 55 },
      encoding: { x, y, color: modalityColor, shape: modalityShape, description: { field: "describe" } },
    },
    {
      transform: [{ filter: "datum.aborted != null" }],
      mark: { type: "rule", strokeDash: [4, 3], color: ABORT_COLOR },
      encoding: { x, description: { field: "describe" } },
    },
    {
      transform: [{ filter: "datum.aborted != null" }],
      mark: { type: "text", fontWeight: "bold", fontSize: 11, dx: 3, align: "left", color: ABORT_COLOR },
      encoding: { x, y: { value: 10 }, text: { field: "aborted" }, description: { field: "describe" } },
    },
  ]
  return {
    id,
    title:
      id === "p99"
        ? `p99 step latency per modality (ms per step, ${clock}): a panel per target and batch size`
        : `Mean step latency per modality (ms per step, ${clock}, with 95% confidence intervals): a panel per target and batch size`,
    note: [
      id === "p99"
        ? "The 99th percentile of each modality's step times (type-7 quantile); with fewer than 100 steps it is close to the slowest step."
        : "Bars: the mean's 95% confidence interval (± the margin of error, t(0.975, n−1)·sd/√n); the tables flag noisy means with “!”.",
      "Each panel has its own y axis, from 0.",
      gone.length > 0
        ? "An aborted configuration has no latency: a dashed rule and its reason at its ratio, in its own panel."
        : "",
    ]
      .filter((s) => s !== "")
      .join(" "),
    spec: {
      config: baseConfig,
      data: { values: [...points, ...gone] },
      facet: {
        field: "series",
        type: "nominal",
        title: null,
        sort: { field: "seriesIndex", op: "min" },
        header: { labelFontWeight: "bold", labelLimit: width + 40 },
      },
      columns,
      resolve: { scale: { y: "independent" } },
      spec: { width, height: 170, layer: layers },
    } as TopLevelSpec,
  }
}

/** Mean step time per ratio and modality with its 95% interval: a panel per target and batch. */
export const latencyChart = (results: SweepResults): ChartSpec =>
  latencyPanels(results, "latency", (s) => ({
    v: s.mean,
    lo: Math.max(0, s.mean - s.moe),
    hi: s.mean + s.moe,
  }))

/** The p99 step time per ratio and modality: a panel per target and batch. */
export const p99Chart = (results: SweepResults): ChartSpec =>
  latencyPanels(results, "p99", (s) => ({ v: s.p99 }))

// ---------------------------------------------------------------------------------------------
// Memory over steps
// ---------------------------------------------------------------------------------------------

const MiB = 1024 * 1024
const GiB = 1024 * MiB

/**
 * The series cut into `pixels` buckets of consecutive steps (one per pixel column of the panel);
 * per bucket and modality the lowest and highest memory of the steps the series holds (null in a
 * bucket without a step of that modality; the chart leaves those out and joins the others).
 */
export const memoryBuckets = (
  c: ConfigResult,
  pixels: number,
): Array<{ step: number; modality: "visual" | "text"; min: number | null; max: number | null }> => {
  const { step, modality, memBytes } = c.series
  if (step.length === 0) return []
  const first = step[0]!
  const last = step[step.length - 1]!
  const size = Math.max(1, Math.ceil((last - first + 1) / Math.max(1, pixels)))
  const buckets = Math.floor((last - first) / size) + 1
  const lo = {
    visual: new Array<number>(buckets).fill(Infinity),
    text: new Array<number>(buckets).fill(Infinity),
  }
  const hi = {
    visual: new Array<number>(buckets).fill(-Infinity),
    text: new Array<number>(buckets).fill(-Infinity),
  }
  for (let i = 0; i < step.length; i++) {
    const b = Math.floor((step[i]! - first) / size)
    const m = modality[i]!
    lo[m][b] = Math.min(lo[m][b]!, memBytes[i]!)
    hi[m][b] = Math.max(hi[m][b]!, memBytes[i]!)
  }
  const present = (m: "visual" | "text") => modality.includes(m)
  return (["visual", "text"] as const).filter(present).flatMap((m) =>
    Array.from({ length: buckets }, (_, b) => {
      const has = Number.isFinite(lo[m][b]!)
      return { step: first + b * size, modality: m, min: has ? lo[m][b]! : null, max: has ? hi[m][b]! : null }
    }),
  )
}

/** The memory figure's mean over one representative cycle: where the run spends its time. */
const cycleMean = (c: ConfigResult): number | undefined => {
  const m = c.memoryCycle?.medianBytes
  return m && m.length > 0 ? m.reduce((s, x) => s + x, 0) / m.length : undefined
}

interface MemoryRow {
  readonly ratio: string
  readonly ratioIndex: number
  readonly kind: string | null
  readonly step: number | null
  readonly min: number | null
  readonly max: number | null
  readonly aborted: string | null
  readonly describe: string | null
}

const MEMORY_KIND = { visual: "visual steps", text: "text steps", mean: "mean over one cycle" } as const

/**
 * Memory over steps: a grid with a row per ratio and a column per target and batch. Each panel is
 * drawn per pixel column: the lowest and highest memory of the visual steps (blue band) and of the
 * text steps (red band) in it, so no step's extreme is dropped by thinning; the dashed line is the
 * figure's mean over one representative cycle (a 16:1 run sits near its visual peak, a 1:1 run
 * halfway). A column shares one y axis across its ratios, not from 0; its title says where the
 * axis starts.
 */
export const memoryChart = (results: SweepResults): ChartSpec => {
  const g = grouping(results)
  const ratios = ratioOrder(results)
  const rows = g.seriesNames
  const panelWidth = Math.max(80, Math.min(460, Math.floor((CONTENT_WIDTH - 70) / ratios.length) - 10))
  const drawn = results.configs.filter((c) => c.series.step.length > 0)
  const top = Math.max(0, ...drawn.flatMap((c) => c.series.memBytes))
  const unit = top >= 2 * GiB ? { name: "GiB", bytes: GiB } : { name: "MiB", bytes: MiB }
  const withMean = drawn.some((c) => cycleMean(c) !== undefined)
  const fmt = (bytes: number) => `${(bytes / unit.bytes).toPrecision(3)} ${unit.name}`
  const concat = rows.map((name, i) => {
    const configs = results.configs.filter((c) => g.series(c) === name)
    const lowest = Math.min(...configs.flatMap((c) => c.series.memBytes))
    const values = configs.flatMap((c): MemoryRow[] => {
      const ratio = ratioLabel(c.ratio)
      const ratioIndex = ratios.indexOf(ratio)
      if (c.series.step.length === 0)
        return [
          {
            ratio,
            ratioIndex,
            kind: null,
            step: null,
            min: null,
            max: null,
            aborted: c.aborted ? `aborted (${abortShort(c.aborted)})` : "no memory",
            describe: `${c.label}: ${c.aborted ? `aborted: ${c.aborted}` : "no memory figure"}`,
          },
        ]
      const mean = cycleMean(c)
      return [
        // A pixel column without a step of a modality is left out: the band joins that modality's steps.
        ...memoryBuckets(c, panelWidth)
          .filter((b) => b.min !== null)
          .map((b) => ({
            ratio,
            ratioIndex,
            kind: MEMORY_KIND[b.modality],
            step: b.step,
            min: b.min === null ? null : b.min / unit.bytes,
            max: b.max === null ? null : b.max / unit.bytes,
            aborted: null,
            describe: null,
          })),
        ...(mean === undefined
          ? []
          : [
              {
                ratio,
                ratioIndex,
                kind: MEMORY_KIND.mean,
                step: null,
                min: mean / unit.bytes,
                max: mean / unit.bytes,
                aborted: null,
                describe: `${c.label}: mean over one cycle ${fmt(mean)}`,
              },
            ]),
      ]
    })
    const x = {
      field: "step",
      type: "quantitative",
      title: i === rows.length - 1 ? "Step" : null,
      axis: { tickCount: 3, labelFontSize: 10 },
      scale: { nice: false },
    } as const
    const y = {
      field: "max",
      type: "quantitative",
      title: null,
      scale: { zero: false },
      axis: { tickCount: 3, labelFontSize: 10, format: ".3~r" },
    } as const
    const color = {
      field: "kind",
      type: "nominal",
      title: `Memory figure (${unit.name})`,
      scale: {
        domain: [MEMORY_KIND.visual, MEMORY_KIND.text, ...(withMean ? [MEMORY_KIND.mean] : [])],
        range: [...MODALITY_COLORS, "#333333"],
      },
      legend: { symbolOpacity: 1, symbolStrokeWidth: 3 },
    } as const
    const figures = new Set(configs.filter((c) => c.memory).map((c) => figureTag(c.memoryFigure, c.steps)))
    return {
      title: {
        text: `${name} · ${[...figures].join("; ") || "no memory"} · y axis from ${fmt(Number.isFinite(lowest) ? lowest : 0)}, not 0`,
        fontSize: 12,
        fontWeight: "bold",
        limit: 0,
        offset: 4,
      },
      data: { values },
      facet: {
        column: {
          field: "ratio",
          type: "ordinal",
          title: null,
          sort: { field: "ratioIndex", op: "min" },
          header: { labelFontSize: 11, labelPadding: 2, labelExpr: "'ratio ' + datum.value" },
        },
      },
      spacing: { column: 8 },
      spec: {
        width: panelWidth,
        height: 56,
        layer: [
          {
            transform: [{ filter: "datum.step != null && datum.kind != null" }],
            mark: { type: "area", opacity: 0.35, invalid: "break-paths-filter-domains" },
            encoding: { x, y, y2: { field: "min" }, color },
          },
          {
            transform: [{ filter: "datum.step != null && datum.kind != null" }],
            mark: { type: "line", strokeWidth: 1, invalid: "break-paths-filter-domains" },
            encoding: { x, y, color },
          },
          {
            transform: [{ filter: "datum.step != null && datum.kind != null" }],
            mark: { type: "line", strokeWidth: 1, invalid: "break-paths-filter-domains" },
            encoding: { x, y: { ...y, field: "min" }, color },
          },
          {
            transform: [{ filter: "datum.kind == 'mean over one cycle'" }],
            mark: { type: "rule", strokeDash: [4, 3], strokeWidth: 1.2 },
            encoding: { y, color, description: { field: "describe" } },
          },
          {
            transform: [{ filter: "datum.aborted != null" }],
            mark: { type: "text", fontWeight: "bold", fontSize: 11, color: ABORT_COLOR },
            encoding: {
              x: { value: panelWidth / 2 },
              y: { value: 28 },
              text: { field: "aborted" },
              description: { field: "describe" },
            },
          },
        ],
      },
      resolve: { scale: { y: "shared", x: "shared" } },
    }
  })
  const stored = drawn.filter((c) => c.series.step.length < c.series.sourceSteps)
  const gone = abortedList(results)
  return {
    id: "memory",
    title: `Memory over steps (${unit.name}): a row per target and batch size, a column per ratio`,
    note: [
      "Each pixel column shows the lowest and highest memory of the visual steps (blue band) and of the text steps (red band) among its steps; a band joins the pixel columns that hold a step of its modality.",
      stored.length > 0
        ? `results.json keeps, for a long run, each bucket's lowest- and highest-memory visual and text step (${stored[0]!.series.step.length} of ${stored[0]!.series.sourceSteps} steps for ${stored[0]!.label}), so extremes are never thinned away.`
        : "Every measured step is drawn.",
      drawn.some((c) => cycleMean(c) !== undefined)
        ? "The dashed line is the mean over one representative cycle (the median bytes at each position of the cycle, averaged): near the visual peak for 16:1, halfway for 1:1."
        : "",
      "A row shares one y axis across its ratios; it does not start at 0, and the row's title says where it starts.",
      gone ? `Aborted before measuring: ${gone}.` : "",
    ]
      .filter((s) => s !== "")
      .join(" "),
    spec: {
      config: baseConfig,
      vconcat: concat,
      spacing: 12,
      resolve: { scale: { color: "shared" }, legend: { color: "shared" } },
    } as TopLevelSpec,
  }
}

// ---------------------------------------------------------------------------------------------
// Loss
// ---------------------------------------------------------------------------------------------

/** Which loss the chart draws, and why: the same quantity in every run it compares. */
export interface LossChoice {
  /** `total`, or the name of a term every step has. */
  readonly term: string
  readonly why: string
  readonly value: (c: ConfigResult, i: number) => number
}

/**
 * Picks the loss to draw. A step's `total` means the same in every run only when every step has
 * the same terms: a tfjs visual step's total gains `align` once a text step has run, so visual-only
 * runs and mixed runs would sit on different curves for that reason alone. Then the chart draws a
 * term that every step of every run has (the first such, in the adapter's order), and says so.
 * Results without terms (older files) draw the total, each panel one ratio, so a panel compares
 * runs of one schedule.
 */
export const lossChoice = (results: SweepResults): LossChoice => {
  const drawn = results.configs.filter((c) => c.series.step.length > 0)
  const total: LossChoice["value"] = (c, i) => c.series.loss[i]!
  if (drawn.length === 0 || drawn.some((c) => !c.series.lossTerms))
    return {
      term: "total",
      why: "results.json holds only each step's total loss (no terms), and a total may hold terms that differ between ratios (a tfjs visual step adds align once a text step has run): compare runs within a panel (one ratio each).",
      value: total,
    }
  const names = [...new Set(drawn.flatMap((c) => Object.keys(c.series.lossTerms!)))]
  const stepHas = (c: ConfigResult, i: number, k: string) =>
    Number.isFinite(c.series.lossTerms![k]?.[i] ?? Number.NaN)
  const steps = drawn.flatMap((c) =>
    c.series.step.map((_, i) => [c, i] as const).filter(([, i]) => Number.isFinite(c.series.loss[i]!)),
  )
  const inEvery = names.filter((k) => steps.every(([c, i]) => stepHas(c, i, k)))
  if (inEvery.length === names.length)
    return {
      term: "total",
      why: `every step of every run has the same loss terms (${names.join(", ")}), so the total compares like with like.`,
      value: total,
    }
  const partial = names.filter((k) => !inEvery.includes(k))
  const partialText = partial
    .map((k) => {
      const n = steps.filter(([c, i]) => stepHas(c, i, k)).length
      return `${k} (in ${n} of ${steps.length} drawn steps)`
    })
    .join(", ")
  const term = inEvery[0]
  if (term === undefined)
    return {
      term: "total",
      why: `no loss term is in every step (${partialText}): the totals differ in what they add up, so compare runs within a panel (one ratio each).`,
      value: total,
    }
  return {
    term,
    why: `the “${term}” term, which every step of every run has; the total is not drawn because ${partialText} is added to some steps only, so totals of different runs add up different terms.`,
    value: (c, i) => c.series.lossTerms![term]![i]!,
  }
}

/**
 * The loss per step: a column per ratio, a row per modality, a line per target and batch size,
 * one shared y axis from 0, so ratios compare across panels and runs within one.
 */
export const lossChart = (results: SweepResults): ChartSpec => {
  const g = grouping(results)
  const choice = lossChoice(results)
  const ratios = ratioOrder(results)
  const values = results.configs.flatMap((c) =>
    c.series.step.map((step, i) => {
      const v = Number.isFinite(c.series.loss[i]!) ? choice.value(c, i) : Number.NaN
      // A failed step (NaN loss) becomes null, which breaks the line: a visible gap, not a bridge.
      return {
        series: g.series(c),
        ratio: ratioLabel(c.ratio),
        ratioIndex: ratios.indexOf(ratioLabel(c.ratio)),
        modalityIndex: c.series.modality[i] === "visual" ? 0 : 1,
        step,
        modality: c.series.modality[i],
        loss: Number.isFinite(v) ? v : null,
      }
    }),
  )
  // Every (ratio, modality) cell gets a row, even an empty one (a null loss draws nothing): vega-lite
  // lays a grid's cells out in order, and a missing cell would shift the others into the wrong panel.
  const firstStep = Math.min(...values.map((v) => v.step))
  const cells = ratios.flatMap((ratio, ratioIndex) =>
    (["visual", "text"] as const).map((modality, modalityIndex) => ({
      series: g.seriesNames[0]!,
      ratio,
      ratioIndex,
      modalityIndex,
      step: Number.isFinite(firstStep) ? firstStep : 0,
      modality,
      loss: null,
    })),
  )
  const width = Math.max(90, Math.floor((CONTENT_WIDTH - 110) / ratios.length) - 12)
  const maxSteps = Math.max(0, ...results.configs.map((c) => c.series.step.length))
  const label = choice.term === "total" ? "Total loss" : `Loss term “${choice.term}”`
  const gone = abortedList(results)
  return {
    id: "loss",
    title: `Loss per modality (${choice.term === "total" ? "total" : `the “${choice.term}” term`}): a column per ratio, a line per target and batch size`,
    note: [
      `Drawn: ${choice.why}`,
      "One y axis for all panels, from 0; a failed step is a gap; where lines coincide, the one listed last in the legend is on top.",
      gone ? `Aborted before measuring, so not drawn: ${gone}.` : "",
    ]
      .filter((s) => s !== "")
      .join(" "),
    spec: {
      config: baseConfig,
      data: { values: [...cells, ...values] },
      facet: {
        column: {
          field: "ratio",
          type: "ordinal",
          title: "Ratio V:T",
          sort: ratios,
          header: { labelFontWeight: "bold" },
        },
        row: {
          field: "modality",
          type: "nominal",
          title: null,
          sort: ["visual", "text"],
          header: { labelExpr: "datum.value + ' steps'", labelFontWeight: "bold" },
        },
      },
      spacing: { column: 8, row: 10 },
      spec: {
        width,
        height: 130,
        mark: {
          type: "line",
          strokeWidth: 1.2,
          invalid: "break-paths-filter-domains",
          point: maxSteps <= 80 ? { size: 10 } : false,
        },
        encoding: {
          x: {
            field: "step",
            type: "quantitative",
            title: "Step",
            axis: { tickCount: 3, labelFontSize: 10 },
          },
          y: { field: "loss", type: "quantitative", title: label, scale: { zero: true } },
          color: {
            field: "series",
            type: "nominal",
            title: "Target, batch V/T",
            sort: g.seriesNames,
            scale: { scheme: SERIES_SCHEME },
            legend: { symbolStrokeWidth: 4, symbolSize: 260 },
          },
        },
      },
    } as TopLevelSpec,
  }
}

export const chartSpecs = (results: SweepResults): ReadonlyArray<ChartSpec> => [
  throughputChart(results),
  latencyChart(results),
  p99Chart(results),
  memoryChart(results),
  lossChart(results),
]

/**
 * vega-lite -> vega -> SVG. The namespace declarations are dropped: inline SVG in HTML does not need
 * them, and the report must hold no http(s) URL at all.
 */
export const renderChartSvg = async (spec: TopLevelSpec): Promise<string> => {
  // Loaded on first use: vega and vega-lite take longer to load than most commands take to run.
  const [{ parse, View }, { compile }] = await Promise.all([import("vega"), import("vega-lite")])
  const view = new View(parse(compile(spec).spec), { renderer: "none" })
  try {
    const svg = await view.toSVG()
    return svg.replace(/\s+xmlns(:\w+)?="[^"]*"/g, "")
  } finally {
    view.finalize()
  }
}

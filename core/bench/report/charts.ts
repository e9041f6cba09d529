/**
 * The report's charts: vega-lite specs built from the results, compiled to vega and rendered to SVG
 * in Node by vega's headless renderer (`view.toSVG()`; no canvas needed), so the HTML report needs
 * no script to show them.
 */
import type { TopLevelSpec } from "vega-lite"
import { figureTag } from "../memory-figure.ts"
import type { ConfigResult, SweepResults } from "../results.ts"
import { abortShort, ratioLabel, seriesText, targetKey, visualShare } from "../target.ts"

export interface ChartSpec {
  /** Stable id: the HTML figure's `data-chart`. */
  readonly id: "throughput" | "memory" | "loss" | "latency"
  readonly title: string
  /** A sentence under the title (what is marked, what is left out). */
  readonly note?: string | undefined
  readonly spec: TopLevelSpec
}

const MiB = 1024 * 1024

/** Same colours and shapes for a modality in every chart. */
const modalityColor = {
  field: "modality",
  type: "nominal",
  title: "Modality",
  scale: { domain: ["visual", "text"], range: ["#4c78a8", "#e45756"] },
} as const
const modalityShape = {
  field: "modality",
  type: "nominal",
  title: "Modality",
  scale: { domain: ["visual", "text"], range: ["circle", "triangle-up"] },
} as const

const baseConfig = {
  font: "sans-serif",
  background: "white",
  axis: { labelFontSize: 11, titleFontSize: 12 },
  legend: { labelFontSize: 11, titleFontSize: 12, labelLimit: 320 },
} as const

/**
 * The line a configuration belongs to across ratios: its target (adapter, backend or hardware,
 * model or preset) and batch size, in words, plus the worker's host where the same target and
 * batch ran on several machines (a report across machines). Two targets whose words coincide get
 * their key too, so their points never join.
 */
export const seriesOf = (results: SweepResults): ((c: ConfigResult) => string) => {
  const targetBatch = (c: ConfigResult) => JSON.stringify([targetKey(c), c.batch.visual, c.batch.text])
  // Across machines: a target and batch that ran on several hosts is a line per host.
  const hosts = new Map<string, Set<string>>()
  for (const c of results.configs)
    if (c.worker) hosts.set(targetBatch(c), (hosts.get(targetBatch(c)) ?? new Set()).add(c.worker.host))
  const host = (c: ConfigResult) =>
    c.worker && (hosts.get(targetBatch(c))?.size ?? 1) > 1 ? c.worker.host : undefined
  const keyOf = (c: ConfigResult) =>
    JSON.stringify([targetKey(c), c.batch.visual, c.batch.text, host(c) ?? ""])
  const words = (c: ConfigResult) => {
    const h = host(c)
    return h === undefined ? seriesText(c) : `${seriesText(c)} on ${h}`
  }
  const textKeys = new Map<string, Set<string>>()
  for (const c of results.configs) {
    const t = words(c)
    textKeys.set(t, (textKeys.get(t) ?? new Set()).add(keyOf(c)))
  }
  return (c) => {
    const t = words(c)
    return (textKeys.get(t)?.size ?? 1) > 1 ? `${t} (${targetKey(c)})` : t
  }
}

/** Ratio labels ordered by visual share V/(V+T): text-only ... 1:1 ... 16:1 ... visual-only. */
export const ratioOrder = (results: SweepResults): string[] =>
  [...new Map(results.configs.map((c) => [ratioLabel(c.ratio), c.ratio])).entries()]
    .sort(([, a], [, b]) => visualShare(a) - visualShare(b))
    .map(([label]) => label)

const abortedNote = (results: SweepResults, what: string): string | undefined => {
  const gone = results.configs.filter((c) => c.aborted && c.series.step.length === 0)
  return gone.length === 0
    ? undefined
    : `Aborted, so not drawn ${what}: ${gone.map((c) => `${c.label} (${abortShort(c.aborted!)})`).join(", ")}.`
}

/**
 * Samples/s against the ratio, one line per target and batch size. An aborted configuration is
 * a gap in its line (a null value, which breaks the line), marked at its ratio by a dashed rule
 * and a label such as "OOM" in the line's colour; it is never drawn at 0.
 */
export const throughputChart = (results: SweepResults): ChartSpec => {
  const series = seriesOf(results)
  const abortedSeries = [...new Set(results.configs.filter((c) => c.aborted).map(series))]
  const values = results.configs.map((c) => {
    const gone = c.aborted !== undefined
    return {
      ratio: ratioLabel(c.ratio),
      series: series(c),
      config: c.id,
      samplesPerSec: gone ? null : c.throughput.samplesPerSec,
      stepsPerSec: gone ? null : c.throughput.stepsPerSec,
      aborted: gone ? abortShort(c.aborted!) : null,
      reason: c.aborted ?? null,
      labelY: gone ? 10 + 13 * abortedSeries.indexOf(series(c)) : null,
    }
  })
  const x = {
    field: "ratio",
    type: "ordinal",
    sort: ratioOrder(results),
    title: "Ratio V:T (by visual share)",
    axis: { labelAngle: 0 },
  } as const
  const color = { field: "series", type: "nominal", title: "Target, batch V/T" } as const
  const clock = results.configs.every((c) => c.adapter === "sim")
    ? "simulated"
    : results.configs.some((c) => c.adapter === "sim")
      ? "simulated for sim, measured otherwise"
      : "measured"
  return {
    id: "throughput",
    title: `Throughput vs ratio (samples/s, ${clock})`,
    note:
      abortedSeries.length > 0
        ? "Aborted configurations are gaps in their line, marked at their ratio with a dashed rule and the reason (OOM = out of memory); they are not 0."
        : undefined,
    spec: {
      config: baseConfig,
      width: 480,
      height: 260,
      data: { values },
      layer: [
        {
          mark: { type: "line" },
          encoding: {
            x,
            y: { field: "samplesPerSec", type: "quantitative", title: "Samples / s", scale: { zero: true } },
            color,
          },
        },
        {
          transform: [{ filter: "datum.samplesPerSec != null" }],
          mark: { type: "point", filled: true, size: 70 },
          encoding: {
            x,
            y: { field: "samplesPerSec", type: "quantitative" },
            color,
            tooltip: [
              { field: "config", type: "nominal" },
              { field: "samplesPerSec", type: "quantitative", format: ".4~r", title: "samples/s" },
            ],
          },
        },
        {
          transform: [{ filter: "datum.aborted != null" }],
          mark: { type: "rule", strokeDash: [4, 3], strokeWidth: 1.5 },
          encoding: { x, color, tooltip: [{ field: "config" }, { field: "reason" }] },
        },
        {
          transform: [{ filter: "datum.aborted != null" }],
          mark: { type: "text", fontWeight: "bold", fontSize: 11, dx: 4, align: "left" },
          encoding: {
            x,
            y: { field: "labelY", type: "quantitative", scale: null },
            text: { field: "aborted" },
            color,
          },
        },
      ],
    },
  }
}

const panelOf = (c: ConfigResult): string => `${c.label}: ${figureTag(c.memoryFigure, c.steps)}`

export const memoryChart = (results: SweepResults): ChartSpec => ({
  id: "memory",
  title: "Memory over steps, each config's memory figure (visual and text steps marked)",
  note: abortedNote(results, "here"),
  spec: {
    config: baseConfig,
    data: {
      values: results.configs.flatMap((c) =>
        c.series.step.map((step, i) => ({
          config: panelOf(c),
          step,
          modality: c.series.modality[i],
          mib: c.series.memBytes[i]! / MiB,
        })),
      ),
    },
    facet: {
      row: {
        field: "config",
        type: "nominal",
        title: null,
        sort: results.configs.map(panelOf),
        // Each panel's config and memory figure above it, read horizontally.
        header: {
          labelAngle: 0,
          labelOrient: "top",
          labelAnchor: "start",
          labelAlign: "left",
          labelLimit: 640,
          labelFontSize: 11,
        },
      },
    },
    resolve: { scale: { y: "independent", x: "independent" } },
    spec: {
      width: 640,
      height: 110,
      encoding: {
        x: { field: "step", type: "quantitative", title: "Step" },
        y: {
          field: "mib",
          type: "quantitative",
          title: "Memory (MiB)",
          scale: { zero: false },
          axis: { format: ".4~r" },
        },
      },
      layer: [
        { mark: { type: "line", color: "#bbbbbb", strokeWidth: 1 } },
        {
          mark: { type: "point", filled: true, size: 28 },
          encoding: { color: modalityColor, shape: modalityShape },
        },
      ],
    },
  },
})

export const lossChart = (results: SweepResults): ChartSpec => ({
  id: "loss",
  title: "Loss per modality",
  note: abortedNote(results, "here"),
  spec: {
    config: baseConfig,
    data: {
      values: results.configs.flatMap((c) =>
        c.series.step.map((step, i) => {
          const loss = c.series.loss[i]!
          // A failed step (NaN loss) becomes null, which breaks the line: a visible gap, not a bridge.
          return {
            config: c.label,
            step,
            modality: c.series.modality[i],
            loss: Number.isFinite(loss) ? loss : null,
          }
        }),
      ),
    },
    facet: {
      column: { field: "modality", type: "nominal", title: null, sort: ["visual", "text"] },
    },
    spec: {
      width: 320,
      height: 220,
      // Point markers only while they stay distinguishable.
      mark: {
        type: "line",
        point: Math.max(0, ...results.configs.map((c) => c.series.step.length)) <= 200 ? { size: 18 } : false,
      },
      encoding: {
        x: { field: "step", type: "quantitative", title: "Step" },
        y: { field: "loss", type: "quantitative", title: "Loss" },
        color: {
          field: "config",
          type: "nominal",
          title: "Config",
          sort: results.configs.map((c) => c.label),
        },
      },
    },
  },
})

/**
 * Mean step time per configuration and modality, with its 95% margin of error; an aborted
 * configuration keeps its place on the axis and reads "aborted" there.
 */
export const latencyChart = (results: SweepResults): ChartSpec => {
  const x = {
    field: "config",
    type: "nominal",
    title: null,
    sort: results.configs.map((c) => c.label),
    axis: { labelAngle: -20 },
  } as const
  const bars = results.configs.flatMap((c) =>
    (["visual", "text"] as const).flatMap((modality) => {
      const s = c.latency[modality]
      return s
        ? [
            {
              config: c.label,
              modality,
              mean: s.mean,
              lo: Math.max(0, s.mean - s.moe),
              hi: s.mean + s.moe,
              n: s.samplesCount,
              aborted: null,
            },
          ]
        : []
    }),
  )
  const gone = results.configs
    .filter((c) => c.aborted && !c.latency.visual && !c.latency.text)
    // A modality for the offset scale only: every layer must use it, or vega-lite's band steps conflict.
    .map((c) => ({ config: c.label, aborted: `aborted (${abortShort(c.aborted!)})`, modality: "visual" }))
  return {
    id: "latency",
    title: "Mean step latency per modality (ms per step, ± 95% margin of error)",
    note: gone.length > 0 ? "Aborted configurations keep their place and read “aborted”." : undefined,
    spec: {
      config: baseConfig,
      width: { step: 56 },
      height: 240,
      data: { values: [...bars, ...gone] },
      layer: [
        {
          transform: [{ filter: "datum.aborted == null" }],
          mark: { type: "bar" },
          encoding: {
            x,
            xOffset: { field: "modality", type: "nominal", sort: ["visual", "text"] },
            y: { field: "mean", type: "quantitative", title: "Mean latency (ms per step)" },
            color: modalityColor,
          },
        },
        {
          transform: [{ filter: "datum.aborted == null" }],
          mark: { type: "rule", color: "#333333" },
          encoding: {
            x,
            xOffset: { field: "modality", type: "nominal", sort: ["visual", "text"] },
            y: { field: "lo", type: "quantitative" },
            y2: { field: "hi" },
          },
        },
        {
          transform: [{ filter: "datum.aborted != null" }],
          mark: { type: "text", angle: 270, align: "left", dx: 0, fontSize: 11, color: "#b00020" },
          encoding: {
            x,
            xOffset: { field: "modality", type: "nominal", sort: ["visual", "text"] },
            y: { value: 236 },
            text: { field: "aborted" },
          },
        },
      ],
    },
  }
}

export const chartSpecs = (results: SweepResults): ReadonlyArray<ChartSpec> => [
  throughputChart(results),
  latencyChart(results),
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

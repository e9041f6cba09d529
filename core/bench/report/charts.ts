/**
 * The report's charts: vega-lite specs built from the results, compiled to vega and rendered to SVG
 * in Node by vega's headless renderer (`view.toSVG()`; no canvas needed), so the HTML report needs
 * no script to show them.
 */
import type { TopLevelSpec } from "vega-lite"
import { formatRatio } from "../../common/index.ts"
import type { ConfigResult, SweepResults } from "../results.ts"
import { adapterLabel } from "./tables.ts"

export interface ChartSpec {
  /** Stable id: the HTML figure's `data-chart`. */
  readonly id: "throughput" | "memory" | "loss" | "latency"
  readonly title: string
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

/** Everything that is not the ratio: configs with the same group form one line across ratios. */
const groupOf = (c: ConfigResult): string => `${adapterLabel(c)} b${c.batch.visual}/${c.batch.text}`

/** Ratio labels ordered by visual share (0:1 ... 1:0), so the x axis reads left to right. */
const ratioOrder = (results: SweepResults): string[] =>
  [...new Map(results.configs.map((c) => [formatRatio(c.ratio), c.ratio])).entries()]
    .sort(([, a], [, b]) => a.visual / (a.visual + a.text) - b.visual / (b.visual + b.text))
    .map(([label]) => label)

export const throughputChart = (results: SweepResults): ChartSpec => ({
  id: "throughput",
  title: "Throughput vs ratio",
  spec: {
    config: baseConfig,
    width: 480,
    height: 260,
    data: {
      values: results.configs.map((c) => ({
        ratio: formatRatio(c.ratio),
        group: groupOf(c),
        samplesPerSec: c.throughput.samplesPerSec,
        stepsPerSec: c.throughput.stepsPerSec,
      })),
    },
    encoding: {
      x: {
        field: "ratio",
        type: "ordinal",
        sort: ratioOrder(results),
        title: "Ratio V:T",
        axis: { labelAngle: 0 },
      },
      y: { field: "samplesPerSec", type: "quantitative", title: "Samples / s", scale: { zero: true } },
      color: { field: "group", type: "nominal", title: "Adapter, batch V/T" },
    },
    layer: [{ mark: { type: "line" } }, { mark: { type: "point", filled: true, size: 70 } }],
  },
})

export const memoryChart = (results: SweepResults): ChartSpec => ({
  id: "memory",
  title: "Memory over steps (visual and text steps marked)",
  spec: {
    config: baseConfig,
    data: {
      values: results.configs.flatMap((c) =>
        c.series.step.map((step, i) => ({
          config: c.label,
          step,
          modality: c.series.modality[i],
          mib: c.series.memBytes[i]! / MiB,
        })),
      ),
    },
    facet: {
      row: { field: "config", type: "nominal", title: null, sort: results.configs.map((c) => c.label) },
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

export const latencyChart = (results: SweepResults): ChartSpec => ({
  id: "latency",
  title: "p99 step latency per modality",
  spec: {
    config: baseConfig,
    width: { step: 56 },
    height: 240,
    data: {
      values: results.configs.flatMap((c) =>
        (["visual", "text"] as const).flatMap((modality) => {
          const s = c.latency[modality]
          return s ? [{ config: c.label, modality, p99: s.p99, p50: s.p50 }] : []
        }),
      ),
    },
    mark: { type: "bar" },
    encoding: {
      x: {
        field: "config",
        type: "nominal",
        title: null,
        sort: results.configs.map((c) => c.label),
        axis: { labelAngle: -20 },
      },
      xOffset: { field: "modality", type: "nominal", sort: ["visual", "text"] },
      y: { field: "p99", type: "quantitative", title: "p99 latency (ms)" },
      color: modalityColor,
    },
  },
})

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

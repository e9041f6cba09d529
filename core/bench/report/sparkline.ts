/**
 * Terminal summary: one line per configuration with a Unicode sparkline of its memory figure.
 *
 * A long series is never cut into buckets of steps drawn as max/min pairs: such buckets rarely
 * hold a whole number of cycles, and every ratio then prints the same `█▁█▁` zigzag, a period the
 * run does not have. A line says which picture it draws:
 * - `steps`: the series fits, one character per measured step (`████████▁████████▁…` for 8:1);
 * - `cycle … trend …`: one representative whole cycle (`ConfigResult.memoryCycle`: the median at
 *   each position over the run's whole cycles) and the trend (the peak of each group of whole
 *   cycles, one character per group);
 * - `peaks`: a version-1 results file without the cycle profile: the peak of each group of
 *   steps, one character per group (a trend, no period).
 * All on the configuration's trough (▁) .. peak (█) scale.
 */
import { formatBytes, formatMs, formatNumber, formatPercent, MISSING } from "../../common/index.ts"
import type { CycleProfile } from "../cycle-profile.ts"
import type { ConfigResult, SweepResults } from "../results.ts"
import { abortShort } from "../target.ts"
import { commonMemoryFigure, memoryFigureText } from "./tables.ts"

const BARS = "▁▂▃▄▅▆▇█"

interface Scale {
  readonly lo: number
  readonly hi: number
}

const extentOf = (values: ReadonlyArray<number>): Scale => {
  let lo = Number.POSITIVE_INFINITY
  let hi = Number.NEGATIVE_INFINITY
  for (const v of values) {
    if (!Number.isFinite(v)) continue
    lo = Math.min(lo, v)
    hi = Math.max(hi, v)
  }
  return { lo, hi }
}

const barOf =
  ({ lo, hi }: Scale) =>
  (v: number): string => {
    const span = hi - lo
    return BARS[
      span === 0 ? 0 : Math.max(0, Math.min(BARS.length - 1, Math.floor(((v - lo) / span) * BARS.length)))
    ]!
  }

/** Consecutive groups of `k` values, each replaced by its max. */
const groupMax = (values: ReadonlyArray<number>, k: number): number[] => {
  const out: number[] = []
  for (let i = 0; i < values.length; i += k) {
    let m = Number.NEGATIVE_INFINITY
    for (let j = i; j < Math.min(i + k, values.length); j++) m = Math.max(m, values[j]!)
    out.push(m)
  }
  return out
}

/**
 * `values` in at most `width` characters, on a scale from `scale.lo` (▁) to `scale.hi` (█), by
 * default the series' min and max; a flat series prints ▁ throughout. A series that fits gets one
 * character per value; a longer one is cut into groups of consecutive values, each drawn as its
 * max: one character per group, so the line shows a trend, never a max/min zigzag.
 */
export const sparkline = (values: ReadonlyArray<number>, width = 48, scale?: Scale): string => {
  const finite = values.filter(Number.isFinite)
  if (finite.length === 0 || width < 1) return ""
  const bar = barOf(scale ?? extentOf(finite))
  const shown = finite.length <= width ? finite : groupMax(finite, Math.ceil(finite.length / width))
  return shown.map(bar).join("")
}

export interface SparklineWidths {
  /** Characters for a series drawn one per step (`steps`). */
  readonly steps: number
  /** At most this many characters for the representative cycle. */
  readonly cycle: number
  /** At most this many characters for the trend. */
  readonly trend: number
}

export const DEFAULT_WIDTHS: SparklineWidths = { steps: 48, cycle: 17, trend: 24 }

/** One cycle of the profile; a cycle longer than `width` is drawn as groups of positions (max). */
export const cycleSparkline = (p: CycleProfile, width: number, scale: Scale): string =>
  sparkline(p.medianBytes, width, scale)

/** The trend: whole stored buckets merged (max) to fit `width`, so each character is whole cycles. */
export const trendSparkline = (
  p: CycleProfile,
  width: number,
  scale: Scale,
): { readonly line: string; readonly cyclesPerChar: number } => {
  const k = Math.max(1, Math.ceil(p.peakBytes.length / width))
  return { line: groupMax(p.peakBytes, k).map(barOf(scale)).join(""), cyclesPerChar: k * p.cyclesPerBucket }
}

/** The picture of one configuration's memory, saying which picture it is (see the module comment). */
export const memoryPicture = (c: ConfigResult, widths: SparklineWidths = DEFAULT_WIDTHS): string => {
  if (c.aborted && c.series.step.length === 0) return `aborted (${abortShort(c.aborted)})`
  const values = c.series.memBytes
  if (values.length === 0) return "no memory sampled"
  const scale = c.memory ? { lo: c.memory.trough, hi: c.memory.peak } : extentOf(values)
  if (c.series.sourceSteps <= widths.steps && values.length === c.series.sourceSteps)
    return `steps ${sparkline(values, widths.steps, scale)}`
  const p = c.memoryCycle
  if (p) {
    const cycle = cycleSparkline(p, widths.cycle, scale)
    const trend = trendSparkline(p, widths.trend, scale)
    return `cycle ${cycle.padEnd(widths.cycle)} ×${String(p.cycles).padEnd(5)} trend ${trend.line}`
  }
  return `peaks ${sparkline(values, widths.steps, scale)}`
}

/** One line per config: label, memory picture, peak, swing, cv, samples/s, p99 per modality. */
export const sparklines = (
  results: SweepResults,
  options: { readonly widths?: SparklineWidths } = {},
): string => {
  const widths = options.widths ?? DEFAULT_WIDTHS
  const labelWidth = Math.max(0, ...results.configs.map((c) => c.label.length))
  const pictures = results.configs.map((c) => memoryPicture(c, widths))
  const pictureWidth = Math.max(0, ...pictures.map((p) => [...p].length))
  const common = commonMemoryFigure(results)
  const lines = results.configs.map((c, i) => {
    const picture = pictures[i]!
    const pad = " ".repeat(pictureWidth - [...picture].length)
    if (c.aborted && c.steps === 0) return [c.label.padEnd(labelWidth), picture].join("  ")
    const m = c.memory
    return [
      c.label.padEnd(labelWidth),
      picture + pad,
      `peak ${formatBytes(m?.peak)}`,
      `swing mean ${formatBytes(m?.swing?.mean)}`,
      `cv ${formatPercent(m?.cv)}`,
      ...(common ? [] : [`[${memoryFigureText(c)}]`]),
      `${formatNumber(c.throughput.samplesPerSec)} samples/s`,
      `p99 V ${c.latency.visual ? formatMs(c.latency.visual.p99) : MISSING}`,
      `T ${c.latency.text ? formatMs(c.latency.text.p99) : MISSING}`,
    ].join("  ")
  })
  const what = common ? `memory [${common}]` : "memory [each config's figure in brackets]"
  return [
    `${results.name}: ${what} over the measured steps, ${results.configs.length} configs; ▁ = the config's trough, █ = its peak`,
    `  steps: one character per step; cycle: one whole cycle, the median at each position over the ×N whole cycles; trend: the peak of each group of whole cycles, in step order`,
    ...lines,
  ].join("\n")
}

/** Terminal summary: one line per configuration with a Unicode sparkline of memory over steps. */
import { formatBytes, formatMs, formatNumber, formatPercent, MISSING } from "../../common/index.ts"
import type { SweepResults } from "../results.ts"

const BARS = "▁▂▃▄▅▆▇█"

/**
 * `values` in at most `width` characters, on a scale from the series' min (▁) to its max (█); a flat
 * series prints ▁ throughout. A series that fits gets one character per value, so an 8:1 run reads
 * "███████▁███…". A longer one is cut into width/2 consecutive buckets, each drawn as two characters,
 * its max then its min: the envelope keeps both the visual peaks and the text dips visible, which a
 * plain average or stride would smooth away.
 */
export const sparkline = (values: ReadonlyArray<number>, width = 48): string => {
  const finite = values.filter(Number.isFinite)
  if (finite.length === 0 || width < 1) return ""
  let lo = Number.POSITIVE_INFINITY
  let hi = Number.NEGATIVE_INFINITY
  for (const v of finite) {
    lo = Math.min(lo, v)
    hi = Math.max(hi, v)
  }
  const span = hi - lo
  const bar = (v: number): string =>
    BARS[span === 0 ? 0 : Math.min(BARS.length - 1, Math.floor(((v - lo) / span) * BARS.length))]!
  if (finite.length <= width) return finite.map(bar).join("")
  const buckets = Math.max(1, Math.floor(width / 2))
  let out = ""
  for (let b = 0; b < buckets; b++) {
    const from = Math.floor((b * finite.length) / buckets)
    const to = Math.floor(((b + 1) * finite.length) / buckets)
    let max = Number.NEGATIVE_INFINITY
    let min = Number.POSITIVE_INFINITY
    for (let i = from; i < to; i++) {
      max = Math.max(max, finite[i]!)
      min = Math.min(min, finite[i]!)
    }
    out += bar(max) + bar(min)
  }
  return out
}

/** One line per config: label, memory sparkline, peak, swing, cv, samples/s, p99 per modality. */
export const sparklines = (results: SweepResults, options: { readonly width?: number } = {}): string => {
  const width = options.width ?? 48
  const labelWidth = Math.max(0, ...results.configs.map((c) => c.label.length))
  const lines = results.configs.map((c) => {
    const line = sparkline(c.series.memBytes, width).padEnd(width, " ")
    const m = c.memory
    return [
      c.label.padEnd(labelWidth),
      line,
      `peak ${formatBytes(m?.peak)}`,
      `swing ${formatBytes(m?.swing?.mean)}`,
      `cv ${formatPercent(m?.cv)}`,
      `${formatNumber(c.throughput.samplesPerSec)} samples/s`,
      `p99 V ${c.latency.visual ? formatMs(c.latency.visual.p99) : MISSING}`,
      `T ${c.latency.text ? formatMs(c.latency.text.p99) : MISSING}`,
    ].join("  ")
  })
  return [`${results.name}: memory over steps (${results.configs.length} configs)`, ...lines].join("\n")
}

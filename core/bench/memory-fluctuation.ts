/**
 * Memory fluctuation of an interleaved run: how far memory swings between the heavier visual steps
 * and the lighter text steps. Defined once here (the type is derived from the Schema the results
 * file uses); every report and the terminal read these fields.
 */
import { Schema } from "effect"
import { mean, median } from "../common/index.ts"
import type { Modality } from "../schedule/index.ts"

export const ModalityMemory = Schema.Struct({
  count: Schema.NonNegativeInt,
  peak: Schema.Finite,
  trough: Schema.Finite,
  mean: Schema.Finite,
})

/**
 * Memory fluctuation of a run, in bytes. With x_1..x_n the bytes of the n samples:
 * - `peak` = max x, `trough` = min x, `range` = peak - trough, `mean` = (1/n) Σ x, `median` = type-7 median.
 * - `cv`: coefficient of variation with the POPULATION standard deviation, sqrt((1/n) Σ (x - mean)²) / mean
 *   (the series is the whole run, not a sample of one); null when the mean is 0.
 * - `peakToMedian` = peak / median; null when the median is 0.
 * - `swing`: per-cycle swing. A cycle is each (phase, cycle) pair when every sample carries both;
 *   otherwise, in step order, a maximal block of visual steps together with the block of text steps
 *   that follows it (text steps before the first visual block form a text-only cycle).
 *   Swing of a cycle = max bytes over its visual steps - min bytes over its text steps (may be negative
 *   when text steps are the heavier ones). Cycles lacking either modality are skipped. `swing` holds
 *   the number of cycles used, the mean and the max swing over them; null when no cycle qualifies.
 * - `byModality`: peak, trough and mean over each modality's samples (absent when it has none).
 */
export const MemoryFluctuation = Schema.Struct({
  count: Schema.NonNegativeInt,
  peak: Schema.Finite,
  trough: Schema.Finite,
  range: Schema.Finite,
  mean: Schema.Finite,
  median: Schema.Finite,
  cv: Schema.NullOr(Schema.Finite),
  peakToMedian: Schema.NullOr(Schema.Finite),
  swing: Schema.NullOr(
    Schema.Struct({ cycles: Schema.NonNegativeInt, mean: Schema.Finite, max: Schema.Finite }),
  ),
  byModality: Schema.Struct({
    visual: Schema.optional(ModalityMemory),
    text: Schema.optional(ModalityMemory),
  }),
})
export type MemoryFluctuation = typeof MemoryFluctuation.Type

/** One memory sample, taken after a step. */
export interface MemoryPoint {
  readonly step: number
  readonly modality: Modality
  readonly bytes: number
  /** Phase name and cycle index from the plan; when both are given, cycles are (phase, cycle) pairs. */
  readonly phase?: string | undefined
  readonly cycle?: number | undefined
}

/** [min, max] by a loop: spreading a long series into Math.max overflows the stack. */
const extent = (values: ReadonlyArray<number>): [number, number] => {
  let lo = Number.POSITIVE_INFINITY
  let hi = Number.NEGATIVE_INFINITY
  for (const v of values) {
    if (v < lo) lo = v
    if (v > hi) hi = v
  }
  return [lo, hi]
}

const modalityMemory = (bytes: ReadonlyArray<number>): typeof ModalityMemory.Type | undefined => {
  if (bytes.length === 0) return undefined
  const [trough, peak] = extent(bytes)
  return { count: bytes.length, peak, trough, mean: mean(bytes) }
}

/** Groups samples (already in step order) into cycles, as `MemoryFluctuation.swing` defines. */
export const cyclesOf = <P extends MemoryPoint>(
  ordered: ReadonlyArray<P>,
): ReadonlyArray<ReadonlyArray<P>> => {
  const labelled = ordered.every((s) => s.phase !== undefined && s.cycle !== undefined)
  if (labelled) {
    const groups = new Map<string, P[]>()
    for (const s of ordered) {
      const key = JSON.stringify([s.phase, s.cycle])
      const g = groups.get(key)
      if (g) g.push(s)
      else groups.set(key, [s])
    }
    return [...groups.values()]
  }
  const cycles: P[][] = []
  let current: P[] = []
  let prev: Modality | undefined
  for (const s of ordered) {
    // A visual step after a text step opens a new cycle.
    if (s.modality === "visual" && prev === "text") {
      cycles.push(current)
      current = []
    }
    current.push(s)
    prev = s.modality
  }
  if (current.length > 0) cycles.push(current)
  return cycles
}

/** Memory fluctuation of a per-step series (see `MemoryFluctuation`); undefined for an empty series. */
export const memoryFluctuation = (series: ReadonlyArray<MemoryPoint>): MemoryFluctuation | undefined => {
  const n = series.length
  if (n === 0) return undefined
  const ordered = [...series].sort((a, b) => a.step - b.step)
  const bytes = ordered.map((s) => s.bytes)
  const [trough, peak] = extent(bytes)
  const m = mean(bytes)
  let ss = 0
  for (const b of bytes) ss += (b - m) ** 2
  const populationSd = Math.sqrt(ss / n)
  const med = median(bytes)

  const swings: number[] = []
  for (const cycle of cyclesOf(ordered)) {
    let visualPeak = Number.NEGATIVE_INFINITY
    let textTrough = Number.POSITIVE_INFINITY
    for (const s of cycle) {
      if (s.modality === "visual") visualPeak = Math.max(visualPeak, s.bytes)
      else textTrough = Math.min(textTrough, s.bytes)
    }
    if (visualPeak !== Number.NEGATIVE_INFINITY && textTrough !== Number.POSITIVE_INFINITY)
      swings.push(visualPeak - textTrough)
  }

  const visual = modalityMemory(ordered.filter((s) => s.modality === "visual").map((s) => s.bytes))
  const text = modalityMemory(ordered.filter((s) => s.modality === "text").map((s) => s.bytes))
  return {
    count: n,
    peak,
    trough,
    range: peak - trough,
    mean: m,
    median: med,
    cv: m === 0 ? null : populationSd / m,
    peakToMedian: med === 0 ? null : peak / med,
    swing: swings.length === 0 ? null : { cycles: swings.length, mean: mean(swings), max: extent(swings)[1] },
    byModality: { ...(visual ? { visual } : {}), ...(text ? { text } : {}) },
  }
}

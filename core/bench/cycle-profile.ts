/**
 * The memory of a run folded onto its schedule's cycle, for pictures that must not invent a period
 * (results.json's `memoryCycle`; the terminal sparkline draws it).
 *
 * A long series cut into equal buckets of steps aliases: with buckets that do not hold a whole
 * number of cycles, an 8:1 run, a 4:1 run and a 1:1 run all draw the same max/min zigzag. Here
 * the unit is the cycle instead. With the cycles grouped as `MemoryFluctuation.swing` groups them
 * ((phase, cycle) pairs from the plan, else a visual block and the text block after it, and one
 * step per cycle when the run has one modality only):
 * - the *whole* cycles are those with the run's most common modality sequence (the partial
 *   cycle a warm-up cuts, or a phase end, is left out);
 * - `medianBytes[p]` is the median, over the whole cycles, of the bytes at position p: one
 *   representative cycle, `modality[p]` its modality;
 * - `peakBytes[b]` is the peak of bucket b, a run of `cyclesPerBucket` consecutive whole cycles
 *   (the last bucket may hold fewer): the trend over the run, one value per bucket, never a
 *   bucket's max next to its min.
 */
import { Schema } from "effect"
import { median } from "../common/statistics.ts"
import { Modality } from "../schedule/index.ts"
import { cyclesOf, type MemoryPoint } from "./memory-fluctuation.ts"

/** At most this many trend buckets are stored; a picture merges whole buckets to fit its width. */
export const MAX_TREND_BUCKETS = 240

export const CycleProfile = Schema.Struct({
  /** Whole cycles the profile is made of. */
  cycles: Schema.Int.pipe(Schema.positive()),
  /** Modality at each position of the cycle, in step order. */
  modality: Schema.Array(Modality),
  /** Median bytes at each position over the whole cycles. */
  medianBytes: Schema.Array(Schema.Finite),
  cyclesPerBucket: Schema.Int.pipe(Schema.positive()),
  /** Peak bytes of each bucket of `cyclesPerBucket` consecutive whole cycles, in step order. */
  peakBytes: Schema.Array(Schema.Finite),
}).pipe(
  Schema.filter(
    (p) =>
      (p.modality.length === p.medianBytes.length && p.modality.length > 0) ||
      "modality and medianBytes must have the same, non-zero length",
  ),
)
export type CycleProfile = typeof CycleProfile.Type

/** The run's memory folded onto its cycle (see the module comment); undefined with no whole cycle. */
export const cycleProfile = (
  series: ReadonlyArray<MemoryPoint>,
  maxBuckets = MAX_TREND_BUCKETS,
): CycleProfile | undefined => {
  const ordered = [...series].sort((a, b) => a.step - b.step)
  if (ordered.length === 0) return undefined
  const oneModality = ordered.every((s) => s.modality === ordered[0]!.modality)
  const groups: ReadonlyArray<ReadonlyArray<MemoryPoint>> = oneModality
    ? ordered.map((s) => [s])
    : cyclesOf(ordered)
  const signature = (g: ReadonlyArray<MemoryPoint>) =>
    g.map((s) => (s.modality === "visual" ? "v" : "t")).join("")
  const counts = new Map<string, number>()
  for (const g of groups) counts.set(signature(g), (counts.get(signature(g)) ?? 0) + 1)
  let best: string | undefined
  for (const [sig, n] of counts)
    if (best === undefined || n > counts.get(best)! || (n === counts.get(best)! && sig.length > best.length))
      best = sig
  const whole = groups.filter((g) => signature(g) === best)
  if (whole.length === 0) return undefined
  const length = whole[0]!.length
  const medianBytes = Array.from({ length }, (_, p) => median(whole.map((g) => g[p]!.bytes)))
  const cyclesPerBucket = Math.max(1, Math.ceil(whole.length / maxBuckets))
  const peakBytes: number[] = []
  for (let start = 0; start < whole.length; start += cyclesPerBucket) {
    let peak = Number.NEGATIVE_INFINITY
    for (const g of whole.slice(start, start + cyclesPerBucket))
      for (const s of g) peak = Math.max(peak, s.bytes)
    peakBytes.push(peak)
  }
  return {
    cycles: whole.length,
    modality: whole[0]!.map((s) => s.modality),
    medianBytes,
    cyclesPerBucket,
    peakBytes,
  }
}

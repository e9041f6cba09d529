/**
 * Step times of a run, folded step by step in bounded memory: count, total, min, max, and a
 * histogram with logarithmic buckets (each 1% wide) from which p50 and p99 are read to within 1%.
 * Deterministic, so a replayed log gives the same figures as the live run.
 */

/** Bucket i holds durations in [BASE^i, BASE^(i+1)) ms; non-positive durations go to `zeros`. */
const BASE = 1.01
const LOG_BASE = Math.log(BASE)

export interface StepTimes {
  count: number
  totalMs: number
  minMs: number
  maxMs: number
  zeros: number
  /** Bucket index -> count. */
  readonly buckets: Map<number, number>
}

export const emptyStepTimes = (): StepTimes => ({
  count: 0,
  totalMs: 0,
  minMs: Number.POSITIVE_INFINITY,
  maxMs: Number.NEGATIVE_INFINITY,
  zeros: 0,
  buckets: new Map(),
})

export const copyStepTimes = (t: StepTimes): StepTimes => ({ ...t, buckets: new Map(t.buckets) })

export const addStepTime = (t: StepTimes, ms: number): void => {
  t.count++
  t.totalMs += ms
  if (ms < t.minMs) t.minMs = ms
  if (ms > t.maxMs) t.maxMs = ms
  if (!(ms > 0)) {
    t.zeros++
    return
  }
  const i = Math.floor(Math.log(ms) / LOG_BASE)
  t.buckets.set(i, (t.buckets.get(i) ?? 0) + 1)
}

/** The q-quantile (nearest rank over the histogram), within 1%; undefined with no steps. */
export const stepTimeQuantile = (t: StepTimes, q: number): number | undefined => {
  if (t.count === 0) return undefined
  const rank = Math.max(1, Math.ceil(q * t.count))
  if (rank <= t.zeros) return 0
  let seen = t.zeros
  const keys = [...t.buckets.keys()].sort((a, b) => a - b)
  for (const k of keys) {
    seen += t.buckets.get(k)!
    if (seen >= rank) {
      // The bucket's geometric middle, clamped to what was seen.
      const mid = BASE ** (k + 0.5)
      return Math.min(t.maxMs, Math.max(t.minMs, mid))
    }
  }
  return t.maxMs
}

/** What a report shows of a run's step times; percentiles only where there are enough steps. */
export interface StepTimeSummary {
  readonly count: number
  readonly totalMs: number
  readonly meanMs: number | undefined
  readonly p50Ms: number | undefined
  readonly p99Ms: number | undefined
  readonly minMs: number | undefined
  readonly maxMs: number | undefined
}

/** p50 needs 5 steps to mean anything, p99 needs 100. */
export const summarizeStepTimes = (t: StepTimes): StepTimeSummary => ({
  count: t.count,
  totalMs: t.totalMs,
  meanMs: t.count > 0 ? t.totalMs / t.count : undefined,
  p50Ms: t.count >= 5 ? stepTimeQuantile(t, 0.5) : undefined,
  p99Ms: t.count >= 100 ? stepTimeQuantile(t, 0.99) : undefined,
  minMs: t.count > 0 ? t.minMs : undefined,
  maxMs: t.count > 0 ? t.maxMs : undefined,
})

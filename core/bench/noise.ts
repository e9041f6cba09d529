/**
 * When a latency number should not be trusted as it stands, defined once (pure); the terminal
 * table and both reports mark it and print the same warning lines, as hyperfine and
 * pytest-benchmark warn about few samples and outliers.
 *
 * A modality's step latency (tinybench statistics, ms) is flagged when any of:
 * - few samples: n < `minSamples` (10);
 * - a wide margin: rme > `maxRmePct` (10%: the 95% confidence interval of the mean is wider
 *   than ±10% of it);
 * - outliers dominate: max > `maxOverMedian` (3) × median, or more than `outlierShare` (5%)
 *   of the samples lie beyond the outlier fence. The fence is median + max(3·MAD, 1% of the
 *   median), MAD the median absolute deviation; the 1% floor keeps a deterministic series
 *   (MAD 0, as the sim's) from calling every step that differs by a rounding an outlier. For
 *   normal data about 2% of the samples lie beyond median + 3·MAD.
 *
 * Across ratios: within one sweep, the same step (same target, batch size and modality) should
 * take the same time whatever the ratio. When two configurations' means differ by more than both
 * their noise (the combined 95% margins of error) and by more than `crossRatioPct` (10%) of
 * the smaller, a note names both.
 */
import { formatMs, formatNumber, groupThousands, type Statistics } from "../common/index.ts"
import type { Modality } from "../schedule/index.ts"
import type { ConfigResult, SweepResults } from "./results.ts"
import { ratioLabel, targetKey, targetText } from "./target.ts"

export const NOISE_LIMITS = {
  minSamples: 10,
  maxRmePct: 10,
  maxOverMedian: 3,
  outlierShare: 0.05,
  crossRatioPct: 10,
} as const

/** Why a modality's latency is noisy, in words; empty when it is not. */
export const noiseReasons = (s: Statistics, outliers: number | undefined): ReadonlyArray<string> => {
  const reasons: string[] = []
  const n = s.samplesCount
  if (n < NOISE_LIMITS.minSamples) reasons.push(`only n=${n} steps (< ${NOISE_LIMITS.minSamples})`)
  if (!(s.rme <= NOISE_LIMITS.maxRmePct)) reasons.push(`rme ${rmeText(s)} (> ${NOISE_LIMITS.maxRmePct}%)`)
  if (s.max > NOISE_LIMITS.maxOverMedian * s.p50)
    reasons.push(`max ${formatMs(s.max)} > ${NOISE_LIMITS.maxOverMedian}× median ${formatMs(s.p50)}`)
  if (outliers !== undefined && n > 0 && outliers / n > NOISE_LIMITS.outlierShare)
    reasons.push(
      `${outliers} of ${n} steps beyond median + 3·MAD (> ${NOISE_LIMITS.outlierShare * 100}% outliers)`,
    )
  return reasons
}

export interface NoiseWarning {
  readonly config: string
  readonly modality: Modality
  readonly reasons: ReadonlyArray<string>
}

const MODALITIES = ["visual", "text"] as const

export const isNoisy = (c: ConfigResult, m: Modality): boolean => {
  const s = c.latency[m]
  return s !== undefined && noiseReasons(s, c.latencyOutliers?.[m]).length > 0
}

/** One warning per configuration and modality whose latency is noisy, in results order. */
export const noiseWarnings = (results: SweepResults): ReadonlyArray<NoiseWarning> =>
  results.configs.flatMap((c) =>
    MODALITIES.flatMap((modality) => {
      const s = c.latency[modality]
      const reasons = s ? noiseReasons(s, c.latencyOutliers?.[modality]) : []
      return reasons.length > 0 ? [{ config: c.id, modality, reasons }] : []
    }),
  )

/** `warning: ID text latency: mean 38.3 ms ±82% (n=4): only n=4 steps (< 10), ...`. */
export const noiseWarningText = (results: SweepResults, w: NoiseWarning): string => {
  const s = results.configs.find((c) => c.id === w.config)?.latency[w.modality]
  const what = s ? `mean ${formatMs(s.mean)} ${rmeText(s)} (n=${s.samplesCount})` : ""
  return `${w.config} ${w.modality} step latency ${what}: ${w.reasons.join(", ")}`
}

/** `±0.3%`, `±62%`, `±∞%`. */
/** Said once after the warnings. */
export const NOISE_HINT =
  "hint: treat the noisy figures as rough; more measured steps (the sweep's measuredSteps) or a quieter machine narrow them"

export const rmeText = (s: Statistics): string =>
  `±${Number.isFinite(s.rme) ? (s.rme < 10 ? s.rme.toFixed(1) : groupThousands(Math.round(s.rme))) : "∞"}%`

export interface CrossRatioNote {
  readonly modality: Modality
  readonly target: string
  readonly batch: string
  /** The configurations with the lowest and the highest mean. */
  readonly low: { readonly config: string; readonly ratio: string; readonly stats: Statistics }
  readonly high: { readonly config: string; readonly ratio: string; readonly stats: Statistics }
}

/**
 * Per (target, batch, modality) over the sweep's completed configurations: the pair with the
 * lowest and highest mean step time, when they differ beyond noise (see the module comment).
 */
export const crossRatioNotes = (results: SweepResults): ReadonlyArray<CrossRatioNote> => {
  const groups = new Map<string, Array<{ c: ConfigResult; s: Statistics; m: Modality }>>()
  for (const c of results.configs) {
    if (c.aborted) continue
    for (const m of MODALITIES) {
      const s = c.latency[m]
      if (!s) continue
      const key = JSON.stringify([targetKey(c), c.batch.visual, c.batch.text, m])
      const g = groups.get(key) ?? []
      g.push({ c, s, m })
      groups.set(key, g)
    }
  }
  const notes: CrossRatioNote[] = []
  for (const g of groups.values()) {
    if (g.length < 2) continue
    let lo = g[0]!
    let hi = g[0]!
    for (const x of g) {
      if (x.s.mean < lo.s.mean) lo = x
      if (x.s.mean > hi.s.mean) hi = x
    }
    const diff = hi.s.mean - lo.s.mean
    if (diff > Math.hypot(lo.s.moe, hi.s.moe) && diff > (NOISE_LIMITS.crossRatioPct / 100) * lo.s.mean)
      notes.push({
        modality: lo.m,
        target: targetText(lo.c),
        batch: `${lo.c.batch.visual}/${lo.c.batch.text}`,
        low: { config: lo.c.id, ratio: ratioLabel(lo.c.ratio), stats: lo.s },
        high: { config: hi.c.id, ratio: ratioLabel(hi.c.ratio), stats: hi.s },
      })
  }
  return notes
}

/** `the visual step of sim h100 b16/8 takes 433 ms ±12% (n=68) in 16:1 (ID) but 214 ms ... (ID): +102%, ...` */
export const crossRatioText = (n: CrossRatioNote): string => {
  const side = (x: CrossRatioNote["low"]) =>
    `${formatMs(x.stats.mean)} ${rmeText(x.stats)} (n=${x.stats.samplesCount}) in ${x.ratio} (${x.config})`
  const pct = (100 * (n.high.stats.mean - n.low.stats.mean)) / n.low.stats.mean
  return `the ${n.modality} step of ${n.target} at batch ${n.batch} takes ${side(n.high)} but ${side(n.low)}: +${formatNumber(pct)}%, beyond both measurements' noise; the same step should not depend on the ratio (warm-up, allocator, caches, profiling or clocks?)`
}

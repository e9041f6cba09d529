/**
 * A SYNTHETIC quality model for the sim, so that ratio studies can be run and tested without a
 * trainer: per-modality "recall" derived deterministically from the schedule alone. It is not a
 * measurement and says nothing about any real model; every output that shows it says so.
 *
 * Each update step u of modality m adds to m's progress P_m:
 *   r_u = (lr_u / base lr) / best_m        the step's lr factor (warm-up x modality factor)
 *                                          relative to the modality's best factor
 *   g(r) = r * e^(1 - r)                   efficiency: 1 at the best factor, less either side
 *   a_k = min(1, (k + 1) / fragileUpdates) what the model tolerates at its k-th update (both
 *                                          modalities counted): early updates are fragile
 *   contribution = g(r_u) - instability * max(0, r_u - a_k)
 * so that a warm-up about `fragileUpdates` long pays off and a long one wastes steps, and a text
 * lr factor near `best.text` (0.5) beats 1. Recall of modality m after a step, with o the other:
 *   recall_m = chance + (ceiling_m - chance) * (1 - exp(-max(0, P_m + transfer * P_o) / scale_m))
 * rising with m's steps with diminishing returns, plus a cross-modal term (transfer). Step i's
 * value needs the plans of steps 0..i; a tracker keeps the sum so that evaluating every K steps
 * walks the run once.
 */
import type { EvalResult } from "../../core/run/index.ts"
import { groupBaseLrs, type Modality, makePlanner, type ScheduleSpec } from "../../core/schedule/index.ts"

export const SYNTHETIC_QUALITY = {
  metric: "synthetic-recall",
  chance: 0.05,
  ceiling: { visual: 0.85, text: 0.75 },
  scale: { visual: 600, text: 200 },
  transfer: 0.25,
  best: { visual: 1, text: 0.5 },
  fragileUpdates: 40,
  instability: 3,
} as const

/** What the metric is, in one line (the sim's info and every study report carry it). */
export const SYNTHETIC_QUALITY_NOTE =
  "synthetic-recall is SYNTHETIC (the sim's quality model, adapters/sim/synthetic-quality.ts): a deterministic function of the schedule (steps per modality, lr factor, warm-up), not a measurement of any model"

/** The model's efficiency at a relative lr factor r: r e^(1 - r). */
export const efficiency = (r: number): number => r * Math.exp(1 - r)

/** The contribution of an update with relative lr factor `r`, the k-th update of the run. */
export const contribution = (r: number, k: number): number => {
  const q = SYNTHETIC_QUALITY
  const tolerated = Math.min(1, (k + 1) / q.fragileUpdates)
  return efficiency(r) - q.instability * Math.max(0, r - tolerated)
}

/** Recall from the two modalities' progress. */
export const recallOf = (p: Readonly<Record<Modality, number>>): Record<Modality, number> => {
  const q = SYNTHETIC_QUALITY
  const one = (m: Modality, o: Modality) =>
    q.chance + (q.ceiling[m] - q.chance) * (1 - Math.exp(-Math.max(0, p[m] + q.transfer * p[o]) / q.scale[m]))
  return { visual: one("visual", "text"), text: one("text", "visual") }
}

export interface QualityTracker {
  /** The evaluation after `step` (undefined: before any step). */
  readonly at: (step: number | undefined) => EvalResult
}

/** A tracker over one spec: walks forward from the last step asked, restarts when asked earlier. */
export const makeQualityTracker = (spec: ScheduleSpec): QualityTracker => {
  const planner = makePlanner(spec)
  const base = groupBaseLrs(spec)
  const ref = Object.keys(base).find((g) => base[g]! > 0)
  let next = 0
  let updates = 0
  let progress = { visual: 0, text: 0 }
  const result = (): EvalResult => ({
    metric: SYNTHETIC_QUALITY.metric,
    values: recallOf(progress),
    chance: SYNTHETIC_QUALITY.chance,
  })
  return {
    at: (step) => {
      if (step === undefined) return { ...result(), values: recallOf({ visual: 0, text: 0 }) }
      if (step < next - 1) {
        next = 0
        updates = 0
        progress = { visual: 0, text: 0 }
      }
      for (; next <= step; next++) {
        const plan = planner.at(next)
        if (!plan.update) continue
        const factor = ref === undefined ? spec.lr.modalityFactor[plan.modality] : plan.lr[ref]! / base[ref]!
        const r = factor / SYNTHETIC_QUALITY.best[plan.modality]
        progress = { ...progress, [plan.modality]: progress[plan.modality] + contribution(r, updates) }
        updates++
      }
      return result()
    },
  }
}

/** The synthetic evaluation after `step` of `spec` (walks steps 0..step). */
export const syntheticQualityAt = (spec: ScheduleSpec, step: number): EvalResult =>
  makeQualityTracker(spec).at(step)

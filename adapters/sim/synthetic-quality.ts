/**
 * A SYNTHETIC quality model for the sim, so that ratio studies can be run and tested without a
 * trainer: per-modality "recall" derived deterministically from the schedule alone. It is not a
 * measurement and says nothing about any real model; every output that shows it says so.
 *
 * Each update step u of modality m adds to m's progress P_m:
 *   r_u = (lr_u / base lr) / best_m        the step's lr factor (warm-up x modality factor)
 *                                          relative to the modality's best factor
 *   g(r) = r * e^(1 - r)                   efficiency: 1 at the best factor, less either side
 *   contribution = g(r_u) - instability * max(0, r_u - (k + 1) / fragileUpdates)  for k < fragileUpdates
 *                = g(r_u)                                                        after
 * where k counts the run's updates (both modalities): the first `fragileUpdates` updates are
 * fragile, so a warm-up about that long pays off and a long one wastes steps, and a text lr
 * factor near `best.text` (0.5) beats 1. With own_m = 1 - exp(-max(0, P_m) / scale_m), the recall
 * of modality m after a step, o being the other modality:
 *   recall_m = chance + (ceiling_m - chance) * ((1 - cross) * own_m + cross * own_m * own_o)
 *              + noise * (ceiling_m - chance) * u(seed, step, m)
 * rising with m's steps with diminishing returns, plus a cross-modal term (the share `cross` of
 * the range needs both modalities trained: a visual-only run leaves text at chance, as T-Rex2's
 * ablation says), plus seeded noise u in [-1, 1) (a hash of seed, step and modality, so seeds
 * spread and the same inputs give the same bits). Step i's value needs the plans of steps 0..i;
 * a tracker keeps the sums so that evaluating every K steps walks the run once.
 */
import type { EvalResult } from "../../core/run/index.ts"
import { groupBaseLrs, type Modality, makePlanner, type ScheduleSpec } from "../../core/schedule/index.ts"
import { noiseAt } from "./synthetic-loss.ts"

export const SYNTHETIC_QUALITY = {
  metric: "synthetic-recall",
  chance: 0.05,
  ceiling: { visual: 0.85, text: 0.75 },
  scale: { visual: 600, text: 200 },
  cross: 0.25,
  noise: 0.004,
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
  if (k >= q.fragileUpdates) return efficiency(r)
  return efficiency(r) - q.instability * Math.max(0, r - (k + 1) / q.fragileUpdates)
}

/** Recall from the two modalities' progress, noise-free. */
export const recallOf = (p: Readonly<Record<Modality, number>>): Record<Modality, number> => {
  const q = SYNTHETIC_QUALITY
  const own = (m: Modality) => 1 - Math.exp(-Math.max(0, p[m]) / q.scale[m])
  const one = (m: Modality, o: Modality) =>
    q.chance + (q.ceiling[m] - q.chance) * ((1 - q.cross) * own(m) + q.cross * own(m) * own(o))
  return { visual: one("visual", "text"), text: one("text", "visual") }
}

/** Recall with the seeded noise of (seed, step). */
export const noisyRecallOf = (
  p: Readonly<Record<Modality, number>>,
  seed: number,
  step: number,
): Record<Modality, number> => {
  const q = SYNTHETIC_QUALITY
  const clean = recallOf(p)
  const at = (m: Modality, salt: number) =>
    clean[m] + q.noise * (q.ceiling[m] - q.chance) * noiseAt(seed, step, QUALITY_SALT + salt)
  return { visual: at("visual", 0), text: at("text", 1) }
}

/** Salts apart from the loss noise's (synthetic-loss.ts uses 0.. and 2^16..). */
const QUALITY_SALT = 0x5150

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
  const result = (step: number): EvalResult => ({
    metric: SYNTHETIC_QUALITY.metric,
    values: noisyRecallOf(progress, spec.seed, step),
    chance: SYNTHETIC_QUALITY.chance,
  })
  return {
    at: (step) => {
      if (step === undefined)
        return {
          metric: SYNTHETIC_QUALITY.metric,
          values: recallOf({ visual: 0, text: 0 }),
          chance: SYNTHETIC_QUALITY.chance,
        }
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
      return result(step)
    },
  }
}

/** The synthetic evaluation after `step` of `spec` (walks steps 0..step). */
export const syntheticQualityAt = (spec: ScheduleSpec, step: number): EvalResult =>
  makeQualityTracker(spec).at(step)

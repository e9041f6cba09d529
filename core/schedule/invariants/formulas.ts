/**
 * The rules' own reading of DESIGN.md's formulas ("Schedule invariants"), written apart from the
 * planner on purpose: if the checker reused plan.ts's helpers, a planner bug would be invisible to
 * both. Nothing here imports plan.ts; tests hold these and the planner to brute force.
 */
import type { Modality, Phase, ScheduleSpec } from "../spec.ts"

type PhaseShape = Pick<Phase, "ratio" | "order" | "offset">

/** DESIGN.md: phase step i is visual iff (i + offset) mod (V+T) < V (visual first), >= T (text first). */
export const expectedModality = (p: PhaseShape, i: number): Modality => {
  const { visual: v, text: t } = p.ratio
  const pos = (i + (p.offset ?? 0)) % (v + t)
  const visual = p.order === "text-first" ? pos >= t : pos < v
  return visual ? "visual" : "text"
}

/**
 * Visual steps among phase steps 0..n-1. Inside a cycle the visual positions are the interval
 * [a, a+V), a = 0 (visual first) or T (text first); so cycle positions 0..m-1 of an unshifted
 * phase hold G(m) = floor(m/c)*V + clamp(m mod c - a, 0, V), c = V+T. With offset o the phase's
 * steps 0..n-1 are the positions o..o+n-1: G(o + n) - G(o). For o = 0 this is DESIGN.md's
 * floor(N/c)*V + min(N mod c, V) (visual first) or + max(N mod c - T, 0) (text first).
 */
export const expectedVisualCount = (p: PhaseShape, n: number): number => {
  const { visual: v, text: t } = p.ratio
  const c = v + t
  const a = p.order === "text-first" ? t : 0
  const upTo = (m: number): number => Math.floor(m / c) * v + Math.min(Math.max((m % c) - a, 0), v)
  const o = p.offset ?? 0
  return upTo(o + n) - upTo(o)
}

/** The longest allowed run of one modality inside a phase; a zero side makes the other unbounded. */
export const maxRunOf = (p: PhaseShape, m: Modality): number => {
  const { visual: v, text: t } = p.ratio
  if (m === "visual") return t === 0 ? Number.POSITIVE_INFINITY : v
  return v === 0 ? Number.POSITIVE_INFINITY : t
}

/**
 * The factor on every group's base lr at global step `step`, before the modality factor.
 * Warm-up covers steps 0..w-1 and reaches 1 at w-1: linear from startFactor at step 0, or constant
 * at startFactor until w-1. After it, multistep multiplies by gamma at each milestone passed
 * (a milestone m applies from step m on); cosine falls from 1 at step w to `floor` at the run's
 * last step (a single step after warm-up stays at 1).
 */
export const expectedScheduleFactor = (spec: ScheduleSpec, step: number, total: number): number => {
  const warm = spec.lr.warmup
  const w = warm?.steps ?? 0
  if (warm !== undefined && step < w) {
    if (step === w - 1) return 1
    const s = warm.startFactor
    return warm.kind === "constant" ? s : s + (1 - s) * (step / (w - 1))
  }
  const d = spec.lr.decay
  if (d.kind === "multistep") {
    let f = 1
    for (const m of d.milestones) if (step >= m) f *= d.gamma
    return f
  }
  if (d.kind === "cosine") {
    const last = total - 1
    if (last <= w) return 1
    const progress = (step - w) / (last - w)
    return d.floor + ((1 - d.floor) * (1 + Math.cos(Math.PI * progress))) / 2
  }
  return 1
}

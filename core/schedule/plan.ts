/**
 * The planner: a pure function from (spec, global step index) to what that step does.
 *
 * Random access in O(log #phases): resume, fork and property tests never walk from step 0.
 */

import {
  groupBaseLrs,
  type Modality,
  type Phase,
  phaseOffset,
  type ScheduleSpec,
  totalSteps,
} from "./spec.ts"
import type { StepPlan } from "./step-plan.ts"

/** Whether phase step `i` is visual: DESIGN.md's rule on the cycle position (i + offset) mod (V+T). */
export type { StepPlan }

export const isVisualAt = (phase: Pick<Phase, "ratio" | "order" | "offset">, i: number): boolean => {
  const { visual: v, text: t } = phase.ratio
  const pos = (i + phaseOffset(phase)) % (v + t)
  return phase.order === "text-first" ? pos >= t : pos < v
}

/** Visual steps among the cycle positions 0..m-1 of an unshifted phase (DESIGN.md's closed formula). */
const visualBefore = (phase: Pick<Phase, "ratio" | "order">, m: number): number => {
  const { visual: v, text: t } = phase.ratio
  const c = v + t
  const rest = m % c
  return Math.floor(m / c) * v + (phase.order === "text-first" ? Math.max(rest - t, 0) : Math.min(rest, v))
}

/**
 * Visual steps in a phase of `steps` steps. With an offset o the phase covers cycle positions
 * o..o+N-1 of the unshifted pattern, so it holds F(N + o) - F(o) visual steps, F the closed formula.
 */
export const expectedVisualSteps = (phase: Pick<Phase, "ratio" | "order" | "steps" | "offset">): number => {
  const o = phaseOffset(phase)
  return visualBefore(phase, phase.steps + o) - visualBefore(phase, o)
}

/** The lr multiplier shared by every group at a global step (warm-up x decay), before modality factors. */
export const scheduleFactor = (spec: ScheduleSpec, step: number, total = totalSteps(spec)): number => {
  const warm = spec.lr.warmup
  const w = warm?.steps ?? 0
  if (warm && step < w) {
    if (step === w - 1) return 1
    return warm.kind === "linear"
      ? warm.startFactor + ((1 - warm.startFactor) * step) / (w - 1)
      : warm.startFactor
  }
  const decay = spec.lr.decay
  switch (decay.kind) {
    case "none":
      return 1
    case "multistep": {
      let passed = 0
      for (const m of decay.milestones) if (m <= step) passed++
      return decay.gamma ** passed
    }
    case "cosine": {
      const span = Math.max(1, total - w - 1)
      const t = Math.min(step - w, span)
      return decay.floor + (1 - decay.floor) * 0.5 * (1 + Math.cos((Math.PI * t) / span))
    }
  }
}

/** A spec with its prefix sums precomputed; `at(i)` is the planner. */
export interface Planner {
  readonly spec: ScheduleSpec
  readonly total: number
  /** Global index of each phase's first step. */
  readonly starts: ReadonlyArray<number>
  readonly at: (step: number) => StepPlan
}

export class StepOutOfRange extends RangeError {}

/** Index of the last phase starting at or before `step`, by binary search over phase starts. */
export const phaseIndexAt = (starts: ReadonlyArray<number>, step: number): number => {
  let lo = 0
  let hi = starts.length - 1
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1
    if (starts[mid]! <= step) lo = mid
    else hi = mid - 1
  }
  return lo
}

export const makePlanner = (spec: ScheduleSpec): Planner => {
  const starts: number[] = []
  let acc = 0
  for (const p of spec.phases) {
    starts.push(acc)
    acc += p.steps
  }
  const total = acc
  const base = groupBaseLrs(spec)
  const groups = Object.keys(base)

  const phaseIndexOf = (step: number): number => phaseIndexAt(starts, step)

  const at = (step: number): StepPlan => {
    if (!Number.isInteger(step) || step < 0 || step >= total)
      throw new StepOutOfRange(`step ${step} is outside the schedule (0..${total - 1})`)
    const pi = phaseIndexOf(step)
    const phase = spec.phases[pi]!
    const phaseStep = step - starts[pi]!
    const { visual: v, text: t } = phase.ratio
    const c = v + t
    const shifted = phaseStep + phaseOffset(phase)
    const cycle = Math.floor(shifted / c)
    const position = shifted % c
    const visual = isVisualAt(phase, phaseStep)
    const modality: Modality = visual ? "visual" : "text"

    // The same-modality block this step sits in; with a zero side the whole phase is one block.
    // An offset cuts the phase's first block short: it starts at the phase's first step.
    let blockStart: number
    let blockEnd: number
    if (v === 0 || t === 0) {
      blockStart = 0
      blockEnd = phase.steps
    } else {
      const visualFirst = phase.order !== "text-first"
      const blockStartInCycle = visual === visualFirst ? 0 : visualFirst ? v : t
      const unclipped = phaseStep - (position - blockStartInCycle)
      blockStart = Math.max(0, unclipped)
      blockEnd = Math.min(unclipped + (visual ? v : t), phase.steps)
    }
    const accumulation = spec.batch[modality].accumulation
    const micro = (phaseStep - blockStart) % accumulation
    const update = micro === accumulation - 1 || phaseStep === blockEnd - 1

    const factor = scheduleFactor(spec, step, total) * spec.lr.modalityFactor[modality]
    return { step, phase: phase.name, phaseStep, modality, cycle, position, micro, update, lr: lrFor(factor) }
  }

  // Long stretches of a schedule share one lr (constant phases, each modality): plans reuse one
  // frozen object per factor seen last, instead of a new object per step.
  const lrCache = new Map<number, Readonly<Record<string, number>>>()
  const lrFor = (factor: number): Readonly<Record<string, number>> => {
    let lr = lrCache.get(factor)
    if (lr === undefined) {
      const fresh: Record<string, number> = {}
      for (const g of groups) fresh[g] = base[g]! * factor
      lr = Object.freeze(fresh)
      if (lrCache.size >= 8) lrCache.clear()
      lrCache.set(factor, lr)
    }
    return lr
  }

  return { spec, total, starts, at }
}

const planners = new WeakMap<ScheduleSpec, Planner>()

/** `planStep(spec, i)`: random access to step `i` of the schedule. */
export const planStep = (spec: ScheduleSpec, step: number): StepPlan => {
  let p = planners.get(spec)
  if (!p) {
    p = makePlanner(spec)
    planners.set(spec, p)
  }
  return p.at(step)
}

/** Streams the plans of steps [from, from + count), clipped to the schedule. */
export function* planRange(
  spec: ScheduleSpec,
  from = 0,
  count = Number.POSITIVE_INFINITY,
): Generator<StepPlan> {
  const p = makePlanner(spec)
  const end = Math.min(p.total, from + count)
  for (let i = Math.max(0, from); i < end; i++) yield p.at(i)
}

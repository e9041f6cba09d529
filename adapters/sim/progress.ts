/**
 * Training progress at a step, in closed form: how many optimizer updates of each modality were
 * applied before step i, and whether step i follows a step of the other modality.
 *
 * Random access in O(1) after an O(#phases) precomputation, so the outcome of step i never
 * needs steps 0..i-1 (resume, fork and property tests stay cheap). The counting mirrors the
 * planner's block rule: inside an alternating phase each same-modality block is one
 * accumulation run (an update every A micro-steps and at the block's end); with a zero side
 * the whole phase is one block.
 */
import { isVisualAt, type Modality, type Phase, type ScheduleSpec } from "../../core/schedule/index.ts"

export interface PhaseProgress {
  readonly name: string
  readonly start: number
  readonly steps: number
  readonly v: number
  readonly t: number
  readonly textFirst: boolean
  readonly accV: number
  readonly accT: number
  /** Updates in one full cycle's visual / text block. */
  readonly cycleUpdV: number
  readonly cycleUpdT: number
  /** Updates of each modality in all earlier phases. */
  readonly beforeV: number
  readonly beforeT: number
  /** Modality of the step just before this phase (undefined for the first phase). */
  readonly prevModality: Modality | undefined
}

export interface ProgressIndex {
  readonly phases: ReadonlyArray<PhaseProgress>
  readonly byName: ReadonlyMap<string, PhaseProgress>
}

/** Updates made by a block of `len` micro-steps with accumulation `acc`. */
const blockUpdates = (len: number, acc: number): number => Math.ceil(len / acc)

/** Updates of each modality made by a whole phase. */
export const phaseUpdates = (
  phase: Pick<Phase, "steps" | "ratio" | "order">,
  accV: number,
  accT: number,
): { visual: number; text: number } => {
  const { visual: v, text: t } = phase.ratio
  const n = phase.steps
  if (t === 0) return { visual: blockUpdates(n, accV), text: 0 }
  if (v === 0) return { visual: 0, text: blockUpdates(n, accT) }
  const c = v + t
  const full = Math.floor(n / c)
  const rest = n % c
  const textFirst = phase.order === "text-first"
  const restV = textFirst ? Math.max(rest - t, 0) : Math.min(rest, v)
  const restT = textFirst ? Math.min(rest, t) : Math.max(rest - v, 0)
  return {
    visual: full * blockUpdates(v, accV) + blockUpdates(restV, accV),
    text: full * blockUpdates(t, accT) + blockUpdates(restT, accT),
  }
}

export const makeProgressIndex = (spec: ScheduleSpec): ProgressIndex => {
  const accV = spec.batch.visual.accumulation
  const accT = spec.batch.text.accumulation
  const phases: PhaseProgress[] = []
  let start = 0
  let beforeV = 0
  let beforeT = 0
  let prevModality: Modality | undefined
  for (const p of spec.phases) {
    const v = p.ratio.visual
    const t = p.ratio.text
    phases.push({
      name: p.name,
      start,
      steps: p.steps,
      v,
      t,
      textFirst: p.order === "text-first",
      accV,
      accT,
      cycleUpdV: blockUpdates(v, accV),
      cycleUpdT: blockUpdates(t, accT),
      beforeV,
      beforeT,
      prevModality,
    })
    const u = phaseUpdates(p, accV, accT)
    beforeV += u.visual
    beforeT += u.text
    start += p.steps
    prevModality = isVisualAt(p, p.steps - 1) ? "visual" : "text"
  }
  return { phases, byName: new Map(phases.map((p) => [p.name, p])) }
}

/** Visual updates applied before phase step `s` (steps [start, start + s) of the phase). */
export const visualUpdatesBefore = (p: PhaseProgress, s: number): number => {
  if (p.v === 0) return p.beforeV
  if (p.t === 0) return p.beforeV + Math.floor(s / p.accV)
  const c = p.v + p.t
  const cycle = Math.floor(s / c)
  const pos = s - cycle * c
  let inCycle: number
  if (p.textFirst) inCycle = pos < p.t ? 0 : Math.floor((pos - p.t) / p.accV)
  else inCycle = pos < p.v ? Math.floor(pos / p.accV) : p.cycleUpdV
  return p.beforeV + cycle * p.cycleUpdV + inCycle
}

/** Text updates applied before phase step `s`. */
export const textUpdatesBefore = (p: PhaseProgress, s: number): number => {
  if (p.t === 0) return p.beforeT
  if (p.v === 0) return p.beforeT + Math.floor(s / p.accT)
  const c = p.v + p.t
  const cycle = Math.floor(s / c)
  const pos = s - cycle * c
  let inCycle: number
  if (p.textFirst) inCycle = pos < p.t ? Math.floor(pos / p.accT) : p.cycleUpdT
  else inCycle = pos < p.v ? 0 : Math.floor((pos - p.v) / p.accT)
  return p.beforeT + cycle * p.cycleUpdT + inCycle
}

/** Whether phase step `s` (of modality `modality`) follows a step of the other modality. */
export const followsSwitch = (p: PhaseProgress, s: number, modality: Modality): boolean => {
  if (s === 0) return p.prevModality !== undefined && p.prevModality !== modality
  if (p.v === 0 || p.t === 0) return false
  const pos = s % (p.v + p.t)
  // A block starts at position 0 and where the second modality's block begins.
  return pos === 0 || pos === (p.textFirst ? p.t : p.v)
}

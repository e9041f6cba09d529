/**
 * Training progress at a step, in closed form: how many optimizer updates of each modality were
 * applied before step i, whether step i follows a step of the other modality, and the first step
 * of each modality in the run.
 *
 * Random access in O(1) after an O(#phases) precomputation, so the outcome of step i never
 * needs steps 0..i-1 (resume, fork and property tests stay cheap). The counting follows the
 * planner's block rule (core/schedule/plan.ts): phase step s sits at cycle position
 * x = s + offset; inside an alternating phase each same-modality block of cycle positions
 * [k(V+T) + b0, k(V+T) + b0 + L) is one accumulation run, clipped to the phase (an offset cuts the
 * first block short, the phase's end the last one), with an update every A micro-steps and at
 * the block's end; with a zero side the whole phase is one block.
 */
import {
  isVisualAt,
  type Modality,
  type Phase,
  phaseOffset,
  type ScheduleSpec,
} from "../../core/schedule/index.ts"

/** Where one modality's blocks sit in a phase's cycle positions. */
interface Blocks {
  /** Cycle length V+T. */
  readonly c: number
  /** First cycle position of the modality's block in a cycle. */
  readonly b0: number
  /** Block length: the modality's side of the ratio. */
  readonly len: number
  readonly acc: number
}

export interface PhaseProgress {
  readonly name: string
  readonly start: number
  readonly steps: number
  readonly v: number
  readonly t: number
  readonly textFirst: boolean
  readonly offset: number
  readonly visual: Blocks
  readonly text: Blocks
  /** Updates of each modality in all earlier phases. */
  readonly beforeV: number
  readonly beforeT: number
  /** Modality of the step just before this phase (undefined for the first phase). */
  readonly prevModality: Modality | undefined
}

export interface ProgressIndex {
  readonly phases: ReadonlyArray<PhaseProgress>
  readonly byName: ReadonlyMap<string, PhaseProgress>
  /** Global index of the run's first step of each modality (undefined: the run has none). */
  readonly firstStep: { readonly visual: number | undefined; readonly text: number | undefined }
}

type PhaseShape = Pick<Phase, "steps" | "ratio" | "order" | "offset">

const blocksOf = (p: PhaseShape, m: Modality, acc: number): Blocks => {
  const { visual: v, text: t } = p.ratio
  const c = v + t
  const visualFirst = p.order !== "text-first"
  const len = m === "visual" ? v : t
  // With a zero side the whole phase is one block: one "cycle" as long as the phase.
  if (v === 0 || t === 0) return { c: Number.POSITIVE_INFINITY, b0: 0, len: len === 0 ? 0 : Infinity, acc }
  const b0 = (m === "visual") === visualFirst ? 0 : visualFirst ? v : t
  return { c, b0, len, acc }
}

/**
 * Updates made at cycle positions [o, x) by the modality's blocks, each block clipped to the
 * phase's positions [o, end).
 */
const updatesBetween = (b: Blocks, o: number, end: number, x: number): number => {
  if (b.len === 0 || x <= o) return 0
  // A block's updates before position `upTo`: every `acc` micro-steps, plus the block's end.
  const ofBlock = (k: number, upTo: number): number => {
    const first = k === 0 ? b.b0 : k * b.c + b.b0
    const start = Math.max(o, first)
    const stop = Math.min(first + b.len, end)
    if (stop <= start || start >= upTo) return 0
    return stop <= upTo ? Math.ceil((stop - start) / b.acc) : Math.floor((upTo - start) / b.acc)
  }
  if (!Number.isFinite(b.c)) return ofBlock(0, x)
  if (x <= b.b0) return 0
  const kx = Math.floor((x - b.b0 - 1) / b.c) // last block starting before x
  if (kx === 0) return ofBlock(0, x)
  // Blocks 1..kx-1 are whole (they start after o and end before x); 0 and kx may be clipped.
  return ofBlock(0, x) + (kx - 1) * Math.ceil(b.len / b.acc) + ofBlock(kx, x)
}

/** Updates of each modality made by a whole phase. */
export const phaseUpdates = (
  phase: PhaseShape,
  accV: number,
  accT: number,
): { visual: number; text: number } => {
  const o = phaseOffset(phase)
  const end = o + phase.steps
  return {
    visual: updatesBetween(blocksOf(phase, "visual", accV), o, end, end),
    text: updatesBetween(blocksOf(phase, "text", accT), o, end, end),
  }
}

/** Phase step of the phase's first step of modality m, or undefined. */
const firstOf = (p: PhaseShape, m: Modality): number | undefined => {
  if ((m === "visual" ? p.ratio.visual : p.ratio.text) === 0) return undefined
  const c = p.ratio.visual + p.ratio.text
  for (let s = 0; s < Math.min(c, p.steps); s++) if (isVisualAt(p, s) === (m === "visual")) return s
  return undefined
}

export const makeProgressIndex = (spec: ScheduleSpec): ProgressIndex => {
  const accV = spec.batch.visual.accumulation
  const accT = spec.batch.text.accumulation
  const phases: PhaseProgress[] = []
  let start = 0
  let beforeV = 0
  let beforeT = 0
  let prevModality: Modality | undefined
  let firstV: number | undefined
  let firstT: number | undefined
  for (const p of spec.phases) {
    phases.push({
      name: p.name,
      start,
      steps: p.steps,
      v: p.ratio.visual,
      t: p.ratio.text,
      textFirst: p.order === "text-first",
      offset: phaseOffset(p),
      visual: blocksOf(p, "visual", accV),
      text: blocksOf(p, "text", accT),
      beforeV,
      beforeT,
      prevModality,
    })
    const fv = firstOf(p, "visual")
    const ft = firstOf(p, "text")
    if (firstV === undefined && fv !== undefined) firstV = start + fv
    if (firstT === undefined && ft !== undefined) firstT = start + ft
    const u = phaseUpdates(p, accV, accT)
    beforeV += u.visual
    beforeT += u.text
    start += p.steps
    prevModality = isVisualAt(p, p.steps - 1) ? "visual" : "text"
  }
  return {
    phases,
    byName: new Map(phases.map((p) => [p.name, p])),
    firstStep: { visual: firstV, text: firstT },
  }
}

/** Visual updates applied before phase step `s` (steps [start, start + s) of the phase). */
export const visualUpdatesBefore = (p: PhaseProgress, s: number): number =>
  p.beforeV + updatesBetween(p.visual, p.offset, p.offset + p.steps, p.offset + s)

/** Text updates applied before phase step `s`. */
export const textUpdatesBefore = (p: PhaseProgress, s: number): number =>
  p.beforeT + updatesBetween(p.text, p.offset, p.offset + p.steps, p.offset + s)

/** Whether phase step `s` (of modality `modality`) follows a step of the other modality. */
export const followsSwitch = (p: PhaseProgress, s: number, modality: Modality): boolean => {
  if (s === 0) return p.prevModality !== undefined && p.prevModality !== modality
  if (p.v === 0 || p.t === 0) return false
  const pos = (s + p.offset) % (p.v + p.t)
  // A block starts at position 0 and where the second modality's block begins.
  return pos === 0 || pos === (p.textFirst ? p.t : p.v)
}

/**
 * Fork schedules: the parent's schedule up to a step, a new ratio from there on.
 *
 * The phase holding the fork step is split in two (`joint` and `joint@fork`), so the fork's plan for
 * every step before it is the parent's, step for step, and its own cycles start at the fork step.
 * (One difference: the split ends a block, so a group still open at the step before the fork is
 * applied there.)
 *
 * Offsets: the part before the fork keeps the phase's offset (so its plan stays the parent's); the
 * part from the fork starts a fresh cycle (offset 0); a later phase keeps its offset modulo the new
 * cycle length, the same hook with the new ratio.
 */
import { Either } from "effect"
import { decodeSpec, encodeSpec, type Ratio, type ScheduleSpec } from "./spec.ts"

export const parseRatio = (text: string): Either.Either<Ratio, string> => {
  const m = /^\s*(\d+)\s*:\s*(\d+)\s*$/.exec(text)
  if (!m) return Either.left(`expected V:T such as 8:1, got "${text}"`)
  const visual = Number(m[1])
  const text_ = Number(m[2])
  if (visual + text_ === 0) return Either.left("visual and text cannot both be 0")
  return Either.right({ visual, text: text_ })
}

type Phase = ScheduleSpec["phases"][number]

/** `p` at a new ratio with `offset` (absent when 0, so the encoded spec stays as it was). */
const withRatio = (p: Phase, ratio: Ratio, offset: number): Phase => {
  const { offset: _old, ...rest } = p
  return offset === 0 ? { ...rest, ratio } : { ...rest, ratio, offset }
}

export const forkSpecWithRatio = (
  spec: ScheduleSpec,
  atStep: number,
  ratio: Ratio,
): Either.Either<ScheduleSpec, string> => {
  const phases: Phase[] = []
  let start = 0
  for (const p of spec.phases) {
    const end = start + p.steps
    if (end <= atStep) phases.push(p)
    else if (start >= atStep) phases.push(withRatio(p, ratio, (p.offset ?? 0) % (ratio.visual + ratio.text)))
    else {
      phases.push({ ...p, steps: atStep - start })
      phases.push(withRatio({ ...p, name: `${p.name}@fork`, steps: end - atStep }, ratio, 0))
    }
    start = end
  }
  if (atStep < 0 || atStep >= start)
    return Either.left(`step ${atStep} is outside the schedule (0..${start - 1})`)
  const forked = decodeSpec(encodeSpec({ ...spec, name: `${spec.name}-fork`, phases }), "fork")
  return Either.mapLeft(forked, (e) => e.message)
}

/**
 * Fork schedules: the parent's schedule up to a step, a new ratio from there on.
 *
 * The phase holding the fork step is split in two (`joint` and `joint@fork`), so the fork's plan for
 * every step before it is the parent's, step for step, and its own cycles start at the fork step.
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

export const forkSpecWithRatio = (
  spec: ScheduleSpec,
  atStep: number,
  ratio: Ratio,
): Either.Either<ScheduleSpec, string> => {
  const phases: Array<ScheduleSpec["phases"][number]> = []
  let start = 0
  for (const p of spec.phases) {
    const end = start + p.steps
    if (end <= atStep) phases.push(p)
    else if (start >= atStep) phases.push({ ...p, ratio })
    else {
      phases.push({ ...p, steps: atStep - start })
      phases.push({ ...p, name: `${p.name}@fork`, steps: end - atStep, ratio })
    }
    start = end
  }
  if (atStep < 0 || atStep >= start)
    return Either.left(`step ${atStep} is outside the schedule (0..${start - 1})`)
  const forked = decodeSpec(encodeSpec({ ...spec, name: `${spec.name}-fork`, phases }), "fork")
  return Either.mapLeft(forked, (e) => e.message)
}

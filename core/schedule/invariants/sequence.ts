/** Sequence rules: step indices, and the phase / cycle labels each step must carry. */
import { defineRule, none, phaseAt, viewOf, where } from "./view.ts"

export const stepSequence = defineRule({
  name: "step-sequence",
  description:
    "step indices are integers, contiguous from 0, strictly increasing, and cover the run's length",
  init: (_spec, ctx) => ({ limit: ctx.limit, next: 0, seen: 0 }),
  check: (s, r) => {
    const step = r.step
    s.seen++
    if (!Number.isInteger(step))
      return {
        rule: "step-sequence",
        step: s.next,
        message: `record ${s.seen - 1}: step index ${step} is not an integer`,
      }
    if (step > s.next) {
      const missing = s.next
      s.next = step + 1
      return {
        rule: "step-sequence",
        step: missing,
        message: `step ${missing}: missing (the next record is step ${step}; steps must be contiguous from 0)`,
      }
    }
    if (step < s.next)
      return {
        rule: "step-sequence",
        step,
        message:
          step === s.next - 1
            ? `step ${step}: recorded twice (steps must be strictly increasing)`
            : `step ${step}: out of order (it follows step ${s.next - 1}; steps must be strictly increasing)`,
      }
    s.next = step + 1
    if (step >= s.limit)
      return {
        rule: "step-sequence",
        step,
        message: `step ${step}: beyond the run's length (${s.limit} steps: 0..${s.limit - 1})`,
      }
    return undefined
  },
  finish: (s, { limit }) =>
    s.next < limit
      ? [
          {
            rule: "step-sequence",
            step: s.next,
            message: `step ${s.next}: missing: the records end ${s.next === 0 ? "before step 0" : `at step ${s.next - 1}`}, expected ${limit} steps (0..${limit - 1})`,
          },
        ]
      : none,
})

export const phaseBoundaries = defineRule({
  name: "phase-boundaries",
  description:
    "each record's phase and phaseStep are those of its step in the spec's phases; cycle = floor((phaseStep + offset)/(V+T)), position = (phaseStep + offset) mod (V+T)",
  init: (spec) => ({ v: viewOf(spec), pi: 0 }),
  check: (s, r) => {
    const pi = phaseAt(s.v, r.step, s.pi)
    if (pi < 0) return undefined
    s.pi = pi
    const p = s.v.phases[pi]!
    const start = s.v.starts[pi]!
    const ps = r.step - start
    const c = p.ratio.visual + p.ratio.text
    const offset = p.offset ?? 0
    const cycle = Math.floor((ps + offset) / c)
    const position = ps + offset - cycle * c
    if (r.phase === p.name && r.phaseStep === ps && r.cycle === cycle && r.position === position)
      return undefined
    const at = where(s.v, r.step, pi)
    const bounds = `phase ${p.name} covers steps ${start}..${s.v.ends[pi]! - 1}`
    const message =
      r.phase !== p.name
        ? `${at}: expected phase ${p.name}, got ${r.phase} (${bounds})`
        : r.phaseStep !== ps
          ? `${at}: expected phaseStep ${ps}, got ${r.phaseStep} (${bounds})`
          : `${at}: expected cycle ${cycle} position ${position}, got cycle ${r.cycle} position ${r.position} (cycle of ${c} steps${offset ? `, offset ${offset}` : ""})`
    return { rule: "phase-boundaries", step: r.step, message }
  },
  finish: () => none,
})

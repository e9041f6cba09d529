/** Gradient accumulation: every micro-step applied once, in an update of its own modality and block. */

import { plural } from "../../common/index.ts"
import type { Modality, Phase } from "../spec.ts"
import { expectedModality } from "./formulas.ts"
import { defineRule, none, phaseAt, type SpecView, type Violation, viewOf, where } from "./view.ts"

interface AccumulationState {
  readonly v: SpecView
  pi: number
  /** The open (not yet applied) group, if any. */
  open: boolean
  modality: Modality
  phase: number
  size: number
  start: number
  lastStep: number
}

/**
 * Whether phase step `ps` ends its same-modality block: the phase ends, or the spec's modality
 * switches at the next step. (An offset's short first block ends at its switch like any other.)
 */
const endsBlock = (p: Phase, ps: number): boolean =>
  ps >= p.steps - 1 || expectedModality(p, ps) !== expectedModality(p, ps + 1)

export const accumulation = defineRule<AccumulationState>({
  name: "accumulation",
  description:
    "micro counts 0,1,.. inside a group; the update comes exactly at the group's end (accumulation reached or block ends); no group spans a modality switch or phase boundary or stays open at the end",
  init: (spec) => ({
    v: viewOf(spec),
    pi: 0,
    open: false,
    modality: "visual",
    phase: -1,
    size: 0,
    start: -1,
    lastStep: -1,
  }),
  check: (s, r) => {
    const pi = phaseAt(s.v, r.step, s.pi)
    if (pi < 0) return undefined
    s.pi = pi
    s.lastStep = r.step
    let out: Violation | undefined
    if (s.open && (r.modality !== s.modality || pi !== s.phase)) {
      const cut =
        pi !== s.phase ? `the start of phase ${s.v.phases[pi]!.name}` : `the switch to ${r.modality}`
      out = {
        rule: "accumulation",
        step: r.step,
        message: `${where(s.v, r.step, pi)}: the ${s.modality} group opened at step ${s.start} (${plural(s.size, "micro-step")}) was never applied before ${cut}`,
      }
      s.open = false
    }
    const expMicro = s.open ? s.size : 0
    const acc = s.v.spec.batch[r.modality].accumulation
    const p = s.v.phases[pi]!
    const blockEnd = endsBlock(p, r.step - s.v.starts[pi]!)
    const groupEnd = expMicro + 1 >= acc || blockEnd
    if (!out && r.micro !== expMicro)
      out = {
        rule: "accumulation",
        step: r.step,
        message: `${where(s.v, r.step, pi)}: expected micro-step ${expMicro} of a ${r.modality} group, got ${r.micro}`,
      }
    if (!out && r.update !== groupEnd) {
      const why = expMicro + 1 >= acc ? `accumulation ${acc} reached` : "the block ends here"
      out = {
        rule: "accumulation",
        step: r.step,
        message: groupEnd
          ? `${where(s.v, r.step, pi)}: expected the optimizer update (micro-step ${expMicro}, ${why}), got none`
          : `${where(s.v, r.step, pi)}: update after ${expMicro + 1} of ${acc} ${r.modality} micro-steps, before the group ends`,
      }
    }
    if (r.update) s.open = false
    else {
      if (!s.open) s.start = r.step
      s.open = true
      s.modality = r.modality
      s.phase = pi
      s.size = expMicro + 1
    }
    return out
  },
  finish: (s, { limit }) => {
    if (!s.open) return none
    // A run cut short (--steps, or stopped) may end inside a group: the planner does not flush at a cut.
    if (limit < s.v.total && s.lastStep === limit - 1) return none
    return [
      {
        rule: "accumulation",
        step: s.start,
        message: `${where(s.v, s.start, phaseAt(s.v, s.start, -1))}: the ${s.modality} group opened here (${plural(s.size, "micro-step")}) was never applied: the records end at step ${s.lastStep}`,
      },
    ]
  },
})

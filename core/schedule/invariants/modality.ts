/** Modality rules: the pattern inside each cycle, the longest run of one modality, per-phase counts. */
import { expectedModality, expectedVisualCount, maxRunOf } from "./formulas.ts"
import {
  defineRule,
  none,
  phaseAt,
  ratioLabel,
  type SpecView,
  type Violation,
  viewOf,
  where,
} from "./view.ts"

export const modalityPattern = defineRule({
  name: "modality-pattern",
  description: "phase step i is visual iff (i + offset) mod (V+T) < V (visual first) or >= T (text first)",
  init: (spec) => ({ v: viewOf(spec), pi: 0 }),
  check: (s, r) => {
    const pi = phaseAt(s.v, r.step, s.pi)
    if (pi < 0) return undefined
    s.pi = pi
    const p = s.v.phases[pi]!
    const expected = expectedModality(p, r.step - s.v.starts[pi]!)
    if (r.modality === expected) return undefined
    return {
      rule: "modality-pattern",
      step: r.step,
      message: `${where(s.v, r.step, pi)}: expected ${expected}, got ${r.modality} (${ratioLabel(p)})`,
    }
  },
  finish: () => none,
})

export const maxRun = defineRule({
  name: "max-run",
  description: "inside a phase, no run of more than V visual or T text steps",
  init: (spec) => ({ v: viewOf(spec), pi: 0, runPhase: -1, runModality: "" as string, run: 0 }),
  check: (s, r) => {
    const pi = phaseAt(s.v, r.step, s.pi)
    if (pi < 0) return undefined
    s.pi = pi
    if (pi !== s.runPhase || r.modality !== s.runModality) {
      s.runPhase = pi
      s.runModality = r.modality
      s.run = 0
    }
    s.run++
    const p = s.v.phases[pi]!
    const max = maxRunOf(p, r.modality)
    // Report a too-long run once, where it first exceeds the limit.
    if (s.run !== max + 1) return undefined
    return {
      rule: "max-run",
      step: r.step,
      message: `${where(s.v, r.step, pi)}: ${s.run} ${r.modality} steps in a row, at most ${max} allowed (${ratioLabel(p)})`,
    }
  },
  finish: () => none,
})

interface PhaseCountsState {
  readonly v: SpecView
  limit: number
  pi: number
  cur: number
  readonly visual: number[]
  readonly text: number[]
  readonly last: number[]
  readonly reported: boolean[]
}

/** Compares a phase's counts with the closed formula, over its length inside the run's limit. */
const closePhase = (s: PhaseCountsState, pi: number): Violation | undefined => {
  const start = s.v.starts[pi]!
  // Phases the run never reaches are absent by design.
  if (s.reported[pi] || start >= s.limit) return undefined
  s.reported[pi] = true
  const p = s.v.phases[pi]!
  const len = Math.min(p.steps, s.limit - start)
  const expV = expectedVisualCount(p, len)
  const expT = len - expV
  if (s.visual[pi] === expV && s.text[pi] === expT) return undefined
  const step = s.last[pi]! >= 0 ? s.last[pi]! : start + len - 1
  return {
    rule: "phase-counts",
    step,
    message: `phase ${p.name} (steps ${start}..${start + len - 1}): expected ${expV} visual + ${expT} text steps (${ratioLabel(p)} over ${len} steps), got ${s.visual[pi]} visual + ${s.text[pi]} text`,
  }
}

export const phaseCounts = defineRule<PhaseCountsState>({
  name: "phase-counts",
  description:
    "a phase of N steps at V:T with offset o holds G(N+o) - G(o) visual steps, G(m) = floor(m/(V+T))*V + clamp(m mod (V+T) - a, 0, V), a = 0 visual first or T text first; reported at its last step",
  init: (spec, ctx) => {
    const v = viewOf(spec)
    const n = v.phases.length
    return {
      v,
      limit: ctx.limit,
      pi: 0,
      cur: -1,
      visual: new Array<number>(n).fill(0),
      text: new Array<number>(n).fill(0),
      last: new Array<number>(n).fill(-1),
      reported: new Array<boolean>(n).fill(false),
    }
  },
  check: (s, r) => {
    if (r.step >= s.limit) return undefined
    const pi = phaseAt(s.v, r.step, s.pi)
    if (pi < 0) return undefined
    s.pi = pi
    let out: Violation | undefined
    if (pi !== s.cur) {
      if (s.cur >= 0) out = closePhase(s, s.cur)
      s.cur = pi
    }
    if (r.modality === "visual") s.visual[pi]!++
    else s.text[pi]!++
    s.last[pi] = r.step
    return out
  },
  finish: (s, { limit }) => {
    // A run that stopped early is held to its recorded length from here on.
    s.limit = limit
    const out: Violation[] = []
    // The current phase first, then any the records skipped entirely.
    if (s.cur >= 0) {
      const v = closePhase(s, s.cur)
      if (v) out.push(v)
    }
    for (let pi = 0; pi < s.v.phases.length; pi++) {
      const v = closePhase(s, pi)
      if (v) out.push(v)
    }
    return out
  },
})

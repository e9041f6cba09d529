/**
 * Schedule invariants as named rules (DESIGN.md, "Schedule invariants").
 *
 * Every rule is a fold over step records: `init` builds its state from the spec, `check` sees one
 * record at a time and returns the violation it finds there, `finish` reports what only the end
 * can tell. Records may come from the planner or from a recorded (possibly wrong) log, so rules
 * judge records against the spec and never call the planner; they use only its pure helpers.
 * State is O(#phases), never O(#steps): `verify` folds 10^7 records in constant memory.
 *
 * Rules judge a record by its global step index: the spec says which phase, modality and lr step
 * `s` must have. Only `phase-boundaries` looks at the record's phase labels, so a wrong label
 * and a wrong modality are told apart.
 */
import { expectedVisualSteps, isVisualAt, phaseIndexAt, type StepPlan, scheduleFactor } from "./plan.ts"
import { groupBaseLrs, type Modality, type Phase, type ScheduleSpec, totalSteps } from "./spec.ts"

/** One executed (or planned) step: the StepPlan fields, whoever produced them. */
export type StepRecord = Pick<
  StepPlan,
  "step" | "phase" | "phaseStep" | "modality" | "cycle" | "position" | "micro" | "update" | "lr"
>

export type RuleName =
  | "step-sequence"
  | "phase-boundaries"
  | "modality-pattern"
  | "max-run"
  | "phase-counts"
  | "accumulation"
  | "lr-finite"
  | "lr-warmup"
  | "lr-decay"
  | "lr-group-ratios"
  | "lr-matches-spec"

export interface Violation {
  readonly rule: RuleName
  /** The first faulty step (for a missing step: its index). */
  readonly step: number
  readonly message: string
}

export interface RuleContext {
  /** The run's planned length: `totalSteps(spec)`, or N for a run recorded with `--steps N`. */
  readonly limit: number
}

export interface Rule<S> {
  readonly name: RuleName
  readonly description: string
  readonly init: (spec: ScheduleSpec, ctx: RuleContext) => S
  /** Folds one record into `s` (mutating it); returns the violation this record shows, if any. */
  readonly check: (s: S, r: StepRecord) => Violation | undefined
  /** What the end of the sequence reveals (missing steps, an unapplied group, an unreported phase). */
  readonly finish: (s: S) => ReadonlyArray<Violation>
}

// ---------------------------------------------------------------------------------------------
// What every rule needs to know about the spec, computed once per spec.

interface SpecView {
  readonly spec: ScheduleSpec
  readonly phases: ReadonlyArray<Phase>
  readonly starts: ReadonlyArray<number>
  readonly ends: ReadonlyArray<number>
  readonly total: number
  readonly groups: ReadonlyArray<string>
  readonly base: Readonly<Record<string, number>>
  /** `base` in `groups` order, for the hot loops. */
  readonly baseList: ReadonlyArray<number>
  /** The first group with a base lr > 0: lrs are normalised by it (undefined if all are 0). */
  readonly ref: string | undefined
  readonly warmup: number
}

const views = new WeakMap<ScheduleSpec, SpecView>()

const viewOf = (spec: ScheduleSpec): SpecView => {
  const cached = views.get(spec)
  if (cached) return cached
  const starts: number[] = []
  const ends: number[] = []
  let acc = 0
  for (const p of spec.phases) {
    starts.push(acc)
    acc += p.steps
    ends.push(acc)
  }
  const base = groupBaseLrs(spec)
  const groups = spec.optimizer.groups.map((g) => g.name)
  const view: SpecView = {
    spec,
    phases: spec.phases,
    starts,
    ends,
    total: acc,
    groups,
    base,
    baseList: groups.map((g) => base[g]!),
    ref: groups.find((g) => base[g]! > 0),
    warmup: spec.lr.warmup?.steps ?? 0,
  }
  views.set(spec, view)
  return view
}

/**
 * Index of the spec phase holding global step `step`, or -1 outside the schedule. `hint` (the
 * answer for the previous record) makes the in-order case two comparisons.
 */
const phaseAt = (v: SpecView, step: number, hint: number): number => {
  const { starts, ends } = v
  if (hint >= 0 && hint < starts.length) {
    if (step >= starts[hint]! && step < ends[hint]!) return hint
    const next = hint + 1
    if (next < starts.length && step >= starts[next]! && step < ends[next]!) return next
  }
  if (!(step >= 0 && step < v.total) || !Number.isInteger(step)) return -1
  return phaseIndexAt(starts, step)
}

const fmt = (x: unknown): string => (typeof x === "number" ? String(Number(x.toPrecision(12))) : String(x))

const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? "" : "s"}`

const ratioLabel = (p: Phase): string => `${p.ratio.visual}:${p.ratio.text} ${p.order}`

/** `step 8 (phase joint, step 8 of phase)` */
const where = (v: SpecView, step: number, pi: number): string =>
  pi < 0
    ? `step ${step}`
    : `step ${step} (phase ${v.phases[pi]!.name}, step ${step - v.starts[pi]!} of phase)`

/** Equal within a relative 1e-9 (exact for zeros). */
const close = (a: number, e: number): boolean => Math.abs(a - e) <= 1e-9 * Math.max(Math.abs(a), Math.abs(e))

/** The spec's modality at phase step `ps`. */
const modalityAt = (p: Phase, ps: number): Modality => (isVisualAt(p, ps) ? "visual" : "text")

/** Longest allowed run of one modality inside a phase; a zero side makes the other unbounded. */
const maxRunOf = (p: Phase, m: Modality): number => {
  const { visual: v, text: t } = p.ratio
  if (m === "visual") return t === 0 ? Number.POSITIVE_INFINITY : v
  return v === 0 ? Number.POSITIVE_INFINITY : t
}

/**
 * The record's lr as a multiple of its base lr (warm-up x decay), normalised by the modality
 * factor of the record's own modality; undefined when it cannot be told (zero base or factor,
 * missing or non-finite lr; other rules report those).
 */
const normalisedFactor = (v: SpecView, r: StepRecord): number | undefined => {
  if (v.ref === undefined) return undefined
  const x = r.lr[v.ref]
  const d = v.base[v.ref]! * v.spec.lr.modalityFactor[r.modality]
  if (!(d > 0) || typeof x !== "number" || !Number.isFinite(x)) return undefined
  return x / d
}

const defineRule = <S>(rule: Rule<S>): Rule<unknown> => rule as Rule<unknown>

const none: ReadonlyArray<Violation> = []

// ---------------------------------------------------------------------------------------------
// The rules.

const stepSequence = defineRule({
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
  finish: (s) =>
    s.next < s.limit
      ? [
          {
            rule: "step-sequence",
            step: s.next,
            message: `step ${s.next}: missing: the records end ${s.next === 0 ? "before step 0" : `at step ${s.next - 1}`}, expected ${s.limit} steps (0..${s.limit - 1})`,
          },
        ]
      : none,
})

const phaseBoundaries = defineRule({
  name: "phase-boundaries",
  description:
    "each record's phase, phaseStep, cycle and position are those of its step in the spec's phases",
  init: (spec) => ({ v: viewOf(spec), pi: 0 }),
  check: (s, r) => {
    const pi = phaseAt(s.v, r.step, s.pi)
    if (pi < 0) return undefined
    s.pi = pi
    const p = s.v.phases[pi]!
    const start = s.v.starts[pi]!
    const ps = r.step - start
    const c = p.ratio.visual + p.ratio.text
    const cycle = Math.floor(ps / c)
    const position = ps - cycle * c
    if (r.phase === p.name && r.phaseStep === ps && r.cycle === cycle && r.position === position)
      return undefined
    const at = where(s.v, r.step, pi)
    const bounds = `phase ${p.name} covers steps ${start}..${s.v.ends[pi]! - 1}`
    const message =
      r.phase !== p.name
        ? `${at}: expected phase ${p.name}, got ${r.phase} (${bounds})`
        : r.phaseStep !== ps
          ? `${at}: expected phaseStep ${ps}, got ${r.phaseStep} (${bounds})`
          : `${at}: expected cycle ${cycle} position ${position}, got cycle ${r.cycle} position ${r.position} (cycle of ${c} steps)`
    return { rule: "phase-boundaries", step: r.step, message }
  },
  finish: () => none,
})

const modalityPattern = defineRule({
  name: "modality-pattern",
  description: "phase step i is visual iff i mod (V+T) < V (visual first) or >= T (text first)",
  init: (spec) => ({ v: viewOf(spec), pi: 0 }),
  check: (s, r) => {
    const pi = phaseAt(s.v, r.step, s.pi)
    if (pi < 0) return undefined
    s.pi = pi
    const p = s.v.phases[pi]!
    const expected = modalityAt(p, r.step - s.v.starts[pi]!)
    if (r.modality === expected) return undefined
    return {
      rule: "modality-pattern",
      step: r.step,
      message: `${where(s.v, r.step, pi)}: expected ${expected}, got ${r.modality} (${ratioLabel(p)})`,
    }
  },
  finish: () => none,
})

const maxRun = defineRule({
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
  readonly limit: number
  pi: number
  cur: number
  readonly visual: number[]
  readonly text: number[]
  readonly last: number[]
  readonly reported: boolean[]
}

/** Compares a phase's counts with the closed formula, over its length inside the run's limit. */
const closePhase = (s: PhaseCountsState, pi: number): Violation | undefined => {
  if (s.reported[pi]) return undefined
  s.reported[pi] = true
  const p = s.v.phases[pi]!
  const start = s.v.starts[pi]!
  const len = Math.min(p.steps, s.limit - start)
  const expV = expectedVisualSteps({ ratio: p.ratio, order: p.order, steps: len })
  const expT = len - expV
  if (s.visual[pi] === expV && s.text[pi] === expT) return undefined
  const step = s.last[pi]! >= 0 ? s.last[pi]! : start + len - 1
  return {
    rule: "phase-counts",
    step,
    message: `phase ${p.name} (steps ${start}..${start + len - 1}): expected ${expV} visual + ${expT} text steps (${ratioLabel(p)} over ${len} steps), got ${s.visual[pi]} visual + ${s.text[pi]} text`,
  }
}

const phaseCounts = defineRule<PhaseCountsState>({
  name: "phase-counts",
  description:
    "each phase holds floor(N/(V+T))*V + min(N mod (V+T), V) visual steps (visual first; text first: max(N mod (V+T) - T, 0)), reported at its last step",
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
      // Phases the run never reaches are absent by design.
      reported: v.starts.map((start) => start >= ctx.limit),
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
  finish: (s) => {
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

interface AccumulationState {
  readonly v: SpecView
  readonly limit: number
  pi: number
  /** The open (not yet applied) group, if any. */
  open: boolean
  modality: Modality
  phase: number
  size: number
  start: number
  lastStep: number
}

/** Whether phase step `ps` ends its same-modality block (a switch or the phase's end follows). */
const endsBlock = (p: Phase, ps: number): boolean => {
  if (ps >= p.steps - 1) return true
  if (p.ratio.visual === 0 || p.ratio.text === 0) return false
  return isVisualAt(p, ps) !== isVisualAt(p, ps + 1)
}

const accumulation = defineRule<AccumulationState>({
  name: "accumulation",
  description:
    "micro counts 0,1,.. inside a group; the update comes exactly at the group's end (accumulation reached or block ends); no group spans a modality switch or phase boundary or stays open at the end",
  init: (spec, ctx) => ({
    v: viewOf(spec),
    limit: ctx.limit,
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
  finish: (s) => {
    if (!s.open) return none
    // A run cut by --steps may stop inside a group: the planner does not flush at the cut.
    if (s.limit < s.v.total && s.lastStep === s.limit - 1) return none
    return [
      {
        rule: "accumulation",
        step: s.start,
        message: `${where(s.v, s.start, phaseAt(s.v, s.start, -1))}: the ${s.modality} group opened here (${plural(s.size, "micro-step")}) was never applied: the records end at step ${s.lastStep}`,
      },
    ]
  },
})

const lrFinite = defineRule({
  name: "lr-finite",
  description: "every group's lr is a finite number >= 0",
  init: (spec) => ({ v: viewOf(spec), pi: 0 }),
  check: (s, r) => {
    for (const g in r.lr) {
      const x = r.lr[g]
      if (typeof x === "number" && x >= 0 && x <= Number.MAX_VALUE) continue
      const pi = phaseAt(s.v, r.step, s.pi)
      if (pi >= 0) s.pi = pi
      return {
        rule: "lr-finite",
        step: r.step,
        message: `${where(s.v, r.step, pi)}: lr of group "${g}" is ${fmt(x)}; every lr must be finite and >= 0`,
      }
    }
    return undefined
  },
  finish: () => none,
})

const lrWarmup = defineRule({
  name: "lr-warmup",
  description:
    "during warm-up the lr (over its modality factor) never falls, and equals the base lr at the last warm-up step",
  init: (spec) => ({ v: viewOf(spec), prev: Number.NaN, prevStep: -1 }),
  check: (s, r) => {
    const w = s.v.warmup
    if (!(r.step < w)) return undefined
    const f = normalisedFactor(s.v, r)
    if (f === undefined) return undefined
    const prev = s.prev
    const prevStep = s.prevStep
    s.prev = f
    s.prevStep = r.step
    const at = (): string => where(s.v, r.step, phaseAt(s.v, r.step, -1))
    if (f < prev && !close(f, prev))
      return {
        rule: "lr-warmup",
        step: r.step,
        message: `${at()}: lr falls during warm-up: x${fmt(f)} of the base lr after x${fmt(prev)} at step ${prevStep}; warm-up must be non-decreasing`,
      }
    if (r.step === w - 1 && !close(f, 1)) {
      const ref = s.v.ref!
      const expected = s.v.base[ref]! * s.v.spec.lr.modalityFactor[r.modality]
      return {
        rule: "lr-warmup",
        step: r.step,
        message: `${at()}: warm-up must reach the base lr at its last step: expected lr ${fmt(expected)} for group "${ref}", got ${fmt(r.lr[ref])} (x${fmt(f)})`,
      }
    }
    return undefined
  },
  finish: () => none,
})

const lrDecay = defineRule({
  name: "lr-decay",
  description: "after warm-up the lr (over its modality factor) never rises",
  init: (spec) => ({ v: viewOf(spec), prev: Number.NaN, prevStep: -1 }),
  check: (s, r) => {
    // The warm-up's last step (factor 1) is the reference the first decay step is held to.
    if (!(r.step >= s.v.warmup - 1)) return undefined
    const f = normalisedFactor(s.v, r)
    if (f === undefined) return undefined
    const prev = s.prev
    const prevStep = s.prevStep
    s.prev = f
    s.prevStep = r.step
    if (f > prev && !close(f, prev))
      return {
        rule: "lr-decay",
        step: r.step,
        message: `${where(s.v, r.step, phaseAt(s.v, r.step, -1))}: lr rises during decay: x${fmt(f)} of the base lr after x${fmt(prev)} at step ${prevStep}; after warm-up it must be non-increasing`,
      }
    return undefined
  },
  finish: () => none,
})

const lrGroupRatios = defineRule({
  name: "lr-group-ratios",
  description: "every group's lr keeps its configured ratio to the first group with a base lr > 0",
  init: (spec) => ({ v: viewOf(spec) }),
  check: (s, r) => {
    const { ref, base, groups, baseList } = s.v
    if (ref === undefined || groups.length < 2) return undefined
    const xr = r.lr[ref]
    if (typeof xr !== "number" || !Number.isFinite(xr)) return undefined
    const br = base[ref]!
    for (let i = 0; i < groups.length; i++) {
      const g = groups[i]!
      const x = r.lr[g]
      if (g === ref || typeof x !== "number" || !Number.isFinite(x)) continue
      // Cross-multiplied, so zero lrs and zero bases need no special case.
      const bg = baseList[i]!
      if (close(x * br, xr * bg)) continue
      return {
        rule: "lr-group-ratios",
        step: r.step,
        message: `${where(s.v, r.step, phaseAt(s.v, r.step, -1))}: group "${g}" lr ${fmt(x)} is x${fmt(x / xr)} of group "${ref}" (${fmt(xr)}); the spec sets x${fmt(bg / br)}`,
      }
    }
    return undefined
  },
  finish: () => none,
})

const lrMatchesSpec = defineRule({
  name: "lr-matches-spec",
  description:
    "each group's lr is base x warm-up/decay factor x modality factor of the spec's modality at that step (relative 1e-9), with exactly the spec's groups",
  init: (spec) => ({ v: viewOf(spec), pi: 0 }),
  check: (s, r) => {
    const pi = phaseAt(s.v, r.step, s.pi)
    if (pi < 0) return undefined
    s.pi = pi
    const { spec, groups, baseList, total } = s.v
    const m = modalityAt(s.v.phases[pi]!, r.step - s.v.starts[pi]!)
    const sf = scheduleFactor(spec, r.step, total)
    const mf = spec.lr.modalityFactor[m]
    let keys = 0
    for (const _ in r.lr) keys++
    for (let i = 0; i < groups.length; i++) {
      const g = groups[i]!
      const x = r.lr[g]
      const e = baseList[i]! * sf * mf
      if (x === undefined)
        return {
          rule: "lr-matches-spec",
          step: r.step,
          message: `${where(s.v, r.step, pi)}: no lr for group "${g}" (expected ${fmt(e)})`,
        }
      if (close(x, e)) continue
      return {
        rule: "lr-matches-spec",
        step: r.step,
        message: `${where(s.v, r.step, pi)}: lr of group "${g}": expected ${fmt(e)} (base ${fmt(baseList[i])} x schedule ${fmt(sf)} x ${m} factor ${fmt(mf)}), got ${fmt(x)}`,
      }
    }
    if (keys !== groups.length) {
      const extra = Object.keys(r.lr).filter((g) => !(g in s.v.base))
      return {
        rule: "lr-matches-spec",
        step: r.step,
        message: `${where(s.v, r.step, pi)}: lr for group(s) ${extra.map((g) => `"${g}"`).join(", ")} not in the spec (groups: ${groups.join(", ")})`,
      }
    }
    return undefined
  },
  finish: () => none,
})

/** Every rule, in report order. */
export const rules: ReadonlyArray<Rule<unknown>> = [
  stepSequence,
  phaseBoundaries,
  modalityPattern,
  maxRun,
  phaseCounts,
  accumulation,
  lrFinite,
  lrWarmup,
  lrDecay,
  lrGroupRatios,
  lrMatchesSpec,
]

export const ruleNames: ReadonlyArray<RuleName> = rules.map((r) => r.name)

// ---------------------------------------------------------------------------------------------
// The checker: all rules folded side by side over one pass.

export interface CheckOptions {
  /** The run's planned length (default `totalSteps(spec)`; clipped to it, like `planRange`). */
  readonly limit?: number | undefined
  /** Violations kept per rule, in the order found (default 10); all are counted. */
  readonly maxViolationsPerRule?: number | undefined
  /** Only these rules (default: all). */
  readonly rules?: ReadonlyArray<RuleName> | undefined
}

export interface VerifyReport {
  readonly ok: boolean
  /** The run's planned length the records were held to. */
  readonly limit: number
  /** Records seen. */
  readonly steps: number
  readonly visualSteps: number
  readonly textSteps: number
  readonly updates: { readonly visual: number; readonly text: number }
  /** Distinct (phase, cycle) pairs seen (exact for records in step order). */
  readonly cycles: number
  /** The first violations of each rule, rules in `rules` order. */
  readonly violations: ReadonlyArray<Violation>
  /** How many violations each rule found in all (only rules with at least one). */
  readonly violationCounts: Readonly<Partial<Record<RuleName, number>>>
}

export interface ScheduleChecker {
  readonly push: (r: StepRecord) => void
  readonly finish: () => VerifyReport
}

export const makeChecker = (spec: ScheduleSpec, opts: CheckOptions = {}): ScheduleChecker => {
  const total = totalSteps(spec)
  const requested = opts.limit ?? total
  if (!Number.isInteger(requested) || requested < 0)
    throw new RangeError(`limit must be an integer >= 0, got ${requested}`)
  const limit = Math.min(requested, total)
  const keep = opts.maxViolationsPerRule ?? 10
  const only = opts.rules
  const active = only ? rules.filter((r) => only.includes(r.name)) : rules
  const checks = active.map((r) => r.check)
  const states = active.map((r) => r.init(spec, { limit }))
  const n = active.length
  const kept: Violation[][] = active.map(() => [])
  const counts: number[] = active.map(() => 0)

  const note = (i: number, v: Violation): void => {
    counts[i]!++
    if (kept[i]!.length < keep) kept[i]!.push(v)
  }

  let steps = 0
  let visualSteps = 0
  let textSteps = 0
  let visualUpdates = 0
  let textUpdates = 0
  let cycles = 0
  // Highest cycle seen per phase label: O(#phases) memory, unlike a set of pairs.
  const maxCycle = new Map<string, number>()
  let curPhase: string | undefined
  let curMax = -1
  let finished = false

  const push = (r: StepRecord): void => {
    if (finished) throw new Error("checker already finished")
    steps++
    if (r.modality === "visual") {
      visualSteps++
      if (r.update) visualUpdates++
    } else {
      textSteps++
      if (r.update) textUpdates++
    }
    if (r.phase !== curPhase) {
      curPhase = r.phase
      curMax = maxCycle.get(r.phase) ?? -1
    }
    if (r.cycle > curMax) {
      cycles++
      curMax = r.cycle
      maxCycle.set(r.phase, curMax)
    }
    for (let i = 0; i < n; i++) {
      const v = checks[i]!(states[i], r)
      if (v !== undefined) note(i, v)
    }
  }

  const finish = (): VerifyReport => {
    if (!finished) {
      finished = true
      for (let i = 0; i < n; i++) for (const v of active[i]!.finish(states[i])) note(i, v)
    }
    const violationCounts: Partial<Record<RuleName, number>> = {}
    for (let i = 0; i < n; i++) if (counts[i]! > 0) violationCounts[active[i]!.name] = counts[i]!
    const violations = kept.flat()
    return {
      ok: violations.length === 0,
      limit,
      steps,
      visualSteps,
      textSteps,
      updates: { visual: visualUpdates, text: textUpdates },
      cycles,
      violations,
      violationCounts,
    }
  }

  return { push, finish }
}

/** Folds every rule over `records` (any iterable, e.g. `planRange(spec)` or a decoded log). */
export const checkSchedule = (
  spec: ScheduleSpec,
  records: Iterable<StepRecord>,
  opts?: CheckOptions,
): VerifyReport => {
  const c = makeChecker(spec, opts)
  for (const r of records) c.push(r)
  return c.finish()
}

/** The first violation of `rule` in a report, if any. */
export const firstViolation = (report: VerifyReport, rule: RuleName): Violation | undefined =>
  report.violations.find((v) => v.rule === rule)

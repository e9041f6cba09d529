/**
 * What every schedule rule shares: the record and rule types, a per-spec view computed once
 * (phase bounds, group base lrs) and the helpers the rules' messages use. Like the rules, it
 * never imports the planner.
 */
import { groupBaseLrs, type Phase, type ScheduleSpec } from "../spec.ts"
import type { StepPlan } from "../step-plan.ts"

/** One executed (or planned) step: the StepPlan fields, whoever produced them. */
export type StepRecord = StepPlan

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
  /** The run's length: `totalSteps(spec)`, N for a run recorded with `--steps N`, or at `finish`
   * the recorded length of a run that stopped early. */
  readonly limit: number
}

export interface Rule<S> {
  readonly name: RuleName
  readonly description: string
  readonly init: (spec: ScheduleSpec, ctx: RuleContext) => S
  /** Folds one record into `s` (mutating it); returns the violation this record shows, if any. */
  readonly check: (s: S, r: StepRecord) => Violation | undefined
  /** What the end reveals (missing steps, an unapplied group, a short phase); `ctx.limit` may be
   * lower than at `init`, never higher. */
  readonly finish: (s: S, ctx: RuleContext) => ReadonlyArray<Violation>
}

export const defineRule = <S>(rule: Rule<S>): Rule<unknown> => rule as Rule<unknown>

export const none: ReadonlyArray<Violation> = []

export interface SpecView {
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

export const viewOf = (spec: ScheduleSpec): SpecView => {
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
export const phaseAt = (v: SpecView, step: number, hint: number): number => {
  const { starts, ends } = v
  if (hint >= 0 && hint < starts.length) {
    if (step >= starts[hint]! && step < ends[hint]!) return hint
    const next = hint + 1
    if (next < starts.length && step >= starts[next]! && step < ends[next]!) return next
  }
  if (!(step >= 0 && step < v.total) || !Number.isInteger(step)) return -1
  // The first phase whose end lies beyond the step.
  let lo = 0
  let hi = ends.length - 1
  while (lo < hi) {
    const mid = (lo + hi) >> 1
    if (ends[mid]! > step) hi = mid
    else lo = mid + 1
  }
  return lo
}

export const fmt = (x: unknown): string =>
  typeof x === "number" ? String(Number(x.toPrecision(12))) : String(x)

/** `8:1 visual-first`, `8:1 visual-first, offset 1` */
export const ratioLabel = (p: Phase): string =>
  `${p.ratio.visual}:${p.ratio.text} ${p.order}${p.offset ? `, offset ${p.offset}` : ""}`

/** `step 8 (phase joint, step 8 of phase)` */
export const where = (v: SpecView, step: number, pi: number): string =>
  pi < 0
    ? `step ${step}`
    : `step ${step} (phase ${v.phases[pi]!.name}, step ${step - v.starts[pi]!} of phase)`

/** Equal within a relative 1e-9 (exact for zeros). */
export const close = (a: number, e: number): boolean =>
  Math.abs(a - e) <= 1e-9 * Math.max(Math.abs(a), Math.abs(e))

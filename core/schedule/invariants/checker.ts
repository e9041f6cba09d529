/** The checker: every rule folded side by side over one pass of step records. */
import { type ScheduleSpec, totalSteps } from "../spec.ts"
import { accumulation } from "./accumulation.ts"
import { lrDecay, lrFinite, lrGroupRatios, lrMatchesSpec, lrWarmup } from "./lr.ts"
import { maxRun, modalityPattern, phaseCounts } from "./modality.ts"
import { phaseBoundaries, stepSequence } from "./sequence.ts"
import type { Rule, RuleName, StepRecord, Violation } from "./view.ts"

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

export interface CheckOptions {
  /** The run's planned length (default `totalSteps(spec)`; clipped to it, like `planRange`). */
  readonly limit?: number | undefined
  /** Violations kept per rule, in the order found (default 10); all are counted. */
  readonly maxViolationsPerRule?: number | undefined
  /** Only these rules (default: all). */
  readonly rules?: ReadonlyArray<RuleName> | undefined
}

export interface FinishOptions {
  /**
   * The length the run actually has, when it stopped before its planned `limit` (a run that did
   * not complete): the end is judged at `endAt` instead, in the same pass. Clipped to `limit`.
   */
  readonly endAt?: number | undefined
}

export interface VerifyReport {
  readonly ok: boolean
  /** The run's length the records were held to (the planned one, or `endAt`). */
  readonly limit: number
  /** Records seen. */
  readonly steps: number
  readonly visualSteps: number
  readonly textSteps: number
  readonly updates: { readonly visual: number; readonly text: number }
  /** Distinct (phase, cycle) pairs seen (exact for records in step order). */
  readonly cycles: number
  /** The rules that were checked, in report order. */
  readonly rulesChecked: ReadonlyArray<RuleName>
  /** The first violations of each rule, rules in `rules` order. */
  readonly violations: ReadonlyArray<Violation>
  /** How many violations each rule found in all (only rules with at least one). */
  readonly violationCounts: Readonly<Partial<Record<RuleName, number>>>
  /** All violations found (the sum of `violationCounts`; `violations` keeps only the first few). */
  readonly violationTotal: number
}

export interface ScheduleChecker {
  readonly push: (r: StepRecord) => void
  readonly finish: (opts?: FinishOptions) => VerifyReport
}

const checkLength = (name: string, n: number): void => {
  if (!Number.isInteger(n) || n < 0) throw new RangeError(`${name} must be an integer >= 0, got ${n}`)
}

export const makeChecker = (spec: ScheduleSpec, opts: CheckOptions = {}): ScheduleChecker => {
  const total = totalSteps(spec)
  const requested = opts.limit ?? total
  checkLength("limit", requested)
  const planned = Math.min(requested, total)
  const keep = opts.maxViolationsPerRule ?? 10
  const only = opts.rules
  const active = only ? rules.filter((r) => only.includes(r.name)) : rules
  const checks = active.map((r) => r.check)
  const states = active.map((r) => r.init(spec, { limit: planned }))
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
  let limit = planned
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

  const finish = (fo: FinishOptions = {}): VerifyReport => {
    if (!finished) {
      finished = true
      if (fo.endAt !== undefined) {
        checkLength("endAt", fo.endAt)
        limit = Math.min(fo.endAt, planned)
      }
      for (let i = 0; i < n; i++) for (const v of active[i]!.finish(states[i], { limit })) note(i, v)
    }
    const violationCounts: Partial<Record<RuleName, number>> = {}
    let violationTotal = 0
    for (let i = 0; i < n; i++)
      if (counts[i]! > 0) {
        violationCounts[active[i]!.name] = counts[i]!
        violationTotal += counts[i]!
      }
    const violations = kept.flat()
    return {
      ok: violations.length === 0,
      limit,
      steps,
      visualSteps,
      textSteps,
      updates: { visual: visualUpdates, text: textUpdates },
      cycles,
      rulesChecked: active.map((r) => r.name),
      violations,
      violationCounts,
      violationTotal,
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

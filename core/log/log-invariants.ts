/**
 * Event-log invariants (DESIGN.md, "Event log") as named rules, in the same fold shape as the
 * schedule rules of `invariants.ts`: positions contiguous from 0; exactly one `RunStarted`, first;
 * at most one terminal event (`RunCompleted` or `RunAborted`), last; the step indices of
 * `StepCompleted` / `StepFailed` strictly increasing.
 *
 * Items are the few fields the rules need, so the caller maps stored or file events to them and
 * this module stays independent of the event schemas. State is constant-size.
 */

export type LogRuleName = "log-positions" | "log-run-started" | "log-terminal" | "log-step-order"

/** One event of a run's stream, reduced to what the rules look at. */
export interface LogItem {
  readonly position: number
  readonly type: string
  /** The step index, for `StepCompleted` / `StepFailed`. */
  readonly step?: number | undefined
}

export interface LogViolation {
  readonly rule: LogRuleName
  /** Stream position of the first faulty event (for a missing event: the position it should have). */
  readonly position: number
  readonly message: string
}

export interface LogRule<S> {
  readonly name: LogRuleName
  readonly description: string
  readonly init: () => S
  readonly check: (s: S, e: LogItem) => LogViolation | undefined
  readonly finish: (s: S) => ReadonlyArray<LogViolation>
}

export const RUN_STARTED = "RunStarted"
export const TERMINAL_EVENTS: ReadonlyArray<string> = ["RunCompleted", "RunAborted"]
export const STEP_EVENTS: ReadonlyArray<string> = ["StepCompleted", "StepFailed"]

const isTerminal = (type: string): boolean => TERMINAL_EVENTS.includes(type)
const isStep = (type: string): boolean => STEP_EVENTS.includes(type)

const defineLogRule = <S>(rule: LogRule<S>): LogRule<unknown> => rule as LogRule<unknown>
const none: ReadonlyArray<LogViolation> = []

const logPositions = defineLogRule({
  name: "log-positions",
  description: "event positions are contiguous from 0",
  init: () => ({ next: 0 }),
  check: (s, e) => {
    const p = e.position
    if (p === s.next) {
      s.next++
      return undefined
    }
    if (!Number.isInteger(p))
      return { rule: "log-positions", position: s.next, message: `position ${s.next}: got position ${p}` }
    if (p > s.next) {
      const missing = s.next
      s.next = p + 1
      return {
        rule: "log-positions",
        position: missing,
        message: `position ${missing}: missing (the next event, ${e.type}, has position ${p}); positions must be contiguous from 0`,
      }
    }
    return {
      rule: "log-positions",
      position: p,
      message: `position ${p}: ${e.type} out of order (it follows position ${s.next - 1}); positions must be strictly increasing`,
    }
  },
  finish: () => none,
})

const logRunStarted = defineLogRule({
  name: "log-run-started",
  description: "exactly one RunStarted, and it is the first event",
  init: () => ({ seen: 0, startedAt: -1 }),
  check: (s, e) => {
    const first = s.seen === 0
    s.seen++
    if (e.type !== RUN_STARTED) {
      if (!first) return undefined
      return {
        rule: "log-run-started",
        position: e.position,
        message: `position ${e.position}: the log starts with ${e.type}, expected ${RUN_STARTED}`,
      }
    }
    if (s.startedAt >= 0)
      return {
        rule: "log-run-started",
        position: e.position,
        message: `position ${e.position}: a second ${RUN_STARTED} (the first is at position ${s.startedAt})`,
      }
    s.startedAt = e.position
    if (first) return undefined
    return {
      rule: "log-run-started",
      position: e.position,
      message: `position ${e.position}: ${RUN_STARTED} is not the first event`,
    }
  },
  finish: (s) =>
    s.seen === 0
      ? [
          {
            rule: "log-run-started",
            position: 0,
            message: `the log is empty: expected ${RUN_STARTED} at position 0`,
          },
        ]
      : none,
})

const logTerminal = defineLogRule({
  name: "log-terminal",
  description: "at most one terminal event (RunCompleted or RunAborted), and nothing after it",
  init: () => ({ terminal: "", at: -1 }),
  check: (s, e) => {
    if (s.at >= 0)
      return {
        rule: "log-terminal",
        position: e.position,
        message: `position ${e.position}: ${e.type} after the terminal ${s.terminal} at position ${s.at}${isTerminal(e.type) ? " (a second terminal event)" : ""}`,
      }
    if (isTerminal(e.type)) {
      s.terminal = e.type
      s.at = e.position
    }
    return undefined
  },
  finish: () => none,
})

const logStepOrder = defineLogRule({
  name: "log-step-order",
  description:
    "StepCompleted / StepFailed carry integer step indices, strictly increasing, except that a step that failed may be run again after a RunResumed",
  init: () => ({ last: -1, lastAt: -1, failed: -1, resumedSinceFailure: false }),
  check: (s, e) => {
    if (e.type === "RunResumed") {
      s.resumedSinceFailure = true
      return undefined
    }
    if (!isStep(e.type)) return undefined
    const step = e.step
    if (typeof step !== "number" || !Number.isInteger(step) || step < 0)
      return {
        rule: "log-step-order",
        position: e.position,
        message: `position ${e.position}: ${e.type} without a valid step index (got ${String(step)})`,
      }
    const { last, lastAt } = s
    // A failed step (say, its trainer died) is retried by `resume`: the same index once more.
    const retry = step === last && s.failed === step && s.resumedSinceFailure
    if (step > last || retry) {
      s.last = step
      s.lastAt = e.position
      if (e.type === "StepFailed") {
        s.failed = step
        s.resumedSinceFailure = false
      } else s.failed = -1
      return undefined
    }
    return {
      rule: "log-step-order",
      position: e.position,
      message: `position ${e.position}: ${e.type} for step ${step} after step ${last} (position ${lastAt}); step indices must be strictly increasing`,
    }
  },
  finish: () => none,
})

export const logRules: ReadonlyArray<LogRule<unknown>> = [
  logPositions,
  logRunStarted,
  logTerminal,
  logStepOrder,
]

export interface LogCheckOptions {
  /** Violations kept per rule (default 10); all are counted. */
  readonly maxViolationsPerRule?: number | undefined
}

export interface LogReport {
  readonly ok: boolean
  readonly events: number
  /** `StepCompleted` + `StepFailed` events seen. */
  readonly steps: number
  /** The first terminal event's type, if any. */
  readonly terminal: string | undefined
  readonly violations: ReadonlyArray<LogViolation>
  readonly violationCounts: Readonly<Partial<Record<LogRuleName, number>>>
}

export interface LogChecker {
  readonly push: (e: LogItem) => void
  readonly finish: () => LogReport
}

export const makeLogChecker = (opts: LogCheckOptions = {}): LogChecker => {
  const keep = opts.maxViolationsPerRule ?? 10
  const states = logRules.map((r) => r.init())
  const kept: LogViolation[][] = logRules.map(() => [])
  const counts: number[] = logRules.map(() => 0)
  const note = (i: number, v: LogViolation): void => {
    counts[i]!++
    if (kept[i]!.length < keep) kept[i]!.push(v)
  }
  let events = 0
  let steps = 0
  let terminal: string | undefined
  let finished = false
  return {
    push: (e) => {
      if (finished) throw new Error("log checker already finished")
      events++
      if (isStep(e.type)) steps++
      else if (terminal === undefined && isTerminal(e.type)) terminal = e.type
      for (let i = 0; i < logRules.length; i++) {
        const v = logRules[i]!.check(states[i], e)
        if (v !== undefined) note(i, v)
      }
    },
    finish: () => {
      if (!finished) {
        finished = true
        for (let i = 0; i < logRules.length; i++) for (const v of logRules[i]!.finish(states[i])) note(i, v)
      }
      const violationCounts: Partial<Record<LogRuleName, number>> = {}
      for (let i = 0; i < logRules.length; i++)
        if (counts[i]! > 0) violationCounts[logRules[i]!.name] = counts[i]!
      const violations = kept.flat()
      return { ok: violations.length === 0, events, steps, terminal, violations, violationCounts }
    },
  }
}

/** Folds every log rule over `items`. */
export const checkLog = (items: Iterable<LogItem>, opts?: LogCheckOptions): LogReport => {
  const c = makeLogChecker(opts)
  for (const e of items) c.push(e)
  return c.finish()
}

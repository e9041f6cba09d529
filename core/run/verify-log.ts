/**
 * Verifying a recorded run: its events through the event-log rules and its steps through the
 * schedule rules of its spec (or of another spec, to check a run against what was meant).
 */
import { Effect, Stream } from "effect"
import { InputError } from "../common/index.ts"
import {
  type LogRuleName,
  type LogViolation,
  logRules,
  makeLogChecker,
  type RunEvent,
  type RunStarted,
  stepEventStep,
} from "../log/index.ts"
import {
  makeChecker,
  type RuleName,
  type ScheduleSpec,
  type VerifyReport,
  type Violation,
} from "../schedule/index.ts"
import { specOfRun } from "./read.ts"

export interface LogVerifyReport
  extends Omit<VerifyReport, "violations" | "violationCounts" | "rulesChecked"> {
  /** The event-log rules' violations first, then the schedule rules'. */
  readonly violations: ReadonlyArray<Violation | LogViolation>
  readonly violationCounts: Readonly<Partial<Record<RuleName | LogRuleName, number>>>
  readonly rulesChecked: ReadonlyArray<RuleName | LogRuleName>
  readonly runId: string
  readonly source: string
  /** How the log ends: completed, aborted, or incomplete (no terminal event). */
  readonly ending: "completed" | "aborted" | "incomplete"
}

/**
 * One pass over `events`. A run that did not complete followed its schedule if its prefix did, so
 * its end is judged at the recorded length (`finish({ endAt })`), not at the planned one.
 */
export const verifyLog = <E, R>(
  where: string,
  events: Stream.Stream<RunEvent, E, R>,
  override: ScheduleSpec | undefined,
) =>
  Effect.gen(function* () {
    let checker: ReturnType<typeof makeChecker> | undefined
    let started: RunStarted | undefined
    let position = 0
    let recorded = 0
    let terminal: string | undefined
    const logChecker = makeLogChecker()
    yield* events.pipe(
      Stream.runForEach((e) =>
        Effect.gen(function* () {
          logChecker.push({ position: position++, type: e._tag, step: stepEventStep(e) })
          if (e._tag === "RunStarted" && !started) {
            started = e
            const spec = override ?? (yield* specOfRun(e))
            checker = makeChecker(spec, { limit: e.steps })
          } else if (e._tag === "StepCompleted") {
            if (!checker)
              return yield* new InputError({ message: `${where}: step ${e.step} comes before RunStarted` })
            recorded++
            checker.push(e)
          } else if (e._tag === "RunCompleted" || e._tag === "RunAborted") terminal = e._tag
        }),
      ),
    )
    if (!checker || !started)
      return yield* new InputError({ message: `${where}: no RunStarted event: not a recorded run` })
    const report = checker.finish(terminal === "RunCompleted" ? {} : { endAt: recorded })
    const logReport = logChecker.finish()
    const s = started as RunStarted
    return {
      ...report,
      ok: report.ok && logReport.ok,
      violations: [...logReport.violations, ...report.violations],
      violationCounts: { ...logReport.violationCounts, ...report.violationCounts },
      violationTotal:
        report.violationTotal + Object.values(logReport.violationCounts).reduce((a, n) => a + (n ?? 0), 0),
      rulesChecked: [...logRules.map((r) => r.name), ...report.rulesChecked],
      runId: s.runId,
      source: s.source,
      ending:
        terminal === "RunCompleted" ? "completed" : terminal === "RunAborted" ? "aborted" : "incomplete",
    } satisfies LogVerifyReport
  })

/**
 * Verifying a recorded run: its events through the event-log rules and its steps through the
 * schedule rules of its spec (or of another spec, to check a run against what was meant).
 */
import { Effect, Stream } from "effect"
import { hashJson, InputError } from "../common/index.ts"
import {
  type LogRuleName,
  type LogViolation,
  logRules,
  makeLogChecker,
  type RecordedLog,
  type RunEvent,
  type RunStarted,
  stepEventStep,
} from "../log/index.ts"
import {
  encodeSpec,
  makeChecker,
  type RuleName,
  type ScheduleSpec,
  type VerifyReport,
  type Violation,
} from "../schedule/index.ts"
import { specOfRun } from "./read.ts"

/** The scenario a run recorded and the one it was checked against, when their spec hashes differ. */
export interface SpecMismatch {
  /** The run's own: its RunStarted's spec name and spec hash. */
  readonly recorded: { readonly name: string; readonly specHash: string }
  readonly given: { readonly name: string; readonly specHash: string }
}

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
  /** Events read (a file's lines that hold one). */
  readonly events: number
  /** No step completed: no rule had anything to hold for, so the run does not pass (`ok` is false). */
  readonly nothingRecorded: boolean
  /** Set when checked against another spec (`--spec`) than the one the run recorded. */
  readonly specMismatch?: SpecMismatch | undefined
}

/** An event and the position its log gives it: the store's, or the one a file's line records. */
export interface PositionedEvent {
  readonly event: RunEvent
  readonly position: number
}

const recordedSpecName = (started: RunStarted): string => {
  const spec = started.spec as { readonly name?: unknown } | null
  return typeof spec?.name === "string" ? spec.name : "(unnamed)"
}

/**
 * Verifies a run's events (a store's: their positions are the order they come in). See
 * `verifyPositioned`.
 */
export const verifyLog = <E, R>(
  where: string,
  events: Stream.Stream<RunEvent, E, R>,
  override: ScheduleSpec | undefined,
) =>
  verifyPositioned(
    where,
    Stream.map(Stream.zipWithIndex(events), ([event, position]) => ({ event, position })),
    override,
  )

/**
 * Verifies a log file of ours with the positions its lines record (a line cut out of a log, or
 * positions that jump, break `log-positions`); a line without one counts as the next. The one
 * reader of `verify --log FILE` and `import`, so both judge a file alike.
 */
export const verifyRecordedLog = (where: string, log: RecordedLog, override: ScheduleSpec | undefined) =>
  Effect.suspend(() => {
    let n = 0
    return verifyPositioned(
      where,
      Stream.map(log.lines, (l) => {
        const position = l.position ?? n
        n++
        return { event: l.event, position }
      }),
      override,
    )
  })

/**
 * One pass over `events`: the event-log rules on their positions, the schedule rules of the
 * recorded spec (or of `override`) on their steps. A run that did not complete followed its
 * schedule if its prefix did, so its end is judged at the recorded length (`finish({ endAt })`),
 * not at the planned one.
 */
export const verifyPositioned = <E, R>(
  where: string,
  events: Stream.Stream<PositionedEvent, E, R>,
  override: ScheduleSpec | undefined,
) =>
  Effect.gen(function* () {
    let checker: ReturnType<typeof makeChecker> | undefined
    let started: RunStarted | undefined
    let count = 0
    let recorded = 0
    let terminal: string | undefined
    const logChecker = makeLogChecker()
    yield* events.pipe(
      Stream.runForEach(({ event: e, position }) =>
        Effect.gen(function* () {
          count++
          logChecker.push({ position, type: e._tag, step: stepEventStep(e) })
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
    const givenHash = override === undefined ? undefined : hashJson(encodeSpec(override))
    const specMismatch: SpecMismatch | undefined =
      override !== undefined && givenHash !== undefined && givenHash !== s.specHash
        ? {
            recorded: { name: recordedSpecName(s), specHash: s.specHash },
            given: { name: override.name, specHash: givenHash },
          }
        : undefined
    const nothingRecorded = recorded === 0
    return {
      ...report,
      ok: report.ok && logReport.ok && !nothingRecorded,
      violations: [...logReport.violations, ...report.violations],
      violationCounts: { ...logReport.violationCounts, ...report.violationCounts },
      violationTotal:
        report.violationTotal + Object.values(logReport.violationCounts).reduce((a, n) => a + (n ?? 0), 0),
      rulesChecked: [...logRules.map((r) => r.name), ...report.rulesChecked],
      runId: s.runId,
      source: s.source,
      ending:
        terminal === "RunCompleted" ? "completed" : terminal === "RunAborted" ? "aborted" : "incomplete",
      events: count,
      nothingRecorded,
      ...(specMismatch ? { specMismatch } : {}),
    } satisfies LogVerifyReport
  })

/**
 * Runs we observed (imported from a foreign log, core/log/observed-events.ts): verifying them,
 * and refusing what needs a plan. An observed run has no spec and no trainer behind it, so
 * replay, resume and fork have nothing to re-execute, continue or branch from.
 */
import { Effect, Stream } from "effect"
import { InputError } from "../common/index.ts"
import {
  logRules,
  makeLogChecker,
  makeObservedChecker,
  type ObservedChecker,
  type ObservedVerifyReport,
  type RunEvent,
  type RunStarted,
  stepEventStep,
} from "../log/index.ts"
import type { ScheduleSpec } from "../schedule/index.ts"
import { RunError } from "./errors.ts"

type Refused = "replay" | "resume" | "fork" | "diff"

const WHY: Readonly<Record<Refused, string>> = {
  replay: "there is no plan to re-execute",
  resume: "there is no trainer or plan to continue it with",
  fork: "there is no schedule to branch from",
  diff: "diff compares the steps of runs we made, and it has none",
}

const DONE: Readonly<Record<Refused, string>> = {
  replay: "replayed",
  resume: "resumed",
  fork: "forked",
  diff: "diffed",
}

/** Fails with one clear line when `started` is an observed run. */
export const refuseObserved = (started: RunStarted, action: Refused) => {
  const o = started.observed
  if (o === undefined) return Effect.void
  return Effect.fail(
    new RunError({
      message: `run ${started.runId} is an observed run (imported from ${o.source}, ${o.file}): it has no spec, so it cannot be ${DONE[action]}: ${WHY[action]}; \`interleave show ${started.runId}\` and \`interleave verify --log ${started.runId}\` read it`,
    }),
  )
}

/**
 * One pass over an observed run's events: the event-log rules (positions, RunStarted first, one
 * terminal last) and the observed-run checks, against `spec` when given.
 */
export const verifyObservedLog = <E, R>(
  where: string,
  events: Stream.Stream<RunEvent, E, R>,
  spec: ScheduleSpec | undefined,
) =>
  Effect.gen(function* () {
    let checker: ObservedChecker | undefined
    let position = 0
    const log = makeLogChecker()
    yield* events.pipe(
      Stream.runForEach((e) =>
        Effect.gen(function* () {
          log.push({ position: position++, type: e._tag, step: stepEventStep(e) })
          if (checker === undefined) {
            if (e._tag !== "RunStarted" || e.observed === undefined)
              return yield* new InputError({
                message: `${where}: not an observed run (its first event is ${e._tag})`,
              })
            checker = makeObservedChecker(e, spec)
          }
          checker.push(e)
        }),
      ),
    )
    if (checker === undefined) return yield* new InputError({ message: `${where}: no events` })
    const report = checker.finish()
    const l = log.finish()
    const violations = l.violations.map((v) => ({ rule: "event-log" as const, line: 0, message: v.message }))
    const total = violations.length
    const merged: ObservedVerifyReport = {
      ...report,
      ok: report.ok && l.ok,
      checks: [
        {
          rule: "event-log",
          status: l.ok ? "ok" : "fail",
          summary: `the stream's ${logRules.length} event-log rules (${logRules.map((r) => r.name).join(", ")})`,
          details: [],
        },
        ...report.checks,
      ],
      violations: [...violations, ...report.violations],
      violationCounts: total > 0 ? { "event-log": total, ...report.violationCounts } : report.violationCounts,
      violationTotal: report.violationTotal + total,
    }
    return merged
  })

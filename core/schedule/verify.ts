/** Verifying a configured schedule: the whole plan streamed through every rule, in constant memory. */
import { Effect } from "effect"
import { makeChecker, type VerifyReport } from "./invariants/index.ts"
import { makePlanner } from "./plan.ts"
import type { ScheduleSpec } from "./spec.ts"

export const verifySpec = (spec: ScheduleSpec): VerifyReport => {
  const planner = makePlanner(spec)
  const checker = makeChecker(spec)
  for (let i = 0; i < planner.total; i++) checker.push(planner.at(i))
  return checker.finish()
}

/** Steps verified between two turns of the event loop (a few milliseconds of work). */
export const VERIFY_CHUNK = 1 << 14

/** Lets the event loop run once (a macrotask: signal handlers get their turn). */
const yieldToEventLoop = Effect.async<void>((resume) => {
  const t = setImmediate(() => resume(Effect.void))
  return Effect.sync(() => clearImmediate(t))
})

/**
 * verifySpec as an Effect that gives the event loop a turn every VERIFY_CHUNK steps, so SIGINT and
 * SIGTERM interrupt a long walk as they do a run (a synchronous loop over 10^9 steps never would).
 */
export const verifySpecInterruptible = (spec: ScheduleSpec): Effect.Effect<VerifyReport> =>
  Effect.gen(function* () {
    const planner = makePlanner(spec)
    const checker = makeChecker(spec)
    for (let from = 0; from < planner.total; from += VERIFY_CHUNK) {
      const to = Math.min(planner.total, from + VERIFY_CHUNK)
      for (let i = from; i < to; i++) checker.push(planner.at(i))
      if (to < planner.total) yield* yieldToEventLoop
    }
    return checker.finish()
  })

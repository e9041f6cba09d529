/** Verifying a configured schedule: the whole plan streamed through every rule, in constant memory. */
import { makeChecker, type VerifyReport } from "./invariants/index.ts"
import { makePlanner } from "./plan.ts"
import type { ScheduleSpec } from "./spec.ts"

export const verifySpec = (spec: ScheduleSpec): VerifyReport => {
  const planner = makePlanner(spec)
  const checker = makeChecker(spec)
  for (let i = 0; i < planner.total; i++) checker.push(planner.at(i))
  return checker.finish()
}

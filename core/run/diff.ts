/** Two runs compared step by step: where their schedules first differ, and their losses. */
import { Effect, Stream } from "effect"
import { compareEvents, runReport, type StepCompleted } from "../log/index.ts"
import { refuseObserved } from "./observed.ts"
import { readRunEvents, summarizeLog } from "./read.ts"

export const diffRuns = (a: string, b: string) =>
  Effect.gen(function* () {
    const la = yield* summarizeLog(a)
    const lb = yield* summarizeLog(b)
    for (const l of [la, lb]) if (l.started) yield* refuseObserved(l.started, "diff")
    const steps = (id: string) =>
      readRunEvents(id).pipe(Stream.filter((e): e is StepCompleted => e._tag === "StepCompleted"))
    let firstPlanDiff: { step: number; path: string; a: unknown; b: unknown } | undefined
    let firstLossDiff: { step: number; a: number; b: number } | undefined
    const sumAbs = { visual: 0, text: 0 }
    const count = { visual: 0, text: 0 }
    yield* Stream.zip(steps(a), steps(b)).pipe(
      Stream.runForEach(([x, y]) =>
        Effect.sync(() => {
          // The plan fields only: measurements and losses are compared below.
          const pa: StepCompleted = { ...x, losses: {}, durationMs: 0, memory: {} }
          const pb: StepCompleted = { ...y, losses: {}, durationMs: 0, memory: {} }
          const d = compareEvents(pa, pb, { measurements: false, tolerance: 0 })
          if (d && !firstPlanDiff) firstPlanDiff = { step: x.step, ...d }
          const lx = x.losses.total ?? 0
          const ly = y.losses.total ?? 0
          if (lx !== ly && !firstLossDiff) firstLossDiff = { step: x.step, a: lx, b: ly }
          if (x.modality === y.modality) {
            sumAbs[x.modality] += Math.abs(lx - ly)
            count[x.modality]++
          }
        }),
      ),
    )
    const mean = (m: "visual" | "text") => (count[m] ? sumAbs[m] / count[m] : 0)
    const side = (runId: string, s: typeof la.state) => {
      const r = runReport(s)
      return {
        runId,
        status: s.status,
        steps: s.stepsCompleted,
        visualSteps: s.visualSteps,
        textSteps: s.textSteps,
        specHash: s.specHash,
        lastLoss: s.lastLoss,
        stepTime: r.stepTime,
        memory: r.memory,
      }
    }
    return {
      same: !firstPlanDiff && !firstLossDiff && la.state.stepsCompleted === lb.state.stepsCompleted,
      a: side(a, la.state),
      b: side(b, lb.state),
      firstPlanDifference: firstPlanDiff ?? null,
      firstLossDifference: firstLossDiff ?? null,
      meanAbsLossDifference: { visual: mean("visual"), text: mean("text") },
    }
  })

/** Forking a run at a step: a new run that shares the parent's history before it. */
import { Clock, Effect, Stream } from "effect"
import { hashJson, type RunEvent, type RunStarted, toEnvelope } from "../log/events.ts"
import { makePlanner, type StepPlan } from "../schedule/plan.ts"
import { encodeSpec, type ScheduleSpec } from "../schedule/spec.ts"
import { EventStore } from "../store/event-store.ts"
import type { EngineOptions } from "./drive.ts"
import { RunError } from "./errors.ts"
import { readRunEvents, specOfRun, summarizeLog } from "./read.ts"
import { resumeRun } from "./start.ts"

const describePlan = (p: StepPlan) =>
  `${p.phase}#${p.phaseStep} ${p.modality} micro ${p.micro}${p.update ? " update" : ""}`

/**
 * Forks `parentId` at `atStep`: a new run whose log copies the parent's history before `atStep`
 * and continues under `spec` from there. `spec` must plan the shared steps as the parent did.
 */
export const forkRun = (
  input: {
    readonly parentId: string
    readonly atStep: number
    readonly runId: string
    readonly spec: ScheduleSpec
    readonly source: string
  },
  opts: EngineOptions = {},
) =>
  Effect.gen(function* () {
    const store = yield* EventStore
    const parent = yield* summarizeLog(input.parentId)
    const pStarted = parent.started!
    if (!Number.isInteger(input.atStep) || input.atStep < 0 || input.atStep > parent.state.lastStep + 1)
      return yield* new RunError({
        message: `--at: step ${input.atStep} is outside the parent's recorded steps (0..${parent.state.lastStep + 1})`,
      })
    if ((yield* store.version(input.runId)) > 0)
      return yield* new RunError({
        message: `run "${input.runId}" already exists in the store; pick another --run-id`,
      })
    const parentSpec = yield* specOfRun(pStarted)
    const before = makePlanner(parentSpec)
    const after = makePlanner(input.spec)
    if (after.total < input.atStep)
      return yield* new RunError({
        message: `the fork's schedule has ${after.total} steps, fewer than --at ${input.atStep}`,
      })
    for (let s = 0; s < input.atStep; s++) {
      const a = before.at(s)
      const b = after.at(s)
      if (JSON.stringify(a) !== JSON.stringify(b))
        return yield* new RunError({
          message: `the fork's schedule plans step ${s} differently from the parent (${describePlan(b)} vs ${describePlan(a)}); a fork shares the parent's history before --at, so its schedule must agree there`,
        })
    }
    const forkStarted: RunStarted = {
      ...pStarted,
      runId: input.runId,
      spec: encodeSpec(input.spec),
      specHash: hashJson(encodeSpec(input.spec)),
      source: input.source,
      steps: after.total,
      seed: input.spec.seed,
      startedAt: yield* Clock.currentTimeMillis,
      forkOf: { runId: input.parentId, atStep: input.atStep },
    }
    let version = yield* store.append(input.runId, [toEnvelope(forkStarted)], 0)
    const keep = (e: RunEvent): boolean => {
      switch (e._tag) {
        case "RunStarted":
        case "RunCompleted":
        case "RunAborted":
        case "StepFailed":
        case "RunResumed":
        case "RunInterrupted":
          return false
        default:
          return e.step < input.atStep
      }
    }
    // The parent's history before atStep, copied in batches of 4096 events (one append each).
    yield* readRunEvents(input.parentId).pipe(
      Stream.filter(keep),
      Stream.grouped(4096),
      Stream.runForEach((chunk) =>
        Effect.map(store.append(input.runId, Array.from(chunk, toEnvelope), version), (v) => {
          version = v
        }),
      ),
    )
    return yield* resumeRun(input.runId, opts)
  })

/** Forking a run at a step: a new run that shares the parent's history before it. */
import { Clock, Effect, Either, Stream } from "effect"
import { hashJson, type RunEvent, type RunStarted, toEnvelope } from "../log/index.ts"
import { encodeSpec, makePlanner, type ScheduleSpec, type StepPlan } from "../schedule/index.ts"
import { EventStore } from "../store/index.ts"
import type { EngineOptions } from "./drive.ts"
import { RunError } from "./errors.ts"
import { currentWriter } from "./liveness.ts"
import { readRunEvents, specOfRun, summarizeLog } from "./read.ts"
import { checkRunId } from "./run-id.ts"
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
    /** The fork's length (from step 0); default the parent's planned length. */
    readonly steps?: number | undefined
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
    const id = checkRunId(input.runId)
    if (Either.isLeft(id)) return yield* new RunError({ message: id.left })
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
    // The shared history was produced with the parent's data and batch: a fork that changes them
    // would claim steps it did not run, and its replay would diverge at step 0.
    const parentBatch = parentSpec.batch
    if (input.spec.seed !== parentSpec.seed)
      return yield* new RunError({
        message: `the fork's seed (${input.spec.seed}) differs from the parent's (${parentSpec.seed}); a fork shares the parent's history, so it keeps its seed (start a new run instead)`,
      })
    for (const m of ["visual", "text"] as const)
      if (
        input.spec.batch[m].size !== parentBatch[m].size ||
        input.spec.batch[m].accumulation !== parentBatch[m].accumulation
      )
        return yield* new RunError({
          message: `the fork's ${m} batch (${input.spec.batch[m].size} x ${input.spec.batch[m].accumulation}) differs from the parent's (${parentBatch[m].size} x ${parentBatch[m].accumulation}); a fork shares the parent's history, so it keeps its batch sizes (start a new run instead)`,
        })
    const limit = Math.min(after.total, input.steps ?? pStarted.steps)
    if (input.steps !== undefined && (!Number.isInteger(input.steps) || input.steps < 1))
      return yield* new RunError({ message: `--steps: must be an integer >= 1, got ${input.steps}` })
    if (limit < input.atStep)
      return yield* new RunError({ message: `--steps ${limit} is shorter than --at ${input.atStep}` })
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
      steps: limit,
      seed: input.spec.seed,
      startedAt: yield* Clock.currentTimeMillis,
      writer: currentWriter(),
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
        case "ObservedWindow":
        case "ObservedEval":
        case "ObservedInterval":
        case "ObservedStats":
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
    const summary = yield* resumeRun(input.runId, opts)
    return { ...summary, forked: { parentId: input.parentId, atStep: input.atStep } }
  })

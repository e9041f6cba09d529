/** Starting a run from step 0, and continuing one that was interrupted or killed. */
import { Clock, Effect } from "effect"
import { runtimeVersions } from "../common/versions.ts"
import { type Checkpointed, hashJson, type RunStarted, toEnvelope } from "../log/events.ts"
import { evolveRunState, initialRunState } from "../log/projections.ts"
import { makePlanner, type Planner } from "../schedule/plan.ts"
import { encodeSpec, type ScheduleSpec, totalSteps } from "../schedule/spec.ts"
import { EventStore } from "../store/event-store.ts"
import { driveRun, type EngineOptions } from "./drive.ts"
import { RunError } from "./errors.ts"
import { specOfRun, summarizeLog } from "./read.ts"
import { TrainingAdapter, type TrainingSession } from "./training-adapter.ts"

export interface StartRunInput {
  readonly runId: string
  readonly spec: ScheduleSpec
  readonly source: string
  /** Run only the first N steps of the schedule. */
  readonly steps?: number | undefined
  readonly adapterOptions: Readonly<Record<string, unknown>>
}

export const newRunStarted = (
  input: StartRunInput,
  session: TrainingSession,
  opts: EngineOptions,
  startedAt: number,
): RunStarted => {
  const encoded = encodeSpec(input.spec)
  const total = totalSteps(input.spec)
  return {
    _tag: "RunStarted",
    runId: input.runId,
    spec: encoded,
    specHash: hashJson(encoded),
    source: input.source,
    steps: Math.min(total, input.steps ?? total),
    seed: input.spec.seed,
    adapter: {
      kind: session.description.kind,
      options: session.description.options,
      info: session.description.info,
    },
    versions: runtimeVersions(session.description.info),
    startedAt,
    engine: {
      evalEvery: session.evaluate ? (opts.evalEvery ?? 0) : 0,
      checkpointEvery: session.stateless ? 0 : (opts.checkpointEvery ?? 0),
    },
  }
}

const checkSteps = (steps: number | undefined) =>
  steps !== undefined && (!Number.isInteger(steps) || steps < 1)
    ? Effect.fail(new RunError({ message: `--steps: must be an integer >= 1, got ${steps}` }))
    : Effect.void

/** Starts a new run from step 0. */
export const startRun = (input: StartRunInput, opts: EngineOptions = {}) =>
  Effect.scoped(
    Effect.gen(function* () {
      yield* checkSteps(input.steps)
      const store = yield* EventStore
      const adapter = yield* TrainingAdapter
      if ((yield* store.version(input.runId)) > 0)
        return yield* new RunError({
          message: `run "${input.runId}" already exists in the store; pick another --run-id`,
        })
      const session = yield* adapter.open({ spec: input.spec, options: input.adapterOptions })
      const started = newRunStarted(input, session, opts, yield* Clock.currentTimeMillis)
      const version = yield* store.append(input.runId, [toEnvelope(started)], 0)
      return yield* driveRun(
        {
          runId: input.runId,
          planner: makePlanner(input.spec),
          limit: started.steps,
          from: 0,
          session,
          version,
          state: evolveRunState(initialRunState, started),
          lastCheckpointStep: -1,
          pendingEval: false,
          evalEvery: started.engine.evalEvery,
          checkpointEvery: started.engine.checkpointEvery,
        },
        opts,
      )
    }),
  )

/** Brings a stateful session to the state after `lastStep`: restore the checkpoint, re-run the rest. */
const catchUp = (
  session: TrainingSession,
  planner: Planner,
  lastCheckpoint: Checkpointed | undefined,
  lastStep: number,
) =>
  Effect.gen(function* () {
    if (session.stateless) return
    let from = 0
    if (lastCheckpoint && lastCheckpoint.step <= lastStep) {
      yield* session.restore(lastCheckpoint.file)
      from = lastCheckpoint.step + 1
    }
    for (let s = from; s <= lastStep; s++) yield* session.step(planner.at(s))
  })

/** Continues a run that was interrupted or killed, from the step after the last one recorded. */
export const resumeRun = (runId: string, opts: EngineOptions = {}) =>
  Effect.scoped(
    Effect.gen(function* () {
      const log = yield* summarizeLog(runId)
      const started = log.started!
      if (log.state.status === "completed") return { runId, status: "completed" as const, state: log.state }
      if (log.state.status === "aborted")
        return yield* new RunError({
          message: `run "${runId}" was aborted (${log.state.abortReason}); it cannot be resumed. Fork it from an earlier step instead`,
        })
      const spec = yield* specOfRun(started)
      const planner = makePlanner(spec)
      const adapter = yield* TrainingAdapter
      const session = yield* adapter.open({ spec, options: started.adapter.options })
      const lastStep = log.state.lastStep
      yield* catchUp(session, planner, log.lastCheckpoint, lastStep)
      const evalEvery = started.engine.evalEvery
      const pendingEval =
        session.evaluate !== undefined &&
        evalEvery > 0 &&
        lastStep >= 0 &&
        (lastStep + 1) % evalEvery === 0 &&
        log.lastEvalStep !== lastStep
      return yield* driveRun(
        {
          runId,
          planner,
          limit: started.steps,
          from: lastStep + 1,
          session,
          version: log.version,
          state: log.state,
          lastCheckpointStep: log.lastCheckpoint?.step ?? -1,
          pendingEval,
          evalEvery,
          checkpointEvery: started.engine.checkpointEvery,
        },
        opts,
      )
    }),
  )

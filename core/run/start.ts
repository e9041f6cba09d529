/** Starting a run from step 0, and continuing one that was interrupted or killed. */
import { existsSync } from "node:fs"
import { Clock, Effect, Either } from "effect"
import { runtimeVersions } from "../common/index.ts"
import {
  type Checkpointed,
  evolveRunState,
  hashJson,
  initialRunState,
  type RunStarted,
  toEnvelope,
} from "../log/index.ts"
import { encodeSpec, makePlanner, type Planner, type ScheduleSpec, totalSteps } from "../schedule/index.ts"
import { EventStore, StoreError } from "../store/index.ts"
import { driveRun, type EngineOptions, isCheckpointStep, openCheckpointPath } from "./drive.ts"
import { RunError } from "./errors.ts"
import { currentWriter, isThisProcess, writerLiveness } from "./liveness.ts"
import { specOfRun, summarizeLog } from "./read.ts"
import { checkRunId } from "./run-id.ts"
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
      ...(session.description.environment ? { environment: session.description.environment } : {}),
    },
    versions: runtimeVersions(session.description.info),
    startedAt,
    writer: currentWriter(),
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
      const id = checkRunId(input.runId)
      if (Either.isLeft(id)) return yield* new RunError({ message: id.left })
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
          pendingEval: false,
          pendingCheckpoint: false,
          evalEvery: started.engine.evalEvery,
          checkpointEvery: started.engine.checkpointEvery,
        },
        opts,
      )
    }),
  )

/**
 * Brings a stateful session to the state after `lastStep`: restore the checkpoint, re-run the rest
 * without recording. A checkpoint file that is gone is bad input naming the run and the file.
 */
const catchUp = (
  runId: string,
  session: TrainingSession,
  planner: Planner,
  lastCheckpoint: Checkpointed | undefined,
  lastStep: number,
  base: string | undefined,
) =>
  Effect.gen(function* () {
    if (session.stateless) return { restored: undefined, rerun: 0 }
    let from = 0
    let restored: { step: number; file: string } | undefined
    if (lastCheckpoint && lastCheckpoint.step <= lastStep) {
      const file = openCheckpointPath(lastCheckpoint.file, base)
      if (!existsSync(file))
        return yield* new RunError({
          message: `run "${runId}": its checkpoint after step ${lastCheckpoint.step} is missing (${file}); it cannot be resumed without it. Fork it at step ${lastCheckpoint.step + 1} or earlier instead`,
        })
      yield* session.restore(file)
      from = lastCheckpoint.step + 1
      restored = { step: lastCheckpoint.step, file: lastCheckpoint.file }
    }
    for (let s = from; s <= lastStep; s++) yield* session.step(planner.at(s))
    return { restored, rerun: Math.max(0, lastStep + 1 - from) }
  })

/** Continues a run that was interrupted or killed, from the step after the last one recorded. */
export const resumeRun = (runId: string, opts: EngineOptions = {}) =>
  Effect.scoped(
    Effect.gen(function* () {
      const store = yield* EventStore
      const log = yield* summarizeLog(runId)
      const started = log.started!
      if (log.state.status === "completed") return { runId, status: "completed" as const, state: log.state }
      if (log.state.status === "aborted")
        return yield* new RunError({
          message: `run "${runId}" was aborted (${log.state.abortReason}); it cannot be resumed. Fork it from an earlier step instead`,
        })
      const now = yield* Clock.currentTimeMillis
      const w = log.state.writer
      // Another live process is writing it (this process may resume its own runs: fork does).
      if (
        log.state.status === "running" &&
        w &&
        !isThisProcess(w) &&
        writerLiveness(w, undefined, now) === "alive"
      )
        // The store is unavailable to us for this run (exit 3, as for a store locked by another
        // process), not bad input: the same command works once that writer stops.
        return yield* new StoreError({
          message: `run "${runId}" is being written by another live writer (process ${w.pid} on ${w.host}); stop it first (Ctrl-C keeps what it did), then \`interleave resume ${runId}\``,
          kind: "unavailable",
        })
      const spec = yield* specOfRun(started)
      const planner = makePlanner(spec)
      const adapter = yield* TrainingAdapter
      const session = yield* adapter.open({ spec, options: started.adapter.options })
      const lastStep = log.state.lastStep
      const { restored, rerun } = yield* catchUp(
        runId,
        session,
        planner,
        log.lastCheckpoint,
        lastStep,
        opts.checkpointBase,
      )
      const resumed = {
        _tag: "RunResumed" as const,
        fromStep: lastStep + 1,
        ...(restored ? { checkpoint: restored } : {}),
        writer: currentWriter(),
        resumedAt: now,
      }
      const version = yield* store.append(runId, [toEnvelope(resumed)], log.version)
      const evalEvery = started.engine.evalEvery
      const ckptEvery = session.stateless ? 0 : started.engine.checkpointEvery
      const pendingEval =
        session.evaluate !== undefined &&
        evalEvery > 0 &&
        lastStep >= 0 &&
        (lastStep + 1) % evalEvery === 0 &&
        log.lastEvalStep !== lastStep
      const pendingCheckpoint =
        lastStep >= 0 &&
        isCheckpointStep(planner, lastStep, ckptEvery, started.steps) &&
        log.lastCheckpoint?.step !== lastStep
      const summary = yield* driveRun(
        {
          runId,
          planner,
          limit: started.steps,
          from: lastStep + 1,
          session,
          version,
          state: evolveRunState(log.state, resumed),
          pendingEval,
          pendingCheckpoint,
          evalEvery,
          checkpointEvery: started.engine.checkpointEvery,
        },
        opts,
      )
      return { ...summary, resumed: { fromStep: resumed.fromStep, checkpoint: restored, rerunSteps: rerun } }
    }),
  )

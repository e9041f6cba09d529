/**
 * The engine: plan -> adapter -> events -> store, with the run state folded as it goes.
 *
 * `startRun`, `resumeRun` and `forkRun` share one loop (`drive`). Events are buffered and appended
 * in batches, always whole steps at a time, so a run killed at any moment leaves a log that ends at
 * a step boundary, and `resume` continues from the step after the last one recorded. Stateful
 * adapters restore their last checkpoint and re-run (without recording) the steps after it.
 */
import { mkdirSync } from "node:fs"
import { join } from "node:path"
import { Chunk, Data, Effect, Either, Option, Stream } from "effect"
import { runtimeVersions } from "../common/versions.ts"
import { compareEvents, type Difference, stepOf } from "../log/compare.ts"
import {
  type Checkpointed,
  decodeEvent,
  EVENT_VERSIONS,
  type EventDecodeError,
  hashJson,
  type RunEvent,
  type RunEventType,
  type RunStarted,
  stepCompleted,
  toEnvelope,
} from "../log/events.ts"
import { evolveRunState, initialRunState, makeRunStateFold, type RunState } from "../log/projections.ts"
import { makePlanner, type Planner, type StepPlan } from "../schedule/plan.ts"
import { decodeSpec, encodeSpec, type ScheduleSpec, type SpecError, totalSteps } from "../schedule/spec.ts"
import {
  type EventEnvelope,
  EventStore,
  type EventStoreShape,
  StoreError,
  type VersionConflict,
} from "../store/event-store.ts"
import {
  type AdapterUnavailable,
  StepFailure,
  type StepOutcome,
  TrainingAdapter,
  type TrainingSession,
} from "./training-adapter.ts"

export interface Progress {
  readonly runId: string
  /** Steps done so far in this process (for steps/s) and the run's position. */
  readonly stepsThisSession: number
  readonly elapsedMs: number
  readonly state: RunState
}

export interface EngineOptions {
  /** Evaluate every K steps (and after the last step) when the adapter can; 0 = never. */
  readonly evalEvery?: number | undefined
  /** Checkpoint stateful adapters at the first update step K or more steps after the previous one. */
  readonly checkpointEvery?: number | undefined
  readonly checkpointDir?: string | undefined
  /** Events per append batch. */
  readonly flushEvery?: number | undefined
  /** Longest time between appends. */
  readonly flushMs?: number | undefined
  readonly onProgress?: ((p: Progress) => void) | undefined
  /** Stop after this many steps in this process (tests: simulate a crash mid-run). */
  readonly stopAfter?: number | undefined
}

export type RunOutcomeStatus = "completed" | "aborted" | "stopped"

export interface RunSummary {
  readonly runId: string
  readonly status: RunOutcomeStatus
  readonly state: RunState
}

/** A run cannot be started, resumed or forked as asked (bad input: exit 2). */
export class RunError extends Data.TaggedError("RunError")<{ readonly message: string }> {}

/** A replay that did not reproduce the log. */
export class Divergence extends Data.TaggedError("Divergence")<{
  readonly runId: string
  readonly position: number
  readonly step: number | undefined
  readonly difference: Difference
}> {
  override get message(): string {
    const d = this.difference
    const at =
      this.step === undefined ? `event ${this.position}` : `step ${this.step} (event ${this.position})`
    return `run ${this.runId} diverges at ${at}: ${d.path}: recorded ${JSON.stringify(d.a)}, replayed ${JSON.stringify(d.b)}`
  }
}

export type EngineError =
  | RunError
  | StoreError
  | VersionConflict
  | AdapterUnavailable
  | StepFailure
  | EventDecodeError
  | SpecError

const DEFAULTS = { flushEvery: 2048, flushMs: 200 }

interface DriveContext {
  readonly runId: string
  readonly planner: Planner
  readonly limit: number
  readonly from: number
  readonly session: TrainingSession
  readonly version: number
  readonly state: RunState
  readonly lastCheckpointStep: number
  readonly pendingEval: boolean
  readonly evalEvery: number
  readonly checkpointEvery: number
}

const driveRun = (ctx: DriveContext, opts: EngineOptions) =>
  Effect.gen(function* () {
    const store = yield* EventStore
    const { runId, planner, limit, session } = ctx
    const flushEvery = opts.flushEvery ?? DEFAULTS.flushEvery
    const flushMs = opts.flushMs ?? DEFAULTS.flushMs
    const evalEvery = session.evaluate ? ctx.evalEvery : 0
    const ckptEvery = session.stateless ? 0 : ctx.checkpointEvery
    const ckptDir = opts.checkpointDir ?? join(".interleave", "checkpoints")
    const started = Date.now()
    const stopAt = opts.stopAfter === undefined ? limit : Math.min(limit, ctx.from + opts.stopAfter)

    let buffer: EventEnvelope[] = []
    let version = ctx.version
    const fold = makeRunStateFold(ctx.state)
    let lastCkpt = ctx.lastCheckpointStep
    let lastFlush = started
    let done = 0

    const emit = (e: RunEvent) => {
      buffer.push(toEnvelope(e))
      fold.push(e)
    }
    const flush = Effect.suspend(() => {
      if (buffer.length === 0) return Effect.void
      const batch = buffer
      buffer = []
      return Effect.map(store.append(runId, batch, version), (v) => {
        version = v
        lastFlush = Date.now()
        opts.onProgress?.({
          runId,
          stepsThisSession: done,
          elapsedMs: lastFlush - started,
          state: fold.state(),
        })
      })
    })
    const evaluate = (step: number) =>
      Effect.gen(function* () {
        const r = yield* session.evaluate!()
        emit({ _tag: "EvalCompleted", step, metric: r.metric, values: r.values, chance: r.chance })
      })
    const abort = (plan: StepPlan, f: StepFailure) =>
      Effect.gen(function* () {
        emit({
          _tag: "StepFailed",
          step: plan.step,
          phase: plan.phase,
          modality: plan.modality,
          kind: f.kind,
          message: f.message,
        })
        emit({
          _tag: "RunAborted",
          step: plan.step,
          reason: `${f.kind} at step ${plan.step}: ${f.message}`,
          abortedAt: Date.now(),
        })
        yield* flush
        return { runId, status: "aborted" as const, state: fold.state() }
      })

    if (ctx.pendingEval && ctx.from > 0) yield* evaluate(ctx.from - 1)

    const sync = session.stepSync !== undefined
    const loop = Effect.gen(function* () {
      for (let s = ctx.from; s < stopAt; s++) {
        const plan = planner.at(s)
        let outcome: StepOutcome | StepFailure
        if (session.stepSync) outcome = session.stepSync(plan)
        else {
          const r = yield* Effect.either(session.step(plan))
          outcome = Either.isLeft(r) ? r.left : r.right
        }
        if (outcome instanceof StepFailure) return yield* abort(plan, outcome)
        if (plan.phaseStep === 0) {
          const index = planner.spec.phases.findIndex((p) => p.name === plan.phase)
          emit({ _tag: "PhaseStarted", phase: plan.phase, index, step: s })
        }
        emit(stepCompleted(plan, outcome))
        done++
        if (evalEvery > 0 && ((s + 1) % evalEvery === 0 || s === limit - 1)) {
          const r = yield* Effect.either(evaluate(s))
          if (Either.isLeft(r)) return yield* abort(plan, r.left)
        }
        if (ckptEvery > 0 && plan.update && s - lastCkpt >= ckptEvery && s < limit - 1) {
          yield* flush
          const dir = join(ckptDir, runId)
          mkdirSync(dir, { recursive: true })
          const file = join(dir, `step-${s}.ckpt`)
          const r = yield* Effect.either(session.checkpoint(file))
          if (Either.isLeft(r)) return yield* abort(plan, r.left)
          const ev: Checkpointed = { _tag: "Checkpointed", step: s, file }
          emit(ev)
          lastCkpt = s
        }
        // Sim steps take microseconds: look at the clock every 64; real steps take ms: every step.
        if (
          buffer.length >= flushEvery ||
          ((sync ? (s & 63) === 0 : true) && Date.now() - lastFlush >= flushMs)
        )
          yield* flush
      }
      if (stopAt < limit) {
        yield* flush
        return { runId, status: "stopped" as const, state: fold.state() }
      }
      emit({ _tag: "RunCompleted", steps: fold.state().stepsCompleted, completedAt: Date.now() })
      yield* flush
      return { runId, status: "completed" as const, state: fold.state() }
    })
    // Ctrl-C: keep what was done; the run stays resumable.
    return yield* loop.pipe(Effect.onInterrupt(() => Effect.ignore(flush)))
  })

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
    startedAt: Date.now(),
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
      const started = newRunStarted(input, session, opts)
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

/** What resume needs from a recorded log, gathered in one streaming pass. */
export interface LogSummary {
  readonly started: RunStarted | undefined
  readonly state: RunState
  readonly version: number
  readonly lastCheckpoint: Checkpointed | undefined
  /** Step of the last EvalCompleted, -1 if none. */
  readonly lastEvalStep: number
}

export const readRunEvents = (runId: string, options?: { from?: number; to?: number }) =>
  Effect.map(EventStore, (store) =>
    store.read(runId, options).pipe(
      // Decoded a page at a time: an Effect per event would cost more than the decode itself.
      Stream.mapChunksEffect((chunk) => {
        const out: RunEvent[] = []
        for (const e of chunk) {
          // Fast path for our own rows; anything unexpected goes through decodeEvent for its error.
          if (EVENT_VERSIONS[e.type as RunEventType] === e.version) {
            out.push(e.data as RunEvent)
            continue
          }
          const d = decodeEvent(e, `run ${runId}, event ${e.position}`, { validate: false })
          if (Either.isLeft(d)) return Effect.fail(d.left)
          out.push(d.right)
        }
        return Effect.succeed(Chunk.unsafeFromArray(out))
      }),
    ),
  ).pipe(Stream.unwrap)

export const summarizeLog = (runId: string) =>
  Effect.gen(function* () {
    const fold = makeRunStateFold()
    let started: RunStarted | undefined
    let version = 0
    let lastCheckpoint: Checkpointed | undefined
    let lastEvalStep = -1
    yield* readRunEvents(runId).pipe(
      Stream.runForEachChunk((chunk) =>
        Effect.sync(() => {
          for (const e of chunk) {
            fold.push(e)
            version++
            if (e._tag === "RunStarted") started ??= e
            else if (e._tag === "Checkpointed") lastCheckpoint = e
            else if (e._tag === "EvalCompleted") lastEvalStep = e.step
          }
        }),
      ),
    )
    if (version === 0)
      return yield* new RunError({ message: `no run "${runId}" in the store (see \`interleave runs\`)` })
    if (!started) return yield* new RunError({ message: `run "${runId}" has no RunStarted event` })
    const summary: LogSummary = { started, state: fold.state(), version, lastCheckpoint, lastEvalStep }
    return summary
  })

export const specOfRun = (started: RunStarted) =>
  decodeSpec(started.spec, `run ${started.runId}: recorded spec`)

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

const continueRun = (runId: string, opts: EngineOptions) =>
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

/** Continues a run that was interrupted or killed, from the step after the last one recorded. */
export const resumeRun = (runId: string, opts: EngineOptions = {}) => continueRun(runId, opts)

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
    // The fork's RunStarted, then the parent's events before atStep, in one transaction-sized stream copy.
    const forkStarted: RunStarted = {
      ...pStarted,
      runId: input.runId,
      spec: encodeSpec(input.spec),
      specHash: hashJson(encodeSpec(input.spec)),
      source: input.source,
      steps: after.total,
      seed: input.spec.seed,
      startedAt: Date.now(),
      forkOf: { runId: input.parentId, atStep: input.atStep },
    }
    let version = yield* store.append(input.runId, [toEnvelope(forkStarted)], 0)
    const keep = (e: RunEvent): boolean => {
      switch (e._tag) {
        case "RunStarted":
        case "RunCompleted":
        case "RunAborted":
        case "StepFailed":
          return false
        default:
          return e.step < input.atStep
      }
    }
    yield* readRunEvents(input.parentId).pipe(
      Stream.filter(keep),
      Stream.grouped(4096),
      Stream.runForEach((chunk) =>
        Effect.map(store.append(input.runId, Array.from(chunk, toEnvelope), version), (v) => {
          version = v
        }),
      ),
    )
    return yield* continueRun(input.runId, opts)
  })

const describePlan = (p: StepPlan) =>
  `${p.phase}#${p.phaseStep} ${p.modality} micro ${p.micro}${p.update ? " update" : ""}`

export interface ReplayResult {
  readonly runId: string
  readonly eventsCompared: number
  readonly steps: number
  readonly status: RunOutcomeStatus
}

/**
 * Re-executes a recorded run (its spec, seed and adapter options) and compares every event it
 * would write against the log, in bounded memory: the replay's appends go to a sink that reads the
 * recorded events at the same positions. Fails with `Divergence` at the first difference.
 */
export const replayRun = (runId: string, opts: { readonly checkpointDir?: string } = {}) =>
  Effect.scoped(
    Effect.gen(function* () {
      const store = yield* EventStore
      const log = yield* summarizeLog(runId)
      const started = log.started!
      const spec = yield* specOfRun(started)
      const adapter = yield* TrainingAdapter
      const session = yield* adapter.open({ spec, options: started.adapter.options })
      const cmp = { measurements: session.stateless, tolerance: session.stateless ? 0 : 1e-6 }
      const diverge = (position: number, step: number | undefined, difference: Difference) =>
        new Divergence({ runId, position, step, difference })
      const rec0 = yield* readRunEvents(runId, { from: 0, to: 1 }).pipe(Stream.runHead)
      let compared = 0
      // The sink can only fail with store errors; a divergence is parked here and raised after.
      let found: Divergence | undefined
      const stop = (d: Divergence) => {
        found = d
        return Effect.fail(new StoreError({ message: d.message }))
      }
      const sink: EventStoreShape = {
        ...store,
        version: () => Effect.succeed(0),
        append: (_stream, events, expected) =>
          Effect.gen(function* () {
            const recorded = yield* Stream.runCollect(
              store.read(runId, { from: expected, to: expected + events.length }),
            )
            const rec = Array.from(recorded)
            for (const [i, env] of events.entries()) {
              const mine = env.data as RunEvent
              const stored = rec[i]
              const step = stepOf(mine)
              if (!stored)
                return yield* stop(
                  diverge(expected + i, step, { path: "log", a: "(end of log)", b: mine._tag }),
                )
              const theirs = decodeEvent(stored, `run ${runId}, event ${stored.position}`, {
                validate: false,
              })
              if (Either.isLeft(theirs)) return yield* new StoreError({ message: theirs.left.message })
              const d = compareEvents(theirs.right, mine, cmp)
              if (d) return yield* stop(diverge(expected + i, step, d))
              compared++
            }
            return expected + events.length
          }),
      }
      if (Option.isSome(rec0)) {
        const d = compareEvents(rec0.value, started, cmp)
        if (d) return yield* diverge(0, undefined, d)
      }
      const stopAfter = log.state.status === "running" ? log.state.lastStep + 1 : undefined
      const result = yield* driveRun(
        {
          runId,
          planner: makePlanner(spec),
          limit: started.steps,
          from: 0,
          session,
          version: 1,
          state: evolveRunState(initialRunState, started),
          lastCheckpointStep: -1,
          pendingEval: false,
          evalEvery: started.engine.evalEvery,
          checkpointEvery: started.engine.checkpointEvery,
        },
        { stopAfter, checkpointDir: opts.checkpointDir ?? join(".interleave", "replay-checkpoints") },
      ).pipe(
        Effect.provideService(EventStore, sink),
        Effect.catchTag(
          "StoreError",
          (e): Effect.Effect<never, StoreError | Divergence> => (found ? Effect.fail(found) : Effect.fail(e)),
        ),
      )
      const replayedVersion = 1 + compared
      if (replayedVersion < log.version)
        return yield* diverge(replayedVersion, undefined, {
          path: "log",
          a: `${log.version - replayedVersion} more event(s)`,
          b: "(end of replay)",
        })
      return {
        runId,
        eventsCompared: compared + 1,
        steps: result.state.stepsCompleted,
        status: result.status,
      }
    }),
  )

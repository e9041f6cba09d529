/**
 * The drive loop: plan -> adapter -> events -> store, with the run state folded as it goes.
 *
 * Start, resume, fork and replay all run through `driveRun`. Events are buffered and appended in
 * batches, always whole steps at a time, so a run killed at any moment leaves a log that ends at a
 * step boundary, and `resume` continues from the step after the last one recorded.
 */
import * as fs from "node:fs"
import { join } from "node:path"
import { Clock, Effect, Either } from "effect"
import { type Checkpointed, type RunEvent, stepCompleted, toEnvelope } from "../log/events.ts"
import { makeRunStateFold, type RunState } from "../log/projections.ts"
import type { Planner, StepPlan } from "../schedule/plan.ts"
import { type EventEnvelope, EventStore } from "../store/event-store.ts"
import { StepFailure, type StepOutcome, type TrainingSession } from "./training-adapter.ts"

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

/** How a drive ended, with the run's state at that point. */
export interface RunSummary {
  readonly runId: string
  readonly status: RunOutcomeStatus
  readonly state: RunState
}

const DEFAULTS = { flushEvery: 2048, flushMs: 200 }

export interface DriveContext {
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

/** Creates a checkpoint folder; a failure is the step's failure, so the run ends with RunAborted. */
const makeDir = (dir: string) =>
  Effect.try({
    try: () => fs.mkdirSync(dir, { recursive: true }),
    catch: (e) =>
      new StepFailure({
        kind: "adapter-error",
        message: `cannot create checkpoint folder ${dir}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`,
      }),
  })

export const driveRun = (ctx: DriveContext, opts: EngineOptions) =>
  Effect.gen(function* () {
    const store = yield* EventStore
    const { runId, planner, limit, session } = ctx
    const flushEvery = opts.flushEvery ?? DEFAULTS.flushEvery
    const flushMs = opts.flushMs ?? DEFAULTS.flushMs
    const evalEvery = session.evaluate ? ctx.evalEvery : 0
    const ckptEvery = session.stateless ? 0 : ctx.checkpointEvery
    const ckptDir = opts.checkpointDir ?? join(".interleave", "checkpoints")
    const now = Clock.currentTimeMillis
    const started = yield* now
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
      return Effect.flatMap(store.append(runId, batch, version), (v) =>
        Effect.map(now, (t) => {
          version = v
          lastFlush = t
          opts.onProgress?.({ runId, stepsThisSession: done, elapsedMs: t - started, state: fold.state() })
        }),
      )
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
          abortedAt: yield* now,
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
          const file = join(dir, `step-${s}.ckpt`)
          const r = yield* Effect.either(Effect.zipRight(makeDir(dir), session.checkpoint(file)))
          if (Either.isLeft(r)) return yield* abort(plan, r.left)
          const ev: Checkpointed = { _tag: "Checkpointed", step: s, file }
          emit(ev)
          lastCkpt = s
        }
        // Sim steps take microseconds: look at the clock every 64; real steps take ms: every step.
        if (buffer.length >= flushEvery || (sync ? (s & 63) === 0 : true)) {
          if (buffer.length >= flushEvery || (yield* now) - lastFlush >= flushMs) yield* flush
        }
      }
      if (stopAt < limit) {
        yield* flush
        return { runId, status: "stopped" as const, state: fold.state() }
      }
      emit({ _tag: "RunCompleted", steps: fold.state().stepsCompleted, completedAt: yield* now })
      yield* flush
      return { runId, status: "completed" as const, state: fold.state() }
    })
    // Ctrl-C: keep what was done; the run stays resumable.
    return yield* loop.pipe(Effect.onInterrupt(() => Effect.ignore(flush)))
  })

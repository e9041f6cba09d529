/**
 * The drive loop: plan -> adapter -> events -> store, with the run state folded as it goes.
 *
 * Start, resume, fork and replay all run through `driveRun`. Events are buffered and appended in
 * batches, always whole steps at a time, so a run killed at any moment leaves a log that ends at a
 * step boundary, and `resume` continues from the step after the last one recorded. An interrupted
 * drive (Ctrl-C, SIGTERM) appends what it has, then a RunInterrupted event; a failure that is not
 * the training's fault (the trainer process died, the device was lost) ends the same way, so the
 * run stays resumable; a training failure (NaN loss, out of memory) aborts it.
 */
import * as fs from "node:fs"
import { isAbsolute, join, relative, resolve } from "node:path"
import { Clock, Effect, Either, Fiber, Schedule } from "effect"
import {
  type Checkpointed,
  makeRunStateFold,
  type RunEvent,
  type RunState,
  stepCompleted,
  toEnvelope,
} from "../log/index.ts"
import type { Planner, StepPlan } from "../schedule/index.ts"
import { type EventEnvelope, EventStore } from "../store/index.ts"
import { HEARTBEAT_MS } from "./liveness.ts"
import {
  StepFailure,
  type StepFailureKind,
  type StepOutcome,
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
  /** Checkpoint stateful adapters after the first update step past every multiple of K steps. */
  readonly checkpointEvery?: number | undefined
  /** Where checkpoint files are written (a folder per run inside it). */
  readonly checkpointDir?: string | undefined
  /** The folder that recorded checkpoint paths are relative to (the store's), so resume works from anywhere. */
  readonly checkpointBase?: string | undefined
  /** Events per append batch. */
  readonly flushEvery?: number | undefined
  /** Longest time between appends. */
  readonly flushMs?: number | undefined
  readonly onProgress?: ((p: Progress) => void) | undefined
  /** Stop after this many steps in this process (tests: simulate a crash mid-run). */
  readonly stopAfter?: number | undefined
  /** Why the drive was interrupted, for the RunInterrupted event (the CLI names the signal). */
  readonly interruptReason?: (() => string) | undefined
}

export type RunOutcomeStatus = "completed" | "aborted" | "interrupted" | "stopped"

/** How a drive ended, with the run's state at that point. */
export interface RunSummary {
  readonly runId: string
  readonly status: RunOutcomeStatus
  readonly state: RunState
  /** Set by resume: where this process started, and the checkpoint it restored. */
  readonly resumed?: {
    readonly fromStep: number
    readonly checkpoint?: { readonly step: number; readonly file: string } | undefined
    /** Steps re-executed unrecorded to rebuild a stateful adapter's state. */
    readonly rerunSteps: number
  }
  /** Set by fork: the parent and the first step the fork ran itself (`resumed` then says how). */
  readonly forked?: { readonly parentId: string; readonly atStep: number }
}

const DEFAULTS = { flushEvery: 2048, flushMs: 200 }

/** Failures of the machinery rather than of the training: the run is interrupted, not aborted. */
export const RESUMABLE_FAILURES: ReadonlySet<StepFailureKind> = new Set(["adapter-error", "device-lost"])

/** How often the loop lets the event loop run (signals are delivered there). */
const YIELD_MS = 50

export interface DriveContext {
  readonly runId: string
  readonly planner: Planner
  readonly limit: number
  readonly from: number
  readonly session: TrainingSession
  readonly version: number
  readonly state: RunState
  readonly pendingEval: boolean
  /** The checkpoint due after step from-1 is missing from the log (a kill lost its event): redo it. */
  readonly pendingCheckpoint: boolean
  readonly evalEvery: number
  readonly checkpointEvery: number
}

/**
 * Whether a checkpoint follows step `s`: `s` applies an update, it is not the run's last step, and
 * it is the first update step at or past a multiple of K steps (counting step s as s + 1 steps
 * done). A pure function of the schedule, so an interrupted and resumed run checkpoints at the
 * same steps as an uninterrupted one.
 */
export const isCheckpointStep = (planner: Planner, s: number, every: number, limit: number): boolean => {
  if (every <= 0 || s >= limit - 1 || !planner.at(s).update) return false
  let prev = -1
  for (let j = s - 1; j >= 0; j--)
    if (planner.at(j).update) {
      prev = j
      break
    }
  return Math.floor((s + 1) / every) > Math.floor((prev + 1) / every)
}

/** The checkpoint file as recorded (relative to `base` when given) and as opened. */
export const checkpointPaths = (dir: string, base: string | undefined, runId: string, step: number) => {
  const file = resolve(dir, runId, `step-${step}.ckpt`)
  return { file, recorded: base === undefined ? file : relative(base, file) }
}

/** A recorded checkpoint path, opened from wherever the command runs. */
export const openCheckpointPath = (recorded: string, base: string | undefined): string =>
  isAbsolute(recorded) || base === undefined ? recorded : resolve(base, recorded)

/** Creates a checkpoint folder; a failure is the checkpoint's failure. */
const makeDir = (dir: string) =>
  Effect.try({
    try: () => fs.mkdirSync(dir, { recursive: true }),
    catch: (e) =>
      new StepFailure({
        kind: "adapter-error",
        message: `cannot create checkpoint folder ${dir}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`,
      }),
  })

/** Lets the event loop run once (a macrotask: signal handlers get their turn). */
const yieldToEventLoop = Effect.async<void>((resume) => {
  setImmediate(() => resume(Effect.void))
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
    let lastFlush = started
    let lastYield = started
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
    const result = (status: RunOutcomeStatus) => ({ runId, status, state: fold.state() })
    const evaluate = (step: number) =>
      Effect.gen(function* () {
        const r = yield* session.evaluate!()
        emit({ _tag: "EvalCompleted", step, metric: r.metric, values: r.values, chance: r.chance })
      })
    /** Writes the checkpoint after `step`; its failure (not the store's) is returned, not raised. */
    const checkpoint = (step: number) =>
      Effect.gen(function* () {
        yield* flush
        const p = checkpointPaths(ckptDir, opts.checkpointBase, runId, step)
        const r = yield* Effect.either(
          Effect.zipRight(makeDir(resolve(ckptDir, runId)), session.checkpoint(p.file)),
        )
        if (Either.isLeft(r)) return r.left
        const ev: Checkpointed = { _tag: "Checkpointed", step, file: p.recorded }
        emit(ev)
        // Recorded at once: a checkpoint whose event is lost must be redone on resume.
        yield* flush
        return undefined
      })
    /** The step itself failed: StepFailed, then aborted (training) or interrupted (machinery). */
    const stepFailed = (plan: StepPlan, f: StepFailure) =>
      Effect.gen(function* () {
        emit({
          _tag: "StepFailed",
          step: plan.step,
          phase: plan.phase,
          modality: plan.modality,
          kind: f.kind,
          message: f.message,
        })
        const reason = `${f.kind} at step ${plan.step}: ${f.message}`
        if (RESUMABLE_FAILURES.has(f.kind)) {
          emit({ _tag: "RunInterrupted", lastStep: plan.step - 1, reason, interruptedAt: yield* now })
          yield* flush
          return result("interrupted")
        }
        emit({ _tag: "RunAborted", step: plan.step, reason, abortedAt: yield* now })
        yield* flush
        return result("aborted")
      })
    /** Work after a completed step failed (evaluation, checkpoint): the step stands; the run is interrupted. */
    const afterStepFailed = (step: number, what: string, f: StepFailure) =>
      Effect.gen(function* () {
        emit({
          _tag: "RunInterrupted",
          lastStep: step,
          reason: `${what} after step ${step} failed (${f.kind}): ${f.message}`,
          interruptedAt: yield* now,
        })
        yield* flush
        return result("interrupted")
      })

    const loop = Effect.gen(function* () {
      if (ctx.pendingEval && ctx.from > 0) {
        const r = yield* Effect.either(evaluate(ctx.from - 1))
        if (Either.isLeft(r)) return yield* afterStepFailed(ctx.from - 1, "evaluation", r.left)
      }
      if (ctx.pendingCheckpoint && ctx.from > 0) {
        const f = yield* checkpoint(ctx.from - 1)
        if (f) return yield* afterStepFailed(ctx.from - 1, "checkpoint", f)
      }
      for (let s = ctx.from; s < stopAt; s++) {
        const plan = planner.at(s)
        let outcome: StepOutcome | StepFailure
        if (session.stepSync) outcome = session.stepSync(plan)
        else {
          const r = yield* Effect.either(session.step(plan))
          outcome = Either.isLeft(r) ? r.left : r.right
        }
        if (outcome instanceof StepFailure) return yield* stepFailed(plan, outcome)
        if (plan.phaseStep === 0) {
          const index = planner.spec.phases.findIndex((p) => p.name === plan.phase)
          emit({ _tag: "PhaseStarted", phase: plan.phase, index, step: s })
        }
        emit(stepCompleted(plan, outcome))
        done++
        if (evalEvery > 0 && ((s + 1) % evalEvery === 0 || s === limit - 1)) {
          const r = yield* Effect.either(evaluate(s))
          if (Either.isLeft(r)) return yield* afterStepFailed(s, "evaluation", r.left)
        }
        if (ckptEvery > 0 && isCheckpointStep(planner, s, ckptEvery, limit)) {
          const f = yield* checkpoint(s)
          if (f) return yield* afterStepFailed(s, "checkpoint", f)
        }
        // Sim steps take microseconds: look at the clock every 64; real steps take ms: every step.
        if (buffer.length >= flushEvery || !session.stepSync || (s & 63) === 0) {
          const t = yield* now
          if (buffer.length >= flushEvery || t - lastFlush >= flushMs) yield* flush
          // A synchronous adapter never returns to the event loop on its own: signals would wait.
          if (t - lastYield >= YIELD_MS) {
            lastYield = t
            yield* yieldToEventLoop
          }
        }
      }
      if (stopAt < limit) {
        yield* flush
        return result("stopped")
      }
      emit({ _tag: "RunCompleted", steps: fold.state().stepsCompleted, completedAt: yield* now })
      yield* flush
      return result("completed")
    })
    // While the run is written, its heartbeat says so to readers on other machines (see liveness.ts).
    const beat = yield* Effect.fork(
      Effect.repeat(
        Effect.ignore(Effect.flatMap(now, (t) => store.heartbeat(runId, t))),
        Schedule.spaced(`${HEARTBEAT_MS} millis`),
      ),
    )
    // Interrupted (Ctrl-C, SIGTERM): keep what was done, say so in the log; the run stays resumable.
    return yield* loop.pipe(
      Effect.ensuring(Fiber.interrupt(beat)),
      Effect.onInterrupt(() =>
        Effect.ignore(
          Effect.gen(function* () {
            emit({
              _tag: "RunInterrupted",
              lastStep: fold.state().lastStep,
              reason: opts.interruptReason?.() ?? "interrupted",
              interruptedAt: yield* now,
            })
            yield* flush
          }),
        ),
      ),
    )
  })

/**
 * Replay: re-executes a recorded run (its spec, seed and adapter options) and compares every event
 * it would write against the log, in bounded memory: the replay's appends go to a sink that reads
 * the recorded events at the same positions. Fails with `Divergence` at the first difference.
 */
import { join } from "node:path"
import { Clock, Effect, Either, Stream } from "effect"
import {
  compareEvents,
  type Difference,
  decodeEvent,
  evolveRunState,
  initialRunState,
  type RunEvent,
  stepOf,
} from "../log/index.ts"
import { makePlanner } from "../schedule/index.ts"
import { EventStore, type EventStoreShape, StoreError } from "../store/index.ts"
import { driveRun, type EngineOptions, RESUMABLE_FAILURES, type RunOutcomeStatus } from "./drive.ts"
import { compareEnvironments, type EnvironmentComparison } from "./environment.ts"
import { Divergence } from "./errors.ts"
import { specOfRun, summarizeLog } from "./read.ts"
import { newRunStarted } from "./start.ts"
import { TrainingAdapter, type TrainingSession } from "./training-adapter.ts"

/** What a replay compared, and how closely: said in its output. */
export interface ReplayTolerance {
  /** Relative tolerance on losses, evaluations and other results (0 = bit for bit). */
  readonly results: number
  /** Whether step times and memory were compared (the sim's are simulated, hence reproducible). */
  readonly measurements: boolean
  /** Relative tolerance on step times, when compared although measured. */
  readonly durations?: number | undefined
  /** Where the tolerance came from: the session's own statement, or the engine's default. */
  readonly source: "adapter" | "default"
  readonly text: string
}

interface ReplayResult {
  readonly runId: string
  readonly eventsCompared: number
  readonly steps: number
  readonly status: RunOutcomeStatus
  readonly tolerance: ReplayTolerance
  /** The recorded environment against the replaying session's. */
  readonly environment: EnvironmentComparison
}

/** 1e-6 rather than 0.000001. */
const tol = (x: number) => (x !== 0 && Math.abs(x) < 1e-3 ? x.toExponential() : String(x))

/**
 * The comparison a session allows: its own `reproducible` statement, else the default (a stateless
 * adapter exactly, measurements included; a stateful one within 1e-6 on results, measurements not
 * compared). The schedule (steps, phases, modalities, updates, lrs) is compared exactly either way,
 * since it does not depend on the adapter: lrs are planned, not measured.
 */

export const replayTolerance = (session: TrainingSession): ReplayTolerance => {
  const r = session.reproducible
  const measurements = session.stateless
  const what = measurements ? "" : "; step times and memory are measurements, not compared"
  if (r === "exact")
    return {
      results: 0,
      measurements,
      source: "adapter",
      text: `losses and evaluations compared exactly${what}`,
    }
  if (r !== undefined) {
    const durations = measurements ? undefined : r.durationRelTolerance
    return {
      results: r.relTolerance,
      measurements,
      durations,
      source: "adapter",
      text: `losses and evaluations within relative tolerance ${tol(r.relTolerance)}${
        durations !== undefined
          ? `; step times within relative tolerance ${tol(durations)}; memory not compared`
          : what
      } (the adapter's statement: not bit-reproducible)`,
    }
  }
  return measurements
    ? {
        results: 0,
        measurements,
        source: "default",
        text: "every field compared exactly (stateless adapter)",
      }
    : {
        results: 1e-6,
        measurements,
        source: "default",
        text: `losses and evaluations within relative tolerance 1e-6${what}`,
      }
}

/** Events of a run's writing sessions, not of its training: replay leaves them out of the comparison. */
const isSessionEvent = (e: RunEvent): boolean =>
  e._tag === "RunResumed" ||
  e._tag === "RunInterrupted" ||
  (e._tag === "StepFailed" && RESUMABLE_FAILURES.has(e.kind))

export const replayRun = (
  runId: string,
  opts: { readonly checkpointDir?: string; readonly onProgress?: EngineOptions["onProgress"] } = {},
) =>
  Effect.scoped(
    Effect.gen(function* () {
      const store = yield* EventStore
      const log = yield* summarizeLog(runId)
      const started = log.started!
      const spec = yield* specOfRun(started)
      const adapter = yield* TrainingAdapter
      const session = yield* adapter.open({ spec, options: started.adapter.options })
      const tolerance = replayTolerance(session)
      const cmp = {
        measurements: tolerance.measurements,
        tolerance: tolerance.results,
        durationTolerance: tolerance.durations,
      }
      // Said with any divergence: a different BLAS, thread count or device explains one.
      const environment = compareEnvironments(started.adapter.environment, session.description.environment)
      const diverge = (position: number, step: number | undefined, difference: Difference) =>
        new Divergence({ runId, position, step, difference, environment })
      // The RunStarted this replay would write, derived anew from the recorded inputs and the
      // session just opened, so a changed spec encoding, adapter or engine setting shows here.
      const fresh = newRunStarted(
        {
          runId,
          spec,
          source: started.source,
          steps: started.steps,
          adapterOptions: started.adapter.options,
        },
        session,
        started.engine,
        yield* Clock.currentTimeMillis,
      )
      const d0 = compareEvents(started, fresh, cmp)
      if (d0) return yield* diverge(0, undefined, d0)
      let compared = 0
      // The sink can only fail with store errors; a divergence is parked here and raised after.
      let found: Divergence | undefined
      const stop = (d: Divergence) => {
        found = d
        return Effect.fail(new StoreError({ message: d.message }))
      }
      // The recorded log, read in order, without the events of its writing sessions (resumes,
      // interruptions, steps whose machinery failed and that resume ran again): what an
      // uninterrupted run would have written.
      let cursor = 1
      let pending: RunEvent[] = []
      let recordedEnd = false
      const nextRecorded = (n: number) =>
        Effect.gen(function* () {
          while (pending.length < n && !recordedEnd) {
            const page = Array.from(
              yield* Stream.runCollect(store.read(runId, { from: cursor, to: cursor + 4096 })),
            )
            if (page.length === 0) recordedEnd = true
            cursor += page.length
            for (const stored of page) {
              const d = decodeEvent(stored, `run ${runId}, event ${stored.position}`, { validate: false })
              if (Either.isLeft(d)) return yield* new StoreError({ message: d.left.message })
              if (!isSessionEvent(d.right)) pending.push(d.right)
            }
          }
          const out = pending.slice(0, n)
          pending = pending.slice(n)
          return out
        })
      const sink: EventStoreShape = {
        ...store,
        version: () => Effect.succeed(0),
        // A replay writes nothing, so it must not make the recorded run look alive either.
        heartbeat: () => Effect.succeed(false),
        append: (_stream, events, expected) =>
          Effect.gen(function* () {
            const rec = yield* nextRecorded(events.length)
            for (const [i, env] of events.entries()) {
              const mine = env.data as RunEvent
              const theirs = rec[i]
              const step = stepOf(mine)
              if (!theirs)
                return yield* stop(
                  diverge(expected + i, step, { path: "log", a: "(end of log)", b: mine._tag }),
                )
              const d = compareEvents(theirs, mine, cmp)
              if (d) return yield* stop(diverge(expected + i, step, d))
              compared++
            }
            return expected + events.length
          }),
      }
      const stopAfter =
        log.state.status === "running" || log.state.status === "interrupted"
          ? log.state.lastStep + 1
          : undefined
      const result = yield* driveRun(
        {
          runId,
          planner: makePlanner(spec),
          limit: started.steps,
          from: 0,
          session,
          version: 1,
          state: evolveRunState(initialRunState, started),
          pendingEval: false,
          pendingCheckpoint: false,
          evalEvery: started.engine.evalEvery,
          checkpointEvery: started.engine.checkpointEvery,
        },
        {
          stopAfter,
          checkpointDir: opts.checkpointDir ?? join(".interleave", "replay-checkpoints"),
          onProgress: opts.onProgress,
        },
      ).pipe(
        Effect.provideService(EventStore, sink),
        Effect.catchTag(
          "StoreError",
          (e): Effect.Effect<never, StoreError | Divergence> => (found ? Effect.fail(found) : Effect.fail(e)),
        ),
      )
      const more = yield* nextRecorded(1)
      if (more.length > 0)
        return yield* diverge(1 + compared, stepOf(more[0]!), {
          path: "log",
          a: `more event(s), from ${more[0]!._tag}`,
          b: "(end of replay)",
        })
      return {
        runId,
        eventsCompared: compared + 1,
        steps: result.state.stepsCompleted,
        status: result.status,
        tolerance,
        environment,
      } satisfies ReplayResult
    }),
  )

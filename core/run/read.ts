/** Reading a run back from the store: its events decoded, and the summary resume and fork start from. */
import { Chunk, Effect, Either, Option, Stream } from "effect"
import {
  type Checkpointed,
  decodeEvent,
  EVENT_VERSIONS,
  makeRunStateFold,
  type RunEvent,
  type RunEventType,
  type RunStarted,
  type RunState,
} from "../log/index.ts"
import { decodeSpec } from "../schedule/index.ts"
import { EventStore } from "../store/index.ts"
import { RunError } from "./errors.ts"

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
    if (version === 0) return yield* noRun(runId)
    if (!started) return yield* noRunStarted(runId)
    const summary: LogSummary = { started, state: fold.state(), version, lastCheckpoint, lastEvalStep }
    return summary
  })

/** The error of a run id the store has no events for. */
export const noRun = (runId: string) =>
  new RunError({ message: `no run "${runId}" in the store (see \`interleave runs\`)` })
const noRunStarted = (runId: string) => new RunError({ message: `run "${runId}" has no RunStarted event` })

/**
 * A run's RunStarted from its first event alone: what a command needs to choose the adapter
 * before the engine reads the whole log (a second full pass here would double the reading).
 */
export const runStartedOf = (runId: string) =>
  Effect.gen(function* () {
    const head = yield* Stream.runHead(readRunEvents(runId, { to: 1 }))
    if (Option.isNone(head)) return yield* noRun(runId)
    if (head.value._tag !== "RunStarted") return yield* noRunStarted(runId)
    return head.value
  })

export const specOfRun = (started: RunStarted) =>
  Effect.gen(function* () {
    if (started.observed !== undefined)
      return yield* new RunError({
        message: `run ${started.runId} is an observed run (imported from ${started.observed.source}): it has no spec`,
      })
    return yield* decodeSpec(started.spec, `run ${started.runId}: recorded spec`)
  })

/**
 * What run, resume and fork share around the engine: progress, where checkpoints go (next to the
 * store, recorded relative to its folder), and what a signal leaves behind: the run's steps so
 * far, a RunInterrupted event, and a hint with the real run id.
 */
import { resolve } from "node:path"
import { Console, Effect } from "effect"
import type { EngineOptions, RunSummary } from "../core/run/index.ts"
import type { ScheduleSpec } from "../core/schedule/index.ts"
import { StoreError } from "../core/store/index.ts"
import { makeProgress, phaseSpans } from "./progress.ts"
import { interruptReason } from "./signals.ts"
import { checkpointBaseOf, checkpointDirOf } from "./store.ts"

export const withEngine = <E, R>(
  o: {
    readonly runId: string
    readonly total: number
    readonly store: string
    readonly engine?: EngineOptions
    /** The run's spec, for a line as each phase finishes. */
    readonly spec?: ScheduleSpec
  },
  body: (opts: EngineOptions) => Effect.Effect<RunSummary, E, R>,
): Effect.Effect<RunSummary, E, R> => {
  const progress = makeProgress({
    label: o.runId,
    total: o.total,
    phases: o.spec ? phaseSpans(o.spec, o.total) : undefined,
  })
  const opts: EngineOptions = {
    ...o.engine,
    checkpointDir: resolve(checkpointDirOf(o.store)),
    checkpointBase: checkpointBaseOf(o.store),
    onProgress: progress.update,
    interruptReason,
  }
  return body(opts).pipe(
    // The store went away under the run (locked, disk full): what was appended stays; say how to go on.
    Effect.catchIf(
      // (unless the message already says how: a run another live writer holds).
      (e): e is E & StoreError =>
        e instanceof StoreError &&
        e.kind === "unavailable" &&
        !e.message.includes(`interleave resume ${o.runId}\``),
      (e) =>
        Effect.fail(
          new StoreError({
            kind: "unavailable",
            message: `${e.message}; run ${o.runId} keeps every step recorded before this: resume it with \`interleave resume ${o.runId}\` once the store is available`,
          }) as unknown as E,
        ),
    ),
    Effect.ensuring(Effect.sync(progress.done)),
    Effect.onInterrupt(() =>
      Console.error(
        `interleave: ${interruptReason()}; run ${o.runId} keeps every step it recorded: resume it with \`interleave resume ${o.runId}\``,
      ),
    ),
  )
}

/** `interleave replay`: re-executes a recorded run and compares it with its log, event by event. */
import { Effect, Either } from "effect"
import { adapterLayer } from "../../adapters/index.ts"
import { environmentText, refuseObserved, replayRun, runStartedOf, specOfRun } from "../../core/run/index.ts"
import { defineCommand } from "../command.ts"
import { failedCheck } from "../failure.ts"
import { jsonFlag, runArg, storeFlag } from "../options.ts"
import { json, line } from "../output.ts"
import { makeProgress, phaseSpans } from "../progress.ts"
import { replayCheckpointDirOf, withStore } from "../store.ts"

export const replayCommand = defineCommand({
  name: "replay",
  summary: "Re-execute a recorded run from its spec and seed and compare it, event by event, with its log.",
  args: { run: runArg },
  flags: { store: storeFlag, json: jsonFlag },
  examples: ["interleave replay RUN"],
  run: (o) =>
    Effect.gen(function* () {
      const started = yield* runStartedOf(o.run)
      yield* refuseObserved(started, "replay")
      const progress = makeProgress({
        label: `replay ${o.run}`,
        total: started.steps,
        phases: phaseSpans(yield* specOfRun(started), started.steps),
      })
      const result = yield* replayRun(o.run, {
        checkpointDir: replayCheckpointDirOf(o.store),
        onProgress: progress.update,
      }).pipe(
        Effect.provide(adapterLayer(started.adapter.kind)),
        Effect.ensuring(Effect.sync(progress.done)),
        Effect.either,
      )
      if (Either.isLeft(result)) {
        const e = result.left
        if (e._tag !== "Divergence") return yield* Effect.fail(e)
        if (o.json)
          yield* json({
            ok: false,
            runId: o.run,
            divergence: { position: e.position, step: e.step, ...e.difference },
            environment: e.environment,
          })
        return yield* failedCheck(o.json ? "" : e.message)
      }
      if (o.json) return yield* json({ ok: true, ...result.right })
      const env = result.right.environment
      yield* line(
        `run ${o.run}: replay matches the log (${result.right.eventsCompared} events, ${result.right.steps} steps re-executed on ${started.adapter.kind}); ${result.right.tolerance.text}${env.status === "differs" ? `; ${environmentText(env)}, yet the results matched` : ""}`,
      )
    }).pipe((eff) => withStore(o.store, eff, { readOnly: true })),
})

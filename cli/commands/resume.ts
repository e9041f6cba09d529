/** `interleave resume`: continues an interrupted or killed run. */
import { Effect } from "effect"
import { adapterLayer } from "../../adapters/index.ts"
import { refuseObserved, resumeRun, runStartedOf, specOfRun } from "../../core/run/index.ts"
import { defineCommand } from "../command.ts"
import { jsonFlag, runArg, storeFlag } from "../options.ts"
import { reportRun } from "../run-report.ts"
import { withEngine } from "../run-session.ts"
import { withStore } from "../store.ts"

export const resumeCommand = defineCommand({
  name: "resume",
  summary: "Continue an interrupted or killed run from the step after the last one recorded.",
  args: { run: runArg },
  flags: { store: storeFlag, json: jsonFlag },
  examples: ["interleave resume trex2-joint-8to1-20261201-120000-3fa2"],
  run: (o) =>
    Effect.gen(function* () {
      const started = yield* runStartedOf(o.run)
      yield* refuseObserved(started, "resume")
      const summary = yield* withEngine(
        { runId: o.run, total: started.steps, store: o.store, spec: yield* specOfRun(started) },
        (opts) => resumeRun(o.run, opts).pipe(Effect.provide(adapterLayer(started.adapter.kind))),
      )
      yield* reportRun(summary, o.json)
    }).pipe((eff) => withStore(o.store, eff)),
})

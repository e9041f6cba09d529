/** `interleave fork`: a new run sharing a run's history up to a step, under a new ratio or spec. */
import { Clock, Effect, Either, Option } from "effect"
import { adapterLayer } from "../../adapters/index.ts"
import { runStamp } from "../../core/bench/index.ts"
import { forkRun, refuseObserved, runIdFrom, runStartedOf, specOfRun } from "../../core/run/index.ts"
import {
  forkSpecWithRatio,
  loadScenario,
  parseRatio,
  type ScheduleSpec,
  totalSteps,
} from "../../core/schedule/index.ts"
import { defineCommand } from "../command.ts"
import { badInput } from "../failure.ts"
import { flag } from "../flags.ts"
import { jsonFlag, runArg, runIdFlag, storeFlag } from "../options.ts"
import { reportRun } from "../run-report.ts"
import { withEngine } from "../run-session.ts"
import { withStore } from "../store.ts"
import { stepsPastSchedule } from "./run.ts"

export const forkCommand = defineCommand({
  name: "fork",
  summary:
    "Start a new run that shares a run's history up to --at, then continues under a new ratio or spec.",
  args: { run: runArg },
  flags: {
    at: flag.integer("at", "First step the fork runs itself (required).", { value: "STEP" }),
    ratio: flag.text("ratio", "V:T ratio for every phase from --at on.", { value: "V:T" }),
    spec: flag.text(
      "spec",
      "A scenario file for the fork (it must plan steps before --at as the parent did).",
      {
        value: "FILE",
      },
    ),
    steps: flag.integer("steps", "Length of the fork, in steps from 0.", {
      default: "the parent's planned length",
    }),
    runId: runIdFlag,
    store: storeFlag,
    json: jsonFlag,
  },
  examples: ["interleave fork RUN --at 450 --ratio 4:1"],
  run: (o) =>
    Effect.gen(function* () {
      if (Option.isNone(o.at)) return yield* badInput("fork: --at STEP is required")
      const at = o.at.value
      const parent = yield* runStartedOf(o.run)
      yield* refuseObserved(parent, "fork")
      const parentSpec = yield* specOfRun(parent)
      if (Option.isSome(o.ratio) && Option.isSome(o.spec))
        return yield* badInput("fork: give --ratio or --spec, not both")
      let spec: ScheduleSpec = parentSpec
      let source = `fork of ${o.run} at ${at}`
      if (Option.isSome(o.ratio)) {
        const r = parseRatio(o.ratio.value)
        if (Either.isLeft(r)) return yield* badInput(`--ratio: ${r.left}`)
        const f = forkSpecWithRatio(parentSpec, at, r.right)
        if (Either.isLeft(f)) return yield* badInput(`--at: ${f.left}`)
        spec = f.right
        source += ` with ratio ${o.ratio.value}`
      } else if (Option.isSome(o.spec)) {
        spec = yield* loadScenario(o.spec.value)
        source += ` with ${o.spec.value}`
      }
      const now = yield* Clock.currentTimeMillis
      // One "-fork" however many generations deep: the parent's id already says whose fork it is.
      const base = spec.name.replace(/(-fork)+$/, "")
      const runId = Option.getOrElse(o.runId, () => runIdFrom(`${base}-fork`, runStamp(now)))
      const steps = Option.getOrUndefined(o.steps)
      const longer = stepsPastSchedule(steps, totalSteps(spec))
      if (longer) return yield* badInput(longer)
      const summary = yield* withEngine(
        { runId, total: Math.min(steps ?? parent.steps, totalSteps(spec)), store: o.store, spec },
        (opts) =>
          forkRun({ parentId: o.run, atStep: at, runId, spec, source, steps }, opts).pipe(
            Effect.provide(adapterLayer(parent.adapter.kind)),
          ),
      )
      yield* reportRun(summary, o.json)
    }).pipe((eff) => withStore(o.store, eff)),
})

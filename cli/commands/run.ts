/** `interleave run`: a schedule as a recorded, resumable run. */
import { Clock, Effect, Option } from "effect"
import { ADAPTER_KINDS, adapterLayer } from "../../adapters/index.ts"
import { runStamp } from "../../core/bench/index.ts"
import { type EngineOptions, startRun } from "../../core/run/index.ts"
import { loadScenario, totalSteps } from "../../core/schedule/index.ts"
import { defineCommand } from "../command.ts"
import { badInput } from "../failure.ts"
import { flag, flagWithDefault } from "../flags.ts"
import { jsonFlag, runIdFlag, scenarioArg, storeFlag } from "../options.ts"
import { makeProgress } from "../progress.ts"
import { reportRun } from "../run-report.ts"
import { checkpointDirOf, withStore } from "../store.ts"

export const adapterFlags = {
  adapter: flagWithDefault.choice(
    "adapter",
    ADAPTER_KINDS,
    "What executes the steps: sim (cost model) or tfjs (real training).",
    "sim",
  ),
  hardware: flag.text("hardware", "sim: hardware profile name or file.", {
    value: "NAME",
    default: "h100-sxm",
  }),
  model: flag.text("model", "sim: model profile name or file.", { value: "NAME", default: "trex2-tiny" }),
  backend: flag.choice("backend", ["cpu", "wasm", "webgpu", "tensorflow"], "tfjs: TensorFlow.js backend.", {
    default: "wasm",
  }),
  preset: flag.choice("preset", ["tiny", "small", "base"], "tfjs: model size.", { default: "tiny" }),
  lrScale: flag.number("lr-scale", "tfjs: factor on every lr of the schedule.", {
    default: "the preset's (10 for tiny and small)",
  }),
  alignWeight: flag.number(
    "align-weight",
    "tfjs: weight of the loss aligning visual prompts to the text embeddings of their classes (0 = no alignment).",
    { default: "1" },
  ),
}

export const buildAdapterOptions = (o: {
  adapter: string
  hardware: Option.Option<string>
  model: Option.Option<string>
  backend: Option.Option<string>
  preset: Option.Option<string>
  lrScale?: Option.Option<number>
  alignWeight?: Option.Option<number>
}) => {
  const out: Record<string, unknown> = {}
  const set = (k: string, v: Option.Option<string>) => {
    if (Option.isSome(v)) out[k] = v.value
  }
  if (o.adapter === "sim") {
    set("hardware", o.hardware)
    set("model", o.model)
  } else {
    set("backend", o.backend)
    set("preset", o.preset)
    if (o.lrScale && Option.isSome(o.lrScale)) out.lrScale = o.lrScale.value
    if (o.alignWeight && Option.isSome(o.alignWeight)) out.alignWeight = o.alignWeight.value
  }
  return out
}

const nonNegative = (name: string, v: Option.Option<number>) =>
  Option.isSome(v) && (!Number.isInteger(v.value) || v.value < 0)
    ? Effect.fail(badInput(`--${name}: must be an integer >= 0, got ${v.value}`))
    : Effect.void

export const runCommand = defineCommand({
  name: "run",
  summary: "Run a schedule as a recorded, resumable run (default adapter: sim).",
  args: { scenario: scenarioArg },
  flags: {
    ...adapterFlags,
    steps: flag.integer("steps", "Run only the first N steps of the schedule.", {
      default: "the whole schedule",
    }),
    evalEvery: flag.integer("eval-every", "Evaluate every K steps when the adapter can.", {
      value: "K",
      default: "50 for tfjs, never for sim",
    }),
    checkpointEvery: flag.integer("checkpoint-every", "Checkpoint stateful adapters every K steps.", {
      value: "K",
      default: "100 for tfjs",
    }),
    store: storeFlag,
    runId: runIdFlag,
    json: jsonFlag,
  },
  examples: ["interleave run scenarios/trex2-joint-8to1.json --adapter tfjs --steps 450"],
  run: (o) =>
    Effect.gen(function* () {
      yield* nonNegative("eval-every", o.evalEvery)
      yield* nonNegative("checkpoint-every", o.checkpointEvery)
      const spec = yield* loadScenario(o.scenario)
      const steps = Option.getOrUndefined(o.steps)
      const runId = Option.getOrElse(o.runId, () => "")
      const id = runId || `${spec.name}-${runStamp(yield* Clock.currentTimeMillis)}`
      const total = Math.min(steps ?? Number.POSITIVE_INFINITY, totalSteps(spec))
      const progress = makeProgress({ label: id, total })
      const opts: EngineOptions = {
        evalEvery: Option.getOrElse(o.evalEvery, () => (o.adapter === "tfjs" ? 50 : 0)),
        checkpointEvery: Option.getOrElse(o.checkpointEvery, () => (o.adapter === "tfjs" ? 100 : 0)),
        checkpointDir: checkpointDirOf(o.store),
        onProgress: progress.update,
      }
      const summary = yield* startRun(
        { runId: id, spec, source: o.scenario, steps, adapterOptions: buildAdapterOptions(o) },
        opts,
      ).pipe(Effect.provide(adapterLayer(o.adapter)), Effect.ensuring(Effect.sync(progress.done)))
      yield* reportRun(summary, o.json)
    }).pipe((eff) => withStore(o.store, eff)),
})

/** `interleave run`: a schedule as a recorded, resumable run. */
import { Clock, Effect, Option } from "effect"
import { ADAPTER_KINDS, adapterLayer } from "../../adapters/index.ts"
import { bundledProfiles } from "../../adapters/sim/profiles.ts"
import { runStamp } from "../../core/bench/index.ts"
import { formatBytes, formatDuration } from "../../core/common/index.ts"
import { runIdFrom, startRun } from "../../core/run/index.ts"
import { loadScenario, totalSteps } from "../../core/schedule/index.ts"
import { defineCommand } from "../command.ts"
import { badInput } from "../failure.ts"
import { flag, flagWithDefault } from "../flags.ts"
import { jsonFlag, runIdFlag, scenarioArg, storeFlag } from "../options.ts"
import { warn } from "../output.ts"
import { reportRun } from "../run-report.ts"
import { withEngine } from "../run-session.ts"
import { withStore } from "../store.ts"

export const adapterFlags = {
  adapter: flagWithDefault.choice(
    "adapter",
    ADAPTER_KINDS,
    "What executes the steps: sim (cost model) or tfjs (real training).",
    "sim",
  ),
  hardware: flag.text(
    "hardware",
    `sim: hardware profile, a bundled name (${bundledProfiles("hardware").join(", ")}) or a profile file.`,
    { value: "NAME", default: "h100-sxm" },
  ),
  model: flag.text(
    "model",
    `sim: model profile, a bundled name (${bundledProfiles("models").join(", ")}) or a profile file.`,
    { value: "NAME", default: "trex2-tiny" },
  ),
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
      const runId = Option.isSome(o.runId)
        ? o.runId.value
        : runIdFrom(spec.name, runStamp(yield* Clock.currentTimeMillis))
      const total = Math.min(steps ?? Number.POSITIVE_INFINITY, totalSteps(spec))
      const big = sizeWarning(total, o.adapter)
      if (big) yield* warn(big)
      // The store opens only once the input is known good: a refused spec leaves no file behind.
      const summary = yield* withStore(
        o.store,
        withEngine(
          {
            runId,
            total,
            store: o.store,
            engine: {
              evalEvery: Option.getOrElse(o.evalEvery, () => (o.adapter === "tfjs" ? 50 : 0)),
              checkpointEvery: Option.getOrElse(o.checkpointEvery, () => (o.adapter === "tfjs" ? 100 : 0)),
            },
          },
          (opts) =>
            startRun(
              { runId, spec, source: o.scenario, steps, adapterOptions: buildAdapterOptions(o) },
              opts,
            ).pipe(Effect.provide(adapterLayer(o.adapter))),
        ),
      )
      yield* reportRun(summary, o.json)
    }),
})

/** Rough rates for the warning below: the sim records about 10^6 steps/s, a real adapter about 10. */
const STEPS_PER_SEC: Record<string, number> = { sim: 1e6 }
/** About two events a step, ~450 bytes each in the SQLite file. */
const BYTES_PER_STEP = 900

/** A warning for a run whose length is absurd for a run (10^15 steps), with time and store size. */
export const sizeWarning = (steps: number, adapter: string): string | undefined => {
  const seconds = steps / (STEPS_PER_SEC[adapter] ?? 10)
  const bytes = steps * BYTES_PER_STEP
  if (seconds < 6 * 3600 && bytes < 50 * 1024 ** 3) return undefined
  return `${steps.toExponential(2)} steps would take about ${formatDuration(seconds * 1000)} on ${adapter} and write about ${formatBytes(bytes)} to the store; use --steps N to run a prefix (Ctrl-C stops it cleanly)`
}

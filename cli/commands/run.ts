/** `interleave run`: a schedule as a recorded, resumable run. */
import { Clock, Effect, Option } from "effect"
import { ADAPTER_KINDS, adapterLayer } from "../../adapters/index.ts"
import { bundledProfiles } from "../../adapters/sim/profiles.ts"
import { runStamp } from "../../core/bench/index.ts"
import { formatBytes, formatDuration, formatNumber } from "../../core/common/index.ts"
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
    "What executes the steps: sim (cost model), tfjs (training in-process), pytorch (the bundled PyTorch trainer), exec (a trainer command; docs/step-protocol.md).",
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
    { value: "NAME", default: "trex2-swin-t" },
  ),
  backend: flag.choice("backend", ["cpu", "wasm", "webgpu", "tensorflow"], "tfjs: TensorFlow.js backend.", {
    default: "wasm",
  }),
  preset: flag.choice("preset", ["tiny", "small", "base"], "tfjs, pytorch: model size.", { default: "tiny" }),
  lrScale: flag.number("lr-scale", "tfjs, pytorch: factor on every lr of the schedule.", {
    default: "the preset's (10 for tiny and small)",
  }),
  python: flag.text("python", "pytorch: the Python interpreter (it needs torch).", {
    value: "PATH",
    default: "/usr/bin/python3",
  }),
  device: flag.text("device", "pytorch: torch device, cpu, cuda or cuda:N.", {
    value: "DEVICE",
    default: "cpu",
  }),
  alignWeight: flag.number(
    "align-weight",
    "tfjs, pytorch: weight of the loss aligning visual prompts to the text embeddings of their classes (0 = no alignment).",
    { default: "1" },
  ),
  cmd: flag.text(
    "cmd",
    "exec: the trainer's command line, split into words like a shell's but run without one (write sh -c '...' for a shell).",
    { value: "COMMAND" },
  ),
  helloOptions: flag.text("hello-options", "exec: trainer options as a JSON object, sent in hello.", {
    value: "JSON",
    default: "{}",
  }),
  stepTimeout: flag.number(
    "step-timeout",
    "exec, pytorch: seconds a step (or evaluation, checkpoint, restore) may take before the run fails and the trainer is ended.",
    { value: "SEC", default: "600" },
  ),
}

/** Adapters whose steps are real training (evaluation and checkpoints by default). */
const REAL_TRAINING = new Set(["tfjs", "pytorch", "exec"])

interface AdapterFlagValues {
  adapter: string
  hardware: Option.Option<string>
  model: Option.Option<string>
  backend: Option.Option<string>
  preset: Option.Option<string>
  lrScale?: Option.Option<number>
  alignWeight?: Option.Option<number>
  python?: Option.Option<string>
  device?: Option.Option<string>
  cmd?: Option.Option<string>
  helloOptions?: Option.Option<string>
  stepTimeout?: Option.Option<number>
}

/** The trainer options of --hello-options, or why they are not a JSON object. */
const helloOptionsOf = (text: string): Record<string, unknown> | string => {
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch (e) {
    return `--hello-options: not JSON (${e instanceof Error ? e.message : e})`
  }
  return typeof parsed === "object" && parsed !== null && !Array.isArray(parsed)
    ? (parsed as Record<string, unknown>)
    : "--hello-options: must be a JSON object"
}

/**
 * What is wrong with the adapter flags, in one line (bad input), or undefined: --adapter exec
 * without --cmd, --hello-options that are not a JSON object, a pytorch or exec flag given to
 * another adapter (it would be ignored without a word).
 */
export const adapterFlagProblem = (o: AdapterFlagValues): string | undefined => {
  if (o.adapter === "exec" && (!o.cmd || Option.isNone(o.cmd)))
    return '--adapter exec needs --cmd COMMAND (e.g. --cmd "python3 train.py")'
  if (o.helloOptions && Option.isSome(o.helloOptions)) {
    const parsed = helloOptionsOf(o.helloOptions.value)
    if (typeof parsed === "string") return parsed
  }
  const given = (k: string, v: Option.Option<unknown> | undefined, kinds: ReadonlyArray<string>) =>
    v && Option.isSome(v) && !kinds.includes(o.adapter)
      ? `--${k} is for --adapter ${kinds.join(" or ")}`
      : undefined
  return (
    given("python", o.python, ["pytorch"]) ??
    given("device", o.device, ["pytorch"]) ??
    given("cmd", o.cmd, ["exec"]) ??
    given("hello-options", o.helloOptions, ["exec"]) ??
    given("step-timeout", o.stepTimeout, ["pytorch", "exec"])
  )
}

/** The adapter options the flags give (check them with `adapterFlagProblem` first). */
export const buildAdapterOptions = (o: AdapterFlagValues): Record<string, unknown> => {
  const out: Record<string, unknown> = {}
  const set = (k: string, v: Option.Option<string | number> | undefined) => {
    if (v && Option.isSome(v)) out[k] = v.value
  }
  if (o.adapter === "sim") {
    set("hardware", o.hardware)
    set("model", o.model)
  } else if (o.adapter === "tfjs") {
    set("backend", o.backend)
    set("preset", o.preset)
    set("lrScale", o.lrScale)
    set("alignWeight", o.alignWeight)
  } else if (o.adapter === "pytorch") {
    set("python", o.python)
    set("device", o.device)
    set("preset", o.preset)
    set("alignWeight", o.alignWeight)
    set("lrScale", o.lrScale)
    set("stepTimeout", o.stepTimeout)
  } else if (o.adapter === "exec") {
    set("cmd", o.cmd)
    if (o.helloOptions && Option.isSome(o.helloOptions)) out.options = helloOptionsOf(o.helloOptions.value)
    set("stepTimeout", o.stepTimeout)
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
      default: "50 for tfjs, pytorch and exec, never for sim",
    }),
    checkpointEvery: flag.integer("checkpoint-every", "Checkpoint stateful adapters every K steps.", {
      value: "K",
      default: "100 for tfjs, pytorch and exec",
    }),
    store: storeFlag,
    runId: runIdFlag,
    json: jsonFlag,
  },
  examples: [
    "interleave run scenarios/trex2-joint-8to1.json --adapter tfjs --steps 450",
    "interleave run scenarios/trex2-joint-8to1.json --adapter pytorch --steps 450",
    'interleave run scenarios/trex2-joint-8to1.json --adapter exec --cmd "python3 my_trainer.py"',
  ],
  run: (o) =>
    Effect.gen(function* () {
      yield* nonNegative("eval-every", o.evalEvery)
      yield* nonNegative("checkpoint-every", o.checkpointEvery)
      const spec = yield* loadScenario(o.scenario)
      const steps = Option.getOrUndefined(o.steps)
      const runId = Option.isSome(o.runId)
        ? o.runId.value
        : runIdFrom(spec.name, runStamp(yield* Clock.currentTimeMillis))
      const longer = stepsPastSchedule(steps, totalSteps(spec))
      if (longer) return yield* badInput(longer)
      const total = Math.min(steps ?? Number.POSITIVE_INFINITY, totalSteps(spec))
      const problem = adapterFlagProblem(o)
      if (problem) return yield* badInput(problem)
      const adapterOptions = buildAdapterOptions(o)
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
            spec,
            engine: {
              evalEvery: Option.getOrElse(o.evalEvery, () => (REAL_TRAINING.has(o.adapter) ? 50 : 0)),
              checkpointEvery: Option.getOrElse(o.checkpointEvery, () =>
                REAL_TRAINING.has(o.adapter) ? 100 : 0,
              ),
            },
          },
          (opts) =>
            startRun({ runId, spec, source: o.scenario, steps, adapterOptions }, opts).pipe(
              Effect.provide(adapterLayer(o.adapter)),
            ),
        ),
      )
      yield* reportRun(summary, o.json)
    }),
})

/**
 * `--steps N` past the end of the schedule is refused (bad input), rather than run silently as the
 * whole schedule: a run of 9,090 steps asked for 300,000 is a mistake in the scenario or the flag.
 */
export const stepsPastSchedule = (steps: number | undefined, scheduled: number): string | undefined =>
  steps !== undefined && steps > scheduled
    ? `--steps ${steps}: the schedule has only ${formatNumber(scheduled)} steps; give --steps ${scheduled} or less, or leave --steps out to run it all`
    : undefined

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

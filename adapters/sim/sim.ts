/**
 * The `sim` TrainingAdapter: outcomes from a cost model, not from training.
 *
 * The outcome of step i is a pure function of (spec, hardware, model, plan i): simulated time
 * and memory from cost-model.ts, losses from synthetic-loss.ts seeded with spec.seed. Everything
 * that depends only on the modality is computed once at open, so a step costs a few arithmetic
 * operations, one hash per loss component and two small objects.
 *
 * evaluate (synthetic): metric "sim-gap-closed", per modality the noise-free fraction of the loss
 * gap (initial - final) closed after the most recent `step` call of this session (0 before any).
 */
import { Effect, Layer } from "effect"
import { looksLikePath } from "../../core/common/index.ts"
import type { MemorySample } from "../../core/log/index.ts"
import {
  AdapterUnavailable,
  type EvalResult,
  StepFailure,
  type StepOutcome,
  TrainingAdapter,
  type TrainingAdapterShape,
  type TrainingSession,
} from "../../core/run/index.ts"
import type { ScheduleSpec, StepPlan } from "../../core/schedule/index.ts"
import { type ModalityCosts, modalityCosts, residentBytes, stepDurationMs } from "./cost-model.ts"
import { type HardwareProfile, loadHardwareProfile, loadModelProfile, type ModelProfile } from "./profiles.ts"
import {
  followsSwitch,
  makeProgressIndex,
  type ProgressIndex,
  textUpdatesBefore,
  visualUpdatesBefore,
} from "./progress.ts"
import { type CompiledCurve, compileCurve, gapClosed, lossesAt, progressOf } from "./synthetic-loss.ts"

export const DEFAULT_HARDWARE = "h100-sxm"
export const DEFAULT_MODEL = "trex2-tiny"

interface ModalityCtx {
  readonly costs: ModalityCosts
  readonly curve: CompiledCurve
  /** Shared by every step of the modality: the sim's memory depends on nothing else. */
  readonly memory: MemorySample
}

export interface SimContext {
  readonly spec: ScheduleSpec
  readonly hardware: HardwareProfile
  readonly model: ModelProfile
  readonly seed: number
  readonly progress: ProgressIndex
  readonly visual: ModalityCtx
  readonly text: ModalityCtx
}

const GiB = 1024 ** 3
const gib = (bytes: number): string => `${(bytes / GiB).toFixed(2)} GiB`

/** Precomputes everything a step needs; pure. */
export const makeSimContext = (
  spec: ScheduleSpec,
  hardware: HardwareProfile,
  model: ModelProfile,
): SimContext => {
  const modality = (m: "visual" | "text", saltBase: number): ModalityCtx => {
    const costs = modalityCosts(hardware, model, m, spec.batch[m].size)
    const bytes = costs.stepBytes
    return {
      costs,
      curve: compileCurve(model.modalities[m].loss, saltBase),
      // The step's working set is its in-step peak; what stays between steps is the resident state.
      memory: Object.freeze({ peakBytes: bytes, allocatedBytes: residentBytes(model) }),
    }
  }
  return {
    spec,
    hardware,
    model,
    seed: spec.seed,
    progress: makeProgressIndex(spec),
    visual: modality("visual", 0),
    text: modality("text", 1 << 16),
  }
}

const outOfMemory = (ctx: SimContext, plan: StepPlan, m: ModalityCtx): StepFailure =>
  new StepFailure({
    kind: "out-of-memory",
    message:
      `step ${plan.step} (${plan.modality}, batch ${m.costs.batch}) needs ${gib(m.costs.stepBytes)} ` +
      `(${gib(m.costs.residentBytes)} resident + ${gib(m.costs.activationBytes)} activations) ` +
      `but ${ctx.hardware.name} has ${gib(ctx.hardware.memoryBytes)}`,
  })

const phaseOf = (ctx: SimContext, plan: StepPlan) => {
  const p = ctx.progress.byName.get(plan.phase)
  if (p === undefined)
    throw new RangeError(`sim: plan names phase "${plan.phase}", which the spec does not have`)
  return p
}

/** Updates of (visual, text) completed before the step; `after` adds the step's own update. */
const updatesAt = (ctx: SimContext, plan: StepPlan, after: boolean): { visual: number; text: number } => {
  const p = phaseOf(ctx, plan)
  const own = after && plan.update ? 1 : 0
  return {
    visual: visualUpdatesBefore(p, plan.phaseStep) + (plan.modality === "visual" ? own : 0),
    text: textUpdatesBefore(p, plan.phaseStep) + (plan.modality === "text" ? own : 0),
  }
}

/** The outcome of one step: a pure function of (ctx, plan). */
export const simOutcome = (ctx: SimContext, plan: StepPlan): StepOutcome | StepFailure => {
  const visual = plan.modality === "visual"
  const m = visual ? ctx.visual : ctx.text
  if (!m.costs.fits) return outOfMemory(ctx, plan, m)
  const p = phaseOf(ctx, plan)
  const s = plan.phaseStep
  const nv = visualUpdatesBefore(p, s)
  const nt = textUpdatesBefore(p, s)
  const progress = visual ? progressOf(m.curve, nv, nt) : progressOf(m.curve, nt, nv)
  return {
    losses: lossesAt(m.curve, ctx.seed, plan.step, progress),
    durationMs: stepDurationMs(m.costs, plan.update, followsSwitch(p, s, plan.modality)),
    samples: m.costs.batch,
    memory: m.memory,
  }
}

/** Synthetic evaluation after `plan` (or before any step when undefined). */
export const simEvaluate = (ctx: SimContext, plan: StepPlan | undefined): EvalResult => {
  const n = plan === undefined ? { visual: 0, text: 0 } : updatesAt(ctx, plan, true)
  return {
    metric: "sim-gap-closed",
    values: {
      visual: gapClosed(ctx.visual.curve, progressOf(ctx.visual.curve, n.visual, n.text)),
      text: gapClosed(ctx.text.curve, progressOf(ctx.text.curve, n.text, n.visual)),
    },
    chance: 0,
  }
}

const KNOWN_OPTIONS = ["hardware", "model", "hardwareHash", "modelHash"] as const

const stringOption = (
  options: Readonly<Record<string, unknown>>,
  key: (typeof KNOWN_OPTIONS)[number],
): Effect.Effect<string | undefined, AdapterUnavailable> => {
  const v = options[key]
  if (v === undefined) return Effect.succeed(undefined)
  return typeof v === "string" && v.length > 0
    ? Effect.succeed(v)
    : Effect.fail(new AdapterUnavailable({ message: `sim option ${key}: must be a non-empty string` }))
}

const checkHash = (
  what: string,
  file: string,
  expected: string | undefined,
  actual: string,
): Effect.Effect<void, AdapterUnavailable> =>
  expected === undefined || expected === actual
    ? Effect.void
    : Effect.fail(
        new AdapterUnavailable({
          message: `${what} profile ${file} has changed since the run was recorded (hash ${actual}, recorded ${expected})`,
        }),
      )

/**
 * Options: { hardware?: name or path (default "h100-sxm"), model?: name or path (default
 * "trex2-tiny"), hardwareHash?, modelHash? }. The description records the resolved names (a path
 * becomes absolute) and both profiles' hashes; re-opening with those options fails if a profile
 * file has changed since, so a replay cannot silently use different numbers.
 */
export const SimAdapter: TrainingAdapterShape = {
  kind: "sim",
  open: ({ spec, options }) =>
    Effect.gen(function* () {
      const unknown = Object.keys(options).filter(
        (k) => !(KNOWN_OPTIONS as ReadonlyArray<string>).includes(k),
      )
      if (unknown.length > 0)
        return yield* new AdapterUnavailable({
          message: `unknown sim option ${unknown.join(", ")} (known: ${KNOWN_OPTIONS.join(", ")})`,
        })
      const hwName = (yield* stringOption(options, "hardware")) ?? DEFAULT_HARDWARE
      const modelName = (yield* stringOption(options, "model")) ?? DEFAULT_MODEL
      const hw = yield* loadHardwareProfile(hwName)
      const model = yield* loadModelProfile(modelName)
      yield* checkHash("hardware", hw.file, yield* stringOption(options, "hardwareHash"), hw.hash)
      yield* checkHash("model", model.file, yield* stringOption(options, "modelHash"), model.hash)

      const ctx = makeSimContext(spec, hw.profile, model.profile)
      let last: StepPlan | undefined
      const stepSync = (plan: StepPlan): StepOutcome | StepFailure => {
        last = plan
        return simOutcome(ctx, plan)
      }
      const fmt = (x: number) => x.toPrecision(4)
      const session: TrainingSession = {
        description: {
          kind: "sim",
          options: {
            hardware: looksLikePath(hwName) ? hw.file : hwName,
            model: looksLikePath(modelName) ? model.file : modelName,
            hardwareHash: hw.hash,
            modelHash: model.hash,
          },
          info: {
            hardware: hw.profile.name,
            hardwareFile: hw.file,
            hardwareHash: hw.hash,
            model: model.profile.name,
            modelFile: model.file,
            modelHash: model.hash,
            visualStepMs: fmt(ctx.visual.costs.stepMs),
            textStepMs: fmt(ctx.text.costs.stepMs),
            updateMs: fmt(ctx.visual.costs.updateMs),
            visualStepBytes: String(ctx.visual.costs.stepBytes),
            textStepBytes: String(ctx.text.costs.stepBytes),
          },
        },
        stateless: true,
        stepSync,
        step: (plan) => {
          const r = stepSync(plan)
          return r instanceof StepFailure ? Effect.fail(r) : Effect.succeed(r)
        },
        evaluate: () => Effect.sync(() => simEvaluate(ctx, last)),
        // Nothing to save: every outcome is recomputed from (spec, profiles, plan).
        checkpoint: () => Effect.void,
        restore: () => Effect.void,
      }
      return session
    }),
}

export const SimAdapterLive: Layer.Layer<TrainingAdapter> = Layer.succeed(TrainingAdapter, SimAdapter)

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
 * With the option `quality: "synthetic-recall"`, evaluate gives the synthetic quality model's
 * per-modality recall instead (synthetic-quality.ts; what ratio studies use).
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
import {
  calibrationFor,
  HIGH_WATER_FIGURES,
  MODALITY_LIST,
  type ModalityCosts,
  modalityCosts,
  stepDurationMs,
} from "./cost-model.ts"
import {
  type HardwareProfile,
  type HeldOutMape,
  type LoadedProfile,
  loadHardwareProfile,
  loadModelProfile,
  type ModelProfile,
} from "./profiles.ts"
import {
  followsSwitch,
  makeProgressIndex,
  type ProgressIndex,
  textUpdatesBefore,
  visualUpdatesBefore,
} from "./progress.ts"
import { type CompiledCurve, compileCurve, gapClosed, lossesAt, progressOf } from "./synthetic-loss.ts"
import { makeQualityTracker, SYNTHETIC_QUALITY, SYNTHETIC_QUALITY_NOTE } from "./synthetic-quality.ts"

export const DEFAULT_HARDWARE = "h100-sxm"
/** The T-Rex2-sized profile: the quick start's numbers look like a T-Rex2 step (trex2-tiny is for CI-speed tests). */
export const DEFAULT_MODEL = "trex2-swin-t"

/** A step's memory depends on its modality, whether it applied an update, and whether the other modality ran before it. */
interface MemoryVariants {
  readonly update: { readonly alone: MemorySample; readonly afterOther: MemorySample }
  readonly pending: { readonly alone: MemorySample; readonly afterOther: MemorySample }
}

interface ModalityCtx {
  readonly costs: ModalityCosts
  readonly curve: CompiledCurve
  readonly memory: MemoryVariants
  /** Global index of the run's first step of the other modality (Infinity: none). */
  readonly otherFirst: number
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

/**
 * The four memory samples of a modality. Physical: allocated (resident, plus the step's gradients
 * while they wait for the rest of an accumulation group), in-step peak, and, on hardware with a
 * caching allocator, reserved = the high-water mark of the peaks of the modalities run so far (a
 * single process from step 0). Calibrated: only the fitted figure, so every number is calibrated.
 */
const memoryVariants = (
  hardware: HardwareProfile,
  own: ModalityCosts,
  other: ModalityCosts,
): MemoryVariants => {
  const sample = (update: boolean, afterOther: boolean): MemorySample => {
    const cal = own.calibratedMemory
    if (cal !== undefined) {
      const highWater = HIGH_WATER_FIGURES.includes(cal.figure)
      const otherBytes = other.calibratedMemory?.bytes ?? 0
      return Object.freeze({
        [cal.figure]: highWater && afterOther ? Math.max(cal.bytes, otherBytes) : cal.bytes,
      })
    }
    const out: { allocatedBytes: number; reservedBytes?: number; peakBytes: number } = {
      allocatedBytes: own.resident.total + (update ? 0 : own.gradientBytes),
      peakBytes: own.peakBytes,
    }
    if (hardware.allocator === "caching")
      out.reservedBytes = afterOther ? Math.max(own.peakBytes, other.peakBytes) : own.peakBytes
    return Object.freeze(out)
  }
  return {
    update: { alone: sample(true, false), afterOther: sample(true, true) },
    pending: { alone: sample(false, false), afterOther: sample(false, true) },
  }
}

/** Precomputes everything a step needs; pure. */
export const makeSimContext = (
  spec: ScheduleSpec,
  hardware: HardwareProfile,
  model: ModelProfile,
): SimContext => {
  const progress = makeProgressIndex(spec)
  const costs = {
    visual: modalityCosts(hardware, model, "visual", spec.batch.visual.size),
    text: modalityCosts(hardware, model, "text", spec.batch.text.size),
  }
  const modality = (m: "visual" | "text", saltBase: number): ModalityCtx => {
    const o = m === "visual" ? "text" : "visual"
    return {
      costs: costs[m],
      curve: compileCurve(model.modalities[m].loss, saltBase),
      memory: memoryVariants(hardware, costs[m], costs[o]),
      otherFirst: progress.firstStep[o] ?? Number.POSITIVE_INFINITY,
    }
  }
  return {
    spec,
    hardware,
    model,
    seed: spec.seed,
    progress,
    visual: modality("visual", 0),
    text: modality("text", 1 << 16),
  }
}

const outOfMemory = (ctx: SimContext, plan: StepPlan, m: ModalityCtx): StepFailure =>
  new StepFailure({
    kind: "out-of-memory",
    message:
      m.costs.calibratedMemory !== undefined
        ? `step ${plan.step} (${plan.modality}, batch ${m.costs.batch}) needs ${gib(m.costs.limitBytes)} ` +
          `(${m.costs.calibratedMemory.figure}, calibrated) but ${ctx.hardware.name} has ${gib(ctx.hardware.memoryBytes)}`
        : `step ${plan.step} (${plan.modality}, batch ${m.costs.batch}) needs ${gib(m.costs.peakBytes)} at its in-step peak ` +
          `(${gib(m.costs.resident.total)} weights and optimizer state + ${gib(m.costs.gradientBytes)} gradients + ` +
          `${gib(m.costs.activationBytes)} activations) but ${ctx.hardware.name} has ${gib(ctx.hardware.memoryBytes)}`,
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
    memory: (plan.update ? m.memory.update : m.memory.pending)[
      plan.step > m.otherFirst ? "afterOther" : "alone"
    ],
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

/** A percentage (already in %, as MAPEs are) to one decimal; a dash where there is none. */
export const percentText = (x: number | null) => (x === null ? "—" : `${x.toFixed(1)}%`)

/** Held-out MAPE in words: "visual step time 9.1%, text step time 7.2%, peak memory 3.0%". */
export const mapeText = (m: HeldOutMape): string =>
  `visual step time ${percentText(m.visualStepMs)}, text step time ${percentText(m.textStepMs)}, peak memory ${percentText(m.peakBytes)}`

/**
 * What the sim's numbers are, in words: "uncalibrated", "calibrated (held-out MAPE ...)", or
 * "uncalibrated on h100-sxm (calibrated for cpu-2core only)".
 */
export const calibrationText = (hardware: HardwareProfile, model: ModelProfile): string => {
  const c = model.calibration
  if (c === undefined || c.status === "uncalibrated") return "uncalibrated"
  if (c.hardware !== hardware.name)
    return `uncalibrated on ${hardware.name} (calibrated for ${c.hardware} only)`
  return `calibrated; held-out MAPE ${mapeText(c.heldOut.mapePct)}`
}

/** The adapter description's info: profile names and files, calibration, and the step costs with their units. */
const simInfo = (
  ctx: SimContext,
  hw: LoadedProfile<HardwareProfile>,
  model: LoadedProfile<ModelProfile>,
): Record<string, string> => {
  const fmt = (x: number) => x.toPrecision(4)
  const cal = calibrationFor(hw.profile, model.profile)
  const calibration = calibrationText(hw.profile, model.profile)
  const info: Record<string, string> = {
    hardware: hw.profile.name,
    hardwareFile: hw.file,
    hardwareHash: hw.hash,
    model: model.profile.name,
    modelFile: model.file,
    modelHash: model.hash,
    simulated: `simulated (${hw.profile.name} × ${model.profile.name}, ${calibration})`,
    calibration: cal === undefined ? "uncalibrated" : "calibrated",
    visualStepMs: fmt(ctx.visual.costs.stepMs),
    textStepMs: fmt(ctx.text.costs.stepMs),
    visualUpdateMs: fmt(ctx.visual.costs.updateMs),
    textUpdateMs: fmt(ctx.text.costs.updateMs),
    visualSwitchMs: fmt(ctx.visual.costs.switchMs),
    textSwitchMs: fmt(ctx.text.costs.switchMs),
    stepMsMeans:
      "step: fixed + per sample x batch, without update or switch; update and switch are added on the steps that have them",
  }
  if (cal !== undefined) {
    info.calibratedParts = [
      `time: ${MODALITY_LIST.filter((m) => cal.time[m] !== undefined).join(", ") || "none"}`,
      `memory: ${cal.memory ? `${cal.memory.figure} (${MODALITY_LIST.filter((m) => cal.memory?.[m] !== undefined).join(", ")})` : "none"}`,
    ].join("; ")
    info.calibrationSource = `${cal.source.file} (sha256 ${cal.source.sha256.slice(0, 16)}), ${cal.source.adapter}${cal.source.backend ? `/${cal.source.backend}` : ""} on ${cal.source.machine}`
    info.heldOutMapePct = `${mapeText(cal.heldOut.mapePct)} (${cal.heldOut.method})`
  }
  for (const m of MODALITY_LIST) {
    const c = ctx[m].costs
    const f = c.calibratedMemory?.figure ?? "peakBytes"
    info[`${m}${f[0]!.toUpperCase()}${f.slice(1)}`] = String(
      Math.round(c.calibratedMemory?.bytes ?? c.peakBytes),
    )
  }
  return info
}

const KNOWN_OPTIONS = ["hardware", "model", "hardwareHash", "modelHash", "quality"] as const
/** Values of the `quality` option: the evaluation the session gives. */
export const SIM_QUALITY_MODELS = ["sim-gap-closed", SYNTHETIC_QUALITY.metric] as const

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
 * "trex2-swin-t"), hardwareHash?, modelHash?, quality?: "sim-gap-closed" (default) or
 * "synthetic-recall" (the synthetic quality model of synthetic-quality.ts, for studies) }. The description records the resolved names (a path
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
      const quality = yield* stringOption(options, "quality")
      if (quality !== undefined && !(SIM_QUALITY_MODELS as ReadonlyArray<string>).includes(quality))
        return yield* new AdapterUnavailable({
          message: `sim option quality: must be one of ${SIM_QUALITY_MODELS.join(", ")}, got ${JSON.stringify(quality)}`,
        })
      const tracker = quality === SYNTHETIC_QUALITY.metric ? makeQualityTracker(spec) : undefined

      const ctx = makeSimContext(spec, hw.profile, model.profile)
      let last: StepPlan | undefined
      const stepSync = (plan: StepPlan): StepOutcome | StepFailure => {
        last = plan
        return simOutcome(ctx, plan)
      }
      const session: TrainingSession = {
        description: {
          kind: "sim",
          options: {
            hardware: looksLikePath(hwName) ? hw.file : hwName,
            model: looksLikePath(modelName) ? model.file : modelName,
            hardwareHash: hw.hash,
            modelHash: model.hash,
            ...(quality !== undefined ? { quality } : {}),
          },
          info: tracker
            ? { ...simInfo(ctx, hw, model), quality: SYNTHETIC_QUALITY_NOTE }
            : simInfo(ctx, hw, model),
        },
        stateless: true,
        stepSync,
        step: (plan) => {
          const r = stepSync(plan)
          return r instanceof StepFailure ? Effect.fail(r) : Effect.succeed(r)
        },
        evaluate: () => Effect.sync(() => (tracker ? tracker.at(last?.step) : simEvaluate(ctx, last))),
        // Nothing to save: every outcome is recomputed from (spec, profiles, plan).
        checkpoint: () => Effect.void,
        restore: () => Effect.void,
      }
      return session
    }),
}

export const SimAdapterLive: Layer.Layer<TrainingAdapter> = Layer.succeed(TrainingAdapter, SimAdapter)

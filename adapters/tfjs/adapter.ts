/**
 * The `tfjs` TrainingAdapter: real training steps of the small T-Rex2-like model on a tfjs backend.
 *
 * Options (recorded in the description with every default filled in, enough to re-open the same
 * adapter for resume and replay):
 *   backend       cpu | wasm | webgpu | tensorflow (default wasm)
 *   preset        tiny | small | base (default tiny)
 *   profileEvery  run every Nth step under tf.profile to measure peakBytes, the most bytes live
 *                 inside the step (0 = never). Default: 1 (every step) on cpu and wasm, so that a
 *                 run's memory figure is the in-step peak and shows the visual/text swing (tiny,
 *                 batch 8: 24.3 MiB visual, 21.0 MiB text; the bytes left allocated after a step,
 *                 0.7 MiB of weights and optimizer state, do not differ); 25 on webgpu and
 *                 tensorflow. What it costs: tf.profile records every kernel (bytes, shapes, a
 *                 timer), and the step time includes that. Measured
 *                 on wasm (tiny, 8:1, batch 8/8, 2-core Xeon under load, profiled and unprofiled
 *                 sessions stepped alternately; benchmarks/gpu-webgpu.ts --profile-cost): 200
 *                 steps, mean visual 129 -> 147 ms, text 101 -> 113 ms (+13%); 400 steps, visual
 *                 170 -> 195 ms, text 149 -> 162 ms, median of paired steps +11% / +15%. So steps
 *                 are 10-15% slower; set 0 for step times without it. On webgpu a profiled step
 *                 ends the compute pass after every kernel and reads a timestamp back for each (no
 *                 batched submits), so there it stays sampled (unmeasured).
 *   evalBatches   held-out chunks of 32 images for `evaluate` (default: preset's set, 96 or 128)
 *   lrScale       factor on every lr of the plan (default: the preset's, see ModelPreset.lrScale)
 *   alignWeight   weight of the alignment loss, finite >= 0 (default 1); 0 leaves the term out of
 *                 the step (no `align` loss component, no gradient through it). Same name and
 *                 meaning as the reference PyTorch trainer's option.
 *
 * tfjs has one active backend per process: a session switches the process to its backend.
 */
import { cpus } from "node:os"
import * as tf from "@tensorflow/tfjs-core"
import { Effect, Either, Layer, Schema } from "effect"
import {
  firstIssue,
  issueText,
  NonNegFinite,
  NonNegInt,
  oneOf,
  PosFinite,
  PosInt,
  shown,
} from "../../core/common/index.ts"
import type { MemorySample } from "../../core/log/index.ts"
import {
  type AdapterDescription,
  AdapterUnavailable,
  type OpenOptions,
  StepFailure,
  type StepFailureKind,
  TrainingAdapter,
  type TrainingAdapterShape,
  type TrainingSession,
} from "../../core/run/index.ts"
import { BackendUnavailableError, useBackend } from "./backend.ts"
import { loadGradients } from "./gradients.ts"
import { describeAssignment } from "./param-groups.ts"
import { PRESET_NAMES, PRESETS, type PresetName } from "./presets.ts"
import { makeTrainer, NonFiniteLoss } from "./trainer.ts"

export interface TfjsOptions {
  readonly backend: string
  readonly preset: PresetName
  readonly profileEvery: number
  readonly evalBatches: number
  /** Multiplies every lr of the plan (see ModelPreset.lrScale). */
  readonly lrScale: number
  /** Weight of the visual-to-text alignment loss; 0 = no alignment term. */
  readonly alignWeight: number
}

const EVAL_CHUNK_IMAGES = 32

/** Every step on the CPU backends, where profiling is cheap; sampled where it is not. */
export const defaultProfileEvery = (backend: string): number =>
  backend === "cpu" || backend === "wasm" ? 1 : 25

/**
 * The options as given: every key optional, unknown keys refused. The backend's name is checked
 * by `useBackend`, which can also say which backends this machine has.
 */
const OptionsSchema = Schema.Struct({
  backend: Schema.optional(
    Schema.String.annotations({ message: (i) => `must be a backend name, got ${shown(i.actual)}` }),
  ),
  preset: Schema.optional(oneOf(...PRESET_NAMES)),
  profileEvery: Schema.optional(NonNegInt),
  evalBatches: Schema.optional(PosInt),
  lrScale: Schema.optional(PosFinite),
  alignWeight: Schema.optional(NonNegFinite),
})
const decodeRaw = Schema.decodeUnknownEither(OptionsSchema, { onExcessProperty: "error" })
const KNOWN = Object.keys(OptionsSchema.fields)

/** Decodes adapter options; a bad one is AdapterUnavailable (bad input) naming the option and why. */
export const decodeOptions = (raw: Readonly<Record<string, unknown>>): TfjsOptions | AdapterUnavailable => {
  const r = decodeRaw(raw)
  if (Either.isLeft(r)) {
    const i = firstIssue(r.left, "invalid options")
    return new AdapterUnavailable({
      message:
        i.issue?._tag === "Unexpected"
          ? `tfjs adapter: unknown option ${JSON.stringify(i.path)} (known: ${KNOWN.join(", ")})`
          : `tfjs adapter option ${issueText(i)}`,
    })
  }
  const o = r.right
  const backend = o.backend ?? "wasm"
  const preset = o.preset ?? "tiny"
  return {
    backend,
    preset,
    profileEvery: o.profileEvery ?? defaultProfileEvery(backend),
    evalBatches: o.evalBatches ?? Math.ceil(PRESETS[preset].validationImages / EVAL_CHUNK_IMAGES),
    lrScale: o.lrScale ?? PRESETS[preset].lrScale,
    alignWeight: o.alignWeight ?? 1,
  }
}

/** Maps a thrown error to the engine's failure kinds. */
export const classifyError = (e: unknown): StepFailure => {
  const message = e instanceof Error ? e.message : String(e)
  let kind: StepFailureKind = "adapter-error"
  if (e instanceof NonFiniteLoss) kind = "nan-loss"
  else if (/device (was )?lost|devicelost|context lost/i.test(message)) kind = "device-lost"
  else if (
    /out of memory|\boom\b|failed to allocate|allocation failed|cannot allocate|array buffer allocation|memory access out of bounds|maximum call stack/i.test(
      message,
    )
  )
    kind = "out-of-memory"
  return new StepFailure({ kind, message })
}

type GpuMemoryInfo = tf.MemoryInfo & { numBytesInGPU?: number; numBytesAllocatedInGPU?: number }

const memorySample = (peakBytes?: number): MemorySample => {
  const m = tf.memory() as GpuMemoryInfo
  return {
    allocatedBytes: m.numBytes,
    deviceBytes: m.numBytesInGPU,
    reservedBytes: m.numBytesAllocatedInGPU,
    peakBytes,
    rssBytes: process.memoryUsage().rss,
  }
}

/** Which memory figures the steps carry, in words, for the description's info. */
const describeMemory = (profileEvery: number): string => {
  const m = tf.memory() as GpuMemoryInfo
  const peak =
    profileEvery === 1
      ? "peakBytes (tf.profile: the most bytes live inside the step, every step)"
      : profileEvery > 0
        ? `peakBytes (tf.profile: the most bytes live inside the step, only on steps where step % ${profileEvery} == 0)`
        : ""
  return [
    peak,
    "allocatedBytes (tf.memory().numBytes after the step)",
    m.numBytesAllocatedInGPU !== undefined ? "reservedBytes (webgpu numBytesAllocatedInGPU)" : "",
    m.numBytesInGPU !== undefined ? "deviceBytes (webgpu numBytesInGPU)" : "",
    "rssBytes (process resident set size)",
  ]
    .filter((x) => x)
    .join("; ")
}

const describeAlign = (w: number): string =>
  w > 0
    ? `${w} (InfoNCE of visual prompts against the text embeddings of their classes, on visual steps after the schedule's first text step)`
    : "0 (no alignment loss)"

const open = (opts: OpenOptions) =>
  Effect.gen(function* () {
    const o = decodeOptions(opts.options)
    if (o instanceof AdapterUnavailable) return yield* Effect.fail(o)
    const preset = PRESETS[o.preset]
    const backend = yield* Effect.tryPromise({
      try: () => useBackend(o.backend),
      catch: (e) =>
        new AdapterUnavailable({
          message:
            e instanceof BackendUnavailableError ? e.message : `tfjs: ${e instanceof Error ? e.message : e}`,
        }),
    })
    yield* Effect.tryPromise({
      try: loadGradients,
      catch: (e) =>
        new AdapterUnavailable({
          message: `tfjs: could not load tfjs-core's gradients: ${e instanceof Error ? e.message : e}`,
        }),
    })
    const trainer = yield* Effect.acquireRelease(
      Effect.try({
        try: () =>
          makeTrainer(opts.spec, preset, {
            validationImages: o.evalBatches * EVAL_CHUNK_IMAGES,
            lrScale: o.lrScale,
            alignWeight: o.alignWeight,
          }),
        catch: (e) => new AdapterUnavailable({ message: `tfjs: could not build the model: ${e}` }),
      }),
      (t) => Effect.sync(() => t.dispose()),
    )
    const paramCount = trainer.model.params.reduce((n, p) => n + p.variable.size, 0)
    const description: AdapterDescription = {
      kind: "tfjs",
      options: { ...o },
      info: {
        backend: backend.name,
        device: backend.device,
        tfjs: tf.version_core,
        model: `T-Rex2-like ${preset.name}: ${preset.imageSize}px images, width ${preset.width}, ${preset.encoderBlocks} encoder blocks, ${preset.promptLayers} visual-prompt layers, ${paramCount} parameters`,
        groups: describeAssignment(trainer.groups),
        lrScale: String(o.lrScale),
        alignWeight: describeAlign(o.alignWeight),
        memory: describeMemory(o.profileEvery),
        durationMs: `wall time of data generation, forward, backward, optimizer update and loss read-back${o.profileEvery > 0 ? `, under tf.profile on ${o.profileEvery === 1 ? "every step" : `steps where step % ${o.profileEvery} == 0`}` : ""}`,
        metric: "recall@iou0.5 on held-out images; chance = prompt-blind detector (1 of 3 objects)",
      },
      // What bit-exact re-execution depends on besides the run's inputs; replay names what differs.
      environment: {
        node: process.versions.node,
        tfjs: tf.version_core,
        backend: backend.name,
        device: backend.device,
        cpu: cpus()[0]?.model.trim() ?? "unknown",
      },
    }
    const step = (plan: Parameters<TrainingSession["step"]>[0]) =>
      Effect.tryPromise({
        try: async () => {
          const t0 = performance.now()
          const profiled = o.profileEvery > 0 && plan.step % o.profileEvery === 0
          let result: Awaited<ReturnType<typeof trainer.step>> | undefined
          let peak: number | undefined
          if (profiled) {
            // A failure is carried out of tf.profile: thrown inside it, it would leave the engine
            // recording every later kernel.
            let failure: { error: unknown } | undefined
            const info = await tf.profile(async () => {
              try {
                result = await trainer.step(plan)
              } catch (error) {
                failure = { error }
              }
              return []
            })
            if (failure) throw failure.error
            peak = info.peakBytes
          } else result = await trainer.step(plan)
          const durationMs = performance.now() - t0
          return { losses: result!.losses, durationMs, samples: result!.samples, memory: memorySample(peak) }
        },
        catch: classifyError,
      })
    const session: TrainingSession = {
      description,
      stateless: false,
      step,
      evaluate: () =>
        Effect.tryPromise({
          try: async () => {
            const r = await trainer.evaluate()
            return { metric: "recall@iou0.5", values: r.values, chance: r.chance }
          },
          catch: classifyError,
        }),
      checkpoint: (file) => Effect.tryPromise({ try: () => trainer.checkpoint(file), catch: classifyError }),
      restore: (file) => Effect.tryPromise({ try: () => trainer.restore(file), catch: classifyError }),
    }
    return session
  })

export const TfjsAdapter: TrainingAdapterShape = { kind: "tfjs", open }

export const TfjsAdapterLive: Layer.Layer<TrainingAdapter> = Layer.succeed(TrainingAdapter, TfjsAdapter)

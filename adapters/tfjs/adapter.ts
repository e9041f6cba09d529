/**
 * The `tfjs` TrainingAdapter: real training steps of the small T-Rex2-like model on a tfjs backend.
 *
 * Options (recorded in the description, enough to re-open the same adapter):
 *   backend       cpu | wasm | webgpu | tensorflow (default wasm)
 *   preset        tiny | small | base (default tiny)
 *   profileEvery  run every Nth step under tf.profile to sample peakBytes (default 25; 0 = never).
 *                 Profiled steps read every kernel output back, so they are slower; the engine may
 *                 want to leave them out of timing statistics (their memory has `peakBytes`).
 *   evalEvery     how often the engine should call `evaluate` (advisory, default 50)
 *   evalBatches   held-out chunks of 32 images for `evaluate` (default: preset's set, 96 or 128)
 *
 * tfjs has one active backend per process: a session switches the process to its backend.
 */
import * as tf from "@tensorflow/tfjs-core"
import { Effect, Layer } from "effect"
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
import { BACKEND_NAMES, BackendUnavailableError, useBackend } from "./backend.ts"
import { loadGradients } from "./gradients.ts"
import { describeAssignment } from "./param-groups.ts"
import { isPresetName, PRESET_NAMES, PRESETS } from "./presets.ts"
import { makeTrainer, NonFiniteLoss } from "./trainer.ts"

export interface TfjsOptions {
  readonly backend: string
  readonly preset: string
  readonly profileEvery: number
  readonly evalEvery: number
  readonly evalBatches: number
  /** Multiplies every lr of the plan (see ModelPreset.lrScale). */
  readonly lrScale: number
}

const EVAL_CHUNK_IMAGES = 32

/** Validates adapter options; a bad value is AdapterUnavailable (bad input), naming the field. */
export const decodeOptions = (raw: Readonly<Record<string, unknown>>): TfjsOptions | AdapterUnavailable => {
  const known = new Set(["backend", "preset", "profileEvery", "evalEvery", "evalBatches", "lrScale"])
  for (const k of Object.keys(raw))
    if (!known.has(k))
      return new AdapterUnavailable({
        message: `tfjs adapter: unknown option "${k}" (known: ${[...known].join(", ")})`,
      })
  const backend = raw.backend ?? "wasm"
  if (typeof backend !== "string")
    return new AdapterUnavailable({
      message: `tfjs adapter: backend must be one of ${BACKEND_NAMES.join(", ")}`,
    })
  const preset = raw.preset ?? "tiny"
  if (!isPresetName(preset))
    return new AdapterUnavailable({
      message: `tfjs adapter: unknown preset ${JSON.stringify(preset)} (known: ${PRESET_NAMES.join(", ")})`,
    })
  const int = (name: string, dflt: number, min: number): number | AdapterUnavailable => {
    const v = raw[name] ?? dflt
    return typeof v === "number" && Number.isInteger(v) && v >= min
      ? v
      : new AdapterUnavailable({
          message: `tfjs adapter: ${name} must be an integer >= ${min}, got ${String(v)}`,
        })
  }
  const profileEvery = int("profileEvery", 25, 0)
  const evalEvery = int("evalEvery", 50, 1)
  const evalBatches = int("evalBatches", Math.ceil(PRESETS[preset].validationImages / EVAL_CHUNK_IMAGES), 1)
  for (const v of [profileEvery, evalEvery, evalBatches]) if (v instanceof AdapterUnavailable) return v
  const lrScale = raw.lrScale ?? PRESETS[preset].lrScale
  if (typeof lrScale !== "number" || !Number.isFinite(lrScale) || lrScale <= 0)
    return new AdapterUnavailable({
      message: `tfjs adapter: lrScale must be a finite number > 0, got ${String(lrScale)}`,
    })
  return {
    lrScale,
    backend,
    preset,
    profileEvery: profileEvery as number,
    evalEvery: evalEvery as number,
    evalBatches: evalBatches as number,
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

const memorySample = (peakBytes?: number): MemorySample => {
  const m = tf.memory() as tf.MemoryInfo & { numBytesInGPU?: number; numBytesAllocatedInGPU?: number }
  return {
    allocatedBytes: m.numBytes,
    deviceBytes: m.numBytesInGPU,
    reservedBytes: m.numBytesAllocatedInGPU,
    peakBytes,
    rssBytes: process.memoryUsage().rss,
  }
}

const open = (opts: OpenOptions) =>
  Effect.gen(function* () {
    const o = decodeOptions(opts.options)
    if (o instanceof AdapterUnavailable) return yield* Effect.fail(o)
    const preset = PRESETS[o.preset as keyof typeof PRESETS]
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
        try: () => makeTrainer(opts.spec, preset, o.evalBatches * EVAL_CHUNK_IMAGES, o.lrScale),
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
        peakBytes:
          o.profileEvery > 0
            ? `tf.profile on steps where step % ${o.profileEvery} == 0 (those steps run slower)`
            : "not sampled",
        durationMs: "wall time of data generation, forward, backward, optimizer update and loss read-back",
        metric: "recall@iou0.5 on held-out images; chance = prompt-blind detector (1 of 3 objects)",
      },
    }
    const step = (plan: Parameters<TrainingSession["step"]>[0]) =>
      Effect.tryPromise({
        try: async () => {
          const t0 = performance.now()
          const profiled = o.profileEvery > 0 && plan.step % o.profileEvery === 0
          let result: Awaited<ReturnType<typeof trainer.step>>
          let peak: number | undefined
          if (profiled) {
            let r: typeof result | undefined
            const info = await tf.profile(async () => {
              r = await trainer.step(plan)
              return []
            })
            result = r!
            peak = info.peakBytes
          } else result = await trainer.step(plan)
          const durationMs = performance.now() - t0
          return { losses: result.losses, durationMs, samples: result.samples, memory: memorySample(peak) }
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

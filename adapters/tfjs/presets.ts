/**
 * Model sizes of the T-Rex2-like model. `tiny` is for CI (tens of ms a step on wasm), `small` and
 * `base` are sized for a GPU (webgpu / tensorflow) and would be slow on a 2-core CPU.
 */
import type { ImageGeometry } from "./data.ts"

export interface ModelPreset extends ImageGeometry {
  readonly name: string
  /** Feature width of every module. */
  readonly width: number
  readonly heads: number
  /** Attention + MLP blocks of the shared image encoder. */
  readonly encoderBlocks: number
  /** Cross-attention + MLP layers of the visual prompt encoder. */
  readonly promptLayers: number
  /** MLP hidden width as a multiple of `width`. */
  readonly mlpRatio: number
  /** Octaves of the sine-cosine box embedding. */
  readonly boxFreqs: number
  /** Held-out images used by `evaluate`. */
  readonly validationImages: number
  /**
   * Factor on every lr of the schedule. Scenarios carry the paper's lrs (1e-5 / 1e-4) for a
   * Swin-T model trained for ~10^5 steps; a proxy this small, trained for hundreds of steps,
   * needs them 10x larger to learn at all. Recorded in the run's adapter options.
   */
  readonly lrScale: number
}

export const PRESETS = {
  tiny: {
    name: "tiny",
    imageSize: 32,
    patchSize: 4,
    width: 32,
    heads: 2,
    encoderBlocks: 2,
    promptLayers: 2,
    mlpRatio: 2,
    boxFreqs: 6,
    validationImages: 96,
    lrScale: 10,
  },
  small: {
    name: "small",
    imageSize: 64,
    patchSize: 8,
    width: 128,
    heads: 4,
    encoderBlocks: 4,
    promptLayers: 2,
    mlpRatio: 4,
    boxFreqs: 8,
    validationImages: 128,
    lrScale: 10,
  },
  base: {
    name: "base",
    imageSize: 64,
    patchSize: 4,
    width: 256,
    heads: 8,
    encoderBlocks: 6,
    promptLayers: 3,
    mlpRatio: 4,
    boxFreqs: 8,
    validationImages: 128,
    lrScale: 1,
  },
} as const satisfies Record<string, ModelPreset>

export type PresetName = keyof typeof PRESETS
export const PRESET_NAMES = Object.keys(PRESETS) as PresetName[]

export const isPresetName = (s: unknown): s is PresetName =>
  typeof s === "string" && Object.hasOwn(PRESETS, s)

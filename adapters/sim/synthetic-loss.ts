/**
 * Synthetic per-modality loss curves with seeded, counter-based noise.
 *
 * Component c of modality m at a step with progress n (m's updates so far plus `transfer` times
 * the other modality's):
 *   loss_c = (final_c + (initial_c - final_c) * 2^(-n / halfLife_c)) * (1 + noise * u)
 * where u in [-1, 1) is a hash of (seed, step, component), not a stream of random numbers: the
 * noise of step i needs no earlier step, and the same inputs give the same bits on every run.
 */
import { fmix32 } from "../../core/common/index.ts"
import type { LossCurve } from "./profiles.ts"

const TWO_32 = 4294967296

/** Counter-based hash of (seed, step, salt) to 32 bits; steps beyond 2^32 fold in their high word. */
export const hash3 = (seed: number, step: number, salt: number): number => {
  const lo = step >>> 0
  const hi = Math.floor(step / TWO_32) >>> 0
  let h = fmix32((seed >>> 0) ^ 0x9e3779b9)
  h = fmix32(h ^ lo)
  h = fmix32(h ^ Math.imul(hi + 1, 0x632be5ab) ^ Math.imul(salt + 1, 0x27d4eb2f))
  return h
}

/** Uniform in [-1, 1) from (seed, step, salt). */
export const noiseAt = (seed: number, step: number, salt: number): number =>
  (hash3(seed, step, salt) / TWO_32) * 2 - 1

/** A loss curve unpacked into flat arrays, so evaluating a step allocates only its result. */
export interface CompiledCurve {
  readonly names: ReadonlyArray<string>
  readonly final: Float64Array
  readonly gap: Float64Array
  /** ln 2 / halfLife */
  readonly rate: Float64Array
  readonly noise: number
  readonly transfer: number
  /** Salt of the first component; component j uses saltBase + j, so modalities draw apart. */
  readonly saltBase: number
}

export const compileCurve = (curve: LossCurve, saltBase: number): CompiledCurve => {
  const names = Object.keys(curve.components)
  const n = names.length
  const final = new Float64Array(n)
  const gap = new Float64Array(n)
  const rate = new Float64Array(n)
  names.forEach((name, j) => {
    const c = curve.components[name]!
    final[j] = c.final
    gap[j] = c.initial - c.final
    rate[j] = Math.LN2 / c.halfLife
  })
  return { names, final, gap, rate, noise: curve.noise, transfer: curve.transfer, saltBase }
}

/** Effective progress: own updates plus the transferred share of the other modality's. */
export const progressOf = (curve: CompiledCurve, own: number, other: number): number =>
  own + curve.transfer * other

/** Losses at a step (components plus `total`), noise included. */
export const lossesAt = (
  curve: CompiledCurve,
  seed: number,
  step: number,
  progress: number,
): Record<string, number> => {
  const out: Record<string, number> = {}
  let total = 0
  const { names, final, gap, rate, noise, saltBase } = curve
  for (let j = 0; j < names.length; j++) {
    const clean = final[j]! + gap[j]! * Math.exp(-progress * rate[j]!)
    const v = noise === 0 ? clean : clean * (1 + noise * noiseAt(seed, step, saltBase + j))
    out[names[j]!] = v
    total += v
  }
  out.total = total
  return out
}

/** Noise-free fraction of the loss gap closed at a progress (0 at the start, towards 1). */
export const gapClosed = (curve: CompiledCurve, progress: number): number => {
  let gap = 0
  let left = 0
  for (let j = 0; j < curve.names.length; j++) {
    gap += curve.gap[j]!
    left += curve.gap[j]! * Math.exp(-progress * curve.rate[j]!)
  }
  return gap === 0 ? 1 : 1 - left / gap
}

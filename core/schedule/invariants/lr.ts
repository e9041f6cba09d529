/** Learning-rate rules: finite, warm-up, decay, group ratios, and the exact value the spec gives. */
import { expectedModality, expectedScheduleFactor } from "./formulas.ts"
import {
  close,
  defineRule,
  fmt,
  none,
  phaseAt,
  type SpecView,
  type StepRecord,
  viewOf,
  where,
} from "./view.ts"

/**
 * The record's lr as a multiple of its base lr (warm-up x decay), normalised by the modality
 * factor of the record's own modality; undefined when it cannot be told (zero base or factor,
 * missing or non-finite lr; other rules report those).
 */
const normalisedFactor = (v: SpecView, r: StepRecord): number | undefined => {
  if (v.ref === undefined) return undefined
  const x = r.lr[v.ref]
  const d = v.base[v.ref]! * v.spec.lr.modalityFactor[r.modality]
  if (!(d > 0) || typeof x !== "number" || !Number.isFinite(x)) return undefined
  return x / d
}

export const lrFinite = defineRule({
  name: "lr-finite",
  description: "every group's lr is a finite number >= 0",
  init: (spec) => ({ v: viewOf(spec), pi: 0 }),
  check: (s, r) => {
    for (const g in r.lr) {
      const x = r.lr[g]
      if (typeof x === "number" && x >= 0 && x <= Number.MAX_VALUE) continue
      const pi = phaseAt(s.v, r.step, s.pi)
      if (pi >= 0) s.pi = pi
      return {
        rule: "lr-finite",
        step: r.step,
        message: `${where(s.v, r.step, pi)}: lr of group "${g}" is ${fmt(x)}; every lr must be finite and >= 0`,
      }
    }
    return undefined
  },
  finish: () => none,
})

export const lrWarmup = defineRule({
  name: "lr-warmup",
  description:
    "during warm-up the lr (over its modality factor) never falls, and equals the base lr at the last warm-up step",
  init: (spec) => ({ v: viewOf(spec), prev: Number.NaN, prevStep: -1 }),
  check: (s, r) => {
    const w = s.v.warmup
    if (!(r.step < w)) return undefined
    const f = normalisedFactor(s.v, r)
    if (f === undefined) return undefined
    const prev = s.prev
    const prevStep = s.prevStep
    s.prev = f
    s.prevStep = r.step
    const at = (): string => where(s.v, r.step, phaseAt(s.v, r.step, -1))
    if (f < prev && !close(f, prev))
      return {
        rule: "lr-warmup",
        step: r.step,
        message: `${at()}: lr falls during warm-up: x${fmt(f)} of the base lr after x${fmt(prev)} at step ${prevStep}; warm-up must be non-decreasing`,
      }
    if (r.step === w - 1 && !close(f, 1)) {
      const ref = s.v.ref!
      const expected = s.v.base[ref]! * s.v.spec.lr.modalityFactor[r.modality]
      return {
        rule: "lr-warmup",
        step: r.step,
        message: `${at()}: warm-up must reach the base lr at its last step: expected lr ${fmt(expected)} for group "${ref}", got ${fmt(r.lr[ref])} (x${fmt(f)})`,
      }
    }
    return undefined
  },
  finish: () => none,
})

export const lrDecay = defineRule({
  name: "lr-decay",
  description: "after warm-up the lr (over its modality factor) never rises",
  init: (spec) => ({ v: viewOf(spec), prev: Number.NaN, prevStep: -1 }),
  check: (s, r) => {
    // The warm-up's last step (factor 1) is the reference the first decay step is held to.
    if (!(r.step >= s.v.warmup - 1)) return undefined
    const f = normalisedFactor(s.v, r)
    if (f === undefined) return undefined
    const prev = s.prev
    const prevStep = s.prevStep
    s.prev = f
    s.prevStep = r.step
    if (f > prev && !close(f, prev))
      return {
        rule: "lr-decay",
        step: r.step,
        message: `${where(s.v, r.step, phaseAt(s.v, r.step, -1))}: lr rises during decay: x${fmt(f)} of the base lr after x${fmt(prev)} at step ${prevStep}; after warm-up it must be non-increasing`,
      }
    return undefined
  },
  finish: () => none,
})

export const lrGroupRatios = defineRule({
  name: "lr-group-ratios",
  description: "every group's lr keeps its configured ratio to the first group with a base lr > 0",
  init: (spec) => ({ v: viewOf(spec) }),
  check: (s, r) => {
    const { ref, base, groups, baseList } = s.v
    if (ref === undefined || groups.length < 2) return undefined
    const xr = r.lr[ref]
    if (typeof xr !== "number" || !Number.isFinite(xr)) return undefined
    const br = base[ref]!
    // Every group's lr over its base is the same shared factor; dividing (not cross-multiplying)
    // keeps lrs near the float range's top from overflowing.
    const shared = xr / br
    for (let i = 0; i < groups.length; i++) {
      const g = groups[i]!
      const x = r.lr[g]
      if (g === ref || typeof x !== "number" || !Number.isFinite(x)) continue
      const bg = baseList[i]!
      if (bg === 0 ? x === 0 : close(x / bg, shared)) continue
      return {
        rule: "lr-group-ratios",
        step: r.step,
        message: `${where(s.v, r.step, phaseAt(s.v, r.step, -1))}: group "${g}" lr ${fmt(x)} is x${fmt(x / xr)} of group "${ref}" (${fmt(xr)}); the spec sets x${fmt(bg / br)}`,
      }
    }
    return undefined
  },
  finish: () => none,
})

export const lrMatchesSpec = defineRule({
  name: "lr-matches-spec",
  description:
    "each group's lr is base x warm-up/decay factor x modality factor of the spec's modality at that step (relative 1e-9), with exactly the spec's groups",
  init: (spec) => ({ v: viewOf(spec), pi: 0 }),
  check: (s, r) => {
    const pi = phaseAt(s.v, r.step, s.pi)
    if (pi < 0) return undefined
    s.pi = pi
    const { spec, groups, baseList, total } = s.v
    const m = expectedModality(s.v.phases[pi]!, r.step - s.v.starts[pi]!)
    const sf = expectedScheduleFactor(spec, r.step, total)
    const mf = spec.lr.modalityFactor[m]
    let keys = 0
    for (const _ in r.lr) keys++
    for (let i = 0; i < groups.length; i++) {
      const g = groups[i]!
      const x = r.lr[g]
      const e = baseList[i]! * sf * mf
      if (x === undefined)
        return {
          rule: "lr-matches-spec",
          step: r.step,
          message: `${where(s.v, r.step, pi)}: no lr for group "${g}" (expected ${fmt(e)})`,
        }
      if (close(x, e)) continue
      return {
        rule: "lr-matches-spec",
        step: r.step,
        message: `${where(s.v, r.step, pi)}: lr of group "${g}": expected ${fmt(e)} (base ${fmt(baseList[i])} x schedule ${fmt(sf)} x ${m} factor ${fmt(mf)}), got ${fmt(x)}`,
      }
    }
    if (keys !== groups.length) {
      const extra = Object.keys(r.lr).filter((g) => !(g in s.v.base))
      return {
        rule: "lr-matches-spec",
        step: r.step,
        message: `${where(s.v, r.step, pi)}: lr for group(s) ${extra.map((g) => `"${g}"`).join(", ")} not in the spec (groups: ${groups.join(", ")})`,
      }
    }
    return undefined
  },
  finish: () => none,
})

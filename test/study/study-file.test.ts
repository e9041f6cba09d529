/** Study files: decoding (defaults, bad input with its path), expansion, budgets; the synthetic quality model. */
import { Either } from "effect"
import { describe, expect, it } from "vitest"
import {
  contribution,
  efficiency,
  recallOf,
  SYNTHETIC_QUALITY,
  syntheticQualityAt,
} from "../../adapters/sim/synthetic-quality.ts"
import { decodeSpec, type ScheduleSpec } from "../../core/schedule/spec.ts"
import { decodeStudy, expandStudy, stepsForSamples } from "../../core/study/study-file.ts"

const base: ScheduleSpec = Either.getOrThrow(
  decodeSpec({
    name: "base",
    seed: 7,
    phases: [{ name: "joint", steps: 90, ratio: { visual: 8, text: 1 } }],
    batch: { visual: { size: 4 }, text: { size: 2 } },
    optimizer: { kind: "adamw", lr: 1e-3, groups: [{ name: "all" }] },
  }),
)

const minimal = {
  name: "s",
  base: "../x.json",
  target: { adapter: "sim" },
  budget: { steps: 100 },
  evalEvery: 10,
}

const decode = (o: unknown) => decodeStudy(o, "study.json")
const err = (o: unknown) => {
  const r = decode(o)
  if (Either.isRight(r)) throw new Error("expected an error")
  return r.left.message
}

describe("decodeStudy", () => {
  it("defaults to the seven default ratios", () => {
    const s = Either.getOrThrow(decode(minimal))
    expect(s.ratios.map((r) => `${r.visual}:${r.text}`)).toEqual([
      "1:0",
      "16:1",
      "8:1",
      "4:1",
      "2:1",
      "1:1",
      "0:1",
    ])
    expect(s.target).toEqual({ adapter: "sim" })
  })
  it("names the path of bad input", () => {
    expect(err({ ...minimal, ratios: ["8:1", "x"] })).toContain("ratios[1]")
    expect(err({ ...minimal, ratios: ["8:1", "8:1"] })).toContain("same as ratios[0]")
    expect(err({ ...minimal, budget: { steps: 1, samples: 2 } })).toContain("exactly one")
    expect(err({ ...minimal, budget: {} })).toContain("exactly one")
    expect(err({ ...minimal, budget: { steps: 5, maxSteps: 9 } })).toContain("maxSteps")
    expect(err({ ...minimal, target: { adapter: "nope" } })).toContain("target.adapter")
    expect(err({ ...minimal, evalEvery: 0 })).toContain("evalEvery")
    expect(err({ ...minimal, seeds: [1, 1] })).toContain("seeds[1]")
    expect(err({ ...minimal, warmupSteps: [] })).toContain("warmupSteps")
    expect(err({ ...minimal, typo: 1 })).toContain("typo")
  })
})

describe("expandStudy", () => {
  it("one configuration per ratio x lr factors x warm-up x seed, with stable ids", () => {
    const s = Either.getOrThrow(
      decode({
        ...minimal,
        ratios: ["4:1", "text-only"],
        lrFactors: [
          { visual: 1, text: 1 },
          { visual: 1, text: 0.5 },
        ],
        warmupSteps: [0, 20],
        seeds: [1, 2],
      }),
    )
    const cs = Either.getOrThrow(expandStudy(s, base))
    expect(cs).toHaveLength(2 * 2 * 2 * 2)
    expect(cs[0]!.label).toBe("4x1-lrv1-lrt1-w0-s1")
    expect(cs[0]!.id).toBe("sim-h100-sxm-4x1-lrv1-lrt1-w0-s1")
    expect(cs[3]!.setting).toBe("4x1-lrv1-lrt1-w20")
    expect(cs[3]!.spec.lr.warmup).toEqual({ kind: "linear", steps: 20, startFactor: 0.001 })
    expect(cs[4]!.spec.lr.modalityFactor).toEqual({ visual: 1, text: 0.5 })
    expect(cs[0]!.spec.lr.warmup).toBeUndefined()
    expect(cs[1]!.spec.seed).toBe(2)
    expect(cs[0]!.spec.phases).toEqual([
      { name: "study", steps: 100, ratio: { visual: 4, text: 1 }, order: "visual-first" },
    ])
    expect(cs[0]!.adapterOptions).toEqual({ quality: "synthetic-recall" })
  })
  it("ids leave out the axes the file does not list; the base seed is kept", () => {
    const cs = Either.getOrThrow(
      expandStudy(Either.getOrThrow(decode({ ...minimal, ratios: ["8:1"] })), base),
    )
    expect(cs.map((c) => c.label)).toEqual(["8x1"])
    expect(cs[0]!.seed).toBe(7)
  })
  it("a warm-up longer than the budget is refused", () => {
    const s = Either.getOrThrow(decode({ ...minimal, warmupSteps: [200] }))
    expect(
      Either.getLeft(expandStudy(s, base)).pipe((e) => (e._tag === "Some" ? e.value.message : "")),
    ).toContain("longer than")
  })
  it("a samples budget stops at the first step that reaches it", () => {
    // 8:1 with batches 4 and 2: a cycle is 9 steps and 34 samples.
    expect(stepsForSamples({ visual: 8, text: 1 }, { visual: 4, text: 2 }, "visual-first", 34)).toBe(9)
    expect(stepsForSamples({ visual: 8, text: 1 }, { visual: 4, text: 2 }, "visual-first", 35)).toBe(10)
    expect(stepsForSamples({ visual: 8, text: 1 }, { visual: 4, text: 2 }, "visual-first", 33)).toBe(9)
    expect(stepsForSamples({ visual: 8, text: 1 }, { visual: 4, text: 2 }, "visual-first", 32)).toBe(8)
    expect(stepsForSamples({ visual: 0, text: 1 }, { visual: 4, text: 2 }, "visual-first", 7)).toBe(4)
    const s = Either.getOrThrow(
      decode({ ...minimal, ratios: ["visual-only", "text-only"], budget: { samples: 40 } }),
    )
    expect(Either.getOrThrow(expandStudy(s, base)).map((c) => c.steps)).toEqual([10, 20])
  })
})

describe("synthetic quality model", () => {
  it("efficiency peaks at the best lr factor", () => {
    expect(efficiency(1)).toBe(1)
    expect(efficiency(0.5)).toBeLessThan(1)
    expect(efficiency(2)).toBeLessThan(1)
  })
  it("early updates above the tolerated factor lose progress", () => {
    expect(contribution(1, 0)).toBeLessThan(0)
    expect(contribution(1, SYNTHETIC_QUALITY.fragileUpdates)).toBe(1)
  })
  it("is chance before training and rises with each modality's steps, deterministically", () => {
    expect(recallOf({ visual: 0, text: 0 })).toEqual({ visual: 0.05, text: 0.05 })
    const a = syntheticQualityAt(base, 89)
    expect(a).toEqual(syntheticQualityAt(base, 89))
    expect(a.metric).toBe("synthetic-recall")
    const b = syntheticQualityAt(base, 45)
    expect(a.values.visual).toBeGreaterThan(b.values.visual)
  })
})

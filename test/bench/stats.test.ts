import fc from "fast-check"
import { Bench } from "tinybench"
import { describe, expect, it } from "vitest"
import { type MemoryPoint, memoryFluctuation } from "../../core/bench/memory-fluctuation.ts"
import {
  latencyStatistics,
  mape,
  mean,
  median,
  quantile,
  type Statistics,
  studentTCritical95,
} from "../../core/common/statistics.ts"

/** Feeds exact samples through tinybench's own API: each iteration reports its duration. */
const tinybenchStatistics = async (samples: ReadonlyArray<number>) => {
  let call = -1
  const bench = new Bench({ iterations: samples.length, time: 0, warmup: false })
  // tinybench calls the function once before the measured iterations (to see if it is async).
  bench.add("fixed", () => {
    call++
    return { overriddenDuration: call === 0 ? 0 : samples[call - 1]! }
  })
  await bench.run()
  const result = bench.tasks[0]!.result
  if (!("latency" in result)) throw new Error(`tinybench did not produce statistics: ${result.state}`)
  expect(result.latency.samplesCount).toBe(samples.length)
  return result.latency
}

const STAT_KEYS = [
  "aad",
  "critical",
  "df",
  "mad",
  "max",
  "mean",
  "min",
  "moe",
  "p50",
  "p75",
  "p99",
  "p995",
  "p999",
  "rme",
  "samplesCount",
  "sd",
  "sem",
  "variance",
] as const satisfies ReadonlyArray<keyof Statistics>

describe("helpers", () => {
  it("mean, median and type-7 quantiles on hand-computed series", () => {
    expect(mean([1, 2, 3, 4])).toBe(2.5)
    expect(median([4, 1, 3, 2])).toBe(2.5)
    expect(median([5, 1, 3])).toBe(3)
    // h = (4 - 1) * 0.75 = 2.25 -> 3 + 0.25 * (4 - 3)
    expect(quantile([1, 2, 3, 4], 0.75)).toBeCloseTo(3.25, 12)
    expect(quantile([1, 2, 3, 4], 0)).toBe(1)
    expect(quantile([1, 2, 3, 4], 1)).toBe(4)
    expect(quantile([10, 20], 0.1)).toBeCloseTo(11, 12)
  })

  it("empty input gives NaN, bad q throws, input is not mutated", () => {
    expect(mean([])).toBeNaN()
    expect(median([])).toBeNaN()
    expect(() => quantile([1], 1.5)).toThrow(RangeError)
    const xs = [3, 1, 2]
    median(xs)
    latencyStatistics(xs)
    expect(xs).toEqual([3, 1, 2])
  })

  it("mape is in percent and skips zero actuals", () => {
    // |100-110|/100 = 10%, |200-180|/200 = 10%, the zero actual is left out.
    expect(mape([100, 200, 0], [110, 180, 5])).toBeCloseTo(10, 12)
    expect(mape([4], [1])).toBeCloseTo(75, 12)
    expect(mape([0, 0], [1, 2])).toBeNaN()
    expect(() => mape([1, 2], [1])).toThrow(RangeError)
  })
})

describe("studentTCritical95", () => {
  it("matches published t-table values (0.975 quantile)", () => {
    // Reference values: R's qt(0.975, df).
    const table: ReadonlyArray<[number, number]> = [
      [1, 12.706204736174707],
      [2, 4.302652729749464],
      [3, 3.182446305284263],
      [7, 2.364624251592785],
      [10, 2.228138851986274],
      [30, 2.042272456301238],
      [100, 1.983971518523552],
      [1000, 1.962339080826415],
    ]
    for (const [df, t] of table) expect(studentTCritical95(df), `df ${df}`).toBeCloseTo(t, 11)
  })

  it("falls back to 1 degree of freedom at 0 and decreases toward the normal quantile", () => {
    expect(studentTCritical95(0)).toBe(studentTCritical95(1))
    let prev = Number.POSITIVE_INFINITY
    for (const df of [1, 2, 5, 20, 999, 1000, 1001, 2000, 1e6]) {
      const t = studentTCritical95(df)
      expect(t).toBeLessThan(prev)
      expect(t).toBeGreaterThan(1.959963984540054)
      prev = t
    }
  })
})

describe("latencyStatistics", () => {
  it("computes every field on [1, 2, 3, 4] by hand", () => {
    const s = latencyStatistics([4, 2, 1, 3])!
    const variance = 5 / 3 // (2.25 + 0.25 + 0.25 + 2.25) / (4 - 1)
    const sd = Math.sqrt(variance)
    const sem = sd / 2
    const critical = 3.182446305284263
    expect(s.samplesCount).toBe(4)
    expect(s.df).toBe(3)
    expect(s.min).toBe(1)
    expect(s.max).toBe(4)
    expect(s.mean).toBeCloseTo(2.5, 14)
    expect(s.variance).toBeCloseTo(variance, 14)
    expect(s.sd).toBeCloseTo(sd, 14)
    expect(s.sem).toBeCloseTo(sem, 14)
    expect(s.critical).toBeCloseTo(critical, 11)
    expect(s.moe).toBeCloseTo(sem * critical, 11)
    expect(s.rme).toBeCloseTo(((sem * critical) / 2.5) * 100, 9)
    expect(s.p50).toBe(2.5)
    expect(s.p75).toBeCloseTo(3.25, 14)
    expect(s.p99).toBeCloseTo(3.97, 14)
    expect(s.p995).toBeCloseTo(3.985, 14)
    expect(s.p999).toBeCloseTo(3.997, 14)
    expect(s.aad).toBeCloseTo(1, 14) // (1.5 + 0.5 + 0.5 + 1.5) / 4
    expect(s.mad).toBe(1) // median of |x - 2.5| = 1.5, 0.5, 0.5, 1.5
    expect(s.samples).toBeUndefined()
  })

  it("a single sample has zero spread and the df-1 critical value", () => {
    const s = latencyStatistics([5], { retainSamples: true })!
    expect(s).toMatchObject({ df: 0, variance: 0, sd: 0, sem: 0, moe: 0, rme: 0, mad: 0, aad: 0 })
    expect(s).toMatchObject({ min: 5, max: 5, p50: 5, p99: 5, p999: 5, samples: [5] })
    expect(s.critical).toBeCloseTo(12.706204736174707, 11)
  })

  it("empty input has no statistics; a zero mean gives an infinite rme", () => {
    expect(latencyStatistics([])).toBeUndefined()
    expect(latencyStatistics([0, 0, 0])!.rme).toBe(Number.POSITIVE_INFINITY)
  })

  it("retains sorted samples only when asked", () => {
    expect(latencyStatistics([3, 1, 2], { retainSamples: true })!.samples).toEqual([1, 2, 3])
  })

  it.each([
    ["pi digits", [3, 1, 4, 1, 5, 9, 2, 6]],
    ["two samples", [10.5, 12.25]],
    [
      "skewed, 31 samples",
      Array.from({ length: 31 }, (_, i) => 1 + (i % 7) ** 2 * 0.37 + (i === 30 ? 50 : 0)),
    ],
    ["1500 samples", Array.from({ length: 1500 }, (_, i) => 5 + Math.sin(i * 12.9898) * 2 + (i % 97) / 50)],
  ])("agrees with tinybench run through its own API (%s)", async (_name, samples) => {
    const theirs = await tinybenchStatistics(samples)
    const ours = latencyStatistics(samples)!
    for (const key of STAT_KEYS) {
      const a = ours[key]
      const b = theirs[key]
      expect(Math.abs(a - b), `${key}: ours ${a}, tinybench ${b}`).toBeLessThanOrEqual(
        1e-10 * Math.max(1, Math.abs(b)),
      )
    }
  })

  it("keeps its order invariants on arbitrary samples", () => {
    fc.assert(
      fc.property(
        fc.array(fc.double({ min: 0, max: 1e6, noNaN: true }), { minLength: 1, maxLength: 200 }),
        (xs) => {
          const s = latencyStatistics(xs)!
          const chain = [s.min, s.p50, s.p75, s.p99, s.p995, s.p999, s.max]
          for (let i = 1; i < chain.length; i++) expect(chain[i]!).toBeGreaterThanOrEqual(chain[i - 1]!)
          expect(s.mean).toBeGreaterThanOrEqual(s.min - 1e-9 * s.max)
          expect(s.mean).toBeLessThanOrEqual(s.max + 1e-9 * s.max)
          expect(s.variance).toBeGreaterThanOrEqual(0)
          expect(s.moe).toBeCloseTo(s.sem * s.critical, 6)
        },
      ),
    )
  })
})

describe("memoryFluctuation", () => {
  const series = (modalities: string, bytes: ReadonlyArray<number>): MemoryPoint[] =>
    [...modalities].map((c, step) => ({ step, modality: c === "V" ? "visual" : "text", bytes: bytes[step]! }))

  it("computes peak, trough, range, median ratio and per-cycle swing on a 2:1 run", () => {
    const m = memoryFluctuation(series("VVTVVTVVT", [100, 120, 50, 110, 130, 60, 90, 100, 40]))!
    expect(m.count).toBe(9)
    expect(m.peak).toBe(130)
    expect(m.trough).toBe(40)
    expect(m.range).toBe(90)
    expect(m.mean).toBeCloseTo(800 / 9, 12)
    expect(m.median).toBe(100) // 40 50 60 90 [100] 100 110 120 130
    expect(m.peakToMedian).toBeCloseTo(1.3, 12)
    // Swings: 120-50, 130-60, 100-40.
    expect(m.swing).toEqual({ cycles: 3, mean: expect.closeTo(200 / 3, 12), max: 70 })
    expect(m.byModality.visual).toEqual({ count: 6, peak: 130, trough: 90, mean: 650 / 6 })
    expect(m.byModality.text).toEqual({ count: 3, peak: 60, trough: 40, mean: 50 })
  })

  it("uses the population standard deviation for the coefficient of variation", () => {
    // mean 2, population sd 1 -> 0.5 (the sample sd would give 0.707).
    expect(memoryFluctuation(series("VT", [1, 3]))!.cv).toBeCloseTo(0.5, 14)
  })

  it("sorts by step before finding cycles", () => {
    const shuffled = series("VVTVT", [10, 20, 5, 40, 1]).reverse()
    expect(memoryFluctuation(shuffled)!.swing).toEqual({ cycles: 2, mean: 27, max: 39 })
  })

  it("skips cycles lacking a modality and allows negative swings", () => {
    // Leading text block is a text-only cycle (skipped); then V50 V60 T20 -> 40; V10 T30 -> -20.
    const m = memoryFluctuation(series("TVVTVT", [10, 50, 60, 20, 10, 30]))!
    expect(m.swing).toEqual({ cycles: 2, mean: 10, max: 40 })
  })

  it("groups by (phase, cycle) when the samples carry them", () => {
    // Text-first cycles: (T10 V50) and (T20 V70) -> swings 40 and 50.
    const labelled: MemoryPoint[] = [
      { step: 0, modality: "text", bytes: 10, phase: "joint", cycle: 0 },
      { step: 1, modality: "visual", bytes: 50, phase: "joint", cycle: 0 },
      { step: 2, modality: "text", bytes: 20, phase: "joint", cycle: 1 },
      { step: 3, modality: "visual", bytes: 70, phase: "joint", cycle: 1 },
    ]
    expect(memoryFluctuation(labelled)!.swing).toEqual({ cycles: 2, mean: 45, max: 50 })
    // Without the labels the block rule pairs V50 with T20 only.
    const unlabelled = labelled.map(({ step, modality, bytes }) => ({ step, modality, bytes }))
    expect(memoryFluctuation(unlabelled)!.swing).toEqual({ cycles: 1, mean: 30, max: 30 })
  })

  it("edge cases: empty, single value, visual-only, all zero", () => {
    expect(memoryFluctuation([])).toBeUndefined()
    const one = memoryFluctuation(series("V", [7]))!
    expect(one).toMatchObject({ count: 1, peak: 7, trough: 7, range: 0, cv: 0, peakToMedian: 1, swing: null })
    expect(one.byModality.text).toBeUndefined()
    const visualOnly = memoryFluctuation(series("VVVV", [1, 4, 2, 3]))!
    expect(visualOnly.swing).toBeNull()
    expect(visualOnly.range).toBe(3)
    const zero = memoryFluctuation(series("VT", [0, 0]))!
    expect(zero.cv).toBeNull()
    expect(zero.peakToMedian).toBeNull()
    expect(zero.swing).toEqual({ cycles: 1, mean: 0, max: 0 })
  })

  it("handles long series without overflowing the stack", () => {
    const long = Array.from({ length: 9 * 33_333 }, (_, step) => ({
      step,
      modality: (step % 9 < 8 ? "visual" : "text") as "visual" | "text",
      bytes: step % 9 < 8 ? 1000 + (step % 9) : 200,
    }))
    const m = memoryFluctuation(long)!
    expect(m.peak).toBe(1007)
    expect(m.swing).toEqual({ cycles: 33_333, mean: 807, max: 807 })
  })
})

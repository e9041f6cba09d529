/**
 * Properties of the planner over arbitrary valid specs: it satisfies every schedule rule (whole
 * runs and runs cut by --steps), random access equals the iterator, each phase's visual count is
 * DESIGN.md's closed formula, and resuming at any k continues exactly like the whole run.
 * Many small specs, a few of about 10^5 steps. A failing spec prints as one line (describeSpec).
 */
import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { checkSchedule } from "../core/schedule/invariants/index.ts"
import { makePlanner, planRange, planStep, scheduleFactor } from "../core/schedule/plan.ts"
import { groupBaseLrs, type Phase, type ScheduleSpec, totalSteps } from "../core/schedule/spec.ts"
import { arbBigSpec, arbSpec } from "./arbitraries.ts"

const frac = fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true })

/** DESIGN.md's formula, written out again here so the test does not trust plan.ts's copy. */
const closedFormula = (p: Phase, n: number): number => {
  const { visual: v, text: t } = p.ratio
  const c = v + t
  const rest = n % c
  return Math.floor(n / c) * v + (p.order === "text-first" ? Math.max(rest - t, 0) : Math.min(rest, v))
}

const visualPerPhase = (spec: ScheduleSpec, upTo = totalSteps(spec)): number[] => {
  const index = new Map(spec.phases.map((p, i) => [p.name, i]))
  const counts = spec.phases.map(() => 0)
  for (const r of planRange(spec, 0, upTo)) if (r.modality === "visual") counts[index.get(r.phase)!]!++
  return counts
}

describe("the planner satisfies every schedule rule", () => {
  it("for arbitrary small specs", () => {
    fc.assert(
      fc.property(arbSpec, (spec) => {
        const report = checkSchedule(spec, planRange(spec))
        expect(report.violations).toEqual([])
        expect(report.steps).toBe(totalSteps(spec))
      }),
      { numRuns: 300 },
    )
  })

  it("for arbitrary specs cut by --steps N (limit N)", () => {
    fc.assert(
      fc.property(arbSpec, frac, (spec, at) => {
        const n = 1 + Math.floor(at * totalSteps(spec))
        const report = checkSchedule(spec, planRange(spec, 0, n), { limit: n })
        expect(report.violations).toEqual([])
      }),
      { numRuns: 200 },
    )
  })

  it("for a few specs of about 10^5 steps", () => {
    fc.assert(
      fc.property(arbBigSpec, (spec) => {
        const report = checkSchedule(spec, planRange(spec))
        expect(report.violations).toEqual([])
      }),
      { numRuns: 6 },
    )
  })
})

describe("random access equals the iterator", () => {
  it("at every index, for small specs", () => {
    fc.assert(
      fc.property(arbSpec, (spec) => {
        let i = 0
        for (const r of planRange(spec)) expect(planStep(spec, i++)).toEqual(r)
        expect(i).toBe(totalSteps(spec))
      }),
      { numRuns: 150 },
    )
  })

  it("at sampled indices, for big specs", () => {
    fc.assert(
      fc.property(arbBigSpec, fc.array(frac, { minLength: 1, maxLength: 50 }), (spec, fracs) => {
        const total = totalSteps(spec)
        const planner = makePlanner(spec)
        for (const f of fracs) {
          const i = Math.floor(f * total)
          const [fromIterator] = planRange(spec, i, 1)
          expect(planner.at(i)).toEqual(fromIterator)
          expect(planStep(spec, i)).toEqual(fromIterator)
        }
      }),
      { numRuns: 6 },
    )
  })

  it("rejects indices outside the schedule", () => {
    fc.assert(
      fc.property(arbSpec, (spec) => {
        expect(() => planStep(spec, -1)).toThrow(RangeError)
        expect(() => planStep(spec, totalSteps(spec))).toThrow(/outside the schedule/)
        expect(() => planStep(spec, 0.5)).toThrow(RangeError)
      }),
      { numRuns: 20 },
    )
  })
})

describe("each phase's visual count is the closed formula", () => {
  it("for whole runs", () => {
    fc.assert(
      fc.property(arbSpec, (spec) => {
        expect(visualPerPhase(spec)).toEqual(spec.phases.map((p) => closedFormula(p, p.steps)))
      }),
      { numRuns: 200 },
    )
  })

  it("for runs cut by --steps N: the cut phase by its truncated length, later phases absent", () => {
    fc.assert(
      fc.property(arbSpec, frac, (spec, at) => {
        const n = 1 + Math.floor(at * totalSteps(spec))
        let start = 0
        const expected = spec.phases.map((p) => {
          const len = Math.max(0, Math.min(p.steps, n - start))
          start += p.steps
          return closedFormula(p, len)
        })
        expect(visualPerPhase(spec, n)).toEqual(expected)
      }),
      { numRuns: 150 },
    )
  })
})

describe("resuming at any k gives the same continuation", () => {
  it("planRange(spec, k) equals the tail of the whole run; planRange(spec, k, m) a window of it", () => {
    fc.assert(
      fc.property(arbSpec, frac, fc.integer({ min: 0, max: 50 }), (spec, at, m) => {
        const whole = [...planRange(spec)]
        const k = Math.floor(at * whole.length)
        expect([...planRange(spec, k)]).toEqual(whole.slice(k))
        expect([...planRange(spec, k, m)]).toEqual(whole.slice(k, k + m))
      }),
      { numRuns: 150 },
    )
  })
})

describe("the lr schedule's landmarks", () => {
  it("warm-up reaches the base lr exactly at its last step; cosine reaches its floor at the last step", () => {
    fc.assert(
      fc.property(arbSpec, (spec) => {
        const total = totalSteps(spec)
        const w = spec.lr.warmup?.steps ?? 0
        if (w > 0) expect(scheduleFactor(spec, w - 1)).toBe(1)
        const d = spec.lr.decay
        // With a single step after warm-up, that step is both the cosine's start (1) and its end.
        if (d.kind === "cosine" && total - w >= 2)
          expect(scheduleFactor(spec, total - 1)).toBeCloseTo(d.floor, 12)
        const last = planStep(spec, total - 1)
        const base = groupBaseLrs(spec)
        const f = scheduleFactor(spec, total - 1) * spec.lr.modalityFactor[last.modality]
        for (const g of Object.keys(base)) expect(last.lr[g]).toBe(base[g]! * f)
      }),
      { numRuns: 200 },
    )
  })
})

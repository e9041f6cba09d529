/**
 * Properties of the planner over arbitrary valid specs, held to DESIGN.md's formulas as this file
 * writes them out (never the planner's own helpers): every step's modality, cycle, position,
 * micro-step, update and lr; each phase's visual count (with offsets, against brute force); the
 * schedule rules; random access against the iterator; resuming at any k.
 * Many small specs, a few of about 10^5 steps. A failing spec prints as one line (describeSpec).
 */
import { Either } from "effect"
import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { expectedVisualCount } from "../../core/schedule/invariants/formulas.ts"
import { checkSchedule } from "../../core/schedule/invariants/index.ts"
import { expectedVisualSteps, makePlanner, planRange, planStep } from "../../core/schedule/plan.ts"
import { forkSpecWithRatio } from "../../core/schedule/ratio-fork.ts"
import type { Modality, Phase, ScheduleSpec } from "../../core/schedule/spec.ts"
import { arbBigSpec, arbRatio, arbSpec } from "./arbitraries.ts"

const frac = fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true })

// ---------------------------------------------------------------------------------------------
// DESIGN.md's formulas, written out again here so the tests trust neither plan.ts nor the rules.

type Shape = Pick<Phase, "ratio" | "order" | "offset">

const total = (spec: ScheduleSpec): number => spec.phases.reduce((n, p) => n + p.steps, 0)

/** Step i of a phase is visual iff (i + offset) mod (V+T) < V (visual first), >= T (text first). */
const isVisual = (p: Shape, i: number): boolean => {
  const pos = (i + (p.offset ?? 0)) % (p.ratio.visual + p.ratio.text)
  return p.order === "text-first" ? pos >= p.ratio.text : pos < p.ratio.visual
}

/** DESIGN.md's closed count for an unshifted phase of m steps. */
const F = (p: Shape, m: number): number => {
  const { visual: v, text: t } = p.ratio
  const c = v + t
  const rest = m % c
  return Math.floor(m / c) * v + (p.order === "text-first" ? Math.max(rest - t, 0) : Math.min(rest, v))
}

/** With offset o, a phase's N steps are the unshifted cycle positions o..o+N-1: F(N + o) - F(o). */
const closedCount = (p: Shape, n: number): number => F(p, n + (p.offset ?? 0)) - F(p, p.offset ?? 0)

const bruteCount = (p: Shape, n: number): number => {
  let k = 0
  for (let i = 0; i < n; i++) if (isVisual(p, i)) k++
  return k
}

/** Warm-up linear/constant reaching 1 at its last step; multistep or cosine after it. */
const factorAt = (spec: ScheduleSpec, step: number): number => {
  const w = spec.lr.warmup
  if (w && step < w.steps) {
    if (step === w.steps - 1) return 1
    return w.kind === "constant"
      ? w.startFactor
      : w.startFactor + ((1 - w.startFactor) * step) / (w.steps - 1)
  }
  const d = spec.lr.decay
  const after = w?.steps ?? 0
  if (d.kind === "multistep") return d.gamma ** d.milestones.filter((m) => m <= step).length
  if (d.kind === "cosine") {
    const span = total(spec) - 1 - after
    return span <= 0 ? 1 : d.floor + ((1 - d.floor) * (1 + Math.cos((Math.PI * (step - after)) / span))) / 2
  }
  return 1
}

const baseLr = (spec: ScheduleSpec, g: ScheduleSpec["optimizer"]["groups"][number]): number =>
  g.lr ?? spec.optimizer.lr * (g.lrMultiplier ?? 1)

interface Expected {
  step: number
  phase: string
  phaseStep: number
  modality: Modality
  cycle: number
  position: number
  micro: number
  update: boolean
  lr: Record<string, number>
}

/**
 * Every step of a spec from the definitions, walking the phases: a block is a maximal run of one
 * modality inside a phase; micro counts inside the block modulo the accumulation; the update falls
 * on the last micro-step of a group or the block's last step.
 */
function* expectedSteps(spec: ScheduleSpec): Generator<Expected> {
  let step = 0
  for (const p of spec.phases) {
    const c = p.ratio.visual + p.ratio.text
    const o = p.offset ?? 0
    let blockStart = 0
    for (let i = 0; i < p.steps; i++, step++) {
      const modality: Modality = isVisual(p, i) ? "visual" : "text"
      if (i > 0 && isVisual(p, i - 1) !== isVisual(p, i)) blockStart = i
      const lastOfBlock = i === p.steps - 1 || isVisual(p, i + 1) !== isVisual(p, i)
      const acc = spec.batch[modality].accumulation
      const micro = (i - blockStart) % acc
      const f = factorAt(spec, step) * spec.lr.modalityFactor[modality]
      yield {
        step,
        phase: p.name,
        phaseStep: i,
        modality,
        cycle: Math.floor((i + o) / c),
        position: (i + o) % c,
        micro,
        update: micro === acc - 1 || lastOfBlock,
        lr: Object.fromEntries(spec.optimizer.groups.map((g) => [g.name, baseLr(spec, g) * f])),
      }
    }
  }
}

const relClose = (a: number, e: number): boolean =>
  Math.abs(a - e) <= 1e-12 * Math.max(Math.abs(a), Math.abs(e))

// ---------------------------------------------------------------------------------------------

describe("the offset count formula", () => {
  it("F(N + o) - F(o) equals a brute-force count, and so do the planner's and the rules' copies", () => {
    // Mismatches are collected and compared once: an expect per case would dominate the run time.
    const wrong: string[] = []
    for (let v = 0; v <= 7; v++)
      for (let t = 0; t <= 7; t++) {
        if (v + t === 0) continue
        for (const order of ["visual-first", "text-first"] as const)
          for (let offset = 0; offset < v + t; offset++)
            for (let n = 0; n <= 3 * (v + t) + 2; n++) {
              const p = { ratio: { visual: v, text: t }, order, offset }
              const brute = bruteCount(p, n)
              const got = [
                closedCount(p, n),
                expectedVisualSteps({ ...p, steps: n }),
                expectedVisualCount(p, n),
              ]
              if (got.some((x) => x !== brute))
                wrong.push(
                  `${v}:${t} ${order} offset ${offset}, ${n} steps: ${brute}, got ${got.join(" / ")}`,
                )
            }
      }
    expect(wrong).toEqual([])
  })

  it("PET-DINO's (iter + 1) % 9 < 8: text at 7, 16, 25, ...; 10 667 visual steps in 12 000", () => {
    const p = { ratio: { visual: 8, text: 1 }, order: "visual-first" as const, offset: 1 }
    const text = Array.from({ length: 30 }, (_, i) => i).filter((i) => !isVisual(p, i))
    expect(text).toEqual([7, 16, 25])
    for (let i = 0; i < 100; i++) expect(isVisual(p, i)).toBe((i + 1) % 9 < 8)
    expect(closedCount(p, 12_000)).toBe(10_667)
  })
})

describe("every planned step is what the formulas say", () => {
  it("for arbitrary small specs: phase, modality, cycle, position, micro, update and lr", () => {
    fc.assert(
      fc.property(arbSpec, (spec) => {
        const planner = makePlanner(spec)
        for (const e of expectedSteps(spec)) {
          const got = planner.at(e.step)
          const same =
            got.phase === e.phase &&
            got.phaseStep === e.phaseStep &&
            got.modality === e.modality &&
            got.cycle === e.cycle &&
            got.position === e.position &&
            got.micro === e.micro &&
            got.update === e.update &&
            Object.keys(got.lr).join() === Object.keys(e.lr).join() &&
            Object.keys(e.lr).every((g) => relClose(got.lr[g]!, e.lr[g]!))
          // The full comparison only for the first mismatch, so its diff is readable.
          if (!same) expect(got).toEqual(e)
        }
      }),
      { numRuns: 200 },
    )
  })
})

describe("the planner satisfies every schedule rule", () => {
  it("for arbitrary small specs", () => {
    fc.assert(
      fc.property(arbSpec, (spec) => {
        const report = checkSchedule(spec, planRange(spec))
        expect(report.violations).toEqual([])
        expect(report.steps).toBe(total(spec))
      }),
      { numRuns: 200 },
    )
  })

  it("for arbitrary specs cut by --steps N (limit N)", () => {
    fc.assert(
      fc.property(arbSpec, frac, (spec, at) => {
        const n = 1 + Math.floor(at * total(spec))
        const report = checkSchedule(spec, planRange(spec, 0, n), { limit: n })
        expect(report.violations).toEqual([])
      }),
      { numRuns: 150 },
    )
  })

  it("for a few specs of about 10^5 steps", () => {
    fc.assert(
      fc.property(arbBigSpec, (spec) => {
        const report = checkSchedule(spec, planRange(spec))
        expect(report.violations).toEqual([])
      }),
      { numRuns: 5 },
    )
  })
})

describe("random access equals the iterator", () => {
  it("at every index, for small specs", () => {
    fc.assert(
      fc.property(arbSpec, (spec) => {
        let i = 0
        for (const r of planRange(spec)) expect(planStep(spec, i++)).toEqual(r)
        expect(i).toBe(total(spec))
      }),
      { numRuns: 100 },
    )
  })

  it("at sampled indices, for big specs", () => {
    fc.assert(
      fc.property(arbBigSpec, fc.array(frac, { minLength: 1, maxLength: 50 }), (spec, fracs) => {
        const n = total(spec)
        const planner = makePlanner(spec)
        for (const f of fracs) {
          const i = Math.floor(f * n)
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
        expect(() => planStep(spec, total(spec))).toThrow(/outside the schedule/)
        expect(() => planStep(spec, 0.5)).toThrow(RangeError)
      }),
      { numRuns: 20 },
    )
  })
})

describe("each phase's visual count is the closed formula", () => {
  const visualPerPhase = (spec: ScheduleSpec, upTo: number): number[] => {
    const index = new Map(spec.phases.map((p, i) => [p.name, i]))
    const counts = spec.phases.map(() => 0)
    for (const r of planRange(spec, 0, upTo)) if (r.modality === "visual") counts[index.get(r.phase)!]!++
    return counts
  }

  it("for whole runs", () => {
    fc.assert(
      fc.property(arbSpec, (spec) => {
        expect(visualPerPhase(spec, total(spec))).toEqual(spec.phases.map((p) => closedCount(p, p.steps)))
      }),
      { numRuns: 150 },
    )
  })

  it("for runs cut by --steps N: the cut phase by its truncated length, later phases absent", () => {
    fc.assert(
      fc.property(arbSpec, frac, (spec, at) => {
        const n = 1 + Math.floor(at * total(spec))
        let start = 0
        const expected = spec.phases.map((p) => {
          const len = Math.max(0, Math.min(p.steps, n - start))
          start += p.steps
          return closedCount(p, len)
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
        const n = total(spec)
        const w = spec.lr.warmup?.steps ?? 0
        const at = (step: number) => planStep(spec, step)
        const exact = (step: number, factor: number) => {
          const p = at(step)
          const mf = spec.lr.modalityFactor[p.modality]
          for (const g of spec.optimizer.groups) expect(p.lr[g.name]).toBe(baseLr(spec, g) * (factor * mf))
        }
        if (w > 0) exact(w - 1, 1)
        const d = spec.lr.decay
        // With a single step after warm-up, that step is both the cosine's start (1) and its end.
        if (d.kind === "cosine" && n - w >= 2) {
          const p = at(n - 1)
          const mf = spec.lr.modalityFactor[p.modality]
          // Relative: the lr's scale is the spec's (an absolute 12 digits would be 1e-3 of an lr of 1e-9).
          for (const g of spec.optimizer.groups) {
            const want = baseLr(spec, g) * d.floor * mf
            expect(relClose(p.lr[g.name]!, want), `${g.name}: ${p.lr[g.name]} vs ${want}`).toBe(true)
          }
        }
      }),
      { numRuns: 150 },
    )
  })
})

describe("a fork with a new ratio", () => {
  it("plans the parent's steps before the fork, offsets included, and a valid schedule from it", () => {
    fc.assert(
      fc.property(arbSpec, frac, arbRatio, (spec, at, ratio) => {
        const k = Math.floor(at * total(spec))
        const forked = Either.getOrThrow(forkSpecWithRatio(spec, k, ratio))
        // Step for step, except that the split ends a block: a group open at k - 1 is applied there.
        const strip = (r: ReturnType<typeof planStep>) => (r.step === k - 1 ? { ...r, update: undefined } : r)
        expect([...planRange(forked, 0, k)].map(strip)).toEqual([...planRange(spec, 0, k)].map(strip))
        expect(total(forked)).toBe(total(spec))
        expect(checkSchedule(forked, planRange(forked)).violations).toEqual([])
        // The forked stretch starts a fresh cycle at the fork step.
        const first = planStep(forked, k)
        if (first.phaseStep === 0 && first.phase.endsWith("@fork"))
          expect([first.cycle, first.position]).toEqual([0, 0])
      }),
      { numRuns: 150 },
    )
  })
})

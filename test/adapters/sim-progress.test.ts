/**
 * The sim's closed-form progress (adapters/sim/progress.ts) against the planner, the reference:
 * on random specs (offsets, accumulation, partial cycles, zero sides), every step's count of
 * earlier updates per modality, whether it follows a switch, and each modality's first step
 * must equal what a walk over the planner's plans gives.
 */
import { Either } from "effect"
import fc from "fast-check"
import { describe, expect, it } from "vitest"
import {
  followsSwitch,
  makeProgressIndex,
  phaseUpdates,
  textUpdatesBefore,
  visualUpdatesBefore,
} from "../../adapters/sim/progress.ts"
import { makePlanner, type StepPlan } from "../../core/schedule/plan.ts"
import { decodeSpec } from "../../core/schedule/spec.ts"
import { arbSpecWith } from "../schedule/arbitraries.ts"

describe("sim progress agrees with the planner", () => {
  it("update counts, switches and first steps, on random specs with offsets", () => {
    fc.assert(
      fc.property(arbSpecWith({ maxPhases: 4, maxPhaseSteps: 120 }), (spec) => {
        const planner = makePlanner(spec)
        const idx = makeProgressIndex(spec)
        let nv = 0
        let nt = 0
        let prev: StepPlan | undefined
        const first: { visual?: number; text?: number } = {}
        for (let i = 0; i < planner.total; i++) {
          const p = planner.at(i)
          const ph = idx.byName.get(p.phase)!
          expect([visualUpdatesBefore(ph, p.phaseStep), textUpdatesBefore(ph, p.phaseStep)]).toEqual([nv, nt])
          expect(followsSwitch(ph, p.phaseStep, p.modality)).toBe(
            prev !== undefined && prev.modality !== p.modality,
          )
          first[p.modality] ??= i
          if (p.update && p.modality === "visual") nv++
          if (p.update && p.modality === "text") nt++
          prev = p
        }
        expect(idx.firstStep).toEqual({ visual: first.visual, text: first.text })
        const whole = spec.phases.reduce(
          (s, ph) => {
            const u = phaseUpdates(ph, spec.batch.visual.accumulation, spec.batch.text.accumulation)
            return { visual: s.visual + u.visual, text: s.text + u.text }
          },
          { visual: 0, text: 0 },
        )
        expect(whole).toEqual({ visual: nv, text: nt })
      }),
      { numRuns: 300 },
    )
  })

  it("PET-DINO's offset 1: the first cycle has 7 visual steps, so text falls at 7 and 16", () => {
    const spec = Either.getOrThrow(
      decodeSpec({
        name: "petdino",
        phases: [{ name: "joint", steps: 18, ratio: { visual: 8, text: 1 }, offset: 1 }],
        batch: { visual: { size: 1, accumulation: 4 }, text: { size: 1 } },
        optimizer: { kind: "adamw", lr: 1e-4, groups: [{ name: "all" }] },
      }),
    )
    const ph = makeProgressIndex(spec).byName.get("joint")!
    // Visual block 0 is steps 0..6 (7 steps, accumulation 4): updates after steps 3 and 6.
    expect(visualUpdatesBefore(ph, 7)).toBe(2)
    expect(textUpdatesBefore(ph, 8)).toBe(1)
    expect(followsSwitch(ph, 7, "text")).toBe(true)
    expect(followsSwitch(ph, 8, "visual")).toBe(true)
    expect(followsSwitch(ph, 9, "visual")).toBe(false)
    expect(followsSwitch(ph, 16, "text")).toBe(true)
  })
})

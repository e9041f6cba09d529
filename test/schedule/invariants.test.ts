/**
 * The schedule rules, given/when/then: hand-written tiny specs, then mutation tests: each fault
 * from DESIGN.md is injected into a valid plan and the checker must name THAT rule at the FIRST
 * faulty step. A property-based round injects faults at arbitrary places in arbitrary specs.
 */
import { Either } from "effect"
import fc from "fast-check"
import { describe, expect, it } from "vitest"
import {
  type CheckOptions,
  checkSchedule,
  firstViolation,
  makeChecker,
  type RuleName,
  ruleNames,
  rules,
  type StepRecord,
  type VerifyReport,
} from "../../core/schedule/invariants/index.ts"
import { planRange, planStep } from "../../core/schedule/plan.ts"
import {
  decodeSpec,
  encodeSpec,
  type ScheduleSpec,
  type ScheduleSpecEncoded,
  totalSteps,
} from "../../core/schedule/spec.ts"
import { arbSpec, describeSpec } from "./arbitraries.ts"

// ---------------------------------------------------------------------------------------------
// Fixtures

const decode = (json: ScheduleSpecEncoded): ScheduleSpec => Either.getOrThrow(decodeSpec(json))

/** T-Rex2 style: 4 text-only steps, then 40 joint steps at 8:1, two groups at 100:1, warm-up 10. */
const trex = (over: { joint?: object; textOnly?: object; lr?: object; batch?: object } = {}): ScheduleSpec =>
  decode({
    name: "trex",
    phases: [
      { name: "text-only", steps: 4, ratio: { visual: 0, text: 1 }, ...over.textOnly },
      { name: "joint", steps: 40, ratio: { visual: 8, text: 1 }, ...over.joint },
    ],
    batch: { visual: { size: 4 }, text: { size: 4 }, ...over.batch },
    optimizer: {
      kind: "adamw",
      lr: 4e-4,
      groups: [{ name: "backbone", lrMultiplier: 0.01 }, { name: "head" }],
    },
    lr: {
      warmup: { kind: "linear", steps: 10 },
      decay: { kind: "multistep", milestones: [30, 40], gamma: 0.1 },
      ...over.lr,
    },
  })

/** One joint phase only, so global step = phase step. */
const joint = (steps: number, ratio = { visual: 8, text: 1 }): ScheduleSpec =>
  decode({
    name: "joint-only",
    phases: [{ name: "joint", steps, ratio }],
    batch: { visual: { size: 1 }, text: { size: 1 } },
    optimizer: { kind: "sgd", lr: 0.1, groups: [{ name: "all" }] },
  })

type Rec = StepRecord

const plan = (spec: ScheduleSpec, count?: number): Rec[] => [...planRange(spec, 0, count)]

const withAt = (records: ReadonlyArray<Rec>, step: number, patch: (r: Rec) => Partial<Rec>): Rec[] =>
  records.map((r) => (r.step === step ? { ...r, ...patch(r) } : r))

const scaleLr = (r: Rec, k: number, only?: string): Record<string, number> =>
  Object.fromEntries(Object.entries(r.lr).map(([g, x]) => [g, only === undefined || g === only ? x * k : x]))

const rulesAt = (report: VerifyReport): RuleName[] => [...new Set(report.violations.map((v) => v.rule))]

/** The first violation of `rule`; fails the test (with the whole report) if there is none. */
const expectFirst = (report: VerifyReport, rule: RuleName, step: number): string => {
  const v = firstViolation(report, rule)
  expect(v, `expected a ${rule} violation; got ${JSON.stringify(report.violations, null, 1)}`).toBeDefined()
  expect(v!.step).toBe(step)
  return v!.message
}

// ---------------------------------------------------------------------------------------------
// Given / when / then

describe("given a valid plan", () => {
  it("when the whole T-Rex2-like schedule is checked, then every rule holds and the counts add up", () => {
    const spec = trex()
    const report = checkSchedule(spec, planRange(spec))
    expect(report.violations).toEqual([])
    expect(report).toMatchObject({
      ok: true,
      limit: 44,
      steps: 44,
      visualSteps: 36, // 4 cycles x 8 + min(40 mod 9, 8)
      textSteps: 8, // 4 text-only + 4 joint
      updates: { visual: 36, text: 8 }, // no accumulation: every step updates
      cycles: 4 + 5, // text-only: 4 cycles of 1; joint: 40 steps = 4 full cycles of 9 + 1 partial
    })
  })

  it("when accumulation is 3 visual / 2 text, then groups are cut at every switch and phase end", () => {
    const spec = trex({ batch: { visual: { size: 4, accumulation: 3 }, text: { size: 4, accumulation: 2 } } })
    const records = plan(spec)
    expect(checkSchedule(spec, records).ok).toBe(true)
    // text-only (one block of 4): 0 1u 0 1u; joint visual block of 8: 0 1 2u 0 1 2u 0 1u; text: 0u.
    expect(records.slice(0, 13).map((r) => `${r.micro}${r.update ? "u" : ""}`)).toEqual(
      "0 1u 0 1u 0 1 2u 0 1 2u 0 1u 0u".split(" "),
    )
  })

  it("when the phase is text-first or visual-only, then the pattern and run limits follow the ratio", () => {
    const spec = decode({
      name: "mixed",
      phases: [
        { name: "tf", steps: 11, ratio: { visual: 2, text: 3 }, order: "text-first" },
        { name: "vonly", steps: 30, ratio: { visual: 1, text: 0 } },
      ],
      batch: { visual: { size: 1, accumulation: 4 }, text: { size: 1 } },
      optimizer: { kind: "adam", lr: 1e-3, groups: [{ name: "g" }] },
      lr: { decay: { kind: "cosine", floor: 0.1 } },
    })
    const report = checkSchedule(spec, planRange(spec))
    expect(report.violations).toEqual([])
    // text-first 2:3 over 11 steps: 2 cycles x 2 visual + max(11 mod 5 - 3, 0) = 4; then 30 visual.
    expect(report.visualSteps).toBe(4 + 30)
  })

  it("when a run recorded with --steps 20 is checked with limit 20, then the cut phase uses its truncated length", () => {
    const spec = trex({ batch: { visual: { size: 4, accumulation: 3 }, text: { size: 4 } } })
    // Step 19 is joint step 15, micro 0 of a visual group: the cut leaves that group open.
    const records = plan(spec, 20)
    expect(records.at(-1)).toMatchObject({ step: 19, modality: "visual", micro: 0, update: false })
    const report = checkSchedule(spec, records, { limit: 20 })
    expect(report.violations).toEqual([])
    expect(report).toMatchObject({ steps: 20, visualSteps: 15, textSteps: 5 })
  })

  it("when the same prefix is held to the full length, then step-sequence names the first missing step", () => {
    const spec = trex()
    const report = checkSchedule(spec, plan(spec, 20))
    expect(expectFirst(report, "step-sequence", 20)).toContain("expected 44 steps")
    // The joint phase is reported short against its full 40 steps.
    expect(expectFirst(report, "phase-counts", 19)).toContain("expected 36 visual + 4 text")
  })

  it("when nothing was recorded, then step 0 is missing", () => {
    const report = checkSchedule(joint(9), [])
    expect(report.ok).toBe(false)
    expect(rulesAt(report)).toEqual(["step-sequence", "phase-counts"])
    expect(expectFirst(report, "step-sequence", 0)).toContain("step 0: missing")
  })
})

describe("checker options", () => {
  it("keeps the first N violations per rule and counts them all", () => {
    const spec = joint(90)
    // Every text step turned visual: 10 modality faults, one too-long run of 90.
    const records = plan(spec).map((r) => ({ ...r, modality: "visual" as const }))
    const report = checkSchedule(spec, records, { maxViolationsPerRule: 3 })
    expect(report.violationCounts["modality-pattern"]).toBe(10)
    expect(report.violations.filter((v) => v.rule === "modality-pattern").map((v) => v.step)).toEqual([
      8, 17, 26,
    ])
    expect(report.violationCounts["max-run"]).toBe(1)
  })

  it("runs only the rules asked for", () => {
    const spec = joint(18)
    const records = withAt(plan(spec), 8, () => ({ modality: "visual" }))
    expect(rulesAt(checkSchedule(spec, records, { rules: ["max-run"] }))).toEqual(["max-run"])
    expect(checkSchedule(spec, records, { rules: ["lr-finite", "step-sequence"] }).ok).toBe(true)
  })

  it("clips the limit to the schedule, like planRange, and rejects a bad one", () => {
    const spec = joint(18)
    expect(checkSchedule(spec, planRange(spec, 0, 1000), { limit: 1000 })).toMatchObject({
      ok: true,
      limit: 18,
    })
    expect(() => makeChecker(spec, { limit: -1 } as CheckOptions)).toThrow(RangeError)
    expect(() => makeChecker(spec, { limit: 2.5 })).toThrow(RangeError)
  })

  it("names and describes every rule once", () => {
    expect(new Set(ruleNames).size).toBe(rules.length)
    expect(ruleNames).toEqual(
      expect.arrayContaining([
        "step-sequence",
        "phase-boundaries",
        "modality-pattern",
        "max-run",
        "phase-counts",
        "accumulation",
        "lr-finite",
        "lr-warmup",
        "lr-decay",
        "lr-group-ratios",
        "lr-matches-spec",
      ]),
    )
    for (const r of rules) expect(r.description.length).toBeGreaterThan(10)
  })
})

describe("a phase with an offset (PET-DINO's (iter + 1) % 9 < 8)", () => {
  const petdino = (accumulation = 1): ScheduleSpec =>
    decode({
      name: "petdino",
      phases: [{ name: "joint", steps: 40, ratio: { visual: 8, text: 1 }, offset: 1 }],
      batch: { visual: { size: 1, accumulation }, text: { size: 1 } },
      optimizer: { kind: "sgd", lr: 0.1, groups: [{ name: "all" }] },
    })

  it("when planned, then the first cycle is 7 visual steps, text falls at 7, 16, 25, 34 and every rule holds", () => {
    const spec = petdino()
    const records = plan(spec)
    expect(records.filter((r) => r.modality === "text").map((r) => r.step)).toEqual([7, 16, 25, 34])
    expect(records.slice(0, 9).map((r) => `${r.cycle}.${r.position}`)).toEqual(
      "0.1 0.2 0.3 0.4 0.5 0.6 0.7 0.8 1.0".split(" "),
    )
    // (40 + 1) = 4 cycles + 5: G(41) - G(1) = 4*8 + 5 - 1 = 36 visual.
    expect(checkSchedule(spec, records)).toMatchObject({ ok: true, visualSteps: 36, textSteps: 4, cycles: 5 })
  })

  it("when accumulating 4, then the shortened first block (7 steps) is a group run of its own", () => {
    const records = plan(petdino(4))
    expect(records.slice(0, 17).map((r) => `${r.micro}${r.update ? "u" : ""}`)).toEqual(
      "0 1 2 3u 0 1 2u 0u 0 1 2 3u 0 1 2 3u 0u".split(" "),
    )
    expect(checkSchedule(petdino(4), records).ok).toBe(true)
  })

  it("when a log followed T-Rex2's unshifted cycle instead, then modality-pattern names step 7", () => {
    const unshifted = decode({
      ...encodeSpec(petdino()),
      phases: [{ name: "joint", steps: 40, ratio: { visual: 8, text: 1 } }],
    })
    const report = checkSchedule(petdino(), planRange(unshifted))
    expect(expectFirst(report, "modality-pattern", 7)).toBe(
      "step 7 (phase joint, step 7 of phase): expected text, got visual (8:1 visual-first, offset 1)",
    )
    expect(expectFirst(report, "phase-boundaries", 0)).toContain(
      "expected cycle 0 position 1, got cycle 0 position 0",
    )
  })
})

describe("finishing at the recorded length (a run that stopped early)", () => {
  it("one pass with finish({ endAt }) equals a check held to that length from the start", () => {
    fc.assert(
      fc.property(arbSpec, fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), (spec, at) => {
        const n = Math.floor(at * totalSteps(spec))
        const prefix = plan(spec, n)
        const c = makeChecker(spec)
        for (const r of prefix) c.push(r)
        const once = c.finish({ endAt: n })
        expect(once.violations).toEqual([])
        expect(once).toEqual(checkSchedule(spec, prefix, { limit: n }))
      }),
      { numRuns: 150 },
    )
  })

  it("a prefix with a fault still fails; the planned length is the default; a bad endAt is refused", () => {
    const spec = trex()
    const faulty = withAt(plan(spec, 20), 12, () => ({ modality: "visual" }))
    const c = makeChecker(spec)
    for (const r of faulty) c.push(r)
    const report = c.finish({ endAt: 20 })
    expect(report.limit).toBe(20)
    expect(rulesAt(report)).toEqual(["modality-pattern", "max-run", "phase-counts"])
    expect(rulesAt(checkSchedule(spec, plan(spec, 20)))).toEqual(["step-sequence", "phase-counts"])
    expect(() => makeChecker(spec).finish({ endAt: -1 })).toThrow(RangeError)
  })
})

describe("the report counts", () => {
  it("violationTotal is every violation found, rulesChecked every rule run", () => {
    const spec = joint(360)
    const records = plan(spec).map((r) => ({ ...r, modality: "visual" as const }))
    const report = checkSchedule(spec, records, { maxViolationsPerRule: 3 })
    expect(report.violationCounts).toMatchObject({ "modality-pattern": 40, "max-run": 1, "phase-counts": 1 })
    expect(report.violationTotal).toBe(Object.values(report.violationCounts).reduce((a, b) => a + b, 0))
    expect(report.violations.length).toBeLessThan(report.violationTotal)
    expect(report.rulesChecked).toEqual(ruleNames)
    expect(checkSchedule(spec, records, { rules: ["max-run"] }).rulesChecked).toEqual(["max-run"])
  })

  it("lrs near the top of the float range keep their ratios without overflowing the check", () => {
    const spec = decode({
      name: "huge",
      phases: [{ name: "joint", steps: 9, ratio: { visual: 8, text: 1 } }],
      batch: { visual: { size: 1 }, text: { size: 1 } },
      optimizer: { kind: "sgd", lr: 1e300, groups: [{ name: "a" }, { name: "b", lrMultiplier: 2 }] },
    })
    expect(checkSchedule(spec, planRange(spec)).violations).toEqual([])
  })
})

// ---------------------------------------------------------------------------------------------
// Mutation tests: each DESIGN.md fault, caught by its rule at its first faulty step.

describe("mutations of a valid plan", () => {
  it("a phase boundary shifted one step late: phase-boundaries at the boundary", () => {
    const spec = trex()
    const shifted = trex({ textOnly: { steps: 5 }, joint: { steps: 39 } })
    const report = checkSchedule(spec, planRange(shifted))
    expect(expectFirst(report, "phase-boundaries", 4)).toBe(
      "step 4 (phase joint, step 0 of phase): expected phase joint, got text-only (phase joint covers steps 4..43)",
    )
  })

  it("a phase boundary shifted one step early: phase-boundaries one step before the boundary", () => {
    const spec = trex()
    const report = checkSchedule(spec, planRange(trex({ textOnly: { steps: 3 }, joint: { steps: 41 } })))
    expect(expectFirst(report, "phase-boundaries", 3)).toContain("expected phase text-only, got joint")
  })

  it("7:1 where 8:1 was asked: modality-pattern at the 8th step of the cycle, phase-counts at the phase end", () => {
    const spec = joint(40)
    const report = checkSchedule(spec, planRange(joint(40, { visual: 7, text: 1 })))
    expect(expectFirst(report, "modality-pattern", 7)).toBe(
      "step 7 (phase joint, step 7 of phase): expected visual, got text (8:1 visual-first)",
    )
    expect(expectFirst(report, "phase-counts", 39)).toBe(
      "phase joint (steps 0..39): expected 36 visual + 4 text steps (8:1 visual-first over 40 steps), got 35 visual + 5 text",
    )
  })

  it("a dropped text step, leaving a gap: step-sequence names the missing step", () => {
    const spec = trex()
    const records = plan(spec).filter((r) => r.step !== 12) // joint step 8: text
    const report = checkSchedule(spec, records)
    expect(expectFirst(report, "step-sequence", 12)).toBe(
      "step 12: missing (the next record is step 13; steps must be contiguous from 0)",
    )
    expect(expectFirst(report, "phase-counts", 43)).toContain("got 36 visual + 3 text")
  })

  it("a dropped text step, renumbered to hide the gap: modality-pattern at the dropped step", () => {
    const spec = trex()
    const kept = plan(spec).filter((r) => r.step !== 12)
    // A consistent-looking log: step labels recomputed, what each step did kept.
    const records = kept.map((r, i) => {
      const { step, phase, phaseStep, cycle, position } = planStep(spec, i)
      return { ...r, step, phase, phaseStep, cycle, position }
    })
    const report = checkSchedule(spec, records)
    expect(expectFirst(report, "modality-pattern", 12)).toBe(
      "step 12 (phase joint, step 8 of phase): expected text, got visual (8:1 visual-first)",
    )
    expect(expectFirst(report, "max-run", 12)).toContain("9 visual steps in a row, at most 8 allowed")
    expect(expectFirst(report, "step-sequence", 43)).toContain("step 43: missing")
  })

  it("an accumulation group across a modality switch: accumulation at the block's last step", () => {
    const spec = trex({ batch: { visual: { size: 4, accumulation: 3 }, text: { size: 4 } } })
    // Joint visual block 4..11 ends "0 1u" at 10, 11; carry step 11's gradient into the text step.
    let records = withAt(plan(spec), 11, () => ({ update: false }))
    records = withAt(records, 12, () => ({ micro: 2, update: true }))
    const report = checkSchedule(spec, records)
    expect(expectFirst(report, "accumulation", 11)).toBe(
      "step 11 (phase joint, step 7 of phase): expected the optimizer update (micro-step 1, the block ends here), got none",
    )
    expect(report.violations.filter((v) => v.rule === "accumulation").map((v) => v.step)).toEqual([11, 12])
  })

  it("an accumulation group across a phase boundary: accumulation at the phase's last step", () => {
    const spec = trex({ batch: { visual: { size: 4 }, text: { size: 4, accumulation: 3 } } })
    // text-only (4 steps, acc 3): 0 1 2u 0u; leave the last group open into the joint phase.
    const records = withAt(plan(spec), 3, () => ({ update: false }))
    const report = checkSchedule(spec, records)
    expect(expectFirst(report, "accumulation", 3)).toContain("expected the optimizer update")
    expect(report.violations.find((v) => v.rule === "accumulation" && v.step === 4)?.message).toContain(
      "was never applied before the start of phase joint",
    )
  })

  it("an update before the group is full, a miscounted micro-step, an open group at the end", () => {
    const spec = trex({ batch: { visual: { size: 4, accumulation: 3 }, text: { size: 4, accumulation: 2 } } })
    const early = checkSchedule(
      spec,
      withAt(plan(spec), 5, () => ({ update: true })),
    )
    expect(expectFirst(early, "accumulation", 5)).toContain("update after 2 of 3 visual micro-steps")
    const miscount = checkSchedule(
      spec,
      withAt(plan(spec), 6, () => ({ micro: 0 })),
    )
    expect(expectFirst(miscount, "accumulation", 6)).toContain(
      "expected micro-step 2 of a visual group, got 0",
    )
    const open = checkSchedule(
      spec,
      withAt(plan(spec), 43, () => ({ update: false })),
    )
    expect(open.violations.filter((v) => v.rule === "accumulation").map((v) => v.message)).toEqual([
      "step 43 (phase joint, step 39 of phase): expected the optimizer update (micro-step 0, the block ends here), got none",
      "step 43 (phase joint, step 39 of phase): the visual group opened here (1 micro-step) was never applied: the records end at step 43",
    ])
  })

  it("an lr drop during warm-up: lr-warmup at the step that falls", () => {
    const spec = trex()
    const records = withAt(plan(spec), 5, (r) => ({ lr: scaleLr(r, 0.5) }))
    const report = checkSchedule(spec, records)
    expect(expectFirst(report, "lr-warmup", 5)).toMatch(
      /lr falls during warm-up: x0\.27\d+ of the base lr after x0\.44\d+ at step 4/,
    )
    expect(expectFirst(report, "lr-matches-spec", 5)).toContain('lr of group "backbone"')
  })

  it("a warm-up that stops short of the base lr: lr-warmup at its last step", () => {
    const spec = trex()
    const report = checkSchedule(
      spec,
      withAt(plan(spec), 9, (r) => ({ lr: scaleLr(r, 0.95) })),
    )
    expect(expectFirst(report, "lr-warmup", 9)).toContain("warm-up must reach the base lr at its last step")
  })

  it("an lr rise during decay: lr-decay at the step that rises", () => {
    const spec = trex()
    // After milestone 30 the factor is 0.1; step 35 jumps back to the base lr.
    const records = withAt(plan(spec), 35, (r) => ({ lr: scaleLr(r, 10) }))
    const report = checkSchedule(spec, records)
    expect(expectFirst(report, "lr-decay", 35)).toContain(
      "lr rises during decay: x1 of the base lr after x0.1 at step 34",
    )
    expect(report.violations.some((v) => v.rule === "lr-warmup")).toBe(false)
  })

  it("an lr rise during a cosine decay, normalised by the modality factor", () => {
    const spec = trex({ lr: { decay: { kind: "cosine" }, modalityFactor: { visual: 1, text: 0.25 } } })
    // Text steps carry a quarter of the lr by design: that is no rise. A 20% bump at step 31 is.
    expect(checkSchedule(spec, planRange(spec)).ok).toBe(true)
    const report = checkSchedule(
      spec,
      withAt(plan(spec), 31, (r) => ({ lr: scaleLr(r, 1.2) })),
    )
    expect(expectFirst(report, "lr-decay", 31)).toContain("lr rises during decay")
  })

  it("a broken group ratio: lr-group-ratios at that step", () => {
    const spec = trex()
    const records = withAt(plan(spec), 20, (r) => ({ lr: scaleLr(r, 2, "head") }))
    const report = checkSchedule(spec, records)
    expect(expectFirst(report, "lr-group-ratios", 20)).toBe(
      'step 20 (phase joint, step 16 of phase): group "head" lr 0.0008 is x200 of group "backbone" (0.000004); the spec sets x100',
    )
  })

  it("a NaN lr: lr-finite at that step", () => {
    const spec = trex()
    const records = withAt(plan(spec), 7, (r) => ({ lr: { ...r.lr, head: Number.NaN } }))
    expect(expectFirst(checkSchedule(spec, records), "lr-finite", 7)).toBe(
      'step 7 (phase joint, step 3 of phase): lr of group "head" is NaN; every lr must be finite and >= 0',
    )
    const negative = withAt(plan(spec), 8, (r) => ({ lr: { ...r.lr, backbone: -1e-6 } }))
    expect(expectFirst(checkSchedule(spec, negative), "lr-finite", 8)).toContain("is -0.000001")
  })

  it("an lr that is monotone but not what the spec says, or a missing or extra group: lr-matches-spec", () => {
    const spec = trex()
    const off = checkSchedule(
      spec,
      // Step 29 is the last before the milestone: a tiny drop there stays monotone.
      withAt(plan(spec), 29, (r) => ({ lr: scaleLr(r, 1 - 1e-7) })),
    )
    expect(rulesAt(off)).toEqual(["lr-matches-spec"])
    expect(expectFirst(off, "lr-matches-spec", 29)).toContain("expected 0.000004 (base 0.000004 x schedule 1")
    const missing = withAt(plan(spec), 2, (r) => ({ lr: { head: r.lr.head! } }))
    expect(expectFirst(checkSchedule(spec, missing), "lr-matches-spec", 2)).toContain(
      'no lr for group "backbone"',
    )
    const extra = withAt(plan(spec), 3, (r) => ({ lr: { ...r.lr, neck: 1 } }))
    expect(expectFirst(checkSchedule(spec, extra), "lr-matches-spec", 3)).toContain(
      'group(s) "neck" not in the spec',
    )
  })

  it("a run of 9 visual steps: max-run where the run exceeds 8", () => {
    const spec = trex()
    const records = withAt(plan(spec), 12, () => ({ modality: "visual" }))
    const report = checkSchedule(spec, records)
    expect(expectFirst(report, "max-run", 12)).toBe(
      "step 12 (phase joint, step 8 of phase): 9 visual steps in a row, at most 8 allowed (8:1 visual-first)",
    )
    expect(expectFirst(report, "modality-pattern", 12)).toContain("expected text, got visual")
  })

  it("duplicate, out-of-order and extra steps: step-sequence", () => {
    const spec = joint(9)
    const r = plan(spec)
    const dup = checkSchedule(spec, [...r.slice(0, 4), r[3]!, ...r.slice(4)])
    expect(expectFirst(dup, "step-sequence", 3)).toBe(
      "step 3: recorded twice (steps must be strictly increasing)",
    )
    const extra = checkSchedule(spec, [...r, { ...r[8]!, step: 9 }])
    expect(expectFirst(extra, "step-sequence", 9)).toContain("beyond the run's length (9 steps: 0..8)")
  })

  it("wrong cycle or position labels: phase-boundaries", () => {
    const spec = joint(20)
    const report = checkSchedule(
      spec,
      withAt(plan(spec), 10, () => ({ cycle: 0, position: 10 })),
    )
    expect(expectFirst(report, "phase-boundaries", 10)).toContain(
      "expected cycle 1 position 1, got cycle 0 position 10",
    )
  })
})

// ---------------------------------------------------------------------------------------------
// Property-based mutations: whatever the spec and wherever the fault, the checker catches it.

type Fault =
  | "flip-modality"
  | "drop-gap"
  | "drop-renumber"
  | "nan-lr"
  | "flip-update"
  | "wrong-micro"
  | "relabel-phase-step"
  | "lr-offset"
  | "shift-boundary"

const FAULTS: ReadonlyArray<Fault> = [
  "flip-modality",
  "drop-gap",
  "drop-renumber",
  "nan-lr",
  "flip-update",
  "wrong-micro",
  "relabel-phase-step",
  "lr-offset",
  "shift-boundary",
]

/** Injects `fault` at step `k`; returns the records and the rule + first step expected, if defined. */
const inject = (
  spec: ScheduleSpec,
  records: ReadonlyArray<Rec>,
  fault: Fault,
  k: number,
): { records: ReadonlyArray<Rec>; expect?: { rule: RuleName; step: number } } => {
  const n = records.length
  switch (fault) {
    case "flip-modality":
      return {
        records: withAt(records, k, (r) => ({ modality: r.modality === "visual" ? "text" : "visual" })),
        expect: { rule: "modality-pattern", step: k },
      }
    case "drop-gap":
      return { records: records.filter((r) => r.step !== k), expect: { rule: "step-sequence", step: k } }
    case "drop-renumber": {
      const kept = records.filter((r) => r.step !== k)
      const relabelled = kept.map((r, i) => {
        const { step, phase, phaseStep, cycle, position } = planStep(spec, i)
        return { ...r, step, phase, phaseStep, cycle, position }
      })
      // Whatever else it breaks, the run is one step short.
      return { records: relabelled, expect: { rule: "step-sequence", step: n - 1 } }
    }
    case "nan-lr":
      return {
        records: withAt(records, k, (r) => ({
          lr: { ...r.lr, [spec.optimizer.groups[0]!.name]: Number.NaN },
        })),
        expect: { rule: "lr-finite", step: k },
      }
    case "flip-update":
      return {
        records: withAt(records, k, (r) => ({ update: !r.update })),
        expect: { rule: "accumulation", step: k },
      }
    case "wrong-micro":
      return {
        records: withAt(records, k, (r) => ({ micro: r.micro + 1 })),
        expect: { rule: "accumulation", step: k },
      }
    case "relabel-phase-step":
      return {
        records: withAt(records, k, (r) => ({ phaseStep: r.phaseStep + 1 })),
        expect: { rule: "phase-boundaries", step: k },
      }
    case "lr-offset": {
      // Adding (not scaling) changes an lr that the spec sets to 0 as well.
      const d = spec.optimizer.lr / 2
      return {
        records: withAt(records, k, (r) => ({
          lr: Object.fromEntries(Object.entries(r.lr).map(([g, x]) => [g, x + d])),
        })),
        expect: { rule: "lr-matches-spec", step: k },
      }
    }
    case "shift-boundary": {
      // Move the boundary before phase i (the one holding k, or the next) by one step.
      const starts = spec.phases.map((_, i) => spec.phases.slice(0, i).reduce((a, p) => a + p.steps, 0))
      const i = Math.max(
        1,
        starts.findLastIndex((s) => s <= k),
      )
      const prev = spec.phases[i - 1]
      const cur = spec.phases[i]
      if (!prev || !cur)
        return {
          records: withAt(records, k, (r) => ({ phase: `${r.phase}!` })),
          expect: { rule: "phase-boundaries", step: k },
        }
      const late = cur.steps >= 2 // grow the earlier phase if the later one can give a step
      const phases = spec.phases.map((p, j) =>
        j === i - 1
          ? { ...p, steps: p.steps + (late ? 1 : -1) }
          : j === i
            ? { ...p, steps: p.steps + (late ? -1 : 1) }
            : p,
      )
      if (!late && prev.steps < 2)
        return {
          records: withAt(records, k, (r) => ({ phase: `${r.phase}!` })),
          expect: { rule: "phase-boundaries", step: k },
        }
      return {
        records: [...planRange({ ...spec, phases })],
        expect: { rule: "phase-boundaries", step: late ? starts[i]! : starts[i]! - 1 },
      }
    }
  }
}

describe("property: injected faults are caught", () => {
  it("for arbitrary specs and fault locations, the checker fails and names the fault's rule at its first step", () => {
    fc.assert(
      fc.property(
        arbSpec,
        fc.constantFrom(...FAULTS),
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        (spec, fault, at) => {
          const records = plan(spec)
          const k = Math.floor(at * records.length)
          const injected = inject(spec, records, fault, k)
          const report = checkSchedule(spec, injected.records)
          expect(report.ok, describeSpec(spec)).toBe(false)
          if (injected.expect) {
            const v = firstViolation(report, injected.expect.rule)
            expect(v?.step, JSON.stringify(report.violations.slice(0, 5))).toBe(injected.expect.step)
          }
        },
      ),
      { numRuns: 600 },
    )
  })

  it("for arbitrary specs, a wrong modality anywhere also breaks the phase's visual count", () => {
    fc.assert(
      fc.property(arbSpec, fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), (spec, at) => {
        const k = Math.floor(at * totalSteps(spec))
        const records = withAt(plan(spec), k, (r) => ({
          modality: r.modality === "visual" ? "text" : "visual",
        }))
        const report = checkSchedule(spec, records, { rules: ["phase-counts"] })
        expect(report.ok).toBe(false)
        let end = 0
        for (const p of spec.phases) {
          end += p.steps
          if (end > k) break
        }
        expect(report.violations[0]!.step).toBe(end - 1)
      }),
      { numRuns: 150 },
    )
  })
})

/**
 * Planted planner bugs. Each case copies core/schedule/plan.ts, plants one fault in the copy's
 * source, imports the copy as a module and verifies its plans: the checker must fail, naming the
 * rule and the first offending step. The real planner passes the same spec (the control). This is
 * what the rules' independence from the planner buys: a bug in a helper both shared would pass.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join, resolve } from "node:path"
import { pathToFileURL } from "node:url"
import { Either } from "effect"
import { afterAll, describe, expect, it } from "vitest"
import { checkSchedule, firstViolation, type RuleName } from "../../core/schedule/invariants/index.ts"
import { planRange } from "../../core/schedule/plan.ts"
import {
  decodeSpec,
  parseSpec,
  type ScheduleSpec,
  type ScheduleSpecEncoded,
} from "../../core/schedule/spec.ts"

type PlanModule = typeof import("../../core/schedule/plan.ts")

const SCHEDULE = resolve(import.meta.dirname, "../../core/schedule")
const source = readFileSync(join(SCHEDULE, "plan.ts"), "utf8")
const dir = mkdtempSync(join(tmpdir(), "interleave-mutants-"))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

/** The planner with `edits` applied to its source; each `find` must occur exactly once. */
const mutant = async (name: string, edits: ReadonlyArray<readonly [string, string]>): Promise<PlanModule> => {
  let code = source
  for (const [find, replace] of edits) {
    // A planner refactor that moves the code a mutant targets must update the mutant, not skip it.
    expect(code.split(find).length - 1, `plan.ts should contain ${JSON.stringify(find)} once`).toBe(1)
    code = code.replace(find, replace)
  }
  // The copy lives in a temp dir: its sibling imports point back at the real modules.
  code = code.replaceAll(/from "\.\/([\w-]+\.ts)"/g, (_, f) => `from ${JSON.stringify(join(SCHEDULE, f))}`)
  const file = join(dir, `${name}.ts`)
  writeFileSync(file, code)
  return (await import(pathToFileURL(file).href)) as PlanModule
}

const decode = (json: ScheduleSpecEncoded): ScheduleSpec => Either.getOrThrow(decodeSpec(json))

const spec = (
  phases: ScheduleSpecEncoded["phases"],
  over: { batch?: ScheduleSpecEncoded["batch"]; lr?: ScheduleSpecEncoded["lr"] } = {},
): ScheduleSpec =>
  decode({
    name: "mutant-target",
    phases,
    batch: over.batch ?? { visual: { size: 1 }, text: { size: 1 } },
    optimizer: {
      kind: "adamw",
      lr: 1e-4,
      groups: [{ name: "backbone", lrMultiplier: 0.1 }, { name: "head" }],
    },
    ...(over.lr ? { lr: over.lr } : {}),
  })

const petdino = Either.getOrThrow(
  parseSpec(readFileSync(resolve(import.meta.dirname, "../../scenarios/petdino-swin-t.json"), "utf8")),
)

interface Case {
  readonly name: string
  readonly edits: ReadonlyArray<readonly [string, string]>
  readonly spec: ScheduleSpec
  /** The rule that must fail and its first offending step; its message must contain `says`. */
  readonly rule: RuleName
  readonly step: number
  readonly says: string
  /** Where the first violation of any rule falls, when an lr rule sees the fault sooner. */
  readonly earliest?: { readonly rule: RuleName; readonly step: number }
}

const cases: ReadonlyArray<Case> = [
  {
    name: "text-first-off-by-one",
    // pos > t: the first visual position of a text-first cycle becomes text.
    edits: [
      [
        'return phase.order === "text-first" ? pos >= t : pos < v',
        'return phase.order === "text-first" ? pos > t : pos < v',
      ],
    ],
    spec: spec([
      { name: "text-only", steps: 4, ratio: { visual: 0, text: 1 } },
      { name: "joint", steps: 23, ratio: { visual: 3, text: 2 }, order: "text-first" },
    ]),
    rule: "modality-pattern",
    step: 6, // joint step 2: TT|V
    says: "step 6 (phase joint, step 2 of phase): expected visual, got text (3:2 text-first)",
  },
  {
    name: "offset-ignored",
    // PET-DINO's hook read as if it were T-Rex2's: text at 8, 17, ... instead of 7, 16, ...
    edits: [["const pos = (i + phaseOffset(phase)) % (v + t)", "const pos = i % (v + t)"]],
    spec: petdino,
    rule: "modality-pattern",
    step: 7,
    says: "step 7 (phase joint, step 7 of phase): expected text, got visual (8:1 visual-first, offset 1)",
  },
  {
    name: "warmup-one-step-late",
    // The ramp divides by w instead of w - 1: it reaches the base lr at step w, one step late.
    edits: [
      ["if (step === w - 1) return 1", "if (step === w) return 1"],
      ["((1 - warm.startFactor) * step) / (w - 1)", "((1 - warm.startFactor) * step) / w"],
    ],
    spec: spec([{ name: "joint", steps: 40, ratio: { visual: 8, text: 1 } }], {
      lr: { warmup: { kind: "linear", steps: 10, startFactor: 0.1 } },
    }),
    rule: "lr-warmup",
    step: 9,
    says: "warm-up must reach the base lr at its last step",
    // The ramp is too shallow from its second step on: the exact lr differs there already.
    earliest: { rule: "lr-matches-spec", step: 1 },
  },
  {
    name: "last-partial-cycle-loses-its-text",
    // A tail shorter than a cycle planned as visual only: its text step is dropped.
    edits: [
      [
        "const visual = isVisualAt(phase, phaseStep)",
        "const visual = isVisualAt(phase, phaseStep) || phaseStep >= phase.steps - (phase.steps % c)",
      ],
    ],
    // 3:2 over 14 steps: VVVTT VVVTT VVVT; the last T (step 13) is the one dropped.
    spec: spec([{ name: "joint", steps: 14, ratio: { visual: 3, text: 2 } }]),
    rule: "modality-pattern",
    step: 13,
    says: "step 13 (phase joint, step 13 of phase): expected text, got visual (3:2 visual-first)",
  },
  {
    name: "block-not-cut-at-phase-end",
    // The last block of a phase keeps its full cycle length: its group is never applied.
    edits: [
      [
        "blockEnd = Math.min(unclipped + (visual ? v : t), phase.steps)",
        "blockEnd = unclipped + (visual ? v : t)",
      ],
    ],
    // 3:2 over 11 steps: VVVTT VVVTT V; the lone visual step 10 must update (accumulation 3).
    spec: spec(
      [
        { name: "joint", steps: 11, ratio: { visual: 3, text: 2 } },
        { name: "text-only", steps: 3, ratio: { visual: 0, text: 1 } },
      ],
      { batch: { visual: { size: 1, accumulation: 3 }, text: { size: 1 } } },
    ),
    rule: "accumulation",
    step: 10,
    says: "expected the optimizer update (micro-step 0, the block ends here), got none",
  },
  {
    name: "short-first-block-not-its-own",
    // Micro-steps counted from the unshifted block start: the offset's short first block starts at micro 1.
    edits: [["blockStart = Math.max(0, unclipped)", "blockStart = unclipped"]],
    spec: spec([{ name: "joint", steps: 40, ratio: { visual: 8, text: 1 }, offset: 1 }], {
      batch: { visual: { size: 1, accumulation: 4 }, text: { size: 1 } },
    }),
    rule: "accumulation",
    step: 0,
    says: "expected micro-step 0 of a visual group, got 1",
  },
  {
    name: "cycle-labels-ignore-offset",
    edits: [["const shifted = phaseStep + phaseOffset(phase)", "const shifted = phaseStep"]],
    spec: spec([{ name: "joint", steps: 20, ratio: { visual: 8, text: 1 }, offset: 3 }]),
    rule: "phase-boundaries",
    step: 0,
    says: "expected cycle 0 position 3, got cycle 0 position 0 (cycle of 9 steps, offset 3)",
  },
]

describe("a planted planner bug fails verification, naming the rule and the first offending step", () => {
  for (const c of cases) {
    it(c.name, async () => {
      expect(checkSchedule(c.spec, planRange(c.spec)).violations, "control: the real planner").toEqual([])
      const broken = await mutant(c.name, c.edits)
      const report = checkSchedule(c.spec, broken.planRange(c.spec))
      expect(report.ok).toBe(false)
      const v = firstViolation(report, c.rule)
      expect(v, JSON.stringify(report.violations.slice(0, 4), null, 1)).toBeDefined()
      expect(v!.step).toBe(c.step)
      expect(v!.message).toContain(c.says)
      // Nothing is reported before the fault's first step, whichever rule reports it.
      const earliest = c.earliest ?? { rule: c.rule, step: c.step }
      expect(Math.min(...report.violations.map((x) => x.step))).toBe(earliest.step)
      expect(firstViolation(report, earliest.rule)?.step).toBe(earliest.step)
    })
  }
})

/** `interleave plan`: what each step of a schedule does. */
import { Effect } from "effect"
import { formatNumber } from "../../core/common/index.ts"
import {
  expectedVisualSteps,
  loadScenario,
  makePlanner,
  type Planner,
  predicateText,
  type ScheduleSpec,
  type StepPlan,
} from "../../core/schedule/index.ts"
import { defineCommand } from "../command.ts"
import { badInput } from "../failure.ts"
import { flagWithDefault } from "../flags.ts"
import { jsonFlag, scenarioArg } from "../options.ts"
import { json, line, table } from "../output.ts"

const letter = (p: StepPlan): string => (p.modality === "visual" ? "V" : "T")

/** `VVVVVVVT`, or `1000V 1T` when a cycle is too long to read letter by letter. */
const cycleText = (letters: string): string => {
  if (letters.length <= 32) return letters
  return (letters.match(/V+|T+/g) ?? []).map((run) => `${run.length}${run[0]}`).join(" ")
}

// Bounds the scan for a phase's summary: a cycle of millions of steps is summarised, not walked.
const SCAN = 100_000

/**
 * Each phase as the planner plays it: its bounds and ratio, its predicate in a trainer's words,
 * its first two cycles and its counts. Shown by default, since the step table's first rows may
 * all fall in one phase (T-Rex2's text-only warm-up).
 */
const phaseSummary = (planner: Planner): string[] => {
  const { spec, starts } = planner
  const out: string[] = []
  for (const [i, p] of spec.phases.entries()) {
    const start = starts[i]!
    const offset = p.offset ?? 0
    const cycles: string[] = []
    const textAt: number[] = []
    let cycle = -1
    const scan = Math.min(p.steps, SCAN)
    for (let k = 0; k < scan && (cycles.length <= 2 || textAt.length < 3); k++) {
      const plan = planner.at(start + k)
      if (plan.cycle !== cycle) {
        cycle = plan.cycle
        cycles.push("")
      }
      if (cycles.length <= 2) cycles[cycles.length - 1] += letter(plan)
      if (plan.modality === "text" && textAt.length < 3) textAt.push(k)
    }
    const visual = expectedVisualSteps(p)
    const both = p.ratio.visual > 0 && p.ratio.text > 0
    const texts = both && textAt.length > 0 ? `   (text at iter ${textAt.join(", ")}, ...)` : ""
    out.push(
      `phase ${p.name}: steps ${start}..${start + p.steps - 1} (${formatNumber(p.steps)}), ${p.ratio.visual}:${p.ratio.text} ${p.order}, offset ${offset}`,
      `  ${predicateText(p)}${texts}`,
      `  first cycles: ${cycles.slice(0, 2).map(cycleText).join(" ")}${cycles.length > 2 || scan < p.steps ? " ..." : ""}`,
      `  ${formatNumber(visual)} visual + ${formatNumber(p.steps - visual)} text steps`,
    )
  }
  return out
}

const planTable = (spec: ScheduleSpec, plans: ReadonlyArray<StepPlan>): string[] => {
  const groups = spec.optimizer.groups.map((g) => g.name)
  const out = [
    `steps ${plans[0]!.step}..${plans.at(-1)!.step} (--from, --count)`,
    table(
      [
        "step",
        "phase",
        "phase step",
        "mod",
        "cycle",
        "pos",
        "micro",
        "update",
        ...groups.map((g) => `lr ${g}`),
      ],
      plans.map((p) => [
        p.step,
        p.phase,
        p.phaseStep,
        p.modality === "visual" ? "V" : "T",
        p.cycle,
        p.position,
        p.micro,
        p.update ? "yes" : "",
        ...groups.map((g) => formatNumber(p.lr[g])),
      ]),
    ),
  ]
  // The cycle pattern, one string per cycle, e.g. VVVVVVVVT.
  let phase = ""
  let cycle = -1
  let current = ""
  const patterns: string[] = []
  for (const p of plans) {
    if (p.phase !== phase) {
      if (current) patterns.push(current)
      current = `${p.phase}: `
      phase = p.phase
      cycle = p.cycle
    } else if (p.cycle !== cycle) {
      current += " "
      cycle = p.cycle
    }
    current += letter(p)
  }
  if (current) patterns.push(current)
  out.push("", `pattern (one group per cycle)\n${patterns.map((l) => `  ${l}`).join("\n")}`)
  return out
}

/** The most steps `plan --count` shows. */
export const MAX_PLAN_COUNT = 1_000_000

export const planCommand = defineCommand({
  name: "plan",
  summary: "Show what each step of a schedule does: phase, modality, cycle, micro-step, update, lr.",
  args: { scenario: scenarioArg },
  flags: {
    from: flagWithDefault.integer("from", "First step to show.", 0),
    count: flagWithDefault.integer("count", "Number of steps to show.", 27),
    json: jsonFlag,
  },
  examples: ["interleave plan scenarios/trex2-joint-8to1.json --from 90 --count 18"],
  run: (o) =>
    Effect.gen(function* () {
      const spec = yield* loadScenario(o.scenario)
      const planner = makePlanner(spec)
      if (o.from < 0 || o.from >= planner.total)
        return yield* badInput(`--from: step ${o.from} is outside the schedule (0..${planner.total - 1})`)
      if (o.count < 1) return yield* badInput(`--count: must be >= 1, got ${o.count}`)
      // Every shown step is held and printed at once: bounded, so that no count walks for minutes.
      if (o.count > MAX_PLAN_COUNT)
        return yield* badInput(
          `--count: at most ${formatNumber(MAX_PLAN_COUNT)} steps are shown at once, got ${formatNumber(o.count)} (\`interleave verify\` checks the whole schedule)`,
        )
      const plans: StepPlan[] = []
      for (let i = o.from; i < Math.min(planner.total, o.from + o.count); i++) plans.push(planner.at(i))
      if (o.json) return yield* json(plans)
      const phases = spec.phases.length
      yield* line(
        [
          `${spec.name}: ${formatNumber(planner.total)} steps in ${phases} phase${phases === 1 ? "" : "s"}; iter = the step within its phase, from 0`,
          "",
          ...phaseSummary(planner),
          "",
          ...planTable(spec, plans),
        ].join("\n"),
      )
    }),
})

/** `interleave plan`: what each step of a schedule does. */
import { Effect } from "effect"
import { formatNumber } from "../../core/common/index.ts"
import { loadScenario, makePlanner, type ScheduleSpec, type StepPlan } from "../../core/schedule/index.ts"
import { defineCommand } from "../command.ts"
import { badInput } from "../failure.ts"
import { flagWithDefault } from "../flags.ts"
import { jsonFlag, scenarioArg } from "../options.ts"
import { json, line, table } from "../output.ts"

const planTable = (spec: ScheduleSpec, plans: ReadonlyArray<StepPlan>, total: number): string[] => {
  const groups = spec.optimizer.groups.map((g) => g.name)
  const out = [
    `${spec.name}: ${total} steps in ${spec.phases.length} phase(s); showing ${plans[0]!.step}..${plans.at(-1)!.step}`,
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
    current += p.modality === "visual" ? "V" : "T"
  }
  if (current) patterns.push(current)
  out.push("", `pattern (one group per cycle)\n${patterns.map((l) => `  ${l}`).join("\n")}`)
  return out
}

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
      const plans: StepPlan[] = []
      for (let i = o.from; i < Math.min(planner.total, o.from + o.count); i++) plans.push(planner.at(i))
      if (o.json) return yield* json(plans)
      yield* line(planTable(spec, plans, planner.total).join("\n"))
    }),
})

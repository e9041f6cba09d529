/** `plan` and `verify`: look at a schedule and check it, with no run involved. */
import { Args, Command, Options } from "@effect/cli"
import { Effect } from "effect"
import { makeChecker, type VerifyReport } from "../core/schedule/invariants.ts"
import { makePlanner, type StepPlan } from "../core/schedule/plan.ts"
import type { ScheduleSpec } from "../core/schedule/spec.ts"
import { badInput, failedCheck } from "./failure.ts"
import { fmtNum, printJson, println, table } from "./output.ts"
import { loadScenario } from "./scenario.ts"

export const jsonOption = Options.boolean("json").pipe(Options.withDescription("print machine-readable JSON"))
const scenarioArg = Args.text({ name: "scenario" }).pipe(Args.withDescription("scenario JSON file"))

export const planCommand = Command.make(
  "plan",
  {
    scenario: scenarioArg,
    from: Options.integer("from").pipe(Options.withDefault(0), Options.withDescription("first step to show")),
    count: Options.integer("count").pipe(
      Options.withDefault(27),
      Options.withDescription("number of steps to show"),
    ),
    json: jsonOption,
  },
  ({ scenario, from, count, json }) =>
    Effect.gen(function* () {
      const spec = yield* loadScenario(scenario)
      const planner = makePlanner(spec)
      if (from < 0 || from >= planner.total)
        return yield* badInput(`--from: step ${from} is outside the schedule (0..${planner.total - 1})`)
      if (count < 1) return yield* badInput(`--count: must be >= 1, got ${count}`)
      const plans: StepPlan[] = []
      for (let i = from; i < Math.min(planner.total, from + count); i++) plans.push(planner.at(i))
      if (json) return printJson(plans)
      printPlanTable(spec, plans, planner.total)
    }),
).pipe(
  Command.withDescription(
    "Show what each step of a schedule does: phase, modality, cycle, micro-step, update, lr.",
  ),
)

const printPlanTable = (spec: ScheduleSpec, plans: ReadonlyArray<StepPlan>, total: number) => {
  const groups = spec.optimizer.groups.map((g) => g.name)
  println(
    `${spec.name}: ${total} steps in ${spec.phases.length} phase(s); showing ${plans[0]!.step}..${plans.at(-1)!.step}`,
  )
  println(
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
        ...groups.map((g) => fmtNum(p.lr[g] ?? Number.NaN)),
      ]),
    ),
  )
  // The cycle pattern, one string per cycle, e.g. VVVVVVVVT.
  println()
  let phase = ""
  let cycle = -1
  let line = ""
  const out: string[] = []
  for (const p of plans) {
    if (p.phase !== phase) {
      if (line) out.push(line)
      line = `${p.phase}: `
      phase = p.phase
      cycle = p.cycle
    } else if (p.cycle !== cycle) {
      line += " "
      cycle = p.cycle
    }
    line += p.modality === "visual" ? "V" : "T"
  }
  if (line) out.push(line)
  println(`pattern (one group per cycle)\n${out.map((l) => `  ${l}`).join("\n")}`)
}

/** Streams the whole plan through the checker: constant memory whatever the length. */
export const verifySpec = (spec: ScheduleSpec): VerifyReport => {
  const planner = makePlanner(spec)
  const checker = makeChecker(spec)
  for (let i = 0; i < planner.total; i++) checker.push(planner.at(i))
  return checker.finish()
}

type AnyViolation = { rule: string; message: string } & ({ step: number } | { position: number })

export const reportVerify = (
  label: string,
  report: Omit<VerifyReport, "violations"> & { violations: ReadonlyArray<AnyViolation> },
  json: boolean,
) =>
  Effect.gen(function* () {
    if (json) printJson(report)
    else {
      println(`${label}`)
      println(
        table(
          ["steps", "visual", "text", "updates V", "updates T", "cycles"],
          [
            [
              report.steps,
              report.visualSteps,
              report.textSteps,
              report.updates.visual,
              report.updates.text,
              report.cycles,
            ],
          ],
        ),
      )
      if (report.ok) println("PASS: every invariant holds")
      else {
        println(`FAIL: ${report.violations.length} violation(s)`)
        for (const v of report.violations)
          println(`  [${v.rule}] ${"step" in v ? `step ${v.step}` : `event ${v.position}`}: ${v.message}`)
      }
    }
    if (!report.ok) return yield* failedCheck(json ? "" : "verification failed")
  })

export const verifyScenario = (scenario: string, json: boolean) =>
  Effect.gen(function* () {
    const spec = yield* loadScenario(scenario)
    yield* reportVerify(`${spec.name} (${scenario})`, verifySpec(spec), json)
  })

/** `interleave verify`: a schedule (scenario file) or a recorded run (--log) against every invariant. */
import { Effect, Option } from "effect"
import { plural } from "../../core/common/index.ts"
import { isLogFileArgument, openLog } from "../../core/log/index.ts"
import {
  quoteRunId,
  readRunEvents,
  runIdProblem,
  runStartedOf,
  verifyLog,
  verifyObservedLog,
  verifyRecordedLog,
} from "../../core/run/index.ts"
import { loadScenario, type VerifyReport, verifySpecInterruptible } from "../../core/schedule/index.ts"
import { defineCommand } from "../command.ts"
import { badInput, failedCheck } from "../failure.ts"
import { arg, flag } from "../flags.ts"
import { reportObservedVerify } from "../observed-report.ts"
import { jsonFlag, logFormatFlag, segmentFlag, storeFlag, windowFlag } from "../options.ts"
import { json, line, table } from "../output.ts"
import { withStore } from "../store.ts"

type AnyViolation = { rule: string; message: string } & ({ step: number } | { position: number })

/** What both a schedule's and a recorded run's report carry (the JSON prints all of it). */
type Reportable = Omit<VerifyReport, "violations" | "violationCounts" | "rulesChecked"> & {
  readonly violations: ReadonlyArray<AnyViolation>
  readonly violationCounts: Readonly<Partial<Record<string, number>>>
  readonly rulesChecked: ReadonlyArray<string>
}

/**
 * The failures by rule: how many each rule found and how many of them are shown (the checker
 * keeps only the first few per rule, but counts them all).
 */
export const violationLines = (report: Reportable): string[] => {
  const rules = report.rulesChecked.filter((r) => (report.violationCounts[r] ?? 0) > 0)
  const out = [`FAIL: ${plural(report.violationTotal, "violation")} of ${plural(rules.length, "rule")}`]
  for (const rule of rules) {
    const found = report.violationCounts[rule] ?? 0
    const shown = report.violations.filter((v) => v.rule === rule)
    const note = shown.length < found ? `, first ${shown.length} shown` : ""
    out.push(`  [${rule}] ${plural(found, "violation")}${note}`)
    for (const v of shown) {
      // Messages name their step; say it where one does not start with it (a phase's counts).
      const at = "step" in v ? `step ${v.step}` : `position ${v.position}`
      out.push(`    ${v.message.startsWith(at) ? v.message : `${at}: ${v.message}`}`)
    }
  }
  return out
}

export const reportVerify = (label: string, report: Reportable, asJson: boolean) =>
  Effect.gen(function* () {
    if (asJson) yield* json(report)
    else {
      yield* line(label)
      yield* line(
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
      if (report.ok)
        yield* line(
          `PASS: all ${plural(report.rulesChecked.length, "rule")} hold: ${report.rulesChecked.join(", ")}`,
        )
      else yield* line(violationLines(report).join("\n"))
    }
    if (!report.ok) return yield* failedCheck(asJson ? "" : "verification failed")
  })

export const verifyCommand = defineCommand({
  name: "verify",
  summary:
    "Check a schedule (scenario file) or a recorded run (--log) against every invariant; exit 1 on a violation.",
  args: { scenario: arg.optional("scenario", "a scenario JSON file") },
  flags: {
    log: flag.text(
      "log",
      "A run to check: a run id in the store, or a log file (ours, or an MLPerf, mmengine or detectron2 log: an observed run). An argument that exists, holds a '/' or ends in .jsonl/.mllog/.json/.log/.txt is a file.",
      { value: "RUN|FILE" },
    ),
    spec: flag.text(
      "spec",
      "With --log: check against this scenario instead of the recorded spec (for an observed run: its lr schedule, and its modality if logged).",
      { value: "FILE" },
    ),
    format: logFormatFlag,
    segment: segmentFlag,
    window: windowFlag,
    store: storeFlag,
    json: jsonFlag,
  },
  examples: [
    "interleave verify scenarios/trex2-joint-8to1.json",
    "interleave verify --log RUN --spec scenarios/trex2-joint-8to1.json",
    "interleave verify --log work_dirs/petdino/vis_data/scalars.json --spec scenarios/petdino-swin-t.json",
  ],
  run: (o) =>
    Effect.gen(function* () {
      if (Option.isNone(o.log)) {
        if (Option.isNone(o.scenario))
          return yield* badInput("verify: give a scenario file, or --log RUN|FILE")
        const spec = yield* loadScenario(o.scenario.value)
        const report = yield* verifySpecInterruptible(spec)
        return yield* reportVerify(`${spec.name} (${o.scenario.value})`, report, o.json)
      }
      const target = o.log.value
      const override = Option.isSome(o.spec) ? yield* loadScenario(o.spec.value) : undefined
      const isFile = isLogFileArgument(target)
      const window = Option.getOrUndefined(o.window)
      if (window !== undefined && (window < 1 || !isFile))
        return yield* badInput(
          window < 1
            ? `--window: expected iterations >= 1, got ${window}`
            : `--window: ${target} is a run in the store, whose window was set when it was imported (import --window N)`,
        )
      const file = isFile
        ? yield* openLog(target, { format: o.format, segment: Option.getOrUndefined(o.segment), window })
        : undefined
      if (file?.kind === "observed")
        return yield* reportObservedVerify(
          yield* verifyObservedLog(target, file.events, override),
          file.started.observed,
          o.json,
        )
      const report = file
        ? yield* verifyRecordedLog(target, file, override)
        : yield* withStore(
            o.store,
            Effect.gen(function* () {
              const started = yield* runStartedOf(target)
              if (started?.observed === undefined)
                return yield* verifyLog(target, readRunEvents(target), override)
              const r = yield* verifyObservedLog(target, readRunEvents(target), override)
              yield* reportObservedVerify(r, started.observed, o.json)
              return undefined
            }),
            { readOnly: true },
          )
      if (report === undefined) return
      const { runId: _r, source: _s, ending: _e, events: _n, nothingRecorded, specMismatch, ...rest } = report
      if (o.json) {
        yield* json({ ...rest, nothingRecorded, ...(specMismatch !== undefined ? { specMismatch } : {}) })
        if (!report.ok) return yield* failedCheck("")
        return
      }
      // Checked against another scenario than the run's own: said before anything else, since
      // every violation below may come from that alone.
      if (specMismatch !== undefined && Option.isSome(o.spec))
        yield* line(
          `note: the run recorded scenario "${specMismatch.recorded.name}" (spec hash ${specMismatch.recorded.specHash}); checking it against "${specMismatch.given.name}" from ${o.spec.value} (spec hash ${specMismatch.given.specHash}), a different spec`,
        )
      // A log's run id is the file's word: shown quoted when it could not name a run (a path, a
      // control character), and said to be what `import` refuses.
      const idProblem = runIdProblem(report.runId)
      if (idProblem !== undefined)
        yield* line(
          `note: the log's run id ${quoteRunId(report.runId)} ${idProblem}: import refuses it unless --run-id ID names the run`,
        )
      const shownId = idProblem === undefined ? report.runId : quoteRunId(report.runId)
      // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it finds
      const source = /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/.test(report.source)
        ? quoteRunId(report.source)
        : report.source
      const label = `${shownId} (${source})${report.ending === "completed" ? "" : ` [${report.ending}: checked the ${report.steps} recorded steps]`}`
      if (nothingRecorded && rest.violationTotal === 0) {
        yield* line(label)
        yield* line(
          `FAIL: nothing recorded: the log holds no completed step (${report.ending}), so no rule had anything to check`,
        )
        return yield* failedCheck("nothing recorded")
      }
      yield* reportVerify(label, rest, false)
    }),
})

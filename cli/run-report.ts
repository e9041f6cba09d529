/** How a run's state reads on the terminal: shared by run, resume, fork and show. */
import { Effect } from "effect"
import { sparkline } from "../core/bench/index.ts"
import { formatBytes, formatNumber } from "../core/common/index.ts"
import type { Curves, RunState, Series } from "../core/log/index.ts"
import type { RunSummary } from "../core/run/index.ts"
import { failedCheck } from "./failure.ts"
import { json, line, table } from "./output.ts"

export const stateTable = (s: RunState): string =>
  table(
    [
      "steps",
      "visual",
      "text",
      "updates V",
      "updates T",
      "last loss V",
      "last loss T",
      "mem peak",
      "mem trough",
      "step time",
    ],
    [
      [
        s.stepsCompleted,
        s.visualSteps,
        s.textSteps,
        s.updates.visual,
        s.updates.text,
        formatNumber(s.lastLoss.visual),
        formatNumber(s.lastLoss.text),
        formatBytes(s.memoryPeakBytes),
        formatBytes(s.memoryTroughBytes),
        `${formatNumber(s.totalDurationMs / 1000)} s`,
      ],
    ],
  )

export const printState = (s: RunState) =>
  Effect.gen(function* () {
    yield* line(stateTable(s))
    if (s.lastEval) {
      const e = s.lastEval
      yield* line(
        `eval at step ${e.step}: ${e.metric} visual ${formatNumber(e.values.visual)} text ${formatNumber(e.values.text)}${e.chance === undefined ? "" : ` (chance ${formatNumber(e.chance)})`}`,
      )
    }
  })

/** Prints the outcome of run/resume/fork and fails (exit 1) when the run aborted. */
export const reportRun = (summary: RunSummary, asJson: boolean) =>
  Effect.gen(function* () {
    const s = summary.state
    if (asJson)
      yield* json({
        runId: summary.runId,
        status: summary.status,
        steps: s.stepsCompleted,
        visualSteps: s.visualSteps,
        textSteps: s.textSteps,
      })
    else {
      yield* line(`run ${summary.runId}: ${summary.status}`)
      yield* printState(s)
      if (summary.status === "completed") yield* line(`\nnext: interleave verify --log ${summary.runId}`)
    }
    if (summary.status === "aborted") return yield* failedCheck(asJson ? "" : `run aborted: ${s.abortReason}`)
  })

export const printCurves = (c: Curves) =>
  Effect.gen(function* () {
    const row = (label: string, x: Series, fmt: (v: number) => string) => {
      if (x.points.length === 0) return Effect.void
      const values = x.points.map((p) => p.value)
      return line(
        `${label.padEnd(13)} ${sparkline(values, 48).padEnd(48)}  ${fmt(values[0]!)} -> ${fmt(values.at(-1)!)}`,
      )
    }
    yield* line()
    yield* row("loss visual", c.loss.visual, formatNumber)
    yield* row("loss text", c.loss.text, formatNumber)
    yield* row("lr (1st group)", c.lr, formatNumber)
    yield* row("memory visual", c.memory.visual, formatBytes)
    yield* row("memory text", c.memory.text, formatBytes)
  })

/** How a run reads on the terminal: shared by run, resume, fork and show. */
import { Effect } from "effect"
import { sparkline } from "../core/bench/index.ts"
import { formatBytes, formatDuration, formatMs, formatNumber } from "../core/common/index.ts"
import {
  type Curves,
  MEMORY_SOURCES,
  type MemorySource,
  type RunReport,
  type RunState,
  runReport,
  type Series,
} from "../core/log/index.ts"
import type { RunSummary } from "../core/run/index.ts"
import { failedCheck } from "./failure.ts"
import { json, line, table } from "./output.ts"

const range = (x: { min: number; max: number } | null): string =>
  x === null ? "—" : x.min === x.max ? formatBytes(x.max) : `${formatBytes(x.min)} – ${formatBytes(x.max)}`

/** What simulated the run: "the sim's cost model for h100-sxm × trex2-swin-t, uncalibrated". */
const simulatedBy = (r: RunReport): string => {
  const said = r.adapter.info.simulated
  const inner = said?.replace(/^simulated \(|\)$/g, "")
  return inner ? `the sim's cost model for ${inner}` : "the sim's cost model"
}

/** Per-modality table: steps, updates, step time (mean, p50, p99, total), memory, last loss. */
export const reportLines = (r: RunReport): string[] => {
  const t = r.stepTime
  const mem = r.memory
  const memHeader = mem ? `memory (${mem.measure}${mem.complete ? "" : ", sampled"})` : "memory"
  const row = (m: "visual" | "text") => {
    const s = t[m]
    return [
      m,
      m === "visual" ? r.visualSteps : r.textSteps,
      r.updates[m],
      formatMs(s.meanMs),
      formatMs(s.p50Ms),
      formatMs(s.p99Ms),
      s.count > 0 ? formatDuration(s.totalMs) : "—",
      mem ? range(mem[m]) : "—",
      formatNumber(r.lastLoss[m]),
    ]
  }
  const out = [
    table(
      ["per step", "steps", "updates", "mean", "p50", "p99", "total", memHeader, "last loss"],
      [row("visual"), row("text")],
    ),
    `step time is ${t.kind}${t.kind === "simulated" ? ` (${simulatedBy(r)}; not a measurement)` : ""}: ${formatDuration(t.totalMs)} in all over ${r.stepsCompleted} steps${r.wallMs > 0 ? `; wall time ${formatDuration(r.wallMs)}` : ""}${r.plannedSteps > r.stepsCompleted ? `; ${r.stepsCompleted} of ${r.plannedSteps} planned steps done` : ""}`,
  ]
  // The sim's memory comes from the same cost model as its step times: it says so too.
  if (mem)
    out.push(
      `memory${t.kind === "simulated" ? " (simulated)" : ""}: ${mem.description}${mem.complete ? "" : " (only on the sampled steps)"}`,
    )
  if (r.lastEval) {
    const e = r.lastEval
    out.push(
      `eval at step ${e.step}: ${e.metric} visual ${formatNumber(e.values.visual)} text ${formatNumber(e.values.text)}${e.chance === undefined ? "" : ` (chance ${formatNumber(e.chance)})`}`,
    )
  }
  return out
}

export const printState = (s: RunState) => line(reportLines(runReport(s)).join("\n"))

/** Prints the outcome of run/resume/fork and fails (exit 1) when the run aborted. */
export const reportRun = (summary: RunSummary, asJson: boolean) =>
  Effect.gen(function* () {
    const s = summary.state
    const r = summary.resumed
    const f = summary.forked
    if (asJson)
      yield* json({
        ...runReport(s),
        outcome: summary.status,
        // A fork starts like a resume (from the copied history); it says forked, with the same details.
        ...(f
          ? { forked: { ...f, ...(r ? { checkpoint: r.checkpoint, rerunSteps: r.rerunSteps } : {}) } }
          : r
            ? { resumed: r }
            : {}),
      })
    else {
      // How this process started: the checkpoint it restored and any steps re-run to rebuild state.
      const how = r
        ? `${r.checkpoint ? `, from its checkpoint after step ${r.checkpoint.step} (${r.checkpoint.file})` : ""}${r.rerunSteps > 0 ? `; ${r.rerunSteps} step(s) re-run unrecorded to rebuild the trainer's state` : ""}`
        : ""
      if (f) yield* line(`forked run ${summary.runId} from ${f.parentId} at step ${f.atStep}${how}`)
      else if (r) yield* line(`resumed run ${summary.runId} at step ${r.fromStep}${how}`)
      yield* line(`run ${summary.runId}: ${summary.status}`)
      yield* printState(s)
      if (summary.status === "completed") yield* line(`\nnext: interleave verify --log ${summary.runId}`)
    }
    if (summary.status === "aborted") return yield* failedCheck(asJson ? "" : `run aborted: ${s.abortReason}`)
    if (summary.status === "interrupted")
      return yield* failedCheck(
        `run ${summary.runId} interrupted: ${s.lastInterruption?.reason ?? "?"}; its steps are kept: resume it with \`interleave resume ${summary.runId}\``,
      )
  })

export const printCurves = (c: Curves, memory: MemorySource | undefined) =>
  Effect.gen(function* () {
    const row = (label: string, x: Series | undefined, fmt: (v: number) => string) => {
      if (!x || x.points.length === 0) return Effect.void
      const values = x.points.map((p) => p.value)
      return line(
        `${label.padEnd(22)} ${sparkline(values, 48).padEnd(48)}  ${fmt(values[0]!)} -> ${fmt(values.at(-1)!)}`,
      )
    }
    yield* line()
    yield* row("loss visual", c.loss.visual, formatNumber)
    yield* row("loss text", c.loss.text, formatNumber)
    yield* row("lr (1st group)", c.lr, formatNumber)
    if (memory) {
      const per = c.memory[memory]
      const what = MEMORY_SOURCES[memory].short
      yield* row(`memory visual (${what})`, per?.visual, formatBytes)
      yield* row(`memory text (${what})`, per?.text, formatBytes)
    }
  })

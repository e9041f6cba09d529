/**
 * What a run's state says to a reader: every number named for what it is (per visual or text
 * step, mean or total, simulated or measured, which memory) and in its unit. `run --json` and
 * `show --json` print this object; the terminal tables are rendered from it.
 */
import { MEMORY_SOURCES, type MemorySource } from "./events.ts"
import type { ObservedSummary } from "./observed-projection.ts"
import { memoryFigure, type RunState } from "./projections.ts"
import { type StepTimeSummary, summarizeStepTimes } from "./step-times.ts"

export interface RunReport {
  readonly runId: string | undefined
  readonly status: RunState["status"]
  readonly source: string | undefined
  readonly specHash: string | undefined
  readonly adapter: {
    readonly kind: string | undefined
    readonly options: Readonly<Record<string, unknown>>
    readonly info: Readonly<Record<string, string>>
  }
  readonly seed: number | undefined
  readonly forkOf: RunState["forkOf"]
  readonly plannedSteps: number
  readonly lastStep: number
  readonly stepsCompleted: number
  readonly visualSteps: number
  readonly textSteps: number
  readonly updates: RunState["updates"]
  readonly phase: string | undefined
  readonly lastLoss: RunState["lastLoss"]
  /** Per-step times in ms: `simulated` by the sim's cost model, `measured` by real adapters. */
  readonly stepTime: {
    readonly kind: "simulated" | "measured"
    readonly unit: "ms"
    readonly visual: StepTimeSummary
    readonly text: StepTimeSummary
    readonly totalMs: number
  }
  /** Wall time of the sessions that wrote the run and have ended, ms (absent while one is running). */
  readonly wallMs: number
  readonly memory: {
    readonly source: MemorySource
    /** The figure in words: "in-step peak", "allocated", "reserved", "device", "RSS". */
    readonly measure: string
    readonly description: string
    /** Carried by every step, or sampled on some only. */
    readonly complete: boolean
    readonly unit: "bytes"
    readonly visual: { readonly min: number; readonly max: number; readonly steps: number } | null
    readonly text: { readonly min: number; readonly max: number; readonly steps: number } | null
  } | null
  readonly evaluations: number
  readonly lastEval: RunState["lastEval"]
  readonly failures: number
  readonly lastFailure: RunState["lastFailure"]
  readonly abortReason: string | undefined
  readonly resumes: number
  readonly lastInterruption: RunState["lastInterruption"]
  readonly writer: RunState["writer"]
  /** For a run imported from a foreign log: what the log is and what it carried; null otherwise. */
  readonly observed: ObservedSummary | null
}

export const runReport = (s: RunState): RunReport => {
  const fig = memoryFigure(s)
  const extent = (x: { min: number; max: number; count: number } | undefined) =>
    x ? { min: x.min, max: x.max, steps: x.count } : null
  return {
    runId: s.runId,
    status: s.status,
    source: s.source,
    specHash: s.specHash,
    adapter: { kind: s.adapterKind, options: s.adapterOptions ?? {}, info: s.adapterInfo ?? {} },
    seed: s.seed,
    forkOf: s.forkOf,
    plannedSteps: s.plannedSteps,
    lastStep: s.lastStep,
    stepsCompleted: s.stepsCompleted,
    visualSteps: s.visualSteps,
    textSteps: s.textSteps,
    updates: s.updates,
    phase: s.phase,
    lastLoss: s.lastLoss,
    stepTime: {
      kind: s.adapterKind === "sim" ? "simulated" : "measured",
      unit: "ms",
      visual: summarizeStepTimes(s.stepTimes.visual),
      text: summarizeStepTimes(s.stepTimes.text),
      totalMs: s.totalDurationMs,
    },
    wallMs: s.wallMs,
    memory: fig
      ? {
          source: fig.source,
          measure: MEMORY_SOURCES[fig.source].short,
          description: MEMORY_SOURCES[fig.source].long,
          complete: fig.complete,
          unit: "bytes",
          visual: extent(fig.visual),
          text: extent(fig.text),
        }
      : null,
    evaluations: s.evaluations,
    lastEval: s.lastEval,
    failures: s.failures,
    lastFailure: s.lastFailure,
    abortReason: s.abortReason,
    resumes: s.resumes,
    lastInterruption: s.lastInterruption,
    writer: s.writer,
    observed: s.observed ?? null,
  }
}

/**
 * Projections: pure folds (`initial`, `evolve`) over run events. Replaying a log through the same
 * fold gives the same state as the live run: the event-sourcing contract.
 */
import type { Checkpointed, EvalCompleted, RunEvent, StepCompleted, StepFailed } from "./events.ts"
import type { Modality } from "./spec.ts"

export type RunStatus = "empty" | "running" | "completed" | "aborted"

export interface RunState {
  readonly runId: string | undefined
  readonly status: RunStatus
  readonly source: string | undefined
  readonly specHash: string | undefined
  readonly plannedSteps: number
  readonly adapterKind: string | undefined
  readonly seed: number | undefined
  readonly forkOf: { readonly runId: string; readonly atStep: number } | undefined
  /** Highest step recorded as completed, -1 before the first. */
  readonly lastStep: number
  readonly stepsCompleted: number
  readonly visualSteps: number
  readonly textSteps: number
  readonly updates: { readonly visual: number; readonly text: number }
  readonly phase: string | undefined
  readonly phasesStarted: number
  /** Total loss of the latest step of each modality. */
  readonly lastLoss: { readonly visual: number | undefined; readonly text: number | undefined }
  /** Sum of step durations (simulated time for `sim`). */
  readonly totalDurationMs: number
  readonly memoryPeakBytes: number | undefined
  readonly memoryTroughBytes: number | undefined
  readonly lastEval: EvalCompleted | undefined
  readonly evaluations: number
  readonly lastCheckpoint: Checkpointed | undefined
  readonly failures: number
  readonly lastFailure: StepFailed | undefined
  readonly abortReason: string | undefined
}

export const initialRunState: RunState = {
  runId: undefined,
  status: "empty",
  source: undefined,
  specHash: undefined,
  plannedSteps: 0,
  adapterKind: undefined,
  seed: undefined,
  forkOf: undefined,
  lastStep: -1,
  stepsCompleted: 0,
  visualSteps: 0,
  textSteps: 0,
  updates: { visual: 0, text: 0 },
  phase: undefined,
  phasesStarted: 0,
  lastLoss: { visual: undefined, text: undefined },
  totalDurationMs: 0,
  memoryPeakBytes: undefined,
  memoryTroughBytes: undefined,
  lastEval: undefined,
  evaluations: 0,
  lastCheckpoint: undefined,
  failures: 0,
  lastFailure: undefined,
  abortReason: undefined,
}

const evolveStep = (s: RunState, e: StepCompleted): RunState => {
  const visual = e.modality === "visual"
  const bytes = e.memory.logicalBytes
  return {
    ...s,
    lastStep: e.step,
    stepsCompleted: s.stepsCompleted + 1,
    visualSteps: s.visualSteps + (visual ? 1 : 0),
    textSteps: s.textSteps + (visual ? 0 : 1),
    updates: e.update
      ? { visual: s.updates.visual + (visual ? 1 : 0), text: s.updates.text + (visual ? 0 : 1) }
      : s.updates,
    phase: e.phase,
    lastLoss: visual ? { visual: e.losses.total, text: s.lastLoss.text } : { visual: s.lastLoss.visual, text: e.losses.total },
    totalDurationMs: s.totalDurationMs + e.durationMs,
    memoryPeakBytes: s.memoryPeakBytes === undefined || bytes > s.memoryPeakBytes ? bytes : s.memoryPeakBytes,
    memoryTroughBytes: s.memoryTroughBytes === undefined || bytes < s.memoryTroughBytes ? bytes : s.memoryTroughBytes,
  }
}

export const evolveRunState = (s: RunState, e: RunEvent): RunState => {
  switch (e._tag) {
    case "RunStarted":
      return {
        ...s,
        runId: e.runId,
        status: "running",
        source: e.source,
        specHash: e.specHash,
        plannedSteps: e.steps,
        adapterKind: e.adapter.kind,
        seed: e.seed,
        forkOf: e.forkOf,
      }
    case "PhaseStarted":
      return { ...s, phase: e.phase, phasesStarted: s.phasesStarted + 1 }
    case "StepCompleted":
      return evolveStep(s, e)
    case "StepFailed":
      return { ...s, failures: s.failures + 1, lastFailure: e }
    case "EvalCompleted":
      return { ...s, lastEval: e, evaluations: s.evaluations + 1 }
    case "Checkpointed":
      return { ...s, lastCheckpoint: e }
    case "RunCompleted":
      return { ...s, status: "completed" }
    case "RunAborted":
      return { ...s, status: "aborted", abortReason: e.reason }
  }
}

/** The step an event belongs to, for `show --at STEP` (RunStarted and PhaseStarted count as their step). */
export const eventStep = (e: RunEvent): number | undefined => {
  switch (e._tag) {
    case "RunStarted":
      return -1
    case "PhaseStarted":
    case "StepCompleted":
    case "StepFailed":
    case "EvalCompleted":
    case "Checkpointed":
      return e.step
    case "RunAborted":
      return e.step
    case "RunCompleted":
      return undefined
  }
}

/** A series that keeps at most `max` points by doubling its stride when full: bounded memory, even spacing. */
export interface Series {
  readonly max: number
  stride: number
  seen: number
  readonly points: Array<{ step: number; value: number }>
}

export const makeSeries = (max = 2000): Series => ({ max, stride: 1, seen: 0, points: [] })

export const pushSeries = (s: Series, step: number, value: number): void => {
  if (s.seen++ % s.stride !== 0) return
  s.points.push({ step, value })
  if (s.points.length >= s.max) {
    let w = 0
    for (let r = 0; r < s.points.length; r += 2) s.points[w++] = s.points[r]!
    s.points.length = w
    s.stride *= 2
  }
}

/** Curves for reports and `show`: per-modality loss, lr of the first group, memory, step time. */
export interface Curves {
  readonly loss: Record<Modality, Series>
  readonly lr: Series
  readonly memory: Record<Modality, Series>
  readonly durationMs: Record<Modality, Series>
}

export const makeCurves = (max = 2000): Curves => ({
  loss: { visual: makeSeries(max), text: makeSeries(max) },
  lr: makeSeries(max),
  memory: { visual: makeSeries(max), text: makeSeries(max) },
  durationMs: { visual: makeSeries(max), text: makeSeries(max) },
})

/** Mutable fold (series are large); `evolveCurves(makeCurves(), e)` per event. */
export const evolveCurves = (c: Curves, e: RunEvent): Curves => {
  if (e._tag !== "StepCompleted") return c
  const total = e.losses.total
  if (total !== undefined) pushSeries(c.loss[e.modality], e.step, total)
  const firstLr = Object.values(e.lr)[0]
  if (firstLr !== undefined) pushSeries(c.lr, e.step, firstLr)
  pushSeries(c.memory[e.modality], e.step, e.memory.logicalBytes)
  pushSeries(c.durationMs[e.modality], e.step, e.durationMs)
  return c
}

export const foldRunState = (events: Iterable<RunEvent>): RunState => {
  let s = initialRunState
  for (const e of events) s = evolveRunState(s, e)
  return s
}

/**
 * Projections: pure folds (`initial`, `evolve`) over run events. Replaying a log through the same
 * fold gives the same state as the live run: the event-sourcing contract.
 */

import type { Modality } from "../schedule/index.ts"
import type { Checkpointed, EvalCompleted, RunEvent, StepFailed } from "./events.ts"

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

/** RunState with its fields, and the two counters objects it mutates, writable. */
type Draft = { -readonly [K in keyof RunState]: RunState[K] } & {
  updates: { visual: number; text: number }
  lastLoss: { visual: number | undefined; text: number | undefined }
}

const cloneState = (s: RunState): Draft => ({ ...s, updates: { ...s.updates }, lastLoss: { ...s.lastLoss } })

/**
 * The one definition of how an event changes the run state, applied to a private draft. The
 * public folds never mutate their inputs; the draft only saves a copy of the state per step,
 * which dominated the engine's time on sim runs.
 */
const apply = (s: Draft, e: RunEvent): void => {
  switch (e._tag) {
    case "RunStarted":
      s.runId = e.runId
      s.status = "running"
      s.source = e.source
      s.specHash = e.specHash
      s.plannedSteps = e.steps
      s.adapterKind = e.adapter.kind
      s.seed = e.seed
      s.forkOf = e.forkOf
      return
    case "PhaseStarted":
      s.phase = e.phase
      s.phasesStarted++
      return
    case "StepCompleted": {
      const visual = e.modality === "visual"
      const bytes = e.memory.logicalBytes
      s.lastStep = e.step
      s.stepsCompleted++
      if (visual) {
        s.visualSteps++
        if (e.update) s.updates.visual++
        s.lastLoss.visual = e.losses.total
      } else {
        s.textSteps++
        if (e.update) s.updates.text++
        s.lastLoss.text = e.losses.total
      }
      s.phase = e.phase
      s.totalDurationMs += e.durationMs
      if (s.memoryPeakBytes === undefined || bytes > s.memoryPeakBytes) s.memoryPeakBytes = bytes
      if (s.memoryTroughBytes === undefined || bytes < s.memoryTroughBytes) s.memoryTroughBytes = bytes
      return
    }
    case "StepFailed":
      s.failures++
      s.lastFailure = e
      return
    case "EvalCompleted":
      s.lastEval = e
      s.evaluations++
      return
    case "Checkpointed":
      s.lastCheckpoint = e
      return
    case "RunCompleted":
      s.status = "completed"
      return
    case "RunAborted":
      s.status = "aborted"
      s.abortReason = e.reason
      return
  }
}

/** Pure: the state after one more event. */
export const evolveRunState = (s: RunState, e: RunEvent): RunState => {
  const d = cloneState(s)
  apply(d, e)
  return d
}

/** A running fold for long streams: `push` each event, `state()` for an immutable snapshot. */
export interface RunStateFold {
  readonly push: (e: RunEvent) => void
  readonly state: () => RunState
}

export const makeRunStateFold = (from: RunState = initialRunState): RunStateFold => {
  const d = cloneState(from)
  return { push: (e) => apply(d, e), state: () => cloneState(d) }
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
  const f = makeRunStateFold()
  for (const e of events) f.push(e)
  return f.state()
}

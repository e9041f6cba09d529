/**
 * Projections: pure folds (`initial`, `evolve`) over run events. Replaying a log through the same
 * fold gives the same state as the live run: the event-sourcing contract.
 */

import type { Modality } from "../schedule/index.ts"
import type {
  Checkpointed,
  EvalCompleted,
  MemorySample,
  MemorySource,
  RunEvent,
  RunInterrupted,
  StepFailed,
  Writer,
} from "./events.ts"
import {
  applyObserved,
  copyObservedSummary,
  emptyObservedSummary,
  type ObservedDraft,
  type ObservedSummary,
} from "./observed-projection.ts"
import { addStepTime, copyStepTimes, emptyStepTimes, type StepTimes } from "./step-times.ts"

/**
 * `interrupted`: stopped by a signal (recorded), or its writer is gone (see core/run/liveness).
 * `observed`: imported from a foreign log that does not say how the run ended (it ended as far
 * as the log goes; nobody writes it any more).
 */
export type RunStatus = "empty" | "running" | "interrupted" | "completed" | "aborted" | "observed"

/** Lowest and highest value of one memory figure over one modality's steps. */
export interface MemoryExtent {
  readonly min: number
  readonly max: number
  /** Steps that carried this figure. */
  readonly count: number
}

export type MemoryExtents = Partial<Record<MemorySource, Partial<Record<Modality, MemoryExtent>>>>

export interface RunState {
  readonly runId: string | undefined
  readonly status: RunStatus
  readonly source: string | undefined
  readonly specHash: string | undefined
  readonly plannedSteps: number
  readonly adapterKind: string | undefined
  readonly adapterOptions: Readonly<Record<string, unknown>> | undefined
  readonly adapterInfo: Readonly<Record<string, string>> | undefined
  readonly seed: number | undefined
  readonly forkOf: { readonly runId: string; readonly atStep: number } | undefined
  /** The process that last started or resumed the run. */
  readonly writer: Writer | undefined
  readonly resumes: number
  readonly lastInterruption: RunInterrupted | undefined
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
  /** Step durations per modality (simulated for `sim`, measured otherwise). */
  readonly stepTimes: { readonly visual: StepTimes; readonly text: StepTimes }
  /** Every memory figure the steps carried, per modality. */
  readonly memory: MemoryExtents
  /** Wall time of the writing sessions that have ended (start or resume to interruption or end). */
  readonly wallMs: number
  /** Start of the session in progress (RunStarted / RunResumed time), if one is. */
  readonly sessionStartedAt: number | undefined
  readonly lastEval: EvalCompleted | undefined
  readonly evaluations: number
  readonly lastCheckpoint: Checkpointed | undefined
  readonly failures: number
  readonly lastFailure: StepFailed | undefined
  readonly abortReason: string | undefined
  /** What an observed run's log carried (observed-projection.ts); undefined for runs we made. */
  readonly observed: ObservedSummary | undefined
}

export const initialRunState: RunState = {
  runId: undefined,
  status: "empty",
  source: undefined,
  specHash: undefined,
  plannedSteps: 0,
  adapterKind: undefined,
  adapterOptions: undefined,
  adapterInfo: undefined,
  seed: undefined,
  forkOf: undefined,
  writer: undefined,
  resumes: 0,
  lastInterruption: undefined,
  lastStep: -1,
  stepsCompleted: 0,
  visualSteps: 0,
  textSteps: 0,
  updates: { visual: 0, text: 0 },
  phase: undefined,
  phasesStarted: 0,
  lastLoss: { visual: undefined, text: undefined },
  totalDurationMs: 0,
  stepTimes: { visual: emptyStepTimes(), text: emptyStepTimes() },
  memory: {},
  wallMs: 0,
  sessionStartedAt: undefined,
  lastEval: undefined,
  evaluations: 0,
  lastCheckpoint: undefined,
  failures: 0,
  lastFailure: undefined,
  abortReason: undefined,
  observed: undefined,
}

type MutableExtents = Partial<
  Record<MemorySource, Partial<Record<Modality, { min: number; max: number; count: number }>>>
>

/** RunState with its fields, and the objects it mutates, writable. */
type Draft = { -readonly [K in keyof RunState]: RunState[K] } & {
  updates: { visual: number; text: number }
  lastLoss: { visual: number | undefined; text: number | undefined }
  stepTimes: { visual: StepTimes; text: StepTimes }
  memory: MutableExtents
}

const copyExtents = (m: MemoryExtents): MutableExtents => {
  const out: MutableExtents = {}
  for (const [k, v] of Object.entries(m)) {
    const per: Partial<Record<Modality, { min: number; max: number; count: number }>> = {}
    if (v.visual) per.visual = { ...v.visual }
    if (v.text) per.text = { ...v.text }
    out[k as MemorySource] = per
  }
  return out
}

const cloneState = (s: RunState): Draft => ({
  ...s,
  updates: { ...s.updates },
  lastLoss: { ...s.lastLoss },
  stepTimes: { visual: copyStepTimes(s.stepTimes.visual), text: copyStepTimes(s.stepTimes.text) },
  memory: copyExtents(s.memory),
  observed: s.observed === undefined ? undefined : copyObservedSummary(s.observed),
})

const addMemory = (m: MutableExtents, modality: Modality, sample: MemorySample): void => {
  for (const key in sample) {
    const v = sample[key as MemorySource]
    if (v === undefined) continue
    let per = m[key as MemorySource]
    if (per === undefined) {
      per = {}
      m[key as MemorySource] = per
    }
    const x = per[modality]
    if (x === undefined) per[modality] = { min: v, max: v, count: 1 }
    else {
      x.count++
      if (v < x.min) x.min = v
      if (v > x.max) x.max = v
    }
  }
}

const endSession = (s: Draft, at: number): void => {
  if (s.sessionStartedAt !== undefined) s.wallMs += Math.max(0, at - s.sessionStartedAt)
  s.sessionStartedAt = undefined
}

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
      s.adapterOptions = e.adapter.options
      s.adapterInfo = e.adapter.info
      s.seed = e.seed
      s.forkOf = e.forkOf
      s.writer = e.writer
      s.sessionStartedAt = e.startedAt
      if (e.observed !== undefined) {
        s.status = "observed"
        s.observed = emptyObservedSummary(e.observed)
        // The log's own seed, when it states one (the event needs a number either way).
        const seed = e.observed.settings.seed
        s.seed = typeof seed === "number" ? seed : undefined
        // Nobody is writing an observed run: no session is in progress.
        s.sessionStartedAt = undefined
      }
      return
    case "PhaseStarted":
      s.phase = e.phase
      s.phasesStarted++
      return
    case "StepCompleted": {
      const m = e.modality
      s.lastStep = e.step
      s.stepsCompleted++
      if (m === "visual") {
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
      addStepTime(s.stepTimes[m], e.durationMs)
      addMemory(s.memory, m, e.memory)
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
    case "RunResumed":
      // A session that ended without a word (a kill) leaves no end time: its wall time is unknown.
      s.sessionStartedAt = e.resumedAt
      s.status = "running"
      s.writer = e.writer
      s.resumes++
      return
    case "RunInterrupted":
      endSession(s, e.interruptedAt)
      s.status = "interrupted"
      s.lastInterruption = e
      return
    case "RunCompleted":
      endSession(s, e.completedAt)
      s.status = "completed"
      return
    case "RunAborted":
      endSession(s, e.abortedAt)
      s.status = "aborted"
      s.abortReason = e.reason
      return
    case "ObservedWindow":
    case "ObservedEval":
    case "ObservedInterval":
    case "ObservedStats":
      // copyObservedSummary's drafts are the mutable shape applyObserved expects.
      if (s.observed) applyObserved(s.observed as ObservedDraft, e)
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
  readonly max: number
  readonly loss: Record<Modality, Series>
  readonly lr: Series
  /** One pair of series per memory figure the steps carry (never mixed: a figure sampled on some steps only would invent a swing). */
  readonly memory: Partial<Record<MemorySource, Record<Modality, Series>>>
  readonly durationMs: Record<Modality, Series>
}

export const makeCurves = (max = 2000): Curves => ({
  max,
  loss: { visual: makeSeries(max), text: makeSeries(max) },
  lr: makeSeries(max),
  memory: {},
  durationMs: { visual: makeSeries(max), text: makeSeries(max) },
})

/** Mutable fold (series are large); `evolveCurves(makeCurves(), e)` per event. */
export const evolveCurves = (c: Curves, e: RunEvent): Curves => {
  if (e._tag !== "StepCompleted") return c
  const total = e.losses.total
  if (total !== undefined) pushSeries(c.loss[e.modality], e.step, total)
  const firstLr = Object.values(e.lr)[0]
  if (firstLr !== undefined) pushSeries(c.lr, e.step, firstLr)
  for (const key in e.memory) {
    const v = e.memory[key as MemorySource]
    if (v === undefined) continue
    let per = c.memory[key as MemorySource]
    if (per === undefined) {
      per = { visual: makeSeries(c.max), text: makeSeries(c.max) }
      ;(c.memory as Record<MemorySource, Record<Modality, Series>>)[key as MemorySource] = per
    }
    pushSeries(per[e.modality], e.step, v)
  }
  pushSeries(c.durationMs[e.modality], e.step, e.durationMs)
  return c
}

export const foldRunState = (events: Iterable<RunEvent>): RunState => {
  const f = makeRunStateFold()
  for (const e of events) f.push(e)
  return f.state()
}

/** Preference among memory figures when several are complete: the in-step peak shows a step's working set. */
const MEMORY_PREFERENCE: ReadonlyArray<MemorySource> = [
  "peakBytes",
  "allocatedBytes",
  "reservedBytes",
  "deviceBytes",
  "rssBytes",
]

/** The memory figure a run's summary shows, with its extent per modality. */
export interface MemoryFigure {
  readonly source: MemorySource
  readonly visual: MemoryExtent | undefined
  readonly text: MemoryExtent | undefined
  /** Carried by every step, or only sampled on some. */
  readonly complete: boolean
}

/**
 * The figure that best shows the visual/text swing: among those every step carried, the first by
 * preference whose visual and text extents differ (RSS last: it moves with the GC); otherwise the
 * first complete one; otherwise the most frequent. Undefined when no step carried memory.
 */
export const memoryFigure = (s: RunState): MemoryFigure | undefined => {
  const steps = { visual: s.visualSteps, text: s.textSteps }
  const figure = (source: MemorySource): MemoryFigure | undefined => {
    const per = s.memory[source]
    if (!per) return undefined
    const complete = (["visual", "text"] as const).every((m) => (per[m]?.count ?? 0) === steps[m])
    return { source, visual: per.visual, text: per.text, complete }
  }
  const figures = MEMORY_PREFERENCE.map(figure).filter((f): f is MemoryFigure => f !== undefined)
  if (figures.length === 0) return undefined
  const complete = figures.filter((f) => f.complete)
  const swings = (f: MemoryFigure) =>
    f.visual !== undefined &&
    f.text !== undefined &&
    (f.visual.max !== f.text.max || f.visual.min !== f.text.min)
  const count = (f: MemoryFigure) => (f.visual?.count ?? 0) + (f.text?.count ?? 0)
  return (
    complete.find((f) => swings(f) && f.source !== "rssBytes") ??
    complete[0] ??
    [...figures].sort((a, b) => count(b) - count(a))[0]
  )
}

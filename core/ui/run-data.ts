/**
 * A run as the web UI draws it: its steps in columns (one typed array per loss term, lr group,
 * memory figure, step time), its markers (phases, checkpoints, evaluations, failures, resumes),
 * and its state folded by core/log's one fold. Built from the store once, then extended event by
 * event as the live tail brings more; charts ask it for any step range at any resolution
 * (`seriesOf`), bucketed per pixel with each bucket's min and max, so no spike disappears.
 */
import {
  type Checkpointed,
  decodeEvent,
  EVENT_VERSIONS,
  type EvalCompleted,
  type MemorySource,
  makeRunStateFold,
  type PhaseStarted,
  type RunAborted,
  type RunEvent,
  type RunEventType,
  type RunInterrupted,
  type RunResumed,
  type RunStarted,
  type RunStateFold,
  type StepFailed,
} from "../log/index.ts"
import type { StoredEvent } from "../store/index.ts"

/** A growable Float64 column; NaN where a step did not carry the value. */
class Column {
  data: Float64Array
  /** A column that appears late reads NaN for the steps before it. */
  constructor(capacity: number) {
    this.data = new Float64Array(Math.max(16, capacity)).fill(Number.NaN)
  }
  set(i: number, v: number): void {
    if (i >= this.data.length) this.grow(i + 1)
    this.data[i] = v
  }
  grow(min: number): void {
    let n = this.data.length
    while (n < min) n *= 2
    const next = new Float64Array(n).fill(Number.NaN)
    next.set(this.data)
    this.data = next
  }
}

/** Markers on the step axis. Lists are capped (a run evaluating every step would flood a page). */
const MAX_MARKERS = 5_000

export interface RunMarkers {
  readonly phases: PhaseStarted[]
  readonly checkpoints: Checkpointed[]
  readonly evals: EvalCompleted[]
  readonly failures: StepFailed[]
  readonly resumes: RunResumed[]
  readonly interruptions: RunInterrupted[]
  aborted: RunAborted | undefined
}

/** A non-step event in words, for the live feed. */
export interface RunNote {
  readonly seq: number
  readonly type: string
  readonly step: number | undefined
  readonly text: string
}
const MAX_NOTES = 50
const short = (v: number): string => (Number.isFinite(v) ? String(Number(v.toPrecision(3))) : String(v))

export const MODALITIES = ["visual", "text"] as const
type Modality = (typeof MODALITIES)[number]

export class RunData {
  readonly runId: string
  started: RunStarted | undefined
  readonly fold: RunStateFold = makeRunStateFold()
  /** Events applied: the stream version this data is at. */
  version = 0
  /** Global position of the last event applied. */
  lastGlobal = 0
  firstRecordedAt: number | undefined
  lastRecordedAt: number | undefined
  /** Recorded steps. */
  n = 0
  step = new Column(1024)
  /** 0 visual, 1 text. */
  modality = new Uint8Array(1024)
  durationMs = new Column(1024)
  /** Sum of step durations up to and including the step, ms (simulated for sim). */
  cumMs = new Column(1024)
  /** When the step's event was recorded, ms since the epoch. */
  recordedAt = new Column(1024)
  readonly losses = new Map<string, Column>()
  readonly lr = new Map<string, Column>()
  readonly memory = new Map<MemorySource, Column>()
  readonly markers: RunMarkers = {
    phases: [],
    checkpoints: [],
    evals: [],
    failures: [],
    resumes: [],
    interruptions: [],
    aborted: undefined,
  }
  /** The last non-step events in words (for the live feed), each with a sequence number. */
  readonly notes: Array<RunNote> = []
  noteSeq = 0

  constructor(runId: string) {
    this.runId = runId
  }

  /** Applies the next stored event of the stream (its position must be `version`); returns it decoded. */
  applyStored(e: StoredEvent): RunEvent {
    const event =
      EVENT_VERSIONS[e.type as RunEventType] === e.version
        ? (e.data as RunEvent)
        : (() => {
            const d = decodeEvent(e, `run ${this.runId}, event ${e.position}`, { validate: false })
            if (d._tag === "Left") throw d.left
            return d.right
          })()
    this.version = e.position + 1
    this.lastGlobal = e.globalPosition
    this.firstRecordedAt ??= e.recordedAt
    this.lastRecordedAt = e.recordedAt
    this.apply(event, e.recordedAt)
    return event
  }

  private column(map: Map<string, Column>, key: string): Column {
    let c = map.get(key)
    if (!c) {
      c = new Column(this.step.data.length)
      map.set(key, c)
    }
    return c
  }

  private note(type: string, step: number | undefined, text: string): void {
    this.notes.push({ seq: ++this.noteSeq, type, step, text })
    if (this.notes.length > MAX_NOTES) this.notes.splice(0, this.notes.length - MAX_NOTES)
  }

  apply(e: RunEvent, recordedAt: number): void {
    this.fold.push(e)
    const m = this.markers
    const push = <A>(list: A[], a: A) => {
      if (list.length < MAX_MARKERS) list.push(a)
    }
    switch (e._tag) {
      case "RunStarted":
        this.started ??= e
        return
      case "StepCompleted": {
        const i = this.n++
        if (i >= this.modality.length) {
          const next = new Uint8Array(this.modality.length * 2)
          next.set(this.modality)
          this.modality = next
        }
        this.step.set(i, e.step)
        this.modality[i] = e.modality === "visual" ? 0 : 1
        this.durationMs.set(i, e.durationMs)
        const prev = i === 0 ? 0 : this.cumMs.data[i - 1]!
        this.cumMs.set(i, prev + e.durationMs)
        this.recordedAt.set(i, recordedAt)
        for (const k in e.losses) this.column(this.losses, k).set(i, e.losses[k]!)
        for (const k in e.lr) this.column(this.lr, k).set(i, e.lr[k]!)
        for (const k in e.memory) {
          const v = e.memory[k as MemorySource]
          if (v !== undefined) (this.column(this.memory as Map<string, Column>, k) as Column).set(i, v)
        }
        return
      }
      case "PhaseStarted":
        push(m.phases, e)
        this.note("phase", e.step, `phase ${e.phase} starts`)
        return
      case "Checkpointed":
        push(m.checkpoints, e)
        this.note("checkpoint", e.step, `checkpoint after step ${e.step}`)
        return
      case "EvalCompleted":
        push(m.evals, e)
        this.note(
          "eval",
          e.step,
          `${e.metric}: visual ${short(e.values.visual)}, text ${short(e.values.text)}${e.chance === undefined ? "" : ` (chance ${short(e.chance)})`}`,
        )
        return
      case "StepFailed":
        push(m.failures, e)
        this.note("failure", e.step, `${e.kind}: ${e.message}`)
        return
      case "RunResumed":
        push(m.resumes, e)
        this.note("resume", e.fromStep, `resumed from step ${e.fromStep}`)
        return
      case "RunInterrupted":
        push(m.interruptions, e)
        this.note("interrupted", e.lastStep, e.reason)
        return
      case "RunAborted":
        m.aborted = e
        this.note("aborted", e.step, e.reason)
        return
      case "RunCompleted":
        this.note("completed", e.steps - 1, `completed ${e.steps} steps`)
        return
      default:
        return
    }
  }

  /** The notes after sequence number `seq` (the most recent MAX_NOTES at most). */
  notesAfter(seq: number): ReadonlyArray<RunNote> {
    return this.notes.filter((n) => n.seq > seq)
  }

  /** The series keys this run can draw (see `seriesOf`). */
  keys(): { losses: string[]; lr: string[]; memory: MemorySource[] } {
    return { losses: [...this.losses.keys()], lr: [...this.lr.keys()], memory: [...this.memory.keys()] }
  }

  /** Which column an x axis reads: the step, cumulative step time (s), or wall time since the start (s). */
  xValue(axis: XAxis, i: number): number {
    if (axis === "step") return this.step.data[i]!
    if (axis === "time") return this.cumMs.data[i]! / 1000
    return (this.recordedAt.data[i]! - (this.firstRecordedAt ?? 0)) / 1000
  }

  /** The value of a series key at step index i, or NaN (another modality, or not carried). */
  valueReader(key: string): ((i: number) => number) | undefined {
    const [kind, a, b] = key.split(":")
    const mod = (name: string | undefined): number | undefined =>
      name === "visual" ? 0 : name === "text" ? 1 : undefined
    const masked = (col: Column | undefined, m: number | undefined) => {
      if (!col) return undefined
      const d = () => col.data
      if (m === undefined) return (i: number) => d()[i]!
      const modality = this.modality
      return (i: number) => (modality[i] === m ? d()[i]! : Number.NaN)
    }
    switch (kind) {
      case "loss":
        return masked(this.losses.get(a!), mod(b))
      case "lr":
        return masked(this.lr.get(a!), mod(b))
      case "time":
        return masked(this.durationMs, mod(a))
      case "mem":
        return masked(this.memory.get(a as MemorySource), mod(b))
      default:
        return undefined
    }
  }
}

export type XAxis = "step" | "time" | "wall"
export const X_AXES: ReadonlyArray<XAxis> = ["step", "time", "wall"]

export interface SeriesQuery {
  readonly x: XAxis
  /** Inclusive range on the x axis; default the runs' extent. */
  readonly from?: number | undefined
  readonly to?: number | undefined
  /** Buckets across the range: the plot's width in pixels. */
  readonly buckets: number
  readonly keys: ReadonlyArray<string>
}

export interface SeriesResult {
  /** `raw`: one point per step (the range has no more steps than buckets); `minmax`: two per bucket. */
  readonly mode: "raw" | "minmax"
  readonly x: XAxis
  readonly from: number
  readonly to: number
  readonly bucketWidth: number
  readonly xs: ReadonlyArray<number>
  /** Per run, per key: one value per x (null where nothing fell). */
  readonly series: Record<string, Record<string, ReadonlyArray<number | null>>>
  /** Per run: visual and text steps per x slot (the schedule strip), and each slot's x extent. */
  readonly schedule: Record<
    string,
    { readonly visual: ReadonlyArray<number>; readonly text: ReadonlyArray<number> }
  >
}

/** Index of the first step whose x is >= v (x columns are non-decreasing). */
const lowerBound = (run: RunData, axis: XAxis, v: number): number => {
  let lo = 0
  let hi = run.n
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if (run.xValue(axis, mid) < v) lo = mid + 1
    else hi = mid
  }
  return lo
}

export const MAX_BUCKETS = 4_000

/**
 * The runs' series over one x range, on one grid (so runs overlay point by point): for a step
 * range with no more steps than buckets, every step; otherwise `buckets` buckets, each drawn as
 * two points, its minimum and its maximum in the order they occurred (a line through them passes
 * every extreme: per-pixel min/max, not every Nth point). Keys: `loss:TERM:MODALITY`,
 * `lr:GROUP`, `time:MODALITY` (step time, ms), `mem:FIGURE:MODALITY` (bytes).
 */
export const seriesOf = (runs: ReadonlyArray<RunData>, q: SeriesQuery): SeriesResult => {
  const axis = q.x
  const buckets = Math.max(1, Math.min(MAX_BUCKETS, Math.floor(q.buckets)))
  let lo = Number.POSITIVE_INFINITY
  let hi = Number.NEGATIVE_INFINITY
  for (const r of runs)
    if (r.n > 0) {
      lo = Math.min(lo, r.xValue(axis, 0))
      hi = Math.max(hi, r.xValue(axis, r.n - 1))
    }
  if (!Number.isFinite(lo)) {
    lo = 0
    hi = 0
  }
  const from = q.from !== undefined && Number.isFinite(q.from) ? q.from : lo
  const to = q.to !== undefined && Number.isFinite(q.to) && q.to >= from ? q.to : Math.max(from, hi)
  const stepRange = axis === "step" ? Math.floor(to) - Math.ceil(from) + 1 : Number.POSITIVE_INFINITY
  const raw = stepRange <= buckets
  const series: Record<string, Record<string, Array<number | null>>> = {}
  const schedule: Record<string, { visual: number[]; text: number[] }> = {}
  if (raw) {
    const first = Math.ceil(from)
    const slots = Math.max(0, stepRange)
    const xs = Array.from({ length: slots }, (_, i) => first + i)
    for (const r of runs) {
      const out: Record<string, Array<number | null>> = {}
      const readers = q.keys.map((k) => [k, r.valueReader(k)] as const)
      for (const [k] of readers) out[k] = new Array<number | null>(slots).fill(null)
      const v = new Array<number>(slots).fill(0)
      const t = new Array<number>(slots).fill(0)
      for (let i = lowerBound(r, axis, first); i < r.n; i++) {
        const s = r.step.data[i]!
        if (s > to) break
        const slot = s - first
        if (r.modality[i] === 0) v[slot]!++
        else t[slot]!++
        for (const [k, read] of readers) {
          const y = read?.(i)
          if (y !== undefined && !Number.isNaN(y)) out[k]![slot] = y
        }
      }
      series[r.runId] = out
      schedule[r.runId] = { visual: v, text: t }
    }
    return { mode: "raw", x: axis, from: first, to: first + slots - 1, bucketWidth: 1, xs, series, schedule }
  }
  // A step range spans to + 1 (the last step takes a slot); a time range is continuous.
  const span = axis === "step" ? to - from + 1 : to - from || 1
  const w = span / buckets
  const xs: number[] = []
  for (let b = 0; b < buckets; b++) xs.push(from + b * w, from + (b + 0.5) * w)
  for (const r of runs) {
    const out: Record<string, Array<number | null>> = {}
    const v = new Array<number>(buckets).fill(0)
    const t = new Array<number>(buckets).fill(0)
    const readers = q.keys.map((k) => [k, r.valueReader(k)] as const)
    const stats = readers.map(() => ({
      min: new Float64Array(buckets).fill(Number.POSITIVE_INFINITY),
      max: new Float64Array(buckets).fill(Number.NEGATIVE_INFINITY),
      minAt: new Int32Array(buckets).fill(-1),
      maxAt: new Int32Array(buckets).fill(-1),
    }))
    for (let i = lowerBound(r, axis, from); i < r.n; i++) {
      const x = r.xValue(axis, i)
      if (x > to) break
      const b = Math.min(buckets - 1, Math.floor((x - from) / w))
      if (r.modality[i] === 0) v[b]!++
      else t[b]!++
      for (let k = 0; k < readers.length; k++) {
        const y = readers[k]![1]?.(i)
        if (y === undefined || Number.isNaN(y)) continue
        const s = stats[k]!
        if (y < s.min[b]!) {
          s.min[b] = y
          s.minAt[b] = i
        }
        if (y > s.max[b]!) {
          s.max[b] = y
          s.maxAt[b] = i
        }
      }
    }
    readers.forEach(([k], idx) => {
      const s = stats[idx]!
      const ys = new Array<number | null>(buckets * 2).fill(null)
      for (let b = 0; b < buckets; b++) {
        if (s.minAt[b]! < 0) continue
        const minFirst = s.minAt[b]! <= s.maxAt[b]!
        ys[2 * b] = minFirst ? s.min[b]! : s.max[b]!
        ys[2 * b + 1] = minFirst ? s.max[b]! : s.min[b]!
      }
      out[k] = ys
    })
    series[r.runId] = out
    schedule[r.runId] = { visual: v, text: t }
  }
  return { mode: "minmax", x: axis, from, to, bucketWidth: w, xs, series, schedule }
}

export type { Modality }

/**
 * The fold of an observed run's events (observed-events.ts): what `show` and the run report say
 * about a run imported from a foreign log. Constant-size state: counts, extents and the latest
 * value of each evaluation metric, never the records themselves.
 */
import type { ObservedAt, ObservedDescriptor, ObservedEvent } from "./observed-events.ts"

export interface IntervalCount {
  readonly starts: number
  readonly stops: number
}

export interface MetricSummary {
  readonly count: number
  readonly last: number
  readonly min: number
  readonly max: number
}

/** The last train row: its iterations, line and values as logged. */
export interface LastWindow {
  readonly first: number
  readonly last: number
  readonly epoch?: number | undefined
  readonly line: number
  readonly values: Readonly<Record<string, number>>
  readonly nonFinite?: ReadonlyArray<string> | undefined
}

/** The last line of one statistics key (MLPerf tracked_stats, throughput, current_lr). */
export interface LastStats {
  readonly values: Readonly<Record<string, number>>
  readonly at: ObservedAt
  readonly line: number
}

/** An interval mark with its time: MLPerf's run_start / run_stop. */
export interface Mark {
  readonly timeMs: number
  readonly line: number
}

/** Statistics keys whose last values are kept (a log may invent any number). */
export const LAST_STATS_KEYS = 32

export interface ObservedSummary {
  readonly descriptor: ObservedDescriptor
  /** Training records (mmengine / detectron2 rows). */
  readonly windows: number
  /** 0-based iterations covered by the records, when they have iterations. */
  readonly firstIteration: number | undefined
  readonly lastIteration: number | undefined
  readonly evaluations: number
  readonly metrics: Readonly<Record<string, MetricSummary>>
  readonly intervals: Readonly<Record<string, IntervalCount>>
  readonly stats: number
  /** Earliest and latest timestamp the log carries, ms since the epoch (MLLOG time_ms). */
  readonly firstTimeMs: number | undefined
  readonly lastTimeMs: number | undefined
  /** The last train row (mmengine, detectron2). */
  readonly lastWindow: LastWindow | undefined
  /** The last line of each statistics key (the first LAST_STATS_KEYS keys). */
  readonly lastStats: Readonly<Record<string, LastStats>>
  /** The first run_start and run_stop with a time (MLPerf): the time to train lies between. */
  readonly runStart: Mark | undefined
  readonly runStop: Mark | undefined
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] }
export type ObservedDraft = Mutable<Omit<ObservedSummary, "metrics" | "intervals" | "lastStats">> & {
  metrics: Record<string, Mutable<MetricSummary>>
  intervals: Record<string, Mutable<IntervalCount>>
  lastStats: Record<string, LastStats>
}

export const emptyObservedSummary = (descriptor: ObservedDescriptor): ObservedSummary => ({
  descriptor,
  windows: 0,
  firstIteration: undefined,
  lastIteration: undefined,
  evaluations: 0,
  metrics: {},
  intervals: {},
  stats: 0,
  firstTimeMs: undefined,
  lastTimeMs: undefined,
  lastWindow: undefined,
  lastStats: {},
  runStart: undefined,
  runStop: undefined,
})

export const copyObservedSummary = (s: ObservedSummary): ObservedDraft => {
  const metrics: Record<string, Mutable<MetricSummary>> = {}
  for (const [k, v] of Object.entries(s.metrics)) metrics[k] = { ...v }
  const intervals: Record<string, Mutable<IntervalCount>> = {}
  for (const [k, v] of Object.entries(s.intervals)) intervals[k] = { ...v }
  return { ...s, metrics, intervals, lastStats: { ...s.lastStats } }
}

const time = (s: ObservedDraft, t: number | undefined): void => {
  if (t === undefined) return
  if (s.firstTimeMs === undefined || t < s.firstTimeMs) s.firstTimeMs = t
  if (s.lastTimeMs === undefined || t > s.lastTimeMs) s.lastTimeMs = t
}

/** Applies one observed event to a draft made by `copyObservedSummary`. */
export const applyObserved = (s: ObservedDraft, e: ObservedEvent): void => {
  switch (e._tag) {
    case "ObservedWindow":
      s.windows++
      if (s.firstIteration === undefined || e.first < s.firstIteration) s.firstIteration = e.first
      if (s.lastIteration === undefined || e.last > s.lastIteration) s.lastIteration = e.last
      s.lastWindow = {
        first: e.first,
        last: e.last,
        ...(e.epoch === undefined ? {} : { epoch: e.epoch }),
        line: e.line,
        values: e.values,
        ...(e.nonFinite === undefined ? {} : { nonFinite: e.nonFinite }),
      }
      time(s, e.timeMs)
      return
    case "ObservedEval": {
      s.evaluations++
      const m = s.metrics[e.metric]
      if (m === undefined) s.metrics[e.metric] = { count: 1, last: e.value, min: e.value, max: e.value }
      else {
        m.count++
        m.last = e.value
        if (e.value < m.min) m.min = e.value
        if (e.value > m.max) m.max = e.value
      }
      time(s, e.timeMs)
      return
    }
    case "ObservedInterval": {
      const c = s.intervals[e.kind] ?? { starts: 0, stops: 0 }
      if (e.edge === "start") c.starts++
      else c.stops++
      s.intervals[e.kind] = c
      if (e.kind === "run" && e.timeMs !== undefined) {
        const mark = { timeMs: e.timeMs, line: e.line }
        if (e.edge === "start") s.runStart ??= mark
        else s.runStop ??= mark
      }
      time(s, e.timeMs)
      return
    }
    case "ObservedStats":
      s.stats++
      if (e.key in s.lastStats || Object.keys(s.lastStats).length < LAST_STATS_KEYS)
        s.lastStats[e.key] = { values: e.values, at: e.at, line: e.line }
      time(s, e.timeMs)
      return
  }
}

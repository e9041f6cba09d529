/**
 * A study's results (pure): what each configuration's recorded run gave (evaluations against
 * steps, samples and step time; throughput; memory swing), aggregated over seeds per setting, and
 * the Pareto set of the settings.
 *
 * Definitions (the report states them):
 *  - final metric (per modality): the value of the run's last evaluation (the engine evaluates every
 *    K steps and after the last step; a run stopped by a time budget ends at its last K-multiple);
 *  - throughput: samples / second of step time (the sum of the adapter's step durations: simulated
 *    for sim, the trainer's measured step time otherwise; evaluation and start-up not counted);
 *  - memory swing: max - min of the run's per-step memory figure over all its steps (the in-step
 *    peak where every step carries one; else reserved, device, allocated, RSS), bytes;
 *  - Pareto set: the settings (seed means) that no other setting dominates on (maximize final
 *    visual metric, maximize final text metric, maximize throughput, minimize memory swing);
 *    a dominates b when a is at least as good on all four and strictly better on one.
 */
import type { Ratio } from "../schedule/index.ts"
import { dominatedBy, type Objective, paretoIndices } from "./pareto.ts"

export interface EvalPoint {
  readonly step: number
  /** Samples trained up to and including `step`. */
  readonly samples: number
  /** Cumulative step time up to and including `step`, seconds. */
  readonly seconds: number
  readonly visual: number
  readonly text: number
}

export type MemoryFigureName = "peakBytes" | "reservedBytes" | "deviceBytes" | "allocatedBytes" | "rssBytes"
export const MEMORY_PREFERENCE: ReadonlyArray<MemoryFigureName> = [
  "peakBytes",
  "reservedBytes",
  "deviceBytes",
  "allocatedBytes",
  "rssBytes",
]

export interface RunResult {
  readonly id: string
  readonly label: string
  readonly setting: string
  readonly ratio: Ratio
  readonly lrFactor: { readonly visual: number; readonly text: number }
  readonly warmup: number
  readonly seed: number
  readonly runId: string
  /** completed, aborted, interrupted (e.g. a time budget: `stopped` says why). */
  readonly status: string
  readonly stopped?: string | undefined
  readonly adapter: string
  /** The adapter's times are simulated (sim) rather than measured. */
  readonly simulated: boolean
  readonly metric: string | undefined
  readonly chance: number | undefined
  readonly steps: number
  readonly samples: number
  readonly stepSeconds: number
  /** Wall time of the run, start to end, seconds (process start, evaluations and logging included). */
  readonly wallSeconds: number | undefined
  readonly samplesPerSec: number | undefined
  readonly memoryFigure: MemoryFigureName | undefined
  readonly memorySwingBytes: number | undefined
  readonly memoryMaxBytes: number | undefined
  readonly evals: ReadonlyArray<EvalPoint>
  readonly final: { readonly visual: number; readonly text: number } | undefined
}

export interface Spread {
  readonly n: number
  readonly mean: number
  /** Standard error of the mean: sample s.d. / sqrt(n); 0 for one seed. */
  readonly se: number
  readonly min: number
  readonly max: number
}

export const spreadOf = (xs: ReadonlyArray<number>): Spread | undefined => {
  const v = xs.filter((x) => Number.isFinite(x))
  if (v.length === 0) return undefined
  const n = v.length
  const mean = v.reduce((a, b) => a + b, 0) / n
  const sd = n > 1 ? Math.sqrt(v.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1)) : 0
  return { n, mean, se: sd / Math.sqrt(n), min: Math.min(...v), max: Math.max(...v) }
}

export interface SettingResult {
  readonly setting: string
  readonly ratio: Ratio
  readonly lrFactor: { readonly visual: number; readonly text: number }
  readonly warmup: number
  readonly runs: ReadonlyArray<RunResult>
  readonly seeds: ReadonlyArray<number>
  readonly finalVisual: Spread | undefined
  readonly finalText: Spread | undefined
  readonly samplesPerSec: Spread | undefined
  readonly memorySwingBytes: Spread | undefined
  readonly pareto: boolean
  /** A setting that dominates this one (off the front). */
  readonly dominatedBy: string | undefined
}

export const PARETO_OBJECTIVES: ReadonlyArray<Objective<SettingResult>> = [
  { name: "final visual metric", direction: "max", value: (s) => s.finalVisual?.mean },
  { name: "final text metric", direction: "max", value: (s) => s.finalText?.mean },
  { name: "throughput (samples/s)", direction: "max", value: (s) => s.samplesPerSec?.mean },
  { name: "memory swing (bytes)", direction: "min", value: (s) => s.memorySwingBytes?.mean },
]

export const PARETO_DEFINITION =
  "Pareto set: the settings (means over seeds) that no other setting dominates, where a dominates b when a is at least as good as b on all four objectives (maximize the final visual metric, maximize the final text metric, maximize throughput in samples per second of step time, minimize memory swing) and strictly better on at least one. Equal settings do not dominate each other, so ties stay on the front together; a setting with a missing objective (no evaluation, no memory figure) is left out."

/** Groups runs by setting (first appearance order), aggregates over seeds, marks the Pareto set. */
export const settingsOf = (runs: ReadonlyArray<RunResult>): SettingResult[] => {
  const groups = new Map<string, RunResult[]>()
  for (const r of runs) groups.set(r.setting, [...(groups.get(r.setting) ?? []), r])
  const unmarked = [...groups.values()].map((rs): SettingResult => {
    const first = rs[0]!
    const done = rs.filter((r) => r.final !== undefined)
    return {
      setting: first.setting,
      ratio: first.ratio,
      lrFactor: first.lrFactor,
      warmup: first.warmup,
      runs: rs,
      seeds: rs.map((r) => r.seed),
      finalVisual: spreadOf(done.map((r) => r.final!.visual)),
      finalText: spreadOf(done.map((r) => r.final!.text)),
      samplesPerSec: spreadOf(rs.flatMap((r) => (r.samplesPerSec === undefined ? [] : [r.samplesPerSec]))),
      memorySwingBytes: spreadOf(
        rs.flatMap((r) => (r.memorySwingBytes === undefined ? [] : [r.memorySwingBytes])),
      ),
      pareto: false,
      dominatedBy: undefined,
    }
  })
  const front = new Set(paretoIndices(unmarked, PARETO_OBJECTIVES))
  const by = dominatedBy(unmarked, PARETO_OBJECTIVES)
  return unmarked.map((s, i) => ({
    ...s,
    pareto: front.has(i),
    dominatedBy: by[i] === undefined ? undefined : unmarked[by[i]!]!.setting,
  }))
}

/** Per-step records of a run, folded into a RunResult's measured parts. */
export interface StepRecord {
  readonly step: number
  readonly durationMs: number
  readonly samples: number
  readonly memory: Readonly<Partial<Record<MemoryFigureName, number>>> | undefined
}

export const memoryFigureOf = (steps: ReadonlyArray<StepRecord>): MemoryFigureName | undefined =>
  steps.length === 0
    ? undefined
    : MEMORY_PREFERENCE.find((k) => steps.every((s) => typeof s.memory?.[k] === "number"))

/** Memory swing (max - min of the figure) and its max, bytes. */
export const memorySwing = (
  steps: ReadonlyArray<StepRecord>,
): { figure: MemoryFigureName; swing: number; max: number } | undefined => {
  const figure = memoryFigureOf(steps)
  if (figure === undefined) return undefined
  let lo = Number.POSITIVE_INFINITY
  let hi = Number.NEGATIVE_INFINITY
  for (const s of steps) {
    const b = s.memory![figure]!
    if (b < lo) lo = b
    if (b > hi) hi = b
  }
  return { figure, swing: hi - lo, max: hi }
}

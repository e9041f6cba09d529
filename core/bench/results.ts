/**
 * SweepResults: what a `bench` sweep writes and every report reads.
 *
 * One sweep runs several configurations (ratio x batch x adapter/backend x preset); each gives a
 * `ConfigResult` with its throughput, tinybench-style latency statistics per modality, memory
 * fluctuation, and a (possibly downsampled) per-step series for the charts. The schema round-trips
 * through JSON: numbers are `Schema.Finite`, except where a statistic is infinite by definition
 * (`rme` with a zero mean) or a step failed (NaN loss), which are written as the strings
 * "Infinity", "-Infinity", "NaN".
 *
 * Versions: 2 adds, per configuration, `memoryFigure` (which memory figure its memory numbers are,
 * simulated or measured, on how many steps), `memoryCycle` (the memory folded onto the schedule's
 * cycle, for pictures that must not alias) and `latencyOutliers`. Every v2 field is optional, so a
 * version-1 file decodes as it is (its figure reads "not recorded"): old results still load for
 * `--compare` and `--sim-of`. New files are written as version 2. `worker` (also optional, so
 * still version 2) is written only by `bench report` over a shared store: which machine and
 * attempt ran the configuration; a local sweep's files are as before.
 */
import * as os from "node:os"
import { Either, Schema } from "effect"
import {
  DecodeError,
  firstIssue,
  latencyStatistics,
  NumberJson,
  parseJsonText,
  Statistics,
} from "../common/index.ts"
import { Modality } from "../schedule/index.ts"
import { CycleProfile, cycleProfile } from "./cycle-profile.ts"
import { MemoryFigure } from "./memory-figure.ts"
import { MemoryFluctuation, memoryFluctuation } from "./memory-fluctuation.ts"
import { outlierCount } from "./outliers.ts"

/** The version this build writes; it reads every version in `RESULTS_SCHEMA_VERSIONS`. */
export const RESULTS_SCHEMA_VERSION = 2
export const RESULTS_SCHEMA_VERSIONS = [1, 2] as const

const NonNegInt = Schema.Int.pipe(Schema.nonNegative())
const NonNegFinite = Schema.Finite.pipe(Schema.nonNegative())

/**
 * Per-step series as parallel arrays (compact in JSON, direct to chart). All arrays have the same
 * length. `memBytes` is the configuration's memory figure at the step (`ConfigResult.memoryFigure`
 * names it: an in-step peak, allocated, reserved, device or RSS bytes, simulated or measured);
 * `loss` is NaN for a failed step.
 * `sourceSteps` is the number of steps before downsampling (see `downsampleSeries`).
 */
export const StepSeries = Schema.Struct({
  step: Schema.Array(NonNegInt),
  modality: Schema.Array(Modality),
  memBytes: Schema.Array(Schema.Finite),
  loss: Schema.Array(NumberJson),
  durationMs: Schema.Array(Schema.Finite),
  sourceSteps: NonNegInt,
  /**
   * The loss's terms at each step, by name (`cls`, `box`, `align`, ...; `total` is `loss`), NaN
   * where a step has no such term: a chart can then plot a term that means the same in every run
   * (a tfjs visual step's total gains `align` once a text step has run). Absent in older files.
   */
  lossTerms: Schema.optional(Schema.Record({ key: Schema.String, value: Schema.Array(NumberJson) })),
}).pipe(
  Schema.filter((s) => {
    const n = s.step.length
    return (
      [s.modality, s.memBytes, s.loss, s.durationMs, ...Object.values(s.lossTerms ?? {})].every(
        (a) => a.length === n,
      ) || "step, modality, memBytes, loss, durationMs and lossTerms must have the same length"
    )
  }),
)
export type StepSeries = typeof StepSeries.Type

const ModalityPair = <S extends Schema.Schema.Any>(s: S) => Schema.Struct({ visual: s, text: s })

/** Where a sweep worker ran a configuration: its machine, and which attempt of the configuration it was. */
export const WorkerMachine = Schema.Struct({
  host: Schema.String,
  pid: NonNegInt,
  cpu: Schema.String,
  cores: NonNegInt,
  platform: Schema.String,
  node: Schema.String,
  /** The adapter's device or hardware, as the attempt recorded it (`sim h100-sxm (simulated)`). */
  device: Schema.optional(Schema.String),
  /** 1 for the first attempt at the configuration; more after an attempt was lost or failed. */
  attempt: Schema.Int.pipe(Schema.positive()),
})
export type WorkerMachine = typeof WorkerMachine.Type

/** One configuration of the sweep and what it measured. */
export const ConfigResult = Schema.Struct({
  /** Unique inside the sweep, stable across sweeps (for comparisons): e.g. "sim-8x1-b4x4". */
  id: Schema.String.pipe(Schema.minLength(1)),
  /** Short human label for tables and chart legends: e.g. "8:1 b4/4 sim". */
  label: Schema.String.pipe(Schema.minLength(1)),
  ratio: ModalityPair(NonNegInt),
  /** Samples per micro-step, per modality. */
  batch: ModalityPair(NonNegInt),
  /** Adapter name: "sim", "tfjs", ... */
  adapter: Schema.String,
  /** tfjs backend ("cpu", "wasm", "webgpu", "tensorflow"), when the adapter has one. */
  backend: Schema.optional(Schema.String),
  /** Model/size preset name, when the adapter has presets. */
  preset: Schema.optional(Schema.String),
  /** Hardware profile (sim) or device description (real backends). */
  hardware: Schema.optional(Schema.String),
  /** Event stream of the run, so a report row leads back to its log. */
  runId: Schema.String,
  /** Steps measured (after any warm-up steps the bench excludes). */
  steps: NonNegInt,
  /** Wall (or simulated) time of the measured steps, ms. */
  durationMs: NonNegFinite,
  throughput: Schema.Struct({ stepsPerSec: NonNegFinite, samplesPerSec: NonNegFinite }),
  /** Per-step latency statistics per modality, ms; absent for a modality with no steps. */
  latency: Schema.Struct({ visual: Schema.optional(Statistics), text: Schema.optional(Statistics) }),
  /** Absent when no memory was sampled. In bytes of the figure `memoryFigure` names. */
  memory: Schema.optional(MemoryFluctuation),
  /** Which memory figure `memory` and `series.memBytes` are (v2; absent in v1 files and without memory). */
  memoryFigure: Schema.optional(MemoryFigure),
  /** The memory folded onto the schedule's cycle: one median cycle and the trend (v2). */
  memoryCycle: Schema.optional(CycleProfile),
  /** Latency samples beyond the outlier fence per modality (core/bench/noise.ts; v2). */
  latencyOutliers: Schema.optional(
    Schema.Struct({ visual: Schema.optional(NonNegInt), text: Schema.optional(NonNegInt) }),
  ),
  series: StepSeries,
  /** Steps that failed (NaN loss, out of memory, device lost); 0 for a clean run. */
  failedSteps: Schema.optionalWith(NonNegInt, { default: () => 0 }),
  /** Set when the run stopped early: the reason, as recorded in its `RunAborted` event. */
  aborted: Schema.optional(Schema.String),
  /** The sweep worker whose attempt this is (`bench report` across machines), when there was one. */
  worker: Schema.optional(WorkerMachine),
})
export type ConfigResult = typeof ConfigResult.Type

export const Machine = Schema.Struct({
  cpu: Schema.String,
  cores: NonNegInt,
  memBytes: NonNegFinite,
  /** Node.js version, e.g. "v20.20.2". */
  node: Schema.String,
  /** `${process.platform}-${process.arch}`, e.g. "linux-x64". */
  platform: Schema.String,
  /** GPU adapter description, when a GPU backend was used. */
  gpu: Schema.optional(Schema.String),
})
export type Machine = typeof Machine.Type

const SchemaVersion = Schema.Literal(...RESULTS_SCHEMA_VERSIONS).annotations({
  message: (issue) => ({
    message: `unsupported results version ${JSON.stringify(issue.actual)} (this interleave reads versions ${RESULTS_SCHEMA_VERSIONS.join(" and ")})`,
    override: true,
  }),
})

export const SweepResults = Schema.Struct({
  /** 1 or 2; files are written as `RESULTS_SCHEMA_VERSION`. */
  schemaVersion: SchemaVersion,
  name: Schema.String,
  machine: Machine,
  /** ISO 8601 time at which the sweep started. */
  createdAt: Schema.String,
  configs: Schema.Array(ConfigResult),
})
export type SweepResults = typeof SweepResults.Type
export type SweepResultsEncoded = typeof SweepResults.Encoded

const decodeUnknown = Schema.decodeUnknownEither(SweepResults, { onExcessProperty: "error" })

/** Decodes an already-parsed JSON value; the error names the first bad field. */
export const decodeSweepResults = (
  input: unknown,
  source = "results",
): Either.Either<SweepResults, DecodeError> =>
  Either.mapLeft(decodeUnknown(input), (e) => {
    const i = firstIssue(e, "invalid results")
    return new DecodeError({ source, path: "", reason: `${i.path || "(root)"}: ${i.reason}` })
  })

/** Parses JSON text, then decodes. */
export const parseSweepResults = (
  text: string,
  source = "results",
): Either.Either<SweepResults, DecodeError> =>
  Either.flatMap(
    Either.mapLeft(parseJsonText(text), (reason) => new DecodeError({ source, path: "", reason })),
    (json) => decodeSweepResults(json, source),
  )

/** To a JSON-safe value (non-finite numbers become strings); `JSON.stringify` it to write. */
export const encodeSweepResults = (results: SweepResults): SweepResultsEncoded =>
  Schema.encodeSync(SweepResults)(results)

/** The machine the process runs on (GPU left for the caller, which knows its adapter). */
export const currentMachine = (): Machine => {
  const cpus = os.cpus()
  return {
    cpu: cpus[0]?.model.trim() ?? "unknown",
    cores: cpus.length,
    memBytes: os.totalmem(),
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
  }
}

// ---------------------------------------------------------------------------------------------
// Building a ConfigResult from per-step records
// ---------------------------------------------------------------------------------------------

/** What the bench records for each measured step. */
export interface MeasuredStep {
  readonly step: number
  readonly modality: Modality
  readonly durationMs: number
  /** Memory after the step, bytes. */
  readonly memBytes: number
  /** NaN (or non-finite) for a failed step; such steps are left out of the latency statistics. */
  readonly loss: number
  /** Samples processed by the step (batch size of its modality). */
  readonly samples: number
  readonly phase?: string | undefined
  readonly cycle?: number | undefined
  /** The step's loss terms other than `total` (the adapter's `losses`), when recorded. */
  readonly lossTerms?: Readonly<Record<string, number>> | undefined
}

/**
 * Keeps at most about `maxPoints` points (default 600, about one per pixel of a chart) of a long series without hiding the fluctuation: the steps
 * are cut into consecutive buckets, and each bucket keeps, per modality, its lowest- and highest-memory
 * step (so a text step in an 8:1 run is never dropped by a stride that happens to skip it).
 * Series at or under the limit are returned whole.
 */
export const downsampleSeries = (records: ReadonlyArray<MeasuredStep>, maxPoints = 600): StepSeries => {
  const ordered = [...records].sort((a, b) => a.step - b.step)
  let kept: ReadonlyArray<MeasuredStep> = ordered
  if (ordered.length > maxPoints) {
    // Up to 4 points per bucket (2 per modality).
    const buckets = Math.max(1, Math.floor(maxPoints / 4))
    const size = Math.ceil(ordered.length / buckets)
    const out: MeasuredStep[] = []
    for (let start = 0; start < ordered.length; start += size) {
      const picked = new Set<MeasuredStep>()
      for (const modality of ["visual", "text"] as const) {
        let lo: MeasuredStep | undefined
        let hi: MeasuredStep | undefined
        for (let i = start; i < Math.min(start + size, ordered.length); i++) {
          const r = ordered[i]!
          if (r.modality !== modality) continue
          if (!lo || r.memBytes < lo.memBytes) lo = r
          if (!hi || r.memBytes > hi.memBytes) hi = r
        }
        if (lo) picked.add(lo)
        if (hi) picked.add(hi)
      }
      out.push(...[...picked].sort((a, b) => a.step - b.step))
    }
    kept = out
  }
  return {
    step: kept.map((r) => r.step),
    modality: kept.map((r) => r.modality),
    memBytes: kept.map((r) => r.memBytes),
    loss: kept.map((r) => r.loss),
    durationMs: kept.map((r) => r.durationMs),
    sourceSteps: ordered.length,
    ...lossTermsOf(kept),
  }
}

/** The records' loss terms as parallel arrays (NaN where a step lacks a term); none when unrecorded. */
const lossTermsOf = (
  kept: ReadonlyArray<MeasuredStep>,
): { lossTerms?: Record<string, ReadonlyArray<number>> } => {
  const names = [...new Set(kept.flatMap((r) => Object.keys(r.lossTerms ?? {})))]
  if (names.length === 0) return {}
  return {
    lossTerms: Object.fromEntries(names.map((k) => [k, kept.map((r) => r.lossTerms?.[k] ?? Number.NaN)])),
  }
}

export interface ConfigMeta {
  readonly id: string
  readonly label: string
  readonly ratio: { readonly visual: number; readonly text: number }
  readonly batch: { readonly visual: number; readonly text: number }
  readonly adapter: string
  readonly backend?: string | undefined
  readonly preset?: string | undefined
  readonly hardware?: string | undefined
  readonly runId: string
  /** Total time of the measured steps; defaults to the sum of the step durations. */
  readonly durationMs?: number | undefined
  readonly aborted?: string | undefined
  /** Which memory figure the records' `memBytes` are (see core/bench/collect.ts). */
  readonly memoryFigure?: MemoryFigure | undefined
  readonly worker?: WorkerMachine | undefined
}

/** Summarizes a run's step records into a `ConfigResult` (statistics from core/common/statistics.ts). */
export const buildConfigResult = (
  meta: ConfigMeta,
  records: ReadonlyArray<MeasuredStep>,
  options: { readonly maxSeriesPoints?: number } = {},
): ConfigResult => {
  const ok = records.filter((r) => Number.isFinite(r.loss))
  const durationMs = meta.durationMs ?? records.reduce((s, r) => s + r.durationMs, 0)
  const seconds = durationMs / 1000
  const samples = records.reduce((s, r) => s + r.samples, 0)
  const samplesOf = (m: Modality) => ok.filter((r) => r.modality === m).map((r) => r.durationMs)
  const visualMs = samplesOf("visual")
  const textMs = samplesOf("text")
  const visual = latencyStatistics(visualMs)
  const text = latencyStatistics(textMs)
  const points = records.map((r) => ({
    step: r.step,
    modality: r.modality,
    bytes: r.memBytes,
    phase: r.phase,
    cycle: r.cycle,
  }))
  const memory: MemoryFluctuation | undefined = memoryFluctuation(points)
  const memoryCycle = cycleProfile(points)
  return {
    id: meta.id,
    label: meta.label,
    ratio: { visual: meta.ratio.visual, text: meta.ratio.text },
    batch: { visual: meta.batch.visual, text: meta.batch.text },
    adapter: meta.adapter,
    ...(meta.backend !== undefined ? { backend: meta.backend } : {}),
    ...(meta.preset !== undefined ? { preset: meta.preset } : {}),
    ...(meta.hardware !== undefined ? { hardware: meta.hardware } : {}),
    runId: meta.runId,
    steps: records.length,
    durationMs,
    throughput: {
      stepsPerSec: seconds > 0 ? records.length / seconds : 0,
      samplesPerSec: seconds > 0 ? samples / seconds : 0,
    },
    latency: { ...(visual ? { visual } : {}), ...(text ? { text } : {}) },
    ...(memory ? { memory } : {}),
    ...(memory && meta.memoryFigure ? { memoryFigure: meta.memoryFigure } : {}),
    ...(memoryCycle ? { memoryCycle } : {}),
    latencyOutliers: {
      ...(visual ? { visual: outlierCount(visualMs, visual) } : {}),
      ...(text ? { text: outlierCount(textMs, text) } : {}),
    },
    series: downsampleSeries(records, options.maxSeriesPoints),
    failedSteps: records.length - ok.length,
    ...(meta.aborted !== undefined ? { aborted: meta.aborted } : {}),
    ...(meta.worker !== undefined ? { worker: meta.worker } : {}),
  }
}

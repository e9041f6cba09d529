/**
 * Run events: the only record of a run. One stream per run, `RunStarted` first, at most one
 * terminal event (`RunCompleted` / `RunAborted`) last.
 *
 * Every payload is plain JSON (its encoded form equals its decoded form), so the engine writes
 * events without an encode pass; decoding validates whatever comes back from a file or a store.
 * Each type carries a schema version; a log written by a newer version is refused, not guessed at.
 */
import { Data, Either, type ParseResult, Schema } from "effect"
import { firstIssue } from "../common/index.ts"
import { Modality, type StepPlan } from "../schedule/index.ts"
import type { EventEnvelope } from "../store/index.ts"
import {
  ObservedDescriptorSchema,
  ObservedEval,
  ObservedInterval,
  ObservedStats,
  ObservedWindow,
} from "./observed-events.ts"

const Finite = Schema.Finite
const Int = Schema.Int
const Numbers = Schema.Record({ key: Schema.String, value: Finite })

export const AdapterDescriptionSchema = Schema.Struct({
  kind: Schema.String,
  options: Schema.Record({ key: Schema.String, value: Schema.Unknown }),
  info: Schema.Record({ key: Schema.String, value: Schema.String }),
  /**
   * What an exact re-execution depends on, as the adapter reported it (RunStarted v4): framework
   * version and build, BLAS library, thread count, CPU or GPU model. Replay names the entries that
   * differ when it diverges. Absent in older logs and for adapters that report nothing.
   */
  environment: Schema.optional(Schema.Record({ key: Schema.String, value: Schema.String })),
})

/**
 * Memory around a step, each figure named for what it measures. Absent fields are ones the
 * adapter cannot report. The one definition; DESIGN.md's "Memory fluctuation" says how they are
 * used, and `MEMORY_SOURCES` words them for people.
 */
export const MemorySampleSchema = Schema.Struct({
  /** Live bytes after the step: tf.memory().numBytes, torch.cuda.memory_allocated, the sim's resident state. */
  allocatedBytes: Schema.optional(Finite),
  /** The allocator's reserved pool: torch.cuda.memory_reserved, webgpu numBytesAllocatedInGPU. */
  reservedBytes: Schema.optional(Finite),
  /** Peak bytes inside the step: tf.profile peakBytes (sampled), max_memory_allocated reset per step, the sim's step footprint. */
  peakBytes: Schema.optional(Finite),
  /** Device bytes in use after the step: webgpu numBytesInGPU. */
  deviceBytes: Schema.optional(Finite),
  /** Process resident set size after the step. */
  rssBytes: Schema.optional(Finite),
})
export type MemorySample = typeof MemorySampleSchema.Type
export type MemorySource = keyof MemorySample

/** Each memory figure in words, for every table and report that shows one. */
export const MEMORY_SOURCES: Readonly<
  Record<MemorySource, { readonly short: string; readonly long: string }>
> = {
  peakBytes: { short: "in-step peak", long: "peak bytes inside the step" },
  allocatedBytes: { short: "allocated", long: "live (allocated) bytes after the step" },
  reservedBytes: { short: "reserved", long: "bytes reserved by the allocator's pool" },
  deviceBytes: { short: "device", long: "device bytes in use after the step" },
  rssBytes: { short: "RSS", long: "process resident set size" },
}

/** Who wrote a run (or resumed it): enough to tell later whether that process is still alive. */
export const WriterSchema = Schema.Struct({
  host: Schema.String,
  pid: Int,
  /** When the writing process started, ms since the epoch (tells a reused pid apart). */
  processStartedAt: Finite,
})
export type Writer = typeof WriterSchema.Type

export const RunStarted = Schema.TaggedStruct("RunStarted", {
  runId: Schema.String,
  /** The decoded spec, re-encoded: everything needed to re-plan the run; null for an observed run. */
  spec: Schema.Unknown,
  specHash: Schema.String,
  /** Where the spec came from (a scenario file, or `fork of RUN`). */
  source: Schema.String,
  /** Planned length: the spec's total, or less with `--steps`. */
  steps: Int,
  seed: Int,
  adapter: AdapterDescriptionSchema,
  versions: Schema.Record({ key: Schema.String, value: Schema.String }),
  startedAt: Finite,
  /** Engine settings that shape the event sequence; resume and replay reuse them. */
  engine: Schema.Struct({ evalEvery: Int, checkpointEvery: Int }),
  /** Set on forks: the parent run and the first step that the fork ran itself. */
  forkOf: Schema.optional(Schema.Struct({ runId: Schema.String, atStep: Int })),
  /** The process that started the run (absent in logs from other tools). */
  writer: Schema.optional(WriterSchema),
  /** Set on runs imported from a foreign log (observed-events.ts): what the log is and carries. */
  observed: Schema.optional(ObservedDescriptorSchema),
})
export type RunStarted = typeof RunStarted.Type

/** Whether a run was observed in a foreign log rather than made by the engine (no spec, no plan). */
export const isObserved = (e: RunStarted): boolean => e.observed !== undefined

export const PhaseStarted = Schema.TaggedStruct("PhaseStarted", {
  phase: Schema.String,
  index: Int,
  step: Int,
})
export type PhaseStarted = typeof PhaseStarted.Type

export const StepCompleted = Schema.TaggedStruct("StepCompleted", {
  step: Int,
  phase: Schema.String,
  phaseStep: Int,
  modality: Modality,
  cycle: Int,
  position: Int,
  micro: Int,
  update: Schema.Boolean,
  lr: Numbers,
  losses: Numbers,
  /** How long the step took: a duration, never negative. */
  durationMs: Finite.pipe(
    Schema.nonNegative({ message: (i) => `expected a duration in ms (>= 0), got ${String(i.actual)}` }),
  ),
  samples: Int,
  memory: MemorySampleSchema,
})
export type StepCompleted = typeof StepCompleted.Type

export const StepFailureKindSchema = Schema.Literal(
  "nan-loss",
  "out-of-memory",
  "device-lost",
  "adapter-error",
)

export const StepFailed = Schema.TaggedStruct("StepFailed", {
  step: Int,
  phase: Schema.String,
  modality: Modality,
  kind: StepFailureKindSchema,
  message: Schema.String,
})
export type StepFailed = typeof StepFailed.Type

export const EvalCompleted = Schema.TaggedStruct("EvalCompleted", {
  /** The last step trained before the evaluation. */
  step: Int,
  metric: Schema.String,
  values: Schema.Struct({ visual: Finite, text: Finite }),
  chance: Schema.optional(Finite),
})
export type EvalCompleted = typeof EvalCompleted.Type

export const Checkpointed = Schema.TaggedStruct("Checkpointed", {
  /** The last step whose effect the checkpoint holds. */
  step: Int,
  file: Schema.String,
})
export type Checkpointed = typeof Checkpointed.Type

export const RunCompleted = Schema.TaggedStruct("RunCompleted", {
  steps: Int,
  completedAt: Finite,
})
export type RunCompleted = typeof RunCompleted.Type

/** A run continued by `interleave resume` (or a fork starting its own steps). */
export const RunResumed = Schema.TaggedStruct("RunResumed", {
  /** The first step this writer runs. */
  fromStep: Int,
  /** The checkpoint the adapter restored, if any; the steps after it up to fromStep were re-run unrecorded. */
  checkpoint: Schema.optional(Schema.Struct({ step: Int, file: Schema.String })),
  writer: WriterSchema,
  resumedAt: Finite,
})
export type RunResumed = typeof RunResumed.Type

/** A run stopped by a signal: not terminal, `resume` continues it. */
export const RunInterrupted = Schema.TaggedStruct("RunInterrupted", {
  /** The last step recorded before the stop, -1 before the first. */
  lastStep: Int,
  reason: Schema.String,
  interruptedAt: Finite,
})
export type RunInterrupted = typeof RunInterrupted.Type

export const RunAborted = Schema.TaggedStruct("RunAborted", {
  /** The step that failed, when a step failure ended the run. */
  step: Schema.optional(Int),
  reason: Schema.String,
  abortedAt: Finite,
})
export type RunAborted = typeof RunAborted.Type

export const RunEvent = Schema.Union(
  RunStarted,
  PhaseStarted,
  StepCompleted,
  StepFailed,
  EvalCompleted,
  Checkpointed,
  RunResumed,
  RunInterrupted,
  RunCompleted,
  RunAborted,
  ObservedWindow,
  ObservedEval,
  ObservedInterval,
  ObservedStats,
)
export type RunEvent = typeof RunEvent.Type
export type RunEventType = RunEvent["_tag"]

/** Schema version of each event type. Bump on an incompatible payload change and add a migration. */
export const EVENT_VERSIONS: Readonly<Record<RunEventType, number>> = {
  RunStarted: 4,
  PhaseStarted: 1,
  StepCompleted: 2,
  StepFailed: 1,
  EvalCompleted: 1,
  Checkpointed: 1,
  RunResumed: 1,
  RunInterrupted: 1,
  RunCompleted: 1,
  RunAborted: 1,
  ObservedWindow: 1,
  ObservedEval: 1,
  ObservedInterval: 1,
  ObservedStats: 1,
}

type Upcast = (data: Record<string, unknown>) => Record<string, unknown>

/**
 * Migrations of older payloads, per type and from-version, applied in order on read: logs written
 * by earlier releases stay readable, and every reader sees the current shape only.
 */
const UPCASTS: Partial<Record<RunEventType, Readonly<Record<number, Upcast>>>> = {
  // v2 added the optional `writer`, v3 the optional `observed`, v4 the optional
  // `adapter.environment`: older payloads are valid as they are.
  RunStarted: { 1: (d) => d, 2: (d) => d, 3: (d) => d },
  // v2 names memory figures for what they measure: tf.memory() bytes are live (allocated) bytes,
  // webgpu's pool is what the allocator reserved.
  StepCompleted: {
    1: (d) => {
      const m = (d.memory ?? {}) as Record<string, unknown>
      const { logicalBytes, deviceAllocatedBytes, ...rest } = m
      const memory: Record<string, unknown> = { ...rest }
      if (logicalBytes !== undefined) memory.allocatedBytes = logicalBytes
      if (deviceAllocatedBytes !== undefined) memory.reservedBytes = deviceAllocatedBytes
      return { ...d, memory }
    },
  },
}

/** Brings a payload of an older version to the current one; undefined when there is no path. */
export const upcast = (type: RunEventType, version: number, data: unknown): unknown | undefined => {
  const target = EVENT_VERSIONS[type]
  let d = data
  for (let v = version; v < target; v++) {
    const step = UPCASTS[type]?.[v]
    if (!step || typeof d !== "object" || d === null) return undefined
    d = step(d as Record<string, unknown>)
  }
  return d
}

/** The step an event belongs to (the step it ran, failed, evaluated after or checkpointed), if any. */
export const stepOf = (e: RunEvent): number | undefined => {
  switch (e._tag) {
    case "PhaseStarted":
    case "StepCompleted":
    case "StepFailed":
    case "EvalCompleted":
    case "Checkpointed":
      return e.step
    case "RunAborted":
      return e.step
    case "ObservedWindow":
      return e.last
    default:
      return undefined
  }
}

/** The step of a step event (StepCompleted / StepFailed), the only ones the log's step order rule reads. */
export const stepEventStep = (e: RunEvent): number | undefined =>
  e._tag === "StepCompleted" || e._tag === "StepFailed" ? e.step : undefined

export const toEnvelope = (e: RunEvent): EventEnvelope => ({
  type: e._tag,
  version: EVENT_VERSIONS[e._tag],
  data: e,
})

export class EventDecodeError extends Data.TaggedError("EventDecodeError")<{
  readonly where: string
  readonly reason: string
}> {
  override get message(): string {
    return `${this.where}: ${this.reason}`
  }
}

const validators: Record<RunEventType, (u: unknown) => Either.Either<RunEvent, ParseResult.ParseError>> = {
  RunStarted: Schema.decodeUnknownEither(RunStarted, { onExcessProperty: "error" }),
  PhaseStarted: Schema.decodeUnknownEither(PhaseStarted, { onExcessProperty: "error" }),
  StepCompleted: Schema.decodeUnknownEither(StepCompleted, { onExcessProperty: "error" }),
  StepFailed: Schema.decodeUnknownEither(StepFailed, { onExcessProperty: "error" }),
  EvalCompleted: Schema.decodeUnknownEither(EvalCompleted, { onExcessProperty: "error" }),
  Checkpointed: Schema.decodeUnknownEither(Checkpointed, { onExcessProperty: "error" }),
  RunResumed: Schema.decodeUnknownEither(RunResumed, { onExcessProperty: "error" }),
  RunInterrupted: Schema.decodeUnknownEither(RunInterrupted, { onExcessProperty: "error" }),
  RunCompleted: Schema.decodeUnknownEither(RunCompleted, { onExcessProperty: "error" }),
  RunAborted: Schema.decodeUnknownEither(RunAborted, { onExcessProperty: "error" }),
  ObservedWindow: Schema.decodeUnknownEither(ObservedWindow, { onExcessProperty: "error" }),
  ObservedEval: Schema.decodeUnknownEither(ObservedEval, { onExcessProperty: "error" }),
  ObservedInterval: Schema.decodeUnknownEither(ObservedInterval, { onExcessProperty: "error" }),
  ObservedStats: Schema.decodeUnknownEither(ObservedStats, { onExcessProperty: "error" }),
}

/**
 * Decodes an envelope. `validate: false` only checks the type and version: for our own SQLite store,
 * whose rows this code wrote, where a full schema pass per event would dominate replay time.
 */
export const decodeEvent = (
  env: EventEnvelope,
  where: string,
  options: { readonly validate: boolean } = { validate: true },
): Either.Either<RunEvent, EventDecodeError> => {
  const type = env.type as RunEventType
  const known = EVENT_VERSIONS[type]
  if (known === undefined)
    return Either.left(new EventDecodeError({ where, reason: `unknown event type "${env.type}"` }))
  let data = env.data
  if (env.version !== known) {
    const up =
      Number.isInteger(env.version) && env.version < known ? upcast(type, env.version, data) : undefined
    if (up === undefined)
      return Either.left(
        new EventDecodeError({
          where,
          reason: `${env.type} has schema version ${env.version}; this interleave reads versions 1..${known}${env.version > known ? " (written by a newer interleave?)" : ""}`,
        }),
      )
    data = up
  }
  if (!options.validate) return Either.right(data as RunEvent)
  if (typeof data !== "object" || data === null || (data as { _tag?: unknown })._tag !== type)
    return Either.left(
      new EventDecodeError({ where, reason: `payload of ${env.type} must be an object with _tag "${type}"` }),
    )
  return Either.mapLeft(validators[type](data), (e) => {
    const { path, reason } = firstIssue(e)
    return new EventDecodeError({ where, reason: `${env.type}${path ? `.${path}` : ""}: ${reason}` })
  })
}

/** The StepCompleted payload for a plan and its outcome (no copying of the plan's lr object). */
export const stepCompleted = (
  plan: StepPlan,
  outcome: {
    readonly losses: Readonly<Record<string, number>>
    readonly durationMs: number
    readonly samples: number
    readonly memory: StepCompleted["memory"]
  },
): StepCompleted => ({
  // Field by field, not a spread of planFields: this runs for every step of every run, and one
  // object per step is what the engine's sim throughput is made of.
  _tag: "StepCompleted",
  step: plan.step,
  phase: plan.phase,
  phaseStep: plan.phaseStep,
  modality: plan.modality,
  cycle: plan.cycle,
  position: plan.position,
  micro: plan.micro,
  update: plan.update,
  lr: plan.lr,
  losses: outcome.losses,
  durationMs: outcome.durationMs,
  samples: outcome.samples,
  memory: outcome.memory,
})

export { canonicalJson, hashJson } from "../common/hash.ts"

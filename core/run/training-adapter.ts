/**
 * TrainingAdapter: the one seam between the engine and whatever executes a step.
 *
 * The engine never knows which adapter it drives. `sim` computes outcomes from a cost model;
 * `tfjs` trains a real model. An adapter opens a session for one run inside a Scope, so every
 * tensor, backend and GPU device it holds is released when the run ends, however it ends.
 */
import { Context, Data, type Effect, type Layer, type Scope } from "effect"
import type { MemorySample } from "../log/index.ts"
import type { Modality, ScheduleSpec, StepPlan } from "../schedule/index.ts"

export interface StepOutcome {
  /** Loss per component (e.g. cls, box, align) plus `total`. */
  readonly losses: Readonly<Record<string, number>>
  /** Step time: measured wall time for real adapters, simulated time for `sim`. */
  readonly durationMs: number
  readonly samples: number
  readonly memory: MemorySample
}

export type StepFailureKind = "nan-loss" | "out-of-memory" | "device-lost" | "adapter-error"

/** A step that failed; the engine records it as a `StepFailed` event and stops the run cleanly. */
export class StepFailure extends Data.TaggedError("StepFailure")<{
  readonly kind: StepFailureKind
  readonly message: string
}> {}

/** The adapter could not start (unknown backend, bad profile, missing package). Bad input: exit 2. */
export class AdapterUnavailable extends Data.TaggedError("AdapterUnavailable")<{
  readonly message: string
}> {}

/** A per-modality validation metric (e.g. recall at IoU 0.5 for the prompted class). */
export interface EvalResult {
  readonly metric: string
  readonly values: Readonly<Record<Modality, number>>
  /** Value a random predictor would get, so readers can tell learning from luck. */
  readonly chance?: number | undefined
}

/** What RunStarted records about the adapter, enough to re-open the same one for replay. */
export interface AdapterDescription {
  readonly kind: string
  /** The options it was opened with (backend, preset, hardware profile, ...), JSON only. */
  readonly options: Readonly<Record<string, unknown>>
  /** Human-readable facts (device name, backend version); not used to re-open. */
  readonly info: Readonly<Record<string, string>>
  /**
   * What an exact re-execution depends on besides the run's inputs, as the adapter sees it: the
   * framework's version and build, the BLAS library, the thread count, the CPU or GPU model.
   * Recorded in RunStarted; `replay` names the entries that differ when it diverges.
   */
  readonly environment?: Readonly<Record<string, string>> | undefined
}

/**
 * How closely a re-execution of the same run reproduces it, for `replay`:
 *  - "exact": every recorded result (losses, evaluations) comes back bit for bit;
 *  - `relTolerance`: results agree within this relative tolerance (CUDA kernels with atomics, a
 *    trainer that says it is not bit-reproducible); `durationRelTolerance`, when set, also compares
 *    each step's measured duration within it (otherwise measured durations are not compared).
 * The schedule (step, phase, modality, update, lr) is always compared exactly. Absent: the
 * engine's default (exact with measurements for a stateless adapter, 1e-6 on results otherwise).
 */
export type Reproducibility =
  | "exact"
  | { readonly relTolerance: number; readonly durationRelTolerance?: number | undefined }

export interface TrainingSession {
  readonly description: AdapterDescription
  /** What replay may expect of a re-execution; see `Reproducibility`. */
  readonly reproducible?: Reproducibility | undefined
  /**
   * True when outcomes are a pure function of (spec, plan): resume needs no checkpoint and no
   * fast-forward (the sim). False when state lives in the session (real weights).
   */
  readonly stateless: boolean
  readonly step: (plan: StepPlan) => Effect.Effect<StepOutcome, StepFailure>
  /**
   * Optional synchronous twin of `step` for adapters that compute outcomes without I/O (the sim).
   * The engine prefers it: an Effect per step costs more than the sim's whole step.
   */
  readonly stepSync?: ((plan: StepPlan) => StepOutcome | StepFailure) | undefined
  /** Optional held-out evaluation; the engine calls it every K steps when present. */
  readonly evaluate?: (() => Effect.Effect<EvalResult, StepFailure>) | undefined
  /** Saves weights and optimizer state; only called right after a step with `update: true`. */
  readonly checkpoint: (file: string) => Effect.Effect<void, StepFailure>
  readonly restore: (file: string) => Effect.Effect<void, StepFailure>
}

export interface OpenOptions {
  readonly spec: ScheduleSpec
  /** Adapter-specific options (as recorded in AdapterDescription.options). */
  readonly options: Readonly<Record<string, unknown>>
}

export interface TrainingAdapterShape {
  readonly kind: string
  readonly open: (opts: OpenOptions) => Effect.Effect<TrainingSession, AdapterUnavailable, Scope.Scope>
}

export class TrainingAdapter extends Context.Tag("interleave/TrainingAdapter")<
  TrainingAdapter,
  TrainingAdapterShape
>() {}

/**
 * Adapters by kind, for work that opens several (a sweep over sim and tfjs targets). Provided by
 * the CLI from adapters/, so core never imports a concrete adapter.
 */
export class AdapterRegistry extends Context.Tag("interleave/AdapterRegistry")<
  AdapterRegistry,
  { readonly layer: (kind: string) => Layer.Layer<TrainingAdapter, AdapterUnavailable> }
>() {}

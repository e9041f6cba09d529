/**
 * SweepQueue: the configurations of a sweep, claimed by workers on any number of machines with a
 * lease, each run as a numbered attempt until one attempt finishes it.
 *
 * - `enqueue` is idempotent: a sweep is keyed by its name and a hash of its expanded
 *   configurations, so every worker may enqueue the same sweep; the first one creates it.
 * - `claim` hands a worker one configuration that is pending, or whose lease expired. Two
 *   claimers never get the same configuration: the PostgreSQL queue locks the row it takes
 *   (`FOR UPDATE SKIP LOCKED`), the memory queue takes a lock around the whole claim.
 *   Before an expired lease is taken over, the caller's `reclaim` judges the dead attempt (it
 *   marks the attempt's run interrupted): `alive` leaves it be, `finished` records the
 *   configuration as done by that attempt, `lost` lets the claim go on with a new attempt.
 * - `renew` extends a lease, as long as the claim is still the configuration's current attempt
 *   (an expired lease that nobody took over can be renewed); `complete` records the outcome and is
 *   final; `fail` ends an attempt without finishing the configuration, for another attempt
 *   (`retry`) or for good.
 * - Lease times are the queue's clock: the database server's for PostgreSQL, so the machines'
 *   clocks never need to agree.
 */
import { Context, Data, type Effect } from "effect"

/** Where an attempt ran: recorded when it is claimed. */
export interface WorkerInfo {
  /** Unique per worker process: `host/pid/random`. */
  readonly id: string
  readonly host: string
  readonly pid: number
  /** CPU model, cores, platform and Node.js version, as `currentMachine` reads them. */
  readonly cpu: string
  readonly cores: number
  readonly platform: string
  readonly node: string
}

export interface SweepSpec {
  /** `NAME@HASH`: the sweep's name and a hash of its expanded configurations. */
  readonly key: string
  readonly name: string
  readonly hash: string
  /** Where it came from (the sweep file as the first worker named it). */
  readonly source: string
  /** Configuration ids in the sweep's order. */
  readonly configs: ReadonlyArray<string>
}

export interface SweepEntry {
  readonly key: string
  readonly name: string
  readonly hash: string
  readonly source: string
  readonly configCount: number
  /** Queue time, ms since the epoch. */
  readonly createdAt: number
}

/** A configuration's state: pending and running are open; the other three are final. */
export type ConfigState = "pending" | "running" | "completed" | "aborted" | "failed"
export const FINAL_STATES: ReadonlySet<ConfigState> = new Set(["completed", "aborted", "failed"])

/**
 * How an attempt ended: completed / aborted (the run's own end; final for the configuration),
 * released (stopped on purpose, e.g. by a signal, for another attempt), lost (its worker lost
 * the lease: it died, or stopped renewing), failed (an error outside the run: see the note).
 */
export type AttemptOutcome = "running" | "completed" | "aborted" | "released" | "lost" | "failed"

export interface ConfigRow {
  readonly configId: string
  readonly position: number
  readonly state: ConfigState
  /** Attempts claimed so far; the current (or finishing) attempt's number. */
  readonly attempts: number
  /** The current or finishing attempt's run. */
  readonly runId: string | undefined
  /** The current attempt's worker while running. */
  readonly leaseOwner: string | undefined
  readonly leaseExpiresAt: number | undefined
}

export interface AttemptRecord {
  readonly configId: string
  readonly attempt: number
  readonly runId: string
  readonly worker: WorkerInfo
  readonly claimedAt: number
  readonly endedAt: number | undefined
  readonly outcome: AttemptOutcome
  /** The adapter's device or hardware description, recorded when the attempt ends. */
  readonly device: string | undefined
  readonly note: string | undefined
}

export interface Claim {
  readonly sweep: string
  readonly configId: string
  readonly attempt: number
  readonly runId: string
  readonly worker: WorkerInfo
  readonly leaseExpiresAt: number
  /** The attempt this one takes over from (its lease expired), when there was one. */
  readonly previous: AttemptRecord | undefined
}

/** The verdict on an attempt whose lease expired (see `claim`). */
export type Reclaim =
  | { readonly _tag: "alive" }
  | { readonly _tag: "lost"; readonly note: string }
  | { readonly _tag: "finished"; readonly outcome: "completed" | "aborted"; readonly note: string }

export interface ClaimOptions<E> {
  readonly leaseMs: number
  /** The run id of a new attempt. */
  readonly runIdOf: (configId: string, attempt: number) => string
  /**
   * Judges an attempt whose lease expired, before it is taken over; runs while the claim holds
   * the configuration (in the claim's transaction, for PostgreSQL). Default: lost.
   */
  readonly reclaim?: ((expired: AttemptRecord) => Effect.Effect<Reclaim, E>) | undefined
}

export interface SweepStatus {
  readonly sweep: SweepEntry
  readonly configs: ReadonlyArray<ConfigRow>
  /** Every attempt of every configuration, in claim order. */
  readonly attempts: ReadonlyArray<AttemptRecord>
  /** The queue's clock when it was read (for lease ages). */
  readonly now: number
}

export class QueueError extends Data.TaggedError("QueueError")<{
  readonly message: string
  readonly kind: "bad-input" | "unavailable"
  readonly cause?: unknown
}> {}

export interface SweepQueueShape {
  /** Creates the sweep unless it exists (same key); `created` says which. */
  readonly enqueue: (
    spec: SweepSpec,
  ) => Effect.Effect<{ readonly created: boolean; readonly sweep: SweepEntry }, QueueError>
  /** Sweeps in the queue, newest first; with a name, only that sweep's versions. */
  readonly sweeps: (name?: string) => Effect.Effect<ReadonlyArray<SweepEntry>, QueueError>
  /** One configuration for `worker`, or undefined when none can be claimed now. */
  readonly claim: <E = never>(
    sweep: string,
    worker: WorkerInfo,
    options: ClaimOptions<E>,
  ) => Effect.Effect<Claim | undefined, QueueError | E>
  /** Extends the lease to `leaseMs` from now; false when the claim is no longer current. */
  readonly renew: (claim: Claim, leaseMs: number) => Effect.Effect<boolean, QueueError>
  /** Finishes the configuration with this attempt's outcome; false when the claim is no longer current. */
  readonly complete: (
    claim: Claim,
    result: {
      readonly outcome: "completed" | "aborted"
      readonly device?: string | undefined
      readonly note?: string | undefined
    },
  ) => Effect.Effect<boolean, QueueError>
  /**
   * Ends the attempt without finishing the configuration: pending again for another attempt
   * (`retry`), else failed for good. False when the claim is no longer current.
   */
  readonly fail: (
    claim: Claim,
    result: {
      readonly outcome: "released" | "failed"
      readonly retry: boolean
      readonly note: string
      readonly device?: string | undefined
    },
  ) => Effect.Effect<boolean, QueueError>
  /** The sweep's configurations and attempts; undefined when there is no such sweep. */
  readonly list: (sweep: string) => Effect.Effect<SweepStatus | undefined, QueueError>
}

export class SweepQueue extends Context.Tag("interleave/SweepQueue")<SweepQueue, SweepQueueShape>() {}

/** Whether every configuration of the sweep is final. */
export const sweepDone = (status: SweepStatus): boolean =>
  status.configs.every((c) => FINAL_STATES.has(c.state))

/** Counts per state, for progress lines. */
export const stateCounts = (status: SweepStatus): Record<ConfigState, number> => {
  const out: Record<ConfigState, number> = { pending: 0, running: 0, completed: 0, aborted: 0, failed: 0 }
  for (const c of status.configs) out[c.state]++
  return out
}

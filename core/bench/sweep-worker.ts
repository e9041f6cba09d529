/**
 * Sweep worker mode (`interleave bench SWEEP --store postgres://... --worker`): any number of
 * processes on any number of machines share one sweep through the SweepQueue and one event store.
 *
 * A worker enqueues the sweep (idempotent: the first one creates it), then claims configurations
 * one at a time and runs each as a recorded run of its own (`bench-NAME-HASH-CONFIG-aN`, one per
 * attempt), while a fiber renews the lease every few seconds. It records where it ran (host,
 * CPU, the adapter's device or hardware) with the attempt.
 *
 * A worker that dies stops renewing, and its lease expires. The next claimer judges the dead
 * attempt inside its claim (`judgeExpiredAttempt`): a run that had completed or aborted counts as
 * the configuration's outcome; a run already interrupted is lost; otherwise it appends
 * RunInterrupted ("worker lost its lease") to the run with the engine's optimistic version
 * check. If that append conflicts, the run's writer is alive (it appended since), and the lease
 * is not taken. The partial run stays in the store, interrupted, and the configuration runs again
 * as a new attempt. A worker whose renewal finds its claim taken over stops its run (the engine
 * records the interruption, unless the new claimer already did) and goes on to the next one.
 *
 * A worker exits when nothing is left to claim and nothing runs elsewhere; with `wait` it keeps
 * polling, re-reading the sweep file, so that a changed sweep (a new sweep) is picked up.
 */
import { hostname } from "node:os"
import { Clock, Data, Effect, Either } from "effect"
import { formatNumber, type InputError } from "../common/index.ts"
import { toEnvelope } from "../log/index.ts"
import {
  type Claim,
  type ConfigState,
  type Reclaim,
  type SweepEntry,
  SweepQueue,
  type SweepStatus,
  stateCounts,
  sweepDone,
  type WorkerInfo,
} from "../queue/index.ts"
import { type Progress, type RunSummary, summarizeLog } from "../run/index.ts"
import { EventStore, type StoreError, VersionConflict } from "../store/index.ts"
import { type ConfigResult, currentMachine } from "./results.ts"
import type { BenchConfig } from "./sweep.ts"
import { attemptRunId, type SweepIdentity, sweepIdentity } from "./sweep-key.ts"
import { type LoadedSweep, runConfig } from "./sweep-run.ts"

/** The reason recorded in the RunInterrupted event of an attempt whose worker lost its lease. */
export const LEASE_LOST_REASON = "worker lost its lease"

/** Attempts a configuration gets when runs fail outside the training (an error, not an abort). */
export const DEFAULT_MAX_ATTEMPTS = 3

/** This process as a worker: host, pid and a random suffix (two workers may share a pid namespace). */
export const currentWorker = (): WorkerInfo => {
  const m = currentMachine()
  const random = Math.floor(Math.random() * 0x1_0000_0000)
    .toString(16)
    .padStart(8, "0")
  return {
    id: `${hostname()}/${process.pid}/${random}`,
    host: hostname(),
    pid: process.pid,
    cpu: m.cpu,
    cores: m.cores,
    platform: m.platform,
    node: m.node,
  }
}

/** What the adapter ran on, in words: `sim h100-sxm (simulated)`, `tfjs/webgpu NVIDIA H200`. */
export const deviceText = (adapter: string, info: Readonly<Record<string, string>>): string =>
  adapter === "sim"
    ? `sim ${info.hardware ?? "?"} (simulated)`
    : [`${adapter}${info.backend ? `/${info.backend}` : ""}`, info.device].filter((x) => x).join(" ")

/**
 * Judges an attempt whose lease expired (see the module comment): `finished` when its run had
 * ended, `lost` when it is (now) interrupted, `alive` when its writer appended in the meantime.
 */
export const judgeExpiredAttempt = (runId: string): Effect.Effect<Reclaim, StoreError, EventStore> =>
  Effect.gen(function* () {
    const store = yield* EventStore
    if ((yield* store.version(runId)) === 0)
      return { _tag: "lost", note: `its worker lost the lease before run ${runId} started` } as const
    const read = yield* Effect.either(summarizeLog(runId))
    if (Either.isLeft(read)) {
      if (read.left._tag === "StoreError") return yield* read.left
      return { _tag: "lost", note: `run ${runId} could not be read (${read.left.message})` } as const
    }
    const log = read.right
    const status = log.state.status
    if (status === "completed" || status === "aborted")
      return {
        _tag: "finished",
        outcome: status,
        note: `its worker lost the lease after run ${runId} had ${status}`,
      } as const
    if (status === "interrupted")
      return {
        _tag: "lost",
        note: `run ${runId} was already interrupted (${log.state.lastInterruption?.reason ?? "no reason"})`,
      } as const
    const lastStep = log.state.lastStep
    const appended = yield* Effect.either(
      store.append(
        runId,
        [
          toEnvelope({
            _tag: "RunInterrupted",
            lastStep,
            reason: LEASE_LOST_REASON,
            interruptedAt: yield* Clock.currentTimeMillis,
          }),
        ],
        log.version,
      ),
    )
    if (Either.isLeft(appended)) {
      if (appended.left instanceof VersionConflict) return { _tag: "alive" } as const
      return yield* appended.left
    }
    return {
      _tag: "lost",
      note: `run ${runId} marked interrupted after step ${lastStep} (${LEASE_LOST_REASON})`,
    } as const
  })

class LeaseLost extends Data.TaggedError("LeaseLost")<{ readonly message: string }> {}

export interface WorkerHooks {
  /** The sweep this worker works on: created by it or found; `others` are the name's other versions. */
  readonly onSweep?: (e: {
    readonly created: boolean
    readonly sweep: SweepEntry
    readonly others: ReadonlyArray<{
      readonly sweep: SweepEntry
      readonly counts: Record<ConfigState, number>
    }>
  }) => Effect.Effect<void>
  /** A configuration claimed: returns its progress callback (and a `done` to clear it). */
  readonly onClaim?: (
    claim: Claim,
    config: BenchConfig,
  ) => { readonly update: (p: Progress) => void; readonly done: () => void } | undefined
  /** This worker's attempt finished the run (completed or aborted); `counted`: the queue took it. */
  readonly onConfigDone?: (e: {
    readonly claim: Claim
    readonly config: BenchConfig
    readonly summary: RunSummary
    readonly result: ConfigResult
    readonly counted: boolean
  }) => Effect.Effect<void>
  /** This worker's attempt ended without finishing the configuration. */
  readonly onAttemptEnded?: (e: {
    readonly claim: Claim
    readonly outcome: "lost" | "failed" | "released"
    readonly retry: boolean
    readonly note: string
  }) => Effect.Effect<void>
  /** Nothing to claim, configurations still running elsewhere: the worker polls. */
  readonly onWaiting?: (status: SweepStatus) => Effect.Effect<void>
}

export interface WorkerOptions {
  readonly leaseMs: number
  /** Default: a third of the lease, between 0.2 and 5 s. */
  readonly renewEveryMs?: number | undefined
  /** How often to look again when nothing can be claimed; default a quarter of the lease, 0.2-2 s. */
  readonly pollMs?: number | undefined
  /** Keep polling once the sweep is done, re-reading the sweep with `reload`. */
  readonly wait?: boolean | undefined
  readonly reload?: (() => Effect.Effect<LoadedSweep, InputError>) | undefined
  readonly checkpointDir: string
  readonly maxAttempts?: number | undefined
  readonly interruptReason?: (() => string) | undefined
  readonly hooks?: WorkerHooks | undefined
  /** This worker's record (tests); default `currentWorker()`. */
  readonly worker?: WorkerInfo | undefined
}

export interface WorkerAttempt {
  readonly configId: string
  readonly attempt: number
  readonly runId: string
  readonly outcome: "completed" | "aborted" | "lost" | "failed" | "released" | "superseded"
  readonly note?: string | undefined
}

export interface WorkerSummary {
  readonly worker: WorkerInfo
  readonly identity: SweepIdentity
  /** The attempts this worker ran. */
  readonly attempts: ReadonlyArray<WorkerAttempt>
  /** The sweep as the worker left it. */
  readonly status: SweepStatus
}

const clamp = (x: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, x))

/** Runs as a sweep worker until the sweep is done (see the module comment). */
export const runWorker = (first: LoadedSweep, options: WorkerOptions) =>
  Effect.gen(function* () {
    const queue = yield* SweepQueue
    const store = yield* EventStore
    const worker = options.worker ?? currentWorker()
    const leaseMs = options.leaseMs
    const renewEvery = options.renewEveryMs ?? clamp(leaseMs / 3, 200, 5_000)
    const pollMs = options.pollMs ?? clamp(leaseMs / 4, 200, 2_000)
    const maxAttempts = options.maxAttempts ?? DEFAULT_MAX_ATTEMPTS
    const hooks = options.hooks ?? {}
    const attempts: WorkerAttempt[] = []

    const enter = (loaded: LoadedSweep) =>
      Effect.gen(function* () {
        const identity = yield* sweepIdentity(loaded)
        const entered = yield* queue.enqueue({
          key: identity.key,
          name: identity.name,
          hash: identity.hash,
          source: loaded.file,
          configs: loaded.configs.map((c) => c.id),
        })
        const others = []
        for (const s of yield* queue.sweeps(identity.name)) {
          if (s.key === identity.key) continue
          const st = yield* queue.list(s.key)
          if (st) others.push({ sweep: s, counts: stateCounts(st) })
        }
        if (hooks.onSweep) yield* hooks.onSweep({ created: entered.created, sweep: entered.sweep, others })
        return identity
      })

    /** Runs one claimed configuration while renewing its lease; records how the attempt ended. */
    const work = (loaded: LoadedSweep, claim: Claim) =>
      Effect.gen(function* () {
        const config = loaded.configs.find((c) => c.id === claim.configId)
        if (!config) {
          const note = `configuration ${claim.configId} is not in ${loaded.file}`
          yield* queue.fail(claim, { outcome: "failed", retry: true, note })
          attempts.push({ ...claim, outcome: "failed", note })
          return
        }
        let leaseLost = false
        const renewLoop = Effect.gen(function* () {
          let deadline = (yield* Clock.currentTimeMillis) + leaseMs
          for (;;) {
            yield* Effect.sleep(renewEvery)
            const renewed = yield* Effect.either(queue.renew(claim, leaseMs))
            const now = yield* Clock.currentTimeMillis
            if (Either.isRight(renewed) && renewed.right) {
              deadline = now + leaseMs
              continue
            }
            if (Either.isRight(renewed) || now >= deadline) {
              leaseLost = true
              return yield* new LeaseLost({
                message: Either.isRight(renewed)
                  ? "another worker took the configuration over"
                  : `could not renew the lease: ${renewed.left.message}`,
              })
            }
          }
        })
        const progress = hooks.onClaim?.(claim, config)
        const run = runConfig(loaded, config, claim.runId, {
          checkpointDir: options.checkpointDir,
          onProgress: progress?.update,
          interruptReason: () =>
            leaseLost ? LEASE_LOST_REASON : (options.interruptReason?.() ?? "interrupted"),
        }).pipe(Effect.either, Effect.ensuring(Effect.sync(() => progress?.done())))
        const ended = (outcome: "lost" | "failed" | "released", retry: boolean, note: string) =>
          Effect.gen(function* () {
            attempts.push({ ...claim, outcome, note })
            if (hooks.onAttemptEnded) yield* hooks.onAttemptEnded({ claim, outcome, retry, note })
          })
        const raced = yield* Effect.either(Effect.raceFirst(run, renewLoop)).pipe(
          // Stopped by a signal: the engine has recorded the interruption; another worker may go on.
          Effect.onInterrupt(() =>
            queue
              .fail(claim, {
                outcome: "released",
                retry: true,
                note: options.interruptReason?.() ?? "interrupted",
              })
              .pipe(Effect.ignore),
          ),
        )
        if (Either.isLeft(raced)) return yield* ended("lost", false, raced.left.message)
        const outcome = raced.right
        const retry = claim.attempt < maxAttempts
        if (Either.isLeft(outcome)) {
          const e = outcome.left
          // Someone appended to our run: the next claimer marked it interrupted, so the lease is gone.
          if (e instanceof VersionConflict && e.stream === claim.runId)
            return yield* ended("lost", false, `run ${claim.runId} was marked interrupted by another worker`)
          const note = `${e.message}`
          yield* queue.fail(claim, { outcome: "failed", retry, note })
          return yield* ended("failed", retry, note)
        }
        const { summary, result, info } = outcome.right
        const device = deviceText(config.target.adapter, info)
        if (summary.status === "completed" || summary.status === "aborted") {
          const counted = yield* queue.complete(claim, {
            outcome: summary.status,
            device,
            note: summary.status === "aborted" ? result.aborted : undefined,
          })
          attempts.push({ ...claim, outcome: counted ? summary.status : "superseded" })
          if (hooks.onConfigDone) yield* hooks.onConfigDone({ claim, config, summary, result, counted })
          return
        }
        // Interrupted by a failure of the machinery (adapter error, device lost): try again elsewhere.
        const note = summary.state.lastInterruption?.reason ?? `run ended ${summary.status}`
        yield* queue.fail(claim, { outcome: "failed", retry, note, device })
        return yield* ended("failed", retry, note)
      })

    let loaded = first
    let identity = yield* enter(loaded)
    let waitingShown = ""
    for (;;) {
      const claim = yield* queue.claim(identity.key, worker, {
        leaseMs,
        runIdOf: (configId, attempt) => attemptRunId(identity, configId, attempt),
        reclaim: (expired) => Effect.provideService(judgeExpiredAttempt(expired.runId), EventStore, store),
      })
      if (claim) {
        waitingShown = ""
        yield* work(loaded, claim)
        continue
      }
      const status = (yield* queue.list(identity.key))!
      if (sweepDone(status)) {
        if (!options.wait || !options.reload)
          return { worker, identity, attempts, status } satisfies WorkerSummary
        yield* Effect.sleep(pollMs)
        const next = yield* Effect.either(options.reload())
        if (Either.isRight(next)) {
          const id = yield* sweepIdentity(next.right)
          if (id.key !== identity.key) {
            loaded = next.right
            identity = yield* enter(loaded)
          }
        }
        continue
      }
      // Others hold leases: look again when the first of them could expire, or at the poll interval.
      const running = status.configs.filter((c) => c.state === "running")
      const soonest = Math.min(...running.map((c) => (c.leaseExpiresAt ?? status.now) - status.now))
      const shown = running.map((c) => `${c.configId}/${c.attempts}`).join(",")
      if (hooks.onWaiting && shown !== waitingShown) yield* hooks.onWaiting(status)
      waitingShown = shown
      yield* Effect.sleep(clamp(soonest + 50, 50, pollMs))
    }
  })

/** `3 of 12 completed, 1 aborted, 2 running, 6 pending` */
export const countsText = (counts: Record<ConfigState, number>): string => {
  const total = Object.values(counts).reduce((a, b) => a + b, 0)
  const parts = (["completed", "aborted", "failed", "running", "pending"] as const)
    .filter((k) => counts[k] > 0)
    .map((k) => `${formatNumber(counts[k])} ${k}`)
  return `${total} configurations: ${parts.join(", ") || "none"}`
}

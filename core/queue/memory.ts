/**
 * In-memory SweepQueue: for tests, and the reference the contract suite holds the PostgreSQL
 * queue to. One lock (a semaphore of one permit) around every operation stands in for the row
 * locks: a claim, its `reclaim` judgement included, never interleaves with another operation.
 * Its clock is Effect's, so tests can move it.
 */
import { Clock, Effect, Layer } from "effect"
import {
  type AttemptRecord,
  type Claim,
  type ClaimOptions,
  type ConfigRow,
  type SweepEntry,
  SweepQueue,
  type SweepQueueShape,
  type SweepSpec,
} from "./sweep-queue.ts"

interface ConfigSlot {
  row: ConfigRow
}

interface SweepSlot {
  readonly entry: SweepEntry
  readonly configs: Map<string, ConfigSlot>
  readonly attempts: AttemptRecord[]
}

export const makeMemorySweepQueue = (): Effect.Effect<SweepQueueShape> =>
  Effect.gen(function* () {
    const lock = yield* Effect.makeSemaphore(1)
    const sweeps = new Map<string, SweepSlot>()
    const locked = lock.withPermits(1)

    const current = (claim: Claim): ConfigSlot | undefined => {
      const slot = sweeps.get(claim.sweep)?.configs.get(claim.configId)
      return slot &&
        slot.row.state === "running" &&
        slot.row.attempts === claim.attempt &&
        slot.row.leaseOwner === claim.worker.id
        ? slot
        : undefined
    }
    const attemptOf = (sweep: string, configId: string, attempt: number) =>
      sweeps.get(sweep)?.attempts.findIndex((a) => a.configId === configId && a.attempt === attempt) ?? -1
    const endAttempt = (
      sweep: string,
      configId: string,
      attempt: number,
      at: number,
      end: {
        readonly outcome: AttemptRecord["outcome"]
        readonly device?: string | undefined
        readonly note?: string | undefined
      },
    ) => {
      const s = sweeps.get(sweep)
      const i = attemptOf(sweep, configId, attempt)
      if (!s || i < 0) return
      const a = s.attempts[i]!
      s.attempts[i] = {
        ...a,
        endedAt: at,
        outcome: end.outcome,
        device: end.device ?? a.device,
        note: end.note ?? a.note,
      }
    }

    const enqueue = (spec: SweepSpec) =>
      locked(
        Effect.gen(function* () {
          const found = sweeps.get(spec.key)
          if (found) return { created: false, sweep: found.entry }
          const entry: SweepEntry = {
            key: spec.key,
            name: spec.name,
            hash: spec.hash,
            source: spec.source,
            configCount: spec.configs.length,
            createdAt: yield* Clock.currentTimeMillis,
          }
          const configs = new Map<string, ConfigSlot>()
          for (const [position, configId] of spec.configs.entries())
            configs.set(configId, {
              row: {
                configId,
                position,
                state: "pending",
                attempts: 0,
                runId: undefined,
                leaseOwner: undefined,
                leaseExpiresAt: undefined,
              },
            })
          sweeps.set(spec.key, { entry, configs, attempts: [] })
          return { created: true, sweep: entry }
        }),
      )

    const claim = <E>(sweep: string, worker: Claim["worker"], options: ClaimOptions<E>) =>
      locked(
        Effect.gen(function* () {
          const s = sweeps.get(sweep)
          if (!s) return undefined
          const alive = new Set<string>()
          for (;;) {
            const now = yield* Clock.currentTimeMillis
            const next = [...s.configs.values()]
              .filter(
                (c) =>
                  !alive.has(c.row.configId) &&
                  (c.row.state === "pending" ||
                    (c.row.state === "running" && (c.row.leaseExpiresAt ?? 0) < now)),
              )
              .sort((a, b) => a.row.position - b.row.position)[0]
            if (!next) return undefined
            const { configId } = next.row
            let previous: AttemptRecord | undefined
            if (next.row.state === "running") {
              previous = s.attempts[attemptOf(sweep, configId, next.row.attempts)]
              const verdict = previous && options.reclaim ? yield* options.reclaim(previous) : undefined
              if (verdict?._tag === "alive") {
                alive.add(configId)
                continue
              }
              const at = yield* Clock.currentTimeMillis
              if (verdict?._tag === "finished") {
                endAttempt(sweep, configId, next.row.attempts, at, {
                  outcome: verdict.outcome,
                  note: verdict.note,
                })
                next.row = {
                  ...next.row,
                  state: verdict.outcome,
                  leaseOwner: undefined,
                  leaseExpiresAt: undefined,
                }
                continue
              }
              endAttempt(sweep, configId, next.row.attempts, at, {
                outcome: "lost",
                note: verdict?.note ?? "its worker lost the lease",
              })
              previous = s.attempts[attemptOf(sweep, configId, next.row.attempts)]
            }
            const at = yield* Clock.currentTimeMillis
            const attempt = next.row.attempts + 1
            const runId = options.runIdOf(configId, attempt)
            const leaseExpiresAt = at + options.leaseMs
            next.row = {
              ...next.row,
              state: "running",
              attempts: attempt,
              runId,
              leaseOwner: worker.id,
              leaseExpiresAt,
            }
            s.attempts.push({
              configId,
              attempt,
              runId,
              worker,
              claimedAt: at,
              endedAt: undefined,
              outcome: "running",
              device: undefined,
              note: undefined,
            })
            return { sweep, configId, attempt, runId, worker, leaseExpiresAt, previous } satisfies Claim
          }
        }),
      )

    const renew = (claim: Claim, leaseMs: number) =>
      locked(
        Effect.gen(function* () {
          const slot = current(claim)
          if (!slot) return false
          slot.row = { ...slot.row, leaseExpiresAt: (yield* Clock.currentTimeMillis) + leaseMs }
          return true
        }),
      )

    const complete: SweepQueueShape["complete"] = (claim, result) =>
      locked(
        Effect.gen(function* () {
          const slot = current(claim)
          if (!slot) return false
          slot.row = { ...slot.row, state: result.outcome, leaseOwner: undefined, leaseExpiresAt: undefined }
          endAttempt(claim.sweep, claim.configId, claim.attempt, yield* Clock.currentTimeMillis, result)
          return true
        }),
      )

    const fail: SweepQueueShape["fail"] = (claim, result) =>
      locked(
        Effect.gen(function* () {
          const slot = current(claim)
          if (!slot) return false
          slot.row = {
            ...slot.row,
            state: result.retry ? "pending" : "failed",
            leaseOwner: undefined,
            leaseExpiresAt: undefined,
          }
          endAttempt(claim.sweep, claim.configId, claim.attempt, yield* Clock.currentTimeMillis, result)
          return true
        }),
      )

    const list = (sweep: string) =>
      locked(
        Effect.gen(function* () {
          const s = sweeps.get(sweep)
          if (!s) return undefined
          return {
            sweep: s.entry,
            configs: [...s.configs.values()].map((c) => c.row).sort((a, b) => a.position - b.position),
            attempts: [...s.attempts],
            now: yield* Clock.currentTimeMillis,
          }
        }),
      )

    const listSweeps = (name?: string) =>
      Effect.sync(() =>
        [...sweeps.values()]
          .map((s) => s.entry)
          .filter((e) => name === undefined || e.name === name)
          .sort((a, b) => b.createdAt - a.createdAt),
      )

    return SweepQueue.of({ enqueue, sweeps: listSweeps, claim, renew, complete, fail, list })
  })

export const MemorySweepQueueLive: Layer.Layer<SweepQueue> = Layer.effect(SweepQueue, makeMemorySweepQueue())

/**
 * The SweepQueue contract: one suite, run against every queue (test/queue-*.test.ts), so the
 * memory and PostgreSQL queues cannot drift apart. Each test gets a fresh, empty queue.
 *
 * Leases are short and time passes through `wait`: the memory queue's tests move Effect's test
 * clock, the PostgreSQL queue's sleep for real (its leases run on the server's clock), with
 * margins of a few hundred ms either side of every expiry.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, type Layer } from "effect"
import {
  type Claim,
  type Reclaim,
  SweepQueue,
  type SweepSpec,
  stateCounts,
  type WorkerInfo,
} from "../../core/queue/index.ts"

export interface QueueContractOptions {
  /** Runs a test: with the test clock (`it.effect`) or the real one (`it.live`). */
  readonly clock: "test" | "live"
  /** Lets `ms` of the queue's time pass. */
  readonly wait: (ms: number) => Effect.Effect<void>
}

const worker = (n: number): WorkerInfo => ({
  id: `host-${n}/100${n}/w${n}`,
  host: `host-${n}`,
  pid: 1000 + n,
  cpu: "Test CPU",
  cores: 2,
  platform: "linux-x64",
  node: "v20.19.0",
})

const sweep = (key = "s@abc", configs = ["c0", "c1", "c2", "c3"]): SweepSpec => ({
  key,
  name: key.split("@")[0]!,
  hash: key.split("@")[1] ?? "",
  source: "sweep.json",
  configs,
})

const runIdOf = (configId: string, attempt: number) => `run-${configId}-a${attempt}`

const LEASE = 400

export const queueContract = (
  name: string,
  makeLayer: () => Layer.Layer<SweepQueue, unknown>,
  options: QueueContractOptions,
) =>
  describe(`SweepQueue contract: ${name}`, () => {
    const test = options.clock === "test" ? it.effect : it.live
    const withQueue = <A, E>(body: Effect.Effect<A, E, SweepQueue>) => Effect.provide(body, makeLayer())
    const claim = (
      w: WorkerInfo,
      key = "s@abc",
      reclaim?: (a: Claim["previous"] & {}) => Effect.Effect<Reclaim>,
    ) => Effect.flatMap(SweepQueue, (q) => q.claim(key, w, { leaseMs: LEASE, runIdOf, reclaim }))

    test("enqueues a sweep once: the second enqueue of the same key finds it", () =>
      withQueue(
        Effect.gen(function* () {
          const q = yield* SweepQueue
          const first = yield* q.enqueue(sweep())
          const second = yield* q.enqueue(sweep("s@abc", ["other"]))
          expect(first.created).toBe(true)
          expect(second.created).toBe(false)
          expect(second.sweep).toEqual(first.sweep)
          expect(first.sweep).toMatchObject({ key: "s@abc", name: "s", hash: "abc", configCount: 4 })
          const status = (yield* q.list("s@abc"))!
          expect(status.configs.map((c) => [c.configId, c.position, c.state, c.attempts])).toEqual([
            ["c0", 0, "pending", 0],
            ["c1", 1, "pending", 0],
            ["c2", 2, "pending", 0],
            ["c3", 3, "pending", 0],
          ])
          yield* q.enqueue(sweep("s@def", ["c0"]))
          expect((yield* q.sweeps("s")).map((s) => s.key).sort()).toEqual(["s@abc", "s@def"])
          expect(yield* q.sweeps("nope")).toEqual([])
          expect(yield* q.list("nope@x")).toBeUndefined()
          expect(yield* claim(worker(1), "nope@x")).toBeUndefined()
        }),
      ))

    test("hands out configurations in sweep order, each with attempt 1 and a lease", () =>
      withQueue(
        Effect.gen(function* () {
          const q = yield* SweepQueue
          yield* q.enqueue(sweep())
          const a = (yield* claim(worker(1)))!
          const b = (yield* claim(worker(2)))!
          expect([a.configId, a.attempt, a.runId]).toEqual(["c0", 1, "run-c0-a1"])
          expect([b.configId, b.attempt, b.runId]).toEqual(["c1", 1, "run-c1-a1"])
          expect(a.previous).toBeUndefined()
          const status = (yield* q.list("s@abc"))!
          // The lease runs LEASE from the claim (whether it is still running when listed depends on
          // how long a loaded machine took in between, which is not this test's business).
          // Within 1 ms: PostgreSQL keeps microseconds, and each time is rounded to ms on its own.
          expect(Math.abs(a.leaseExpiresAt - status.attempts[0]!.claimedAt - LEASE)).toBeLessThanOrEqual(1)
          expect(a.leaseExpiresAt - status.now).toBeLessThanOrEqual(LEASE)
          const c0 = status.configs[0]!
          expect([c0.state, c0.attempts, c0.runId, c0.leaseOwner]).toEqual([
            "running",
            1,
            "run-c0-a1",
            worker(1).id,
          ])
          expect(status.attempts.map((x) => [x.configId, x.attempt, x.outcome, x.worker.host])).toEqual([
            ["c0", 1, "running", "host-1"],
            ["c1", 1, "running", "host-2"],
          ])
        }),
      ))

    test("never gives two concurrent claimers the same configuration", () =>
      withQueue(
        Effect.gen(function* () {
          const q = yield* SweepQueue
          yield* q.enqueue(sweep())
          const claims = yield* Effect.all(
            Array.from({ length: 7 }, (_, i) => claim(worker(i))),
            { concurrency: "unbounded" },
          )
          const got = claims.filter((c) => c !== undefined)
          expect(got.map((c) => c.configId).sort()).toEqual(["c0", "c1", "c2", "c3"])
          expect(new Set(got.map((c) => c.worker.id)).size).toBe(4)
          expect(claims.filter((c) => c === undefined)).toHaveLength(3)
          expect(yield* claim(worker(9))).toBeUndefined()
          expect(stateCounts((yield* q.list("s@abc"))!)).toMatchObject({ running: 4, pending: 0 })
        }),
      ))

    test("lets another worker reclaim an expired lease, as attempt 2; the old claim then counts for nothing", () =>
      withQueue(
        Effect.gen(function* () {
          const q = yield* SweepQueue
          yield* q.enqueue(sweep("s@abc", ["c0"]))
          const first = (yield* claim(worker(1)))!
          expect(yield* claim(worker(2))).toBeUndefined()
          yield* options.wait(LEASE + 300)
          const judged: Array<string> = []
          const second = (yield* claim(worker(2), "s@abc", (a) =>
            Effect.sync(() => {
              judged.push(`${a.configId}/${a.attempt}/${a.runId}/${a.worker.host}`)
              return { _tag: "lost", note: "marked interrupted" } as const
            }),
          ))!
          expect(judged).toEqual(["c0/1/run-c0-a1/host-1"])
          expect([second.configId, second.attempt, second.runId]).toEqual(["c0", 2, "run-c0-a2"])
          expect(second.previous).toMatchObject({
            attempt: 1,
            runId: "run-c0-a1",
            outcome: "lost",
            note: "marked interrupted",
          })
          // The first worker comes back: it can neither renew nor finish.
          expect(yield* q.renew(first, LEASE)).toBe(false)
          expect(yield* q.complete(first, { outcome: "completed" })).toBe(false)
          expect(yield* q.fail(first, { outcome: "failed", retry: true, note: "late" })).toBe(false)
          expect(yield* q.complete(second, { outcome: "completed", device: "sim h100" })).toBe(true)
          const status = (yield* q.list("s@abc"))!
          expect(status.configs[0]).toMatchObject({ state: "completed", attempts: 2, runId: "run-c0-a2" })
          expect(status.attempts.map((a) => [a.attempt, a.outcome, a.worker.host, a.device ?? null])).toEqual(
            [
              [1, "lost", "host-1", null],
              [2, "completed", "host-2", "sim h100"],
            ],
          )
          expect(status.attempts.every((a) => a.endedAt !== undefined && a.endedAt >= a.claimedAt)).toBe(true)
        }),
      ))

    test("extends a lease on renew: the configuration is not reclaimable while it is renewed", () =>
      withQueue(
        Effect.gen(function* () {
          const q = yield* SweepQueue
          yield* q.enqueue(sweep("s@abc", ["c0"]))
          const c = (yield* claim(worker(1)))!
          yield* options.wait(100)
          // Renewed for far longer than the waits below take, even on a loaded machine.
          expect(yield* q.renew(c, 600_000)).toBe(true)
          const renewed = (yield* q.list("s@abc"))!.configs[0]!.leaseExpiresAt!
          expect(renewed).toBeGreaterThan(c.leaseExpiresAt)
          // Past the first lease, well inside the renewed one.
          yield* options.wait(LEASE + 300)
          expect(yield* claim(worker(2))).toBeUndefined()
          expect(yield* q.renew(c, LEASE)).toBe(true)
          // A lease that expired but that nobody took over can still be renewed by its worker.
          yield* options.wait(LEASE + 300)
          expect(yield* q.renew(c, LEASE)).toBe(true)
          expect(yield* q.complete(c, { outcome: "completed" })).toBe(true)
        }),
      ))

    test("makes complete final: a completed configuration is never handed out again", () =>
      withQueue(
        Effect.gen(function* () {
          const q = yield* SweepQueue
          yield* q.enqueue(sweep("s@abc", ["c0", "c1"]))
          const a = (yield* claim(worker(1)))!
          const b = (yield* claim(worker(1)))!
          expect(yield* q.complete(a, { outcome: "completed", note: "ok" })).toBe(true)
          expect(yield* q.complete(b, { outcome: "aborted", note: "out of memory at step 3" })).toBe(true)
          expect(yield* q.complete(a, { outcome: "completed" })).toBe(false)
          expect(yield* q.renew(a, LEASE)).toBe(false)
          expect(yield* q.fail(a, { outcome: "failed", retry: true, note: "x" })).toBe(false)
          yield* options.wait(LEASE + 300)
          expect(yield* claim(worker(2))).toBeUndefined()
          const status = (yield* q.list("s@abc"))!
          expect(status.configs.map((c) => [c.state, c.attempts, c.leaseOwner ?? null])).toEqual([
            ["completed", 1, null],
            ["aborted", 1, null],
          ])
          expect(status.attempts.map((x) => [x.outcome, x.note])).toEqual([
            ["completed", "ok"],
            ["aborted", "out of memory at step 3"],
          ])
        }),
      ))

    test("leaves an expired lease alone when reclaim finds its writer alive, and takes the next configuration", () =>
      withQueue(
        Effect.gen(function* () {
          const q = yield* SweepQueue
          yield* q.enqueue(sweep("s@abc", ["c0", "c1"]))
          const slow = (yield* claim(worker(1)))!
          yield* options.wait(LEASE + 300)
          const next = yield* claim(worker(2), "s@abc", () => Effect.succeed({ _tag: "alive" } as const))
          expect(next?.configId).toBe("c1")
          expect(
            yield* claim(worker(3), "s@abc", () => Effect.succeed({ _tag: "alive" } as const)),
          ).toBeUndefined()
          // The slow worker still holds c0.
          expect(yield* q.renew(slow, LEASE)).toBe(true)
          expect((yield* q.list("s@abc"))!.configs[0]).toMatchObject({ state: "running", attempts: 1 })
        }),
      ))

    test("records a dead attempt that had finished its run as the configuration's outcome, without a new attempt", () =>
      withQueue(
        Effect.gen(function* () {
          const q = yield* SweepQueue
          yield* q.enqueue(sweep("s@abc", ["c0"]))
          yield* claim(worker(1))
          yield* options.wait(LEASE + 300)
          const next = yield* claim(worker(2), "s@abc", () =>
            Effect.succeed({
              _tag: "finished",
              outcome: "completed",
              note: "its run had completed",
            } as const),
          )
          expect(next).toBeUndefined()
          const status = (yield* q.list("s@abc"))!
          expect(status.configs[0]).toMatchObject({ state: "completed", attempts: 1, runId: "run-c0-a1" })
          expect(status.attempts.map((a) => [a.attempt, a.outcome, a.note])).toEqual([
            [1, "completed", "its run had completed"],
          ])
        }),
      ))

    test("puts a failed attempt back for another one (retry), or fails the configuration for good", () =>
      withQueue(
        Effect.gen(function* () {
          const q = yield* SweepQueue
          yield* q.enqueue(sweep("s@abc", ["c0", "c1"]))
          const a = (yield* claim(worker(1)))!
          expect(yield* q.fail(a, { outcome: "released", retry: true, note: "stopped by SIGINT" })).toBe(true)
          const again = (yield* claim(worker(2)))!
          expect([again.configId, again.attempt, again.runId]).toEqual(["c0", 2, "run-c0-a2"])
          expect(again.previous).toBeUndefined()
          const b = (yield* claim(worker(2)))!
          expect(yield* q.fail(b, { outcome: "failed", retry: false, note: "adapter unavailable" })).toBe(
            true,
          )
          yield* q.complete(again, { outcome: "completed" })
          expect(yield* claim(worker(3))).toBeUndefined()
          const status = (yield* q.list("s@abc"))!
          expect(status.configs.map((c) => [c.configId, c.state, c.attempts])).toEqual([
            ["c0", "completed", 2],
            ["c1", "failed", 1],
          ])
          expect(status.attempts.map((x) => [x.configId, x.attempt, x.outcome])).toEqual([
            ["c0", 1, "released"],
            ["c0", 2, "completed"],
            ["c1", 1, "failed"],
          ])
          expect(stateCounts(status)).toEqual({ pending: 0, running: 0, completed: 1, aborted: 0, failed: 1 })
        }),
      ))
  })

/**
 * Sweep workers in one process, on the memory queue and the memory store (no server): two
 * workers share a sweep; a dead attempt's run is marked interrupted and run again as attempt 2;
 * a dead attempt whose run had completed counts as the configuration's outcome; a reclaim whose
 * append conflicts (the writer is alive) leaves the lease alone.
 */
import { readFileSync, rmSync } from "node:fs"
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, Fiber, Layer, Stream } from "effect"
import { afterAll } from "vitest"
import { AdapterRegistryLive, adapterLayer } from "../../adapters/index.ts"
import {
  attemptRunId,
  judgeExpiredAttempt,
  LEASE_LOST_REASON,
  loadSweep,
  runConfig,
  runWorker,
  sweepIdentity,
} from "../../core/bench/index.ts"
import { makeMemorySweepQueue, SweepQueue, type WorkerInfo } from "../../core/queue/index.ts"
import { startRun } from "../../core/run/index.ts"
import { EventStore, makeMemoryEventStore } from "../../core/store/index.ts"
import { ROOT, tempDir, writeJson } from "../support/cli-helpers.ts"

const dir = tempDir("interleave-workers-engine-")
afterAll(() => rmSync(dir, { recursive: true, force: true }))

const sweepFile = writeJson(dir, "sweep.json", {
  name: "engine-test",
  base: `${ROOT}/scenarios/trex2-joint-8to1.json`,
  ratios: ["8:1", "2:1"],
  batchSizes: [4, 8],
  targets: [{ adapter: "sim" }],
  warmupSteps: 2,
  measuredSteps: 60,
  microIterations: 0,
})

const ghost: WorkerInfo = {
  id: "ghost/1/x",
  host: "ghost",
  pid: 1,
  cpu: "?",
  cores: 1,
  platform: "linux-x64",
  node: "v20",
}
const worker = (n: number): WorkerInfo => ({ ...ghost, id: `w${n}/1/x`, host: `w${n}` })

const services = Effect.gen(function* () {
  const store = yield* makeMemoryEventStore()
  const queue = yield* makeMemorySweepQueue()
  return Layer.mergeAll(
    Layer.succeed(EventStore, store),
    Layer.succeed(SweepQueue, queue),
    AdapterRegistryLive,
  )
})

// The workers' own leases are long next to their work (a 62-step sim configuration): a lease
// that ran out while a loaded machine starved the renewing fiber would let the other worker take
// the configuration over, a second attempt that these tests do not expect. Dead attempts are the
// ghost's, on its own 100 ms lease. The workers poll often, so that one waiting for the other's
// last configuration does not sleep through a long poll.
const options = (n: number) => ({
  leaseMs: 60_000,
  pollMs: 50,
  checkpointDir: `${dir}/ckpt`,
  worker: worker(n),
})

const lastEvent = (runId: string) =>
  Effect.flatMap(EventStore, (s) =>
    Effect.map(Stream.runCollect(s.read(runId)), (c) => Chunk.toReadonlyArray(c).at(-1)),
  )

/** The sweep enqueued, and one configuration claimed by the ghost on a 100 ms lease. */
const ghostClaim = Effect.gen(function* () {
  const loaded = yield* loadSweep(sweepFile)
  const id = yield* sweepIdentity(loaded)
  const queue = yield* SweepQueue
  yield* queue.enqueue({
    key: id.key,
    name: id.name,
    hash: id.hash,
    source: "f",
    configs: loaded.configs.map((c) => c.id),
  })
  const claim = (yield* queue.claim(id.key, ghost, {
    leaseMs: 100,
    runIdOf: (c, n) => attemptRunId(id, c, n),
  }))!
  const config = loaded.configs.find((c) => c.id === claim.configId)!
  return { loaded, claim, config }
})

describe("sweep workers (memory queue and store)", () => {
  it.live("two workers complete every configuration exactly once between them", () =>
    Effect.gen(function* () {
      const loaded = yield* loadSweep(sweepFile)
      const [a, b] = yield* Effect.all([runWorker(loaded, options(1)), runWorker(loaded, options(2))], {
        concurrency: 2,
      })
      expect(a.status.configs.map((c) => [c.state, c.attempts])).toEqual(Array(4).fill(["completed", 1]))
      const ran = [...a.attempts, ...b.attempts].map((x) => x.configId).sort()
      expect(ran).toEqual(loaded.configs.map((c) => c.id).sort())
      const store = yield* EventStore
      expect((yield* store.streams()).length).toBe(4)
    }).pipe(Effect.provide(Layer.unwrapEffect(services))),
  )

  it.live(
    "takes over a dead attempt: its run is marked interrupted and kept, attempt 2 runs the configuration",
    () =>
      Effect.gen(function* () {
        const { loaded, claim, config } = yield* ghostClaim
        // The ghost ran 10 steps of its configuration, then died (no terminal event, no renewal).
        yield* startRun(
          { runId: claim.runId, spec: config.spec, source: "ghost", adapterOptions: config.adapterOptions },
          { stopAfter: 10 },
        ).pipe(Effect.provide(adapterLayer("sim")))
        yield* Effect.sleep(150)
        const summary = yield* runWorker(loaded, options(1))
        const attempts = summary.status.attempts.filter((a) => a.configId === claim.configId)
        expect(attempts.map((a) => [a.attempt, a.outcome, a.worker.host])).toEqual([
          [1, "lost", "ghost"],
          [2, "completed", "w1"],
        ])
        expect(attempts[0]!.note).toBe(
          `run ${claim.runId} marked interrupted after step 9 (${LEASE_LOST_REASON})`,
        )
        const last = yield* lastEvent(claim.runId)
        expect(last?.type).toBe("RunInterrupted")
        expect(last?.data).toMatchObject({ lastStep: 9, reason: LEASE_LOST_REASON })
        expect(summary.status.configs.every((c) => c.state === "completed")).toBe(true)
      }).pipe(Effect.provide(Layer.unwrapEffect(services))),
  )

  it.live("counts a dead attempt whose run had completed, without running the configuration again", () =>
    Effect.gen(function* () {
      const { loaded, claim, config } = yield* ghostClaim
      yield* runConfig(loaded, config, claim.runId, { checkpointDir: `${dir}/ckpt` })
      yield* Effect.sleep(150)
      const summary = yield* runWorker(loaded, options(1))
      expect(
        summary.status.attempts
          .filter((a) => a.configId === claim.configId)
          .map((a) => [a.attempt, a.outcome]),
      ).toEqual([[1, "completed"]])
      expect(summary.attempts.map((a) => a.configId)).not.toContain(claim.configId)
    }).pipe(Effect.provide(Layer.unwrapEffect(services))),
  )

  it.live("finds the writer alive when the append that would mark its run conflicts", () =>
    Effect.gen(function* () {
      const loaded = yield* loadSweep(sweepFile)
      const config = loaded.configs[0]!
      yield* startRun(
        { runId: "slow", spec: config.spec, source: "slow", adapterOptions: config.adapterOptions },
        { stopAfter: 3 },
      ).pipe(Effect.provide(adapterLayer("sim")))
      const store = yield* EventStore
      // The writer appends between the judge's read and its append.
      const racing = {
        ...store,
        append: ((stream, events, expected) =>
          Effect.zipRight(
            Effect.flatMap(store.version(stream), (v) =>
              store.append(stream, [{ type: "StepCompleted", version: 2, data: {} }], v),
            ),
            store.append(stream, events, expected),
          )) as typeof store.append,
      }
      const verdict = yield* judgeExpiredAttempt("slow").pipe(Effect.provideService(EventStore, racing))
      expect(verdict).toEqual({ _tag: "alive" })
      expect((yield* lastEvent("slow"))?.type).toBe("StepCompleted")
      // Without the race, the same judgement marks the run.
      const lost = yield* judgeExpiredAttempt("slow")
      expect(lost._tag).toBe("lost")
    }).pipe(Effect.provide(Layer.unwrapEffect(services))),
  )

  it.live("with wait, keeps polling once the sweep is done and takes up the sweep file's new version", () =>
    Effect.gen(function* () {
      const file = writeJson(dir, "changing.json", {
        ...JSON.parse(readFileSync(sweepFile, "utf8")),
        name: "changing",
      })
      const queue = yield* SweepQueue
      const fiber = yield* Effect.fork(
        runWorker(yield* loadSweep(file), {
          ...options(1),
          pollMs: 50,
          wait: true,
          reload: () => loadSweep(file),
        }),
      )
      // Polls until the worker has completed n sweeps; no deadline of its own (the test's timeout
      // is one), but a worker that stopped fails it at once.
      const done = (n: number) =>
        Effect.gen(function* () {
          for (;;) {
            const ended = fiber.unsafePoll()
            if (ended !== null) return yield* Effect.die(`the worker stopped: ${String(ended)}`)
            const sweeps = yield* queue.sweeps("changing")
            const states = yield* Effect.all(sweeps.map((s) => queue.list(s.key)))
            if (
              sweeps.length === n &&
              states.every((st) => st!.configs.every((c) => c.state === "completed"))
            )
              return sweeps
            yield* Effect.sleep(25)
          }
        })
      const [firstSweep] = yield* done(1)
      writeJson(dir, "changing.json", { ...JSON.parse(readFileSync(file, "utf8")), measuredSteps: 30 })
      const both = yield* done(2)
      expect(both.map((s) => s.key)).toContain(firstSweep!.key)
      expect(fiber.unsafePoll()).toBeNull()
      yield* Fiber.interrupt(fiber)
    }).pipe(Effect.provide(Layer.unwrapEffect(services))),
  )
})

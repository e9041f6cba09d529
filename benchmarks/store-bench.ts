/**
 * Event store throughput: append N events (about 300 bytes of JSON each) in batches to a fresh
 * store, then read them all back through `read` (which JSON-parses every payload). Each side is
 * timed on its own, after a short warm-up on another stream. `benchStore` runs it on any store;
 * `benchSqliteStore` on a fresh temp SQLite database (store-bench-pg.ts runs it on PostgreSQL).
 *
 *   npx tsx benchmarks/store-bench.ts [events] [batch]
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { pathToFileURL } from "node:url"
import { Effect, type Scope, Stream } from "effect"
import {
  type EventEnvelope,
  type EventStoreShape,
  makeSqliteEventStore,
  type StoreError,
  type VersionConflict,
} from "../core/store/index.ts"

export interface StoreBenchResult {
  readonly appendEventsPerSec: number
  readonly readEventsPerSec: number
  readonly events: number
  readonly batch: number
  /**
   * The same rates per second of process CPU time (user + system). On a shared, loaded machine
   * wall-clock rates fall with the load; these show what the store costs.
   */
  readonly appendEventsPerCpuSec: number
  readonly readEventsPerCpuSec: number
}

/** Runs `body`, returning its result with the wall and CPU milliseconds it took. */
const timed = <A, E, R>(body: Effect.Effect<A, E, R>) =>
  Effect.gen(function* () {
    const cpu = process.cpuUsage()
    const start = performance.now()
    const result = yield* body
    const wallMs = performance.now() - start
    const used = process.cpuUsage(cpu)
    return { result, wallMs, cpuMs: (used.user + used.system) / 1000 }
  })

const perSec = (events: number, ms: number) => Math.round((events / ms) * 1000)

/** A step event of about 300 bytes of JSON, like the ones a run records. */
export const stepEvent = (step: number): EventEnvelope => ({
  type: "StepCompleted",
  version: 1,
  data: {
    step,
    phase: "joint",
    modality: step % 9 < 8 ? "visual" : "text",
    cycle: Math.floor(step / 9),
    positionInCycle: step % 9,
    lr: { backbone: 1e-5 * (1 + (step % 7) / 10), head: 1e-4 * (1 + (step % 5) / 10) },
    losses: { cls: 0.5 + (step % 13) / 100, box: 0.25 + (step % 11) / 100, align: 0.125, total: 0.875 },
    durationMs: 12.5 + (step % 3),
    samples: 16,
    memory: { allocatedBytes: 104_857_600 + step, rssBytes: 524_288_000 + step * 7 },
  },
})

/**
 * Appends then reads back `events` step events in batches of `batch` on the store `open` gives.
 * `onMark` runs right before the append, between append and read, and right after the read (for
 * a caller that measures something else over the same spans, such as a server's CPU).
 */
export const benchStore = <R>(
  open: Effect.Effect<EventStoreShape, StoreError, R>,
  opts?: { events?: number; batch?: number; onMark?: () => void },
): Effect.Effect<StoreBenchResult, StoreError | VersionConflict, R | Scope.Scope> => {
  const total = opts?.events ?? 200_000
  const batch = opts?.batch ?? 1000
  const mark = opts?.onMark ?? (() => {})
  return Effect.gen(function* () {
    const store = yield* open
    const batches: Array<Array<EventEnvelope>> = []
    for (let start = 0; start < total; start += batch) {
      batches.push(Array.from({ length: Math.min(batch, total - start) }, (_, i) => stepEvent(start + i)))
    }

    // Warm-up on a stream of its own, so the timings below measure steady state, not the JIT.
    const warmUp = Array.from({ length: Math.min(batch, total) }, (_, i) => stepEvent(i))
    let warmVersion = 0
    for (let i = 0; i < 10; i++) warmVersion = yield* store.append("warm-up", warmUp, warmVersion)
    yield* Stream.runDrain(store.read("warm-up"))

    mark()
    const append = yield* timed(
      Effect.gen(function* () {
        let version = 0
        for (const events of batches) version = yield* store.append("bench-run", events, version)
        return version
      }),
    )
    mark()
    const read = yield* timed(
      Effect.gen(function* () {
        let count = 0
        yield* Stream.runForEachChunk(store.read("bench-run"), (chunk) =>
          Effect.sync(() => {
            count += chunk.length
          }),
        )
        return count
      }),
    )
    mark()
    if (append.result !== total || read.result !== total) {
      throw new Error(`appended ${append.result} events and read back ${read.result}, expected ${total}`)
    }

    return {
      appendEventsPerSec: perSec(total, append.wallMs),
      readEventsPerSec: perSec(total, read.wallMs),
      events: total,
      batch,
      appendEventsPerCpuSec: perSec(total, append.cpuMs),
      readEventsPerCpuSec: perSec(total, read.cpuMs),
    }
  })
}

export const benchSqliteStore = (opts?: { events?: number; batch?: number }): Promise<StoreBenchResult> => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "interleave-store-bench-"))
  return Effect.runPromise(
    Effect.scoped(benchStore(makeSqliteEventStore(path.join(dir, "runs.db")), opts)),
  ).finally(() => fs.rmSync(dir, { recursive: true, force: true }))
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const [events, batch] = process.argv.slice(2).map(Number)
  const result = await benchSqliteStore({
    ...(events !== undefined && Number.isFinite(events) ? { events } : {}),
    ...(batch !== undefined && Number.isFinite(batch) ? { batch } : {}),
  })
  process.stdout.write(`${JSON.stringify(result)}\n`)
}

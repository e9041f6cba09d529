/**
 * PostgreSQL event store benchmarks, over loopback:
 *
 *  - `benchPostgresStore`: store-bench.ts's append and read of ~300-byte events, on PostgreSQL;
 *  - `benchGlobalOrderCost`: what the commit-order lock costs (core/store/postgres.ts): four
 *    writers on four streams through four pools, with the lock and without it, interleaved.
 *
 * Rates per CPU-second come twice: per second of this process's CPU (the client) and per second
 * of client plus server CPU, the server's read from /proc for a throwaway server this process
 * started (unknown for a server given by URL).
 *
 * A server comes from INTERLEAVE_BENCH_PG_URL, or else a throwaway one is started
 * (test/support/postgres.ts); when neither works the benchmarks say so and are skipped.
 *
 *   npx tsx benchmarks/store-bench-pg.ts [events] [batch]
 */
import * as fs from "node:fs"
import { pathToFileURL } from "node:url"
import { Effect } from "effect"
import type { EventStoreShape } from "../core/store/index.ts"
import { makePostgresEventStore, type PostgresStoreOptions } from "../core/store/postgres.ts"
import { createDatabase, startThrowawayPostgres } from "../test/support/postgres.ts"
import { benchStore, type StoreBenchResult, stepEvent } from "./store-bench.ts"

export const BENCH_PG_URL_ENV = "INTERLEAVE_BENCH_PG_URL"

export interface BenchServer {
  /** A database of its own for the benchmarks. */
  readonly url: string
  /** How the server came: given by URL, or started here. */
  readonly source: "INTERLEAVE_BENCH_PG_URL" | "throwaway"
  /** CPU milliseconds the server's processes have used so far, when they can be read (local, ours). */
  readonly serverCpuMs: () => number | undefined
}

const CLOCK_TICK_MS = 10 // USER_HZ is 100 on Linux

/** utime + stime (+ cutime + cstime with `children`) of a process, in ms; 0 when unreadable. */
const procCpuMs = (pid: number, children: boolean): number => {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8")
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
    // fields[0] is field 3 (state): utime is field 14, stime 15, cutime 16, cstime 17.
    const ticks =
      Number(fields[11]) + Number(fields[12]) + (children ? Number(fields[13]) + Number(fields[14]) : 0)
    return ticks * CLOCK_TICK_MS
  } catch {
    return 0
  }
}

/** CPU time of a postmaster and all its processes, living (by parent) and reaped (cutime). */
const clusterCpuMs = (postmasterPid: number): number | undefined => {
  if (!fs.existsSync(`/proc/${postmasterPid}/stat`)) return undefined
  let total = procCpuMs(postmasterPid, true)
  for (const entry of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, "utf8")
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1])
      if (ppid === postmasterPid) total += procCpuMs(Number(entry), false)
    } catch {}
  }
  return total
}

/**
 * Runs `body` with a PostgreSQL server for benchmarks, or returns why there is none. A throwaway
 * server is stopped and removed afterwards, whatever `body` did.
 */
export const withBenchPostgres = async <A>(
  body: (server: BenchServer) => Promise<A>,
): Promise<{ readonly ok: true; readonly value: A } | { readonly ok: false; readonly reason: string }> => {
  const given = process.env[BENCH_PG_URL_ENV]
  if (given !== undefined && given !== "") {
    const url = await createDatabase(given, "interleave_bench")
    return { ok: true, value: await body({ url, source: BENCH_PG_URL_ENV, serverCpuMs: () => undefined }) }
  }
  let server: Awaited<ReturnType<typeof startThrowawayPostgres>>
  try {
    server = await startThrowawayPostgres()
  } catch (cause) {
    return { ok: false, reason: cause instanceof Error ? cause.message : String(cause) }
  }
  try {
    const url = await createDatabase(server.url, "interleave_bench")
    const pid = server.postmasterPid
    return { ok: true, value: await body({ url, source: "throwaway", serverCpuMs: () => clusterCpuMs(pid) }) }
  } finally {
    await server.stop()
  }
}

export interface PostgresStoreBenchResult extends StoreBenchResult {
  /** Events per second of client plus server CPU (null when the server's CPU cannot be read). */
  readonly appendEventsPerTotalCpuSec: number | null
  readonly readEventsPerTotalCpuSec: number | null
}

let schemas = 0

const freshSchema = () => `bench_${process.pid}_${schemas++}`

const openStore = (server: BenchServer, options: PostgresStoreOptions = {}) =>
  makePostgresEventStore(server.url, { schema: freshSchema(), ...options })

/** store-bench.ts's append and read, on PostgreSQL. */
export const benchPostgresStore = async (
  server: BenchServer,
  opts?: { events?: number; batch?: number },
): Promise<PostgresStoreBenchResult> => {
  let serverMs: Array<number | undefined> = []
  const result = await Effect.runPromise(
    Effect.scoped(
      benchStore(openStore(server), {
        ...opts,
        onMark: () => {
          serverMs.push(server.serverCpuMs())
        },
      }),
    ),
  )
  const [s0, s1, s2] = serverMs
  serverMs = []
  const total = (clientRate: number, from: number | undefined, to: number | undefined) => {
    if (from === undefined || to === undefined) return null
    const clientMs = (result.events / clientRate) * 1000
    return Math.round((result.events / (clientMs + (to - from))) * 1000)
  }
  return {
    ...result,
    appendEventsPerTotalCpuSec: total(result.appendEventsPerCpuSec, s0, s1),
    readEventsPerTotalCpuSec: total(result.readEventsPerCpuSec, s1, s2),
  }
}

export interface GlobalOrderCostResult {
  readonly writers: number
  readonly rounds: number
  readonly cases: ReadonlyArray<{
    readonly batch: number
    readonly appendsPerWriter: number
    /** Medians over rounds, appends (transactions) per second, all writers together. */
    readonly orderedAppendsPerSec: number
    readonly unorderedAppendsPerSec: number
    readonly orderedEventsPerSec: number
    readonly unorderedEventsPerSec: number
    /** 1 - ordered / unordered: the share of throughput the lock costs. */
    readonly cost: number
  }>
}

const median = (xs: ReadonlyArray<number>) => {
  const s = [...xs].sort((a, b) => a - b)
  const m = Math.floor(s.length / 2)
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2
}

/** Wall ms for `writers` stores (a pool each) appending `appends` batches of `batch` to their own streams. */
const concurrentAppends = (
  server: BenchServer,
  unordered: boolean,
  writers: number,
  appends: number,
  batch: number,
) =>
  Effect.scoped(
    Effect.gen(function* () {
      const schema = freshSchema()
      const stores: Array<EventStoreShape> = []
      for (let w = 0; w < writers; w++) {
        stores.push(
          yield* openStore(server, {
            schema,
            maxConnections: 1,
            testing: { unorderedGlobalPositions: unordered },
          }),
        )
      }
      const events = Array.from({ length: batch }, (_, i) => stepEvent(i))
      const run = (prefix: string, count: number) =>
        Effect.all(
          stores.map((store, w) =>
            Effect.gen(function* () {
              let v = 0
              for (let i = 0; i < count; i++) v = yield* store.append(`${prefix}-${w}`, events, v)
            }),
          ),
          { concurrency: "unbounded" },
        )
      yield* run("warm-up", 10)
      const t0 = performance.now()
      yield* run("timed", appends)
      return performance.now() - t0
    }),
  )

/** The commit-order lock's cost: four writers with it and without it, interleaved over rounds. */
export const benchGlobalOrderCost = async (
  server: BenchServer,
  opts?: { rounds?: number; writers?: number },
): Promise<GlobalOrderCostResult> => {
  const rounds = opts?.rounds ?? 3
  const writers = opts?.writers ?? 4
  const cases: Array<GlobalOrderCostResult["cases"][number]> = []
  for (const [batch, appendsPerWriter] of [
    [1, 300],
    [100, 40],
  ] as const) {
    const ordered: Array<number> = []
    const unordered: Array<number> = []
    for (let r = 0; r < rounds; r++) {
      ordered.push(
        await Effect.runPromise(concurrentAppends(server, false, writers, appendsPerWriter, batch)),
      )
      unordered.push(
        await Effect.runPromise(concurrentAppends(server, true, writers, appendsPerWriter, batch)),
      )
    }
    const appends = writers * appendsPerWriter
    const o = median(ordered)
    const u = median(unordered)
    cases.push({
      batch,
      appendsPerWriter,
      orderedAppendsPerSec: Math.round((appends / o) * 1000),
      unorderedAppendsPerSec: Math.round((appends / u) * 1000),
      orderedEventsPerSec: Math.round(((appends * batch) / o) * 1000),
      unorderedEventsPerSec: Math.round(((appends * batch) / u) * 1000),
      cost: 1 - u / o,
    })
  }
  return { writers, rounds, cases }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const [events, batch] = process.argv.slice(2).map(Number)
  const result = await withBenchPostgres(async (server) => ({
    source: server.source,
    store: await benchPostgresStore(server, {
      ...(events !== undefined && Number.isFinite(events) ? { events } : {}),
      ...(batch !== undefined && Number.isFinite(batch) ? { batch } : {}),
    }),
    globalOrder: await benchGlobalOrderCost(server),
  }))
  if (!result.ok) process.stdout.write(`PostgreSQL benchmarks skipped: ${result.reason}\n`)
  else process.stdout.write(`${JSON.stringify(result.value, null, 2)}\n`)
}

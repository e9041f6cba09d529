/**
 * The PostgreSQL sweep queue: the contract suite on the real throwaway server (vitest's global
 * setup), then what only PostgreSQL shows: a claim and its reclaim judgement share one
 * transaction with the event store's appends; racing set-ups; a newer queue schema refused.
 * Without a server these tests skip, loudly, unless INTERLEAVE_REQUIRE_PG=1.
 */
import { describe, expect, it } from "@effect/vitest"
import { Cause, Effect, Exit, Layer, Option } from "effect"
import { beforeAll } from "vitest"
import { SweepQueue, type WorkerInfo } from "../../core/queue/index.ts"
import { makePostgresWorkBackend, PostgresWorkLive } from "../../core/queue/postgres.ts"
import { EventStore } from "../../core/store/index.ts"
import { createDatabase, postgresSkipReason, runSql, testPostgresUrl } from "../support/postgres.ts"
import { queueContract } from "./queue-contract.ts"

const server = testPostgresUrl()
let url = ""
let schemas = 0
const freshSchema = (prefix = "q") => `${prefix}_${schemas++}`

beforeAll(async () => {
  if (server !== undefined) url = await createDatabase(server, "queue_postgres")
})

const worker: WorkerInfo = {
  id: "h/1/a",
  host: "h",
  pid: 1,
  cpu: "cpu",
  cores: 1,
  platform: "linux-x64",
  node: "v20",
}
const runIdOf = (c: string, n: number) => `run-${c}-a${n}`

describe.skipIf(server === undefined)("PostgreSQL", () => {
  queueContract("postgres", () => Layer.fresh(PostgresWorkLive(url, { schema: freshSchema("contract") })), {
    clock: "live",
    wait: (ms) => Effect.sleep(ms),
  })

  describe("PostgreSQL sweep queue", () => {
    const backend = (schema: string) => Effect.provide(Layer.fresh(PostgresWorkLive(url, { schema })))

    it.live(
      "runs reclaim inside the claim's transaction: a failed claim leaves the run's append undone",
      () =>
        Effect.gen(function* () {
          const q = yield* SweepQueue
          const store = yield* EventStore
          yield* q.enqueue({ key: "s@1", name: "s", hash: "1", source: "f", configs: ["c0"] })
          yield* store.append("run-c0-a1", [{ type: "RunStarted", version: 2, data: {} }], 0)
          yield* q.claim("s@1", worker, { leaseMs: 100, runIdOf })
          yield* Effect.sleep(300)
          const failed = yield* Effect.exit(
            q.claim(
              "s@1",
              { ...worker, id: "h/2/b" },
              {
                leaseMs: 100,
                runIdOf,
                reclaim: (a) =>
                  Effect.zipRight(
                    store.append(a.runId, [{ type: "RunInterrupted", version: 1, data: {} }], 1),
                    Effect.fail("boom" as const),
                  ),
              },
            ),
          )
          expect(Exit.isFailure(failed) && Option.getOrUndefined(Cause.failureOption(failed.cause))).toBe(
            "boom",
          )
          expect(yield* store.version("run-c0-a1")).toBe(1)
          expect((yield* q.list("s@1"))!.configs[0]).toMatchObject({ state: "running", attempts: 1 })
          // The same judgement, succeeding: the append and the new attempt commit together.
          const next = yield* q.claim(
            "s@1",
            { ...worker, id: "h/2/b" },
            {
              leaseMs: 1_000,
              runIdOf,
              reclaim: (a) =>
                Effect.as(store.append(a.runId, [{ type: "RunInterrupted", version: 1, data: {} }], 1), {
                  _tag: "lost",
                  note: "marked",
                } as const),
            },
          )
          expect(next?.attempt).toBe(2)
          expect(yield* store.version("run-c0-a1")).toBe(2)
        }).pipe(backend(freshSchema("tx"))),
    )

    it.live("sets itself up once when several workers open a fresh schema at the same time", () =>
      Effect.gen(function* () {
        const schema = freshSchema("race")
        const opened = yield* Effect.all(
          Array.from({ length: 4 }, () =>
            Effect.scoped(Effect.as(makePostgresWorkBackend(url, { schema }), "ok")),
          ),
          { concurrency: "unbounded" },
        )
        expect(opened).toEqual(["ok", "ok", "ok", "ok"])
        const rows = (yield* Effect.promise(() =>
          runSql(url, [`SELECT version FROM "${schema}".queue_schema`]),
        ))[0] as ReadonlyArray<unknown>
        expect(rows).toHaveLength(1)
      }),
    )

    it.live("refuses a queue written by a newer interleave, naming the versions", () =>
      Effect.gen(function* () {
        const schema = freshSchema("newer")
        yield* Effect.scoped(makePostgresWorkBackend(url, { schema }))
        yield* Effect.promise(() => runSql(url, [`INSERT INTO "${schema}".queue_schema VALUES (99, 0)`]))
        const exit = yield* Effect.exit(Effect.scoped(makePostgresWorkBackend(url, { schema })))
        const e = Exit.isFailure(exit) ? Option.getOrUndefined(Cause.failureOption(exit.cause)) : undefined
        expect(e?.message).toMatch(/newer interleave \(queue schema 99, this build knows 1\)/)
      }),
    )
  })
})

if (server === undefined) {
  describe(`PostgreSQL sweep queue: SKIPPED (${postgresSkipReason()})`, () => {
    it.skip("needs a PostgreSQL server", () => {})
  })
}

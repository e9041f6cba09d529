/**
 * The PostgreSQL event store: the contract suite, then what only a server shows (global order
 * under concurrent transactions, set-up by racing processes, schemas, connection errors).
 * The server comes from vitest's global setup (test/support/pg-global-setup.ts); without one
 * these tests skip, loudly, unless INTERLEAVE_REQUIRE_PG=1. This file gets a database of its own
 * and each test a schema of its own in it.
 */
import * as fs from "node:fs"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Cause, Chunk, Deferred, Effect, Either, Exit, Fiber, Layer, Option, Ref, Stream } from "effect"
import { afterAll, beforeAll } from "vitest"
import {
  EventStore,
  type StoredEvent,
  type StoreError,
  VersionConflict,
} from "../../core/store/event-store.ts"
import {
  makePostgresEventStore,
  PG_SCHEMA_VERSION,
  PostgresEventStoreLive,
  type PostgresStoreOptions,
  redactUrl,
} from "../../core/store/postgres.ts"
import {
  createDatabase,
  postgresSkipReason,
  runSql,
  testPostgresUrl,
  withDatabase,
} from "../support/postgres.ts"
import { raceTwoWriters } from "../support/store-writer-process.ts"
import { storeContract } from "./store-contract.ts"

const server = testPostgresUrl()

let url = ""
let schemas = 0
/** A schema name no other test uses. */
const freshSchema = (prefix = "t") => `${prefix}_${schemas++}`

beforeAll(async () => {
  if (server !== undefined) url = await createDatabase(server, "store_postgres")
})

const root = fs.mkdtempSync(path.join(os.tmpdir(), "interleave-store-postgres-"))
afterAll(() => fs.rmSync(root, { recursive: true, force: true }))

const ev = (type: string, data: unknown = {}) => ({ type, version: 1, data })

const open = (schema: string, options: Omit<PostgresStoreOptions, "schema"> = {}) =>
  makePostgresEventStore(url, { ...options, schema })

/** The StoreError that opening the store fails with (a test failure when it opens, or dies). */
const openError = (target: string, options?: PostgresStoreOptions) =>
  Effect.map(Effect.exit(Effect.scoped(makePostgresEventStore(target, options))), (exit): StoreError => {
    if (Exit.isSuccess(exit)) throw new Error(`${target} opened as an event store`)
    const failure = Cause.failureOption(exit.cause)
    if (Option.isNone(failure)) throw new Error(`opening ${target} died: ${Cause.pretty(exit.cause)}`)
    return failure.value
  })

const sqlRows = (statement: string) =>
  Effect.promise(() => runSql(url, [statement])).pipe(
    Effect.map((results) => results[0] as ReadonlyArray<Record<string, unknown>>),
  )

const freePort = () =>
  Effect.async<number>((resume) => {
    const s = net.createServer()
    s.listen(0, "127.0.0.1", () => {
      const address = s.address()
      s.close(() => resume(Effect.succeed(typeof address === "object" && address ? address.port : 1)))
    })
  })

/** Polls `ref` until `done` holds for it: no deadline of its own (the test's timeout is one). */
const waitFor = <A>(ref: Ref.Ref<A>, done: (a: A) => boolean) =>
  Effect.gen(function* () {
    for (;;) {
      const a = yield* Ref.get(ref)
      if (done(a)) return a
      yield* Effect.sleep("2 millis")
    }
  })

describe.skipIf(server === undefined)("PostgreSQL", () => {
  storeContract("postgres", () => PostgresEventStoreLive(url, { schema: freshSchema("contract") }))

  describe("PostgreSQL event store", () => {
    /**
     * The late-commit race, made deterministic: writer A inserts its event (taking its global
     * position) and is held before COMMIT; writer B, on another stream and another pool, appends
     * and commits; only then is A let go. A tail reader polls all along. Then B appends a marker,
     * and once the tail has it, what the tail saw is final (it reads in global-position order).
     * Returns what it saw, what a reader sees afterwards, and whether B finished while A was
     * still held. Nothing is timed but the wait that shows B blocked while A is held, which a
     * loaded machine can only make pass when it should not, never fail when it should not.
     */
    const lateCommit = (unordered: boolean) =>
      Effect.scoped(
        Effect.gen(function* () {
          const schema = freshSchema("late")
          const held = yield* Deferred.make<void>()
          const release = yield* Deferred.make<void>()
          const hold = (stream: string) =>
            stream === "slow"
              ? Effect.zipRight(Deferred.succeed(held, undefined), Deferred.await(release))
              : Effect.void
          const testing = { beforeCommit: hold, unorderedGlobalPositions: unordered }
          const reader = yield* open(schema)
          const a = yield* open(schema, { testing })
          const b = yield* open(schema, { testing })
          const seen = yield* Ref.make<ReadonlyArray<StoredEvent>>([])
          const tail = yield* reader.tailAll({ pollMs: 1 }).pipe(
            Stream.runForEach((e) => Ref.update(seen, (s) => [...s, e])),
            Effect.fork,
          )
          const slow = yield* Effect.fork(a.append("slow", [ev("Slow")], 0))
          // (Should A's append fail instead of reaching its hold, the test fails here, not later.)
          yield* Effect.raceFirst(Deferred.await(held), Effect.zipRight(Fiber.join(slow), Effect.never))
          const fast = yield* Effect.fork(b.append("fast", [ev("Fast")], 0))
          if (unordered) {
            // Nothing holds B: it commits, and the tail reads its event, past A's position.
            yield* Fiber.join(fast)
            yield* waitFor(seen, (s) => s.some((e) => e.type === "Fast"))
          } else {
            // Long enough for B to commit if nothing stops it.
            yield* Effect.sleep("150 millis")
          }
          const fastDoneWhileHeld = Option.isSome(yield* Fiber.poll(fast))
          yield* Deferred.succeed(release, undefined)
          yield* Fiber.join(slow)
          yield* Fiber.join(fast)
          yield* b.append("marker", [ev("Marker")], 0)
          const tailSaw = yield* waitFor(seen, (s) => s.some((e) => e.type === "Marker"))
          yield* Fiber.interrupt(tail)
          const afterwards = Chunk.toReadonlyArray(yield* Stream.runCollect(reader.readAll()))
          return { tailSaw: tailSaw.map((e) => e.type), afterwards, fastDoneWhileHeld }
        }),
      )

    it.live("hands out global positions in commit order: a tail never skips an event that commits late", () =>
      Effect.gen(function* () {
        const { tailSaw, afterwards, fastDoneWhileHeld } = yield* lateCommit(false)
        // B waited for A's commit: it could not take a global position behind A's back.
        expect(fastDoneWhileHeld).toBe(false)
        expect(tailSaw).toEqual(["Slow", "Fast", "Marker"])
        expect(afterwards.map((e) => e.type)).toEqual(["Slow", "Fast", "Marker"])
      }),
    )

    it.live("shows the race is real: without the commit-order lock the tail skips the late event", () =>
      Effect.gen(function* () {
        const { tailSaw, afterwards, fastDoneWhileHeld } = yield* lateCommit(true)
        expect(fastDoneWhileHeld).toBe(true)
        // The event is in the log, below a global position the reader had already passed.
        expect(afterwards.map((e) => e.type)).toEqual(["Slow", "Fast", "Marker"])
        expect(tailSaw).toEqual(["Fast", "Marker"])
      }),
    )

    it.live("gives a tail every event once, in order, under four writers on four pools", () =>
      Effect.scoped(
        Effect.gen(function* () {
          const schema = freshSchema("pools")
          const reader = yield* open(schema)
          const writers = yield* Effect.all(
            Array.from({ length: 4 }, () => open(schema, { maxConnections: 2 })),
          )
          const batches = 40
          const total = writers.length * batches * 2
          let count = 0
          const tail = yield* reader
            .tailAll({ pollMs: 1, until: () => ++count === total })
            .pipe(Stream.runCollect, Effect.fork)
          yield* Effect.all(
            writers.map((store, w) =>
              Effect.gen(function* () {
                let version = 0
                for (let b = 0; b < batches; b++) {
                  version = yield* store.append(`w${w}`, [ev(`W${w}`, { b }), ev(`W${w}`, { b })], version)
                }
              }),
            ),
            { concurrency: "unbounded" },
          )
          const seen = Chunk.toReadonlyArray(yield* Fiber.join(tail))
          expect(seen).toHaveLength(total)
          for (let i = 1; i < seen.length; i++) {
            expect(seen[i]!.globalPosition).toBeGreaterThan(seen[i - 1]!.globalPosition)
          }
          expect(new Set(seen.map((e) => `${e.stream}/${e.position}`)).size).toBe(total)
          expect(seen).toEqual(Chunk.toReadonlyArray(yield* Stream.runCollect(reader.readAll())))
        }),
      ),
    )

    it.live("maps a unique violation on (stream, position) to VersionConflict, writing nothing", () =>
      Effect.scoped(
        Effect.gen(function* () {
          const schema = freshSchema("unique")
          const store = yield* open(schema)
          yield* store.append("s", [ev("E0")], 0)
          // A row at position 1 that the stream's version does not know about: the append's version
          // check passes, its INSERT collides.
          yield* sqlRows(
            `INSERT INTO ${schema}.events (stream, position, type, version, data, recorded_at) ` +
              `VALUES ('s', 1, 'Intruder', 1, '{}', 0)`,
          )
          const error = yield* Effect.flip(store.append("s", [ev("E1"), ev("E2")], 1))
          expect(error).toEqual(new VersionConflict({ stream: "s", expected: 1, actual: 1 }))
          const events = Chunk.toReadonlyArray(yield* Stream.runCollect(store.read("s")))
          expect(events.map((e) => e.type)).toEqual(["E0", "Intruder"])
          expect(yield* store.version("s")).toBe(1)
        }),
      ),
    )

    it.live("sets up a fresh schema once when several processes open it at the same time", () =>
      Effect.gen(function* () {
        const schema = freshSchema("setup")
        const versions = yield* Effect.all(
          Array.from({ length: 6 }, (_, i) =>
            Effect.scoped(Effect.flatMap(open(schema), (store) => store.append(`s${i}`, [ev("E")], 0))),
          ),
          { concurrency: "unbounded" },
        )
        expect(versions).toEqual([1, 1, 1, 1, 1, 1])
        const rows = yield* sqlRows(`SELECT version FROM ${schema}.migrations ORDER BY version`)
        expect(rows.map((r) => r.version)).toEqual(Array.from({ length: PG_SCHEMA_VERSION }, (_, i) => i + 1))
      }),
    )

    it.live("keeps everything in the `interleave` schema by default, beside a user's own tables", () =>
      Effect.gen(function* () {
        const db = yield* Effect.promise(() => createDatabase(server!, "store_default_schema"))
        yield* Effect.promise(() =>
          runSql(db, ["CREATE TABLE public.events (id integer)", "INSERT INTO public.events VALUES (7)"]),
        )
        yield* Effect.scoped(
          Effect.flatMap(makePostgresEventStore(db), (store) => store.append("run", [ev("A"), ev("B")], 0)),
        )
        const [tables, mine] = yield* Effect.promise(() =>
          runSql(db, [
            "SELECT schemaname || '.' || tablename AS t FROM pg_tables " +
              "WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1",
            "SELECT id FROM public.events",
          ]),
        )
        expect((tables as ReadonlyArray<{ t: string }>).map((r) => r.t)).toEqual([
          "interleave.events",
          "interleave.migrations",
          "interleave.streams",
          "public.events",
        ])
        expect(mine).toEqual([{ id: 7 }])
      }),
    )

    it.live("keeps events across a close and re-open, continuing global positions", () =>
      Effect.gen(function* () {
        const schema = freshSchema("reopen")
        yield* Effect.scoped(
          Effect.flatMap(open(schema), (s) => s.append("run", [ev("A"), ev("B", { x: 1 })], 0)),
        )
        const events = yield* Effect.scoped(
          Effect.gen(function* () {
            const store = yield* open(schema)
            expect(yield* store.version("run")).toBe(2)
            yield* store.append("other", [ev("C")], 0)
            return Chunk.toReadonlyArray(yield* Stream.runCollect(store.readAll()))
          }),
        )
        expect(events.map((e) => [e.stream, e.position, e.globalPosition, e.type])).toEqual([
          ["run", 0, 0, "A"],
          ["run", 1, 1, "B"],
          ["other", 0, 2, "C"],
        ])
      }),
    )

    it.live("closes its connections with its scope", () =>
      Effect.gen(function* () {
        const db = yield* Effect.promise(() => createDatabase(server!, "store_close"))
        const connections = Effect.promise(() =>
          runSql(server!, [
            `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = '${new URL(db).pathname.slice(1)}'`,
          ]),
        ).pipe(Effect.map((r) => (r[0] as ReadonlyArray<{ n: number }>)[0]!.n))
        yield* Effect.scoped(
          Effect.gen(function* () {
            const store = yield* makePostgresEventStore(db)
            yield* Effect.all([store.append("a", [ev("A")], 0), store.append("b", [ev("B")], 0)], {
              concurrency: "unbounded",
            })
            expect(yield* connections).toBeGreaterThan(0)
          }),
        )
        expect(yield* connections).toBe(0)
      }),
    )

    it.live("upgrades a schema of version 1 (no heartbeats) in place, keeping its events", () =>
      Effect.gen(function* () {
        const schema = freshSchema("v1")
        yield* Effect.scoped(Effect.flatMap(open(schema), (s) => s.append("old", [ev("A"), ev("B")], 0)))
        // Version 1 as it was: the later migrations undone.
        yield* sqlRows(`ALTER TABLE ${schema}.streams DROP COLUMN heartbeat_at`)
        yield* sqlRows(`DELETE FROM ${schema}.migrations WHERE version > 1`)
        yield* Effect.scoped(
          Effect.gen(function* () {
            const store = yield* open(schema)
            expect(yield* store.heartbeat("old", 77)).toBe(true)
            expect(yield* store.streams()).toEqual([
              expect.objectContaining({ stream: "old", version: 2, heartbeatAt: 77 }),
            ])
            const events = Chunk.toReadonlyArray(yield* Stream.runCollect(store.read("old")))
            expect(events.map((e) => e.type)).toEqual(["A", "B"])
          }),
        )
        const versions = yield* sqlRows(`SELECT version FROM ${schema}.migrations ORDER BY version`)
        expect(versions).toEqual(Array.from({ length: PG_SCHEMA_VERSION }, (_, i) => ({ version: i + 1 })))
      }),
    )

    it.live("refuses a schema written by a newer interleave", () =>
      Effect.gen(function* () {
        const schema = freshSchema("newer")
        yield* Effect.scoped(Effect.flatMap(open(schema), (s) => s.append("run", [ev("A")], 0)))
        yield* sqlRows(
          `INSERT INTO ${schema}.migrations (version, name, applied_at) VALUES (${PG_SCHEMA_VERSION + 1}, 'future', 0)`,
        )
        const error = yield* openError(url, { schema })
        expect(error.message).toContain(
          `schema ${schema} of ${redactUrl(url)} was written by a newer interleave`,
        )
        expect(error.message).toContain(`schema version ${PG_SCHEMA_VERSION + 1}`)
      }),
    )

    it.live("refuses a schema that holds tables but is not an event store, leaving it alone", () =>
      Effect.gen(function* () {
        const schema = freshSchema("app")
        yield* Effect.promise(() =>
          runSql(url, [
            `CREATE SCHEMA ${schema}`,
            `CREATE TABLE ${schema}.users (id integer, name text)`,
            `INSERT INTO ${schema}.users VALUES (1, 'ada')`,
          ]),
        )
        const error = yield* openError(url, { schema })
        expect(error.message).toContain(
          `schema ${schema} of ${redactUrl(url)} is not an interleave event store`,
        )
        expect(error.message).toContain("users")
        const tables = yield* sqlRows(`SELECT tablename FROM pg_tables WHERE schemaname = '${schema}'`)
        expect(tables).toEqual([{ tablename: "users" }])
        expect(yield* sqlRows(`SELECT name FROM ${schema}.users`)).toEqual([{ name: "ada" }])
      }),
    )

    it.live("fails to connect with a one-line StoreError that names the URL without its password", () =>
      Effect.gen(function* () {
        const port = yield* freePort()
        const host = new URL(server!).host
        // Unreachable is "unavailable" (exit 3: try again later); a wrong database or role is bad input.
        const cases = [
          [`postgres://ada:s3cret-pw@127.0.0.1:${port}/runs`, /ECONNREFUSED/, "unavailable"],
          [
            withDatabase(server!.replace("postgres@", "postgres:s3cret-pw@"), "no_such_db"),
            /does not exist/,
            "bad-input",
          ],
          [`postgres://nobody:s3cret-pw@${host}/postgres`, /role "nobody" does not exist/, "bad-input"],
          [`postgres://ada@${host}/postgres?password=s3cret-pw`, /role "ada" does not exist/, "bad-input"],
        ] as const
        for (const [target, reason, kind] of cases) {
          const error = yield* openError(target)
          expect(error._tag).toBe("StoreError")
          expect(error.kind, target).toBe(kind)
          expect(error.message).toMatch(reason)
          expect(error.message).toContain(redactUrl(target))
          expect(error.message).not.toContain("s3cret")
          expect(error.message).not.toContain("\n")
        }
        expect(redactUrl(`postgres://ada:s3cret-pw@db.example:5432/runs`)).toBe(
          "postgres://ada@db.example:5432/runs",
        )
        const notUrl = yield* openError("runs.db")
        expect(notUrl.message).toContain("not a PostgreSQL URL")
        const badSchema = yield* openError(url, { schema: "no; DROP" })
        expect(badSchema.message).toContain("cannot name the event store's schema")
      }),
    )

    it.live("keeps the log whole when two processes append to the same stream", () =>
      Effect.gen(function* () {
        const schema = freshSchema("procs")
        const go = path.join(root, `${schema}.go`)
        const batches = 60
        const size = 4
        yield* Effect.scoped(open(schema))
        yield* raceTwoWriters({ location: [url, schema], go, batches, size, open: open(schema) })
      }),
    )

    it.live("provides the EventStore service as a layer", () =>
      Effect.gen(function* () {
        const store = yield* EventStore
        expect(yield* store.append("run", [ev("A")], 0)).toBe(1)
        expect(Either.isRight(yield* Effect.either(store.version("run")))).toBe(true)
      }).pipe(Effect.provide(Layer.fresh(PostgresEventStoreLive(url, { schema: freshSchema("layer") })))),
    )
  })
})

if (server === undefined) {
  describe(`PostgreSQL event store: SKIPPED (${postgresSkipReason()})`, () => {
    it.skip("needs a PostgreSQL server", () => {})
  })
}

/**
 * PostgreSQL EventStore: many machines, one store. Through @effect/sql-pg (node-postgres).
 *
 * - Everything lives in one schema of its own (`interleave` unless told otherwise): a database
 *   shared with an application never sees our tables collide with its own, and a schema that
 *   holds tables but is not ours is refused untouched.
 * - Versioned migrations, as in the SQLite store: a `migrations` table records the ones applied;
 *   a schema written by a newer interleave is refused. Set-up runs in one transaction under a
 *   transaction-scoped advisory lock, so several processes opening a fresh database at once
 *   take turns: the first creates everything, the others find it done. DDL is transactional in
 *   PostgreSQL, so a set-up that fails half-way leaves nothing behind.
 * - Optimistic append in one transaction, and in one statement (one round trip): a conditional
 *   `UPDATE streams SET version = new WHERE stream = $ AND version = expected` (or, for a new
 *   stream, an `INSERT ... ON CONFLICT DO NOTHING`), then one `INSERT ... SELECT FROM unnest(...)`
 *   of all the events, with UNIQUE(stream, position) behind it. Under READ COMMITTED the second of
 *   two racing writers waits for the first one's row lock, then finds the version moved (or the
 *   row there): it writes nothing and gets `VersionConflict`. Should a race ever surface as a
 *   unique violation on (stream, position) instead, it is mapped to the same `VersionConflict`.
 * - Reads page by position (keyset, 2,000 rows a page) and `readAll` by global position, so a
 *   replay of millions of events runs in bounded memory; the tails poll (paging.ts).
 *
 * Global order. Global positions come from an identity column (a sequence). A sequence number is
 * drawn when a row is inserted but becomes visible when its transaction commits, and concurrent
 * transactions commit in any order: writer A draws 41, writer B draws 42 and commits, a reader
 * reads 42 and checkpoints there, then A commits 41, which that reader never sees. So an append
 * takes a transaction-scoped advisory lock (one per schema) after its version check and before
 * drawing its positions, and holds it to its commit: positions are drawn in commit order, and
 * since PostgreSQL makes a commit visible before it releases the transaction's locks, whenever
 * 42 is visible so is 41 (or 41 never will be: rolled back, a gap that readers step over). The
 * price is that appends to different streams serialise from their INSERT to their COMMIT, all of
 * it inside the server (the append is one statement, so no client round trip happens under the
 * lock); version checks still run in parallel. Measured with benchmarks/store-bench-pg.ts on
 * loopback (2-core shared machine, fsync off; 4 writers on 4 streams through 4 pools, ~300-byte
 * events), three runs: 1-event appends did 1,510 / 1,620 / 2,350 appends/s with the lock against
 * 2,020 / 1,870 / 2,350 without (0-26% less); 100-event appends 62,800 / 55,800 / 96,400 events/s
 * against 59,100 / 65,800 / 90,900 (within noise). An earlier version that took the lock in a
 * transaction of five round trips lost 44% on 1-event appends: hence the single statement. On a
 * server with durable commits the serialised part includes the commit's WAL flush, so appends
 * across all streams are capped near one per flush; the engine appends up to 2,048 events at a
 * time, far from that cap.
 * The alternative, Emmett/Marten-style, records each event's transaction id (xid8) and lets
 * readers return only events of transactions older than the oldest one still running
 * (pg_snapshot_xmin): appends never wait for each other, but readers then have to order and
 * checkpoint by (transaction id, position), not by the single number `readAll({ after })`
 * promises, and every reader is held back by the longest-running write transaction anyway.
 *
 * Payloads are kept as JSON text (a `text` column), not `jsonb`. Appending 200,000 events of
 * about 300 bytes, then reading them back, the server spent about 1.2 s of CPU on the appends
 * and 0.18 s on the reads as text, against 2.0 s and 0.48 s as jsonb, and wall-clock rates were
 * 20-40% better (jsonb parses every payload going in and prints it going out; the client parses
 * JSON either way). jsonb would also refuse strings that JSON.stringify writes happily (NUL as
 * \u0000, lone surrogates) and reorder keys; nothing queries inside payloads, so it buys nothing.
 *
 * Errors (server unreachable, authentication failed, database missing) are a `StoreError` with a
 * one-line message naming the URL without its password. Its kind is "unavailable" when the store
 * is fine but cannot be used now (server unreachable or shutting down, too many connections, disk
 * full, read-only, no permission), "bad-input" otherwise (wrong URL, role, database or schema).
 *
 * Staging streams (`.staging/...`) are left out of `streams()` and the global log. `renameStream`
 * copies the events to the new name (INSERT ... SELECT, under the global-order lock, so they take
 * fresh global positions at the end of the log) and deletes the old rows, in one transaction.
 */
import * as Reactivity from "@effect/experimental/Reactivity"
import type { SqlClient } from "@effect/sql/SqlClient"
import { SqlError } from "@effect/sql/SqlError"
import * as PgClient from "@effect/sql-pg/PgClient"
import { Clock, Duration, Effect, Layer, Redacted, type Scope } from "effect"
import {
  type EventEnvelope,
  EventStore,
  type EventStoreShape,
  STAGING_PREFIX,
  type StoredEvent,
  StoreError,
  type StoreErrorKind,
  StreamExists,
  type StreamInfo,
  StreamNotFound,
  type StreamsOptions,
  VersionConflict,
} from "./event-store.ts"
import {
  pagedRead,
  pagedReadAll,
  pollingTail,
  pollingTailAll,
  type ReadGlobalPage,
  type ReadPage,
} from "./paging.ts"
import { redactUrl } from "./url.ts"

export { redactUrl }

/** The schema the store lives in unless told otherwise. */
export const DEFAULT_PG_SCHEMA = "interleave"

/** Schema changes, applied in order, each once; `{schema}` stands for the quoted schema name. */
const MIGRATIONS: ReadonlyArray<{ readonly version: number; readonly name: string; readonly sql: string }> = [
  {
    version: 1,
    name: "streams and events",
    sql: `
      CREATE TABLE {schema}.streams (
        stream text NOT NULL PRIMARY KEY,
        version bigint NOT NULL,
        created bigint GENERATED ALWAYS AS IDENTITY,
        first_recorded_at bigint NOT NULL,
        last_recorded_at bigint NOT NULL
      );
      CREATE TABLE {schema}.events (
        global_position bigint GENERATED ALWAYS AS IDENTITY (MINVALUE 0 START WITH 0) UNIQUE,
        stream text NOT NULL,
        position bigint NOT NULL,
        type text NOT NULL,
        version integer NOT NULL,
        data text NOT NULL,
        recorded_at bigint NOT NULL,
        CONSTRAINT events_stream_position PRIMARY KEY (stream, position)
      )`,
  },
  {
    version: 2,
    name: "writer heartbeats",
    sql: "ALTER TABLE {schema}.streams ADD COLUMN heartbeat_at bigint",
  },
]

/** The newest schema this build knows; a schema with a newer one was written by a newer interleave. */
export const PG_SCHEMA_VERSION = MIGRATIONS.length

/** Events per read page, as in the SQLite store. */
const READ_PAGE_SIZE = 2_000

export interface PostgresStoreOptions {
  /** The schema to keep the store in (created if missing), default `interleave`. */
  readonly schema?: string
  /** Most connections in the pool, default 10. */
  readonly maxConnections?: number
  /**
   * A pool to use instead of opening one (`maxConnections` then does not apply): the sweep queue
   * shares the store's, so a claim and the RunInterrupted it appends commit in one transaction.
   */
  readonly client?: SqlClient
  /**
   * For tests only. `beforeCommit` runs inside every append's transaction, after its events are
   * inserted and before COMMIT (to hold a transaction open); `unorderedGlobalPositions` drops the
   * global-order lock, giving the naive store whose tail readers can skip events, so that a test
   * can show it does.
   */
  readonly testing?: {
    readonly beforeCommit?: (stream: string) => Effect.Effect<void>
    readonly unorderedGlobalPositions?: boolean
  }
}

/** One line out of whatever a failure carries: node-postgres errors, AggregateErrors of `connect`. */
export const causeMessage = (cause: unknown): string => {
  const inner = cause instanceof SqlError ? (cause.cause ?? cause) : cause
  let text: string
  if (inner instanceof AggregateError && inner.errors.length > 0) {
    text = [...new Set(inner.errors.map((e) => (e instanceof Error ? e.message : String(e))))].join("; ")
  } else if (inner instanceof Error) {
    text = inner.message !== "" ? inner.message : ((inner as { code?: string }).code ?? inner.name)
  } else {
    text = String(inner)
  }
  return text.replace(/\s+/g, " ").trim()
}

/** node-postgres puts the SQLSTATE (23505, 28P01, 3D000, ...) on its errors as `code`. */
const pgError = (cause: unknown): { code?: string; constraint?: string } | undefined => {
  const inner = cause instanceof SqlError ? cause.cause : cause
  return typeof inner === "object" && inner !== null
    ? (inner as { code?: string; constraint?: string })
    : undefined
}

/** Errnos of a server that cannot be reached (node-postgres passes the socket's errors on). */
const UNREACHABLE = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EPIPE",
])

/**
 * "unavailable" for a store that is fine but cannot be used now: unreachable, shutting down,
 * out of connections, disk or memory (SQLSTATE class 08, 53, 57P), read-only (25006), locked
 * (55P03), no permission (42501); "bad-input" for the rest (wrong role, database, schema).
 */
export const pgKind = (cause: unknown): StoreErrorKind => {
  const inner = cause instanceof SqlError ? (cause.cause ?? cause) : cause
  const all = inner instanceof AggregateError ? [...inner.errors, inner] : [inner]
  for (const e of all) {
    const code = (e as { code?: unknown } | null)?.code
    if (typeof code === "string") {
      if (UNREACHABLE.has(code) || /^(08|53|57P)/.test(code)) return "unavailable"
      if (code === "25006" || code === "55P03" || code === "42501") return "unavailable"
    }
    const message = e instanceof Error ? e.message : ""
    if (/timeout|terminated unexpectedly|Connection terminated/i.test(message)) return "unavailable"
  }
  return "bad-input"
}

const SCHEMA_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/

/** A row of the stream read query, as positional values (bigints come as strings). */
type EventRow = readonly [
  globalPosition: string,
  position: string,
  type: string,
  version: number,
  data: string,
  recordedAt: string,
]

/** A row of the global read query. */
type GlobalEventRow = readonly [
  globalPosition: string,
  stream: string,
  position: string,
  type: string,
  version: number,
  data: string,
  recordedAt: string,
]

/**
 * Opens (setting up if needed) the event store in the database at `url` (postgres://...).
 * The pool closes with the scope.
 */
export const makePostgresEventStore = (
  url: string,
  options: PostgresStoreOptions = {},
): Effect.Effect<EventStoreShape, StoreError, Scope.Scope> =>
  Effect.gen(function* () {
    const where = redactUrl(url)
    const schema = options.schema ?? DEFAULT_PG_SCHEMA
    if (!/^postgres(ql)?:\/\//.test(url)) {
      return yield* new StoreError({
        message: `${where} is not a PostgreSQL URL (postgres://user@host:port/database)`,
      })
    }
    if (!SCHEMA_NAME.test(schema)) {
      return yield* new StoreError({
        message: `"${schema}" cannot name the event store's schema (letters, digits and _, at most 63)`,
      })
    }
    const q = `"${schema}"`
    const storeError = (what: string) => (cause: unknown) =>
      new StoreError({
        message: `${what} (PostgreSQL at ${where}): ${causeMessage(cause)}`,
        cause,
        kind: pgKind(cause),
      })
    const fail = (what: string) => (e: SqlError) => Effect.fail(storeError(what)(e))

    const sql: SqlClient =
      options.client ??
      (yield* PgClient.make({
        url: Redacted.make(url),
        maxConnections: options.maxConnections ?? 10,
        connectTimeout: Duration.seconds(10),
        idleTimeout: Duration.seconds(30),
        applicationName: "interleave",
      }).pipe(
        Effect.provideServiceEffect(Reactivity.Reactivity, Reactivity.make),
        Effect.mapError((e) => storeError("cannot connect to the event store")(e)),
        Effect.catchAllDefect((cause) => Effect.fail(storeError("cannot connect to the event store")(cause))),
      ))

    /** The schema version found: 0 when the schema is missing or empty; fails if it is not ours. */
    const schemaVersion = Effect.gen(function* () {
      const tables = yield* sql.unsafe<{ name: string }>(
        "SELECT tablename AS name FROM pg_tables WHERE schemaname = $1 ORDER BY tablename",
        [schema],
      )
      if (tables.length === 0) return 0
      if (!tables.some((t) => t.name === "migrations")) {
        return yield* new StoreError({
          message:
            `schema ${schema} of ${where} is not an interleave event store ` +
            `(it has tables: ${tables.map((t) => t.name).join(", ")})`,
        })
      }
      const rows = yield* sql.unsafe<{ v: number | null }>(`SELECT MAX(version) AS v FROM ${q}.migrations`)
      const found = rows[0]?.v ?? 0
      if (found > PG_SCHEMA_VERSION) {
        return yield* new StoreError({
          message:
            `schema ${schema} of ${where} was written by a newer interleave (store schema version ` +
            `${found}, this build knows up to ${PG_SCHEMA_VERSION}); upgrade interleave to use it`,
        })
      }
      return found
    })

    /** Brings the schema to PG_SCHEMA_VERSION: one transaction, one process at a time. */
    const migrate = Effect.gen(function* () {
      yield* sql.unsafe("SELECT pg_advisory_xact_lock(hashtext('interleave:migrate'), hashtext($1))", [
        schema,
      ])
      const found = yield* schemaVersion
      if (found === PG_SCHEMA_VERSION) return
      yield* sql.unsafe(`CREATE SCHEMA IF NOT EXISTS ${q}`)
      yield* sql.unsafe(
        `CREATE TABLE IF NOT EXISTS ${q}.migrations ` +
          "(version integer PRIMARY KEY, name text NOT NULL, applied_at bigint NOT NULL)",
      )
      const now = yield* Clock.currentTimeMillis
      for (const m of MIGRATIONS) {
        if (m.version <= found) continue
        for (const statement of m.sql.replaceAll("{schema}", q).split(";")) {
          if (statement.trim() !== "") yield* sql.unsafe(statement)
        }
        yield* sql.unsafe(`INSERT INTO ${q}.migrations (version, name, applied_at) VALUES ($1, $2, $3)`, [
          m.version,
          m.name,
          now,
        ])
      }
    }).pipe(sql.withTransaction)

    // Usually the schema is there already: then no lock and no DDL, just one look.
    const found = yield* schemaVersion.pipe(Effect.catchTag("SqlError", fail("cannot read the event store")))
    if (found < PG_SCHEMA_VERSION) {
      yield* migrate.pipe(
        Effect.catchTag("SqlError", fail(`cannot set up the event store in schema ${schema}`)),
        Effect.catchAllDefect((cause) =>
          Effect.fail(storeError(`cannot set up the event store in schema ${schema}`)(cause)),
        ),
      )
    }

    const currentVersion = (stream: string) =>
      Effect.map(
        sql.unsafe<{ version: string }>(`SELECT version FROM ${q}.streams WHERE stream = $1`, [stream]),
        (rows) => Number(rows[0]?.version ?? 0),
      )

    const version = (stream: string) =>
      currentVersion(stream).pipe(Effect.catchTag("SqlError", fail(`cannot read stream ${stream}`)))

    const ordered = options.testing?.unorderedGlobalPositions !== true
    const beforeCommit = options.testing?.beforeCommit

    /**
     * The whole append as one statement, so one round trip and (outside a test's explicit
     * transaction) one implicit transaction. The CTEs run in data order: `moved` (the version
     * check, which waits for a racing writer's row lock and then re-checks), else `created` (a
     * new stream, which waits for a racing creator), then `lock` (the commit-order lock, taken
     * only when one of them succeeded), then the INSERT, whose identity values are drawn per row
     * after the lock is held. It yields `ok = 0` for a version conflict, with nothing written.
     */
    const appendSql =
      `WITH moved AS (UPDATE ${q}.streams SET version = $2::bigint + cardinality($5::text[]), last_recorded_at = $4 ` +
      "WHERE stream = $1 AND version = $2 RETURNING 1), " +
      `created AS (INSERT INTO ${q}.streams (stream, version, first_recorded_at, last_recorded_at) ` +
      "SELECT $1, $2::bigint + cardinality($5::text[]), $4, $4 WHERE $2 = 0 AND NOT EXISTS (SELECT 1 FROM moved) " +
      "ON CONFLICT (stream) DO NOTHING RETURNING 1), " +
      "ok AS (SELECT 1 FROM moved UNION ALL SELECT 1 FROM created LIMIT 1), " +
      (ordered
        ? "lock AS (SELECT pg_advisory_xact_lock(hashtext('interleave:global-order'), hashtext($3)) FROM ok), "
        : "lock AS (SELECT $3::text FROM ok), ") +
      `inserted AS (INSERT INTO ${q}.events (stream, position, type, version, data, recorded_at) ` +
      "SELECT $1, $2::bigint + e.n - 1, e.type, e.version, e.data, $4 " +
      "FROM lock, unnest($5::text[], $6::integer[], $7::text[]) WITH ORDINALITY AS e(type, version, data, n) " +
      "ORDER BY e.n RETURNING 1) " +
      "SELECT (SELECT count(*) FROM ok)::integer AS ok, (SELECT count(*) FROM inserted)::integer AS inserted"

    const writeBatch = (
      stream: string,
      data: ReadonlyArray<string>,
      events: ReadonlyArray<EventEnvelope>,
      expected: number,
      now: number,
    ) =>
      Effect.gen(function* () {
        const statement = sql.unsafe<{ ok: number; inserted: number }>(appendSql, [
          stream,
          expected,
          schema,
          now,
          events.map((e) => e.type),
          events.map((e) => e.version),
          data,
        ])
        const rows =
          beforeCommit === undefined
            ? yield* statement
            : yield* sql.withTransaction(Effect.tap(statement, () => beforeCommit(stream)))
        if (rows[0]?.ok !== 1) {
          const actual = yield* currentVersion(stream)
          return yield* new VersionConflict({ stream, expected, actual })
        }
        if (rows[0].inserted !== events.length) {
          return yield* new StoreError({
            message: `stream ${stream}: appended ${rows[0].inserted} events of ${events.length} (PostgreSQL at ${where})`,
          })
        }
        return expected + events.length
      })

    const append = (stream: string, events: ReadonlyArray<EventEnvelope>, expected: number) =>
      Effect.gen(function* () {
        const now = yield* Clock.currentTimeMillis
        const data = yield* Effect.try({
          try: () => events.map((e) => JSON.stringify(e.data) ?? "null"),
          catch: (cause) =>
            new StoreError({ message: `stream ${stream}: event data is not JSON (${String(cause)})`, cause }),
        })
        if (events.length === 0) {
          const actual = yield* currentVersion(stream)
          if (actual !== expected) return yield* new VersionConflict({ stream, expected, actual })
          return actual
        }
        return yield* writeBatch(stream, data, events, expected, now)
      }).pipe(
        Effect.catchTag("SqlError", (e) => {
          const pg = pgError(e)
          // Someone wrote these positions first, bypassing (or racing past) the version check.
          if (pg?.code === "23505" && pg.constraint === "events_stream_position") {
            return Effect.flatMap(
              currentVersion(stream).pipe(Effect.catchTag("SqlError", fail(`cannot read stream ${stream}`))),
              (actual) => Effect.fail(new VersionConflict({ stream, expected, actual })),
            )
          }
          return fail(`cannot append to stream ${stream}`)(e)
        }),
        // A failed COMMIT surfaces as a defect from @effect/sql; it is still the store failing.
        Effect.catchAllDefect((cause) => Effect.fail(storeError(`cannot append to stream ${stream}`)(cause))),
      )

    const parse = <A>(what: string, build: () => A): Effect.Effect<A, StoreError> =>
      Effect.try({ try: build, catch: storeError(`${what} holds an event whose data is not JSON`) })

    const readPage =
      (stream: string): ReadPage<StoreError> =>
      (from, to) =>
        sql
          .unsafe(
            `SELECT global_position, position, type, version, data, recorded_at FROM ${q}.events ` +
              "WHERE stream = $1 AND position >= $2 AND position < $3 ORDER BY position",
            [stream, from, to],
          )
          .values.pipe(
            Effect.catchTag("SqlError", fail(`cannot read stream ${stream}`)),
            Effect.flatMap((rows) =>
              parse(`stream ${stream}`, () => {
                const page = new Array<StoredEvent>(rows.length)
                for (let i = 0; i < rows.length; i++) {
                  const r = rows[i] as EventRow
                  page[i] = {
                    stream,
                    position: Number(r[1]),
                    globalPosition: Number(r[0]),
                    type: r[2],
                    version: r[3],
                    data: JSON.parse(r[4]),
                    recordedAt: Number(r[5]),
                  }
                }
                return page
              }),
            ),
          )

    const readGlobalPage: ReadGlobalPage<StoreError> = (after, limit) =>
      sql
        .unsafe(
          `SELECT global_position, stream, position, type, version, data, recorded_at FROM ${q}.events ` +
            "WHERE global_position > $1 AND NOT starts_with(stream, $3) ORDER BY global_position LIMIT $2",
          [Math.floor(after), limit, STAGING_PREFIX],
        )
        .values.pipe(
          Effect.catchTag("SqlError", fail("cannot read the global log")),
          Effect.flatMap((rows) =>
            parse("the global log", () => {
              const page = new Array<StoredEvent>(rows.length)
              for (let i = 0; i < rows.length; i++) {
                const r = rows[i] as GlobalEventRow
                page[i] = {
                  stream: r[1],
                  position: Number(r[2]),
                  globalPosition: Number(r[0]),
                  type: r[3],
                  version: r[4],
                  data: JSON.parse(r[5]),
                  recordedAt: Number(r[6]),
                }
              }
              return page
            }),
          ),
        )

    const streams = (options?: StreamsOptions) =>
      sql
        .unsafe<{ stream: string; version: string; first: string; last: string; beat: string | null }>(
          "SELECT stream, version, first_recorded_at AS first, last_recorded_at AS last, heartbeat_at AS beat " +
            `FROM ${q}.streams WHERE starts_with(stream, $1) = $2 ORDER BY created`,
          [STAGING_PREFIX, options?.staging === true],
        )
        .pipe(
          Effect.map((rows) =>
            rows.map(
              (r): StreamInfo => ({
                stream: r.stream,
                version: Number(r.version),
                firstRecordedAt: Number(r.first),
                lastRecordedAt: Number(r.last),
                ...(r.beat === null ? {} : { heartbeatAt: Number(r.beat) }),
              }),
            ),
          ),
          Effect.catchTag("SqlError", fail("cannot list streams")),
        )

    /** A write's failures as StoreErrors (a failed COMMIT surfaces as a defect from @effect/sql). */
    const writing =
      (what: string) =>
      <A, E>(eff: Effect.Effect<A, E | SqlError>) =>
        eff.pipe(
          Effect.catchIf((e): e is SqlError => e instanceof SqlError, fail(what)),
          Effect.catchAllDefect((cause) => Effect.fail(storeError(what)(cause))),
        ) as Effect.Effect<A, Exclude<E, SqlError> | StoreError>

    const deleteStream = (stream: string) =>
      Effect.gen(function* () {
        const rows = yield* sql.unsafe<{ version: string }>(
          `DELETE FROM ${q}.streams WHERE stream = $1 RETURNING version`,
          [stream],
        )
        if (rows.length === 0) return 0
        yield* sql.unsafe(`DELETE FROM ${q}.events WHERE stream = $1`, [stream])
        return Number(rows[0]!.version)
      }).pipe(sql.withTransaction, writing(`cannot delete stream ${stream}`))

    const renameStream = (from: string, to: string) =>
      Effect.gen(function* () {
        // The source row locked first: a racing append to it waits for the rename, then conflicts.
        const source = yield* sql.unsafe(`SELECT 1 FROM ${q}.streams WHERE stream = $1 FOR UPDATE`, [from])
        if (source.length === 0) return yield* new StreamNotFound({ stream: from })
        const created = yield* sql.unsafe(
          `INSERT INTO ${q}.streams (stream, version, first_recorded_at, last_recorded_at, heartbeat_at) ` +
            `SELECT $2, version, first_recorded_at, last_recorded_at, heartbeat_at FROM ${q}.streams WHERE stream = $1 ` +
            "ON CONFLICT (stream) DO NOTHING RETURNING 1",
          [from, to],
        )
        if (created.length === 0) return yield* new StreamExists({ stream: to })
        // Fresh global positions, drawn in order under the lock every append takes (see above).
        yield* sql.unsafe("SELECT pg_advisory_xact_lock(hashtext('interleave:global-order'), hashtext($1))", [
          schema,
        ])
        yield* sql.unsafe(
          `INSERT INTO ${q}.events (stream, position, type, version, data, recorded_at) ` +
            `SELECT $2, position, type, version, data, recorded_at FROM ${q}.events WHERE stream = $1 ORDER BY position`,
          [from, to],
        )
        yield* sql.unsafe(`DELETE FROM ${q}.events WHERE stream = $1`, [from])
        yield* sql.unsafe(`DELETE FROM ${q}.streams WHERE stream = $1`, [from])
      }).pipe(sql.withTransaction, writing(`cannot rename stream ${from} to ${to}`))

    const heartbeat = (stream: string, at: number) =>
      sql
        .unsafe(`UPDATE ${q}.streams SET heartbeat_at = $2 WHERE stream = $1 RETURNING 1`, [stream, at])
        .pipe(
          Effect.map((rows) => rows.length > 0),
          writing(`cannot record a heartbeat for stream ${stream}`),
        )

    return EventStore.of({
      append,
      read: (stream, options) => pagedRead(readPage(stream), options, READ_PAGE_SIZE),
      version,
      streams,
      deleteStream,
      renameStream,
      heartbeat,
      tail: (stream, options) => pollingTail(readPage(stream), options, READ_PAGE_SIZE),
      readAll: (options) => pagedReadAll(readGlobalPage, options, READ_PAGE_SIZE),
      tailAll: (options) => pollingTailAll(readGlobalPage, options, READ_PAGE_SIZE),
    })
  })

/** The PostgreSQL event store at `url` (postgres://...), set up if needed, closed with the layer. */
export const PostgresEventStoreLive = (
  url: string,
  options?: PostgresStoreOptions,
): Layer.Layer<EventStore, StoreError> => Layer.scoped(EventStore, makePostgresEventStore(url, options))

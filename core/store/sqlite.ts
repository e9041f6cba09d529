/**
 * SQLite EventStore: the embedded default (`.interleave/runs.db`), through @effect/sql.
 *
 * - Optimistic append, as in Emmett's SQLite store: one transaction that moves the stream's
 *   version with a conditional `UPDATE ... WHERE stream = ? AND version = ?` (or inserts a new
 *   stream), then inserts the events; UNIQUE(stream, position) backs it up. The loser of a race
 *   sees zero rows updated and gets `VersionConflict`, with nothing written.
 * - Reads page by position (keyset pagination), so a stream of millions of events is read in
 *   bounded memory; `readAll` pages the same way by global position.
 * - Global order: SQLite has one writer at a time, and an append takes its global positions
 *   (MAX + 1) inside its write transaction, so global positions are committed in order and a
 *   `readAll`/`tailAll` reader can never see a later one before an earlier one.
 * - The file is checked before SQLite ever opens it: a file that is not a SQLite database (a JSONL
 *   log passed by mistake) is refused untouched, and a SQLite database that is not ours is
 *   refused before anything (WAL mode included) is written to it.
 * - Everything goes through @effect/sql, hot paths included: with multi-row INSERTs and 2000-row
 *   read pages, its overhead over bare better-sqlite3 running the same statements measured at
 *   noise level for reads and up to about 25% for appends, well inside the targets of
 *   benchmarks/store-bench.ts; so there is no second, raw connection to keep consistent.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import * as Reactivity from "@effect/experimental/Reactivity"
import type { SqlClient } from "@effect/sql/SqlClient"
import { SqlError } from "@effect/sql/SqlError"
import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import { Clock, Effect, Layer, Schedule, type Scope } from "effect"
import {
  type EventEnvelope,
  EventStore,
  type EventStoreShape,
  type StoredEvent,
  StoreError,
  type StreamInfo,
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

/** The first 16 bytes of every SQLite 3 database file. */
const SQLITE_HEADER = Buffer.from("SQLite format 3\0", "latin1")

const MIGRATIONS_TABLE = "interleave_migrations"

/** Schema changes, applied in order, each once; a file records the ones it has. */
const MIGRATIONS: ReadonlyArray<{ readonly version: number; readonly name: string; readonly sql: string }> = [
  {
    version: 1,
    name: "streams and events",
    sql: `
      CREATE TABLE streams (
        stream TEXT NOT NULL PRIMARY KEY,
        version INTEGER NOT NULL,
        first_recorded_at INTEGER NOT NULL,
        last_recorded_at INTEGER NOT NULL
      );
      -- Clustered by (stream, position): a replay reads one stream's rows in key order.
      CREATE TABLE events (
        stream TEXT NOT NULL,
        position INTEGER NOT NULL,
        global_position INTEGER NOT NULL UNIQUE,
        type TEXT NOT NULL,
        version INTEGER NOT NULL,
        data TEXT NOT NULL,
        recorded_at INTEGER NOT NULL,
        PRIMARY KEY (stream, position)
      ) WITHOUT ROWID;`,
  },
]

/** The newest schema this build knows; a file with a newer one was written by a newer interleave. */
export const SCHEMA_VERSION = MIGRATIONS.length

/**
 * Events per read page: enough to make @effect/sql's per-statement cost negligible, small enough
 * that a page dies young in V8's heap (10k-event pages measured slower: they get promoted).
 */
const READ_PAGE_SIZE = 2_000

/** Bound parameters per event row in the INSERT. */
const PARAMS_PER_ROW = 7
/** Most rows per INSERT: the largest power of two whose parameters fit SQLite's limit of 32766. */
const MAX_INSERT_ROWS = 4096

/**
 * Splits `rows` into INSERT sizes drawn from a fixed set (4096 and the powers of two below it):
 * a batch of any size takes at most 12 statements beyond its full 4096-row ones, and only 13
 * distinct statements are ever built and prepared, whatever batch sizes callers use.
 */
const insertSizes = (rows: number): Array<number> => {
  const sizes: Array<number> = []
  let left = rows
  for (; left >= MAX_INSERT_ROWS; left -= MAX_INSERT_ROWS) sizes.push(MAX_INSERT_ROWS)
  for (let size = MAX_INSERT_ROWS / 2; size >= 1; size /= 2) {
    if (left >= size) {
      sizes.push(size)
      left -= size
    }
  }
  return sizes
}

/**
 * Writers in this process that share a file take turns. better-sqlite3 is synchronous: a second
 * connection that found the file locked would wait for it in SQLite's busy handler, blocking the
 * very thread the holder needs to commit. Across processes SQLite's own lock and busy timeout
 * do the job.
 */
const fileLocks = new Map<string, Effect.Semaphore>()
const fileLock = (file: string): Effect.Semaphore => {
  let lock = fileLocks.get(file)
  if (lock === undefined) {
    lock = Effect.unsafeMakeSemaphore(1)
    fileLocks.set(file, lock)
  }
  return lock
}

const causeMessage = (cause: unknown): string => {
  const inner = cause instanceof SqlError ? cause.cause : cause
  return inner instanceof Error ? inner.message : String(inner)
}

const storeError = (message: string) => (cause: unknown) =>
  new StoreError({ message: `${message}: ${causeMessage(cause)}`, cause })

/** SQLite's error code (SQLITE_BUSY, SQLITE_NOTADB, ...) under an error, if there is one. */
const sqliteCode = (cause: unknown): string | undefined => {
  const inner = cause instanceof SqlError ? cause.cause : cause
  const code = (inner as { code?: unknown } | undefined)?.code
  return typeof code === "string" ? code : undefined
}

const isBusy = (e: StoreError): boolean => sqliteCode(e.cause)?.startsWith("SQLITE_BUSY") === true

/**
 * Refuses, without opening or writing it, a path that cannot be our store: a directory, or a
 * non-empty file that does not start with the SQLite header. Creates the folders of a new file.
 */
const checkFile = (file: string): Effect.Effect<void, StoreError> =>
  Effect.try({
    try: () => {
      let stat: fs.Stats | undefined
      try {
        stat = fs.statSync(file)
      } catch (cause) {
        if ((cause as NodeJS.ErrnoException).code !== "ENOENT") throw cause
      }
      if (stat === undefined) {
        fs.mkdirSync(path.dirname(file), { recursive: true })
        return
      }
      if (stat.isDirectory()) {
        throw new StoreError({ message: `${file} is a directory, not an interleave event store` })
      }
      if (!stat.isFile()) {
        throw new StoreError({ message: `${file} is not an interleave event store (not a regular file)` })
      }
      if (stat.size === 0) return
      const header = Buffer.alloc(SQLITE_HEADER.length)
      const fd = fs.openSync(file, "r")
      let read: number
      try {
        read = fs.readSync(fd, header, 0, header.length, 0)
      } finally {
        fs.closeSync(fd)
      }
      if (read < header.length || !header.equals(SQLITE_HEADER)) {
        throw new StoreError({ message: `${file} is not an interleave event store (not a SQLite database)` })
      }
    },
    catch: (cause) =>
      cause instanceof StoreError ? cause : storeError(`cannot use ${file} as an event store`)(cause),
  })

/** The schema version a file holds: 0 for a fresh database; fails for a database that is not ours. */
const schemaVersion = (sql: SqlClient, file: string): Effect.Effect<number, StoreError> =>
  Effect.gen(function* () {
    const tables = yield* sql.unsafe<{ name: string }>(
      "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
    )
    if (tables.length === 0) return 0
    if (!tables.some((t) => t.name === MIGRATIONS_TABLE)) {
      const names = tables.map((t) => t.name).join(", ")
      return yield* new StoreError({
        message: `${file} is a SQLite database but not an interleave event store (it has tables: ${names})`,
      })
    }
    const rows = yield* sql.unsafe<{ v: number | null }>(`SELECT MAX(version) AS v FROM ${MIGRATIONS_TABLE}`)
    return rows[0]?.v ?? 0
  }).pipe(
    Effect.catchTag("SqlError", (e) =>
      Effect.fail(
        sqliteCode(e) === "SQLITE_NOTADB" || sqliteCode(e) === "SQLITE_CORRUPT"
          ? storeError(`${file} is not an interleave event store (a damaged SQLite file)`)(e)
          : storeError(`cannot read ${file}`)(e),
      ),
    ),
  )

const refuseNewer = (file: string, found: number): Effect.Effect<void, StoreError> =>
  found > SCHEMA_VERSION
    ? Effect.fail(
        new StoreError({
          message:
            `${file} was written by a newer interleave (store schema version ${found}, ` +
            `this build knows up to ${SCHEMA_VERSION}); upgrade interleave to use it`,
        }),
      )
    : Effect.void

/** Brings a fresh or older file to SCHEMA_VERSION, in one transaction, re-checking inside it. */
const migrate = (sql: SqlClient, file: string): Effect.Effect<void, StoreError> =>
  Effect.gen(function* () {
    yield* sql.unsafe(
      `CREATE TABLE IF NOT EXISTS ${MIGRATIONS_TABLE} ` +
        "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)",
    )
    const found = yield* schemaVersion(sql, file)
    yield* refuseNewer(file, found)
    const now = yield* Clock.currentTimeMillis
    for (const m of MIGRATIONS) {
      if (m.version <= found) continue
      for (const statement of m.sql.split(";").filter((s) => s.trim() !== "")) {
        yield* sql.unsafe(statement)
      }
      yield* sql.unsafe(`INSERT INTO ${MIGRATIONS_TABLE} (version, name, applied_at) VALUES (?, ?, ?)`, [
        m.version,
        m.name,
        now,
      ])
    }
  }).pipe(
    sql.withTransaction,
    Effect.catchTag("SqlError", (e) =>
      Effect.fail(storeError(`cannot set up the event store in ${file}`)(e)),
    ),
    // Another process may be setting up the same new file: its commit invalidates our snapshot.
    Effect.retry({ while: isBusy, schedule: Schedule.spaced("50 millis"), times: 5 }),
  )

const insertSqlCache = new Map<number, string>()
const insertSql = (rows: number): string => {
  let sql = insertSqlCache.get(rows)
  if (sql === undefined) {
    const row = `(${Array.from({ length: PARAMS_PER_ROW }, () => "?").join(",")})`
    sql =
      "INSERT INTO events (global_position, stream, position, type, version, data, recorded_at) VALUES " +
      Array.from({ length: rows }, () => row).join(",")
    insertSqlCache.set(rows, sql)
  }
  return sql
}

/** A row of the global read query, as positional values. */
type GlobalEventRow = readonly [
  globalPosition: number,
  stream: string,
  position: number,
  type: string,
  version: number,
  data: string,
  recordedAt: number,
]

/** A row of the read query, as positional values. */
type EventRow = readonly [
  globalPosition: number,
  position: number,
  type: string,
  version: number,
  data: string,
  recordedAt: number,
]

/**
 * Opens (creating if needed) the event store in `file`. The connection closes with the scope.
 */
export const makeSqliteEventStore = (file: string): Effect.Effect<EventStoreShape, StoreError, Scope.Scope> =>
  Effect.gen(function* () {
    yield* checkFile(file)
    const lock = fileLock(path.resolve(file))
    // WAL is switched on by hand below, only once the file is known to be ours.
    const sql = yield* SqliteClient.make({ filename: file, disableWAL: true }).pipe(
      Effect.catchAllDefect((cause) => Effect.fail(storeError(`cannot open ${file}`)(cause))),
      Effect.provideServiceEffect(Reactivity.Reactivity, Reactivity.make),
    )
    const found = yield* schemaVersion(sql, file)
    yield* refuseNewer(file, found)
    const setup = Effect.gen(function* () {
      const mode = yield* sql.unsafe<{ journal_mode: string }>("PRAGMA journal_mode = WAL")
      if (mode[0]?.journal_mode !== "wal") {
        return yield* new StoreError({
          message: `cannot switch ${file} to WAL journal mode (it stays in ${mode[0]?.journal_mode})`,
        })
      }
      // NORMAL is durable in WAL mode against a crash of the process; a power cut may lose the
      // last commits but never corrupts the file.
      yield* sql.unsafe("PRAGMA synchronous = NORMAL")
    }).pipe(Effect.catchTag("SqlError", (e) => Effect.fail(storeError(`cannot open ${file}`)(e))))
    yield* lock.withPermits(1)(
      Effect.zipRight(setup, found < SCHEMA_VERSION ? migrate(sql, file) : Effect.void),
    )

    const fail = (what: string) => (e: SqlError) => Effect.fail(storeError(`${what} (${file})`)(e))

    const currentVersion = (stream: string) =>
      Effect.map(
        sql.unsafe<{ version: number }>("SELECT version FROM streams WHERE stream = ?", [stream]),
        (rows) => rows[0]?.version ?? 0,
      )

    const version = (stream: string) =>
      currentVersion(stream).pipe(Effect.catchTag("SqlError", fail(`cannot read stream ${stream}`)))

    const writeBatch = (
      stream: string,
      data: ReadonlyArray<string>,
      events: ReadonlyArray<EventEnvelope>,
      expected: number,
      now: number,
    ) =>
      Effect.gen(function* () {
        const newVersion = expected + events.length
        const moved = yield* sql.unsafe(
          "UPDATE streams SET version = ?, last_recorded_at = ? WHERE stream = ? AND version = ? RETURNING version",
          [newVersion, now, stream, expected],
        )
        if (moved.length === 0) {
          const created =
            expected === 0
              ? yield* sql.unsafe(
                  "INSERT INTO streams (stream, version, first_recorded_at, last_recorded_at) VALUES (?, ?, ?, ?) " +
                    "ON CONFLICT (stream) DO NOTHING RETURNING version",
                  [stream, newVersion, now, now],
                )
              : []
          if (created.length === 0) {
            const actual = yield* currentVersion(stream)
            return yield* new VersionConflict({ stream, expected, actual })
          }
        }
        const next = yield* sql.unsafe<{ next: number }>(
          "SELECT COALESCE(MAX(global_position) + 1, 0) AS next FROM events",
        )
        const firstGlobal = next[0]?.next ?? 0
        let start = 0
        for (const size of insertSizes(events.length)) {
          const params: Array<unknown> = new Array(size * PARAMS_PER_ROW)
          let p = 0
          for (let i = start; i < start + size; i++) {
            const e = events[i]!
            params[p++] = firstGlobal + i
            params[p++] = stream
            params[p++] = expected + i
            params[p++] = e.type
            params[p++] = e.version
            params[p++] = data[i]
            params[p++] = now
          }
          yield* sql.unsafe(insertSql(size), params)
          start += size
        }
        return newVersion
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
        return yield* lock.withPermits(1)(
          sql.withTransaction(writeBatch(stream, data, events, expected, now)),
        )
      }).pipe(
        Effect.catchTag("SqlError", fail(`cannot append to stream ${stream}`)),
        // A failed COMMIT surfaces as a defect from @effect/sql; it is still the store failing.
        Effect.catchAllDefect((cause) =>
          Effect.fail(storeError(`cannot append to stream ${stream} (${file})`)(cause)),
        ),
      )

    const readPage =
      (stream: string): ReadPage<StoreError> =>
      (from, to) =>
        sql
          .unsafe(
            "SELECT global_position, position, type, version, data, recorded_at FROM events " +
              "WHERE stream = ? AND position >= ? AND position < ? ORDER BY position",
            [stream, from, to],
          )
          .values.pipe(
            Effect.catchTag("SqlError", fail(`cannot read stream ${stream}`)),
            Effect.flatMap((rows) =>
              Effect.try({
                try: () => {
                  // The hot loop of every read: index access and a preallocated array, no iterators.
                  const page = new Array<StoredEvent>(rows.length)
                  for (let i = 0; i < rows.length; i++) {
                    const r = rows[i] as EventRow
                    page[i] = {
                      stream,
                      position: r[1],
                      globalPosition: r[0],
                      type: r[2],
                      version: r[3],
                      data: JSON.parse(r[4]),
                      recordedAt: r[5],
                    }
                  }
                  return page
                },
                catch: storeError(`stream ${stream} holds an event whose data is not JSON (${file})`),
              }),
            ),
          )

    const readGlobalPage: ReadGlobalPage<StoreError> = (after, limit) =>
      sql
        .unsafe(
          "SELECT global_position, stream, position, type, version, data, recorded_at FROM events " +
            "WHERE global_position > ? ORDER BY global_position LIMIT ?",
          [after, limit],
        )
        .values.pipe(
          Effect.catchTag("SqlError", fail("cannot read the global log")),
          Effect.flatMap((rows) =>
            Effect.try({
              try: () => {
                const page = new Array<StoredEvent>(rows.length)
                for (let i = 0; i < rows.length; i++) {
                  const r = rows[i] as GlobalEventRow
                  page[i] = {
                    stream: r[1],
                    position: r[2],
                    globalPosition: r[0],
                    type: r[3],
                    version: r[4],
                    data: JSON.parse(r[5]),
                    recordedAt: r[6],
                  }
                }
                return page
              },
              catch: storeError(`the global log holds an event whose data is not JSON (${file})`),
            }),
          ),
        )

    const streams = () =>
      sql
        .unsafe<{ stream: string; version: number; first: number; last: number }>(
          "SELECT stream, version, first_recorded_at AS first, last_recorded_at AS last FROM streams ORDER BY rowid",
        )
        .pipe(
          Effect.map((rows) =>
            rows.map(
              (r): StreamInfo => ({
                stream: r.stream,
                version: r.version,
                firstRecordedAt: r.first,
                lastRecordedAt: r.last,
              }),
            ),
          ),
          Effect.catchTag("SqlError", fail("cannot list streams")),
        )

    return EventStore.of({
      append,
      read: (stream, options) => pagedRead(readPage(stream), options, READ_PAGE_SIZE),
      version,
      streams,
      tail: (stream, options) => pollingTail(readPage(stream), options, READ_PAGE_SIZE),
      readAll: (options) => pagedReadAll(readGlobalPage, options, READ_PAGE_SIZE),
      tailAll: (options) => pollingTailAll(readGlobalPage, options, READ_PAGE_SIZE),
    })
  })

/** The SQLite event store in `file` (created with its folders if missing), closed with the layer. */
export const SqliteEventStoreLive = (file: string): Layer.Layer<EventStore, StoreError> =>
  Layer.scoped(EventStore, makeSqliteEventStore(file))

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
 * - Locks: SQLite has one writer at a time. A writer that finds the file locked by another process
 *   waits (SQLite's busy handler, at most 1 s an attempt, then a non-blocking back-off between
 *   attempts) for up to `lockWaitMs` (60 s by default) before it gives up with a StoreError of kind
 *   "unavailable" that says the store is locked by another process. A full disk (SQLITE_FULL,
 *   ENOSPC) and a read-only file or file system are "unavailable" too, in words.
 * - Read-only (`readOnly: true`, for the commands that only read): no WAL switch, no migration, no
 *   file or folder created, no -wal/-shm left behind, so it works on a read-only mount and on a
 *   store owned by another user. A missing file reads as an empty store. An older schema is read
 *   as it is (the queries leave out what it lacks). When no writer has the file open (no -wal file)
 *   it is opened `immutable` (SQLite then needs no -shm and takes no locks); should a -wal file
 *   appear later (a writer started), the next query switches to an ordinary read-only connection
 *   that sees the writer's commits through the -wal and -shm it made.
 * - Staging streams (`.staging/...`) are left out of `streams()` and the global log; a rename
 *   moves a stream's events to the end of the global log under fresh global positions.
 * - Everything goes through @effect/sql, hot paths included: with multi-row INSERTs and 2000-row
 *   read pages, its overhead over bare better-sqlite3 running the same statements measured at
 *   noise level for reads and up to about 25% for appends, well inside the targets of
 *   benchmarks/store-bench.ts; so there is no second, raw connection to keep consistent.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { pathToFileURL } from "node:url"
import * as Reactivity from "@effect/experimental/Reactivity"
import type { SqlClient } from "@effect/sql/SqlClient"
import { SqlError } from "@effect/sql/SqlError"
import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import { Clock, Effect, ExecutionStrategy, Layer, Scope } from "effect"
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
import { makeMemoryEventStore } from "./memory.ts"
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
  {
    version: 2,
    name: "writer heartbeats",
    sql: "ALTER TABLE streams ADD COLUMN heartbeat_at INTEGER",
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

/** How long a writer waits for a lock another process holds, unless told otherwise. */
export const DEFAULT_LOCK_WAIT_MS = 60_000

export interface SqliteStoreOptions {
  /**
   * Only read: no WAL switch, no migration, no file, folder, -wal or -shm created. Every write
   * fails with a StoreError. A missing file reads as an empty store.
   */
  readonly readOnly?: boolean | undefined
  /** How long a write waits for a lock held by another process before it gives up, in ms. */
  readonly lockWaitMs?: number | undefined
  /** For tests only: statements run on the connection once it is set up (`PRAGMA max_page_count`). */
  readonly testing?: { readonly pragmas?: ReadonlyArray<string> } | undefined
}

/** SQLite's error code (SQLITE_BUSY, SQLITE_NOTADB, ...) or the errno under an error, if any. */
const errorCode = (cause: unknown): string | undefined => {
  const inner = cause instanceof SqlError ? cause.cause : cause
  const code = (inner as { code?: unknown } | undefined)?.code
  return typeof code === "string" ? code : undefined
}

const isBusyCode = (code: string | undefined): boolean =>
  code !== undefined && (code.startsWith("SQLITE_BUSY") || code.startsWith("SQLITE_LOCKED"))

/**
 * The store cannot be used now: locked, full, read-only, not permitted, or damaged (a malformed
 * b-tree: SQLITE_CORRUPT, found by a query or by the check on opening for writes).
 */
const UNAVAILABLE =
  /^(SQLITE_(BUSY|LOCKED|FULL|READONLY|CANTOPEN|PERM|IOERR|AUTH|CORRUPT)|ENOSPC|EROFS|EACCES|EPERM|EDQUOT)/

/** What to say of a store SQLite finds damaged. */
const DAMAGED =
  "the store file is damaged (SQLite: database disk image is malformed); nothing more is written to it: restore it from a backup (sqlite3's .recover salvages what it can)"

/**
 * Stores up to this size (with their -wal) get `PRAGMA quick_check` when opened for writes: it
 * reads every page, 2 to 4 ms per MiB (at most ~60 ms here). Larger ones get a probe of the pages an
 * append reads (the streams table, the ends of the events table), and any later query that meets
 * a damaged page fails as DAMAGED.
 */
export const QUICK_CHECK_MAX_BYTES = 16 * 1024 * 1024

/** A failure's cause in words: SQLite's codes and errnos a user can act on, else its message. */
const causeText = (cause: unknown): string => {
  const code = errorCode(cause) ?? ""
  if (code === "SQLITE_FULL" || code === "ENOSPC" || code === "SQLITE_IOERR_WRITE" || code === "EDQUOT")
    return "the disk is full (no space left on the device)"
  if (code.startsWith("SQLITE_READONLY") || code === "EROFS")
    return "the store is read-only (a read-only file system, or no permission to write it)"
  if (code === "EACCES" || code === "EPERM" || code === "SQLITE_PERM") return "permission denied"
  if (code.startsWith("SQLITE_CORRUPT")) return DAMAGED
  if (code.startsWith("SQLITE_CANTOPEN"))
    return "unable to open database file (no permission to open it, or its folder is read-only)"
  const inner = cause instanceof SqlError ? cause.cause : cause
  return inner instanceof Error ? inner.message : String(inner)
}

const kindOf = (cause: unknown): StoreErrorKind =>
  UNAVAILABLE.test(errorCode(cause) ?? "") ? "unavailable" : "bad-input"

const storeError = (message: string) => (cause: unknown) =>
  new StoreError({ message: `${message}: ${causeText(cause)}`, cause, kind: kindOf(cause) })

/**
 * Runs `eff` again while it fails because another process holds the lock, backing off from 25 ms
 * to 1 s between attempts, until `waitMs` have passed; then lets the last failure through.
 * Wall-clock time on purpose: the budget is real time another process holds a lock.
 */
const retryWhileLocked = <A, E>(eff: Effect.Effect<A, E>, waitMs: number): Effect.Effect<A, E> =>
  Effect.suspend(() => {
    const deadline = Date.now() + waitMs
    const attempt = (delay: number): Effect.Effect<A, E> =>
      Effect.catchIf(
        eff,
        (e) => isBusyCode(errorCode(e instanceof StoreError ? e.cause : e)) && Date.now() < deadline,
        () =>
          Effect.zipRight(
            Effect.sleep(Math.max(1, Math.min(delay, deadline - Date.now()))),
            Effect.suspend(() => attempt(Math.min(delay * 2, 1000))),
          ),
      )
    return attempt(25)
  })

/** The one message for a write that gave up on a lock, so that every write says it alike. */
const lockedText = (file: string, waitMs: number) =>
  `${file} is locked by another process (gave up after waiting ${Math.round(waitMs / 100) / 10} s for it)`

/**
 * Refuses, without opening or writing it, a path that cannot be our store: a directory, or a
 * non-empty file that does not start with the SQLite header. Creates the folders of a new file
 * unless `readOnly`. Says whether there is anything to open: "missing" and "empty" files hold no
 * store yet.
 */
const checkFile = (
  file: string,
  readOnly: boolean,
): Effect.Effect<"missing" | "empty" | "database", StoreError> =>
  Effect.try({
    try: () => {
      let stat: fs.Stats | undefined
      try {
        stat = fs.statSync(file)
      } catch (cause) {
        if ((cause as NodeJS.ErrnoException).code !== "ENOENT") throw cause
      }
      if (stat === undefined) {
        if (!readOnly) fs.mkdirSync(path.dirname(file), { recursive: true })
        return "missing"
      }
      if (stat.isDirectory()) {
        throw new StoreError({ message: `${file} is a directory, not an interleave event store` })
      }
      if (!stat.isFile()) {
        throw new StoreError({ message: `${file} is not an interleave event store (not a regular file)` })
      }
      if (stat.size === 0) return "empty"
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
      return "database"
    },
    catch: (cause) =>
      cause instanceof StoreError ? cause : storeError(`cannot use ${file} as an event store`)(cause),
  })

/** Bytes of a store with its -wal (what quick_check reads). */
const storeBytes = (absolute: string): number =>
  [absolute, `${absolute}-wal`].reduce(
    (n, f) => n + (fs.statSync(f, { throwIfNoEntry: false })?.size ?? 0),
    0,
  )

/**
 * Refuses (kind "unavailable", exit 3) to write into a store whose b-tree is malformed: the whole
 * file checked by `PRAGMA quick_check(1)` up to QUICK_CHECK_MAX_BYTES, else the pages an append
 * reads first. Run on opening for writes only (readers meet damage when they read it).
 */
const checkIntact = (sql: SqlClient, file: string, absolute: string): Effect.Effect<void, StoreError> =>
  Effect.gen(function* () {
    if (storeBytes(absolute) <= QUICK_CHECK_MAX_BYTES) {
      const rows = yield* sql.unsafe<{ quick_check: string }>("PRAGMA quick_check(1)")
      const result = rows[0]?.quick_check ?? "no result"
      if (result !== "ok")
        return yield* new StoreError({
          message: `${file}: ${DAMAGED} (${clipText(result.replace(/\s+/g, " "))})`,
          kind: "unavailable",
        })
      return
    }
    yield* sql.unsafe("SELECT count(*), max(version) FROM streams")
    // One aggregate a query: SQLite answers a lone min() or max() from the index's end pages.
    yield* sql.unsafe("SELECT max(global_position) FROM events")
    yield* sql.unsafe("SELECT min(global_position) FROM events")
  }).pipe(
    Effect.catchTag("SqlError", (e) =>
      Effect.fail(new StoreError({ message: `${file}: ${causeText(e)}`, cause: e, kind: kindOf(e) })),
    ),
  )

const clipText = (text: string, max = 160): string => (text.length <= max ? text : `${text.slice(0, max)}…`)

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
        errorCode(e) === "SQLITE_NOTADB" || errorCode(e) === "SQLITE_CORRUPT"
          ? new StoreError({
              message: `${file} is not an interleave event store (a damaged SQLite file): ${errorCode(e) === "SQLITE_CORRUPT" ? "database disk image is malformed" : causeText(e)}`,
              cause: e,
            })
          : storeError(`cannot open ${file}`)(e),
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
const migrate = (sql: SqlClient, file: string, lockWaitMs: number): Effect.Effect<void, StoreError> =>
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
    // Another process may be setting up the same new file: its commit invalidates our snapshot.
    (eff) => retryWhileLocked(eff, lockWaitMs),
    Effect.catchTag("SqlError", (e) =>
      Effect.fail(
        isBusyCode(errorCode(e))
          ? new StoreError({
              message: `cannot set up ${lockedText(file, lockWaitMs)}`,
              cause: e,
              kind: "unavailable",
            })
          : storeError(`cannot set up the event store in ${file}`)(e),
      ),
    ),
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

/** A WHERE condition on `stream`: staging streams only, or every other stream. */
const stagingCondition = (staging: boolean) =>
  `substr(stream, 1, ${STAGING_PREFIX.length}) ${staging ? "=" : "<>"} '${STAGING_PREFIX}'`

/** Every write on a store opened read-only fails with this. */
const readOnlyError = (file: string) =>
  new StoreError({ message: `${file} is open read-only: cannot write to it`, kind: "unavailable" })

/** `store` with its writes refused: how a read-only store that holds nothing yet is read. */
const refuseWrites = (store: EventStoreShape, file: string): EventStoreShape => {
  const refused = Effect.fail(readOnlyError(file))
  return {
    ...store,
    append: () => refused,
    deleteStream: () => refused,
    renameStream: () => refused,
    heartbeat: () => refused,
  }
}

// `immutable` read-only opens need URI file names, which better-sqlite3 switches on from this
// variable when it loads its native addon (once per process, at the first open). Whoever set it
// (to 0) keeps their choice; read-only opens then fall back to plain read-only connections.
process.env.SQLITE_USE_URI ??= "1"

/**
 * Opens (creating if needed) the event store in `file`; with `readOnly`, reads it without
 * writing or creating anything. The connection closes with the scope.
 */
export const makeSqliteEventStore = (
  file: string,
  options: SqliteStoreOptions = {},
): Effect.Effect<EventStoreShape, StoreError, Scope.Scope> =>
  Effect.gen(function* () {
    process.env.SQLITE_USE_URI ??= "1"
    const readOnly = options.readOnly === true
    const lockWaitMs = Math.max(0, options.lockWaitMs ?? DEFAULT_LOCK_WAIT_MS)
    const found0 = yield* checkFile(file, readOnly)
    if (readOnly && found0 !== "database") return refuseWrites(yield* makeMemoryEventStore(), file)
    const absolute = path.resolve(file)
    const lock = fileLock(absolute)
    const walFile = `${absolute}-wal`
    const scope = yield* Effect.scope

    /** A connection of its own scope (closed with the store's), immutable or not. */
    const connect = (immutable: boolean): Effect.Effect<SqlClient, StoreError> =>
      Effect.gen(function* () {
        const child = yield* Scope.fork(scope, ExecutionStrategy.sequential)
        const open = (filename: string) =>
          Scope.extend(
            // WAL is switched on by hand below, only once the file is known to be ours.
            SqliteClient.make({ filename, disableWAL: true, readonly: readOnly }).pipe(
              Effect.provideServiceEffect(Reactivity.Reactivity, Reactivity.make),
            ),
            child,
          ).pipe(Effect.catchAllDefect((cause) => Effect.fail(storeError(`cannot open ${file}`)(cause))))
        const sql = immutable
          ? yield* open(`${pathToFileURL(absolute).href}?immutable=1`).pipe(
              // URI file names switched off in this process: an ordinary read-only connection.
              Effect.orElse(() => open(absolute)),
            )
          : yield* open(absolute)
        yield* sql
          .unsafe(`PRAGMA busy_timeout = ${Math.min(1000, lockWaitMs)}`)
          .pipe(Effect.catchTag("SqlError", (e) => Effect.fail(storeError(`cannot open ${file}`)(e))))
        return sql
      })

    // Read-only with no writer around (no -wal): immutable, so that SQLite makes no -wal or -shm.
    let immutable = readOnly && !fs.existsSync(walFile)
    let connection = yield* connect(immutable)
    /** The connection to use; a read-only immutable one is swapped once a writer shows up. */
    const current: Effect.Effect<SqlClient, StoreError> = Effect.suspend(() => {
      if (!immutable || !fs.existsSync(walFile)) return Effect.succeed(connection)
      immutable = false
      return Effect.tap(connect(false), (sql) => {
        connection = sql
      })
    })
    const withSql = <A, E, R>(f: (sql: SqlClient) => Effect.Effect<A, E, R>) => Effect.flatMap(current, f)

    const found = yield* schemaVersion(connection, file)
    yield* refuseNewer(file, found)
    if (readOnly && found === 0) return refuseWrites(yield* makeMemoryEventStore(), file)
    // Read-only stores are read as they are: the columns of later migrations may be missing.
    const hasHeartbeats = !readOnly || found >= 2

    /** A write that failed: locked beyond the budget, full, read-only, or something else. */
    const writeFailure = (what: string) => (e: unknown) =>
      Effect.fail(
        isBusyCode(errorCode(e))
          ? new StoreError({
              message: `${what}: ${lockedText(file, lockWaitMs)}`,
              cause: e,
              kind: "unavailable",
            })
          : storeError(`${what} (${file})`)(e),
      )

    /** Runs a write under this process's file lock, retrying while another process holds SQLite's. */
    const write = <A, E>(what: string, eff: Effect.Effect<A, E | SqlError>) =>
      retryWhileLocked(lock.withPermits(1)(eff), lockWaitMs).pipe(
        Effect.catchIf((e): e is SqlError => e instanceof SqlError, writeFailure(what)),
        // A failed COMMIT surfaces as a defect from @effect/sql; it is still the store failing.
        Effect.catchAllDefect(writeFailure(what)),
      ) as Effect.Effect<A, Exclude<E, SqlError> | StoreError>

    if (!readOnly) {
      const sql = connection
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
      })
      // Before anything is written: a damaged store is left as it was found.
      if (found > 0) yield* checkIntact(sql, file, absolute)
      yield* write(`cannot open ${file}`, setup)
      if (found < SCHEMA_VERSION) yield* lock.withPermits(1)(migrate(sql, file, lockWaitMs))
      for (const pragma of options.testing?.pragmas ?? [])
        yield* write(`cannot open ${file}`, sql.unsafe(pragma))
    }

    const fail = (what: string) => (e: SqlError) => Effect.fail(storeError(`${what} (${file})`)(e))

    const currentVersion = (sql: SqlClient, stream: string) =>
      Effect.map(
        sql.unsafe<{ version: number }>("SELECT version FROM streams WHERE stream = ?", [stream]),
        (rows) => rows[0]?.version ?? 0,
      )

    const version = (stream: string) =>
      withSql((sql) => currentVersion(sql, stream)).pipe(
        Effect.catchTag("SqlError", fail(`cannot read stream ${stream}`)),
      )

    const writeBatch = (
      sql: SqlClient,
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
            const actual = yield* currentVersion(sql, stream)
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
        const sql = connection
        const now = yield* Clock.currentTimeMillis
        const data = yield* Effect.try({
          try: () => events.map((e) => JSON.stringify(e.data) ?? "null"),
          catch: (cause) =>
            new StoreError({ message: `stream ${stream}: event data is not JSON (${String(cause)})`, cause }),
        })
        if (events.length === 0) {
          const actual = yield* currentVersion(sql, stream).pipe(
            Effect.catchTag("SqlError", fail(`cannot read stream ${stream}`)),
          )
          if (actual !== expected) return yield* new VersionConflict({ stream, expected, actual })
          return actual
        }
        return yield* write(
          `cannot append to stream ${stream}`,
          sql.withTransaction(writeBatch(sql, stream, data, events, expected, now)),
        )
      })

    const deleteStream = (stream: string) => {
      const sql = connection
      return write(
        `cannot delete stream ${stream}`,
        sql.withTransaction(
          Effect.gen(function* () {
            const rows = yield* sql.unsafe<{ version: number }>(
              "DELETE FROM streams WHERE stream = ? RETURNING version",
              [stream],
            )
            if (rows.length === 0) return 0
            yield* sql.unsafe("DELETE FROM events WHERE stream = ?", [stream])
            return rows[0]!.version
          }),
        ),
      )
    }

    const renameStream = (from: string, to: string) => {
      const sql = connection
      return write(
        `cannot rename stream ${from} to ${to}`,
        sql.withTransaction(
          Effect.gen(function* () {
            const source = yield* sql.unsafe("SELECT 1 FROM streams WHERE stream = ?", [from])
            if (source.length === 0) return yield* new StreamNotFound({ stream: from })
            const target = yield* sql.unsafe("SELECT 1 FROM streams WHERE stream = ?", [to])
            if (target.length > 0) return yield* new StreamExists({ stream: to })
            const next = yield* sql.unsafe<{ next: number }>(
              "SELECT COALESCE(MAX(global_position) + 1, 0) AS next FROM events",
            )
            // Above every global position there is: no row can collide while they are renumbered.
            yield* sql.unsafe(
              "UPDATE events SET stream = ?, global_position = ? + position WHERE stream = ?",
              [to, next[0]?.next ?? 0, from],
            )
            // A new row (a new rowid): the renamed stream is listed as the newest.
            yield* sql.unsafe(
              "INSERT INTO streams (stream, version, first_recorded_at, last_recorded_at, heartbeat_at) " +
                "SELECT ?, version, first_recorded_at, last_recorded_at, heartbeat_at FROM streams WHERE stream = ?",
              [to, from],
            )
            yield* sql.unsafe("DELETE FROM streams WHERE stream = ?", [from])
          }),
        ),
      )
    }

    const heartbeat = (stream: string, at: number) => {
      const sql = connection
      return write(
        `cannot record a heartbeat for stream ${stream}`,
        sql.unsafe("UPDATE streams SET heartbeat_at = ? WHERE stream = ? RETURNING 1", [at, stream]),
      ).pipe(Effect.map((rows) => rows.length > 0))
    }

    const readPage =
      (stream: string): ReadPage<StoreError> =>
      (from, to) =>
        withSql(
          (sql) =>
            sql.unsafe(
              "SELECT global_position, position, type, version, data, recorded_at FROM events " +
                "WHERE stream = ? AND position >= ? AND position < ? ORDER BY position",
              [stream, from, to],
            ).values,
        ).pipe(
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
      withSql(
        (sql) =>
          sql.unsafe(
            "SELECT global_position, stream, position, type, version, data, recorded_at FROM events " +
              `WHERE global_position > ? AND ${stagingCondition(false)} ORDER BY global_position LIMIT ?`,
            [after, limit],
          ).values,
      ).pipe(
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

    const streams = (options?: StreamsOptions) =>
      withSql((sql) =>
        sql.unsafe<{ stream: string; version: number; first: number; last: number; beat: number | null }>(
          "SELECT stream, version, first_recorded_at AS first, last_recorded_at AS last, " +
            `${hasHeartbeats ? "heartbeat_at" : "NULL"} AS beat FROM streams ` +
            `WHERE ${stagingCondition(options?.staging === true)} ORDER BY rowid`,
        ),
      ).pipe(
        Effect.map((rows) =>
          rows.map(
            (r): StreamInfo => ({
              stream: r.stream,
              version: r.version,
              firstRecordedAt: r.first,
              lastRecordedAt: r.last,
              ...(r.beat === null ? {} : { heartbeatAt: r.beat }),
            }),
          ),
        ),
        Effect.catchTag("SqlError", fail("cannot list streams")),
      )

    const store = EventStore.of({
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
    return readOnly ? refuseWrites(store, file) : store
  })

/** The SQLite event store in `file` (created with its folders if missing), closed with the layer. */
export const SqliteEventStoreLive = (
  file: string,
  options?: SqliteStoreOptions,
): Layer.Layer<EventStore, StoreError> => Layer.scoped(EventStore, makeSqliteEventStore(file, options))

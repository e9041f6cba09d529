/** Which event store a command uses, opened for the command's lifetime. */
import { dirname, resolve } from "node:path"
import { Effect, Layer } from "effect"
import type { QueueError, SweepQueue } from "../core/queue/index.ts"
import { type EventStore, redactUrl, StoreError } from "../core/store/index.ts"

/**
 * What `--store` (or INTERLEAVE_STORE) names: a SQLite file, or a PostgreSQL database given by
 * URL, `postgres://USER[:PASSWORD]@HOST:PORT/DB` (or `postgresql://`), whose `?schema=NAME`
 * picks the schema the store lives in (default `interleave`). `shown` is what messages print:
 * the URL without its password.
 */
export type StoreLocation =
  | { readonly kind: "sqlite"; readonly file: string; readonly shown: string }
  | {
      readonly kind: "postgres"
      /** The URL as node-postgres gets it: without `schema`, which is ours, not a connection setting. */
      readonly url: string
      readonly schema: string | undefined
      readonly shown: string
    }

const POSTGRES_URL = /^postgres(ql)?:\/\//i

/** Whether `value` names a PostgreSQL store. */
export const isPostgresStore = (value: string): boolean => POSTGRES_URL.test(value)

export const storeLocation = (value: string): StoreLocation => {
  if (!isPostgresStore(value)) return { kind: "sqlite", file: value, shown: value }
  let url = value
  let schema: string | undefined
  try {
    const u = new URL(value)
    const given = u.searchParams.get("schema")
    if (given !== null) {
      schema = given
      u.searchParams.delete("schema")
      url = u.toString()
    }
  } catch {}
  return { kind: "postgres", url, schema, shown: redactUrl(value) }
}

/** The store as messages name it: the file, or the URL without its password. */
export const storeName = (value: string): string => storeLocation(value).shown

export interface StoreOptions {
  /**
   * For the commands that only read (runs, show, verify --log, export, diff, replay): nothing is
   * created or written, so a store on a read-only mount or owned by another user can be read, and
   * a missing store reads as empty without being created. (SQLite; a PostgreSQL store is opened
   * as usual: reading needs the schema, which the first writer creates.)
   */
  readonly readOnly?: boolean
}

/**
 * How long a write waits for a lock another process holds: INTERLEAVE_LOCK_WAIT_MS (ms) when set
 * to a whole number, else the store's default (60 s).
 */
const lockWaitMs = (): number | undefined => {
  const given = process.env.INTERLEAVE_LOCK_WAIT_MS
  return given !== undefined && /^\d+$/.test(given) ? Number(given) : undefined
}

/**
 * The store behind `--store`. Loaded on first use: SQLite's native binding is not needed by the
 * commands that read no store (plan, verify SCENARIO), and it costs them start-up time; node-postgres
 * is loaded only for a postgres:// store.
 */
export const storeLayer = (
  value: string,
  options: StoreOptions = {},
): Layer.Layer<EventStore, StoreError> => {
  const where = storeLocation(value)
  if (where.kind === "postgres")
    return Layer.unwrapEffect(
      Effect.map(
        Effect.promise(() => import("../core/store/postgres.ts")),
        (m) =>
          m.PostgresEventStoreLive(where.url, where.schema !== undefined ? { schema: where.schema } : {}),
      ),
    )
  return Layer.unwrapEffect(
    Effect.map(
      Effect.promise(() => import("../core/store/sqlite.ts")),
      (m) =>
        m.SqliteEventStoreLive(where.file, { readOnly: options.readOnly === true, lockWaitMs: lockWaitMs() }),
    ),
  )
}

export const withStore = <A, E, R>(file: string, eff: Effect.Effect<A, E, R>, options?: StoreOptions) =>
  Effect.provide(eff, storeLayer(file, options)) as Effect.Effect<A, E | StoreError, Exclude<R, EventStore>>

/**
 * The event store and the sweep queue on one PostgreSQL pool, for sweep workers; a SQLite store
 * has no queue: bad input that says so.
 */
export const withWorkStore = <A, E, R>(value: string, eff: Effect.Effect<A, E, R>) => {
  const where = storeLocation(value)
  if (where.kind !== "postgres")
    return Effect.fail(
      new StoreError({
        message: `--store ${where.shown}: sweep workers share a PostgreSQL store (--store postgres://USER@HOST:PORT/DB); a SQLite file is one machine's`,
      }),
    )
  const layer = Layer.unwrapEffect(
    Effect.map(
      Effect.promise(() => import("../core/queue/postgres.ts")),
      (m) => m.PostgresWorkLive(where.url, where.schema !== undefined ? { schema: where.schema } : {}),
    ),
  )
  return Effect.provide(eff, layer) as Effect.Effect<
    A,
    E | StoreError | QueueError,
    Exclude<R, EventStore | SweepQueue>
  >
}

/** The files SQLite keeps a store in: the file and its -wal, -shm and -journal beside it (none for a URL). */
export const storeFiles = (file: string): ReadonlyArray<string> =>
  isPostgresStore(file) ? [] : [file, `${file}-wal`, `${file}-shm`, `${file}-journal`]

/**
 * Checkpoints of the runs in a store live next to it, in `<store>.checkpoints/<run>/`; those of
 * runs in a PostgreSQL store on this machine, in `.interleave/checkpoints/`.
 */
export const checkpointDirOf = (storeFile: string): string =>
  isPostgresStore(storeFile) ? resolve(".interleave", "checkpoints") : `${storeFile}.checkpoints`

/** The folder recorded checkpoint paths are relative to: the store's, or this one for a PostgreSQL store. */
export const checkpointBaseOf = (store: string): string =>
  isPostgresStore(store) ? resolve(".") : dirname(resolve(store))

/** Where `replay` keeps the checkpoints of its re-run: beside the store, or here for a PostgreSQL store. */
export const replayCheckpointDirOf = (store: string): string =>
  isPostgresStore(store) ? resolve(".interleave", "replay-checkpoints") : `${store}.replay-checkpoints`

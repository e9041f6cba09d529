/** Which event store a command uses, opened for the command's lifetime. */
import { Effect, Layer } from "effect"
import type { EventStore, StoreError } from "../core/store/index.ts"

export interface StoreOptions {
  /**
   * For the commands that only read (runs, show, verify --log, export, diff, replay): nothing is
   * created or written, so a store on a read-only mount or owned by another user can be read, and
   * a missing store reads as empty without being created.
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
 * commands that read no store (plan, verify SCENARIO), and it costs them start-up time.
 */
export const storeLayer = (file: string, options: StoreOptions = {}): Layer.Layer<EventStore, StoreError> =>
  Layer.unwrapEffect(
    Effect.map(
      Effect.promise(() => import("../core/store/sqlite.ts")),
      (m) => m.SqliteEventStoreLive(file, { readOnly: options.readOnly === true, lockWaitMs: lockWaitMs() }),
    ),
  )

export const withStore = <A, E, R>(file: string, eff: Effect.Effect<A, E, R>, options?: StoreOptions) =>
  Effect.provide(eff, storeLayer(file, options)) as Effect.Effect<A, E | StoreError, Exclude<R, EventStore>>

/** The files SQLite keeps a store in: the file and its -wal, -shm and -journal beside it. */
export const storeFiles = (file: string): ReadonlyArray<string> => [
  file,
  `${file}-wal`,
  `${file}-shm`,
  `${file}-journal`,
]

/** Checkpoints of the runs in a store live next to it, in `<store>.checkpoints/<run>/`. */
export const checkpointDirOf = (storeFile: string): string => `${storeFile}.checkpoints`

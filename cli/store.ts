/** Which event store a command uses, opened for the command's lifetime. */
import { Effect, Layer } from "effect"
import type { EventStore, StoreError } from "../core/store/index.ts"

/**
 * The store behind `--store`. Loaded on first use: SQLite's native binding is not needed by the
 * commands that read no store (plan, verify SCENARIO), and it costs them start-up time.
 */
export const storeLayer = (file: string): Layer.Layer<EventStore, StoreError> =>
  Layer.unwrapEffect(
    Effect.map(
      Effect.promise(() => import("../core/store/sqlite.ts")),
      (m) => m.SqliteEventStoreLive(file),
    ),
  )

export const withStore = <A, E, R>(file: string, eff: Effect.Effect<A, E, R>) =>
  Effect.provide(eff, storeLayer(file)) as Effect.Effect<A, E | StoreError, Exclude<R, EventStore>>

/** Checkpoints of the runs in a store live next to it, in `<store>.checkpoints/<run>/`. */
export const checkpointDirOf = (storeFile: string): string => `${storeFile}.checkpoints`

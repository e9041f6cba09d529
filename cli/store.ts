/** Which event store a command uses, opened for the command's lifetime. */
import { Effect, type Layer } from "effect"
import { type EventStore, SqliteEventStoreLive, type StoreError } from "../core/store/index.ts"

export const storeLayer = (file: string): Layer.Layer<EventStore, StoreError> => SqliteEventStoreLive(file)

export const withStore = <A, E, R>(file: string, eff: Effect.Effect<A, E, R>) =>
  Effect.provide(eff, storeLayer(file)) as Effect.Effect<A, E | StoreError, Exclude<R, EventStore>>

/** Checkpoints of the runs in a store live next to it, in `<store>.checkpoints/<run>/`. */
export const checkpointDirOf = (storeFile: string): string => `${storeFile}.checkpoints`

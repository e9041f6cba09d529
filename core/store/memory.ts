/**
 * In-memory EventStore: for tests, `sim` runs that need no record, and as the reference
 * implementation the contract suite holds the SQLite store to.
 *
 * Appends run inside one synchronous block, so they are atomic with respect to every other fiber
 * (JavaScript runs one at a time): the optimistic version check and the write cannot interleave.
 */
import { Clock, Effect, Layer } from "effect"
import {
  type EventEnvelope,
  EventStore,
  type EventStoreShape,
  type StoredEvent,
  StoreError,
  type StreamInfo,
  VersionConflict,
} from "./event-store.ts"
import { pagedRead, pollingTail, type ReadPage } from "./paging.ts"

interface StreamState {
  readonly events: Array<StoredEvent>
  readonly firstRecordedAt: number
  lastRecordedAt: number
}

/**
 * The payload as the SQLite store would give it back (it keeps JSON text): callers cannot mutate
 * a recorded event afterwards, and data JSON cannot represent fails here as it would there.
 */
const jsonCopy = (data: unknown): unknown => JSON.parse(JSON.stringify(data) ?? "null")

export const makeMemoryEventStore = (): Effect.Effect<EventStoreShape> =>
  Effect.sync(() => {
    // Map iteration order is insertion order: `streams()` lists streams in creation order.
    const byName = new Map<string, StreamState>()
    let nextGlobal = 0

    const append = (stream: string, events: ReadonlyArray<EventEnvelope>, expectedVersion: number) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) =>
        Effect.suspend((): Effect.Effect<number, VersionConflict | StoreError> => {
          const state = byName.get(stream)
          const actual = state?.events.length ?? 0
          if (actual !== expectedVersion) {
            return Effect.fail(new VersionConflict({ stream, expected: expectedVersion, actual }))
          }
          if (events.length === 0) return Effect.succeed(actual)
          let stored: Array<StoredEvent>
          try {
            stored = events.map((e, i) => ({
              stream,
              type: e.type,
              version: e.version,
              data: jsonCopy(e.data),
              position: actual + i,
              globalPosition: nextGlobal + i,
              recordedAt: now,
            }))
          } catch (cause) {
            return Effect.fail(
              new StoreError({
                message: `stream ${stream}: event data is not JSON (${String(cause)})`,
                cause,
              }),
            )
          }
          nextGlobal += stored.length
          if (state === undefined) {
            byName.set(stream, { events: stored, firstRecordedAt: now, lastRecordedAt: now })
          } else {
            for (const e of stored) state.events.push(e)
            state.lastRecordedAt = now
          }
          return Effect.succeed(actual + stored.length)
        }),
      )

    const readPage =
      (stream: string): ReadPage<never> =>
      (from, to) =>
        Effect.sync(() => byName.get(stream)?.events.slice(from, to) ?? [])

    const streams = () =>
      Effect.sync(
        (): ReadonlyArray<StreamInfo> =>
          Array.from(byName, ([stream, s]) => ({
            stream,
            version: s.events.length,
            firstRecordedAt: s.firstRecordedAt,
            lastRecordedAt: s.lastRecordedAt,
          })),
      )

    return EventStore.of({
      append,
      read: (stream, options) => pagedRead(readPage(stream), options),
      version: (stream) => Effect.sync(() => byName.get(stream)?.events.length ?? 0),
      streams,
      tail: (stream, options) => pollingTail(readPage(stream), options),
    })
  })

export const MemoryEventStoreLive: Layer.Layer<EventStore> = Layer.effect(EventStore, makeMemoryEventStore())

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
  isStagingStream,
  type StoredEvent,
  StoreError,
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

/**
 * A stream keeps the appended envelopes as they are, plus parallel arrays of global positions and
 * append times; `StoredEvent` objects are built when read. That saves an object per appended event
 * on the engine's hot path.
 */
interface StreamState {
  name: string
  readonly events: Array<EventEnvelope>
  readonly globals: Array<number>
  readonly times: Array<number>
  readonly firstRecordedAt: number
  lastRecordedAt: number
  heartbeatAt: number | undefined
}

/**
 * The payload as the SQLite store would give it back (it keeps JSON text): callers cannot mutate
 * a recorded event afterwards, and data JSON cannot represent fails here as it would there.
 */
const jsonCopy = (data: unknown): unknown => JSON.parse(JSON.stringify(data) ?? "null")

export interface MemoryStoreOptions {
  /**
   * Copy each payload through JSON (default true), as the SQLite store effectively does. `false`
   * keeps payloads by reference: for trusted writers that never mutate an event after appending it
   * (the engine in benchmarks), where the copy would cost more than the rest of a sim step.
   */
  readonly copy?: boolean
}

export const makeMemoryEventStore = (options: MemoryStoreOptions = {}): Effect.Effect<EventStoreShape> =>
  Effect.sync(() => {
    // Map iteration order is insertion order: `streams()` lists streams in creation order.
    const byName = new Map<string, StreamState>()
    const copy = options.copy ?? true
    let nextGlobal = 0
    // The global log, by global position: each event's stream and position in it, as parallel
    // arrays rather than an object per event. A deleted or renamed stream leaves holes (undefined).
    const logStreams: Array<StreamState | undefined> = []
    const logPositions: Array<number> = []

    const append = (stream: string, events: ReadonlyArray<EventEnvelope>, expectedVersion: number) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) =>
        Effect.suspend((): Effect.Effect<number, VersionConflict | StoreError> => {
          const state = byName.get(stream)
          const actual = state?.events.length ?? 0
          if (actual !== expectedVersion) {
            return Effect.fail(new VersionConflict({ stream, expected: expectedVersion, actual }))
          }
          if (events.length === 0) return Effect.succeed(actual)
          let stored: Array<EventEnvelope> = events as Array<EventEnvelope>
          if (copy) {
            try {
              stored = events.map((e) => ({ type: e.type, version: e.version, data: jsonCopy(e.data) }))
            } catch (cause) {
              return Effect.fail(
                new StoreError({
                  message: `stream ${stream}: event data is not JSON (${String(cause)})`,
                  cause,
                }),
              )
            }
          }
          const st = state ?? {
            name: stream,
            events: [],
            globals: [],
            times: [],
            firstRecordedAt: now,
            lastRecordedAt: now,
            heartbeatAt: undefined,
          }
          if (state === undefined) byName.set(stream, st)
          for (const e of stored) {
            logStreams.push(st)
            logPositions.push(st.events.length)
            st.events.push(e)
            st.globals.push(nextGlobal++)
            st.times.push(now)
          }
          st.lastRecordedAt = now
          return Effect.succeed(actual + stored.length)
        }),
      )

    const storedEvent = (st: StreamState, i: number): StoredEvent => {
      const e = st.events[i]!
      return {
        stream: st.name,
        type: e.type,
        version: e.version,
        data: e.data,
        position: i,
        globalPosition: st.globals[i]!,
        recordedAt: st.times[i]!,
      }
    }

    const readPage =
      (stream: string): ReadPage<never> =>
      (from, to) =>
        Effect.sync(() => {
          const st = byName.get(stream)
          if (!st) return []
          const end = Math.min(to, st.events.length)
          const page: StoredEvent[] = []
          for (let i = from; i < end; i++) page.push(storedEvent(st, i))
          return page
        })

    const readGlobalPage: ReadGlobalPage<never> = (after, limit) =>
      Effect.sync(() => {
        const page: StoredEvent[] = []
        for (let g = Math.max(0, Math.floor(after) + 1); g < logStreams.length && page.length < limit; g++) {
          const st = logStreams[g]
          if (st !== undefined && !isStagingStream(st.name)) page.push(storedEvent(st, logPositions[g]!))
        }
        return page
      })

    const streams = (options?: StreamsOptions) =>
      Effect.sync((): ReadonlyArray<StreamInfo> => {
        const staging = options?.staging === true
        const infos: StreamInfo[] = []
        for (const [stream, s] of byName) {
          if (isStagingStream(stream) !== staging) continue
          infos.push({
            stream,
            version: s.events.length,
            firstRecordedAt: s.firstRecordedAt,
            lastRecordedAt: s.lastRecordedAt,
            ...(s.heartbeatAt === undefined ? {} : { heartbeatAt: s.heartbeatAt }),
          })
        }
        return infos
      })

    const deleteStream = (stream: string) =>
      Effect.sync(() => {
        const st = byName.get(stream)
        if (st === undefined) return 0
        for (const g of st.globals) logStreams[g] = undefined
        byName.delete(stream)
        return st.events.length
      })

    const renameStream = (from: string, to: string) =>
      Effect.suspend((): Effect.Effect<void, StreamExists | StreamNotFound> => {
        const st = byName.get(from)
        if (st === undefined) return Effect.fail(new StreamNotFound({ stream: from }))
        if (byName.has(to)) return Effect.fail(new StreamExists({ stream: to }))
        // To the end of the global log, as if appended now, and to the end of `streams()`.
        for (let i = 0; i < st.globals.length; i++) {
          logStreams[st.globals[i]!] = undefined
          st.globals[i] = nextGlobal++
          logStreams.push(st)
          logPositions.push(i)
        }
        byName.delete(from)
        st.name = to
        byName.set(to, st)
        return Effect.void
      })

    const heartbeat = (stream: string, at: number) =>
      Effect.sync(() => {
        const st = byName.get(stream)
        if (st === undefined) return false
        st.heartbeatAt = at
        return true
      })

    return EventStore.of({
      append,
      read: (stream, options) => pagedRead(readPage(stream), options),
      version: (stream) => Effect.sync(() => byName.get(stream)?.events.length ?? 0),
      streams,
      deleteStream,
      renameStream,
      heartbeat,
      tail: (stream, options) => pollingTail(readPage(stream), options),
      readAll: (options) => pagedReadAll(readGlobalPage, options),
      tailAll: (options) => pollingTailAll(readGlobalPage, options),
    })
  })

export const MemoryEventStoreLive: Layer.Layer<EventStore> = Layer.effect(EventStore, makeMemoryEventStore())

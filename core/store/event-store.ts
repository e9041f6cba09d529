/**
 * EventStore: the only record of a run. One stream per run, append-only.
 *
 * Every event has a position in its stream (0, 1, 2, ...) and a global position across streams.
 * Global positions become visible in order: once a reader has seen global position P, no event
 * at or below P appears later, so `readAll`/`tailAll` readers can checkpoint on a number.
 * `append` is optimistic: the caller states the stream version it expects (the number of events it
 * has seen, 0 for a new stream), and a writer that lost the race gets `VersionConflict` with
 * nothing written. The store is untyped: it keeps `{ type, version, data }` envelopes and leaves
 * decoding to `core/events.ts`.
 */
import { Context, Data, type Effect, type Stream } from "effect"

/** An event as written: its type, its schema version, and its JSON payload. */
export interface EventEnvelope {
  readonly type: string
  readonly version: number
  readonly data: unknown
}

export interface StoredEvent extends EventEnvelope {
  readonly stream: string
  /** Position in the stream, contiguous from 0. */
  readonly position: number
  /**
   * Position across all streams, strictly increasing in commit order (possibly with gaps), and
   * never visible out of order: see `readAll`.
   */
  readonly globalPosition: number
  /** Wall time of the append, ms since the epoch. */
  readonly recordedAt: number
}

export interface StreamInfo {
  readonly stream: string
  /** Number of events in the stream (= the version `append` expects next). */
  readonly version: number
  readonly firstRecordedAt: number
  readonly lastRecordedAt: number
  /** The last liveness timestamp a writer recorded with `heartbeat`, if any (ms since the epoch). */
  readonly heartbeatAt?: number
}

export interface StreamsOptions {
  /**
   * `true`: list only the staging streams (see `STAGING_PREFIX`), for the writer that cleans up
   * after interrupted imports. Default: every stream except the staging ones.
   */
  readonly staging?: boolean | undefined
}

export interface ReadOptions {
  /** First stream position to read (inclusive), default 0. */
  readonly from?: number | undefined
  /** Last stream position to read (exclusive), default the end. */
  readonly to?: number | undefined
}

export interface ReadAllOptions {
  /** Only events with a global position above this one (exclusive), default: from the start. */
  readonly after?: number | undefined
  /** At most this many events, default all. */
  readonly limit?: number | undefined
}

export interface TailAllOptions {
  /** Only events with a global position above this one (exclusive), default: from the start. */
  readonly after?: number | undefined
  readonly pollMs?: number | undefined
  /** Ends the tail right after the first event for which this holds. */
  readonly until?: ((e: StoredEvent) => boolean) | undefined
}

export class VersionConflict extends Data.TaggedError("VersionConflict")<{
  readonly stream: string
  readonly expected: number
  readonly actual: number
}> {
  override get message(): string {
    return `stream ${this.stream}: expected version ${this.expected}, found ${this.actual}`
  }
}

/**
 * What kind of store failure it is: `bad-input` (not a store, a damaged file, a schema this build
 * does not know: the user named the wrong thing) or `unavailable` (the store is fine but cannot be
 * used now: locked by another process beyond the retry budget, disk full, read-only, server
 * unreachable). The CLI exits 2 for the first and 3 for the second.
 */
export type StoreErrorKind = "bad-input" | "unavailable"

/** The store itself failed: unreadable file, not a database, migration mismatch, locked, full. */
export class StoreError extends Data.TaggedError("StoreError")<{
  readonly message: string
  readonly kind: StoreErrorKind
  readonly cause?: unknown
}> {
  constructor(args: { readonly message: string; readonly kind?: StoreErrorKind; readonly cause?: unknown }) {
    super({ ...args, kind: args.kind ?? "bad-input" })
  }
}

/** `renameStream` found its target taken: nothing was renamed. */
export class StreamExists extends Data.TaggedError("StreamExists")<{ readonly stream: string }> {
  override get message(): string {
    return `stream ${this.stream} already exists`
  }
}

/** `renameStream` found no stream to rename. */
export class StreamNotFound extends Data.TaggedError("StreamNotFound")<{ readonly stream: string }> {
  override get message(): string {
    return `no stream ${this.stream}`
  }
}

/**
 * Streams whose name starts with this are staging streams: written by a writer that publishes them
 * under their final name with `renameStream` once complete (an import). `streams()`, `readAll` and
 * `tailAll` leave them out, so a reader never sees half a run; `read` and `version` still work on
 * them by name.
 */
export const STAGING_PREFIX = ".staging/"

export const isStagingStream = (stream: string): boolean => stream.startsWith(STAGING_PREFIX)

export interface EventStoreShape {
  /** Appends all events in one transaction, or none. Returns the stream's new version. */
  readonly append: (
    stream: string,
    events: ReadonlyArray<EventEnvelope>,
    expectedVersion: number,
  ) => Effect.Effect<number, VersionConflict | StoreError>
  /** Streams a stream's events in position order, in bounded memory. Unknown stream: empty. */
  readonly read: (stream: string, options?: ReadOptions) => Stream.Stream<StoredEvent, StoreError>
  /** The stream's current version (0 when it does not exist). */
  readonly version: (stream: string) => Effect.Effect<number, StoreError>
  /** The streams, in creation order (a renamed stream counts as created when it was renamed). */
  readonly streams: (options?: StreamsOptions) => Effect.Effect<ReadonlyArray<StreamInfo>, StoreError>
  /**
   * Removes a stream and all its events, in one transaction; its version goes back to 0 and its
   * name can be used again. Their global positions are left as gaps. Returns the number of events
   * removed (0 for a stream that does not exist).
   */
  readonly deleteStream: (stream: string) => Effect.Effect<number, StoreError>
  /**
   * Renames stream `from` to `to` in one transaction: all of its events or none. Fails with
   * `StreamExists` when `to` exists and `StreamNotFound` when `from` does not, renaming nothing.
   * The events keep their stream positions and recording times but move to the end of the global
   * log (new global positions, in order, above every earlier one), so a `readAll`/`tailAll`
   * reader sees the renamed stream appear whole, once, at the rename; its heartbeat comes along.
   */
  readonly renameStream: (
    from: string,
    to: string,
  ) => Effect.Effect<void, StreamExists | StreamNotFound | StoreError>
  /**
   * Records that the stream's writer is alive at `at` (ms since the epoch), without adding an
   * event or moving the version: `streams()` reports it as `heartbeatAt`. Returns false, recording
   * nothing, when the stream does not exist.
   */
  readonly heartbeat: (stream: string, at: number) => Effect.Effect<boolean, StoreError>
  /**
   * Reads from `from`, then keeps polling for new events until `until` returns true for an event
   * (or forever). For `show --follow` and live readers.
   */
  readonly tail: (
    stream: string,
    options: {
      readonly from?: number
      readonly pollMs?: number
      readonly until?: (e: StoredEvent) => boolean
    },
  ) => Stream.Stream<StoredEvent, StoreError>
  /**
   * Streams the events of all streams with a global position above `after`, in global order, in
   * bounded memory (staging streams left out). A reader may checkpoint the last global position it processed and resume
   * with `after` set to it: no event is skipped, none is read twice.
   */
  readonly readAll: (options?: ReadAllOptions) => Stream.Stream<StoredEvent, StoreError>
  /** `readAll`, then keeps polling for newer events until `until` returns true for one (or forever). */
  readonly tailAll: (options: TailAllOptions) => Stream.Stream<StoredEvent, StoreError>
}

/** Where runs are recorded unless the user names another store. */
export const DEFAULT_STORE_PATH = ".interleave/runs.db"

export class EventStore extends Context.Tag("interleave/EventStore")<EventStore, EventStoreShape>() {}

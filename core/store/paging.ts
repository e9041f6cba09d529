/**
 * Paged reading and polling tail, shared by every EventStore implementation.
 *
 * A store only has to say how to read one page of a stream (`[from, to)` positions, in order)
 * and one page of the global log (global positions after a given one, in order, at most so
 * many); these helpers turn that into bounded-memory `read`/`readAll` streams and polling
 * `tail`/`tailAll` streams, so every store has the same semantics by construction.
 */
import { Chunk, Effect, Option, Stream } from "effect"
import type { ReadAllOptions, ReadOptions, StoredEvent, TailAllOptions } from "./event-store.ts"

/** A page as a Chunk, without copying it (pages are fresh arrays nobody else holds). */
const pageChunk = (page: ReadonlyArray<StoredEvent>): Chunk.Chunk<StoredEvent> =>
  Chunk.unsafeFromArray(page as Array<StoredEvent>)

/** Reads the events of one stream with positions in `[from, to)`, in order. */
export type ReadPage<E> = (from: number, to: number) => Effect.Effect<ReadonlyArray<StoredEvent>, E>

/** Events per page when the store does not say otherwise. */
export const DEFAULT_PAGE_SIZE = 10_000

/** Poll interval of `tail` when the caller does not say otherwise. */
export const DEFAULT_POLL_MS = 100

/**
 * Streams `[from, to)` one page at a time. Stops at the first short page: positions are
 * contiguous, so a page with fewer events than asked for means the end of the stream.
 */
export const pagedRead = <E>(
  readPage: ReadPage<E>,
  options: ReadOptions | undefined,
  pageSize: number = DEFAULT_PAGE_SIZE,
): Stream.Stream<StoredEvent, E> => {
  const start = Math.max(0, options?.from ?? 0)
  const end = options?.to ?? Number.POSITIVE_INFINITY
  if (!(start < end)) return Stream.empty
  return Stream.paginateChunkEffect(start, (from) => {
    const to = Math.min(end, from + pageSize)
    return Effect.map(readPage(from, to), (page) => {
      const next = from + page.length
      const more = page.length === to - from && next < end
      return [pageChunk(page), more ? Option.some(next) : Option.none()] as const
    })
  })
}

/** Reads the events of all streams with global positions above `after`, in order, at most `limit`. */
export type ReadGlobalPage<E> = (after: number, limit: number) => Effect.Effect<ReadonlyArray<StoredEvent>, E>

/**
 * Streams the global log after `options.after` (default: from the start), at most
 * `options.limit` events, one page at a time. Global positions may have gaps (a PostgreSQL
 * transaction that rolled back leaves one), so paging is by the last global position seen, and
 * only a short page means the end.
 */
export const pagedReadAll = <E>(
  readPage: ReadGlobalPage<E>,
  options: ReadAllOptions | undefined,
  pageSize: number = DEFAULT_PAGE_SIZE,
): Stream.Stream<StoredEvent, E> => {
  const limit = options?.limit ?? Number.POSITIVE_INFINITY
  if (!(limit > 0)) return Stream.empty
  const start = { after: options?.after ?? -1, left: limit }
  return Stream.paginateChunkEffect(start, ({ after, left }) => {
    const ask = Math.min(pageSize, left)
    return Effect.map(readPage(after, ask), (page) => {
      const last = page[page.length - 1]
      const more = last !== undefined && page.length === ask && left > ask
      return [
        pageChunk(page),
        more ? Option.some({ after: last.globalPosition, left: left - ask }) : Option.none(),
      ] as const
    })
  })
}

interface TailState<C> {
  readonly cursor: C
  /** The last read came back short: wait `pollMs` before reading again. */
  readonly caughtUp: boolean
}

/**
 * The polling loop of both tails: reads a page at `cursor`, emits it, moves the cursor past it;
 * after a short page waits `pollMs` before the next read; ends right after the first event for
 * which `until` holds (that event included), or never when there is no `until`.
 */
const pollPages = <C, E>(
  start: C,
  readPage: (cursor: C, limit: number) => Effect.Effect<ReadonlyArray<StoredEvent>, E>,
  advance: (cursor: C, page: ReadonlyArray<StoredEvent>) => C,
  options: {
    readonly pollMs?: number | undefined
    readonly until?: ((e: StoredEvent) => boolean) | undefined
  },
  pageSize: number,
): Stream.Stream<StoredEvent, E> => {
  const pollMs = Math.max(1, options.pollMs ?? DEFAULT_POLL_MS)
  const until = options.until
  const step = (state: TailState<C> | undefined) => {
    if (state === undefined) return Effect.succeed(Option.none())
    const read = Effect.map(readPage(state.cursor, pageSize), (page) => {
      const stopAt = until === undefined ? -1 : page.findIndex(until)
      if (stopAt >= 0) {
        return Option.some([pageChunk(page.slice(0, stopAt + 1)), undefined] as const)
      }
      const next: TailState<C> = { cursor: advance(state.cursor, page), caughtUp: page.length < pageSize }
      return Option.some([pageChunk(page), next] as const)
    })
    return state.caughtUp ? Effect.zipRight(Effect.sleep(pollMs), read) : read
  }
  return Stream.unfoldChunkEffect<TailState<C> | undefined, StoredEvent, E, never>(
    { cursor: start, caughtUp: false },
    step,
  )
}

/**
 * Reads from `from`, then polls every `pollMs` for new events; ends right after the first event
 * for which `until` holds (that event included), or never when there is no `until`.
 */
export const pollingTail = <E>(
  readPage: ReadPage<E>,
  options: {
    readonly from?: number
    readonly pollMs?: number
    readonly until?: (e: StoredEvent) => boolean
  },
  pageSize: number = DEFAULT_PAGE_SIZE,
): Stream.Stream<StoredEvent, E> =>
  pollPages(
    Math.max(0, options.from ?? 0),
    (next, limit) => readPage(next, next + limit),
    (next, page) => next + page.length,
    options,
    pageSize,
  )

/**
 * `readAll` from `after`, then polls every `pollMs` for events with higher global positions;
 * ends as `pollingTail` does. Only as trustworthy as the store's global order: an event that
 * became visible after a later global position was read would be skipped, which is why every
 * store makes global positions visible in order (see postgres.ts).
 */
export const pollingTailAll = <E>(
  readPage: ReadGlobalPage<E>,
  options: TailAllOptions,
  pageSize: number = DEFAULT_PAGE_SIZE,
): Stream.Stream<StoredEvent, E> =>
  pollPages(
    options.after ?? -1,
    readPage,
    (after, page) => page[page.length - 1]?.globalPosition ?? after,
    options,
    pageSize,
  )

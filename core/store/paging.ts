/**
 * Paged reading and polling tail, shared by every EventStore implementation.
 *
 * A store only has to say how to read one page of a stream (`[from, to)` positions, in order);
 * these helpers turn that into a bounded-memory `read` stream and a polling `tail` stream, so
 * both stores have the same semantics by construction.
 */
import { Chunk, Effect, Option, Stream } from "effect"
import type { ReadOptions, StoredEvent } from "./event-store.ts"

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

interface TailState {
  readonly next: number
  /** The last read came back short: wait `pollMs` before reading again. */
  readonly caughtUp: boolean
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
): Stream.Stream<StoredEvent, E> => {
  const pollMs = Math.max(1, options.pollMs ?? DEFAULT_POLL_MS)
  const until = options.until
  const step = (state: TailState | undefined) => {
    if (state === undefined) return Effect.succeed(Option.none())
    const read = Effect.map(readPage(state.next, state.next + pageSize), (page) => {
      const stopAt = until === undefined ? -1 : page.findIndex(until)
      if (stopAt >= 0) {
        return Option.some([pageChunk(page.slice(0, stopAt + 1)), undefined] as const)
      }
      const next: TailState = { next: state.next + page.length, caughtUp: page.length < pageSize }
      return Option.some([pageChunk(page), next] as const)
    })
    return state.caughtUp ? Effect.zipRight(Effect.sleep(pollMs), read) : read
  }
  return Stream.unfoldChunkEffect<TailState | undefined, StoredEvent, E, never>(
    { next: Math.max(0, options.from ?? 0), caughtUp: false },
    step,
  )
}

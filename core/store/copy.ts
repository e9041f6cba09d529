/**
 * Copying runs between two event stores (SQLite to PostgreSQL, PostgreSQL to SQLite, any pair),
 * checked event for event afterwards.
 *
 * - Nothing at the destination is overwritten. Each run is looked at first: absent there, it is
 *   copied; there and identical (same events: type, version, data deep-equal, positions), it is
 *   skipped; there as a strict prefix of the source (an earlier copy of a run that has gone on
 *   since, or a copy that was stopped half-way), the rest is appended; anything else (different
 *   events, or more of them at the destination) is a conflict, and then nothing is copied at all.
 * - Events are appended in batches, each one transaction with the optimistic version check, so
 *   a concurrent writer at the destination makes the copy fail rather than interleave with it.
 * - Afterwards each copied run is read back from both stores, in bounded memory, and compared
 *   event for event. Recording times and global positions are the destination's own: they say
 *   when the copy was made, and are not compared.
 */
import { isDeepStrictEqual } from "node:util"
import { Chunk, Data, Effect, Option, Stream } from "effect"
import type {
  EventEnvelope,
  EventStoreShape,
  StoredEvent,
  StoreError,
  VersionConflict,
} from "./event-store.ts"

/** Events per append at the destination (one transaction each). */
const COPY_BATCH = 2_000

/** Runs the copy refused to touch, or a run that does not exist: nothing was copied. */
export class CopyRefused extends Data.TaggedError("CopyRefused")<{ readonly message: string }> {}

/** The verification after copying found a difference. */
export class CopyMismatch extends Data.TaggedError("CopyMismatch")<{ readonly message: string }> {}

export type CopyAction = "copy" | "append" | "skip"

export interface CopiedStream {
  readonly stream: string
  readonly action: CopyAction
  /** Events in the source's stream when the copy began (what was copied and verified). */
  readonly events: number
  /** Events written to the destination by this copy. */
  readonly written: number
  /** Events compared after copying (all of them for copy and append, all of them for skip too). */
  readonly verified: number
}

/** Why two events differ, or undefined when they are the same. */
export const eventDifference = (a: StoredEvent, b: StoredEvent): string | undefined => {
  if (a.position !== b.position) return `position ${a.position} against ${b.position}`
  if (a.type !== b.type) return `type ${a.type} against ${b.type}`
  if (a.version !== b.version) return `${a.type} version ${a.version} against ${b.version}`
  if (!isDeepStrictEqual(a.data, b.data)) return `${a.type} data differs`
  return undefined
}

/**
 * Compares the first `count` events of `stream` in both stores. Returns the first difference
 * (with its position), or undefined when they are equal; a store with fewer events is a difference.
 */
const firstDifference = (
  from: EventStoreShape,
  to: EventStoreShape,
  stream: string,
  count: number,
): Effect.Effect<string | undefined, StoreError> =>
  Effect.gen(function* () {
    if (count === 0) return undefined
    let seen = 0
    const found = yield* Stream.zip(from.read(stream, { to: count }), to.read(stream, { to: count })).pipe(
      Stream.tap(() => Effect.sync(() => seen++)),
      Stream.filterMap(([a, b]) => {
        const why = eventDifference(a, b)
        return why === undefined ? Option.none() : Option.some(`at position ${a.position}: ${why}`)
      }),
      Stream.runHead,
    )
    if (Option.isSome(found)) return found.value
    return seen < count ? `one side has ${seen} of the ${count} events` : undefined
  })

export interface CopyOptions {
  /** Only these runs (each must exist at the source). Default: every run. */
  readonly streams?: ReadonlyArray<string> | undefined
  /** Told as each run is done. */
  readonly onStream?: ((done: CopiedStream) => Effect.Effect<void>) | undefined
}

/** Copies runs from `from` to `to` (see the module comment), returning what it did to each. */
export const copyStreams = (
  from: EventStoreShape,
  to: EventStoreShape,
  options: CopyOptions = {},
): Effect.Effect<ReadonlyArray<CopiedStream>, StoreError | VersionConflict | CopyRefused | CopyMismatch> =>
  Effect.gen(function* () {
    let infos = yield* from.streams()
    if (options.streams !== undefined) {
      const wanted = new Set(options.streams)
      const missing = options.streams.filter((s) => !infos.some((i) => i.stream === s))
      if (missing.length > 0)
        return yield* new CopyRefused({
          message: `no run ${missing.join(", ")} at the source; nothing copied`,
        })
      infos = infos.filter((i) => wanted.has(i.stream))
    }
    // Plan every run before writing any: a conflict anywhere copies nothing.
    const plan: Array<{ stream: string; events: number; at: number; action: CopyAction }> = []
    const conflicts: string[] = []
    for (const info of infos) {
      const at = yield* to.version(info.stream)
      if (at === 0) {
        plan.push({ stream: info.stream, events: info.version, at, action: "copy" })
        continue
      }
      const why = yield* firstDifference(from, to, info.stream, Math.min(at, info.version))
      if (why !== undefined) conflicts.push(`${info.stream} differs ${why}`)
      else if (at > info.version)
        conflicts.push(`${info.stream} has ${at} events at the destination, ${info.version} at the source`)
      else
        plan.push({
          stream: info.stream,
          events: info.version,
          at,
          action: at === info.version ? "skip" : "append",
        })
    }
    if (conflicts.length > 0)
      return yield* new CopyRefused({
        message: `${conflicts.length} run${conflicts.length === 1 ? "" : "s"} already at the destination and not the same: ${conflicts.slice(0, 6).join("; ")}${conflicts.length > 6 ? `; and ${conflicts.length - 6} more` : ""}; nothing copied (a run is never overwritten)`,
      })
    const done: CopiedStream[] = []
    for (const p of plan) {
      let version = p.at
      if (p.action !== "skip")
        yield* from.read(p.stream, { from: p.at, to: p.events }).pipe(
          Stream.grouped(COPY_BATCH),
          Stream.runForEach((chunk) =>
            Effect.map(
              to.append(
                p.stream,
                Chunk.toReadonlyArray(chunk).map(
                  (e): EventEnvelope => ({ type: e.type, version: e.version, data: e.data }),
                ),
                version,
              ),
              (v) => {
                version = v
              },
            ),
          ),
        )
      const why = yield* firstDifference(from, to, p.stream, p.events)
      if (why !== undefined)
        return yield* new CopyMismatch({
          message: `run ${p.stream}: the copy differs from the source ${why}`,
        })
      const result: CopiedStream = {
        stream: p.stream,
        action: p.action,
        events: p.events,
        written: version - p.at,
        verified: p.events,
      }
      done.push(result)
      if (options.onStream) yield* options.onStream(result)
    }
    return done
  })

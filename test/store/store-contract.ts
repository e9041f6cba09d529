/**
 * The EventStore contract: one suite, run against every store (test/store-*.test.ts), so the
 * in-memory, SQLite and PostgreSQL stores cannot drift apart. Each test gets a fresh, empty store.
 */
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Deferred, Effect, Either, Fiber, type Layer, Stream, TestClock } from "effect"
import fc from "fast-check"
import {
  type EventEnvelope,
  EventStore,
  STAGING_PREFIX,
  type StoredEvent,
  StoreError,
  StreamExists,
  StreamNotFound,
  VersionConflict,
} from "../../core/store/event-store.ts"

const ev = (type: string, data: unknown = {}): EventEnvelope => ({ type, version: 1, data })

const readAll = (stream: string, options?: { from?: number; to?: number }) =>
  Effect.flatMap(EventStore, (store) => Stream.runCollect(store.read(stream, options))).pipe(
    Effect.map(Chunk.toReadonlyArray),
  )

const readGlobal = (options?: { after?: number; limit?: number }) =>
  Effect.flatMap(EventStore, (store) => Stream.runCollect(store.readAll(options))).pipe(
    Effect.map(Chunk.toReadonlyArray),
  )

const positions = (events: ReadonlyArray<StoredEvent>) => events.map((e) => e.position)
const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i)

const expectStrictlyIncreasing = (xs: ReadonlyArray<number>) => {
  for (let i = 1; i < xs.length; i++) expect(xs[i]!).toBeGreaterThan(xs[i - 1]!)
}

export const storeContract = (name: string, makeLayer: () => Layer.Layer<EventStore, StoreError>) =>
  describe(`EventStore contract: ${name}`, () => {
    const withStore = <A, E>(body: Effect.Effect<A, E, EventStore>) => Effect.provide(body, makeLayer())

    it.effect("appends to a new stream at version 0 and reads the events back", () =>
      withStore(
        Effect.gen(function* () {
          const store = yield* EventStore
          yield* TestClock.setTime(1_700_000_000_123)
          const data = {
            step: 3,
            lr: 1e-4,
            nested: { tags: ["visual", "text"], ok: true },
            name: "红 circle",
          }
          const version = yield* store.append(
            "run-1",
            [
              ev("RunStarted", { seed: 7 }),
              ev("StepCompleted", data),
              { type: "Note", version: 2, data: null },
            ],
            0,
          )
          expect(version).toBe(3)
          expect(yield* store.version("run-1")).toBe(3)
          const events = yield* readAll("run-1")
          expect(events.map((e) => [e.stream, e.position, e.type, e.version])).toEqual([
            ["run-1", 0, "RunStarted", 1],
            ["run-1", 1, "StepCompleted", 1],
            ["run-1", 2, "Note", 2],
          ])
          expect(events.map((e) => e.data)).toEqual([{ seed: 7 }, data, null])
          expect(events.every((e) => e.recordedAt === 1_700_000_000_123)).toBe(true)
        }),
      ),
    )

    it.effect("keeps positions contiguous per stream and global positions increasing across streams", () =>
      withStore(
        Effect.gen(function* () {
          const store = yield* EventStore
          yield* store.append("a", [ev("A0"), ev("A1")], 0)
          yield* store.append("b", [ev("B0")], 0)
          yield* store.append("a", [ev("A2")], 2)
          yield* store.append("b", [ev("B1"), ev("B2"), ev("B3")], 1)
          const a = yield* readAll("a")
          const b = yield* readAll("b")
          expect(positions(a)).toEqual([0, 1, 2])
          expect(positions(b)).toEqual([0, 1, 2, 3])
          expect(a.map((e) => e.type)).toEqual(["A0", "A1", "A2"])
          const inAppendOrder = [a[0]!, a[1]!, b[0]!, a[2]!, b[1]!, b[2]!, b[3]!]
          expectStrictlyIncreasing(inAppendOrder.map((e) => e.globalPosition))
        }),
      ),
    )

    it.effect("reads a window with from (inclusive) and to (exclusive)", () =>
      withStore(
        Effect.gen(function* () {
          const store = yield* EventStore
          yield* store.append(
            "w",
            range(0, 10).map((i) => ev("E", { i })),
            0,
          )
          expect(positions(yield* readAll("w", { from: 2, to: 5 }))).toEqual([2, 3, 4])
          expect(positions(yield* readAll("w", { from: 7 }))).toEqual([7, 8, 9])
          expect(positions(yield* readAll("w", { to: 2 }))).toEqual([0, 1])
          expect(positions(yield* readAll("w", { from: 8, to: 100 }))).toEqual([8, 9])
          expect(yield* readAll("w", { from: 5, to: 5 })).toEqual([])
          expect(yield* readAll("w", { from: 6, to: 3 })).toEqual([])
          expect(yield* readAll("w", { from: 10 })).toEqual([])
          expect((yield* readAll("w", { from: 4, to: 6 })).map((e) => e.data)).toEqual([{ i: 4 }, { i: 5 }])
        }),
      ),
    )

    it.effect("reads an unknown stream as empty, at version 0", () =>
      withStore(
        Effect.gen(function* () {
          const store = yield* EventStore
          yield* store.append("known", [ev("E")], 0)
          expect(yield* readAll("unknown")).toEqual([])
          expect(yield* store.version("unknown")).toBe(0)
        }),
      ),
    )

    it.effect("refuses a wrong expected version with VersionConflict and writes nothing", () =>
      withStore(
        Effect.gen(function* () {
          const store = yield* EventStore
          yield* store.append("s", [ev("E0"), ev("E1")], 0)
          const attempts: ReadonlyArray<readonly [string, number, number]> = [
            ["s", 1, 2], // stale
            ["s", 3, 2], // ahead
            ["s", 0, 2], // "new stream" on an existing one
            ["fresh", 2, 0], // non-zero on a stream that does not exist
          ]
          for (const [stream, expected, actual] of attempts) {
            const result = yield* Effect.either(store.append(stream, [ev("X"), ev("Y")], expected))
            expect(result).toEqual(Either.left(new VersionConflict({ stream, expected, actual })))
          }
          expect(yield* store.version("s")).toBe(2)
          expect((yield* readAll("s")).map((e) => e.type)).toEqual(["E0", "E1"])
          expect(yield* readAll("fresh")).toEqual([])
          expect((yield* store.streams()).map((s) => s.stream)).toEqual(["s"])
          // The log is still writable at the right version, with no gap left by the refusals.
          yield* store.append("s", [ev("E2")], 2)
          expect(positions(yield* readAll("s"))).toEqual([0, 1, 2])
        }),
      ),
    )

    it.effect("lets exactly one of several concurrent writers with the same expected version win", () =>
      withStore(
        Effect.gen(function* () {
          const store = yield* EventStore
          yield* store.append("race", [ev("Start")], 0)
          const writers = range(0, 6).map((w) => store.append("race", [ev(`W${w}`), ev(`W${w}`)], 1))
          const results = yield* Effect.all(writers, { concurrency: "unbounded", mode: "either" })
          const winners = results.filter(Either.isRight)
          const losers = results.filter(Either.isLeft)
          expect(winners.map((r) => r.right)).toEqual([3])
          expect(losers).toHaveLength(5)
          for (const l of losers) {
            expect(l.left).toEqual(new VersionConflict({ stream: "race", expected: 1, actual: 3 }))
          }
          const events = yield* readAll("race")
          expect(positions(events)).toEqual([0, 1, 2])
          expect(events[1]!.type).toBe(events[2]!.type)
          expectStrictlyIncreasing(events.map((e) => e.globalPosition))
        }),
      ),
    )

    it.effect("appends an empty batch as a no-op that still checks the version", () =>
      withStore(
        Effect.gen(function* () {
          const store = yield* EventStore
          expect(yield* store.append("empty", [], 0)).toBe(0)
          expect(yield* store.streams()).toEqual([])
          yield* store.append("s", [ev("E")], 0)
          expect(yield* store.append("s", [], 1)).toBe(1)
          expect(yield* Effect.flip(store.append("s", [], 0))).toEqual(
            new VersionConflict({ stream: "s", expected: 0, actual: 1 }),
          )
          expect(positions(yield* readAll("s"))).toEqual([0])
        }),
      ),
    )

    it.effect("refuses data that JSON cannot hold, writing nothing", () =>
      withStore(
        Effect.gen(function* () {
          const store = yield* EventStore
          const error = yield* Effect.flip(store.append("s", [ev("Ok"), ev("Bad", { n: 10n })], 0))
          expect(error._tag).toBe("StoreError")
          expect(yield* store.version("s")).toBe(0)
        }),
      ),
    )

    it.effect("lists streams with their versions and times, in creation order", () =>
      withStore(
        Effect.gen(function* () {
          const store = yield* EventStore
          yield* TestClock.setTime(1000)
          yield* store.append("zeta", [ev("E")], 0)
          yield* TestClock.setTime(2000)
          yield* store.append("alpha", [ev("E"), ev("E")], 0)
          yield* TestClock.setTime(3000)
          yield* store.append("zeta", [ev("E"), ev("E")], 1)
          expect(yield* store.streams()).toEqual([
            { stream: "zeta", version: 3, firstRecordedAt: 1000, lastRecordedAt: 3000 },
            { stream: "alpha", version: 2, firstRecordedAt: 2000, lastRecordedAt: 2000 },
          ])
        }),
      ),
    )

    it.effect("deletes a stream with its events: version 0, unlisted, out of the global log, reusable", () =>
      withStore(
        Effect.gen(function* () {
          const store = yield* EventStore
          yield* store.append("keep", [ev("K0")], 0)
          yield* store.append("gone", [ev("G0"), ev("G1"), ev("G2")], 0)
          yield* store.append("keep", [ev("K1")], 1)
          yield* store.heartbeat("gone", 5)
          expect(yield* store.deleteStream("gone")).toBe(3)
          expect(yield* store.version("gone")).toBe(0)
          expect(yield* readAll("gone")).toEqual([])
          expect((yield* store.streams()).map((s) => s.stream)).toEqual(["keep"])
          expect((yield* readGlobal()).map((e) => e.type)).toEqual(["K0", "K1"])
          // A writer that still holds the old version loses; the name starts over at 0.
          expect(yield* Effect.flip(store.append("gone", [ev("Late")], 3))).toEqual(
            new VersionConflict({ stream: "gone", expected: 3, actual: 0 }),
          )
          expect(yield* store.append("gone", [ev("New")], 0)).toBe(1)
          const again = yield* readAll("gone")
          expect(again.map((e) => [e.position, e.type])).toEqual([[0, "New"]])
          const info = (yield* store.streams()).find((s) => s.stream === "gone")
          expect(info).toMatchObject({ version: 1 })
          expect(info?.heartbeatAt).toBeUndefined()
          // Global positions stay increasing across the gap the deletion left.
          expectStrictlyIncreasing((yield* readGlobal()).map((e) => e.globalPosition))
          expect(yield* store.deleteStream("never-was")).toBe(0)
          expect(positions(yield* readAll("keep"))).toEqual([0, 1])
        }),
      ),
    )

    it.effect("renames a stream whole: same positions, data and times, at the end of the global log", () =>
      withStore(
        Effect.gen(function* () {
          const store = yield* EventStore
          yield* TestClock.setTime(1000)
          yield* store.append("draft", [ev("D0", { i: 0 }), ev("D1", { i: 1 })], 0)
          yield* TestClock.setTime(2000)
          yield* store.append("other", [ev("O0")], 0)
          yield* store.append("draft", [ev("D2", { i: 2 })], 2)
          yield* store.heartbeat("draft", 2500)
          const before = yield* readAll("draft")
          const globalBefore = yield* readGlobal()
          const lastGlobal = globalBefore[globalBefore.length - 1]!.globalPosition
          yield* TestClock.setTime(3000)
          yield* store.renameStream("draft", "final")
          const after = yield* readAll("final")
          expect(after.map((e) => [e.stream, e.position, e.type, e.data, e.recordedAt])).toEqual(
            before.map((e) => ["final", e.position, e.type, e.data, e.recordedAt]),
          )
          expect(yield* readAll("draft")).toEqual([])
          expect(yield* store.version("draft")).toBe(0)
          expect(yield* store.version("final")).toBe(3)
          // Listed as the newest stream, with its times and heartbeat.
          expect(yield* store.streams()).toEqual([
            { stream: "other", version: 1, firstRecordedAt: 2000, lastRecordedAt: 2000 },
            { stream: "final", version: 3, firstRecordedAt: 1000, lastRecordedAt: 2000, heartbeatAt: 2500 },
          ])
          // A reader checkpointed before the rename sees the renamed stream once, whole, after it.
          const later = yield* readGlobal({ after: lastGlobal })
          expect(later).toEqual(after)
          expect(after.every((e) => e.globalPosition > lastGlobal)).toBe(true)
          const all = yield* readGlobal()
          expect(all.map((e) => e.type)).toEqual(["O0", "D0", "D1", "D2"])
          expectStrictlyIncreasing(all.map((e) => e.globalPosition))
          // The old name is free, and a writer holding its old version loses.
          expect(yield* Effect.flip(store.append("draft", [ev("Late")], 3))).toEqual(
            new VersionConflict({ stream: "draft", expected: 3, actual: 0 }),
          )
          yield* store.append("final", [ev("D3")], 3)
          expect(positions(yield* readAll("final"))).toEqual([0, 1, 2, 3])
        }),
      ),
    )

    it.effect("refuses a rename onto an existing stream, or of a missing one, changing nothing", () =>
      withStore(
        Effect.gen(function* () {
          const store = yield* EventStore
          yield* store.append("a", [ev("A0"), ev("A1")], 0)
          yield* store.append("b", [ev("B0")], 0)
          const global = yield* readGlobal()
          expect(yield* Effect.flip(store.renameStream("a", "b"))).toEqual(new StreamExists({ stream: "b" }))
          expect(yield* Effect.flip(store.renameStream("ghost", "c"))).toEqual(
            new StreamNotFound({ stream: "ghost" }),
          )
          expect(yield* Effect.flip(store.renameStream("a", "a"))).toEqual(new StreamExists({ stream: "a" }))
          expect((yield* readAll("a")).map((e) => e.type)).toEqual(["A0", "A1"])
          expect((yield* readAll("b")).map((e) => e.type)).toEqual(["B0"])
          expect(yield* readAll("c")).toEqual([])
          expect((yield* store.streams()).map((s) => [s.stream, s.version])).toEqual([
            ["a", 2],
            ["b", 1],
          ])
          expect(yield* readGlobal()).toEqual(global)
        }),
      ),
    )

    it.effect("records a heartbeat without an event; an unknown stream gets none", () =>
      withStore(
        Effect.gen(function* () {
          const store = yield* EventStore
          yield* TestClock.setTime(100)
          yield* store.append("run", [ev("A")], 0)
          expect((yield* store.streams())[0]!.heartbeatAt).toBeUndefined()
          expect(yield* store.heartbeat("run", 1_700_000_000_500)).toBe(true)
          expect(yield* store.heartbeat("run", 1_700_000_000_900)).toBe(true)
          expect(yield* store.streams()).toEqual([
            {
              stream: "run",
              version: 1,
              firstRecordedAt: 100,
              lastRecordedAt: 100,
              heartbeatAt: 1_700_000_000_900,
            },
          ])
          expect(yield* store.version("run")).toBe(1)
          expect(yield* readGlobal()).toHaveLength(1)
          expect(yield* store.heartbeat("nobody", 5)).toBe(false)
          expect((yield* store.streams()).map((s) => s.stream)).toEqual(["run"])
          expect(yield* store.version("nobody")).toBe(0)
        }),
      ),
    )

    it.live("keeps staging streams out of the listing and the global log until renamed", () =>
      withStore(
        Effect.gen(function* () {
          const store = yield* EventStore
          const staging = `${STAGING_PREFIX}run-x/host:1:abc`
          yield* store.append("visible", [ev("V0")], 0)
          const seen = yield* Deferred.make<void>()
          const tail = yield* store.tailAll({ pollMs: 5, until: (e) => e.type === "S2" }).pipe(
            Stream.tap((e) => (e.type === "V0" ? Deferred.succeed(seen, undefined) : Effect.void)),
            Stream.runCollect,
            Effect.fork,
          )
          yield* Deferred.await(seen)
          yield* store.append(staging, [ev("S0"), ev("S1")], 0)
          yield* store.append(staging, [ev("S2")], 2)
          yield* store.append("visible", [ev("V1")], 1)
          expect((yield* store.streams()).map((s) => s.stream)).toEqual(["visible"])
          expect((yield* store.streams({ staging: true })).map((s) => [s.stream, s.version])).toEqual([
            [staging, 3],
          ])
          expect((yield* readGlobal()).map((e) => e.type)).toEqual(["V0", "V1"])
          // By name, a staging stream reads and writes like any other.
          expect(yield* store.version(staging)).toBe(3)
          expect((yield* readAll(staging)).map((e) => e.type)).toEqual(["S0", "S1", "S2"])
          yield* store.renameStream(staging, "run-x")
          expect(yield* store.streams({ staging: true })).toEqual([])
          expect((yield* store.streams()).map((s) => s.stream)).toEqual(["visible", "run-x"])
          const seenByTail = Chunk.toReadonlyArray(yield* Fiber.join(tail))
          expect(seenByTail.map((e) => [e.stream, e.type])).toEqual([
            ["visible", "V0"],
            ["visible", "V1"],
            ["run-x", "S0"],
            ["run-x", "S1"],
            ["run-x", "S2"],
          ])
          expect(yield* readGlobal()).toEqual(seenByTail)
        }),
      ),
    )

    it.effect("a store error is bad input unless said otherwise", () =>
      Effect.sync(() => {
        expect(new StoreError({ message: "x" }).kind).toBe("bad-input")
        expect(new StoreError({ message: "x", kind: "unavailable" }).kind).toBe("unavailable")
      }),
    )

    it.live("tails events appended after it started and stops at `until`", () =>
      withStore(
        Effect.gen(function* () {
          const store = yield* EventStore
          yield* store.append("live", [ev("RunStarted"), ev("Step")], 0)
          const sawExisting = yield* Deferred.make<void>()
          const tail = yield* store.tail("live", { pollMs: 5, until: (e) => e.type === "RunCompleted" }).pipe(
            Stream.tap((e) => (e.position === 1 ? Deferred.succeed(sawExisting, undefined) : Effect.void)),
            Stream.runCollect,
            Effect.fork,
          )
          yield* Deferred.await(sawExisting)
          yield* store.append("live", [ev("Step")], 2)
          yield* store.append("live", [ev("Step"), ev("RunCompleted"), ev("AfterEnd")], 3)
          const seen = Chunk.toReadonlyArray(yield* Fiber.join(tail))
          expect(seen.map((e) => e.type)).toEqual(["RunStarted", "Step", "Step", "Step", "RunCompleted"])
          expect(positions(seen)).toEqual([0, 1, 2, 3, 4])
        }),
      ),
    )

    it.live("tails from a position, waiting for a stream that does not exist yet", () =>
      withStore(
        Effect.gen(function* () {
          const store = yield* EventStore
          const tail = yield* store
            .tail("later", { from: 1, pollMs: 5, until: (e) => e.type === "End" })
            .pipe(Stream.runCollect, Effect.fork)
          yield* store.append("later", [ev("A"), ev("B")], 0)
          yield* store.append("later", [ev("End")], 2)
          const seen = Chunk.toReadonlyArray(yield* Fiber.join(tail))
          expect(seen.map((e) => [e.position, e.type])).toEqual([
            [1, "B"],
            [2, "End"],
          ])
        }),
      ),
    )

    it.effect("reads a large stream back in order, across pages and windows", () =>
      withStore(
        Effect.gen(function* () {
          const store = yield* EventStore
          const total = 50_000
          let version = 0
          // One oversized batch (more rows than one INSERT can bind), then many normal ones.
          version = yield* store.append(
            "big",
            range(0, 20_000).map((i) => ev("Step", { i })),
            version,
          )
          for (let start = 20_000; start < total; start += 1000) {
            version = yield* store.append(
              "big",
              range(start, start + 1000).map((i) => ev("Step", { i })),
              version,
            )
          }
          expect(version).toBe(total)
          let expected = 0
          let lastGlobal = -1
          yield* Stream.runForEach(store.read("big"), (e) =>
            Effect.sync(() => {
              if (e.position !== expected || (e.data as { i: number }).i !== expected) {
                throw new Error(`event ${expected} came back as ${e.position} (${JSON.stringify(e.data)})`)
              }
              if (e.globalPosition <= lastGlobal) throw new Error(`global position went back at ${expected}`)
              lastGlobal = e.globalPosition
              expected++
            }),
          )
          expect(expected).toBe(total)
          const window = yield* readAll("big", { from: 9_990, to: 30_010 })
          expect(positions(window)).toEqual(range(9_990, 30_010))
          // The global log pages the same way.
          let count = 0
          lastGlobal = -1
          yield* Stream.runForEach(store.readAll(), (e) =>
            Effect.sync(() => {
              if (e.position !== count)
                throw new Error(`global read: event ${count} came back as ${e.position}`)
              if (e.globalPosition <= lastGlobal) throw new Error(`global position went back at ${count}`)
              lastGlobal = e.globalPosition
              count++
            }),
          )
          expect(count).toBe(total)
          const tail = yield* readGlobal({ after: window[window.length - 1]!.globalPosition, limit: 25_000 })
          expect(positions(tail)).toEqual(range(30_010, total))
        }),
      ),
    )

    it.effect(
      "keeps payloads as JSON gives them back: NUL, lone surrogates, emoji, big and tiny numbers",
      () =>
        withStore(
          Effect.gen(function* () {
            const store = yield* EventStore
            const data = {
              nul: "a\u0000b",
              lone: "\ud800 and \udfff",
              emoji: "🚀 visual",
              quotes: 'say "hi" \\ back',
              numbers: [0, -0, 1e-7, 0.1 + 0.2, 1e308, -5e-324, Number.MAX_SAFE_INTEGER, 123456789.125],
              nested: { zz: 1, a: [null, true, false, {}], "": "empty key", "b c": [[[]]] },
              dropped: undefined,
              nan: Number.NaN,
              date: new Date(1_700_000_000_000),
            }
            yield* store.append("json", [ev("E", data), ev("Str", "just a string"), ev("Num", 42)], 0)
            const events = yield* readAll("json")
            expect(events.map((e) => e.data)).toEqual([JSON.parse(JSON.stringify(data)), "just a string", 42])
            expect((yield* readGlobal()).map((e) => e.data)).toEqual(events.map((e) => e.data))
          }),
        ),
    )

    it.effect("reads the global log across streams in global order, after a position and up to a limit", () =>
      withStore(
        Effect.gen(function* () {
          const store = yield* EventStore
          expect(yield* readGlobal()).toEqual([])
          yield* store.append("a", [ev("A0"), ev("A1")], 0)
          yield* store.append("b", [ev("B0")], 0)
          yield* store.append("a", [ev("A2")], 2)
          yield* store.append("c", [ev("C0"), ev("C1")], 0)
          yield* store.append("b", [ev("B1")], 1)
          const all = yield* readGlobal()
          expect(all.map((e) => e.type)).toEqual(["A0", "A1", "B0", "A2", "C0", "C1", "B1"])
          expect(all.map((e) => [e.stream, e.position])).toEqual([
            ["a", 0],
            ["a", 1],
            ["b", 0],
            ["a", 2],
            ["c", 0],
            ["c", 1],
            ["b", 1],
          ])
          expectStrictlyIncreasing(all.map((e) => e.globalPosition))
          // The same events as the streams hold, field for field.
          const a = yield* readAll("a")
          expect(all.filter((e) => e.stream === "a")).toEqual(a)
          for (let i = 0; i < all.length; i++) {
            const after = all[i]!.globalPosition
            expect(yield* readGlobal({ after })).toEqual(all.slice(i + 1))
            expect(yield* readGlobal({ after, limit: 2 })).toEqual(all.slice(i + 1, i + 3))
          }
          expect(yield* readGlobal({ limit: 3 })).toEqual(all.slice(0, 3))
          expect(yield* readGlobal({ limit: 0 })).toEqual([])
          expect(yield* readGlobal({ after: all[all.length - 1]!.globalPosition })).toEqual([])
          // A failed append leaves no trace in the global log.
          yield* Effect.flip(store.append("a", [ev("Lost")], 1))
          yield* store.append("d", [ev("D0")], 0)
          const later = yield* readGlobal({ after: all[all.length - 1]!.globalPosition })
          expect(later.map((e) => e.type)).toEqual(["D0"])
        }),
      ),
    )

    it.live("tails the global log from a position and stops at `until`", () =>
      withStore(
        Effect.gen(function* () {
          const store = yield* EventStore
          yield* store.append("old", [ev("Old0"), ev("Old1")], 0)
          const old = yield* readGlobal()
          const sawExisting = yield* Deferred.make<void>()
          const tail = yield* store
            .tailAll({ after: old[0]!.globalPosition, pollMs: 5, until: (e) => e.type === "End" })
            .pipe(
              Stream.tap((e) => (e.type === "Old1" ? Deferred.succeed(sawExisting, undefined) : Effect.void)),
              Stream.runCollect,
              Effect.fork,
            )
          yield* Deferred.await(sawExisting)
          yield* store.append("x", [ev("X0")], 0)
          yield* store.append("y", [ev("Y0"), ev("Y1")], 0)
          yield* store.append("x", [ev("End"), ev("AfterEnd")], 1)
          const seen = Chunk.toReadonlyArray(yield* Fiber.join(tail))
          expect(seen.map((e) => e.type)).toEqual(["Old1", "X0", "Y0", "Y1", "End"])
          expectStrictlyIncreasing(seen.map((e) => e.globalPosition))
        }),
      ),
    )

    it.live("gives a global tail under four concurrent writers every event exactly once, in order", () =>
      withStore(
        Effect.gen(function* () {
          const store = yield* EventStore
          const writers = 4
          const batches = 30
          const size = 3
          const total = writers * batches * size
          let seen = 0
          const tail = yield* store
            .tailAll({ pollMs: 1, until: () => ++seen === total })
            .pipe(Stream.runCollect, Effect.fork)
          const writer = (w: number) =>
            Effect.gen(function* () {
              let version = 0
              for (let b = 0; b < batches; b++) {
                const batch = range(0, size).map((i) => ev(`W${w}`, { b, i }))
                version = yield* store.append(`writer-${w}`, batch, version)
                if (b % 4 === w % 4) yield* Effect.sleep("1 millis")
              }
            })
          yield* Effect.all(range(0, writers).map(writer), { concurrency: "unbounded" })
          const events = Chunk.toReadonlyArray(yield* Fiber.join(tail))
          expect(events).toHaveLength(total)
          expectStrictlyIncreasing(events.map((e) => e.globalPosition))
          expect(new Set(events.map((e) => `${e.stream}/${e.position}`)).size).toBe(total)
          for (let w = 0; w < writers; w++) {
            const mine = events.filter((e) => e.stream === `writer-${w}`)
            expect(positions(mine)).toEqual(range(0, batches * size))
            expect(mine.every((e) => e.type === `W${w}`)).toBe(true)
          }
          // What the tail saw is what a reader that comes after sees.
          expect(yield* readGlobal()).toEqual(events)
        }),
      ),
    )

    it.live("lets two writers race on one stream: one VersionConflict per round, nothing lost", () =>
      withStore(
        Effect.gen(function* () {
          const store = yield* EventStore
          yield* store.append("duel", [ev("Start")], 0)
          for (let round = 0; round < 10; round++) {
            const version = 1 + 2 * round
            const results = yield* Effect.all(
              [
                store.append("duel", [ev("A"), ev("A")], version),
                store.append("duel", [ev("B"), ev("B")], version),
              ],
              { concurrency: "unbounded", mode: "either" },
            )
            expect(results.filter(Either.isRight).map((r) => r.right)).toEqual([version + 2])
            expect(results.filter(Either.isLeft).map((r) => r.left)).toEqual([
              new VersionConflict({ stream: "duel", expected: version, actual: version + 2 }),
            ])
          }
          // Then both keep writing, re-reading the version whenever they lose: every batch lands.
          const writer = (name: string) =>
            Effect.gen(function* () {
              let conflicts = 0
              for (let b = 0; b < 15; b++) {
                for (;;) {
                  const version = yield* store.version("duel")
                  if (b % 2 === 0) yield* Effect.yieldNow()
                  const result = yield* Effect.either(
                    store.append("duel", [ev(name, { b }), ev(name, { b })], version),
                  )
                  if (Either.isRight(result)) break
                  if (result.left._tag !== "VersionConflict") return yield* result.left
                  conflicts++
                }
              }
              return conflicts
            })
          yield* Effect.all([writer("P"), writer("Q")], { concurrency: "unbounded" })
          const events = yield* readAll("duel")
          expect(positions(events)).toEqual(range(0, 1 + 20 + 60))
          for (const name of ["P", "Q"]) {
            const mine = events.filter((e) => e.type === name).map((e) => (e.data as { b: number }).b)
            expect(mine).toEqual(range(0, 15).flatMap((b) => [b, b]))
          }
          for (let i = 1; i < events.length; i += 2) expect(events[i]!.type).toBe(events[i + 1]!.type)
          expectStrictlyIncreasing(events.map((e) => e.globalPosition))
        }),
      ),
    )

    it.effect("matches a model under random appends with right and wrong versions (property)", () =>
      Effect.promise(() =>
        fc.assert(
          fc.asyncProperty(
            fc.array(
              fc.record({
                stream: fc.constantFrom("r1", "r2", "r3"),
                count: fc.integer({ min: 0, max: 4 }),
                skew: fc.constantFrom(0, 0, 0, -1, 1),
              }),
              { maxLength: 25 },
            ),
            (ops) =>
              Effect.runPromise(
                withStore(
                  Effect.gen(function* () {
                    const store = yield* EventStore
                    const model = new Map<string, number>()
                    let label = 0
                    const appended: Array<string> = []
                    for (const op of ops) {
                      const actual = model.get(op.stream) ?? 0
                      const expected = actual + op.skew
                      const batch = range(0, op.count).map(() => ev(`L${label++}`))
                      const result = yield* Effect.either(store.append(op.stream, batch, expected))
                      if (op.skew === 0) {
                        expect(result).toEqual(Either.right(actual + op.count))
                        model.set(op.stream, actual + op.count)
                        appended.push(...batch.map((e) => e.type))
                      } else {
                        expect(result).toEqual(
                          Either.left(new VersionConflict({ stream: op.stream, expected, actual })),
                        )
                      }
                    }
                    const all: Array<StoredEvent> = []
                    for (const s of ["r1", "r2", "r3"]) {
                      const events = yield* readAll(s)
                      expect(positions(events)).toEqual(range(0, model.get(s) ?? 0))
                      expect(yield* store.version(s)).toBe(model.get(s) ?? 0)
                      all.push(...events)
                    }
                    // Global order is append order: sorting by it gives back the labels as written.
                    all.sort((x, y) => x.globalPosition - y.globalPosition)
                    expect(all.map((e) => e.type)).toEqual(appended)
                    expectStrictlyIncreasing(all.map((e) => e.globalPosition))
                    expect(yield* readGlobal()).toEqual(all)
                  }),
                ),
              ),
          ),
          { numRuns: 30 },
        ),
      ),
    )
  })

/**
 * The SQLite store when it cannot simply be written: another process holding the lock, a full
 * disk, a read-only file in a read-only folder, an older schema read without upgrading it.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, describe, expect, it } from "@effect/vitest"
import Database from "better-sqlite3"
import { Cause, Chunk, Effect, Exit, Option, Stream } from "effect"
import type { EventStoreShape, StoreError } from "../../core/store/event-store.ts"
import { makeSqliteEventStore, SCHEMA_VERSION, type SqliteStoreOptions } from "../../core/store/sqlite.ts"
import { exited, holdLock, release } from "../support/sqlite-lock.ts"

const root = fs.mkdtempSync(path.join(os.tmpdir(), "interleave-store-access-"))
afterAll(() => {
  // Folders made read-only below: writable again, so that they can go.
  for (const d of fs.readdirSync(root)) fs.chmodSync(path.join(root, d), 0o755)
  fs.rmSync(root, { recursive: true, force: true })
})

let counter = 0
const freshPath = (name = "runs.db") => path.join(root, `case-${counter++}`, name)

const ev = (type: string, data: unknown = {}) => ({ type, version: 1, data })

const withStore = <A, E>(
  file: string,
  body: (store: EventStoreShape) => Effect.Effect<A, E>,
  options?: SqliteStoreOptions,
) => Effect.scoped(Effect.flatMap(makeSqliteEventStore(file, options), body))

/** The StoreError an effect fails with (a test failure when it succeeds or dies). */
const storeErrorOf = (eff: Effect.Effect<unknown, unknown>) =>
  Effect.map(Effect.exit(eff), (exit): StoreError => {
    if (Exit.isSuccess(exit)) throw new Error("succeeded")
    const failure = Cause.failureOption(exit.cause)
    if (Option.isNone(failure)) throw new Error(`died: ${Cause.pretty(exit.cause)}`)
    return failure.value as StoreError
  })

const collect = (store: EventStoreShape, stream: string) =>
  Effect.map(Stream.runCollect(store.read(stream)), Chunk.toReadonlyArray)

/** A file's bytes and times, and its folder's listing: what a read-only open must not change. */
const snapshot = (file: string) => ({
  bytes: fs.readFileSync(file).toString("base64"),
  mtimeMs: fs.statSync(file).mtimeMs,
  siblings: fs.readdirSync(path.dirname(file)).sort(),
})

describe("SQLite store: another process holding the lock", () => {
  it.live("waits out a lock held longer than SQLite's 5 s busy timeout, then appends", () =>
    Effect.gen(function* () {
      const file = freshPath()
      yield* withStore(file, (s) => s.append("run", [ev("A")], 0))
      yield* withStore(file, (store) =>
        Effect.gen(function* () {
          // Released by this process 6 s after the append starts, never sooner: the append must
          // wait at least that long (a lower bound that load only lengthens), and then succeed.
          const holder = yield* holdLock(file)
          const t0 = Date.now()
          yield* Effect.fork(Effect.zipRight(Effect.sleep("6 seconds"), release(holder)))
          expect(yield* store.append("run", [ev("B"), ev("C")], 1)).toBe(3)
          expect(Date.now() - t0).toBeGreaterThanOrEqual(6_000)
          yield* exited(holder)
          expect((yield* collect(store, "run")).map((e) => [e.position, e.type])).toEqual([
            [0, "A"],
            [1, "B"],
            [2, "C"],
          ])
        }),
      )
    }),
  )

  it.live("gives up after the wait budget: kind unavailable, says who holds it, writes nothing", () =>
    Effect.gen(function* () {
      const file = freshPath()
      yield* withStore(file, (s) => s.append("run", [ev("A")], 0))
      yield* withStore(
        file,
        (store) =>
          Effect.gen(function* () {
            // Held until the append has given up, however long a loaded machine makes that.
            const holder = yield* holdLock(file)
            const t0 = Date.now()
            const error = yield* storeErrorOf(store.append("run", [ev("B")], 1)).pipe(
              Effect.ensuring(release(holder)),
            )
            const waited = Date.now() - t0
            expect(error._tag).toBe("StoreError")
            expect(error.kind).toBe("unavailable")
            expect(error.message).toBe(
              `cannot append to stream run: ${file} is locked by another process (gave up after waiting 0.4 s for it)`,
            )
            // It waited its budget (a lower bound: load only lengthens it) before giving up.
            expect(waited).toBeGreaterThanOrEqual(350)
            // Nothing half-written: once the lock is free, the same version appends.
            yield* exited(holder)
            expect(yield* store.version("run")).toBe(1)
            expect(yield* store.append("run", [ev("B")], 1)).toBe(2)
          }),
        { lockWaitMs: 400 },
      )
    }),
  )
})

describe("SQLite store: a full disk", () => {
  it.live("fails an append with kind unavailable and words, writing nothing, the store still usable", () =>
    Effect.gen(function* () {
      const file = freshPath()
      yield* withStore(file, (s) => s.append("run", [ev("A")], 0))
      // The file may not grow by a single page: every page-allocating write is SQLITE_FULL.
      yield* withStore(
        file,
        (store) =>
          Effect.gen(function* () {
            const big = Array.from({ length: 2_000 }, (_, i) => ev("Big", { i, pad: "x".repeat(200) }))
            const error = yield* storeErrorOf(store.append("run", big, 1))
            expect(error.kind).toBe("unavailable")
            expect(error.message).toBe(
              `cannot append to stream run (${file}): the disk is full (no space left on the device)`,
            )
            expect(yield* store.version("run")).toBe(1)
            expect((yield* collect(store, "run")).map((e) => e.type)).toEqual(["A"])
          }),
        { testing: { pragmas: ["PRAGMA max_page_count = 1"] } },
      )
      expect(yield* withStore(file, (s) => s.append("run", [ev("B")], 1))).toBe(2)
    }),
  )
})

describe("SQLite store: read-only", () => {
  /** A store with two streams, closed (so no -wal or -shm), then made read-only with its folder. */
  const readOnlyStore = Effect.gen(function* () {
    const file = freshPath()
    yield* withStore(file, (s) =>
      Effect.all([
        s.append("a", [ev("A0"), ev("A1")], 0),
        s.append("b", [ev("B0")], 0),
        s.heartbeat("a", 42),
      ]),
    )
    expect(fs.readdirSync(path.dirname(file))).toEqual(["runs.db"])
    fs.chmodSync(file, 0o444)
    fs.chmodSync(path.dirname(file), 0o555)
    fs.utimesSync(file, new Date(2020, 0, 1), new Date(2020, 0, 1))
    return file
  })

  it.live("reads a 444 file in a 555 folder without changing a byte or making -wal/-shm", () =>
    Effect.gen(function* () {
      const file = yield* readOnlyStore
      const before = snapshot(file)
      yield* withStore(
        file,
        (store) =>
          Effect.gen(function* () {
            expect((yield* store.streams()).map((s) => [s.stream, s.version, s.heartbeatAt])).toEqual([
              ["a", 2, 42],
              ["b", 1, undefined],
            ])
            expect((yield* collect(store, "a")).map((e) => e.type)).toEqual(["A0", "A1"])
            expect(yield* store.version("b")).toBe(1)
            const global = Chunk.toReadonlyArray(yield* Stream.runCollect(store.readAll()))
            expect(global.map((e) => e.type)).toEqual(["A0", "A1", "B0"])
            expect(snapshot(file).siblings).toEqual(["runs.db"])
            // Writes are refused, in words, and change nothing either.
            for (const write of [
              store.append("a", [ev("X")], 2),
              store.deleteStream("a"),
              store.renameStream("a", "c"),
              store.heartbeat("a", 1),
            ]) {
              const error = yield* storeErrorOf(write)
              expect(error.message).toBe(`${file} is open read-only: cannot write to it`)
            }
          }),
        { readOnly: true },
      )
      expect(snapshot(file)).toEqual(before)
    }),
  )

  it.live("reads a missing store as empty and creates nothing, not even its folder", () =>
    Effect.gen(function* () {
      const file = path.join(root, `case-${counter++}`, "nested", "runs.db")
      yield* withStore(
        file,
        (store) =>
          Effect.gen(function* () {
            expect(yield* store.streams()).toEqual([])
            expect(yield* store.version("x")).toBe(0)
            expect(yield* collect(store, "x")).toEqual([])
          }),
        { readOnly: true },
      )
      expect(fs.existsSync(path.dirname(path.dirname(file)))).toBe(false)
    }),
  )

  it.live("still refuses what is not a store, read-only too", () =>
    Effect.gen(function* () {
      const file = freshPath("run.jsonl")
      fs.mkdirSync(path.dirname(file), { recursive: true })
      fs.writeFileSync(file, '{"type":"RunStarted"}\n')
      const error = yield* storeErrorOf(Effect.scoped(makeSqliteEventStore(file, { readOnly: true })))
      expect(error.message).toBe(`${file} is not an interleave event store (not a SQLite database)`)
      expect(error.kind).toBe("bad-input")
    }),
  )

  it.live("sees what a live writer has committed, and what it commits later", () =>
    Effect.gen(function* () {
      const file = freshPath()
      yield* withStore(file, (s) => s.append("run", [ev("A")], 0))
      yield* Effect.scoped(
        Effect.gen(function* () {
          // Opened while no writer has the file: no -wal, so an immutable connection.
          const reader = yield* makeSqliteEventStore(file, { readOnly: true })
          expect(yield* reader.version("run")).toBe(1)
          expect(fs.readdirSync(path.dirname(file))).toEqual(["runs.db"])
          // A writer starts (making -wal and -shm) and appends: the reader switches over and sees it.
          const writer = yield* makeSqliteEventStore(file)
          yield* writer.append("run", [ev("B")], 1)
          expect((yield* collect(reader, "run")).map((e) => e.type)).toEqual(["A", "B"])
          // Opened while the writer has it: reads through the writer's -wal.
          const second = yield* makeSqliteEventStore(file, { readOnly: true })
          yield* writer.append("run", [ev("C")], 2)
          expect((yield* collect(second, "run")).map((e) => e.type)).toEqual(["A", "B", "C"])
          expect(yield* reader.version("run")).toBe(3)
        }),
      )
    }),
  )
})

describe("SQLite store: schema versions", () => {
  /** A store as schema version 1 left it: written now, then the later migrations undone. */
  const versionOneStore = Effect.gen(function* () {
    const file = freshPath()
    yield* withStore(file, (s) => Effect.all([s.append("old", [ev("A"), ev("B")], 0), s.heartbeat("old", 7)]))
    const db = new Database(file)
    db.exec(
      "ALTER TABLE streams DROP COLUMN heartbeat_at; DELETE FROM interleave_migrations WHERE version > 1",
    )
    db.close()
    return file
  })

  it.live("reads a version-1 file read-only as it is, without upgrading it", () =>
    Effect.gen(function* () {
      const file = yield* versionOneStore
      const before = snapshot(file)
      yield* withStore(
        file,
        (store) =>
          Effect.gen(function* () {
            expect(yield* store.streams()).toEqual([expect.objectContaining({ stream: "old", version: 2 })])
            expect((yield* store.streams())[0]!.heartbeatAt).toBeUndefined()
            expect((yield* collect(store, "old")).map((e) => e.type)).toEqual(["A", "B"])
          }),
        { readOnly: true },
      )
      expect(snapshot(file)).toEqual(before)
    }),
  )

  it.live("upgrades a version-1 file when opened for writing, keeping its events", () =>
    Effect.gen(function* () {
      const file = yield* versionOneStore
      yield* withStore(file, (store) =>
        Effect.gen(function* () {
          expect(yield* store.heartbeat("old", 99)).toBe(true)
          expect((yield* store.streams())[0]).toMatchObject({ stream: "old", version: 2, heartbeatAt: 99 })
          expect((yield* collect(store, "old")).map((e) => e.type)).toEqual(["A", "B"])
        }),
      )
      const db = new Database(file, { readonly: true })
      const versions = db.prepare("SELECT version FROM interleave_migrations ORDER BY version").all()
      db.close()
      expect(versions).toEqual(Array.from({ length: SCHEMA_VERSION }, (_, i) => ({ version: i + 1 })))
    }),
  )
})

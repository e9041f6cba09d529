import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, describe, expect, it } from "@effect/vitest"
import Database from "better-sqlite3"
import { Cause, Chunk, Effect, Either, Exit, Layer, Option, Stream } from "effect"
import { EventStore, type StoreError, VersionConflict } from "../../core/store/event-store.ts"
import { makeSqliteEventStore, SCHEMA_VERSION, SqliteEventStoreLive } from "../../core/store/sqlite.ts"
import { raceTwoWriters } from "../support/store-writer-process.ts"
import { storeContract } from "./store-contract.ts"

const root = fs.mkdtempSync(path.join(os.tmpdir(), "interleave-store-sqlite-"))
afterAll(() => fs.rmSync(root, { recursive: true, force: true }))

let counter = 0
/** A path for a database that does not exist yet, in a folder of its own. */
const freshPath = (name = "runs.db") => path.join(root, `case-${counter++}`, name)

storeContract("sqlite", () => SqliteEventStoreLive(freshPath()))

const ev = (type: string, data: unknown = {}) => ({ type, version: 1, data })

/** Opens the store in `file` and hands back how that ended: a StoreError failure, or the store. */
const openExit = (file: string) => Effect.exit(Effect.scoped(makeSqliteEventStore(file)))

/** The StoreError that opening `file` fails with (a test failure when it opens, or dies). */
const openError = (file: string) =>
  Effect.map(openExit(file), (exit): StoreError => {
    if (Exit.isSuccess(exit)) throw new Error(`${file} opened as an event store`)
    const failure = Cause.failureOption(exit.cause)
    if (Option.isNone(failure)) throw new Error(`opening ${file} died: ${Cause.pretty(exit.cause)}`)
    return failure.value
  })

const snapshot = (file: string) => ({
  bytes: fs.readFileSync(file),
  mtimeMs: fs.statSync(file).mtimeMs,
  siblings: fs.readdirSync(path.dirname(file)).sort(),
})

/** Sets a file's times into the past, so any write would show up as a changed mtime. */
const agePast = (file: string) => fs.utimesSync(file, new Date(2020, 0, 1), new Date(2020, 0, 1))

describe("SQLite event store", () => {
  it.live("keeps events across a close and re-open, continuing global positions", () =>
    Effect.gen(function* () {
      const file = freshPath()
      yield* Effect.scoped(
        Effect.flatMap(makeSqliteEventStore(file), (store) =>
          store.append("run", [ev("A"), ev("B", { x: 1 })], 0),
        ),
      )
      const [events, streams, globals] = yield* Effect.scoped(
        Effect.gen(function* () {
          const store = yield* makeSqliteEventStore(file)
          expect(yield* store.version("run")).toBe(2)
          yield* store.append("other", [ev("C")], 0)
          const events = Chunk.toReadonlyArray(yield* Stream.runCollect(store.read("run")))
          const other = Chunk.toReadonlyArray(yield* Stream.runCollect(store.read("other")))
          return [events, yield* store.streams(), [...events, ...other].map((e) => e.globalPosition)] as const
        }),
      )
      expect(events.map((e) => [e.position, e.type, e.data])).toEqual([
        [0, "A", {}],
        [1, "B", { x: 1 }],
      ])
      expect(streams.map((s) => [s.stream, s.version])).toEqual([
        ["run", 2],
        ["other", 1],
      ])
      expect(globals).toEqual([0, 1, 2])
    }),
  )

  it.live("creates the folders of a new file and turns WAL journal mode on", () =>
    Effect.gen(function* () {
      const file = path.join(root, `case-${counter++}`, "deep", "er", "runs.db")
      yield* Effect.scoped(
        Effect.gen(function* () {
          const store = yield* makeSqliteEventStore(file)
          yield* store.append("run", [ev("A")], 0)
          const db = new Database(file, { readonly: true })
          try {
            expect(db.pragma("journal_mode", { simple: true })).toBe("wal")
          } finally {
            db.close()
          }
        }),
      )
    }),
  )

  it.live("accepts an empty file (as `touch` makes) and sets it up", () =>
    Effect.gen(function* () {
      const file = freshPath()
      fs.mkdirSync(path.dirname(file), { recursive: true })
      fs.writeFileSync(file, "")
      const version = yield* Effect.scoped(
        Effect.flatMap(makeSqliteEventStore(file), (store) => store.append("run", [ev("A")], 0)),
      )
      expect(version).toBe(1)
    }),
  )

  it.live("refuses a file that is not a SQLite database and leaves it untouched", () =>
    Effect.gen(function* () {
      for (const [name, content] of [
        ["run.jsonl", '{"type":"RunStarted","step":0}\n{"type":"StepCompleted","step":1}\n'],
        ["notes.txt", "hi\n"],
        ["almost.db", "SQLite format 2\0 and then some more bytes that follow"],
      ] as const) {
        const file = freshPath(name)
        fs.mkdirSync(path.dirname(file), { recursive: true })
        fs.writeFileSync(file, content)
        agePast(file)
        const before = snapshot(file)
        const error = yield* openError(file)
        expect(error._tag).toBe("StoreError")
        expect(error.message).toBe(`${file} is not an interleave event store (not a SQLite database)`)
        const after = snapshot(file)
        expect(after.bytes.equals(before.bytes)).toBe(true)
        expect(after.mtimeMs).toBe(before.mtimeMs)
        expect(after.siblings).toEqual([name]) // no -wal, -shm or -journal left behind
      }
    }),
  )

  it.live("refuses a damaged SQLite file (right header, garbage after it), untouched", () =>
    Effect.gen(function* () {
      const file = freshPath("damaged.db")
      fs.mkdirSync(path.dirname(file), { recursive: true })
      fs.writeFileSync(
        file,
        Buffer.concat([Buffer.from("SQLite format 3\0", "latin1"), Buffer.alloc(4096, 7)]),
      )
      agePast(file)
      const before = snapshot(file)
      const error = yield* openError(file)
      expect(error.message).toContain(`${file} is not an interleave event store (a damaged SQLite file)`)
      expect(snapshot(file)).toEqual(before)
    }),
  )

  it.live("refuses a SQLite database that is not an event store, without writing to it", () =>
    Effect.gen(function* () {
      const file = freshPath("app.sqlite")
      fs.mkdirSync(path.dirname(file), { recursive: true })
      const db = new Database(file)
      db.exec(
        "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT); INSERT INTO users (name) VALUES ('ada')",
      )
      db.close()
      agePast(file)
      const before = snapshot(file)
      const error = yield* openError(file)
      expect(error.message).toContain(`${file} is a SQLite database but not an interleave event store`)
      expect(error.message).toContain("users")
      const after = snapshot(file)
      expect(after.bytes.equals(before.bytes)).toBe(true)
      expect(after.mtimeMs).toBe(before.mtimeMs)
      expect(after.siblings).toEqual(["app.sqlite"])
    }),
  )

  it.live("refuses a store written by a newer schema version", () =>
    Effect.gen(function* () {
      const file = freshPath()
      yield* Effect.scoped(Effect.flatMap(makeSqliteEventStore(file), (s) => s.append("run", [ev("A")], 0)))
      const db = new Database(file)
      db.prepare("INSERT INTO interleave_migrations (version, name, applied_at) VALUES (?, 'future', 0)").run(
        SCHEMA_VERSION + 1,
      )
      db.close()
      const error = yield* openError(file)
      expect(error.message).toContain(`${file} was written by a newer interleave`)
      expect(error.message).toContain(`schema version ${SCHEMA_VERSION + 1}`)
    }),
  )

  it.live("refuses a directory and a path it cannot create, with a StoreError", () =>
    Effect.gen(function* () {
      const dir = path.join(root, `case-${counter++}`)
      fs.mkdirSync(dir, { recursive: true })
      expect((yield* openError(dir)).message).toBe(`${dir} is a directory, not an interleave event store`)

      const blocker = path.join(dir, "plain-file")
      fs.writeFileSync(blocker, "not a folder")
      const underFile = path.join(blocker, "runs.db")
      const error = yield* openError(underFile)
      expect(error.message).toContain(underFile)
      expect(error.message).toMatch(/ENOTDIR|not a directory/)
      expect(fs.readFileSync(blocker, "utf8")).toBe("not a folder")
    }),
  )

  it.live("lets one of two connections to the same file win a race; the other gets VersionConflict", () =>
    Effect.gen(function* () {
      const file = freshPath()
      yield* Effect.scoped(
        Effect.gen(function* () {
          const a = yield* makeSqliteEventStore(file)
          const b = yield* makeSqliteEventStore(file)
          yield* a.append("run", [ev("Start")], 0)
          for (let round = 0; round < 20; round++) {
            const version = 1 + 2 * round
            const results = yield* Effect.all(
              [a.append("run", [ev("A"), ev("A")], version), b.append("run", [ev("B"), ev("B")], version)],
              { concurrency: "unbounded", mode: "either" },
            )
            const wins = results.filter(Either.isRight)
            const losses = results.filter(Either.isLeft).map((r) => r.left)
            expect(wins.map((w) => w.right)).toEqual([version + 2])
            expect(losses).toEqual([
              new VersionConflict({ stream: "run", expected: version, actual: version + 2 }),
            ])
          }
          for (const store of [a, b]) {
            const events = Chunk.toReadonlyArray(yield* Stream.runCollect(store.read("run")))
            expect(events.map((e) => e.position)).toEqual(Array.from({ length: 41 }, (_, i) => i))
            // Each winning batch is whole: the two events of a round come from the same writer.
            for (let i = 1; i < 41; i += 2) expect(events[i]!.type).toBe(events[i + 1]!.type)
          }
        }),
      )
    }),
  )

  it.live("lets a huge append and a small one race on two connections: one wins, one VersionConflict", () =>
    Effect.gen(function* () {
      const file = freshPath()
      yield* Effect.scoped(
        Effect.gen(function* () {
          const a = yield* makeSqliteEventStore(file)
          const b = yield* makeSqliteEventStore(file)
          // Long enough that the fiber running it yields to the other one mid-transaction.
          const huge = Array.from({ length: 60_000 }, (_, i) => ev("Huge", { i }))
          const results = yield* Effect.all([a.append("run", huge, 0), b.append("run", [ev("Small")], 0)], {
            concurrency: "unbounded",
            mode: "either",
          })
          const losses = results.filter(Either.isLeft).map((r) => r.left)
          expect(losses).toHaveLength(1)
          expect(losses[0]).toBeInstanceOf(VersionConflict)
          const version = yield* b.version("run")
          expect([1, 60_000]).toContain(version)
        }),
      )
    }),
  )

  it.live("keeps the log whole when two processes append to the same stream", () =>
    Effect.gen(function* () {
      const file = freshPath()
      const go = `${file}.go`
      const batches = 150
      const size = 4
      // Create the store first, so the writers race on appends rather than on setting it up.
      yield* Effect.scoped(makeSqliteEventStore(file))
      yield* raceTwoWriters({ location: [file], go, batches, size, open: makeSqliteEventStore(file) })
    }),
  )

  it.live("provides the EventStore service as a layer", () =>
    Effect.gen(function* () {
      const store = yield* EventStore
      expect(yield* store.append("run", [ev("A")], 0)).toBe(1)
    }).pipe(Effect.provide(Layer.fresh(SqliteEventStoreLive(freshPath())))),
  )
})

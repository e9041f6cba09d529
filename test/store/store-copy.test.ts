/**
 * Copying runs between stores: the rules on memory stores (copy, skip identical, append to a
 * prefix, refuse a conflict without writing, the check after copying catches a difference), then
 * `interleave store copy` round trip SQLite -> PostgreSQL -> SQLite on the throwaway server.
 */
import { rmSync } from "node:fs"
import { join } from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, Either, Stream } from "effect"
import { afterAll, beforeAll } from "vitest"
import {
  CopyMismatch,
  CopyRefused,
  copyStreams,
  type EventEnvelope,
  type EventStoreShape,
  makeMemoryEventStore,
} from "../../core/store/index.ts"
import { scenario, tempDir } from "../support/cli-helpers.ts"
import { cliInProcess } from "../support/cli-inprocess.ts"
import { createDatabase, postgresSkipReason, testPostgresUrl } from "../support/postgres.ts"

const ev = (type: string, data: unknown = {}): EventEnvelope => ({ type, version: 1, data })

const events = (store: EventStoreShape, stream: string) =>
  Effect.map(Stream.runCollect(store.read(stream)), (c) =>
    Chunk.toReadonlyArray(c).map((e) => [e.position, e.type, e.version, e.data]),
  )

describe("copyStreams", () => {
  const stores = Effect.all([makeMemoryEventStore(), makeMemoryEventStore()])

  it.effect("copies every run, then skips them as identical, and appends what a run gained since", () =>
    Effect.gen(function* () {
      const [a, b] = yield* stores
      yield* a.append("r1", [ev("RunStarted", { n: 1 }), ev("StepCompleted", { step: 0, loss: 0.5 })], 0)
      yield* a.append(
        "r2",
        Array.from({ length: 4_500 }, (_, i) => ev("StepCompleted", { step: i })),
        0,
      )
      const first = yield* copyStreams(a, b)
      expect(first.map((c) => [c.stream, c.action, c.written, c.verified])).toEqual([
        ["r1", "copy", 2, 2],
        ["r2", "copy", 4_500, 4_500],
      ])
      expect(yield* events(b, "r2")).toEqual(yield* events(a, "r2"))
      yield* a.append("r1", [ev("RunCompleted", { steps: 1 })], 2)
      const second = yield* copyStreams(a, b)
      expect(second.map((c) => [c.stream, c.action, c.written])).toEqual([
        ["r1", "append", 1],
        ["r2", "skip", 0],
      ])
      expect(yield* events(b, "r1")).toEqual(yield* events(a, "r1"))
      expect((yield* copyStreams(a, b, { streams: ["r1"] })).map((c) => c.action)).toEqual(["skip"])
    }),
  )

  it.effect("refuses runs that differ at the destination, or have more there, and then copies nothing", () =>
    Effect.gen(function* () {
      const [a, b] = yield* stores
      yield* a.append("same", [ev("A")], 0)
      yield* a.append("differs", [ev("A", { x: 1 }), ev("B")], 0)
      yield* a.append("shorter", [ev("A")], 0)
      yield* a.append("fresh", [ev("A")], 0)
      yield* b.append("same", [ev("A")], 0)
      yield* b.append("differs", [ev("A", { x: 2 }), ev("B")], 0)
      yield* b.append("shorter", [ev("A"), ev("B")], 0)
      const r = yield* Effect.either(copyStreams(a, b))
      expect(Either.isLeft(r) && r.left).toBeInstanceOf(CopyRefused)
      const message = Either.isLeft(r) ? r.left.message : ""
      expect(message).toContain("differs differs at position 0: A data differs")
      expect(message).toContain("shorter has 2 events at the destination, 1 at the source")
      expect(message).toContain("nothing copied")
      expect(yield* b.version("fresh")).toBe(0)
      const missing = yield* Effect.either(copyStreams(a, b, { streams: ["nope"] }))
      expect(Either.isLeft(missing) && missing.left.message).toBe("no run nope at the source; nothing copied")
    }),
  )

  it.effect("checks the copy event for event: a destination that reads back differently fails the copy", () =>
    Effect.gen(function* () {
      const [a, real] = yield* stores
      yield* a.append("r", [ev("A", { v: [1, 2] }), ev("B", { v: "x" })], 0)
      // A destination that loses a payload on the way: writes fine, reads back wrong.
      const lossy: EventStoreShape = {
        ...real,
        read: (stream, options) =>
          Stream.map(real.read(stream, options), (e) => (e.position === 1 ? { ...e, data: { v: "y" } } : e)),
      }
      const r = yield* Effect.either(copyStreams(a, lossy))
      expect(Either.isLeft(r) && r.left).toBeInstanceOf(CopyMismatch)
      expect(Either.isLeft(r) && r.left.message).toBe(
        "run r: the copy differs from the source at position 1: B data differs",
      )
    }),
  )
})

const server = testPostgresUrl()
let pg = ""
const dir = tempDir("interleave-store-copy-")
beforeAll(async () => {
  if (server !== undefined) pg = await createDatabase(server, "store_copy")
})
afterAll(() => rmSync(dir, { recursive: true, force: true }))

describe.skipIf(server === undefined)("interleave store copy (PostgreSQL)", () => {
  it("round trip SQLite -> PostgreSQL -> SQLite, verified, and identical runs skipped on the second copy", async () => {
    const a = join(dir, "a.db")
    const b = join(dir, "b.db")
    const url = `${pg}?schema=copy_rt`
    for (const id of ["run-one", "run-two"]) {
      const r = await cliInProcess([
        "run",
        scenario("trex2-joint-8to1.json"),
        "--steps",
        "300",
        "--run-id",
        id,
        "--store",
        a,
      ])
      expect(r.code, r.stderr).toBe(0)
    }
    const there = await cliInProcess(["store", "copy", "--from", a, "--to", url])
    expect(there.code, there.stderr).toBe(0)
    expect(there.stdout).toMatch(
      /copied 2 runs \(\d+ events\) from .*a\.db to postgres:\/\/.*every run verified event for event/,
    )
    expect(there.stderr).toMatch(/run-one: copied \d+ events, verified/)
    const back = await cliInProcess(["store", "copy", "--from", url, "--to", b])
    expect(back.code, back.stderr).toBe(0)
    // b.db now holds what a.db holds, event for event: a copy between them skips both runs.
    const check = await cliInProcess(["store", "copy", "--from", a, "--to", b, "--json"])
    expect(check.code, check.stderr).toBe(0)
    const runs = (JSON.parse(check.stdout) as { runs: ReadonlyArray<{ stream: string; action: string }> })
      .runs
    expect(runs.map((r) => [r.stream, r.action])).toEqual([
      ["run-one", "skip"],
      ["run-two", "skip"],
    ])
    const again = await cliInProcess(["store", "copy", "--from", a, "--to", url, "--run", "run-two"])
    expect(again.code).toBe(0)
    expect(again.stderr).toContain("run-two: already at the destination, identical")
    const listed = await cliInProcess(["runs", "--store", url, "--json"])
    expect(
      (JSON.parse(listed.stdout) as ReadonlyArray<{ runId: string; status: string }>).map((r) => r.status),
    ).toEqual(["completed", "completed"])
  })

  it("refuses to overwrite a different run at the destination, and names a URL without its password", async () => {
    const a = join(dir, "c.db")
    const b = join(dir, "d.db")
    const url = `${pg}?schema=copy_conflict`
    expect(
      (
        await cliInProcess([
          "run",
          scenario("visual-only.json"),
          "--steps",
          "20",
          "--run-id",
          "x",
          "--store",
          a,
        ])
      ).code,
    ).toBe(0)
    expect(
      (
        await cliInProcess([
          "run",
          scenario("visual-only.json"),
          "--steps",
          "30",
          "--run-id",
          "x",
          "--store",
          b,
        ])
      ).code,
    ).toBe(0)
    expect((await cliInProcess(["store", "copy", "--from", b, "--to", url])).code).toBe(0)
    const refused = await cliInProcess(["store", "copy", "--from", a, "--to", url])
    expect(refused.code).toBe(1)
    expect(refused.stderr).toMatch(/already at the destination and not the same: x differs .*nothing copied/)
    const secret = new URL(pg)
    secret.password = "hunter2secret"
    secret.port = "1"
    const down = await cliInProcess(["store", "copy", "--from", a, "--to", secret.toString()])
    expect(down.code).not.toBe(0)
    expect(down.stderr).toContain("127.0.0.1:1")
    expect(down.stderr).not.toContain("hunter2secret")
  })
})

if (server === undefined) {
  describe(`interleave store copy: SKIPPED (${postgresSkipReason()})`, () => {
    it.skip("needs a PostgreSQL server", () => {})
  })
}

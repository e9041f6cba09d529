/**
 * Runs test/store/store-writer.ts as its own process, and races two of them on one stream, for
 * the cross-process tests of the SQLite and PostgreSQL stores (not a test itself). The writer is
 * bundled once per test process with esbuild, its packages left external: through tsx every
 * writer spent ~1.8 CPU-seconds compiling effect and the stores.
 */
import { execFile } from "node:child_process"
import { mkdirSync, writeFileSync } from "node:fs"
import { join, resolve } from "node:path"
import { Chunk, Effect, type Scope, Stream } from "effect"
import { expect } from "vitest"
import type { EventStoreShape } from "../../core/store/event-store.ts"

const ROOT = resolve(import.meta.dirname, "../..")

let bundled: Promise<string> | undefined

/** The bundled writer: under node_modules/, so that its packages resolve from there. */
const writerBundle = (): Promise<string> => {
  bundled ??= (async () => {
    const { build } = await import("esbuild")
    const dir = join(ROOT, "node_modules", ".cache", "interleave-test")
    mkdirSync(dir, { recursive: true })
    // One file per fork, rewritten by the next run: forks end without running exit handlers.
    const outfile = join(dir, `store-writer-${process.env.VITEST_POOL_ID ?? process.pid}.mjs`)
    await build({
      entryPoints: [join(ROOT, "test", "store", "store-writer.ts")],
      bundle: true,
      platform: "node",
      target: "node20",
      format: "esm",
      packages: "external",
      outfile,
      logLevel: "warning",
    })
    return outfile
  })()
  return bundled
}

/** Starts a writer with these arguments (see store-writer.ts) and returns its tallies. */
const storeWriter = (args: ReadonlyArray<string>) =>
  Effect.flatMap(Effect.promise(writerBundle), (entry) =>
    Effect.async<{ writer: string; conflicts: number }, Error>((resume) => {
      execFile(process.execPath, [entry, ...args], { cwd: ROOT }, (error, stdout, stderr) =>
        resume(
          error
            ? Effect.fail(new Error(`${args.join(" ")}: ${stderr || error.message}`))
            : Effect.succeed(JSON.parse(stdout)),
        ),
      )
    }),
  )

/**
 * Two writers (P and Q) append `batches` batches of `size` events each to stream "shared" of the
 * store at `location` (a SQLite file, or a URL and a schema), released together by a go file;
 * then `open` reads the stream back: every event there once, in order, every batch whole.
 */
export const raceTwoWriters = <E>(opts: {
  readonly location: ReadonlyArray<string>
  readonly go: string
  readonly batches: number
  readonly size: number
  readonly open: Effect.Effect<EventStoreShape, E, Scope.Scope>
}) =>
  Effect.gen(function* () {
    const { batches, size } = opts
    const writer = (name: string) =>
      storeWriter([...opts.location, name, opts.go, String(batches), String(size)])
    const writers = Effect.all([writer("P"), writer("Q")], { concurrency: "unbounded" })
    const [tallies] = yield* Effect.all([writers, Effect.sync(() => writeFileSync(opts.go, ""))], {
      concurrency: "unbounded",
    })
    expect(tallies.map((t) => t.writer)).toEqual(["P", "Q"])
    const events = yield* Effect.scoped(
      Effect.flatMap(opts.open, (store) => Stream.runCollect(store.read("shared"))),
    ).pipe(Effect.map(Chunk.toReadonlyArray))
    expect(events).toHaveLength(2 * batches * size)
    expect(events.every((e, i) => e.position === i)).toBe(true)
    // Every batch landed whole: each run of `size` events comes from one writer, in order.
    for (let start = 0; start < events.length; start += size) {
      const batch = events.slice(start, start + size)
      expect(new Set(batch.map((e) => e.type)).size).toBe(1)
      expect(batch.map((e) => (e.data as { i: number }).i)).toEqual([...Array(size).keys()])
    }
  })

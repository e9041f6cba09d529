/**
 * A writer process for the cross-process tests of the SQLite and PostgreSQL stores (not a test
 * itself): waits for the go file, then appends BATCHES batches of BATCH_SIZE events to one stream
 * of the store, re-reading the version and retrying whenever it loses a race. Prints its tallies
 * as JSON. STORE is a SQLite file, or a postgres:// URL and then SCHEMA follows it.
 *
 *   node --import tsx test/store/store-writer.ts STORE [SCHEMA] WRITER GO_FILE BATCHES BATCH_SIZE
 *
 * The tests run it bundled, through test/support/store-writer-process.ts.
 */
import * as fs from "node:fs"
import { Effect } from "effect"
import { makePostgresEventStore } from "../../core/store/postgres.ts"
import { makeSqliteEventStore } from "../../core/store/sqlite.ts"

const args = process.argv.slice(2)
const location = args.shift()
const schema = location?.startsWith("postgres://") ? args.shift() : undefined
const [writer, goFile, batches, batchSize] = args
if (location === undefined || writer === undefined || goFile === undefined) {
  process.stderr.write("usage: store-writer.ts STORE [SCHEMA] WRITER GO_FILE BATCHES BATCH_SIZE\n")
  process.exit(2)
}

const program = Effect.gen(function* () {
  const store = yield* schema !== undefined
    ? makePostgresEventStore(location, { schema })
    : makeSqliteEventStore(location)
  while (!fs.existsSync(goFile)) yield* Effect.sleep("5 millis")
  let conflicts = 0
  for (let b = 0; b < Number(batches); b++) {
    const events = Array.from({ length: Number(batchSize) }, (_, i) => ({
      type: writer,
      version: 1,
      data: { b, i },
    }))
    for (;;) {
      const version = yield* store.version("shared")
      // Widen the window between reading the version and appending, so the writers do collide.
      yield* Effect.sleep(`${b % 3} millis`)
      const result = yield* Effect.either(store.append("shared", events, version))
      if (result._tag === "Right") break
      if (result.left._tag !== "VersionConflict") return yield* result.left
      conflicts++
    }
  }
  return { writer, conflicts }
})

Effect.runPromise(Effect.scoped(program)).then(
  (tally) => process.stdout.write(`${JSON.stringify(tally)}\n`),
  (error: unknown) => {
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`)
    process.exit(1)
  },
)

/**
 * A writer process for the cross-process test in store-postgres.test.ts (not a test itself):
 * waits for the go file, then appends BATCHES batches of BATCH_SIZE events to one stream of the
 * store, re-reading the version and retrying whenever it loses a race. Prints its tallies as JSON.
 *
 *   node --import tsx test/store-postgres-writer.ts URL SCHEMA WRITER GO_FILE BATCHES BATCH_SIZE
 */
import * as fs from "node:fs"
import { Effect } from "effect"
import { makePostgresEventStore } from "../../core/store/postgres.ts"

const [url, schema, writer, goFile, batches, batchSize] = process.argv.slice(2)
if (url === undefined || schema === undefined || writer === undefined || goFile === undefined) {
  process.stderr.write("usage: store-postgres-writer.ts URL SCHEMA WRITER GO_FILE BATCHES BATCH_SIZE\n")
  process.exit(2)
}

const program = Effect.gen(function* () {
  const store = yield* makePostgresEventStore(url, { schema })
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

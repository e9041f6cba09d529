/**
 * vitest global setup: one throwaway PostgreSQL server for the whole run (test/support/postgres.ts),
 * its URL handed to the test files in INTERLEAVE_TEST_PG_URL, stopped and removed at teardown.
 * A URL already in INTERLEAVE_TEST_PG_URL is used as it is, and nothing is started. When no server
 * can be started, the PostgreSQL tests skip, after one loud warning here that says why; with
 * INTERLEAVE_REQUIRE_PG=1 (CI) the run fails instead. A start that hangs (PostgresHung: a slow one
 * is waited for) fails the run too: it says nothing about whether PostgreSQL is there.
 */
import {
  PG_REQUIRE_ENV,
  PG_SKIP_ENV,
  PG_URL_ENV,
  PostgresHung,
  PostgresUnavailable,
  startThrowawayPostgres,
  type ThrowawayPostgres,
} from "./postgres.ts"

const banner = (lines: ReadonlyArray<string>) => {
  const width = Math.max(...lines.map((l) => l.length))
  const rule = "!".repeat(width + 4)
  return [rule, ...lines.map((l) => `! ${l.padEnd(width)} !`), rule].join("\n")
}

export default async function setup(): Promise<(() => Promise<void>) | undefined> {
  if (process.env[PG_URL_ENV]) return undefined
  let server: ThrowawayPostgres
  try {
    server = await startThrowawayPostgres()
  } catch (cause) {
    const reason = cause instanceof Error ? cause.message : String(cause)
    if (cause instanceof PostgresHung) throw new Error(`the PostgreSQL test server hung: ${reason}`)
    if (process.env[PG_REQUIRE_ENV] === "1") {
      throw new Error(`cannot start the PostgreSQL test server and ${PG_REQUIRE_ENV}=1: ${reason}`)
    }
    process.env[PG_SKIP_ENV] = reason
    console.warn(
      `\n${banner([
        "PostgreSQL event store tests SKIPPED: no PostgreSQL server could be started.",
        `${cause instanceof PostgresUnavailable ? "Reason" : "Error"}: ${reason}`,
        `Set ${PG_URL_ENV}=postgres://... to use a server of your own,`,
        `or ${PG_REQUIRE_ENV}=1 to make this an error.`,
      ])}\n`,
    )
    return undefined
  }
  process.env[PG_URL_ENV] = server.url
  return async () => {
    delete process.env[PG_URL_ENV]
    await server.stop()
  }
}

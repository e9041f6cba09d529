/**
 * Reads a SQLite store file behind the binary's back (not a test itself): what a run running in
 * another process has committed so far, for tests that wait for it before killing or signalling.
 */
import Database from "better-sqlite3"

/** Events of `stream` (of `type`, when given) committed so far; 0 while the store or its tables do not exist yet. */
export const countEvents = (store: string, stream: string, type?: string): number => {
  try {
    const db = new Database(store, { readonly: true, fileMustExist: true })
    try {
      const row = (
        type === undefined
          ? db.prepare("SELECT count(*) AS n FROM events WHERE stream = ?").get(stream)
          : db.prepare("SELECT count(*) AS n FROM events WHERE stream = ? AND type = ?").get(stream, type)
      ) as { n: number }
      return row.n
    } finally {
      db.close()
    }
  } catch {
    return 0
  }
}

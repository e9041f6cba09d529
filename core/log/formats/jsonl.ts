/** interleave's own JSONL: one event envelope a line, `{ type, version, position, recordedAt, data }`. */
import type { StoredEvent } from "../../store/index.ts"
import { LogFileError, parseJsonLine } from "./lines.ts"
import { eventFromRecord, type OurLine } from "./mllog.ts"
import { nonFiniteLiteral, nonFiniteReason } from "./non-finite-literal.ts"

export const toJsonlLine = (e: StoredEvent): string =>
  JSON.stringify({
    type: e.type,
    version: e.version,
    position: e.position,
    recordedAt: e.recordedAt,
    data: e.data,
  })

/** One JSONL line: its event, or undefined for a blank line. */
export const parseJsonlLine = (
  text: string,
  file: string,
  line: number,
): OurLine | LogFileError | undefined => {
  const trimmed = text.trim()
  if (trimmed === "") return undefined
  const p = parseJsonLine(trimmed, file, line)
  if (p instanceof LogFileError) return p
  // Our writer never writes NaN / Infinity: one here is named, not read as null.
  const bad = nonFiniteLiteral(trimmed)
  if (bad !== undefined)
    return new LogFileError({
      file,
      line,
      field: bad.path,
      reason: nonFiniteReason(bad.literal, (p.value as { type?: unknown } | null)?.type),
    })
  return eventFromRecord(p.value, file, line)
}

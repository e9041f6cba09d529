/**
 * Log files: the formats live in ./formats/ (one module each: our JSONL, MLLOG ours and MLPerf's,
 * mmengine, detectron2, sniffing). This module keeps the line-level API the file reader and the
 * importer use for interleave's own logs (JSONL, and MLLOG lines carrying `metadata.interleave`).
 */
import { Either } from "effect"
import type { EventEnvelope, StoredEvent } from "../store/index.ts"
import type { RunEvent } from "./events.ts"
import {
  LogFileError,
  makeMllogExporter,
  mllogJson,
  parseJsonlLine,
  parseOurMllogLine,
} from "./formats/index.ts"

export * from "./formats/index.ts"

/** interleave's own log formats (what `export` writes and `fileEvents` reads). */
export type LogFormat = "jsonl" | "mllog"

/**
 * The MLLOG lines of one event on its own, without the state a whole run's export keeps (the
 * block_stop of a phase, samples_count): `makeMllogExporter` writes a run. Lossless either way.
 */
export const toMllogLines = (e: StoredEvent): string[] => [...makeMllogExporter().push(e)]

/** Our format of a log from its name and first line (mlcommons' rule: ":::MLLOG " anywhere in the line). */
export const sniffFormat = (file: string, firstLine: string): LogFormat =>
  file.endsWith(".mllog") || mllogJson(firstLine) !== undefined ? "mllog" : "jsonl"

export interface ParsedLine {
  readonly envelope: EventEnvelope
  readonly position: number | undefined
  readonly recordedAt: number | undefined
  readonly event: RunEvent
}

/**
 * Parses one line of our log. Returns undefined for lines that carry no event: blank lines, and
 * MLLOG lines without our envelope (derived lines such as block_stop, other tools' lines, shell
 * output: mlcommons' parser skips lines without ":::MLLOG " too).
 */
export const parseLogLine = (
  text: string,
  format: LogFormat,
  file: string,
  line: number,
): Either.Either<ParsedLine | undefined, LogFileError> => {
  const r = format === "jsonl" ? parseJsonlLine(text, file, line) : parseOurMllogLine(text, file, line)
  return r instanceof LogFileError ? Either.left(r) : Either.right(r)
}

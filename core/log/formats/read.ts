/**
 * Opening a log file of any known format: interleave's own (JSONL, MLLOG with envelopes) as the
 * recorded events it holds, anyone else's (MLPerf MLLOG, mmengine, detectron2) as an observed run.
 * Without a format the file's first bytes decide; with one that does not fit, the error says what
 * the file looks like and which `--format` reads it.
 */
import { existsSync } from "node:fs"
import { Effect, Stream } from "effect"
import { checkReadableFile, InputError, jsonDepthOffset, tooDeepReason } from "../../common/index.ts"
import type { EventEnvelope } from "../../store/index.ts"
import type { RunEvent, RunStarted } from "../events.ts"
import type { ObservedFormat } from "../observed-events.ts"
import { detectron2Reader } from "./detectron2.ts"
import { parseJsonlLine } from "./jsonl.ts"
import { fileHead, fileLines, LogFileError, toInputError } from "./lines.ts"
import { mlperfReader, type OurLine, parseOurMllogLine } from "./mllog.ts"
import { mmengineReader } from "./mmengine.ts"
import { readObserved } from "./observed-reader.ts"
import { FORMAT_WORDS, type LogFormatChoice, type ReadFormat, type Sniffed, sniffText } from "./sniff.ts"

/** interleave's own log formats: what `export` writes, read back as recorded runs. */
export type LogFormat = "jsonl" | "mllog"

export interface RecordedLog {
  readonly kind: "recorded"
  readonly format: LogFormat
  /** The file's events with their envelopes, position and time as written (reads the file again each run). */
  readonly lines: Stream.Stream<OurLine, InputError>
}

export interface ObservedLogFile {
  readonly kind: "observed"
  readonly format: ObservedFormat
  readonly started: RunStarted
  /** RunStarted, the log's events, its terminal event when it states one (reads the file again each run). */
  readonly events: Stream.Stream<RunEvent, InputError>
}

export type LogFile = RecordedLog | ObservedLogFile

export interface OpenOptions {
  /** Default "auto": the file's first bytes decide. */
  readonly format?: LogFormatChoice | undefined
  /** For detectron2 files that hold several runs appended: which one (1-based). */
  readonly segment?: number | undefined
  /** For mmengine's scalars.json: LogProcessor's window_size, which the file does not record. */
  readonly window?: number | undefined
}

/** Known log file extensions: an argument ending so is a file, never a run id. */
const LOG_EXTENSIONS = /\.(jsonl|mllog|json|log|txt)$/i

/**
 * Whether a `--log` argument names a file rather than a run in the store: it exists, or it looks
 * like a path (a '/' or '\\', or a log file's extension).
 */
export const isLogFileArgument = (arg: string): boolean =>
  existsSync(arg) || arg.includes("/") || arg.includes("\\") || LOG_EXTENSIONS.test(arg)

export const sniffFile = (file: string): Effect.Effect<Sniffed, InputError> =>
  Effect.map(fileHead(file), (head) => sniffText(file, head, Buffer.byteLength(head) < 64 * 1024))

const mismatch = (file: string, format: ReadFormat, s: Sniffed): InputError =>
  new InputError({
    message:
      s.readWith === undefined
        ? `${file}: looks like ${s.description}; it is not ${FORMAT_WORDS[format]} (--format ${format})`
        : `${file}: looks like ${s.description}, not ${FORMAT_WORDS[format]}; read it with --format ${s.readWith} (or without --format)`,
  })

const fits = (format: ReadFormat, s: Sniffed): boolean =>
  s.readWith === format || s.kind === "unknown" || s.kind === "empty"

const recorded = (
  file: string,
  format: LogFormat,
  parse: (text: string, file: string, line: number) => OurLine | LogFileError | undefined,
): RecordedLog => ({
  kind: "recorded",
  format,
  lines: fileLines(file).pipe(
    Stream.mapEffect((l) => {
      // Refused before it is parsed, with the column in the whole line (an MLLOG line's JSON
      // starts after its prefix): deeper JSON overflows every recursive walk over it.
      const deep = jsonDepthOffset(l.text)
      if (deep !== undefined)
        return Effect.fail(
          toInputError(
            new LogFileError({ file, line: l.line, reason: tooDeepReason(`at column ${deep + 1}`) }),
          ),
        )
      const r = parse(l.text, file, l.line)
      return r instanceof LogFileError ? Effect.fail(toInputError(r)) : Effect.succeed(r)
    }),
    Stream.filter((x): x is OurLine => x !== undefined),
  ),
})

/**
 * Our own log of a run we observed (exported from the store): its events as they are, read as an
 * observed run. Any other log of ours stays a recorded one.
 */
const ours = (log: RecordedLog): Effect.Effect<LogFile, InputError> =>
  Effect.map(Stream.runHead(log.lines), (first) => {
    const e = first._tag === "Some" ? first.value.event : undefined
    if (e?._tag !== "RunStarted" || e.observed === undefined) return log
    return {
      kind: "observed",
      format: e.observed.format,
      started: e,
      events: Stream.map(log.lines, (l) => l.event),
    } satisfies ObservedLogFile
  })

/** Opens `file` as the log it is (or as `options.format` says it is). */
export const openLog = (file: string, options: OpenOptions = {}): Effect.Effect<LogFile, InputError> =>
  Effect.gen(function* () {
    yield* checkReadableFile(file, "log file")
    const s = yield* sniffFile(file)
    const asked = options.format === undefined || options.format === "auto" ? undefined : options.format
    if (asked !== undefined && !fits(asked, s)) return yield* Effect.fail(mismatch(file, asked, s))
    const format = asked ?? s.readWith
    if (format === undefined)
      return yield* Effect.fail(
        new InputError({
          message: `${file}: ${s.kind === "empty" ? "is empty" : `looks like ${s.description}`}; logs this tool reads: interleave's JSONL or MLLOG, MLPerf MLLOG, mmengine scalars.json / log.json, detectron2 metrics.json`,
        }),
      )
    if (options.segment !== undefined && format !== "detectron2")
      return yield* Effect.fail(
        new InputError({
          message: `--segment: only detectron2 metrics.json files hold several runs; ${file} is read as ${FORMAT_WORDS[format]}`,
        }),
      )
    if (options.window !== undefined && format !== "mmengine")
      return yield* Effect.fail(
        new InputError({
          message: `--window: only mmengine's scalars.json leaves its smoothing window unrecorded; ${file} is read as ${FORMAT_WORDS[format]}`,
        }),
      )
    switch (format) {
      case "jsonl":
        return yield* ours(recorded(file, "jsonl", parseJsonlLine))
      case "mllog":
        if (s.kind !== "mllog") return yield* ours(recorded(file, "mllog", parseOurMllogLine))
        return { kind: "observed", format: "mllog", ...(yield* readObserved(file, mlperfReader)) }
      case "mmengine": {
        const o = yield* readObserved(file, mmengineReader, { window: options.window })
        return { kind: "observed", format: o.started.observed?.format ?? "mmengine", ...o }
      }
      case "detectron2":
        return {
          kind: "observed",
          format: "detectron2",
          ...(yield* readObserved(file, detectron2Reader, { segment: options.segment })),
        }
    }
  })

/** A log file's events, whatever its kind (the envelope is rebuilt for observed events). */
export const logEvents = (log: LogFile): Stream.Stream<RunEvent, InputError> =>
  log.kind === "recorded" ? Stream.map(log.lines, (l) => l.event) : log.events

/** What to append to a store for a log file: every event's envelope. */
export const logEnvelopes = (
  log: LogFile,
  toEnvelope: (e: RunEvent) => EventEnvelope,
): Stream.Stream<
  { readonly event: RunEvent; readonly envelope: EventEnvelope; readonly position: number | undefined },
  InputError
> =>
  log.kind === "recorded"
    ? Stream.map(log.lines, (l) => ({ event: l.event, envelope: l.envelope, position: l.position }))
    : Stream.map(log.events, (event) => ({ event, envelope: toEnvelope(event), position: undefined }))

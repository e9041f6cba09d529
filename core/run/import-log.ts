/** Importing a log file as a run, and exporting a run as a log file. */
import { Effect, type Scope, Stream } from "effect"
import { InputError, type OutputError, type OutputFileOptions, openOutputFile } from "../common/index.ts"
import {
  fileEvents,
  type LogFormat,
  makeLogChecker,
  type RunStarted,
  stepEventStep,
  toEnvelope,
  toJsonlLine,
  toMllogLines,
} from "../log/index.ts"
import { EventStore } from "../store/index.ts"
import { summarizeLog } from "./read.ts"

/** Checks every line of `file` before anything is written, then appends it as run `runId`. */
export const importLog = (file: string, options: { readonly format?: LogFormat; readonly runId?: string }) =>
  Effect.gen(function* () {
    const log = makeLogChecker()
    let started: RunStarted | undefined
    let count = 0
    yield* fileEvents(file, options.format).pipe(
      Stream.runForEach((l) =>
        Effect.sync(() => {
          const e = l.event
          log.push({ position: l.position ?? count, type: e._tag, step: stepEventStep(e) })
          count++
          if (e._tag === "RunStarted" && !started) started = e
        }),
      ),
    )
    const problems = log.finish().violations
    if (count === 0) return yield* new InputError({ message: `${file}: no events` })
    if (!started || problems.length > 0)
      return yield* new InputError({
        message: `${file}: not a valid run log: ${problems[0]?.message ?? "no RunStarted event"}`,
      })
    const id = options.runId ?? started.runId
    const es = yield* EventStore
    if ((yield* es.version(id)) > 0)
      return yield* new InputError({
        message: `run "${id}" already exists in the store; import with --run-id NEW_ID`,
      })
    // The first batch creates the stream at version 0.
    let version = 0
    yield* fileEvents(file, options.format).pipe(
      Stream.map((l) => (l.event._tag === "RunStarted" ? toEnvelope({ ...l.event, runId: id }) : l.envelope)),
      Stream.grouped(4096),
      Stream.runForEach((chunk) =>
        Effect.map(es.append(id, Array.from(chunk), version), (v) => {
          version = v
        }),
      ),
    )
    return { runId: id, events: version }
  })

/** Writes run `runId` as JSONL or MLLOG lines to `write`, in batches. */
export const exportLog = <E>(
  runId: string,
  format: LogFormat,
  write: (text: string) => Effect.Effect<void, E>,
) =>
  Effect.gen(function* () {
    yield* summarizeLog(runId)
    const es = yield* EventStore
    yield* es.read(runId).pipe(
      Stream.grouped(1024),
      Stream.runForEach((chunk) => {
        let text = ""
        for (const e of chunk)
          text += format === "jsonl" ? `${toJsonlLine(e)}\n` : `${toMllogLines(e).join("\n")}\n`
        return write(text)
      }),
    )
  })

export interface LogWriter {
  readonly write: (text: string) => Effect.Effect<void, OutputError>
  /** Flushes, and publishes a file whole (see `openOutputFile`); a file never closed vanishes. */
  readonly close: Effect.Effect<void, OutputError>
}

/** Standard output, with backpressure. */
const stdoutWriter: LogWriter = {
  write: (text) =>
    Effect.async<void>((resume) => {
      if (process.stdout.write(text)) resume(Effect.void)
      else process.stdout.once("drain", () => resume(Effect.void))
    }),
  close: Effect.void,
}

/**
 * A writer to `file` (checked and written as `openOutputFile` does: never onto a protected file,
 * never over an existing one without `force`, published whole by `close`), or to stdout.
 */
export const streamWriter = (
  file: string | undefined,
  options: OutputFileOptions = {},
): Effect.Effect<LogWriter, OutputError, Scope.Scope> =>
  file === undefined
    ? Effect.succeed(stdoutWriter)
    : Effect.map(openOutputFile(file, options), (f) => ({ write: f.write, close: f.commit }))

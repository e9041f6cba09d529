/** Importing a log file as a run, and exporting a run as a log file. */
import { createWriteStream } from "node:fs"
import { Effect, Stream } from "effect"
import { errnoText, InputError, OutputError } from "../common/index.ts"
import {
  fileEvents,
  type LogFormat,
  makeLogChecker,
  makeMllogExporter,
  type RunStarted,
  stepEventStep,
  toEnvelope,
  toJsonlLine,
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
export const exportLog = (runId: string, format: LogFormat, write: (text: string) => Effect.Effect<void>) =>
  Effect.gen(function* () {
    yield* summarizeLog(runId)
    const es = yield* EventStore
    // MLLOG in MLPerf's shape keeps state across a run's events (phases' block_stop, samples_count).
    const mllog = makeMllogExporter()
    yield* es.read(runId).pipe(
      Stream.grouped(1024),
      Stream.runForEach((chunk) => {
        let text = ""
        for (const e of chunk)
          text += format === "jsonl" ? `${toJsonlLine(e)}\n` : `${mllog.push(e).join("\n")}\n`
        return write(text)
      }),
    )
  })

/** A writer to a file (or stdout), with backpressure; `close` flushes. */
export const streamWriter = (file: string | undefined) =>
  Effect.try({
    try: () => (file === undefined ? process.stdout : createWriteStream(file)),
    catch: (e) => new OutputError({ message: `${file}: cannot write (${errnoText(e)})` }),
  }).pipe(
    Effect.map((sink) => ({
      write: (text: string) =>
        Effect.async<void>((resume) => {
          if (sink.write(text)) resume(Effect.void)
          else sink.once("drain", () => resume(Effect.void))
        }),
      close: Effect.async<void>((resume) => {
        if (sink === process.stdout) resume(Effect.void)
        else (sink as ReturnType<typeof createWriteStream>).end(() => resume(Effect.void))
      }),
    })),
  )

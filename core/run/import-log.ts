/** Importing a log file as a run, and exporting a run as a log file. */
import { randomBytes } from "node:crypto"
import { hostname } from "node:os"
import { Clock, Effect, Either, Exit, type Scope, Stream } from "effect"
import { InputError, type OutputError, type OutputFileOptions, openOutputFile } from "../common/index.ts"
import {
  type LogFile,
  type LogFormat,
  type LogViolation,
  logEnvelopes,
  makeMllogExporter,
  type RecordedLog,
  toEnvelope,
  toJsonlLine,
} from "../log/index.ts"
import type { Violation } from "../schedule/index.ts"
import { EventStore, STAGING_PREFIX, StoreError } from "../store/index.ts"
import { summarizeLog } from "./read.ts"
import { checkRunId, quoteRunId, runIdProblem } from "./run-id.ts"
import { verifyRecordedLog } from "./verify-log.ts"

/**
 * An import writes its run under a staging stream, `.staging/<run>/<host>:<pid>:<random>`, which
 * no reader lists, and renames it to the run's id in one transaction once every event is in: a
 * reader sees the whole run or none of it. An import that dies before the rename (SIGKILL, power
 * cut) leaves its staging stream behind; the next import removes it.
 */
const stagingStreamOf = (runId: string): string =>
  `${STAGING_PREFIX}${runId}/${hostname()}:${process.pid}:${randomBytes(4).toString("hex")}`

/**
 * A staging stream of another machine is stale once it has not moved for this long (imports
 * append every few thousand events, so a live one moves every second or so).
 */
const STAGING_STALE_MS = 60 * 60 * 1000

const processAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM"
  }
}

/**
 * Removes the staging streams no import is writing any more: those of a process of this machine
 * that is gone, and those that have not moved for an hour. Returns how many it removed.
 */
export const removeStaleStaging = Effect.gen(function* () {
  const es = yield* EventStore
  const now = yield* Clock.currentTimeMillis
  const here = hostname()
  let removed = 0
  for (const s of yield* es.streams({ staging: true })) {
    const [host, pid] = s.stream.slice(s.stream.lastIndexOf("/") + 1).split(":")
    const gone = host === here && pid !== undefined && /^\d+$/.test(pid) && !processAlive(Number(pid))
    const idle = now - Math.max(s.lastRecordedAt, s.heartbeatAt ?? 0) > STAGING_STALE_MS
    if (gone || idle) removed += (yield* es.deleteStream(s.stream)) > 0 ? 1 : 0
  }
  return removed
})

const isLogViolation = (v: LogViolation | Violation): v is LogViolation => "position" in v

/** The violation to name: the earliest event-log one, else the earliest schedule one. */
const firstViolation = (
  log: ReadonlyArray<LogViolation>,
  schedule: ReadonlyArray<Violation>,
): LogViolation | Violation | undefined =>
  [...log].sort((a, b) => a.position - b.position)[0] ?? [...schedule].sort((a, b) => a.step - b.step)[0]

/** A log file that passed every check of `checkLog`, ready to be written. */
export interface CheckedLog {
  readonly file: string
  /** The log as `openLog` opened it: ours (its lines), or a foreign one read as an observed run. */
  readonly log: LogFile
  /** The run id the log records (not checked yet: `importRunId` does). */
  readonly runId: string
  /** Where the log gives its run id, for messages (`run.jsonl:1: field "data.runId" of RunStarted`). */
  readonly runIdAt: string
  readonly events: number
}

/**
 * The id a checked log is stored under: `--run-id` when given, else the log's own. A log file is
 * untrusted input, and a run id names a stream, a checkpoint folder and report files: both go
 * through `checkRunId`, as `run --run-id` does. A log whose own id fails is refused (naming the
 * file, its line and the field), never renamed behind the user's back: `--run-id` names it.
 */
export const importRunId = (
  log: CheckedLog,
  runId: string | undefined,
): Effect.Effect<string, InputError> => {
  if (runId !== undefined)
    return Either.match(checkRunId(runId, "--run-id"), {
      onLeft: (message) => Effect.fail(new InputError({ message })),
      onRight: Effect.succeed,
    })
  const problem = runIdProblem(log.runId)
  return problem === undefined
    ? Effect.succeed(log.runId)
    : Effect.fail(
        new InputError({
          message: `${log.runIdAt}: run id ${quoteRunId(log.runId)} ${problem}; nothing was imported (import it under another id with --run-id ID)`,
        }),
      )
}

/**
 * Checks `file` as `verify --log` does, through the same reader (`verifyRecordedLog`: every line
 * decoded, the event-log rules on the positions the file records, the schedule rules of the
 * recorded spec), without a store. Fails with the first violation named. A log that records no
 * step passes: it is a record of a run that did nothing (`verify` says "nothing recorded").
 */
export const checkLog = (file: string, log: RecordedLog): Effect.Effect<CheckedLog, InputError> =>
  Effect.gen(function* () {
    let startedLine: number | undefined
    const lines = Stream.tap(log.lines, (l) =>
      Effect.sync(() => {
        if (startedLine === undefined && l.event._tag === "RunStarted") startedLine = l.line
      }),
    )
    const report = yield* verifyRecordedLog(file, { ...log, lines }, undefined).pipe(
      // Every failure here is the file's (a recorded spec that does not decode, a line): say which.
      Effect.mapError((e) =>
        e.message.startsWith(file)
          ? new InputError({ message: e.message })
          : new InputError({ message: `${file}: ${e.message}` }),
      ),
    )
    if (report.events === 0) return yield* new InputError({ message: `${file}: no events` })
    const first = firstViolation(
      report.violations.filter(isLogViolation),
      report.violations.filter((v): v is Violation => !isLogViolation(v)),
    )
    if (first !== undefined)
      return yield* new InputError({
        message: `${file}: not a valid run log: ${first.message} (rule ${first.rule}); nothing was imported`,
      })
    return {
      file,
      log,
      runId: report.runId,
      runIdAt: `${file}:${startedLine ?? 1}: field "data.runId" of RunStarted`,
      events: report.events,
    }
  })

/**
 * Writes a checked log as run `runId` (default: the log's; either checked by `importRunId`) under
 * a staging stream and publishes it with one rename. A failure or interruption part-way removes
 * what was staged.
 */
export const writeLog = (log: CheckedLog, options: { readonly runId?: string | undefined } = {}) =>
  Effect.gen(function* () {
    const id = yield* importRunId(log, options.runId)
    const es = yield* EventStore
    const exists = `run "${id}" already exists in the store; import with --run-id NEW_ID`
    if ((yield* es.version(id)) > 0) return yield* new InputError({ message: exists })
    yield* removeStaleStaging
    const staging = stagingStreamOf(id)
    let version = 0
    // The run is stored under `id`: its RunStarted says so.
    const envelopes = logEnvelopes(log.log, toEnvelope).pipe(
      Stream.map(({ event, envelope }) =>
        event._tag === "RunStarted" ? toEnvelope({ ...event, runId: id }) : envelope,
      ),
    )
    yield* envelopes.pipe(
      Stream.grouped(4096),
      Stream.runForEach((chunk) =>
        Effect.map(es.append(staging, Array.from(chunk), version), (v) => {
          version = v
        }),
      ),
      Effect.zipRight(
        es
          .renameStream(staging, id)
          .pipe(Effect.catchTag("StreamExists", () => new InputError({ message: exists }))),
      ),
      // The staging stream is no name for the user: the run it becomes is.
      Effect.mapError((e) =>
        e._tag === "StoreError"
          ? new StoreError({ ...e, message: e.message.replaceAll(`stream ${staging}`, `run ${id}`) })
          : e,
      ),
      // Whatever was staged and not published goes (a SIGKILL leaves it to removeStaleStaging).
      Effect.onExit((exit) => (Exit.isSuccess(exit) ? Effect.void : Effect.ignore(es.deleteStream(staging)))),
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
    // MLLOG in MLPerf's shape keeps state across a run's events (phases' block_stop, samples_count).
    const mllog = makeMllogExporter()
    yield* es.read(runId).pipe(
      Stream.grouped(1024),
      Stream.runForEach((chunk) => {
        let text = ""
        for (const e of chunk)
          if (format === "jsonl") text += `${toJsonlLine(e)}\n`
          // An event may write no line (an observed MLPerf run's RunStarted: its lines are the source's).
          else for (const l of mllog.push(e)) text += `${l}\n`
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

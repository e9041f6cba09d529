/**
 * Importing a foreign log (MLPerf MLLOG, mmengine, detectron2) as an observed run: as strict as
 * `verify --log` on the same file (what does not verify is not imported), checked whole before
 * the store is touched, then appended in batches.
 */
import { Effect, Stream } from "effect"
import { InputError } from "../common/index.ts"
import { type ObservedFormat, type ObservedLogFile, toEnvelope } from "../log/index.ts"
import { EventStore } from "../store/index.ts"
import { verifyObservedLog } from "./observed.ts"
import { runIdProblem } from "./run-id.ts"

/** A foreign log that passed every check, ready to be written. */
export interface CheckedObservedLog {
  readonly file: string
  readonly format: ObservedFormat
  readonly runId: string
  readonly events: number
  readonly log: ObservedLogFile
}

/** Verifies an opened foreign log (`openLog`) whole; fails with the first violation named. */
export const checkObservedLog = (file: string, log: ObservedLogFile) =>
  Effect.gen(function* () {
    let events = 0
    const report = yield* verifyObservedLog(
      file,
      log.events.pipe(Stream.tap(() => Effect.sync(() => events++))),
      undefined,
    )
    const first = report.violations[0]
    if (!report.ok && first)
      return yield* new InputError({
        message: `${file}: not a valid ${log.started.observed?.source ?? "log"}: ${first.message} (rule ${first.rule}); nothing was imported (\`interleave verify --log ${file}\` shows every check)`,
      })
    const checked: CheckedObservedLog = { file, format: log.format, runId: log.started.runId, events, log }
    return checked
  })

/** Appends a checked observed log as run `runId` (default: the one its file gives). */
export const writeObservedLog = (
  checked: CheckedObservedLog,
  options: { readonly runId?: string | undefined } = {},
) =>
  Effect.gen(function* () {
    const id = options.runId ?? checked.runId
    const bad = runIdProblem(id)
    if (bad !== undefined) return yield* new InputError({ message: `--run-id: "${id.slice(0, 80)}" ${bad}` })
    const es = yield* EventStore
    if ((yield* es.version(id)) > 0)
      return yield* new InputError({
        message: `run "${id}" already exists in the store; import with --run-id NEW_ID`,
      })
    let version = 0
    yield* checked.log.events.pipe(
      Stream.map((e) => toEnvelope(e._tag === "RunStarted" ? { ...e, runId: id } : e)),
      Stream.grouped(4096),
      Stream.runForEach((chunk) =>
        Effect.map(es.append(id, Array.from(chunk), version), (v) => {
          version = v
        }),
      ),
    )
    return { runId: id, events: version, format: checked.format }
  })

/**
 * Importing a foreign log (MLPerf MLLOG, mmengine, detectron2) as an observed run: as strict as
 * `verify --log` on the same file (what does not verify is not imported), checked whole before
 * the store is opened; `writeLog` then writes it as it writes any checked log (staged, published
 * with one rename).
 */
import { Effect, Stream } from "effect"
import { InputError } from "../common/index.ts"
import type { ObservedLogFile } from "../log/index.ts"
import type { CheckedLog } from "./import-log.ts"
import { verifyObservedLog } from "./observed.ts"

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
    const checked: CheckedLog = {
      file,
      log,
      runId: log.started.runId,
      runIdAt: `${file}: the run id of its RunStarted`,
      events,
    }
    return checked
  })

/**
 * One report for a sweep that workers ran on several machines (`interleave bench report SWEEP
 * --store ...`): the finishing attempt of every configuration, read back from its recorded run in
 * the shared store, with the machine and attempt it ran on; the attempts that did not finish
 * (lost with their worker, failed, released) are told in the notes, their runs kept and named.
 * results.json, report.md and report.html as a local sweep writes them.
 */
import { join } from "node:path"
import { Clock, Data, Effect, Either } from "effect"
import { formatNumber, writeJsonFile } from "../common/index.ts"
import {
  type AttemptRecord,
  type ConfigRow,
  SweepQueue,
  type SweepStatus,
  stateCounts,
} from "../queue/index.ts"
import { summarizeLog } from "../run/index.ts"
import { writeReport } from "./report/write.ts"
import {
  type ConfigResult,
  currentMachine,
  encodeSweepResults,
  RESULTS_SCHEMA_VERSION,
  type SweepResults,
  type WorkerMachine,
} from "./results.ts"
import { sweepIdentity } from "./sweep-key.ts"
import { benchNotes, type LoadedSweep, recordedConfigResult } from "./sweep-run.ts"
import { countsText } from "./sweep-worker.ts"

/** The store holds no sweep for this file (never enqueued, or the file changed since). */
export class SweepNotFound extends Data.TaggedError("SweepNotFound")<{ readonly message: string }> {}

export interface StoreReport {
  readonly results: SweepResults
  readonly status: SweepStatus
  /** Lines about the attempts that did not finish, and what is missing: also in the report's notes. */
  readonly attemptNotes: ReadonlyArray<string>
  /** Configurations with no finishing attempt (pending, running or failed). */
  readonly missing: ReadonlyArray<ConfigRow>
  readonly files: { readonly results: string; readonly markdown: string; readonly html: string }
}

const workerOf = (a: AttemptRecord): WorkerMachine => ({
  host: a.worker.host,
  pid: a.worker.pid,
  cpu: a.worker.cpu,
  cores: a.worker.cores,
  platform: a.worker.platform,
  node: a.worker.node,
  ...(a.device !== undefined ? { device: a.device } : {}),
  attempt: a.attempt,
})

const where = (a: AttemptRecord) => `${a.worker.host} (pid ${a.worker.pid})`

/** What happened to an attempt that did not finish its configuration, in one sentence. */
const attemptLine = (
  a: AttemptRecord,
  finisher: AttemptRecord | undefined,
  lastStep: number | undefined,
  planned: number | undefined,
  status: string | undefined,
): string => {
  const steps =
    lastStep !== undefined && planned !== undefined
      ? ` after ${formatNumber(lastStep + 1)} of ${formatNumber(planned)} steps`
      : ""
  const what =
    a.outcome === "lost"
      ? status === "interrupted"
        ? `interrupted${steps}: its worker lost its lease`
        : `lost: ${a.note ?? "its worker lost its lease"}`
      : a.outcome === "released"
        ? `released${steps} (${a.note ?? "stopped"}); its run is interrupted`
        : a.outcome === "running"
          ? `still running${steps}`
          : `failed${steps}: ${a.note ?? "no reason recorded"}`
  const then = finisher
    ? ` Attempt ${finisher.attempt} on ${where(finisher)} ${finisher.outcome} the configuration.`
    : ""
  return `Attempt ${a.attempt} of ${a.configId} (run ${a.runId}) on ${where(a)}: ${what}; the run is kept in the store (\`interleave show ${a.runId}\`).${then}`
}

/** Builds and writes the report of `loaded`'s sweep from the shared store into `outDir`. */
export const reportFromStore = (loaded: LoadedSweep, outDir: string) =>
  Effect.gen(function* () {
    const queue = yield* SweepQueue
    const identity = yield* sweepIdentity(loaded)
    const status = yield* queue.list(identity.key)
    if (!status) {
      const versions = yield* queue.sweeps(identity.name)
      return yield* new SweepNotFound({
        message:
          versions.length === 0
            ? `no sweep ${identity.name} in the store: run \`interleave bench ${loaded.file} --store URL --worker\` first`
            : `the store has no sweep ${identity.key} (this file's configurations); it has ${versions.map((v) => v.key).join(", ")}: ${loaded.file} changed since they were enqueued`,
      })
    }
    const results: ConfigResult[] = []
    const notes: string[] = []
    const missing: ConfigRow[] = []
    for (const row of status.configs) {
      const config = loaded.configs.find((c) => c.id === row.configId)
      const mine = status.attempts.filter((a) => a.configId === row.configId)
      const finisher =
        row.state === "completed" || row.state === "aborted"
          ? mine.find((a) => a.attempt === row.attempts)
          : undefined
      for (const a of mine) {
        if (a === finisher) continue
        const log = yield* Effect.either(summarizeLog(a.runId))
        const state = Either.isRight(log) ? log.right.state : undefined
        notes.push(attemptLine(a, finisher, state?.lastStep, state?.plannedSteps, state?.status))
      }
      if (!config || !finisher) {
        missing.push(row)
        continue
      }
      const { result } = yield* recordedConfigResult(config, finisher.runId, { worker: workerOf(finisher) })
      results.push(result)
    }
    if (missing.length > 0)
      notes.unshift(
        `Incomplete: ${missing.length} of ${status.configs.length} configurations have no finished attempt (${missing.map((m) => `${m.configId}: ${m.state}`).join(", ")}); ${countsText(stateCounts(status))}.`,
      )
    const hosts = [...new Set(results.map((r) => r.worker?.host ?? "?"))]
    const attemptNotes = [...notes]
    const now = yield* Clock.currentTimeMillis
    const sweepResults: SweepResults = {
      schemaVersion: RESULTS_SCHEMA_VERSION,
      name: loaded.sweep.name,
      machine: currentMachine(),
      createdAt: new Date(status.sweep.createdAt).toISOString(),
      configs: results,
    }
    const allNotes = [
      `Sweep ${identity.key} from the shared store, run by sweep workers on ${hosts.length} machine${hosts.length === 1 ? "" : "s"} (${hosts.join(", ")}); built ${new Date(now).toISOString()}. Each configuration's numbers come from the attempt that finished it; the Machine column names the worker, and "Machine" above is the one that built this report. Workers run no tinybench single steps.`,
      ...attemptNotes,
      ...benchNotes(loaded.sweep, results, []),
    ]
    const resultsPath = join(outDir, "results.json")
    yield* writeJsonFile(resultsPath, encodeSweepResults(sweepResults))
    const report = yield* writeReport(outDir, sweepResults, allNotes)
    return {
      results: sweepResults,
      status,
      attemptNotes,
      missing,
      files: { results: resultsPath, markdown: report.markdownPath, html: report.htmlPath },
    } satisfies StoreReport
  })

/**
 * Sweeps over many machines: `interleave bench SWEEP --store postgres://... --worker` (a worker)
 * and `interleave bench report SWEEP --store postgres://...` (one report from every worker's
 * runs). The work is core/bench's (sweep-worker.ts, sweep-report.ts); this file prints it.
 */
import { join } from "node:path"
import { Effect, Option } from "effect"
import { AdapterRegistryLive } from "../../adapters/index.ts"
import {
  countsText,
  findingLines,
  loadSweep,
  reportFromStore,
  runWorker,
  type SweepResults,
  summaryTable,
} from "../../core/bench/index.ts"
import { formatNumber } from "../../core/common/index.ts"
import { type QueueError, stateCounts } from "../../core/queue/index.ts"
import { defineCommand } from "../command.ts"
import { badInput, failedCheck, unavailable } from "../failure.ts"
import { arg, flag } from "../flags.ts"
import { jsonFlag, storeFlag } from "../options.ts"
import { json, line, note, table } from "../output.ts"
import { makeProgress } from "../progress.ts"
import { interruptReason } from "../signals.ts"
import { checkpointDirOf, storeName, withWorkStore } from "../store.ts"

/** Lease length unless --lease-seconds says otherwise. */
export const DEFAULT_LEASE_SECONDS = 30

/** The queue's failures as the CLI's: unavailable (exit 3) or bad input (exit 2). */
const queueFailure = (e: QueueError) =>
  e.kind === "unavailable" ? unavailable(e.message) : badInput(e.message)

export interface WorkerFlags {
  readonly sweep: string
  readonly store: string
  readonly leaseSeconds: number
  readonly wait: boolean
  readonly json: boolean
  readonly allowAborts: boolean
}

/** `bench SWEEP --worker`: claims configurations until the sweep is done (or, with --wait, forever). */
export const benchWorker = (o: WorkerFlags) =>
  Effect.gen(function* () {
    if (!(o.leaseSeconds >= 1) || !Number.isFinite(o.leaseSeconds))
      return yield* badInput(`--lease-seconds: must be a number >= 1, got ${o.leaseSeconds}`)
    const loaded = yield* loadSweep(o.sweep)
    const total = loaded.sweep.warmupSteps + loaded.sweep.measuredSteps
    const store = storeName(o.store)
    const summary = yield* withWorkStore(
      o.store,
      runWorker(loaded, {
        leaseMs: o.leaseSeconds * 1000,
        wait: o.wait,
        reload: () => loadSweep(o.sweep),
        checkpointDir: checkpointDirOf(o.store),
        interruptReason,
        hooks: {
          onSweep: ({ created, sweep, others }) =>
            Effect.gen(function* () {
              yield* note(
                created
                  ? `bench: worker: enqueued sweep ${sweep.key} (${sweep.configCount} configurations) in ${store}`
                  : `bench: worker: joined sweep ${sweep.key} (${sweep.configCount} configurations) in ${store}`,
              )
              for (const other of others.filter((x) => x.counts.pending + x.counts.running > 0))
                yield* note(
                  `bench: note: ${o.sweep} is not the file sweep ${other.sweep.key} was enqueued from (${countsText(other.counts)}): its configurations changed, so this is a new sweep, ${sweep.key}; the other one is left as it is`,
                )
            }),
          onClaim: (claim, config) => {
            if (claim.previous)
              process.stderr.write(
                `bench: ${claim.configId}: attempt ${claim.attempt} takes over from attempt ${claim.previous.attempt} on ${claim.previous.worker.host} (pid ${claim.previous.worker.pid}): ${claim.previous.note ?? "its lease expired"}\n`,
              )
            return makeProgress({ label: `${config.id} (attempt ${claim.attempt})`, total })
          },
          onConfigDone: ({ claim, result, summary, counted }) =>
            note(
              `bench: ${claim.configId} attempt ${claim.attempt} (run ${claim.runId}): ${
                result.aborted
                  ? `aborted: ${result.aborted}`
                  : `${summary.status}, ${formatNumber(result.throughput.stepsPerSec)} steps/s, ${formatNumber(result.throughput.samplesPerSec)} samples/s (${result.adapter === "sim" ? "simulated" : "measured"})`
              }${counted ? "" : "; not counted: another attempt had taken the configuration over"}`,
            ),
          onAttemptEnded: ({ claim, outcome, retry, note: why }) =>
            note(
              `bench: ${claim.configId} attempt ${claim.attempt} (run ${claim.runId}) ${outcome}: ${why}${
                outcome === "failed" ? (retry ? "; another attempt may run it" : "; no attempts left") : ""
              }`,
            ),
          onWaiting: (status) => {
            const running = status.configs.filter((c) => c.state === "running")
            const where = running.map((c) => {
              const a = status.attempts.find((x) => x.configId === c.configId && x.attempt === c.attempts)
              return `${c.configId} on ${a?.worker.host ?? "?"}`
            })
            return note(
              `bench: worker: nothing left to claim; waiting for ${running.length} running elsewhere (${where.join(", ")}), to take over any whose worker stops renewing its lease`,
            )
          },
        },
      }),
    ).pipe(
      Effect.provide(AdapterRegistryLive),
      Effect.catchTag("QueueError", (e) => Effect.fail(queueFailure(e))),
    )
    const counts = stateCounts(summary.status)
    if (o.json)
      yield* json({
        worker: summary.worker,
        sweep: summary.identity.key,
        attempts: summary.attempts,
        configs: summary.status.configs,
        counts,
      })
    else {
      yield* line(
        `worker ${summary.worker.host} (pid ${summary.worker.pid}) ran ${summary.attempts.length} attempt${summary.attempts.length === 1 ? "" : "s"} of sweep ${summary.identity.key}`,
      )
      if (summary.attempts.length > 0)
        yield* line(
          table(
            ["config", "attempt", "run", "outcome"],
            summary.attempts.map((a) => [a.configId, String(a.attempt), a.runId, a.outcome]),
          ),
        )
      yield* line(`sweep ${summary.identity.key}: ${countsText(counts)}`)
      yield* line(`report: interleave bench report ${o.sweep} --store ${store}`)
    }
    const failures: string[] = []
    if (counts.failed > 0)
      failures.push(`${counts.failed} configurations failed for good (see \`interleave bench report\`)`)
    if (counts.aborted > 0 && !o.allowAborts)
      failures.push(
        `${counts.aborted} configurations aborted; pass --allow-aborts when a sweep probes memory limits`,
      )
    if (failures.length > 0) return yield* failedCheck(failures.join("; "))
  })

const reportText = (results: SweepResults): string => {
  const t = summaryTable(results)
  const body = [
    table(
      t.columns.map((c) => c.header),
      t.rows,
    ),
  ]
  const found = findingLines(results)
  if (found.length > 0) body.push("", ...found)
  return body.join("\n")
}

export const benchReportCommand = defineCommand({
  name: "report",
  summary:
    "One report (results.json, report.md, report.html) of a sweep that workers ran on many machines, from the finished attempts in the shared store.",
  details: [
    "Each configuration's numbers come from the attempt that finished it, with the machine it ran on (host, CPU, the adapter's device or hardware); the same ratio and batch size on different hardware and machines side by side; attempts that did not finish (a worker that died and lost its lease, a failure) in the notes, their runs kept in the store.",
    "Exits 1 when some configuration has no finished attempt (still pending or running, or failed); the report is written either way.",
  ],
  args: {
    sweep: arg.required("sweep", "the sweep file the workers ran (its configurations name the sweep)"),
  },
  flags: {
    store: storeFlag,
    out: flag.text("out", "Output directory.", { value: "DIR", default: "out/bench-NAME" }),
    json: jsonFlag,
  },
  examples: [
    "interleave bench report scenarios/sweeps/ratios-sim-h100.json --store postgres://bench@db:5432/interleave --out out/h100",
  ],
  run: (o) =>
    Effect.gen(function* () {
      const loaded = yield* loadSweep(o.sweep)
      const outDir = Option.getOrElse(o.out, () => join("out", `bench-${loaded.sweep.name}`))
      const out = yield* withWorkStore(o.store, reportFromStore(loaded, outDir)).pipe(
        Effect.catchTag("QueueError", (e) => Effect.fail(queueFailure(e))),
        Effect.catchTag("SweepNotFound", (e) => Effect.fail(badInput(e.message))),
      )
      if (o.json) yield* json({ ...out.results, attemptNotes: out.attemptNotes, files: out.files })
      else {
        yield* line(reportText(out.results))
        if (out.attemptNotes.length > 0)
          yield* line(["", ...out.attemptNotes.map((n) => `note: ${n}`)].join("\n"))
        yield* line(`\nwrote ${out.files.results}, ${out.files.markdown}, ${out.files.html}`)
      }
      if (out.missing.length > 0)
        return yield* failedCheck(
          `sweep ${out.status.sweep.key} is not complete: ${countsText(stateCounts(out.status))}; the report covers ${out.results.configs.length} of ${out.status.configs.length} configurations`,
        )
    }),
})

/**
 * `interleave study STUDY.json`: one scenario at several ratios (and lr factors, warm-up lengths,
 * seeds) for a fixed budget, with evaluations every K steps, on any adapter; every configuration a
 * recorded run; results.json, report.md and report.html (per-modality metric against steps and
 * time, the quality/cost trade-off with its Pareto set, the seed spread). With --worker, the
 * configurations go through the sweep queue of a PostgreSQL store like a sweep's;
 * --from-store reports what the workers finished. The work is core/study's.
 */
import { join } from "node:path"
import { Effect, Option } from "effect"
import { AdapterRegistryLive } from "../../adapters/index.ts"
import { countsText, runWorker } from "../../core/bench/index.ts"
import { ratioName } from "../../core/bench/sweep.ts"
import { type QueueError, stateCounts } from "../../core/queue/index.ts"
import { loadStudy, type RunResult, runStudy, settingsOf, studyFromStore } from "../../core/study/index.ts"
import { defineCommand } from "../command.ts"
import { badInput, failedCheck, unavailable } from "../failure.ts"
import { arg, flag, flagWithDefault } from "../flags.ts"
import { jsonFlag, storeFlag } from "../options.ts"
import { json, line, note, table } from "../output.ts"
import { makeProgress } from "../progress.ts"
import { interruptReason } from "../signals.ts"
import { checkpointDirOf, storeName, withStore, withWorkStore } from "../store.ts"

const queueFailure = (e: QueueError) =>
  e.kind === "unavailable" ? unavailable(e.message) : badInput(e.message)

const f3 = (x: number | undefined) => (x === undefined ? "—" : x.toFixed(3))

const summaryText = (runs: ReadonlyArray<RunResult>): string => {
  const settings = settingsOf(runs)
  const rows = settings.map((s) => [
    s.setting,
    ratioName(s.ratio),
    `${s.lrFactor.visual}/${s.lrFactor.text}`,
    String(s.warmup),
    String(s.runs.length),
    f3(s.finalVisual?.mean),
    f3(s.finalText?.mean),
    s.samplesPerSec === undefined ? "—" : s.samplesPerSec.mean.toFixed(1),
    s.memorySwingBytes === undefined ? "—" : (s.memorySwingBytes.mean / 2 ** 20).toFixed(1),
    s.pareto ? "yes" : "",
  ])
  const out = [
    table(
      [
        "setting",
        "ratio",
        "lr v/t",
        "warm-up",
        "seeds",
        "final visual",
        "final text",
        "samples/s",
        "swing MiB",
        "Pareto",
      ],
      rows,
    ),
  ]
  const metric = runs.find((r) => r.metric)?.metric
  if (runs.some((r) => r.simulated))
    out.push(
      `note: ${metric ?? "the metric"} is SYNTHETIC (the sim's quality model), and time and memory are simulated: not measurements`,
    )
  return out.join("\n")
}

export const studyCommand = defineCommand({
  name: "study",
  summary:
    "Run a scenario at several ratios (and lr factors, warm-up lengths, seeds) for a fixed budget with evaluations every K steps, on any adapter; report quality against steps and time and the quality/cost Pareto set.",
  args: { study: arg.required("study", "a study file (scenarios/studies/*.json)") },
  flags: {
    out: flag.text("out", "Output directory.", { value: "DIR", default: "out/study-NAME" }),
    store: storeFlag,
    json: jsonFlag,
    worker: flag.boolean(
      "worker",
      "Run the study's configurations with other workers through the sweep queue of a shared PostgreSQL --store (as `bench --worker` does); then report with --from-store. Not with a seconds budget.",
    ),
    fromStore: flag.boolean(
      "from-store",
      "Write the report from the runs that workers finished in --store (nothing is run); exit 1 while some configuration is unfinished.",
    ),
    leaseSeconds: flagWithDefault.number(
      "lease-seconds",
      "With --worker: how long a claim holds without renewal.",
      30,
      { value: "S" },
    ),
  },
  details: [
    "Each configuration is a recorded run (`interleave show RUN`, `diff`, `replay`); the report's Runs table names them.",
    "A sim study's evaluations come from the sim's synthetic quality model (`quality: synthetic-recall`), deterministic and SYNTHETIC: every output says so.",
    "Exits 1 when a run aborts or (with --from-store) some configuration is not finished; the report is written either way.",
  ],
  examples: [
    "interleave study scenarios/studies/ratios-sim.json",
    "interleave study scenarios/studies/ratios-pytorch-tiny.json --out out/study-pytorch",
    "interleave study scenarios/studies/ratios-sim.json --store postgres://bench@db:5432/interleave --worker",
    "interleave study scenarios/studies/ratios-sim.json --store postgres://bench@db:5432/interleave --from-store",
  ],
  run: (o) =>
    Effect.gen(function* () {
      const loaded = yield* loadStudy(o.study)
      const outDir = Option.getOrElse(o.out, () => join("out", `study-${loaded.study.file.name}`))
      if (o.worker && o.fromStore)
        return yield* badInput("study: --worker and --from-store exclude each other")
      if (o.worker) {
        if (loaded.study.file.budget.seconds !== undefined)
          return yield* badInput(
            "study --worker: a seconds budget runs only locally (workers run configurations as sweep configurations, by steps); use a steps or samples budget",
          )
        if (Option.isSome(o.out))
          return yield* badInput("--out: does not apply to --worker (report with --from-store)")
        const summary = yield* withWorkStore(
          o.store,
          runWorker(loaded.sweep, {
            leaseMs: o.leaseSeconds * 1000,
            checkpointDir: checkpointDirOf(o.store),
            interruptReason,
            hooks: {
              onClaim: (claim, config) =>
                makeProgress({
                  label: `${config.label} (attempt ${claim.attempt})`,
                  total: config.measuredSteps,
                }),
              onConfigDone: ({ claim, summary: s }) =>
                note(`study: ${claim.configId} attempt ${claim.attempt} (run ${claim.runId}): ${s.status}`),
            },
          }),
        ).pipe(
          Effect.provide(AdapterRegistryLive),
          Effect.catchTag("QueueError", (e) => Effect.fail(queueFailure(e))),
        )
        const counts = stateCounts(summary.status)
        if (o.json) yield* json({ study: summary.identity.key, attempts: summary.attempts, counts })
        else {
          yield* line(`study ${summary.identity.key}: ${countsText(counts)}`)
          yield* line(`report: interleave study ${o.study} --store ${storeName(o.store)} --from-store`)
        }
        if (counts.failed > 0) return yield* failedCheck(`${counts.failed} configurations failed for good`)
        return
      }
      if (o.fromStore) {
        const out = yield* withWorkStore(o.store, studyFromStore(loaded, outDir)).pipe(
          Effect.catchTag("QueueError", (e) => Effect.fail(queueFailure(e))),
        )
        if (o.json) yield* json({ runs: out.runs, files: out.files, missing: out.missing })
        else {
          yield* line(summaryText(out.runs))
          yield* line(`\nwrote ${out.files.results}, ${out.files.markdown}, ${out.files.html}`)
        }
        if (out.missing.length > 0)
          return yield* failedCheck(`study ${out.key} is not complete: ${out.missing.join(", ")}`)
        return
      }
      const n = loaded.configs.length
      const out = yield* withStore(
        o.store,
        runStudy(loaded, {
          outDir,
          checkpointDir: checkpointDirOf(o.store),
          hooks: {
            onConfigStart: (i, count, config) =>
              makeProgress({ label: `[${i + 1}/${count}] ${config.label}`, total: config.steps }),
            onConfigDone: (i, count, r) =>
              note(
                `study: [${i + 1}/${count}] ${r.label}: ${r.status}${r.stopped ? ` (${r.stopped})` : ""}, ${r.steps} steps, final ${r.metric ?? "metric"} visual ${f3(r.final?.visual)} text ${f3(r.final?.text)}; run ${r.runId}`,
              ),
          },
        }),
      ).pipe(Effect.provide(AdapterRegistryLive))
      if (o.json) yield* json({ runs: out.runs, files: out.files })
      else {
        yield* line(summaryText(out.runs))
        yield* line(`\nwrote ${out.files.results}, ${out.files.markdown}, ${out.files.html}`)
      }
      const aborted = out.runs.filter((r) => r.status === "aborted")
      if (aborted.length > 0)
        return yield* failedCheck(
          `${aborted.length} of ${n} runs aborted (${aborted.map((r) => r.label).join(", ")})`,
        )
    }),
})

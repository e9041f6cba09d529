/**
 * `interleave bench`: a sweep of ratios x batch sizes x targets, each configuration a recorded
 * run; results.json, report.md, report.html and micro.json; a comparison with a baseline; or,
 * with --sim-of, the sim fitted to a measured sweep.
 */
import { join } from "node:path"
import * as Command from "@effect/cli/Command"
import { Effect, Either, Option } from "effect"
import { AdapterRegistryLive } from "../../adapters/index.ts"
import {
  abortedLines,
  COMPARISON_HEADERS,
  type Comparison,
  compareResults,
  comparisonRows,
  comparisonVerdict,
  DEFAULT_THRESHOLD_PCT,
  encodeSweepResults,
  etaMs,
  findingLines,
  loadSweep,
  METRIC_NAMES,
  NOISY_MARK,
  noiseWarnings,
  parseSweepResults,
  regressionSummary,
  runSweep,
  type SweepResults,
  sparklines,
  summaryTable,
} from "../../core/bench/index.ts"
import {
  formatDuration,
  formatNumber,
  InputError,
  RESULTS_MAX_BYTES,
  readTextFile,
  writeJsonFile,
} from "../../core/common/index.ts"
import { type CliCommand, defineCommand } from "../command.ts"
import { badInput, failedCheck } from "../failure.ts"
import { arg, flag, flagWithDefault } from "../flags.ts"
import { jsonFlag, storeFlag } from "../options.ts"
import { json, line, note, table } from "../output.ts"
import { makeProgress } from "../progress.ts"
import { checkpointDirOf, withStore } from "../store.ts"
import { benchReportCommand, benchWorker, DEFAULT_LEASE_SECONDS } from "./bench-workers.ts"
import { simFit } from "./sim-fit.ts"

export const loadResults = (file: string, what: string) =>
  Effect.flatMap(readTextFile(file, what, RESULTS_MAX_BYTES), (text) =>
    Either.match(parseSweepResults(text, file), {
      onLeft: (e) => Effect.fail(new InputError({ message: e.message })),
      onRight: (r) => Effect.succeed(r),
    }),
  )

/** The summary table, then a line per aborted configuration, noisy number and cross-ratio note. */
const summaryText = (results: SweepResults): string => {
  const t = summaryTable(results)
  const lines = [
    table(
      t.columns.map((c) => c.header),
      t.rows,
    ),
  ]
  if (noiseWarnings(results).length > 0)
    lines.push(
      `${NOISY_MARK} after a mean: a noisy number (few steps, wide rme or outliers); see the warnings below`,
    )
  const found = findingLines(results)
  if (found.length > 0) lines.push("", ...found)
  return lines.join("\n")
}

const comparisonText = (c: Comparison, baselineFile: string, currentName: string): string => {
  const lines = [
    `comparison of ${currentName} with ${baselineFile} (fail over ${c.thresholdPct}% on ${c.gated.join(", ")}; other metrics are shown, not gated):`,
  ]
  if (c.machineNote) lines.push(`note: ${c.machineNote}`)
  for (const n of c.figureNotes) lines.push(`note: ${n}`)
  lines.push(table(COMPARISON_HEADERS, comparisonRows(c)))
  lines.push(...abortedLines(c))
  if (c.missingInCurrent.length > 0) lines.push(`only in the baseline: ${c.missingInCurrent.join(", ")}`)
  if (c.missingInBaseline.length > 0) lines.push(`not in the baseline: ${c.missingInBaseline.join(", ")}`)
  lines.push(comparisonVerdict(c))
  return lines.join("\n")
}

const splitList = (s: string) =>
  s
    .split(",")
    .map((x) => x.trim())
    .filter((x) => x.length > 0)

const benchRun = defineCommand({
  name: "bench",
  summary:
    "Run a sweep of ratios x batch sizes x targets as recorded runs; write results.json and reports; compare with a baseline (or two saved results: --compare B --against C); or fit the sim to measured results (--sim-of).",
  args: {
    sweep: arg.optional(
      "sweep",
      "a sweep file (scenarios/sweeps/*.json); omit with --sim-of, or with --compare BASELINE --against CURRENT",
    ),
  },
  flags: {
    out: flag.text("out", "Output directory.", { value: "DIR", default: "out/bench-NAME" }),
    json: jsonFlag,
    store: storeFlag,
    saveBaseline: flag.text(
      "save-baseline",
      "Also write the results to this file, as a baseline for --compare.",
      {
        value: "FILE",
      },
    ),
    compare: flag.text(
      "compare",
      "Compare with a saved baseline (results.json): this sweep's results, or with --against a second results file; exit 1 on a regression.",
      { value: "FILE" },
    ),
    against: flag.text(
      "against",
      "With --compare and no sweep file: the current results.json to compare with the baseline; nothing is run.",
      { value: "FILE" },
    ),
    allowAborts: flag.boolean(
      "allow-aborts",
      "Exit 0 even when configurations abort (out of memory, NaN loss): use it for a sweep that probes memory limits. Aborted configurations are reported either way; without the flag an abort exits 1.",
    ),
    failOver: flagWithDefault.number(
      "fail-over",
      "With --compare: the % change in a gated metric's bad direction that fails.",
      DEFAULT_THRESHOLD_PCT,
      { value: "PCT" },
    ),
    failMetrics: flag.text(
      "fail-metrics",
      `With --compare: comma-separated metrics that gate (${METRIC_NAMES.join(", ")}).`,
      {
        value: "LIST",
        default: "throughput, mean latency, memory",
      },
    ),
    simOf: flag.text(
      "sim-of",
      "Fit the sim to a measured sweep's results.json and report its prediction error.",
      {
        value: "FILE",
      },
    ),
    holdOut: flag.text(
      "hold-out",
      "With --sim-of: the groups to hold out, e.g. batch=16, ratio=1:1,2:1, text-only, or config ids; ';' between groups.",
      {
        value: "IDS",
        default: "leave-one-group-out over batch sizes",
      },
    ),
    worker: flag.boolean(
      "worker",
      "Work on the sweep with other workers on any number of machines, through a shared PostgreSQL --store: claim configurations one at a time (with a lease), run each as a recorded run, until none is left to claim and none runs elsewhere. Build the report with `interleave bench report`.",
    ),
    leaseSeconds: flagWithDefault.number(
      "lease-seconds",
      "With --worker: how long a claim holds without renewal; a worker renews it every few seconds while it runs, and a worker that dies loses it after this long.",
      DEFAULT_LEASE_SECONDS,
      { value: "S" },
    ),
    wait: flag.boolean(
      "wait",
      "With --worker: keep polling once the sweep is done, re-reading the sweep file, so that a changed sweep (a new sweep) is picked up; stop with Ctrl-C.",
    ),
  },
  details: [
    "Prints a summary table (per-step means with their rme and n, memory with its figure), the aborted configurations with their reasons, warnings for noisy numbers, and a memory sparkline per configuration; a line per finished configuration with the ETA goes to stderr.",
    "Exits 1 when a configuration aborts, unless --allow-aborts (a sweep that probes memory limits, where out-of-memory configurations are expected, should pass it), and on a regression against --compare.",
  ],
  examples: [
    "interleave bench scenarios/sweeps/ratios-sim-h100.json --out out/sim --allow-aborts",
    "interleave bench scenarios/sweeps/ratios-sim-h100.json --store postgres://bench@db:5432/interleave --worker",
    "interleave bench scenarios/sweeps/ratios-tiny-wasm.json --compare baseline.json",
    "interleave bench --compare out/old/results.json --against out/new/results.json",
  ],
  run: (o) =>
    Effect.gen(function* () {
      if (!o.worker) {
        if (o.wait) return yield* badInput("--wait: applies only to --worker")
        if (o.leaseSeconds !== DEFAULT_LEASE_SECONDS)
          return yield* badInput("--lease-seconds: applies only to --worker")
      } else {
        const other = [
          ["--sim-of", o.simOf],
          ["--compare", o.compare],
          ["--against", o.against],
          ["--save-baseline", o.saveBaseline],
          ["--out", o.out],
          ["--hold-out", o.holdOut],
        ].find(([, v]) => Option.isSome(v as Option.Option<string>))
        if (other)
          return yield* badInput(
            `${other[0]}: does not apply to --worker (a worker writes no results; build them with \`interleave bench report\`)`,
          )
        if (Option.isNone(o.sweep)) return yield* badInput("bench --worker: give the sweep file")
        return yield* benchWorker({
          sweep: o.sweep.value,
          store: o.store,
          leaseSeconds: o.leaseSeconds,
          wait: o.wait,
          json: o.json,
          allowAborts: o.allowAborts,
        })
      }
      if (Option.isSome(o.simOf)) {
        if (Option.isSome(o.sweep))
          return yield* badInput("bench: give a sweep file or --sim-of RESULTS, not both")
        if (Option.isSome(o.compare)) return yield* badInput("bench: --compare does not apply to --sim-of")
        if (Option.isSome(o.against)) return yield* badInput("bench: --against does not apply to --sim-of")
        if (Option.isSome(o.saveBaseline))
          return yield* badInput("bench: --save-baseline does not apply to --sim-of")
        return yield* simFit({ file: o.simOf.value, out: o.out, holdOut: o.holdOut, json: o.json })
      }
      if (Option.isSome(o.holdOut)) return yield* badInput("bench: --hold-out applies only to --sim-of")
      if (!(o.failOver >= 0)) return yield* badInput(`--fail-over: must be a number >= 0, got ${o.failOver}`)
      const failMetrics = Option.isSome(o.failMetrics) ? splitList(o.failMetrics.value) : undefined
      const unknownMetric = failMetrics?.find((m) => !METRIC_NAMES.includes(m))
      if (unknownMetric !== undefined)
        return yield* badInput(
          `--fail-metrics: unknown metric "${unknownMetric}" (known: ${METRIC_NAMES.join(", ")})`,
        )
      const compareOptions = { thresholdPct: o.failOver, ...(failMetrics ? { gate: failMetrics } : {}) }

      // Two saved results files: compare them, run nothing.
      if (Option.isSome(o.against)) {
        if (Option.isSome(o.sweep))
          return yield* badInput("bench: give a sweep file or --against CURRENT, not both")
        if (Option.isNone(o.compare))
          return yield* badInput(
            "--against: needs --compare BASELINE (bench --compare BASELINE --against CURRENT)",
          )
        if (Option.isSome(o.saveBaseline))
          return yield* badInput("bench: --save-baseline does not apply to --against (nothing is run)")
        const baseline = yield* loadResults(o.compare.value, "baseline file")
        const current = yield* loadResults(o.against.value, "results file")
        const comparison = compareResults(baseline, current, compareOptions)
        if (o.json) yield* json({ baseline: o.compare.value, current: o.against.value, ...comparison })
        else yield* line(comparisonText(comparison, o.compare.value, o.against.value))
        if (comparison.failed) return yield* failedCheck(regressionSummary(comparison))
        return
      }

      if (Option.isNone(o.sweep))
        return yield* badInput(
          "bench: give a sweep file, --compare BASELINE --against CURRENT, or --sim-of RESULTS",
        )
      // Read the baseline first: a bad baseline should not cost a whole sweep.
      const baseline = Option.isSome(o.compare)
        ? yield* loadResults(o.compare.value, "baseline file")
        : undefined
      const loaded = yield* loadSweep(o.sweep.value)
      const total = loaded.sweep.warmupSteps + loaded.sweep.measuredSteps
      const outDir = Option.getOrElse(o.out, () => join("out", `bench-${loaded.sweep.name}`))
      const out = yield* withStore(
        o.store,
        runSweep(loaded, {
          outDir,
          checkpointDir: checkpointDirOf(o.store),
          hooks: {
            onConfigStart: (i, n, config) => makeProgress({ label: `[${i + 1}/${n}] ${config.id}`, total }),
            onConfigDone: (d) => {
              const r = d.result
              const what = r.aborted
                ? `aborted: ${r.aborted}`
                : `${d.summary.status}, ${formatNumber(r.throughput.stepsPerSec)} steps/s, ${formatNumber(r.throughput.samplesPerSec)} samples/s (${r.adapter === "sim" ? "simulated" : "measured"})`
              const eta = etaMs(d.elapsedMs, d.index + 1, d.count)
              const when =
                d.index + 1 < d.count
                  ? `ETA ${formatDuration(eta)}`
                  : `sweep took ${formatDuration(d.elapsedMs)}`
              return note(`bench: [${d.index + 1}/${d.count}] ${d.config.id}: ${what}; ${when}`)
            },
          },
        }),
      ).pipe(Effect.provide(AdapterRegistryLive))
      const encoded = encodeSweepResults(out.results)
      if (Option.isSome(o.saveBaseline)) yield* writeJsonFile(o.saveBaseline.value, encoded)
      if (o.json) {
        yield* json(encoded)
        const found = findingLines(out.results)
        if (found.length > 0) yield* note(found.join("\n"))
      } else {
        yield* line(summaryText(out.results))
        yield* line()
        yield* line(sparklines(out.results))
        yield* line()
        yield* line(
          `wrote ${out.files.results}, ${out.files.markdown}, ${out.files.html}, ${out.files.micro}`,
        )
        if (Option.isSome(o.saveBaseline)) yield* line(`saved baseline ${o.saveBaseline.value}`)
      }
      const failures: string[] = []
      if (baseline && Option.isSome(o.compare)) {
        const comparison = compareResults(baseline, out.results, compareOptions)
        // With --json, stdout holds only the results; the comparison goes to stderr.
        const text = comparisonText(comparison, o.compare.value, "this sweep")
        if (o.json) yield* note(text)
        else yield* line(`\n${text}`)
        if (comparison.failed) failures.push(regressionSummary(comparison))
      }
      const aborted = out.results.configs.filter((c) => c.aborted !== undefined)
      if (aborted.length > 0 && !o.allowAborts)
        failures.push(
          `${aborted.length} of ${out.results.configs.length} configurations aborted (${aborted.map((c) => c.id).join(", ")}; reasons above); pass --allow-aborts when a sweep probes memory limits`,
        )
      if (failures.length > 0) return yield* failedCheck(failures.join("; "))
    }),
})

/**
 * `bench` runs a sweep (or compares, or fits the sim); `bench report` reports a sweep that
 * workers ran. The subcommand and bench's optional sweep argument do not clash: @effect/cli
 * tries the subcommand name first (`bench report X`), else parses bench's own arguments
 * (`bench sweep.json`); a sweep file named `report` would need a path (`./report`).
 */
export const benchCommand: CliCommand = {
  doc: { ...benchRun.doc, subcommands: [benchReportCommand.doc] },
  command: benchRun.command.pipe(Command.withSubcommands([benchReportCommand.command])),
}

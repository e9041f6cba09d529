/**
 * `interleave bench`: a sweep of ratios x batch sizes x targets, each configuration a recorded
 * run; results.json, report.md, report.html and micro.json; a comparison with a baseline; or,
 * with --sim-of, the sim fitted to a measured sweep.
 */
import { join } from "node:path"
import { Effect, Either, Option } from "effect"
import { AdapterRegistryLive } from "../../adapters/index.ts"
import {
  type Comparison,
  compareResults,
  DEFAULT_THRESHOLD_PCT,
  encodeSweepResults,
  formatDelta,
  loadSweep,
  METRIC_NAMES,
  parseSweepResults,
  regressionSummary,
  runSweep,
  type SweepResults,
  sparklines,
} from "../../core/bench/index.ts"
import {
  formatBytes,
  formatMs,
  formatNumber,
  formatPercent,
  InputError,
  readTextFile,
  writeJsonFile,
} from "../../core/common/index.ts"
import { defineCommand } from "../command.ts"
import { badInput, failedCheck } from "../failure.ts"
import { arg, flag, flagWithDefault } from "../flags.ts"
import { jsonFlag, storeFlag } from "../options.ts"
import { json, line, note, table } from "../output.ts"
import { makeProgress } from "../progress.ts"
import { checkpointDirOf, withStore } from "../store.ts"
import { simFit } from "./sim-fit.ts"

export const loadResults = (file: string, what: string) =>
  Effect.flatMap(readTextFile(file, what), (text) =>
    Either.match(parseSweepResults(text, file), {
      onLeft: (e) => Effect.fail(new InputError({ message: e.message })),
      onRight: (r) => Effect.succeed(r),
    }),
  )

const summaryTable = (results: SweepResults): string =>
  table(
    [
      "config",
      "steps/s",
      "samples/s",
      "p50 V",
      "p99 V",
      "p50 T",
      "p99 T",
      "mem peak",
      "range",
      "swing max",
      "cv",
    ],
    results.configs.map((c) => [
      c.aborted ? `${c.id} (aborted)` : c.id,
      formatNumber(c.throughput.stepsPerSec),
      formatNumber(c.throughput.samplesPerSec),
      formatMs(c.latency.visual?.p50),
      formatMs(c.latency.visual?.p99),
      formatMs(c.latency.text?.p50),
      formatMs(c.latency.text?.p99),
      formatBytes(c.memory?.peak),
      formatBytes(c.memory?.range),
      formatBytes(c.memory?.swing?.max),
      formatPercent(c.memory?.cv),
    ]),
  )

const comparisonText = (c: Comparison, baselineFile: string): string => {
  const lines = [
    `comparison with ${baselineFile} (fail over ${c.thresholdPct}% on ${c.gated.join(", ")}; other metrics are shown, not gated):`,
  ]
  if (c.machineNote) lines.push(`note: ${c.machineNote}`)
  const fmt = (x: number | undefined) => (x === undefined ? "—" : formatNumber(x))
  lines.push(
    table(
      ["config", "metric", "baseline", "current", "delta", "status"],
      c.deltas.map((d) => [
        d.config,
        d.metric,
        fmt(d.baseline),
        fmt(d.current),
        formatDelta(d.deltaPct),
        d.status === "regressed" ? "REGRESSED" : d.status,
      ]),
    ),
  )
  if (c.missingInCurrent.length > 0) lines.push(`only in the baseline: ${c.missingInCurrent.join(", ")}`)
  if (c.missingInBaseline.length > 0) lines.push(`not in the baseline: ${c.missingInBaseline.join(", ")}`)
  return lines.join("\n")
}

const splitList = (s: string) =>
  s
    .split(",")
    .map((x) => x.trim())
    .filter((x) => x.length > 0)

export const benchCommand = defineCommand({
  name: "bench",
  summary:
    "Run a sweep of ratios x batch sizes x targets as recorded runs; write results.json and reports; compare with a baseline; or fit the sim to measured results (--sim-of).",
  args: { sweep: arg.optional("sweep", "a sweep file (scenarios/sweeps/*.json); omit with --sim-of") },
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
    compare: flag.text("compare", "Compare with a saved baseline (results.json); exit 1 on a regression.", {
      value: "FILE",
    }),
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
    holdOut: flag.text("hold-out", "With --sim-of: config ids to hold out, comma-separated.", {
      value: "IDS",
      default: "leave-one-out",
    }),
  },
  examples: ["interleave bench scenarios/sweeps/ratios-sim-h100.json --out out/sim"],
  run: (o) =>
    Effect.gen(function* () {
      if (Option.isSome(o.simOf)) {
        if (Option.isSome(o.sweep))
          return yield* badInput("bench: give a sweep file or --sim-of RESULTS, not both")
        if (Option.isSome(o.compare)) return yield* badInput("bench: --compare does not apply to --sim-of")
        if (Option.isSome(o.saveBaseline))
          return yield* badInput("bench: --save-baseline does not apply to --sim-of")
        return yield* simFit({ file: o.simOf.value, out: o.out, holdOut: o.holdOut, json: o.json })
      }
      if (Option.isNone(o.sweep)) return yield* badInput("bench: give a sweep file (or --sim-of RESULTS)")
      if (Option.isSome(o.holdOut)) return yield* badInput("bench: --hold-out applies only to --sim-of")
      if (!(o.failOver >= 0)) return yield* badInput(`--fail-over: must be a number >= 0, got ${o.failOver}`)
      const failMetrics = Option.isSome(o.failMetrics) ? splitList(o.failMetrics.value) : undefined
      const unknownMetric = failMetrics?.find((m) => !METRIC_NAMES.includes(m))
      if (unknownMetric !== undefined)
        return yield* badInput(
          `--fail-metrics: unknown metric "${unknownMetric}" (known: ${METRIC_NAMES.join(", ")})`,
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
            onConfigDone: (d) =>
              note(
                `bench: [${d.index + 1}/${d.count}] ${d.config.id}: ${d.summary.status}, ${formatNumber(d.result.throughput.stepsPerSec)} steps/s, ${formatNumber(d.result.throughput.samplesPerSec)} samples/s`,
              ),
          },
        }),
      ).pipe(Effect.provide(AdapterRegistryLive))
      const encoded = encodeSweepResults(out.results)
      if (Option.isSome(o.saveBaseline)) yield* writeJsonFile(o.saveBaseline.value, encoded)
      if (o.json) yield* json(encoded)
      else {
        yield* line(summaryTable(out.results))
        yield* line()
        yield* line(sparklines(out.results))
        yield* line()
        yield* line(
          `wrote ${out.files.results}, ${out.files.markdown}, ${out.files.html}, ${out.files.micro}`,
        )
        if (Option.isSome(o.saveBaseline)) yield* line(`saved baseline ${o.saveBaseline.value}`)
      }
      if (baseline && Option.isSome(o.compare)) {
        const comparison = compareResults(baseline, out.results, {
          thresholdPct: o.failOver,
          ...(failMetrics ? { gate: failMetrics } : {}),
        })
        // With --json, stdout holds only the results; the comparison goes to stderr.
        const text = comparisonText(comparison, o.compare.value)
        if (o.json) yield* note(text)
        else yield* line(`\n${text}`)
        if (comparison.regressions.length > 0) return yield* failedCheck(regressionSummary(comparison))
      }
    }),
})

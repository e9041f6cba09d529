/**
 * `interleave bench`: runs every configuration of a sweep as a recorded run, summarises the
 * measured steps into SweepResults, writes results.json + report.md + report.html, compares with a
 * saved baseline, and (with --sim-of) fits the sim to a measured sweep and states its error.
 */
import { mkdirSync, writeFileSync } from "node:fs"
import { dirname, join, resolve } from "node:path"
import { Args, Command, Options } from "@effect/cli"
import { Effect, Either, Option, Stream } from "effect"
import { Bench } from "tinybench"
import { adapterLayer } from "../adapters/registry.ts"
import { crossValidate, fitSim, type MeasuredConfig } from "../adapters/sim/fit.ts"
import { looksLikePath } from "../adapters/sim/profiles.ts"
import {
  type Comparison,
  compareResults,
  DEFAULT_THRESHOLD_PCT,
  formatDelta,
  METRIC_NAMES,
  regressionSummary,
} from "../core/bench/baseline.ts"
import { escapeHtml } from "../core/bench/report/html.ts"
import { sparklines } from "../core/bench/report/sparkline.ts"
import { writeReport } from "../core/bench/report/write.ts"
import {
  buildConfigResult,
  type ConfigResult,
  currentMachine,
  encodeSweepResults,
  parseSweepResults,
  type StepRecord,
  type SweepResults,
} from "../core/bench/results.ts"
import {
  type BenchConfig,
  benchSpec,
  expandSweep,
  parseSweep,
  type SweepFile,
  targetId,
} from "../core/bench/sweep.ts"
import { formatBytes, formatMs, formatNumber, formatPercent } from "../core/common/format.ts"
import type { MemorySampleSchema } from "../core/log/events.ts"
import { readRunEvents, startRun } from "../core/run/engine.ts"
import { TrainingAdapter } from "../core/run/training-adapter.ts"
import { makePlanner } from "../core/schedule/plan.ts"
import { badInput, failedCheck } from "./failure.ts"
import { makeProgress, printJson, println, table } from "./output.ts"
import { runStamp, storeOption, withStore } from "./run-commands.ts"
import { loadScenario, readTextFile } from "./scenario.ts"
import { jsonOption } from "./schedule-commands.ts"

type MemorySample = typeof MemorySampleSchema.Type

/** Which per-step memory figure a config's series uses (see `memoryMeasure`). */
export type MemoryMeasure = "peakBytes" | "deviceBytes" | "logicalBytes"

const MEASURE_TEXT: Record<MemoryMeasure, string> = {
  peakBytes: "peak bytes inside each step (tf.profile peakBytes; the sim's step footprint)",
  deviceBytes: "device bytes in use after each step (webgpu numBytesInGPU)",
  logicalBytes: "bytes held by live tensors after each step (tf.memory().numBytes)",
}

/**
 * The in-step peak when every measured step has one (tfjs with profileEvery 1, and the sim), else
 * device bytes when every step has them, else logical bytes. Logical bytes after a tfjs step are
 * only the weights and optimizer state (a step frees its activations), so they barely move between
 * visual and text steps: the peak is what shows the fluctuation.
 */
export const memoryMeasure = (samples: ReadonlyArray<MemorySample>): MemoryMeasure =>
  samples.length > 0 && samples.every((m) => m.peakBytes !== undefined)
    ? "peakBytes"
    : samples.length > 0 && samples.every((m) => m.deviceBytes !== undefined)
      ? "deviceBytes"
      : "logicalBytes"

const writeText = (file: string, text: string) =>
  Effect.try({
    try: () => {
      mkdirSync(dirname(file), { recursive: true })
      writeFileSync(file, text)
    },
    catch: (e) => badInput(`${file}: cannot write (${(e as NodeJS.ErrnoException).code ?? String(e)})`),
  })

const writeJsonFile = (file: string, value: unknown) => writeText(file, `${JSON.stringify(value, null, 2)}\n`)

const loadResults = (file: string, what: string) =>
  Effect.flatMap(readTextFile(file, what), (text) =>
    Either.match(parseSweepResults(text, file), {
      onLeft: (e) => Effect.fail(badInput(e.message)),
      onRight: (r) => Effect.succeed(r),
    }),
  )

// ---------------------------------------------------------------------------------------------
// One configuration: the recorded run, then its events back into step records

interface Collected {
  readonly records: ReadonlyArray<StepRecord>
  readonly measure: MemoryMeasure
  readonly aborted: string | undefined
  readonly info: Readonly<Record<string, string>>
}

/** Reads a run's events back and keeps the steps after the warm-up. */
const collectRun = (runId: string, warmupSteps: number) =>
  Effect.gen(function* () {
    const steps: Array<{ r: Omit<StepRecord, "memBytes">; m: MemorySample | undefined }> = []
    let aborted: string | undefined
    let info: Readonly<Record<string, string>> = {}
    yield* readRunEvents(runId).pipe(
      Stream.runForEach((e) =>
        Effect.sync(() => {
          if (e._tag === "RunStarted") info = e.adapter.info
          else if (e._tag === "RunAborted") aborted = e.reason
          else if (e._tag === "StepCompleted" && e.step >= warmupSteps)
            steps.push({
              r: {
                step: e.step,
                modality: e.modality,
                durationMs: e.durationMs,
                loss: e.losses.total ?? Number.NaN,
                samples: e.samples,
                phase: e.phase,
                cycle: e.cycle,
              },
              m: e.memory,
            })
          else if (e._tag === "StepFailed" && e.step >= warmupSteps)
            // Shown as a gap in the loss chart; no time, and no memory sample of its own.
            steps.push({
              r: {
                step: e.step,
                modality: e.modality,
                durationMs: 0,
                loss: Number.NaN,
                samples: 0,
                phase: e.phase,
              },
              m: undefined,
            })
        }),
      ),
    )
    const measure = memoryMeasure(steps.flatMap((s) => (s.m ? [s.m] : [])))
    const records: StepRecord[] = []
    let last: number | undefined
    for (const s of steps) {
      const bytes = s.m ? (s.m[measure] ?? s.m.logicalBytes) : last
      if (bytes === undefined) continue
      last = bytes
      records.push({ ...s.r, memBytes: bytes })
    }
    return { records, measure, aborted, info } satisfies Collected
  })

// ---------------------------------------------------------------------------------------------
// tinybench: single steps per modality on a session of the same adapter

export interface MicroTask {
  readonly name: string
  /** tinybench's latency `Statistics` in ms, without the samples; absent when the step failed. */
  readonly latency?: Record<string, unknown> | undefined
  /** Why the task failed (e.g. the sim's out-of-memory for a batch the run never used). */
  readonly error?: string | undefined
}

export interface MicroBench {
  /** `<target>-b<V>x<T>`: one per target and batch size (a single step does not depend on the ratio). */
  readonly id: string
  readonly configs: ReadonlyArray<string>
  readonly tasks: ReadonlyArray<MicroTask>
}

/**
 * A tinybench `Bench` with tasks "visual step" and "text step", each iteration one step on a
 * session of its own (opened for the bench, without profiling), timed by the adapter
 * (`overriddenDuration` = its `durationMs`: wall time of a real step, simulated time in the sim).
 */
const microBench = (config: BenchConfig, iterations: number) =>
  Effect.scoped(
    Effect.gen(function* () {
      const spec = benchSpec(config.spec, {
        name: `${config.spec.name}-micro`,
        ratio: { visual: 1, text: 1 },
        batch: config.batch,
        steps: 2 * (iterations + 16) + 2,
        order: "visual-first",
      })
      if (Either.isLeft(spec)) return yield* badInput(spec.left)
      const planner = makePlanner(spec.right)
      const adapter = yield* TrainingAdapter
      const options =
        config.target.adapter === "tfjs"
          ? { ...config.adapterOptions, profileEvery: 0 }
          : config.adapterOptions
      const session = yield* adapter.open({ spec: spec.right, options })
      // 1:1 visual-first: even steps are visual, odd ones text; each task walks its own steps.
      const next = { visual: 0, text: 1 }
      const bench = new Bench({
        name: config.id,
        iterations,
        time: 0,
        warmupIterations: 2,
        warmupTime: 0,
      })
      for (const m of ["visual", "text"] as const)
        bench.add(`${m} step`, async () => {
          // The spec's length is even, so wrapping keeps each task on its own modality.
          const plan = planner.at(next[m] % planner.total)
          next[m] += 2
          const outcome = await Effect.runPromise(Effect.either(session.step(plan)))
          if (Either.isLeft(outcome)) throw new Error(outcome.left.message)
          return { overriddenDuration: outcome.right.durationMs }
        })
      yield* Effect.tryPromise({
        try: () => bench.run(),
        catch: (e) => badInput(`${config.id}: tinybench: ${e instanceof Error ? e.message : String(e)}`),
      })
      return bench.tasks.map((t): MicroTask => {
        const r = t.result
        if ("latency" in r) {
          const { samples: _samples, ...latency } = r.latency
          return { name: t.name, latency }
        }
        return { name: t.name, error: "error" in r ? r.error.message : `tinybench task ${r.state}` }
      })
    }),
  )

// ---------------------------------------------------------------------------------------------
// Printing

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

const microText = (t: MicroTask): string =>
  t.latency
    ? `${t.name} mean ${formatMs(t.latency.mean as number)} p99 ${formatMs(t.latency.p99 as number)}`
    : `${t.name} failed (${t.error})`

/** What the report should say about how this bench measured (appended to report.md/.html). */
const benchNotes = (
  sweep: SweepFile,
  measures: ReadonlyMap<string, MemoryMeasure>,
  micro: ReadonlyArray<MicroBench>,
): string[] => {
  const byMeasure = new Map<MemoryMeasure, string[]>()
  for (const [id, m] of measures) byMeasure.set(m, [...(byMeasure.get(m) ?? []), id])
  const notes = [
    `Each configuration ran ${sweep.warmupSteps} warm-up steps (left out of every statistic) and ${sweep.measuredSteps} measured steps as a recorded run (its id is in results.json: \`interleave show RUN\`). Time is the adapter's step time (tfjs: wall time of the step; sim: simulated time); throughput divides the measured steps by the sum of their step times.`,
    ...[...byMeasure].map(
      ([m, ids]) => `Memory series (\`${m}\`): ${MEASURE_TEXT[m]}; configurations: ${ids.join(", ")}.`,
    ),
  ]
  if (micro.length > 0)
    notes.push(
      `tinybench single steps (micro.json; a session without profiling, duration from the adapter via overriddenDuration): ${micro
        .map((b) => `${b.id}: ${b.tasks.map(microText).join(", ")}`)
        .join("; ")}.`,
    )
  return notes
}

const appendNotes = (dir: string, notes: ReadonlyArray<string>) =>
  Effect.gen(function* () {
    const md = join(dir, "report.md")
    const html = join(dir, "report.html")
    const mdText = yield* readTextFile(md, "report")
    yield* writeText(
      md,
      `${mdText.trimEnd()}\n\n## How this bench measured\n\n${notes.map((n) => `- ${n}`).join("\n")}\n`,
    )
    const htmlText = yield* readTextFile(html, "report")
    const section = `<h2>How this bench measured</h2>\n<ul data-notes="bench">\n${notes
      .map((n) => `<li>${escapeHtml(n.replace(/`/g, ""))}</li>`)
      .join("\n")}\n</ul>\n`
    const at = htmlText.lastIndexOf("<h2>Definitions</h2>")
    yield* writeText(html, at >= 0 ? htmlText.slice(0, at) + section + htmlText.slice(at) : htmlText)
  })

// ---------------------------------------------------------------------------------------------
// The sweep

interface BenchArgs {
  readonly sweepFile: string
  readonly out: Option.Option<string>
  readonly json: boolean
  readonly store: string
  readonly saveBaseline: Option.Option<string>
  readonly compare: Option.Option<string>
  readonly failOver: number
  readonly failMetrics: ReadonlyArray<string> | undefined
}

/** A sim profile given as a path is relative to the sweep file. */
const resolveTargets = (sweep: SweepFile, sweepFile: string): SweepFile => {
  const dir = dirname(resolve(sweepFile))
  const fix = (p: string | undefined) => (p !== undefined && looksLikePath(p) ? resolve(dir, p) : p)
  return {
    ...sweep,
    targets: sweep.targets.map((t) =>
      t.adapter === "sim"
        ? {
            adapter: "sim" as const,
            ...(t.hardware ? { hardware: fix(t.hardware)! } : {}),
            ...(t.model ? { model: fix(t.model)! } : {}),
          }
        : t,
    ),
  }
}

const runSweep = (a: BenchArgs) =>
  Effect.gen(function* () {
    if (!(a.failOver >= 0)) return yield* badInput(`--fail-over: must be a number >= 0, got ${a.failOver}`)
    const unknownMetric = a.failMetrics?.find((m) => !METRIC_NAMES.includes(m))
    if (unknownMetric !== undefined)
      return yield* badInput(
        `--fail-metrics: unknown metric "${unknownMetric}" (known: ${METRIC_NAMES.join(", ")})`,
      )
    // Read the baseline first: a bad baseline should not cost a whole sweep.
    const baseline = Option.isSome(a.compare)
      ? yield* loadResults(a.compare.value, "baseline file")
      : undefined
    const text = yield* readTextFile(a.sweepFile, "sweep file")
    const decoded = parseSweep(text, a.sweepFile)
    if (Either.isLeft(decoded)) return yield* badInput(decoded.left.message)
    const rawSweep = decoded.right
    const baseFile = resolve(dirname(a.sweepFile), rawSweep.base)
    const base = yield* loadScenario(baseFile).pipe(
      Effect.mapError((e) => badInput(`${a.sweepFile}: base: ${e.message}`)),
    )
    // Profile paths become absolute; ids and labels use their base names, so they do not change.
    const sweep = resolveTargets(rawSweep, a.sweepFile)
    const expanded = expandSweep(sweep, base, a.sweepFile)
    if (Either.isLeft(expanded)) return yield* badInput(expanded.left.message)
    const configs = expanded.right
    const outDir = Option.getOrElse(a.out, () => join("out", `bench-${sweep.name}`))
    const stamp = runStamp()
    const createdAt = new Date().toISOString()
    const results: ConfigResult[] = []
    const measures = new Map<string, MemoryMeasure>()
    const micro: MicroBench[] = []
    const microDone = new Map<string, MicroBench>()
    let gpu: string | undefined
    const total = sweep.warmupSteps + sweep.measuredSteps
    for (const [i, config] of configs.entries()) {
      const runId = `bench-${sweep.name}-${config.id}-${stamp}`
      const progress = makeProgress(`[${i + 1}/${configs.length}] ${config.id}`, total)
      const adapter = adapterLayer(config.target.adapter)
      const summary = yield* startRun(
        {
          runId,
          spec: config.spec,
          source: `${a.sweepFile} (${config.id})`,
          adapterOptions: config.adapterOptions,
        },
        {
          evalEvery: sweep.evalEvery,
          checkpointEvery: sweep.checkpointEvery,
          checkpointDir: `${a.store}.checkpoints`,
          onProgress: progress.update,
        },
      ).pipe(Effect.provide(adapter), Effect.ensuring(Effect.sync(progress.done)))
      const got = yield* collectRun(runId, config.warmupSteps)
      measures.set(config.id, got.measure)
      const hardware = config.target.adapter === "sim" ? got.info.hardware : got.info.device
      if (config.target.adapter === "tfjs" && config.target.backend === "webgpu") gpu ??= got.info.device
      const result = buildConfigResult(
        {
          id: config.id,
          label: config.label,
          ratio: config.ratio,
          batch: config.batch,
          adapter: config.target.adapter,
          backend: config.target.adapter === "tfjs" ? config.target.backend : undefined,
          preset: config.target.adapter === "tfjs" ? config.target.preset : undefined,
          hardware,
          runId,
          aborted: summary.status === "aborted" ? (got.aborted ?? summary.state.abortReason) : undefined,
        },
        got.records,
      )
      results.push(result)
      // One tinybench per target and batch size: a single step does not depend on the ratio.
      const microId = `${targetId(config.target)}-b${config.batch.visual}x${config.batch.text}`
      const seen = microDone.get(microId)
      if (seen) (seen.configs as string[]).push(config.id)
      else if (sweep.microIterations > 0 && summary.status === "completed") {
        const tasks = yield* microBench(config, sweep.microIterations).pipe(Effect.provide(adapter))
        const mb: MicroBench = { id: microId, configs: [config.id], tasks }
        microDone.set(microId, mb)
        micro.push(mb)
      }
      // Where progress is shown (see makeProgress), each config also leaves a line behind.
      if (process.stderr.isTTY || process.env.INTERLEAVE_PROGRESS === "1")
        process.stderr.write(
          `bench: [${i + 1}/${configs.length}] ${config.id}: ${summary.status}, ${formatNumber(result.throughput.stepsPerSec)} steps/s, ${formatNumber(result.throughput.samplesPerSec)} samples/s\n`,
        )
    }
    const machine = currentMachine()
    const sweepResults: SweepResults = {
      schemaVersion: 1,
      name: sweep.name,
      machine: gpu ? { ...machine, gpu } : machine,
      createdAt,
      configs: results,
    }
    const encoded = encodeSweepResults(sweepResults)
    const resultsPath = join(outDir, "results.json")
    yield* writeJsonFile(resultsPath, encoded)
    yield* writeJsonFile(join(outDir, "micro.json"), {
      name: sweep.name,
      createdAt,
      note: "tinybench 6 single-step tasks per target and batch size; latency in ms, tinybench's Statistics (samples omitted); each sample is the adapter's own step duration (overriddenDuration), on a session without profiling",
      benches: micro,
    })
    const report = yield* writeReport(outDir, sweepResults)
    yield* appendNotes(outDir, benchNotes(sweep, measures, micro))
    if (Option.isSome(a.saveBaseline)) yield* writeJsonFile(a.saveBaseline.value, encoded)
    const comparison = baseline
      ? compareResults(baseline, sweepResults, {
          thresholdPct: a.failOver,
          ...(a.failMetrics ? { gate: a.failMetrics } : {}),
        })
      : undefined
    if (a.json) printJson(encoded)
    else {
      println(summaryTable(sweepResults))
      println()
      println(sparklines(sweepResults))
      println()
      println(
        `wrote ${resultsPath}, ${report.markdownPath}, ${report.htmlPath}, ${join(outDir, "micro.json")}`,
      )
      if (Option.isSome(a.saveBaseline)) println(`saved baseline ${a.saveBaseline.value}`)
    }
    if (comparison && Option.isSome(a.compare)) {
      // With --json, stdout holds only the results; the comparison goes to stderr.
      const text = comparisonText(comparison, a.compare.value)
      if (a.json) process.stderr.write(`${text}\n`)
      else println(`\n${text}`)
      if (comparison.regressions.length > 0) return yield* failedCheck(regressionSummary(comparison))
    }
  })

// ---------------------------------------------------------------------------------------------
// --sim-of: fit the sim to a measured sweep

/** The sim fit's input from a results file: configs that completed and sampled memory. */
export const measuredFromResults = (results: SweepResults): MeasuredConfig[] =>
  results.configs.flatMap((c) =>
    c.aborted || !c.memory
      ? []
      : [
          {
            id: c.id,
            batch: c.batch,
            ratio: c.ratio,
            meanStepMs: { visual: c.latency.visual?.mean, text: c.latency.text?.mean },
            memory: { peakBytes: c.memory.peak, troughBytes: c.memory.trough },
          },
        ],
  )

const pct = (x: number | undefined) => (x === undefined ? "—" : `${x >= 0 ? "+" : ""}${x.toFixed(1)}%`)

const simFit = (a: {
  readonly file: string
  readonly out: Option.Option<string>
  readonly holdOut: Option.Option<string>
  readonly json: boolean
}) =>
  Effect.gen(function* () {
    const results = yield* loadResults(a.file, "results file")
    const measured = measuredFromResults(results)
    const holdOut = Option.map(a.holdOut, (s) =>
      s
        .split(",")
        .map((x) => x.trim())
        .filter((x) => x.length > 0),
    )
    if (Option.isSome(holdOut) && holdOut.value.length === 0)
      return yield* badInput("--hold-out: give config ids separated by commas")
    const cv = crossValidate(measured, { holdOut: Option.getOrUndefined(holdOut) })
    if (Either.isLeft(cv)) return yield* badInput(`${a.file}: ${cv.left.message}`)
    const all = fitSim(measured, { name: `fitted-${results.name}` })
    if (Either.isLeft(all)) return yield* badInput(`${a.file}: ${all.left.message}`)
    const byId = new Map(measured.map((m) => [m.id, m]))
    const out = {
      source: a.file,
      sweep: results.name,
      machine: results.machine,
      createdAt: new Date().toISOString(),
      method: Option.isSome(holdOut) ? `held out: ${holdOut.value.join(", ")}` : "leave-one-out",
      fits: cv.right.fits,
      mapePct: cv.right.mape,
      heldOut: cv.right.heldOut.map((h) => ({ ...h, measured: byId.get(h.id) })),
      warnings: [...new Set(cv.right.warnings)],
      fitOnAll: {
        time: all.right.time,
        memory: all.right.memory,
        warnings: all.right.warnings,
        hardware: all.right.hardware,
        model: all.right.model,
      },
    }
    const dir = Option.getOrElse(a.out, () => join("out", `bench-${results.name}`))
    const file = join(dir, "sim-fit.json")
    yield* writeJsonFile(file, out)
    if (a.json) return printJson(out)
    println(`sim fit to ${a.file} (${measured.length} configs, ${out.method}, ${out.fits} fits)`)
    println(
      table(
        [
          "config",
          "V ms meas",
          "V ms pred",
          "V err",
          "T ms meas",
          "T ms pred",
          "T err",
          "peak err",
          "trough err",
        ],
        cv.right.heldOut.map((h) => {
          const m = byId.get(h.id)!
          return [
            h.id,
            formatNumber(m.meanStepMs.visual),
            formatNumber(h.predicted.meanStepMs.visual),
            pct(h.errorPct.stepMsVisual),
            formatNumber(m.meanStepMs.text),
            formatNumber(h.predicted.meanStepMs.text),
            pct(h.errorPct.stepMsText),
            pct(h.errorPct.peakBytes),
            pct(h.errorPct.troughBytes),
          ]
        }),
      ),
    )
    const m = cv.right.mape
    const f = (x: number | undefined) => (x === undefined ? "—" : `${x.toFixed(1)}%`)
    println(`MAPE on held-out configs: step time ${f(m.stepMs)}, memory ${f(m.memory)}, all ${f(m.all)}`)
    // Per-fold warnings repeat across folds; the fit on every config says the same once.
    for (const w of all.right.warnings) println(`warning (fit on all configs): ${w}`)
    if (out.warnings.length > 0)
      println(`${out.warnings.length} warning(s) from the cross-validation fits are in ${file}`)
    println(`wrote ${file}`)
  })

// ---------------------------------------------------------------------------------------------

export const benchCommand = Command.make(
  "bench",
  {
    sweep: Args.text({ name: "sweep" }).pipe(
      Args.withDescription("sweep file (scenarios/sweeps/*.json); omit with --sim-of"),
      Args.optional,
    ),
    out: Options.text("out").pipe(
      Options.optional,
      Options.withDescription("output directory (default out/bench-NAME)"),
    ),
    json: jsonOption,
    store: storeOption,
    saveBaseline: Options.text("save-baseline").pipe(
      Options.optional,
      Options.withDescription("also write the results to this file, as a baseline for --compare"),
    ),
    compare: Options.text("compare").pipe(
      Options.optional,
      Options.withDescription("compare with a saved baseline (results.json); exit 1 on a regression"),
    ),
    failOver: Options.float("fail-over").pipe(
      Options.withDefault(DEFAULT_THRESHOLD_PCT),
      Options.withDescription(
        `with --compare: the % change in a gated metric's bad direction that fails (default ${DEFAULT_THRESHOLD_PCT})`,
      ),
    ),
    failMetrics: Options.text("fail-metrics").pipe(
      Options.optional,
      Options.withDescription(
        `with --compare: comma-separated metrics that gate (default: throughput, mean latency, memory; all: ${METRIC_NAMES.join(", ")})`,
      ),
    ),
    simOf: Options.text("sim-of").pipe(
      Options.optional,
      Options.withDescription(
        "fit the sim to a measured sweep's results.json and report its prediction error",
      ),
    ),
    holdOut: Options.text("hold-out").pipe(
      Options.optional,
      Options.withDescription(
        "with --sim-of: config ids to hold out (comma-separated; default leave-one-out)",
      ),
    ),
  },
  (o) =>
    Effect.gen(function* () {
      if (Option.isSome(o.simOf)) {
        if (Option.isSome(o.sweep))
          return yield* badInput("bench: give a sweep file or --sim-of RESULTS, not both")
        const bad = [
          ["--compare", o.compare],
          ["--save-baseline", o.saveBaseline],
        ].find(([, v]) => Option.isSome(v as Option.Option<string>))
        if (bad) return yield* badInput(`bench: ${bad[0]} does not apply to --sim-of`)
        return yield* simFit({ file: o.simOf.value, out: o.out, holdOut: o.holdOut, json: o.json })
      }
      if (Option.isNone(o.sweep)) return yield* badInput("bench: give a sweep file (or --sim-of RESULTS)")
      if (Option.isSome(o.holdOut)) return yield* badInput("bench: --hold-out applies only to --sim-of")
      return yield* withStore(
        o.store,
        runSweep({
          sweepFile: o.sweep.value,
          out: o.out,
          json: o.json,
          store: o.store,
          saveBaseline: o.saveBaseline,
          compare: o.compare,
          failOver: o.failOver,
          failMetrics: Option.isSome(o.failMetrics)
            ? o.failMetrics.value
                .split(",")
                .map((m) => m.trim())
                .filter((m) => m.length > 0)
            : undefined,
        }),
      )
    }),
).pipe(
  Command.withDescription(
    "Run a sweep of ratios x batch sizes x targets as recorded runs; write results.json and reports; compare with a baseline; or fit the sim to measured results (--sim-of).",
  ),
)

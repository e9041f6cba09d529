/**
 * Running a sweep: every configuration as a recorded run (so `show`, `diff` and `replay` work on
 * it), its measured steps summarised into SweepResults, tinybench single steps per target and
 * batch size, and results.json + micro.json + report.md + report.html written with the notes on
 * how it measured. Printing is the caller's: it gets a callback per configuration.
 */
import { dirname, join, resolve } from "node:path"
import { Clock, Effect, Either } from "effect"
import { InputError, looksLikePath, readTextFile, writeJsonFile } from "../common/index.ts"
import { AdapterRegistry, type Progress, type RunSummary, startRun } from "../run/index.ts"
import { loadScenario } from "../schedule/index.ts"
import { collectRun } from "./collect.ts"
import { figureDescription, figureLabel } from "./memory-figure.ts"
import { type MicroBench, type MicroTask, microBench } from "./micro.ts"
import { writeReport } from "./report/write.ts"
import {
  buildConfigResult,
  type ConfigResult,
  currentMachine,
  encodeSweepResults,
  RESULTS_SCHEMA_VERSION,
  type SweepResults,
  type WorkerMachine,
} from "./results.ts"
import { type BenchConfig, expandSweep, parseSweep, type SweepFile, type Target, targetId } from "./sweep.ts"

export interface LoadedSweep {
  readonly file: string
  readonly sweep: SweepFile
  readonly configs: ReadonlyArray<BenchConfig>
}

/** A sim target's profiles given as paths are relative to the file that names them. */
export const resolveTargetPaths = (t: Target, fromFile: string): Target => {
  if (t.adapter !== "sim") return t
  const dir = dirname(resolve(fromFile))
  const fix = (p: string | undefined) => (p !== undefined && looksLikePath(p) ? resolve(dir, p) : p)
  return {
    adapter: "sim" as const,
    ...(t.hardware ? { hardware: fix(t.hardware)! } : {}),
    ...(t.model ? { model: fix(t.model)! } : {}),
  }
}

const resolveTargets = (sweep: SweepFile, sweepFile: string): SweepFile => ({
  ...sweep,
  targets: sweep.targets.map((t) => resolveTargetPaths(t, sweepFile)),
})

/** Reads a sweep file and its base scenario and expands it into configurations. */
export const loadSweep = (file: string) =>
  Effect.gen(function* () {
    const text = yield* readTextFile(file, "sweep file")
    const decoded = parseSweep(text, file)
    if (Either.isLeft(decoded)) return yield* new InputError({ message: decoded.left.message })
    const raw = decoded.right
    const base = yield* loadScenario(resolve(dirname(file), raw.base)).pipe(
      Effect.mapError((e) => new InputError({ message: `${file}: base: ${e.message}` })),
    )
    // Profile paths become absolute; ids and labels use their base names, so they do not change.
    const sweep = resolveTargets(raw, file)
    const expanded = expandSweep(sweep, base, file)
    if (Either.isLeft(expanded)) return yield* new InputError({ message: expanded.left.message })
    return { file, sweep, configs: expanded.right } satisfies LoadedSweep
  })

export interface ConfigDone {
  readonly index: number
  readonly count: number
  /** Wall time since the sweep started, ms (every configuration done so far, warm-up and tinybench included). */
  readonly elapsedMs: number
  readonly config: BenchConfig
  readonly summary: RunSummary
  readonly result: ConfigResult
}

export interface SweepHooks {
  /** A configuration starts: returns its progress callback (and a `done` to clear it). */
  readonly onConfigStart?: (
    index: number,
    count: number,
    config: BenchConfig,
  ) => { readonly update: (p: Progress) => void; readonly done: () => void }
  readonly onConfigDone?: (done: ConfigDone) => Effect.Effect<void>
}

export interface SweepOutput {
  readonly results: SweepResults
  readonly micro: ReadonlyArray<MicroBench>
  readonly files: {
    readonly results: string
    readonly micro: string
    readonly markdown: string
    readonly html: string
  }
}

/** `visual step mean 45.034 ms ±0.0% (n=8), max 45.1 ms`: a handful of iterations has no real p99. */
export const microText = (t: MicroTask): string => {
  if (!t.latency) return `${t.name} failed (${t.error})`
  const num = (k: string) => t.latency![k] as number
  const rme = num("rme")
  return `${t.name} mean ${num("mean").toFixed(3)} ms ±${Number.isFinite(rme) ? rme.toFixed(1) : "∞"}% (n=${num("samplesCount")}), max ${num("max").toFixed(3)} ms`
}

/** What the report says about how this bench measured. */
export const benchNotes = (
  sweep: Pick<SweepFile, "warmupSteps" | "measuredSteps">,
  configs: ReadonlyArray<ConfigResult>,
  micro: ReadonlyArray<MicroBench>,
): string[] => {
  const byFigure = new Map<string, string[]>()
  for (const c of configs) {
    if (!c.memory) continue
    const f = c.memoryFigure
    const key = `${figureLabel(f, c.steps)}: ${f ? figureDescription(f) : "which figure was not recorded"}`
    byFigure.set(key, [...(byFigure.get(key) ?? []), c.id])
  }
  const notes = [
    `Each configuration ran ${sweep.warmupSteps} warm-up steps (left out of every statistic) and ${sweep.measuredSteps} measured steps as a recorded run (its id is in results.json: \`interleave show RUN\`). Time is the adapter's step time (tfjs: wall time of the step, measured; sim: simulated time from its cost model); throughput divides the measured steps (and their samples) by the total of their step times.`,
    ...[...byFigure].map(([what, ids]) => `Memory figure ${what}; configurations: ${ids.join(", ")}.`),
  ]
  if (micro.length > 0)
    notes.push(
      `tinybench single steps (micro.json; a session without profiling, duration from the adapter via overriddenDuration): ${micro
        .map((b) => `${b.id}: ${b.tasks.map(microText).join(", ")}`)
        .join("; ")}.`,
    )
  return notes
}

/**
 * Time left for the sweep, ms, assuming the configurations still to run take as long on average
 * as those done so far (`done` of `total` in `elapsedMs`); undefined before the first is done.
 */
export const etaMs = (elapsedMs: number, done: number, total: number): number | undefined =>
  done <= 0 ? undefined : Math.max(0, (elapsedMs / done) * Math.max(0, total - done))

/** `20250101-120000-3fa2`: UTC time, plus a random suffix so that two runs in one second differ. */
export const runStamp = (now: number): string => {
  const d = new Date(now)
  const p = (n: number) => String(n).padStart(2, "0")
  const rand = Math.floor(Math.random() * 0x10000)
    .toString(16)
    .padStart(4, "0")
  return `${d.getUTCFullYear()}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}-${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}-${rand}`
}

export interface RunConfigOptions {
  readonly checkpointDir: string
  readonly onProgress?: ((p: Progress) => void) | undefined
  /** Why the run was interrupted, for its RunInterrupted event. */
  readonly interruptReason?: (() => string) | undefined
}

/**
 * One configuration as the recorded run `runId`, and its measured steps summarised: what a local
 * sweep and a sweep worker both do per configuration. `info` is the adapter's description of
 * where it ran (sim: the hardware profile; tfjs: backend and device).
 */
export const runConfig = (
  loaded: LoadedSweep,
  config: BenchConfig,
  runId: string,
  options: RunConfigOptions,
) =>
  Effect.gen(function* () {
    const registry = yield* AdapterRegistry
    const summary = yield* startRun(
      {
        runId,
        spec: config.spec,
        source: `${loaded.file} (${config.id})`,
        adapterOptions: config.adapterOptions,
      },
      {
        evalEvery: loaded.sweep.evalEvery,
        checkpointEvery: loaded.sweep.checkpointEvery,
        checkpointDir: options.checkpointDir,
        onProgress: options.onProgress,
        interruptReason: options.interruptReason,
      },
    ).pipe(Effect.provide(registry.layer(config.target.adapter)))
    const { result, info } = yield* recordedConfigResult(config, runId, {
      abortReason: summary.status === "aborted" ? summary.state.abortReason : undefined,
    })
    return { summary, result, info }
  })

/**
 * A configuration's result, read back from its recorded run `runId`: the measured steps (after
 * the warm-up) summarised. `abortReason` stands in when the log has no RunAborted reason; `worker`
 * says which sweep worker's attempt the run was.
 */
export const recordedConfigResult = (
  config: BenchConfig,
  runId: string,
  extra: { readonly abortReason?: string | undefined; readonly worker?: WorkerMachine | undefined } = {},
) =>
  Effect.gen(function* () {
    const got = yield* collectRun(runId, config.warmupSteps)
    const hardware = config.target.adapter === "sim" ? got.info.hardware : got.info.device
    const aborted = got.aborted ?? extra.abortReason
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
        aborted,
        memoryFigure: got.figure,
        worker: extra.worker,
      },
      got.records,
    )
    return { result, info: got.info }
  })

export const runSweep = (
  loaded: LoadedSweep,
  options: { readonly outDir: string; readonly checkpointDir: string; readonly hooks?: SweepHooks },
) =>
  Effect.gen(function* () {
    const { sweep, configs } = loaded
    const registry = yield* AdapterRegistry
    const now = yield* Clock.currentTimeMillis
    const stamp = runStamp(now)
    const createdAt = new Date(now).toISOString()
    const results: ConfigResult[] = []
    const micro: MicroBench[] = []
    const microDone = new Map<string, MicroBench>()
    let gpu: string | undefined
    for (const [i, config] of configs.entries()) {
      const runId = `bench-${sweep.name}-${config.id}-${stamp}`
      const progress = options.hooks?.onConfigStart?.(i, configs.length, config)
      const adapter = registry.layer(config.target.adapter)
      const { summary, result, info } = yield* runConfig(loaded, config, runId, {
        checkpointDir: options.checkpointDir,
        onProgress: progress?.update,
      }).pipe(Effect.ensuring(Effect.sync(() => progress?.done())))
      if (config.target.adapter === "tfjs" && config.target.backend === "webgpu") gpu ??= info.device
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
      if (options.hooks?.onConfigDone) {
        const elapsedMs = (yield* Clock.currentTimeMillis) - now
        yield* options.hooks.onConfigDone({
          index: i,
          count: configs.length,
          elapsedMs,
          config,
          summary,
          result,
        })
      }
    }
    const machine = currentMachine()
    const sweepResults: SweepResults = {
      schemaVersion: RESULTS_SCHEMA_VERSION,
      name: sweep.name,
      machine: gpu ? { ...machine, gpu } : machine,
      createdAt,
      configs: results,
    }
    const resultsPath = join(options.outDir, "results.json")
    const microPath = join(options.outDir, "micro.json")
    yield* writeJsonFile(resultsPath, encodeSweepResults(sweepResults))
    yield* writeJsonFile(microPath, {
      name: sweep.name,
      createdAt,
      note: "tinybench 6 single-step tasks per target and batch size; latency in ms, tinybench's Statistics (samples omitted); each sample is the adapter's own step duration (overriddenDuration), on a session without profiling",
      benches: micro,
    })
    const report = yield* writeReport(options.outDir, sweepResults, benchNotes(sweep, results, micro))
    return {
      results: sweepResults,
      micro,
      files: { results: resultsPath, micro: microPath, markdown: report.markdownPath, html: report.htmlPath },
    } satisfies SweepOutput
  })

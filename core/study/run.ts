/**
 * Running a study: every configuration as a recorded run (so `show`, `diff` and `replay` work on
 * it), read back into a RunResult; results.json, report.md and report.html written. A study is
 * also a sweep (`studyAsSweep`): its configurations are BenchConfigs, so sweep workers on a
 * PostgreSQL store run them through the sweep queue (`interleave study STUDY --worker`), and
 * `interleave study STUDY --from-store` reports the runs they finished.
 */
import { dirname, join, resolve } from "node:path"
import { Clock, Effect, Either, Exit, Fiber, Layer, Stream } from "effect"
import { sweepIdentity } from "../bench/sweep-key.ts"
import { type LoadedSweep, resolveTargetPaths } from "../bench/sweep-run.ts"
import { InputError, readTextFile, writeJsonFile } from "../common/index.ts"
import { SweepQueue } from "../queue/index.ts"
import {
  AdapterRegistry,
  type Progress,
  readRunEvents,
  runIdFrom,
  StepFailure,
  startRun,
  TrainingAdapter,
  type TrainingSession,
} from "../run/index.ts"
import { loadScenario, type ScheduleSpec } from "../schedule/index.ts"
import { type StudyReportInput, writeStudyReport } from "./report.ts"
import { type EvalPoint, memorySwing, type RunResult, type StepRecord, settingsOf } from "./results.ts"
import { type DecodedStudy, expandStudy, parseStudy, type StudyConfig, studyAsSweep } from "./study-file.ts"

export interface LoadedStudy {
  readonly file: string
  readonly study: DecodedStudy
  readonly base: ScheduleSpec
  readonly configs: ReadonlyArray<StudyConfig>
  /** The same configurations as a sweep, for the sweep queue and its workers. */
  readonly sweep: LoadedSweep
}

/** Reads a study file and its base scenario and expands it into configurations. */
export const loadStudy = (file: string) =>
  Effect.gen(function* () {
    const text = yield* readTextFile(file, "study file")
    const decoded = parseStudy(text, file)
    if (Either.isLeft(decoded)) return yield* new InputError({ message: decoded.left.message })
    // Profile paths are relative to the study file.
    const study = { ...decoded.right, target: resolveTargetPaths(decoded.right.target, file) }
    const base = yield* loadScenario(resolve(dirname(file), study.file.base)).pipe(
      Effect.mapError((e) => new InputError({ message: `${file}: base: ${e.message}` })),
    )
    const expanded = expandStudy(study, base, file)
    if (Either.isLeft(expanded)) return yield* new InputError({ message: expanded.left.message })
    const configs = expanded.right
    const sweep: LoadedSweep = { file, sweep: studyAsSweep(study), configs }
    return { file, study, base, configs, sweep } satisfies LoadedStudy
  })

/** Reads a configuration's recorded run back into a RunResult. */
export const readStudyRun = (config: StudyConfig, runId: string) =>
  Effect.gen(function* () {
    const steps: StepRecord[] = []
    const evals: EvalPoint[] = []
    let samples = 0
    let ms = 0
    let status = "running"
    let stopped: string | undefined
    let adapter = config.target.adapter as string
    let simulated = false
    let metric: string | undefined
    let chance: number | undefined
    let startedAt: number | undefined
    let endedAt: number | undefined
    yield* readRunEvents(runId).pipe(
      Stream.runForEach((e) =>
        Effect.sync(() => {
          switch (e._tag) {
            case "RunStarted":
              adapter = e.adapter.kind
              simulated = e.adapter.kind === "sim"
              startedAt = e.startedAt
              break
            case "StepCompleted":
              samples += e.samples
              ms += e.durationMs
              steps.push({
                step: e.step,
                durationMs: e.durationMs,
                samples: e.samples,
                memory: e.memory as StepRecord["memory"],
              })
              break
            case "EvalCompleted":
              metric = e.metric
              chance = e.chance
              evals.push({
                step: e.step,
                samples,
                seconds: ms / 1000,
                visual: e.values.visual,
                text: e.values.text,
              })
              break
            case "RunCompleted":
              status = "completed"
              endedAt = e.completedAt
              break
            case "RunAborted":
              status = "aborted"
              stopped = e.reason
              endedAt = e.abortedAt
              break
            case "RunInterrupted":
              status = "interrupted"
              stopped = e.reason
              endedAt = e.interruptedAt
              break
          }
        }),
      ),
    )
    const mem = memorySwing(steps)
    const last = evals[evals.length - 1]
    return {
      id: config.id,
      label: config.label,
      setting: config.setting,
      ratio: config.ratio,
      lrFactor: config.lrFactor,
      warmup: config.warmup,
      seed: config.seed,
      runId,
      status,
      stopped,
      adapter,
      simulated,
      metric,
      chance,
      steps: steps.length,
      samples,
      stepSeconds: ms / 1000,
      wallSeconds:
        startedAt !== undefined && endedAt !== undefined ? (endedAt - startedAt) / 1000 : undefined,
      samplesPerSec: ms > 0 ? samples / (ms / 1000) : undefined,
      memoryFigure: mem?.figure,
      memorySwingBytes: mem?.swing,
      memoryMaxBytes: mem?.max,
      evals,
      final: last ? { visual: last.visual, text: last.text } : undefined,
    } satisfies RunResult
  })

/** Stops a session once its step times add up to `seconds` (see `runStudyConfig`). */
const timeBudgetLayer = (
  inner: Layer.Layer<TrainingAdapter, unknown>,
  seconds: number,
  reached: { step: number | undefined },
) =>
  Layer.effect(
    TrainingAdapter,
    Effect.map(TrainingAdapter, (a) => ({
      ...a,
      open: (o: Parameters<typeof a.open>[0]) =>
        Effect.map(a.open(o), (s): TrainingSession => {
          let totalMs = 0
          const count = (r: { durationMs: number }, step: number) => {
            totalMs += r.durationMs
            if (totalMs >= seconds * 1000) reached.step = step
          }
          return {
            ...s,
            stepSync: undefined,
            step: (plan) => {
              if (reached.step !== undefined) return Effect.interrupt
              if (s.stepSync) {
                const r = s.stepSync(plan)
                if (r instanceof StepFailure) return Effect.fail(r)
                count(r, plan.step)
                return Effect.succeed(r)
              }
              return Effect.tap(s.step(plan), (r) => Effect.sync(() => count(r, plan.step)))
            },
          }
        }),
    })),
  ).pipe(Layer.provide(inner))

export interface StudyHooks {
  readonly onConfigStart?: (
    index: number,
    count: number,
    config: StudyConfig,
  ) => { readonly update: (p: Progress) => void; readonly done: () => void }
  readonly onConfigDone?: (index: number, count: number, result: RunResult) => Effect.Effect<void>
}

/** `20250101-120000-3fa2`. */
const stampOf = (now: number): string => {
  const d = new Date(now)
  const p = (n: number) => String(n).padStart(2, "0")
  const rand = Math.floor(Math.random() * 0x10000)
    .toString(16)
    .padStart(4, "0")
  return `${d.getUTCFullYear()}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}-${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}-${rand}`
}

/** One configuration as the recorded run `runId`; a time budget stops it (recorded as interrupted). */
export const runStudyConfig = (
  loaded: LoadedStudy,
  config: StudyConfig,
  runId: string,
  options: { readonly checkpointDir: string; readonly onProgress?: ((p: Progress) => void) | undefined },
) =>
  Effect.gen(function* () {
    const registry = yield* AdapterRegistry
    const seconds = loaded.study.file.budget.seconds
    const reached: { step: number | undefined } = { step: undefined }
    const inner = registry.layer(config.target.adapter)
    const layer = seconds === undefined ? inner : timeBudgetLayer(inner, seconds, reached)
    const fiber = yield* Effect.fork(
      startRun(
        {
          runId,
          spec: config.spec,
          source: `${loaded.file} (${config.label})`,
          adapterOptions: config.adapterOptions,
        },
        {
          evalEvery: loaded.study.file.evalEvery,
          checkpointEvery: 0,
          checkpointDir: options.checkpointDir,
          onProgress: options.onProgress,
          interruptReason: () =>
            reached.step !== undefined
              ? `study time budget reached: ${seconds} s of step time after step ${reached.step}`
              : "interrupted",
        },
      ).pipe(Effect.provide(layer as Layer.Layer<TrainingAdapter>)),
    )
    const exit = yield* Fiber.await(fiber)
    if (Exit.isFailure(exit) && !(reached.step !== undefined && Exit.isInterrupted(exit)))
      return yield* Effect.failCause(exit.cause)
    return yield* readStudyRun(config, runId)
  })

export interface StudyOutput {
  readonly runs: ReadonlyArray<RunResult>
  readonly files: { readonly results: string; readonly markdown: string; readonly html: string }
}

/** Writes results.json, report.md and report.html for the runs of a study. */
export const writeStudyOutputs = (
  loaded: LoadedStudy,
  runs: ReadonlyArray<RunResult>,
  outDir: string,
  notes: ReadonlyArray<string> = [],
) =>
  Effect.gen(function* () {
    const settings = settingsOf(runs)
    const createdAt = new Date(yield* Clock.currentTimeMillis).toISOString()
    const input: StudyReportInput = { loaded, runs, settings, createdAt, notes }
    const results = join(outDir, "results.json")
    yield* writeJsonFile(results, {
      study: loaded.study.file.name,
      file: loaded.file,
      createdAt,
      target: loaded.study.target,
      budget: loaded.study.file.budget,
      evalEvery: loaded.study.file.evalEvery,
      runs,
      settings: settings.map((s) => ({ ...s, runs: s.runs.map((r) => r.runId) })),
    })
    const report = yield* writeStudyReport(outDir, input)
    return { runs, files: { results, ...report } } satisfies StudyOutput
  })

/** Runs every configuration here, one after another, then writes the outputs. */
export const runStudy = (
  loaded: LoadedStudy,
  options: { readonly outDir: string; readonly checkpointDir: string; readonly hooks?: StudyHooks },
) =>
  Effect.gen(function* () {
    const stamp = stampOf(yield* Clock.currentTimeMillis)
    const runs: RunResult[] = []
    const n = loaded.configs.length
    for (const [i, config] of loaded.configs.entries()) {
      const runId = runIdFrom(`study-${loaded.study.file.name}`, `${config.label}-${stamp}`)
      const progress = options.hooks?.onConfigStart?.(i, n, config)
      const r = yield* runStudyConfig(loaded, config, runId, {
        checkpointDir: options.checkpointDir,
        onProgress: progress?.update,
      }).pipe(Effect.ensuring(Effect.sync(() => progress?.done())))
      runs.push(r)
      if (options.hooks?.onConfigDone) yield* options.hooks.onConfigDone(i, n, r)
    }
    return yield* writeStudyOutputs(loaded, runs, options.outDir)
  })

/**
 * The runs sweep workers finished for this study (`--worker` on a PostgreSQL store), read back:
 * the finishing attempt of each configuration; `missing` lists those without one.
 */
export const studyFromStore = (loaded: LoadedStudy, outDir: string) =>
  Effect.gen(function* () {
    const queue = yield* SweepQueue
    const identity = yield* sweepIdentity(loaded.sweep)
    const status = yield* queue.list(identity.key)
    if (!status)
      return yield* new InputError({
        message: `the store holds no study ${identity.key} (run workers first: interleave study ${loaded.file} --store URL --worker)`,
      })
    const runs: RunResult[] = []
    const missing: string[] = []
    for (const config of loaded.configs) {
      const row = status.configs.find((c) => c.configId === config.id)
      if (!row || (row.state !== "completed" && row.state !== "aborted") || row.runId === undefined) {
        missing.push(`${config.id} (${row?.state ?? "not queued"})`)
        continue
      }
      runs.push(yield* readStudyRun(config, row.runId))
    }
    const notes = missing.length > 0 ? [`Not finished yet (left out): ${missing.join(", ")}.`] : []
    const out = yield* writeStudyOutputs(loaded, runs, outDir, notes)
    return { ...out, missing, key: identity.key }
  })

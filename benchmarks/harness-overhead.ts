/**
 * Harness overhead: the same tfjs training steps driven by the full engine (planner, events,
 * SQLite store, projections) against a bare loop that calls the adapter's step directly, in the
 * same process and interleaved block by block, so machine noise hits both sides alike.
 *
 *   node bin/run-ts.mjs benchmarks/harness-overhead.ts      (also part of `npm run bench`)
 *
 * Two measures:
 * - overhead = (engine ms/step - bare ms/step) / bare ms/step, from medians over blocks. A
 *   difference of two noisy wall times: on a loaded machine it moves by more than the harness
 *   costs.
 * - the harness's own time per step, measured directly: for each step, the wall time from its
 *   call to the next step's call (the loop's clock around the whole step) minus the step's own
 *   durationMs. What is left is everything outside the adapter's step: the engine's planning,
 *   events, fold and store appends (or the bare loop's Effect plumbing). Mean, p50 and p99 in
 *   microseconds; machine load barely moves them, since the training step is taken out.
 */
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { pathToFileURL } from "node:url"
import { Effect, Either, Layer } from "effect"
import { TfjsAdapter } from "../adapters/tfjs/index.ts"
import { mean, median, quantile } from "../core/common/index.ts"
import { startRun, TrainingAdapter, type TrainingSession } from "../core/run/index.ts"
import { decodeSpec, makePlanner, type ScheduleSpec } from "../core/schedule/index.ts"
import { EventStore, makeSqliteEventStore } from "../core/store/index.ts"

/** Microseconds per step outside the adapter's step. */
export interface OutsideStepUs {
  readonly mean: number
  readonly p50: number
  readonly p99: number
  /** Steps measured (every block's steps). */
  readonly steps: number
}

export interface HarnessRatioResult {
  readonly ratio: string
  readonly blocks: number
  readonly stepsPerBlock: number
  readonly engineMsPerStep: number
  readonly bareMsPerStep: number
  readonly overhead: number
  /** The engine's time per step outside the adapter's step, measured directly. */
  readonly harnessUsPerStep: OutsideStepUs
  /** The same for the bare loop: what calling a step through Effect costs anyway. */
  readonly bareLoopUsPerStep: OutsideStepUs
}

export interface HarnessResult {
  readonly backend: string
  readonly preset: string
  readonly ratios: ReadonlyArray<HarnessRatioResult>
}

const specFor = (visual: number, text: number, steps: number): ScheduleSpec =>
  Either.getOrThrow(
    decodeSpec({
      name: `harness-${visual}to${text}`,
      seed: 11,
      phases: [{ name: "joint", steps, ratio: { visual, text } }],
      batch: { visual: { size: 8 }, text: { size: 8 } },
      optimizer: { kind: "adamw", lr: 3e-4, groups: [{ name: "backbone" }, { name: "head" }] },
    }),
  )

const options = (backend: string, preset: string) => ({ backend, preset, profileEvery: 0 })

/**
 * Wraps a session so each step records when it was called and its own durationMs; `outside`
 * then gives, per step, (next call - this call) - durationMs, the last step closed by `end`.
 */
const timed = (session: TrainingSession) => {
  const calls: number[] = []
  const durations: number[] = []
  const wrapped: TrainingSession = {
    ...session,
    step: (plan) =>
      Effect.suspend(() => {
        calls.push(performance.now())
        return Effect.map(session.step(plan), (o) => {
          durations.push(o.durationMs)
          return o
        })
      }),
  }
  const outside = (end: number): number[] =>
    calls.map((t, i) => ((calls[i + 1] ?? end) - t - durations[i]!) * 1000)
  return { session: wrapped, outside }
}

const summary = (us: ReadonlyArray<number>): OutsideStepUs => ({
  mean: mean(us),
  p50: quantile(us, 0.5),
  p99: quantile(us, 0.99),
  steps: us.length,
})

export const benchHarnessOverhead = async (
  opts: {
    backend?: string
    preset?: string
    blocks?: number
    stepsPerBlock?: number
    ratios?: ReadonlyArray<[number, number]>
  } = {},
): Promise<HarnessResult> => {
  const backend = opts.backend ?? "wasm"
  const preset = opts.preset ?? "tiny"
  const blocks = opts.blocks ?? Number(process.env.BENCH_HARNESS_BLOCKS ?? 6)
  const perBlock = opts.stepsPerBlock ?? Number(process.env.BENCH_HARNESS_STEPS ?? 45)
  const ratios = opts.ratios ?? [
    [8, 1],
    [1, 1],
  ]
  const dir = mkdtempSync(join(tmpdir(), "interleave-harness-"))
  const results: HarnessRatioResult[] = []
  try {
    for (const [v, t] of ratios) {
      const spec = specFor(v, t, perBlock)
      const planner = makePlanner(spec)
      const plans = Array.from({ length: planner.total }, (_, i) => planner.at(i))
      const engineMs: number[] = []
      const bareMs: number[] = []
      const engineOutside: number[] = []
      const bareOutside: number[] = []
      await Effect.runPromise(
        Effect.scoped(
          Effect.gen(function* () {
            const store = yield* makeSqliteEventStore(join(dir, `runs-${v}-${t}.db`))
            // Sessions are opened outside the timed region on both sides: model init is not harness.
            const open = () => TfjsAdapter.open({ spec, options: options(backend, preset) })
            const warm = yield* open()
            for (const p of plans.slice(0, 9)) yield* warm.step(p)
            for (let b = 0; b < blocks; b++) {
              const engineSession = timed(yield* open())
              const layer = Layer.merge(
                Layer.succeed(EventStore, store),
                Layer.succeed(TrainingAdapter, {
                  kind: "tfjs",
                  open: () => Effect.succeed(engineSession.session),
                }),
              )
              const t0 = performance.now()
              yield* startRun(
                { runId: `engine-${b}`, spec, source: "bench", adapterOptions: options(backend, preset) },
                { evalEvery: 0, checkpointEvery: 0 },
              ).pipe(Effect.provide(layer))
              const t0end = performance.now()
              engineMs.push((t0end - t0) / plans.length)
              engineOutside.push(...engineSession.outside(t0end))

              const bare = timed(yield* open())
              const t1 = performance.now()
              for (const p of plans) yield* bare.session.step(p)
              const t1end = performance.now()
              bareMs.push((t1end - t1) / plans.length)
              bareOutside.push(...bare.outside(t1end))
            }
          }),
        ),
      )
      const e = median(engineMs)
      const bm = median(bareMs)
      results.push({
        ratio: `${v}:${t}`,
        blocks,
        stepsPerBlock: perBlock,
        engineMsPerStep: e,
        bareMsPerStep: bm,
        overhead: (e - bm) / bm,
        harnessUsPerStep: summary(engineOutside),
        bareLoopUsPerStep: summary(bareOutside),
      })
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
  return { backend, preset, ratios: results }
}

/** One line per ratio, in words and units. */
export const describeHarness = (h: HarnessResult): string[] => {
  const f = (x: number, digits = 1) => x.toFixed(digits)
  return h.ratios.map(
    (r) =>
      `harness tfjs ${h.preset}/${h.backend} ratio ${r.ratio} (${r.blocks} blocks x ${r.stepsPerBlock} steps): ` +
      `engine ${f(r.engineMsPerStep, 2)} ms/step vs bare loop ${f(r.bareMsPerStep, 2)} ms/step (medians over blocks), overhead ${f(r.overhead * 100, 2)}%; ` +
      `time outside the adapter's step per step: engine mean ${f(r.harnessUsPerStep.mean)} us, p50 ${f(r.harnessUsPerStep.p50)} us, p99 ${f(r.harnessUsPerStep.p99)} us; ` +
      `bare loop mean ${f(r.bareLoopUsPerStep.mean)} us, p50 ${f(r.bareLoopUsPerStep.p50)} us, p99 ${f(r.bareLoopUsPerStep.p99)} us`,
  )
}

// Run as a script (`node bin/run-ts.mjs benchmarks/harness-overhead.ts`, or under plain tsx).
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const result = await benchHarnessOverhead()
  for (const line of describeHarness(result)) process.stderr.write(`${line}\n`)
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`)
}

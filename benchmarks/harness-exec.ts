/**
 * Harness overhead with a real trainer in a child process: the same PyTorch steps of the reference
 * trainer (tiny preset, batch 8/8, CPU) driven by the engine over the step protocol (`pytorch`
 * adapter, SQLite store, events, projections) against the trainer's own bare Python loop
 * (`--bare-loop`: the same Trainer.step calls, no protocol, no engine), interleaved block by block
 * in one run so that machine noise hits both sides alike. Per ratio (8:1 and 1:1):
 *
 *  - overhead = engine wall ms/step / bare ms/step - 1, the median over blocks of each adjacent
 *    pair's ratio. Engine wall time is startRun's, with the session opened outside the timed
 *    region; bare ms/step is the loop's own per-step Trainer.step time (process start and model
 *    build are left out on both sides). Two processes running the same steps differ by a few
 *    percent on a busy machine, so this comparison is noisy;
 *  - direct overhead = mean harness time per step / the trainer's own mean step time in the same
 *    driven runs: the same question answered without comparing two processes;
 *  - protocol round trip, µs per step: the adapter's step() call (request written -> reply read and
 *    checked) minus the trainer's own step time (durationMs): pipes, JSON both ways, the SDK's
 *    timing, memory sample and checks;
 *  - harness time, µs per step, measured directly: the engine's wall time from one step's start to
 *    the next minus the trainer's own step time (round trip plus events, fold, store appends);
 *    mean, p50, p99;
 *  - interleave's own CPU time per step (process.cpuUsage over the engine run / steps): what the
 *    engine, store and the protocol's Node side cost, unaffected by waiting for a busy CPU;
 *  - whether the engine's losses equal the bare loop's (both runs start from the same seed).
 */
import { spawn } from "node:child_process"
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { pathToFileURL } from "node:url"
import { Effect, Either, Layer, Stream } from "effect"
import { DEFAULT_PYTHON, PytorchAdapter, REFERENCE_TRAINER } from "../adapters/exec/index.ts"
import { benchSpec } from "../core/bench/index.ts"
import { mean, median, packageRoot, quantile } from "../core/common/index.ts"
import { readRunEvents, startRun, TrainingAdapter, type TrainingSession } from "../core/run/index.ts"
import { encodeSpec, loadScenario, type ScheduleSpec } from "../core/schedule/index.ts"
import { EventStore, makeSqliteEventStore } from "../core/store/index.ts"

export interface MicroStats {
  readonly meanUs: number
  readonly p50Us: number
  readonly p99Us: number
}

export interface HarnessExecRatioResult {
  readonly ratio: string
  readonly blocks: number
  readonly stepsPerBlock: number
  /** Engine wall time per step (startRun / steps), median over blocks. */
  readonly engineMsPerStep: number
  /** The bare loop's Trainer.step time per step, median over blocks. */
  readonly bareMsPerStep: number
  /** The trainer's own step time inside the driven runs (the SDK's durationMs), median over blocks. */
  readonly drivenTrainerMsPerStep: number
  readonly overhead: number
  /** Mean harness time per step over the driven trainer's mean step time. */
  readonly directOverhead: number
  readonly roundTrip: MicroStats
  readonly harness: MicroStats
  /** CPU time of the interleave process per step (user + system), µs, median over blocks. */
  readonly engineCpuUsPerStep: number
  readonly lossesIdentical: boolean
}

export interface HarnessExecResult {
  readonly trainer: string
  readonly preset: string
  readonly device: string
  readonly store: string
  readonly batch: { readonly visual: number; readonly text: number }
  readonly ratios: ReadonlyArray<HarnessExecRatioResult>
}

const stats = (us: ReadonlyArray<number>): MicroStats => ({
  meanUs: mean(us),
  p50Us: quantile(us, 0.5),
  p99Us: quantile(us, 0.99),
})

/** The bare loop in its own process: per-step Trainer.step times (ms) and total losses. */
const bareLoop = (python: string, specFile: string, steps: number, out: string) =>
  new Promise<{ ms: number[]; totals: number[] }>((resolve, reject) => {
    const p = spawn(
      python,
      [join(packageRoot, REFERENCE_TRAINER), "--bare-loop", specFile, "--steps", String(steps), "--out", out],
      { stdio: ["ignore", "ignore", "pipe"] },
    )
    let err = ""
    p.stderr.on("data", (d) => {
      err += d
    })
    p.on("error", reject)
    p.on("close", (code) => {
      if (code !== 0)
        return reject(new Error(`bare loop exited with ${code}: ${err.trim().split("\n").at(-1)}`))
      const doc = JSON.parse(readFileSync(out, "utf8")) as {
        rows: Array<{ durationMs: number; total: number }>
      }
      resolve({ ms: doc.rows.map((r) => r.durationMs), totals: doc.rows.map((r) => r.total) })
    })
  })

/** A session that times each step call around the real one. */
const timed = (session: TrainingSession) => {
  const starts: number[] = []
  const roundTrip: number[] = []
  const durations: number[] = []
  const totals: number[] = []
  const wrapped: TrainingSession = {
    ...session,
    step: (plan) =>
      Effect.suspend(() => {
        const t0 = performance.now()
        starts.push(t0)
        return Effect.map(session.step(plan), (o) => {
          roundTrip.push((performance.now() - t0 - o.durationMs) * 1000)
          durations.push(o.durationMs)
          totals.push(o.losses.total ?? Number.NaN)
          return o
        })
      }),
  }
  return { wrapped, starts, roundTrip, durations, totals }
}

export const benchHarnessExec = async (
  opts: {
    python?: string
    blocks?: number
    stepsPerBlock?: number
    ratios?: ReadonlyArray<[number, number]>
    log?: (s: string) => void
  } = {},
): Promise<HarnessExecResult> => {
  const python = opts.python ?? DEFAULT_PYTHON
  const blocks = opts.blocks ?? Number(process.env.BENCH_EXEC_BLOCKS ?? 3)
  const perBlock = opts.stepsPerBlock ?? Number(process.env.BENCH_EXEC_STEPS ?? 90)
  const ratios = opts.ratios ?? [
    [8, 1],
    [1, 1],
  ]
  const log = opts.log ?? (() => {})
  const dir = mkdtempSync(join(tmpdir(), "interleave-harness-exec-"))
  const options = { python, device: "cpu", preset: "tiny" }
  const base = await Effect.runPromise(loadScenario(join(packageRoot, "scenarios", "trex2-joint-8to1.json")))
  const batch = { visual: base.batch.visual.size, text: base.batch.text.size }
  const results: HarnessExecRatioResult[] = []
  try {
    for (const [v, t] of ratios) {
      const spec: ScheduleSpec = Either.getOrThrow(
        benchSpec(base, {
          name: `harness-exec-${v}to${t}`,
          ratio: { visual: v, text: t },
          batch,
          steps: perBlock,
          order: "visual-first",
        }),
      )
      const specFile = join(dir, `spec-${v}-${t}.json`)
      writeFileSync(specFile, JSON.stringify(encodeSpec(spec)))
      const engineMs: number[] = []
      const bareMs: number[] = []
      const drivenMs: number[] = []
      const roundTrip: number[] = []
      const harness: number[] = []
      const pairRatios: number[] = []
      const engineCpu: number[] = []
      let identical = true
      await Effect.runPromise(
        Effect.scoped(
          Effect.gen(function* () {
            const store = yield* makeSqliteEventStore(join(dir, `runs-${v}-${t}.db`))
            for (let b = 0; b < blocks; b++) {
              const engineBlock = Effect.scoped(
                Effect.gen(function* () {
                  // The trainer starts (interpreter, torch import, model) outside the timed region.
                  const session = yield* PytorchAdapter.open({ spec, options })
                  const probe = timed(session)
                  const layer = Layer.merge(
                    Layer.succeed(EventStore, store),
                    Layer.succeed(TrainingAdapter, {
                      kind: "pytorch",
                      open: () => Effect.succeed(probe.wrapped),
                    }),
                  )
                  const c0 = process.cpuUsage()
                  const t0 = performance.now()
                  yield* startRun(
                    { runId: `engine-${v}-${t}-${b}`, spec, source: "bench", adapterOptions: options },
                    { evalEvery: 0, checkpointEvery: 0 },
                  ).pipe(Effect.provide(layer))
                  const t1 = performance.now()
                  const cpu = process.cpuUsage(c0)
                  engineCpu.push((cpu.user + cpu.system) / perBlock)
                  engineMs.push((t1 - t0) / perBlock)
                  drivenMs.push(mean(probe.durations))
                  roundTrip.push(...probe.roundTrip)
                  for (let i = 0; i + 1 < probe.starts.length; i++)
                    harness.push((probe.starts[i + 1]! - probe.starts[i]! - probe.durations[i]!) * 1000)
                  // Every step's losses were recorded: read them back from the store.
                  const recorded = yield* Stream.runCollect(
                    readRunEvents(`engine-${v}-${t}-${b}`).pipe(Stream.provideService(EventStore, store)),
                  )
                  const steps = Array.from(recorded).filter((e) => e._tag === "StepCompleted")
                  if (steps.length !== perBlock)
                    throw new Error(`engine block recorded ${steps.length} steps`)
                  return probe.totals
                }),
              )
              const bareBlock = Effect.promise(() =>
                bareLoop(python, specFile, perBlock, join(dir, "bare.json")),
              )
              // Alternate which side goes first, so that a drift in machine load cancels out.
              let engineTotals: number[] = []
              let bare: { ms: number[]; totals: number[] }
              if (b % 2 === 0) {
                engineTotals = yield* engineBlock
                bare = yield* bareBlock
              } else {
                bare = yield* bareBlock
                engineTotals = yield* engineBlock
              }
              bareMs.push(mean(bare.ms))
              pairRatios.push(engineMs.at(-1)! / bareMs.at(-1)!)
              identical &&= bare.totals.every((x, i) => x === engineTotals[i])
              log(
                `  harness-exec ${v}:${t} block ${b + 1}/${blocks}: engine ${engineMs.at(-1)!.toFixed(2)} ms/step, bare ${bareMs.at(-1)!.toFixed(2)} ms/step`,
              )
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
        drivenTrainerMsPerStep: median(drivenMs),
        overhead: median(pairRatios) - 1,
        directOverhead: mean(harness) / 1000 / mean(drivenMs),
        roundTrip: stats(roundTrip),
        harness: stats(harness),
        engineCpuUsPerStep: median(engineCpu),
        lossesIdentical: identical,
      })
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
  return {
    trainer: "interleave-reference-torch (python/interleave_reference_trainer.py), 1 torch thread",
    preset: "tiny",
    device: "cpu",
    store: "sqlite",
    batch,
    ratios: results,
  }
}

/** One line per ratio, every number with its unit. */
export const describeHarnessExec = (h: HarnessExecResult): string[] => {
  const f = (x: number, digits = 1) => x.toFixed(digits)
  return h.ratios.map(
    (r) =>
      `harness pytorch ${h.preset}/${h.device} ratio ${r.ratio} (${r.blocks} blocks x ${r.stepsPerBlock} steps, ${h.store} store): ` +
      `engine ${f(r.engineMsPerStep, 2)} ms/step vs the trainer's bare Python loop ${f(r.bareMsPerStep, 2)} ms/step: overhead ${f(r.overhead * 100, 2)}% (median of block pairs; target <= 1% at 8:1), ` +
      `directly ${f(r.directOverhead * 100, 2)}% (harness time / the trainer's own ${f(r.drivenTrainerMsPerStep, 2)} ms/step); ` +
      `protocol round trip per step mean ${f(r.roundTrip.meanUs)} us, p50 ${f(r.roundTrip.p50Us)} us, p99 ${f(r.roundTrip.p99Us)} us; ` +
      `harness time per step (engine wall minus the trainer's step time) mean ${f(r.harness.meanUs)} us, p50 ${f(r.harness.p50Us)} us, p99 ${f(r.harness.p99Us)} us; ` +
      `interleave's CPU time ${f(r.engineCpuUsPerStep)} us per step; ` +
      `losses ${r.lossesIdentical ? "identical to" : "DIFFERENT from"} the bare loop's`,
  )
}

// Run as a script (`node bin/run-ts.mjs benchmarks/harness-exec.ts`).
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const result = await benchHarnessExec({ log: (s) => process.stderr.write(`${s}\n`) })
  for (const line of describeHarnessExec(result)) process.stderr.write(`${line}\n`)
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`)
}

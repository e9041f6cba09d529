/**
 * Harness overhead: the same tfjs training steps driven by the full engine (planner, events,
 * SQLite store, projections) against a bare loop that calls the adapter's step directly, in the
 * same process and interleaved block by block, so machine noise hits both sides alike.
 *
 * overhead = (engine ms/step - bare ms/step) / bare ms/step, from medians over blocks.
 */
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect, Either, Layer } from "effect"
import { TfjsAdapter } from "../adapters/tfjs/index.ts"
import { median } from "../core/common/index.ts"
import { startRun, TrainingAdapter } from "../core/run/index.ts"
import { decodeSpec, makePlanner, type ScheduleSpec } from "../core/schedule/index.ts"
import { EventStore, makeSqliteEventStore } from "../core/store/index.ts"

export interface HarnessRatioResult {
  readonly ratio: string
  readonly blocks: number
  readonly stepsPerBlock: number
  readonly engineMsPerStep: number
  readonly bareMsPerStep: number
  readonly overhead: number
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
      await Effect.runPromise(
        Effect.scoped(
          Effect.gen(function* () {
            const store = yield* makeSqliteEventStore(join(dir, `runs-${v}-${t}.db`))
            // Sessions are opened outside the timed region on both sides: model init is not harness.
            const open = () => TfjsAdapter.open({ spec, options: options(backend, preset) })
            const warm = yield* open()
            for (const p of plans.slice(0, 9)) yield* warm.step(p)
            for (let b = 0; b < blocks; b++) {
              const engineSession = yield* open()
              const layer = Layer.merge(
                Layer.succeed(EventStore, store),
                Layer.succeed(TrainingAdapter, { kind: "tfjs", open: () => Effect.succeed(engineSession) }),
              )
              const t0 = performance.now()
              yield* startRun(
                { runId: `engine-${b}`, spec, source: "bench", adapterOptions: options(backend, preset) },
                { evalEvery: 0, checkpointEvery: 0 },
              ).pipe(Effect.provide(layer))
              engineMs.push((performance.now() - t0) / plans.length)

              const bare = yield* open()
              const t1 = performance.now()
              for (const p of plans) yield* bare.step(p)
              bareMs.push((performance.now() - t1) / plans.length)
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
      })
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
  return { backend, preset, ratios: results }
}

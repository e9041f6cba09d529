/**
 * Real training steps of the T-Rex2-like model on a GPU through tfjs's webgpu backend (Dawn).
 *
 *   node bin/run-ts.mjs benchmarks/gpu-webgpu.ts [--presets small,base] [--steps 270] [--batch 32]
 *   ../shared/gpu/pack.sh benchmarks/gpu-webgpu.ts .gpu && sh .gpu/run.sh      (on a bare GPU host)
 *
 * For each preset: an 8:1 joint schedule (visual first), ms per visual and per text step (after a
 * one-cycle warm-up that compiles shaders), memory peak / trough including GPU bytes, final
 * recall. Prints one JSON document naming the device. Without a GPU it exits 1 with the adapter's
 * reason ("no GPU adapter: ...").
 *
 * `--backend wasm --presets tiny --learning` instead runs the learning check of the tiny preset:
 * 450 steps "90 text-only then joint 8:1" and 450 visual-only steps, with periodic evaluation.
 *
 * `--profile-cost` measures what tf.profile (the adapter's `profileEvery`, which gives the in-step
 * memory peak) costs in step time: two sessions of the same joint 8:1 schedule (default 200 steps,
 * batch 8), one profiling every step and one never, stepped alternately so machine load hits both
 * alike; mean ms per visual and per text step of each (first cycle left out), and the in-step peak
 * per modality. `--backend wasm --presets tiny --profile-cost` is the measurement quoted in
 * adapters/tfjs/adapter.ts.
 */
import { Cause, Effect, Either, Layer, Option, Stream } from "effect"
import { listBackends, TfjsAdapter, TfjsAdapterLive } from "../adapters/tfjs/index.ts"
import { buildConfigResult, collectRun } from "../core/bench/index.ts"
import { median } from "../core/common/index.ts"
import { readRunEvents, startRun } from "../core/run/index.ts"
import { decodeSpec, makePlanner, type ScheduleSpec } from "../core/schedule/index.ts"
import { MemoryEventStoreLive } from "../core/store/index.ts"

const arg = (name: string, dflt: string): string => {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : dflt
}
const flag = (name: string): boolean => process.argv.includes(`--${name}`)

const backend = arg("backend", "webgpu")
const presets = arg("presets", flag("learning") ? "tiny" : "small,base").split(",")
const profileCost = flag("profile-cost")
const steps = Number(arg("steps", profileCost ? "200" : "270"))
const batch = Number(arg("batch", flag("learning") || profileCost ? "8" : "32"))
const lr = Number(arg("lr", "1e-3"))

const makeSpec = (name: string, phases: unknown[]): ScheduleSpec =>
  Either.getOrThrow(
    decodeSpec({
      name,
      seed: 1,
      phases,
      batch: { visual: { size: batch }, text: { size: batch } },
      optimizer: {
        kind: "adamw",
        lr,
        weightDecay: 0.01,
        groups: [{ name: "backbone" }, { name: "text-encoder" }, { name: "rest" }],
      },
    }),
  )

const log = (line: string) => process.stderr.write(`${line}\n`)

const runs: Array<{ preset: string; spec: ScheduleSpec; evalEvery: number }> = []
for (const preset of presets) {
  if (flag("learning")) {
    runs.push({
      preset,
      evalEvery: 90,
      spec: makeSpec("trex2-like: 90 text-only then joint 8:1", [
        { name: "text-only", steps: 90, ratio: { visual: 0, text: 1 } },
        { name: "joint", steps: 360, ratio: { visual: 8, text: 1 } },
      ]),
    })
    runs.push({
      preset,
      evalEvery: 90,
      spec: makeSpec("visual-only", [{ name: "visual-only", steps: 450, ratio: { visual: 1, text: 0 } }]),
    })
  } else
    runs.push({
      preset,
      evalEvery: 0,
      spec: makeSpec(`joint 8:1, ${steps} steps`, [{ name: "joint", steps, ratio: { visual: 8, text: 1 } }]),
    })
}

/** One schedule through the engine (memory store): per-modality step time and memory, evaluations. */
const measure = (r: (typeof runs)[number], index: number) =>
  Effect.gen(function* () {
    const runId = `gpu-${index}`
    const t0 = performance.now()
    const summary = yield* startRun(
      {
        runId,
        spec: r.spec,
        source: "benchmarks/gpu-webgpu.ts",
        adapterOptions: { backend, preset: r.preset },
      },
      { evalEvery: r.evalEvery, checkpointEvery: 0 },
    )
    const wallSeconds = (performance.now() - t0) / 1000
    // The first cycle compiles shaders and warms the allocator: left out of the statistics.
    const got = yield* collectRun(runId, 9)
    const result = buildConfigResult(
      {
        id: runId,
        label: r.spec.name,
        ratio: r.spec.phases.at(-1)!.ratio,
        batch: { visual: batch, text: batch },
        adapter: "tfjs",
        backend,
        preset: r.preset,
        hardware: got.info.device,
        runId,
      },
      got.records,
    )
    const evals = yield* readRunEvents(runId).pipe(
      Stream.filter((e) => e._tag === "EvalCompleted"),
      Stream.runCollect,
    )
    return {
      preset: r.preset,
      scenario: r.spec.name,
      status: summary.status,
      wallSeconds,
      memoryMeasure: got.measure,
      latencyMs: result.latency,
      memory: result.memory,
      evals: Array.from(evals),
    }
  }).pipe(Effect.provide(Layer.merge(MemoryEventStoreLive, TfjsAdapterLive)))

const mean = (xs: ReadonlyArray<number>): number => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length)

/** profileEvery 1 against profileEvery 0 on the same plans, stepped alternately. */
const measureProfileCost = (r: (typeof runs)[number]) =>
  Effect.scoped(
    Effect.gen(function* () {
      const planner = makePlanner(r.spec)
      const open = (profileEvery: number) =>
        TfjsAdapter.open({ spec: r.spec, options: { backend, preset: r.preset, profileEvery } })
      const sessions = { never: yield* open(0), every: yield* open(1) }
      const ms = {
        never: { visual: [] as number[], text: [] as number[] },
        every: { visual: [] as number[], text: [] as number[] },
      }
      const peak = { visual: [] as number[], text: [] as number[] }
      for (let i = 0; i < planner.total; i++) {
        const plan = planner.at(i)
        // Alternate which session goes first, so neither always follows the other's work.
        const order = i % 2 === 0 ? (["never", "every"] as const) : (["every", "never"] as const)
        for (const k of order) {
          const o = yield* sessions[k].step(plan)
          if (i < 9) continue
          ms[k][plan.modality].push(o.durationMs)
          if (k === "every" && o.memory.peakBytes !== undefined) peak[plan.modality].push(o.memory.peakBytes)
        }
      }
      const per = (m: "visual" | "text") => ({
        steps: ms.never[m].length,
        meanMsNoProfile: mean(ms.never[m]),
        meanMsProfileEveryStep: mean(ms.every[m]),
        cost: mean(ms.every[m]) / mean(ms.never[m]) - 1,
        p50MsNoProfile: median(ms.never[m]),
        p50MsProfileEveryStep: median(ms.every[m]),
        // Each step against its twin: robust to load that changes during the run.
        medianPairedCost: median(ms.every[m].map((x, i) => x / ms.never[m][i]!)) - 1,
        peakBytes: { min: Math.min(...peak[m]), max: Math.max(...peak[m]) },
      })
      return { preset: r.preset, scenario: r.spec.name, visual: per("visual"), text: per("text") }
    }),
  ).pipe(Effect.provide(TfjsAdapterLive))

const program = Effect.gen(function* () {
  const results = []
  if (profileCost) {
    for (const preset of presets) {
      const r = runs.find((x) => x.preset === preset)!
      log(`${preset} on ${backend}: profile cost, ${r.spec.name}`)
      results.push(yield* measureProfileCost(r))
    }
    return results
  }
  for (const [i, r] of runs.entries()) {
    log(`${r.preset} on ${backend}: ${r.spec.name}`)
    results.push(yield* measure(r, i))
  }
  return results
})

const exit = await Effect.runPromiseExit(program)
if (exit._tag === "Failure") {
  const failure = Cause.failureOption(exit.cause)
  const message = Option.isSome(failure)
    ? String((failure.value as { message?: unknown }).message)
    : Cause.pretty(exit.cause)
  process.stdout.write(`${JSON.stringify({ backend, error: message }, null, 2)}\n`)
  process.exit(1)
}
const device = (await listBackends()).find((b) => b.name === backend)?.device ?? "unknown"
process.stdout.write(
  `${JSON.stringify({ backend, device, node: process.version, batch, lr, results: exit.value }, null, 2)}\n`,
)
// Dawn keeps native handles open; leave explicitly.
process.exit(0)

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
 */
import { Cause, Effect, Either, Layer, Option, Stream } from "effect"
import { listBackends, TfjsAdapterLive } from "../adapters/tfjs/index.ts"
import { buildConfigResult, collectRun } from "../core/bench/index.ts"
import { readRunEvents, startRun } from "../core/run/index.ts"
import { decodeSpec, type ScheduleSpec } from "../core/schedule/index.ts"
import { MemoryEventStoreLive } from "../core/store/index.ts"

const arg = (name: string, dflt: string): string => {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : dflt
}
const flag = (name: string): boolean => process.argv.includes(`--${name}`)

const backend = arg("backend", "webgpu")
const presets = arg("presets", flag("learning") ? "tiny" : "small,base").split(",")
const steps = Number(arg("steps", "270"))
const batch = Number(arg("batch", flag("learning") ? "8" : "32"))
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

const program = Effect.gen(function* () {
  const results = []
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

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
import { Cause, Effect, Either, Option } from "effect"
import { listBackends, type RunSummary, runSchedule } from "../adapters/tfjs/index.ts"
import { decodeSpec, type ScheduleSpec } from "../core/schedule/index.ts"

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

const program = Effect.gen(function* () {
  const results: Array<{ preset: string } & RunSummary> = []
  for (const r of runs) {
    log(`${r.preset} on ${backend}: ${r.spec.name}`)
    const summary = yield* runSchedule({
      spec: r.spec,
      adapterOptions: { backend, preset: r.preset },
      evalEvery: r.evalEvery,
      warmupSteps: 9,
      log,
    })
    results.push({ preset: r.preset, ...summary })
  }
  return results
})

const exit = await Effect.runPromiseExit(program)
if (exit._tag === "Failure") {
  const failure = Cause.failureOption(exit.cause)
  const message = Option.isSome(failure) ? failure.value.message : Cause.pretty(exit.cause)
  process.stdout.write(`${JSON.stringify({ backend, error: message }, null, 2)}\n`)
  process.exit(1)
}
const device = (await listBackends()).find((b) => b.name === backend)?.device ?? "unknown"
process.stdout.write(
  `${JSON.stringify({ backend, device, node: process.version, batch, lr, results: exit.value }, null, 2)}\n`,
)
// Dawn keeps native handles open; leave explicitly.
process.exit(0)

/**
 * Measures the sim's per-step cost: `node bin/run-ts.mjs adapters/sim/step-throughput.ts [steps]`.
 * Prints steps/s for the pure `simOutcome` loop and for `session.step` (Effect per step) over the
 * same plans, precomputed so that the planner's cost is not counted.
 */
import { Effect, Either } from "effect"
import { StepFailure, type StepOutcome } from "../../core/run/index.ts"
import { decodeSpec, makePlanner } from "../../core/schedule/index.ts"
import { SimAdapter } from "./sim.ts"

const steps = Number(process.argv[2] ?? 1_000_000)
const spec = Either.getOrThrow(
  decodeSpec({
    name: "throughput",
    seed: 1,
    phases: [
      { name: "text-only", steps: 1000, ratio: { visual: 0, text: 1 } },
      { name: "joint", steps: Math.max(1, steps - 1000), ratio: { visual: 8, text: 1 } },
    ],
    batch: { visual: { size: 8 }, text: { size: 8 } },
    optimizer: { kind: "adamw", lr: 1e-4, groups: [{ name: "all" }] },
  }),
)
const planner = makePlanner(spec)
const plans = Array.from({ length: planner.total }, (_, i) => planner.at(i))

const main = Effect.scoped(
  Effect.gen(function* () {
    const session = yield* SimAdapter.open({ spec, options: {} })
    const stepSync = session.stepSync!
    const time = (label: string, run: () => number) => {
      const t0 = performance.now()
      const sink = run()
      const s = (performance.now() - t0) / 1e3
      console.log(
        `${label}: ${plans.length} steps in ${s.toFixed(3)} s = ${(plans.length / s).toFixed(0)} steps/s (sink ${sink.toFixed(3)})`,
      )
    }
    for (let rep = 0; rep < 2; rep++) {
      time("stepSync (pure simOutcome)", () => {
        let acc = 0
        for (const p of plans) {
          const r = stepSync(p)
          if (!(r instanceof StepFailure)) acc += (r as StepOutcome).durationMs
        }
        return acc
      })
      time("step + Effect.runSync per step", () => {
        let acc = 0
        for (const p of plans) acc += Effect.runSync(session.step(p)).durationMs
        return acc
      })
    }
  }),
)
Effect.runSync(main)

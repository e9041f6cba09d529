/**
 * tinybench single steps: per target and batch size, a tinybench `Bench` with tasks "visual step"
 * and "text step", each iteration one step on a session of its own (opened for the bench, without
 * profiling), timed by the adapter (`overriddenDuration` = its `durationMs`: wall time of a real
 * step, simulated time in the sim).
 */
import { Data, Effect, Either } from "effect"
import { TrainingAdapter } from "../run/index.ts"
import { makePlanner } from "../schedule/index.ts"
import { type BenchConfig, benchSpec } from "./sweep.ts"

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

export class MicroBenchError extends Data.TaggedError("MicroBenchError")<{ readonly message: string }> {}

export const microBench = (config: BenchConfig, iterations: number) =>
  Effect.scoped(
    Effect.gen(function* () {
      const spec = benchSpec(config.spec, {
        name: `${config.spec.name}-micro`,
        ratio: { visual: 1, text: 1 },
        batch: config.batch,
        steps: 2 * (iterations + 16) + 2,
        order: "visual-first",
      })
      if (Either.isLeft(spec)) return yield* new MicroBenchError({ message: spec.left })
      const planner = makePlanner(spec.right)
      const adapter = yield* TrainingAdapter
      const options =
        config.target.adapter === "tfjs"
          ? { ...config.adapterOptions, profileEvery: 0 }
          : config.adapterOptions
      const session = yield* adapter.open({ spec: spec.right, options })
      const { Bench } = yield* Effect.promise(() => import("tinybench"))
      // 1:1 visual-first: even steps are visual, odd ones text; each task walks its own steps.
      const next = { visual: 0, text: 1 }
      const bench = new Bench({ name: config.id, iterations, time: 0, warmupIterations: 2, warmupTime: 0 })
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
        catch: (e) =>
          new MicroBenchError({
            message: `${config.id}: tinybench: ${e instanceof Error ? e.message : String(e)}`,
          }),
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

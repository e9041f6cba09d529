/**
 * The engine with real training: a run stopped mid-way and resumed (restore the last checkpoint,
 * re-run the steps after it, continue) records the same losses as an uninterrupted run, a NaN
 * loss ends the run with StepFailed + RunAborted, and the alignment weight is recorded with the
 * run and shapes its losses.
 */
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect, Either, Layer, Stream } from "effect"
import { describe, expect, it } from "vitest"
import { TfjsAdapterLive } from "../../adapters/tfjs/adapter.ts"
import { readRunEvents, resumeRun, startRun } from "../../core/run/index.ts"
import { decodeSpec, type ScheduleSpec } from "../../core/schedule/spec.ts"
import { EventStore } from "../../core/store/event-store.ts"
import { makeMemoryEventStore } from "../../core/store/memory.ts"

const spec = (lr = 1e-3): ScheduleSpec =>
  Either.getOrThrow(
    decodeSpec({
      name: "tfjs-engine",
      seed: 4,
      phases: [
        { name: "text-only", steps: 6, ratio: { visual: 0, text: 1 } },
        { name: "joint", steps: 18, ratio: { visual: 8, text: 1 } },
      ],
      batch: { visual: { size: 4, accumulation: 2 }, text: { size: 4 } },
      optimizer: { kind: "adamw", lr, groups: [{ name: "backbone", lrMultiplier: 0.1 }, { name: "head" }] },
    }),
  )

const options = { backend: "wasm", preset: "tiny", profileEvery: 0, lrScale: 1 }
const dir = mkdtempSync(join(tmpdir(), "interleave-tfjs-engine-"))
const engineOpts = { checkpointEvery: 10, evalEvery: 10, checkpointDir: dir }

const world = <A, E>(
  f: Effect.Effect<A, E, EventStore | import("../../core/run/training-adapter.ts").TrainingAdapter>,
) =>
  Effect.runPromise(
    Effect.gen(function* () {
      const store = yield* makeMemoryEventStore()
      return yield* f.pipe(Effect.provide(Layer.merge(Layer.succeed(EventStore, store), TfjsAdapterLive)))
    }) as Effect.Effect<A, E>,
  )

/** Each step's total loss and each evaluation's values: what training produced. */
const losses = (runId: string) =>
  readRunEvents(runId).pipe(
    Stream.filter((e) => e._tag === "StepCompleted" || e._tag === "EvalCompleted"),
    Stream.map((e) =>
      e._tag === "StepCompleted"
        ? [e.step, e.losses.total]
        : e._tag === "EvalCompleted"
          ? [e.step, e.values]
          : [],
    ),
    Stream.runCollect,
    Effect.map((c) => Array.from(c)),
  )

describe("engine + tfjs (wasm, tiny)", () => {
  it("stop at step 15, resume: the same losses and evaluations as an uninterrupted run", async () => {
    const [full, resumed, checkpoints] = await world(
      Effect.gen(function* () {
        const s = spec()
        yield* startRun({ runId: "full", spec: s, source: "t", adapterOptions: options }, engineOpts)
        const first = yield* startRun(
          { runId: "cut", spec: s, source: "t", adapterOptions: options },
          { ...engineOpts, stopAfter: 15 },
        )
        expect(first.status).toBe("stopped")
        const second = yield* resumeRun("cut", engineOpts)
        expect(second.status).toBe("completed")
        const cps = (yield* Stream.runCollect(readRunEvents("cut"))).pipe((c) =>
          Array.from(c).filter((e) => e._tag === "Checkpointed"),
        )
        return [yield* losses("full"), yield* losses("cut"), cps]
      }),
    )
    expect(checkpoints.length).toBeGreaterThan(0)
    expect(resumed).toHaveLength(24 + 3)
    expect(resumed).toEqual(full)
  }, 120_000)

  it("a NaN loss is recorded as StepFailed and the run aborts cleanly", async () => {
    const tags = await world(
      Effect.gen(function* () {
        const r = yield* startRun(
          { runId: "nan", spec: spec(1e30), source: "t", adapterOptions: options },
          engineOpts,
        )
        expect(r.status).toBe("aborted")
        return Array.from(yield* Stream.runCollect(readRunEvents("nan")), (e) =>
          e._tag === "StepFailed" ? `${e._tag}:${e.kind}` : e._tag,
        )
      }),
    )
    expect(tags.at(-2)).toBe("StepFailed:nan-loss")
    expect(tags.at(-1)).toBe("RunAborted")
  }, 120_000)

  it("records alignWeight with the run: 0 leaves the align loss out of every step, 1 adds it to visual steps", async () => {
    const runs = await world(
      Effect.gen(function* () {
        const out: Record<
          string,
          { options: Record<string, unknown>; steps: Array<Record<string, unknown>> }
        > = {}
        for (const w of [0, 1]) {
          const runId = `align-${w}`
          yield* startRun(
            { runId, spec: spec(), source: "t", steps: 16, adapterOptions: { ...options, alignWeight: w } },
            { ...engineOpts, evalEvery: 0, checkpointEvery: 0 },
          )
          const events = Array.from(yield* Stream.runCollect(readRunEvents(runId)))
          const started = events.find((e) => e._tag === "RunStarted")!
          out[runId] = {
            options: started.adapter.options,
            steps: events.flatMap((e) =>
              e._tag === "StepCompleted" ? [{ modality: e.modality, ...e.losses }] : [],
            ),
          }
        }
        return out
      }),
    )
    const off = runs["align-0"]!
    const on = runs["align-1"]!
    expect(off.options.alignWeight).toBe(0)
    expect(on.options.alignWeight).toBe(1)
    // Steps 0-5 are text-only; 6.. the joint phase, whose visual steps follow text steps.
    const visual = (r: typeof on) => r.steps.filter((l) => l.modality === "visual")
    expect(visual(on)).toHaveLength(9)
    for (const l of visual(on)) expect(l.align as number).toBeGreaterThan(0)
    for (const l of off.steps) expect(l).not.toHaveProperty("align")
    for (const l of visual(off)) expect(l.total).toBeCloseTo((l.cls as number) + 10 * (l.box as number), 4)
    // The text-only steps train alike; the first aligned step is where the runs part.
    expect(off.steps.slice(0, 6)).toEqual(on.steps.slice(0, 6))
  }, 120_000)
})

/**
 * The tfjs adapter on real steps (tiny preset, wasm, small batches): no tensor leaks, bit-exact
 * checkpoint/resume, NaN detection, typed unavailability, visual steps heavier than text steps.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as tf from "@tensorflow/tfjs-core"
import { Effect, Either } from "effect"
import { afterAll, describe, expect, it } from "vitest"
import { TfjsAdapter, TfjsAdapterLive } from "../adapters/tfjs/adapter.ts"
import { listBackends, useBackend } from "../adapters/tfjs/backend.ts"
import {
  AdapterUnavailable,
  StepFailure,
  TrainingAdapter,
  type TrainingSession,
} from "../core/run/training-adapter.ts"
import { makePlanner } from "../core/schedule/plan.ts"
import { decodeSpec, type ScheduleSpec } from "../core/schedule/spec.ts"

const dir = mkdtempSync(join(tmpdir(), "interleave-tfjs-"))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

const makeSpec = (over: Record<string, unknown> = {}): ScheduleSpec =>
  Either.getOrThrow(
    decodeSpec({
      name: "tfjs-test",
      seed: 3,
      phases: [
        { name: "text", steps: 4, ratio: { visual: 0, text: 1 } },
        { name: "joint", steps: 196, ratio: { visual: 3, text: 1 } },
      ],
      batch: { visual: { size: 2, accumulation: 2 }, text: { size: 2 } },
      optimizer: {
        kind: "adamw",
        lr: 1e-3,
        weightDecay: 0.01,
        groups: [{ name: "backbone", lrMultiplier: 0.5 }, { name: "text-encoder" }, { name: "rest" }],
      },
      ...over,
    }),
  )

const openOn = (spec: ScheduleSpec, options: Record<string, unknown> = {}) =>
  // lrScale 1: these specs state the lrs they train at.
  TfjsAdapter.open({
    spec,
    options: { backend: "wasm", preset: "tiny", profileEvery: 0, lrScale: 1, ...options },
  })

const open = openOn

/** Runs steps [from, to) and returns one loss component of each (default: the total). */
const run = (session: TrainingSession, spec: ScheduleSpec, from: number, to: number, component = "total") =>
  Effect.gen(function* () {
    const planner = makePlanner(spec)
    const out: number[] = []
    for (let i = from; i < to; i++) out.push((yield* session.step(planner.at(i))).losses[component]!)
    return out
  })

describe("tfjs adapter", () => {
  it("holds the same number of tensors after step 10 and step 200, and frees all on close", async () => {
    const spec = makeSpec()
    await useBackend("wasm")
    const before = tf.memory().numTensors
    const counts = await Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const s = yield* open(spec, { profileEvery: 25 })
          const planner = makePlanner(spec)
          const seen: Record<number, number> = {}
          for (let i = 0; i < 200; i++) {
            const o = yield* s.step(planner.at(i))
            expect(Number.isFinite(o.losses.total)).toBe(true)
            expect(o.memory.allocatedBytes).toBeGreaterThan(0)
            expect(o.memory.peakBytes !== undefined).toBe(i % 25 === 0)
            if (i === 100) yield* s.evaluate!()
            seen[i + 1] = tf.memory().numTensors
          }
          return seen
        }),
      ),
    )
    // Steps 10 and 200 are both right after an update (3:1 with visual accumulation 2).
    expect(counts[10]).toBe(counts[200])
    expect(tf.memory().numTensors).toBe(before)
  })

  it.each([
    "wasm",
    "cpu",
  ])("resumes from a checkpoint bit-for-bit on %s: 60 straight = 30 + checkpoint + restore + 30", async (backend) => {
    const spec = makeSpec()
    const planner = makePlanner(spec)
    const open = (s: ScheduleSpec) => openOn(s, { backend })
    expect(planner.at(29).update).toBe(true)
    expect(planner.at(30).modality).toBe("visual")
    const file = join(dir, `ckpt-${backend}.json`)
    const straight = await Effect.runPromise(
      Effect.scoped(Effect.flatMap(open(spec), (s) => run(s, spec, 0, 60))),
    )
    const first = await Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const s = yield* open(spec)
          const losses = yield* run(s, spec, 0, 30)
          yield* s.checkpoint(file)
          return losses
        }),
      ),
    )
    const second = await Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const s = yield* open(spec)
          yield* s.restore(file)
          return yield* run(s, spec, 30, 60)
        }),
      ),
    )
    expect(first).toEqual(straight.slice(0, 30))
    expect(second).toEqual(straight.slice(30))
    // A fresh session without the checkpoint would not continue the same way.
    const fresh = await Effect.runPromise(
      Effect.scoped(Effect.flatMap(open(spec), (s) => run(s, spec, 30, 31))),
    )
    expect(fresh[0]).not.toBe(straight[30])
  })

  it("fails a diverging step with StepFailure nan-loss and does not apply its update", async () => {
    const spec = makeSpec({
      optimizer: { kind: "adam", lr: 1e30, groups: [{ name: "all" }] },
    })
    const planner = makePlanner(spec)
    const { failure, again, same } = await Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const s = yield* open(spec)
          let at = 0
          const failure = yield* Effect.flip(
            Effect.gen(function* () {
              for (; at < 20; at++) yield* s.step(planner.at(at))
            }),
          )
          // The failed step changed nothing: a checkpoint now, the same step failing again the same
          // way, and a checkpoint after it are identical.
          const a = join(dir, "nan-a.json")
          const b = join(dir, "nan-b.json")
          yield* s.checkpoint(a)
          const again = yield* Effect.flip(s.step(planner.at(at)))
          yield* s.checkpoint(b)
          return { failure, again, same: readFileSync(a, "utf8") === readFileSync(b, "utf8") }
        }),
      ),
    )
    expect(again.message).toBe(failure.message)
    expect(same).toBe(true)
    expect(failure).toBeInstanceOf(StepFailure)
    expect(failure.kind).toBe("nan-loss")
    expect(failure.message).toMatch(/non-finite loss at step \d+/)
  })

  it("refuses unavailable or unknown backends with AdapterUnavailable naming the available ones", async () => {
    const spec = makeSpec()
    const tryOpen = (backend: string) =>
      Effect.runPromise(Effect.scoped(Effect.flip(open(spec, { backend }))))
    const bogus = await tryOpen("quantum")
    expect(bogus).toBeInstanceOf(AdapterUnavailable)
    expect(bogus.message).toMatch(/unknown tfjs backend "quantum"/)
    expect(bogus.message).toMatch(/available here: cpu, wasm/)
    const list = await listBackends()
    expect(list.map((b) => b.name)).toEqual(["cpu", "wasm", "webgpu", "tensorflow"])
    for (const b of list) expect(b.available ? b.device : b.reason).toBeTruthy()
    for (const name of ["webgpu", "tensorflow"]) {
      if (list.find((b) => b.name === name)?.available) continue
      const e = await tryOpen(name)
      expect(e).toBeInstanceOf(AdapterUnavailable)
      expect(e.message).toMatch(new RegExp(`"${name}" is unavailable: .+ Available here: cpu, wasm`))
    }
    const badPreset = await Effect.runPromise(Effect.scoped(Effect.flip(open(spec, { preset: "huge" }))))
    expect(badPreset.message).toMatch(/unknown preset "huge"/)
  })

  it("runs heavier visual steps than text steps (kernels and matmul FLOPs)", async () => {
    const spec = makeSpec({ batch: { visual: { size: 4 }, text: { size: 4 } } })
    const planner = makePlanner(spec)
    const work = await Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const s = yield* open(spec)
          // tf.profile returns the engine's one profile object, reused by the next call: copy out.
          const measure = (i: number) =>
            Effect.promise(async () => {
              const info = await tf.profile(async () => {
                await Effect.runPromise(s.step(planner.at(i)))
                return []
              })
              const matmulFlops = info.kernels
                .filter((k) => k.name === "BatchMatMul")
                .reduce((n, k) => {
                  const a = k.inputShapes[0]!.reduce((x, y) => x * y, 1)
                  const out = k.outputShapes[0]!
                  return n + 2 * a * out[out.length - 1]!
                }, 0)
              return { kernels: info.kernels.length, flops: matmulFlops }
            })
          // Step 3 is text (text-only phase), step 4 the first visual step of the joint phase.
          const text = yield* measure(3)
          const visual = yield* measure(4)
          return {
            kernels: { visual: visual.kernels, text: text.kernels },
            flops: { visual: visual.flops, text: text.flops },
          }
        }),
      ),
    )
    expect(planner.at(3).modality).toBe("text")
    expect(planner.at(4).modality).toBe("visual")
    expect(work.kernels.visual).toBeGreaterThan(work.kernels.text * 1.2)
    expect(work.flops.visual).toBeGreaterThan(work.flops.text * 1.1)
  })

  it("learns: 90 text-only steps lift the text recall well above where it started and above chance", async () => {
    const spec = makeSpec({
      phases: [{ name: "text-only", steps: 90, ratio: { visual: 0, text: 1 } }],
      batch: { visual: { size: 8 }, text: { size: 8 } },
    })
    const { before, after, losses } = await Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const s = yield* open(spec)
          const before = yield* s.evaluate!()
          const losses = yield* run(s, spec, 0, 90, "cls")
          return { before, after: yield* s.evaluate!(), losses }
        }),
      ),
    )
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length
    expect(mean(losses.slice(-10))).toBeLessThan(mean(losses.slice(0, 10)) / 2)
    expect(after.metric).toBe("recall@iou0.5")
    expect(after.chance).toBeCloseTo(1 / 3)
    expect(before.values.text).toBeLessThan(after.chance!)
    expect(after.values.text).toBeGreaterThan(after.chance! + 0.1)
    expect(after.values.text).toBeGreaterThan(before.values.text + 0.25)
  })

  it("describes itself well enough to re-open, through the Layer", async () => {
    const spec = makeSpec()
    const description = await Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const adapter = yield* TrainingAdapter
          const s = yield* adapter.open({ spec, options: { backend: "wasm", preset: "tiny" } })
          expect(s.stateless).toBe(false)
          return s.description
        }),
      ).pipe(Effect.provide(TfjsAdapterLive)),
    )
    expect(description.kind).toBe("tfjs")
    expect(description.options).toMatchObject({ backend: "wasm", preset: "tiny", profileEvery: 25 })
    expect(description.info.backend).toBe("wasm")
    expect(description.info.tfjs).toBe("4.22.0")
    expect(description.info.device).toMatch(/WebAssembly/)
    expect(description.info.groups).toContain("text-encoder=text-encoder")
    const again = await Effect.runPromise(
      Effect.scoped(
        Effect.map(TfjsAdapter.open({ spec, options: description.options }), (s) => s.description),
      ),
    )
    expect(again.options).toEqual(description.options)
  })
})

/**
 * The tfjs adapter on real steps (tiny preset, wasm, small batches): no tensor leaks (evaluate's
 * failure paths included), bit-exact checkpoint/resume, checkpoints refused with a clear message,
 * NaN detection, typed unavailability, weight decay on matrices only, visual steps heavier than
 * text steps, in time and in-step memory. Nothing here depends on what the host has (GPU,
 * tfjs-node): expected backend lists come from listBackends().
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as tf from "@tensorflow/tfjs-core"
import { Effect, Either } from "effect"
import { afterAll, describe, expect, it } from "vitest"
import { TfjsAdapter, TfjsAdapterLive } from "../../adapters/tfjs/adapter.ts"
import { listBackends, useBackend } from "../../adapters/tfjs/backend.ts"
import { PRESETS } from "../../adapters/tfjs/presets.ts"
import { makeTrainer } from "../../adapters/tfjs/trainer.ts"
import {
  AdapterUnavailable,
  StepFailure,
  TrainingAdapter,
  type TrainingSession,
} from "../../core/run/training-adapter.ts"
import { makePlanner } from "../../core/schedule/plan.ts"
import { decodeSpec, type ScheduleSpec } from "../../core/schedule/spec.ts"

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
  it("holds the same number of tensors after step 10 and step 26, and frees all on close", async () => {
    const spec = makeSpec()
    await useBackend("wasm")
    const before = tf.memory().numTensors
    const counts = await Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const s = yield* open(spec, { profileEvery: 12 })
          const planner = makePlanner(spec)
          const seen: Record<number, number> = {}
          for (let i = 0; i < 26; i++) {
            const o = yield* s.step(planner.at(i))
            expect(Number.isFinite(o.losses.total)).toBe(true)
            expect(o.memory.allocatedBytes).toBeGreaterThan(0)
            expect(o.memory.peakBytes !== undefined).toBe(i % 12 === 0)
            if (i === 16) yield* s.evaluate!()
            seen[i + 1] = tf.memory().numTensors
          }
          return seen
        }),
      ),
    )
    // Steps 10 and 26 are both right after an update and 16 steps (two 8-step periods of 3:1 with
    // visual accumulation 2) apart, with an evaluation and a profiled step between them.
    expect(counts[10]).toBe(counts[26])
    expect(tf.memory().numTensors).toBe(before)
  })

  // k ends on a text step's update, so the restored half starts a new visual accumulation group.
  it.each([
    ["wasm", 12],
    ["cpu", 4],
  ] as const)("resumes from a checkpoint bit-for-bit on %s: 2k straight = k + checkpoint + restore + k (k = %i)", async (backend, k) => {
    const spec = makeSpec()
    const planner = makePlanner(spec)
    const open = (s: ScheduleSpec) => openOn(s, { backend })
    expect(planner.at(k - 1).update).toBe(true)
    expect(planner.at(k).modality).toBe("visual")
    const file = join(dir, `ckpt-${backend}.json`)
    const straight = await Effect.runPromise(
      Effect.scoped(Effect.flatMap(open(spec), (s) => run(s, spec, 0, 2 * k))),
    )
    const first = await Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const s = yield* open(spec)
          const losses = yield* run(s, spec, 0, k)
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
          return yield* run(s, spec, k, 2 * k)
        }),
      ),
    )
    expect(first).toEqual(straight.slice(0, k))
    expect(second).toEqual(straight.slice(k))
    // A fresh session without the checkpoint would not continue the same way.
    const fresh = await Effect.runPromise(
      Effect.scoped(Effect.flatMap(open(spec), (s) => run(s, spec, k, k + 1))),
    )
    expect(fresh[0]).not.toBe(straight[k])
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
    const list = await listBackends()
    expect(list.map((b) => b.name)).toEqual(["cpu", "wasm", "webgpu", "tensorflow"])
    for (const b of list) expect(b.available ? b.device : b.reason).toBeTruthy()
    // What this host has, whatever it is: the messages must name exactly that.
    const here = list
      .filter((b) => b.available)
      .map((b) => b.name)
      .join(", ")
    expect(here).toMatch(/^cpu\b/)
    const bogus = await tryOpen("quantum")
    expect(bogus).toBeInstanceOf(AdapterUnavailable)
    expect(bogus.message).toBe(
      `unknown tfjs backend "quantum": known backends are cpu, wasm, webgpu, tensorflow; available here: ${here}`,
    )
    for (const b of list) {
      if (b.available) continue
      const e = await tryOpen(b.name)
      expect(e).toBeInstanceOf(AdapterUnavailable)
      expect(e.message).toBe(`tfjs backend "${b.name}" is unavailable: ${b.reason}. Available here: ${here}`)
    }
    const badPreset = await Effect.runPromise(Effect.scoped(Effect.flip(open(spec, { preset: "huge" }))))
    expect(badPreset.message).toBe(
      'tfjs adapter option preset: must be one of "tiny", "small", "base", got "huge"',
    )
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
    expect(description.options).toEqual({
      backend: "wasm",
      preset: "tiny",
      profileEvery: 1,
      evalBatches: 3,
      lrScale: 10,
      alignWeight: 1,
    })
    expect(description.info.backend).toBe("wasm")
    expect(description.info.alignWeight).toMatch(/^1 \(InfoNCE/)
    // wasm has no GPU pool: the figures it carries are the in-step peak, allocated bytes and RSS.
    expect(description.info.memory).toBe(
      "peakBytes (tf.profile: the most bytes live inside the step, every step); allocatedBytes (tf.memory().numBytes after the step); rssBytes (process resident set size)",
    )
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

  it("records the in-step peak on every step by default, and visual steps peak higher than text steps", async () => {
    const spec = makeSpec({
      phases: [{ name: "joint", steps: 18, ratio: { visual: 8, text: 1 }, order: "text-first" }],
      batch: { visual: { size: 4 }, text: { size: 4 } },
    })
    const planner = makePlanner(spec)
    const peaks = await Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const s = yield* TfjsAdapter.open({
            spec,
            options: { backend: "wasm", preset: "tiny", lrScale: 1 },
          })
          const out = { visual: [] as number[], text: [] as number[] }
          for (let i = 0; i < planner.total; i++) {
            const o = yield* s.step(planner.at(i))
            expect(o.memory.peakBytes).toBeGreaterThanOrEqual(o.memory.allocatedBytes!)
            out[planner.at(i).modality].push(o.memory.peakBytes!)
          }
          return out
        }),
      ),
    )
    expect(peaks.text).toHaveLength(2)
    expect(peaks.visual).toHaveLength(16)
    expect(Math.min(...peaks.visual)).toBeGreaterThan(Math.max(...peaks.text))
  })

  it("applies weight decay to weight matrices only: not to biases, norms, scalars or embeddings", async () => {
    await useBackend("wasm")
    const spec = makeSpec({
      optimizer: { kind: "adamw", lr: 0.1, weightDecay: 0.1, groups: [{ name: "all" }] },
    })
    const t = makeTrainer(spec, PRESETS.tiny, { validationImages: 4 })
    try {
      const before = new Map(t.model.params.map((p) => [p.name, Array.from(p.variable.dataSync())]))
      // Zero gradients: AdamW moves nothing but applies its decoupled decay p <- p (1 - lr wd).
      t.optimizer.accumulate(
        Object.fromEntries(t.model.params.map((p) => [p.variable.name, tf.zerosLike(p.variable)])),
      )
      t.optimizer.apply({ all: 0.1 })
      const decayed: string[] = []
      for (const p of t.model.params) {
        const was = before.get(p.name)!
        const now = Array.from(p.variable.dataSync())
        if (now.some((x, i) => x !== was[i])) {
          decayed.push(p.name)
          now.forEach((x, i) => {
            expect(x).toBeCloseTo(was[i]! * 0.99, 6)
          })
        }
      }
      expect(decayed).not.toContain("backbone/pos")
      expect(decayed).not.toContain("text/tokens")
      // Every decayed parameter is a weight matrix, and every non-zero weight matrix decayed.
      expect(decayed.every((n) => n.endsWith("/w"))).toBe(true)
      const matrices = t.model.params.filter(
        (p) => p.name.endsWith("/w") && before.get(p.name)!.some((x) => x !== 0),
      )
      expect(decayed.sort()).toEqual(matrices.map((p) => p.name).sort())
    } finally {
      t.dispose()
    }
  })

  it("leaves no tensor behind when evaluate fails, in its first pass or its second", async () => {
    const spec = makeSpec()
    const messages = await Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const s = yield* open(spec)
          yield* s.evaluate!()
          // Reads 1-3 fetch each validation chunk's boxes (96 images, chunks of 32); read 4 is the
          // first ranking read, when every chunk's features and both prompt sets are alive.
          const backend = tf.backend() as unknown as { read: (id: object) => Promise<unknown> }
          const read = backend.read
          const out: string[] = []
          for (const failAt of [1, 3, 4, 6]) {
            const before = tf.memory().numTensors
            let calls = 0
            backend.read = function (this: unknown, id: object) {
              if (++calls === failAt) return Promise.reject(new Error(`forced failure of read ${failAt}`))
              return read.call(this, id)
            }
            const e = yield* Effect.flip(s.evaluate!()).pipe(
              Effect.ensuring(
                Effect.sync(() => {
                  backend.read = read
                }),
              ),
            )
            expect(e).toBeInstanceOf(StepFailure)
            out.push(e.message)
            expect(tf.memory().numTensors).toBe(before)
          }
          // And evaluation works again afterwards.
          const ok = yield* s.evaluate!()
          expect(ok.values.text).toBeGreaterThanOrEqual(0)
          return out
        }),
      ),
    )
    expect(messages).toEqual([1, 3, 4, 6].map((n) => `forced failure of read ${n}`))
  })

  it("refuses a checkpoint of another seed or preset, naming the file and both; the session is unchanged", async () => {
    const spec = makeSpec()
    const file = join(dir, "seed3.json")
    await Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const s = yield* open(spec)
          yield* run(s, spec, 0, 10)
          yield* s.checkpoint(file)
        }),
      ),
    )
    const other = makeSpec({ seed: 4 })
    const { failure, after, fresh } = await Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const s = yield* open(other)
          const failure = yield* Effect.flip(s.restore(file))
          const after = yield* run(s, other, 0, 3)
          const f = yield* open(other)
          return { failure, after, fresh: yield* run(f, other, 0, 3) }
        }),
      ),
    )
    expect(failure).toBeInstanceOf(StepFailure)
    expect(failure.kind).toBe("adapter-error")
    expect(failure.message).toBe(
      `checkpoint ${file}: written with seed 3, this session runs seed 4; a checkpoint only continues the run of its own seed`,
    )
    expect(after).toEqual(fresh)
    const preset = await Effect.runPromise(
      Effect.scoped(Effect.flatMap(open(spec, { preset: "small" }), (s) => Effect.flip(s.restore(file)))),
    )
    expect(preset.message).toBe(`checkpoint ${file}: written for preset tiny, this session runs preset small`)
  })

  it("refuses a missing, truncated, foreign or corrupt checkpoint with one line naming the file", async () => {
    const spec = makeSpec()
    const good = join(dir, "good.json")
    await Effect.runPromise(Effect.scoped(Effect.flatMap(open(spec), (s) => s.checkpoint(good))))
    const text = readFileSync(good, "utf8")
    const doc = JSON.parse(text) as { params: Array<{ name: string; data: string }> }
    const variant = (name: string, content: string) => {
      const f = join(dir, name)
      writeFileSync(f, content)
      return f
    }
    const withParam0 = (data: string) =>
      JSON.stringify({ ...doc, params: [{ ...doc.params[0]!, data }, ...doc.params.slice(1)] })
    const p0 = doc.params[0]!.name
    const cases: Array<[string, string]> = [
      [join(dir, "absent.json"), "cannot be read (no such file)"],
      [
        variant("truncated.json", text.slice(0, text.length / 2)),
        "not an interleave-tfjs-checkpoint/1 file: not complete JSON (truncated or corrupt)",
      ],
      [variant("array.json", "[1, 2]"), "not an interleave-tfjs-checkpoint/1 file"],
      [
        variant("torch.json", JSON.stringify({ format: "interleave-torch-checkpoint/1" })),
        'not an interleave-tfjs-checkpoint/1 file (its format is "interleave-torch-checkpoint/1")',
      ],
      [variant("no-seed.json", JSON.stringify({ ...doc, seed: undefined })), "corrupt: seed: is required"],
      [variant("bad-b64.json", withParam0("@@@@")), "corrupt: params[0].data: must be base64 text"],
      [
        variant("short.json", withParam0(Buffer.from(new Float32Array(3).buffer).toString("base64"))),
        `parameter ${p0} holds 3 float32 values, its shape [`,
      ],
      [
        variant("odd.json", withParam0("AAAAAAA=")),
        `parameter ${p0} holds a partial number of float32 values`,
      ],
      [
        variant(
          "renamed.json",
          JSON.stringify({ ...doc, params: [{ ...doc.params[0]!, name: "x/y" }, ...doc.params.slice(1)] }),
        ),
        `its parameters do not match the model (missing ${p0}; unknown x/y)`,
      ],
    ]
    const failures = await Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const s = yield* open(spec)
          const out: StepFailure[] = []
          for (const [f] of cases) out.push(yield* Effect.flip(s.restore(f)))
          return out
        }),
      ),
    )
    failures.forEach((e, i) => {
      const [f, why] = cases[i]!
      expect(e).toBeInstanceOf(StepFailure)
      expect(e.message.startsWith(`checkpoint ${f}: ${why}`), e.message).toBe(true)
      expect(e.message).not.toMatch(/\n|JSON at position|Unexpected token|tensor should have/)
    })
  })
})

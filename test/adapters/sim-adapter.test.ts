import { Effect, Either, Exit, Layer } from "effect"
import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { modalityCosts, stepDurationMs } from "../../adapters/sim/cost-model.ts"
import type { HardwareProfile, ModelProfile } from "../../adapters/sim/profiles.ts"
import { loadHardware, loadModel } from "../../adapters/sim/profiles.ts"
import {
  followsSwitch,
  makeProgressIndex,
  textUpdatesBefore,
  visualUpdatesBefore,
} from "../../adapters/sim/progress.ts"
import { makeSimContext, SimAdapter, SimAdapterLive, simOutcome } from "../../adapters/sim/sim.ts"
import { hash3, noiseAt } from "../../adapters/sim/synthetic-loss.ts"
import {
  AdapterUnavailable,
  StepFailure,
  type StepOutcome,
  TrainingAdapter,
  type TrainingSession,
} from "../../core/run/training-adapter.ts"
import { makePlanner, type StepPlan } from "../../core/schedule/plan.ts"
import { decodeSpec, type ScheduleSpec } from "../../core/schedule/spec.ts"

const spec = (over: Record<string, unknown> = {}): ScheduleSpec =>
  Either.getOrThrow(
    decodeSpec({
      name: "sim-test",
      seed: 42,
      phases: [
        { name: "text-only", steps: 90, ratio: { visual: 0, text: 1 } },
        { name: "joint", steps: 9910, ratio: { visual: 8, text: 1 } },
      ],
      batch: { visual: { size: 8 }, text: { size: 8 } },
      optimizer: { kind: "adamw", lr: 1e-4, groups: [{ name: "all" }] },
      ...over,
    }),
  )

const open = (s: ScheduleSpec, options: Record<string, unknown> = {}): TrainingSession =>
  Effect.runSync(Effect.scoped(SimAdapter.open({ spec: s, options })))

const openFailure = (s: ScheduleSpec, options: Record<string, unknown>): AdapterUnavailable => {
  const exit = Effect.runSyncExit(Effect.scoped(SimAdapter.open({ spec: s, options })))
  if (Exit.isSuccess(exit) || exit.cause._tag !== "Fail") throw new Error("expected AdapterUnavailable")
  expect(exit.cause.error).toBeInstanceOf(AdapterUnavailable)
  return exit.cause.error
}

const runAll = (session: TrainingSession, s: ScheduleSpec): Array<StepOutcome | StepFailure> => {
  const p = makePlanner(s)
  const out: Array<StepOutcome | StepFailure> = []
  for (let i = 0; i < p.total; i++) out.push(session.stepSync!(p.at(i)))
  return out
}

const ok = (r: StepOutcome | StepFailure): StepOutcome => {
  if (r instanceof StepFailure) throw new Error(`unexpected failure: ${r.message}`)
  return r
}

describe("determinism", () => {
  it("same seed: identical outcomes, bit for bit, over a 10k-step plan", () => {
    const s = spec()
    const a = runAll(open(s), s).map(ok)
    const b = runAll(open(s), s).map(ok)
    expect(a).toHaveLength(10_000)
    for (let i = 0; i < a.length; i++) {
      const x = a[i]!
      const y = b[i]!
      expect(Object.is(x.durationMs, y.durationMs)).toBe(true)
      for (const k of Object.keys(x.losses)) expect(Object.is(x.losses[k], y.losses[k])).toBe(true)
    }
    expect(a).toStrictEqual(b)
  })

  it("different seed: different losses, same times and memory", () => {
    const a = runAll(open(spec()), spec()).map(ok)
    const b = runAll(open(spec({ seed: 43 })), spec({ seed: 43 })).map(ok)
    let differ = 0
    for (let i = 0; i < a.length; i++) {
      if (a[i]!.losses.total !== b[i]!.losses.total) differ++
      expect(a[i]!.durationMs).toBe(b[i]!.durationMs)
      expect(a[i]!.memory).toStrictEqual(b[i]!.memory)
    }
    expect(differ).toBeGreaterThan(9_900)
  })

  it("the noise hash is a fixed function (golden values) and roughly uniform", () => {
    expect([hash3(0, 0, 0), hash3(42, 1, 0), hash3(42, 1, 1), hash3(42, 2 ** 33, 0)]).toMatchInlineSnapshot(`
      [
        910788652,
        913645683,
        3273493036,
        4020744897,
      ]
    `)
    let sum = 0
    let below = 0
    for (let i = 0; i < 100_000; i++) {
      const u = noiseAt(7, i, 3)
      if (!(u >= -1 && u < 1)) throw new Error(`noise ${u} out of [-1, 1) at ${i}`)
      sum += u
      if (u < 0) below++
    }
    expect(Math.abs(sum / 100_000)).toBeLessThan(0.01)
    expect(Math.abs(below / 100_000 - 0.5)).toBeLessThan(0.01)
  })
})

describe("random access", () => {
  const s = spec({
    phases: [
      { name: "text-only", steps: 37, ratio: { visual: 0, text: 1 } },
      { name: "joint", steps: 2003, ratio: { visual: 8, text: 1 } },
      { name: "tf", steps: 500, ratio: { visual: 2, text: 3 }, order: "text-first" },
    ],
    batch: { visual: { size: 4, accumulation: 3 }, text: { size: 16, accumulation: 2 } },
  })

  it("the outcome of step i computed alone equals the one of a sequential run", () => {
    const sequential = runAll(open(s), s)
    const planner = makePlanner(s)
    fc.assert(
      fc.property(fc.integer({ min: 0, max: planner.total - 1 }), (i) => {
        // A fresh context each time: nothing can leak from earlier steps.
        const alone = open(s).stepSync!(planner.at(i))
        expect(alone).toStrictEqual(sequential[i])
      }),
      { numRuns: 300 },
    )
  })

  const specs: Array<[string, ScheduleSpec]> = [
    ["three phases with accumulation", s],
    [
      "partial cycles, accumulation larger than a block",
      spec({
        phases: [
          { name: "a", steps: 13, ratio: { visual: 3, text: 2 } },
          { name: "b", steps: 29, ratio: { visual: 5, text: 0 } },
          { name: "c", steps: 31, ratio: { visual: 1, text: 4 }, order: "text-first" },
          { name: "d", steps: 7, ratio: { visual: 0, text: 2 } },
        ],
        batch: { visual: { size: 1, accumulation: 4 }, text: { size: 1, accumulation: 3 } },
      }),
    ],
  ]

  it.each(specs)("closed-form update counts and switches match a walk over the planner (%s)", (_, sp) => {
    const planner = makePlanner(sp)
    const idx = makeProgressIndex(sp)
    let nv = 0
    let nt = 0
    let prev: StepPlan | undefined
    for (let i = 0; i < planner.total; i++) {
      const p = planner.at(i)
      const ph = idx.byName.get(p.phase)!
      expect([visualUpdatesBefore(ph, p.phaseStep), textUpdatesBefore(ph, p.phaseStep)]).toEqual([nv, nt])
      expect(followsSwitch(ph, p.phaseStep, p.modality)).toBe(
        prev !== undefined && prev.modality !== p.modality,
      )
      if (p.update && p.modality === "visual") nv++
      if (p.update && p.modality === "text") nt++
      prev = p
    }
  })
})

describe("cost and memory model", () => {
  it("trex2-tiny (measured): in-step peak higher on visual steps than on text steps, constant within a modality", () => {
    const out = runAll(open(spec(), { model: "trex2-tiny" }), spec()).map(ok)
    const planner = makePlanner(spec())
    const vis = new Set<number>()
    const txt = new Set<number>()
    out.forEach((o, i) => {
      ;(planner.at(i).modality === "visual" ? vis : txt).add(o.memory.peakBytes!)
    })
    expect(vis.size).toBe(1)
    expect(txt.size).toBe(1)
    expect([...vis][0]!).toBeGreaterThan([...txt][0]!)
  })

  it("trex2-tiny: visual steps take longer than text steps at the same batch; updates cost extra", () => {
    const s = spec({ batch: { visual: { size: 8, accumulation: 4 }, text: { size: 8 } } })
    const planner = makePlanner(s)
    const session = open(s, { model: "trex2-tiny" })
    const at = (pred: (p: StepPlan) => boolean) => {
      for (let i = 0; i < planner.total; i++) {
        const p = planner.at(i)
        if (pred(p)) return ok(session.stepSync!(p)).durationMs
      }
      throw new Error("no such step")
    }
    const visualNoUpdate = at((p) => p.modality === "visual" && !p.update)
    const visualUpdate = at((p) => p.modality === "visual" && p.update)
    const text = at((p) => p.modality === "text" && p.phase === "joint")
    expect(visualUpdate).toBeGreaterThan(visualNoUpdate)
    expect(visualUpdate).toBeGreaterThan(text)
  })

  const hw: HardwareProfile = {
    name: "toy",
    description: "toy",
    peakFlops: 1e12,
    memoryBandwidth: 1e11,
    memoryBytes: 1e9,
    kernelOverheadUs: 10,
    efficiency: 0.5,
    allocator: "caching",
  }
  const curve = { components: { l: { initial: 1, final: 0, halfLife: 10 } }, noise: 0, transfer: 0 }
  const model = (visualFlops: number): ModelProfile => ({
    name: "toy",
    description: "toy",
    parameters: { shared: 100_000, vis: 50_000, txt: 100_000 },
    bytesPerParameter: 4,
    optimizerBytesPerParameter: 8,
    flopEfficiency: 1,
    modalities: {
      visual: {
        trains: ["shared", "vis"],
        flopsPerSample: visualFlops,
        fixedFlops: 0,
        activationBytesPerSample: 1e6,
        activationBytesPerSampleSquared: 1e4,
        fixedActivationBytes: 5e4,
        kernelsPerStep: 50,
        updateKernels: 100,
        hostUsPerStep: 0,
        hostUsPerSample: 20,
        switchUs: 30,
        loss: curve,
      },
      text: {
        trains: ["shared", "txt"],
        flopsPerSample: 1e6,
        fixedFlops: 0,
        activationBytesPerSample: 1e5,
        activationBytesPerSampleSquared: 0,
        fixedActivationBytes: 0,
        kernelsPerStep: 20,
        updateKernels: 10,
        hostUsPerStep: 0,
        hostUsPerSample: 0,
        switchUs: 0,
        loss: curve,
      },
    },
  })

  it("time: roofline per term, kernel and host overheads, update of the trained branches only (hand-computed)", () => {
    // weights 250k x 4 = 1e6 B; visual trains 150k params: grads 6e5 B.
    // fixed: traffic (2 x 1e6 + 6e5 + 2 x 5e4) / 5e10 B/s = 0.054 ms > compute 0; + 50 kernels x 10 us = 0.5 ms
    // per sample: traffic 2e6 / 5e10 = 0.04 ms vs compute 1e6 / 5e11 = 0.002 ms; + host 20 us = 0.06 ms
    const memBound = modalityCosts(hw, model(1e6), "visual", 4)
    expect(memBound.time.fixedMs).toBeCloseTo(0.054 + 0.5, 12)
    expect(memBound.time.perSampleMs).toBeCloseTo(0.04 + 0.02, 12)
    expect(memBound.stepMs).toBeCloseTo(0.554 + 4 * 0.06, 12)
    // compute-bound: 1e9 / 5e11 = 2 ms per sample (+ 0.02 host)
    const computeBound = modalityCosts(hw, model(1e9), "visual", 4)
    expect(computeBound.time.perSampleMs).toBeCloseTo(2.02, 12)
    // update: 150k params x (2 x 4 + 4 + 2 x 8) B = 4.2e6 B / 5e10 = 0.084 ms + 100 kernels x 10 us = 1 ms
    expect(computeBound.updateMs).toBeCloseTo(1.084, 12)
    expect(stepDurationMs(computeBound, true, true)).toBeCloseTo(0.554 + 8.08 + 1.084 + 0.03, 12)
    // text trains 200k params: its update moves more bytes but dispatches fewer kernels
    expect(modalityCosts(hw, model(1e6), "text", 4).updateMs).toBeCloseTo(0.112 + 0.1, 12)
  })

  it("memory: gradients only for the trained branches; allocated, in-step peak and reserved (hand-computed)", () => {
    // resident: weights 1e6 + optimizer 250k x 8 = 2e6 -> 3e6 B (every branch is trained by some modality)
    const v = modalityCosts(hw, model(1e6), "visual", 4)
    const t = modalityCosts(hw, model(1e6), "text", 4)
    expect(v.resident.total).toBe(3e6)
    expect(v.gradientBytes).toBe(6e5)
    expect(t.gradientBytes).toBe(8e5)
    // peak = resident + grads + fixed activations + 1e6 x 4 + 1e4 x 16
    expect(v.peakBytes).toBe(3e6 + 6e5 + 5e4 + 4e6 + 1.6e5)
    expect(t.peakBytes).toBe(3e6 + 8e5 + 4e5)

    const s = spec({
      phases: [
        { name: "t", steps: 3, ratio: { visual: 0, text: 1 } },
        { name: "j", steps: 6, ratio: { visual: 2, text: 1 } },
      ],
      batch: { visual: { size: 4, accumulation: 2 }, text: { size: 4 } },
    })
    const ctx = makeSimContext(s, hw, model(1e6))
    const planner = makePlanner(s)
    const mem = (i: number) => ok(simOutcome(ctx, planner.at(i))).memory
    // text steps before any visual one: reserved = the text peak
    expect(mem(0)).toEqual({ allocatedBytes: 3e6, peakBytes: t.peakBytes, reservedBytes: t.peakBytes })
    // step 3: first visual micro-step, its gradient waits (accumulation 2): allocated holds it
    expect(mem(3)).toEqual({ allocatedBytes: 3e6 + 6e5, peakBytes: v.peakBytes, reservedBytes: v.peakBytes })
    expect(mem(4).allocatedBytes).toBe(3e6)
    // the text step after it: the caching allocator keeps the visual high-water mark
    expect(mem(5)).toEqual({ allocatedBytes: 3e6, peakBytes: t.peakBytes, reservedBytes: v.peakBytes })
  })

  it("no reserved figure without a caching allocator", () => {
    const s = spec({ batch: { visual: { size: 4 }, text: { size: 4 } } })
    const ctx = makeSimContext(s, { ...hw, allocator: "none" }, model(1e6))
    expect(Object.keys(ok(simOutcome(ctx, makePlanner(s).at(95))).memory).sort()).toEqual([
      "allocatedBytes",
      "peakBytes",
    ])
  })

  it("a hand-made profile drives simOutcome: loss halves per half-life", () => {
    const s = spec({
      phases: [{ name: "v", steps: 40, ratio: { visual: 1, text: 0 } }],
      batch: { visual: { size: 4 }, text: { size: 1 } },
    })
    const ctx = makeSimContext(s, hw, model(1e9))
    const planner = makePlanner(s)
    const o0 = ok(simOutcome(ctx, planner.at(0)))
    const o10 = ok(simOutcome(ctx, planner.at(10)))
    expect(o0.losses).toEqual({ l: 1, total: 1 })
    expect(o10.losses.l).toBeCloseTo(0.5, 12) // 10 updates before step 10
    expect(o0.samples).toBe(4)
  })

  it("out-of-memory on t4 with a huge visual batch, naming step, batch and device", () => {
    const s = spec({ batch: { visual: { size: 100_000 }, text: { size: 8 } } })
    const session = open(s, { hardware: "t4", model: "trex2-tiny" })
    const planner = makePlanner(s)
    expect(session.stepSync!(planner.at(0))).not.toBeInstanceOf(StepFailure) // text step fits
    const r = session.stepSync!(planner.at(90))
    expect(r).toBeInstanceOf(StepFailure)
    const f = r as StepFailure
    expect(f.kind).toBe("out-of-memory")
    expect(f.message).toMatch(
      /step 90 \(visual, batch 100000\) needs .* at its in-step peak .*t4 has 16\.00 GiB/,
    )
    const exit = Effect.runSyncExit(session.step(planner.at(90)))
    expect(Exit.isFailure(exit)).toBe(true)
    // The same batch fits on a bigger device? No: 100000 MB of activations fit nowhere; a small one fits on t4.
    const small = spec({ batch: { visual: { size: 64 }, text: { size: 8 } } })
    expect(
      open(small, { hardware: "t4", model: "trex2-tiny" }).stepSync!(makePlanner(small).at(90)),
    ).not.toBeInstanceOf(StepFailure)
  })

  it("switch cost lands on the first step after a modality change, and only there", () => {
    const s = spec({ batch: { visual: { size: 2 }, text: { size: 2 } } })
    const ctx = makeSimContext(s, hw, model(1e6))
    const planner = makePlanner(s)
    const d = (i: number) => ok(simOutcome(ctx, planner.at(i))).durationMs
    // step 90 is the first visual step after the text-only phase, 91 the second; 98 is text after visual
    expect(d(90) - d(91)).toBeCloseTo(0.03, 9)
    expect(d(89) - d(88)).toBeCloseTo(0, 9)
    expect(d(99) - d(91)).toBeCloseTo(d(90) - d(91), 9) // visual again after the text step 98
  })
})

describe("losses", () => {
  it("decay with training, per modality; text converges more slowly (trex2-tiny's half-lives)", () => {
    const s = spec()
    const out = runAll(open(s, { model: "trex2-tiny" }), s).map(ok)
    const planner = makePlanner(s)
    const mean = (m: string, from: number, to: number) => {
      let sum = 0
      let n = 0
      for (let i = from; i < to; i++)
        if (planner.at(i).modality === m) {
          sum += out[i]!.losses.total!
          n++
        }
      return sum / n
    }
    expect(mean("visual", 9000, 10_000)).toBeLessThan(mean("visual", 90, 1000) * 0.8)
    expect(mean("text", 5000, 10_000)).toBeLessThan(mean("text", 0, 90) * 0.8)
    for (const o of out) {
      expect(Number.isFinite(o.losses.total)).toBe(true)
      expect(o.losses.total).toBeCloseTo(o.losses.cls! + o.losses.box! + o.losses.align!, 12)
    }
  })
})

describe("the adapter", () => {
  it("records resolved names and hashes; re-opening with them works, a changed hash is refused", () => {
    const s = spec()
    const session = open(s, { hardware: "t4" })
    const d = session.description
    expect(d.kind).toBe("sim")
    expect(d.options).toMatchObject({ hardware: "t4", model: "trex2-swin-t" })
    expect(d.options.hardwareHash).toMatch(/^[0-9a-f]{16}$/)
    expect(d.info.hardwareHash).toBe(d.options.hardwareHash)
    expect(d.info.hardwareFile).toMatch(/scenarios\/hardware\/t4\.json$/)
    const again = open(s, d.options)
    expect(again.description).toStrictEqual(d)
    const e = openFailure(s, { ...d.options, modelHash: "0000000000000000" })
    expect(e.message).toContain("has changed since the run was recorded")
  })

  it("rejects unknown options, bad option types and unknown profiles", () => {
    expect(openFailure(spec(), { hardwre: "t4" }).message).toContain("unknown sim option hardwre")
    expect(openFailure(spec(), { hardware: 4 }).message).toContain("sim option hardware")
    expect(openFailure(spec(), { model: "trex3" }).message).toContain("trex2-tiny")
  })

  it("is stateless; checkpoint and restore are no-ops; step and stepSync agree", () => {
    const s = spec()
    const session = open(s)
    expect(session.stateless).toBe(true)
    Effect.runSync(session.checkpoint("/nonexistent/dir/ckpt"))
    Effect.runSync(session.restore("/nonexistent/dir/ckpt"))
    const p = makePlanner(s).at(500)
    expect(Effect.runSync(session.step(p))).toStrictEqual(session.stepSync!(p))
  })

  it("synthetic evaluate: 0 before training, grows as updates accumulate", () => {
    const s = spec()
    const session = open(s)
    const ev = () => Effect.runSync(session.evaluate!())
    expect(ev().values).toEqual({ visual: 0, text: 0 })
    const planner = makePlanner(s)
    session.stepSync!(planner.at(1000))
    const early = ev()
    session.stepSync!(planner.at(9000))
    const late = ev()
    expect(early.metric).toBe("sim-gap-closed")
    expect(late.values.visual).toBeGreaterThan(early.values.visual)
    expect(late.values.text).toBeGreaterThan(early.values.text)
    expect(late.values.visual).toBeLessThan(1)
  })

  it("SimAdapterLive provides the TrainingAdapter service", () => {
    const kind = Effect.runSync(
      Effect.provide(
        Effect.map(TrainingAdapter, (a) => a.kind),
        SimAdapterLive,
      ),
    )
    expect(kind).toBe("sim")
    expect(Layer.isLayer(SimAdapterLive)).toBe(true)
  })

  it("every bundled hardware x model pair opens and runs a step", () => {
    const s = spec({ batch: { visual: { size: 1 }, text: { size: 1 } } })
    for (const hardware of ["h100-sxm", "a100-40g", "t4", "cpu-2core"])
      for (const model of ["trex2-tiny", "trex2-swin-t"]) {
        const hw = Effect.runSync(loadHardware(hardware))
        const m = Effect.runSync(loadModel(model))
        const o = ok(simOutcome(makeSimContext(s, hw, m), makePlanner(s).at(95)))
        expect(o.durationMs).toBeGreaterThan(0)
      }
  })
})

import { Effect, Either } from "effect"
import { describe, expect, it } from "vitest"
import {
  crossValidate,
  decodeMeasured,
  fitSim,
  leastSquares,
  type MeasuredConfig,
  mape,
  percentError,
  predict,
  type SimFit,
} from "../adapters/sim/fit.ts"
import { loadHardware, loadModel } from "../adapters/sim/profiles.ts"
import { makeSimContext, simOutcome } from "../adapters/sim/sim.ts"
import { noiseAt } from "../adapters/sim/synthetic-loss.ts"
import { StepFailure } from "../core/run/training-adapter.ts"
import { makePlanner } from "../core/schedule/plan.ts"
import { decodeSpec, type ScheduleSpec } from "../core/schedule/spec.ts"

// Known parameters: time_m = a_m + b_m * batch + s_m * f_m ; memory_m = c + d_m * batch
const truth = {
  visual: { a: 12.5, b: 3.25, s: 4 },
  text: { a: 7, b: 1.5, s: 2.5 },
  c: 2.5e9,
  d: { visual: 3e8, text: 2e8 },
}

const switchFrac = (r: { visual: number; text: number }, m: "visual" | "text") =>
  r.visual > 0 && r.text > 0 ? 1 / r[m] : 0

const synth = (
  id: string,
  batch: { visual: number; text: number },
  ratio: { visual: number; text: number },
  noise = 0,
  k = 0,
): MeasuredConfig => {
  const jitter = (j: number) => 1 + noise * noiseAt(99, k, j)
  const t = (m: "visual" | "text") =>
    ratio[m] > 0
      ? (truth[m].a + truth[m].b * batch[m] + truth[m].s * switchFrac(ratio, m)) *
        jitter(m === "visual" ? 0 : 1)
      : undefined
  const mem = (["visual", "text"] as const)
    .filter((m) => ratio[m] > 0)
    .map((m) => truth.c + truth.d[m] * batch[m])
  return {
    id,
    batch,
    ratio,
    meanStepMs: { visual: t("visual"), text: t("text") },
    memory: { peakBytes: Math.max(...mem) * jitter(2), troughBytes: Math.min(...mem) * jitter(3) },
  }
}

const grid = (noise = 0): MeasuredConfig[] => {
  const out: MeasuredConfig[] = []
  let k = 0
  for (const [v, t] of [
    [8, 1],
    [4, 1],
    [2, 2],
    [1, 3],
  ] as const)
    for (const [bv, bt] of [
      [2, 8],
      [4, 4],
      [8, 16],
      [16, 2],
    ] as const)
      out.push(synth(`r${v}:${t}-b${bv}/${bt}`, { visual: bv, text: bt }, { visual: v, text: t }, noise, k++))
  out.push(synth("visual-only", { visual: 6, text: 6 }, { visual: 1, text: 0 }, noise, k++))
  out.push(synth("text-only", { visual: 6, text: 12 }, { visual: 0, text: 1 }, noise, k++))
  return out
}

const fitOk = (configs: ReadonlyArray<MeasuredConfig>): SimFit => Either.getOrThrow(fitSim(configs))
const rel = (x: number, y: number) => Math.abs(x - y) / Math.abs(y)

describe("leastSquares", () => {
  it("solves an exactly determined hand example", () => {
    // y = 2 + 3x through (0,2), (1,5), (2,8)
    const { coef, dropped } = leastSquares(
      [
        [1, 0],
        [1, 1],
        [1, 2],
      ],
      [2, 5, 8],
    )
    expect(coef[0]).toBeCloseTo(2, 12)
    expect(coef[1]).toBeCloseTo(3, 12)
    expect(dropped).toEqual([])
  })

  it("gives the least-squares line for inconsistent data, and drops a collinear column", () => {
    // points (0,0), (1,1), (2,1): slope 0.5, intercept 1/6
    const { coef } = leastSquares(
      [
        [1, 0],
        [1, 1],
        [1, 2],
      ],
      [0, 1, 1],
    )
    expect(coef[0]).toBeCloseTo(1 / 6, 12)
    expect(coef[1]).toBeCloseTo(0.5, 12)
    const collinear = leastSquares(
      [
        [1, 2],
        [1, 2],
      ],
      [3, 5],
    )
    expect(collinear.dropped).toEqual([1])
    expect(collinear.coef[0]).toBeCloseTo(4, 12)
    expect(collinear.coef[1]).toBe(0)
  })
})

describe("fitSim", () => {
  it("recovers known parameters exactly from noise-free data", () => {
    const f = fitOk(grid())
    for (const m of ["visual", "text"] as const) {
      expect(rel(f.time[m]!.fixedMs, truth[m].a)).toBeLessThan(1e-9)
      expect(rel(f.time[m]!.perSampleMs, truth[m].b)).toBeLessThan(1e-9)
      expect(rel(f.time[m]!.switchMs, truth[m].s)).toBeLessThan(1e-9)
      expect(f.time[m]!.switchFitted).toBe(true)
      expect(rel(f.memory.activationBytesPerSample[m], truth.d[m])).toBeLessThan(1e-9)
    }
    expect(rel(f.memory.residentBytes, truth.c)).toBeLessThan(1e-9)
    expect(f.warnings).toEqual([])
  })

  it("recovers them approximately from data with 1% noise", () => {
    const f = fitOk(grid(0.01))
    for (const m of ["visual", "text"] as const) {
      expect(rel(f.time[m]!.perSampleMs, truth[m].b)).toBeLessThan(0.05)
      expect(rel(f.time[m]!.fixedMs, truth[m].a)).toBeLessThan(0.1)
      expect(rel(f.memory.activationBytesPerSample[m], truth.d[m])).toBeLessThan(0.1)
    }
    expect(rel(f.memory.residentBytes, truth.c)).toBeLessThan(0.05)
    // ... and is not exact: the noise is really there.
    expect(rel(f.time.visual!.perSampleMs, truth.visual.b)).toBeGreaterThan(1e-6)
  })

  it("assigns the peak to text when text steps are the bigger ones", () => {
    const configs = grid().filter((c) => c.batch.text >= 8 || c.ratio.visual === 0 || c.ratio.text === 0)
    // in these, 2e8 * 16 > 3e8 * 8 and 2e8 * 8 > 3e8 * 2: text peaks in some configs
    const f = fitOk(configs)
    expect(rel(f.memory.activationBytesPerSample.text, truth.d.text)).toBeLessThan(1e-9)
    expect(rel(f.memory.activationBytesPerSample.visual, truth.d.visual)).toBeLessThan(1e-9)
  })

  it("without ratio variation, drops the switch term and warns about a single batch size", () => {
    const configs = [2, 4, 8].map((b) => synth(`b${b}`, { visual: b, text: 4 }, { visual: 8, text: 1 }))
    const f = fitOk(configs)
    expect(f.time.visual!.switchFitted).toBe(false)
    expect(f.time.visual!.switchMs).toBe(0)
    // the switch cost is folded into the fixed cost, so predictions at that ratio stay exact
    expect(rel(f.time.visual!.fixedMs, truth.visual.a + truth.visual.s / 8)).toBeLessThan(1e-9)
    expect(f.warnings.some((w) => w.includes("text step time") && w.includes("one text batch size"))).toBe(
      true,
    )
  })

  it("rejects empty input, duplicate ids and non-finite numbers", () => {
    expect(Either.isLeft(fitSim([]))).toBe(true)
    const a = synth("a", { visual: 1, text: 1 }, { visual: 1, text: 1 })
    expect(Either.getLeft(fitSim([a, a])).pipe((e) => e._tag === "Some" && e.value.message)).toContain(
      "duplicate",
    )
    const bad = { ...a, id: "b", memory: { peakBytes: Number.NaN, troughBytes: 1 } }
    expect(Either.isLeft(fitSim([a, bad]))).toBe(true)
  })
})

describe("predict", () => {
  it("matches the true model on a config it was not fitted on", () => {
    const f = fitOk(grid())
    const cfg = { batch: { visual: 12, text: 5 }, ratio: { visual: 3, text: 2 } }
    const p = predict(f, cfg)
    const expected = synth("x", cfg.batch, cfg.ratio)
    expect(rel(p.meanStepMs.visual!, expected.meanStepMs.visual!)).toBeLessThan(1e-9)
    expect(rel(p.meanStepMs.text!, expected.meanStepMs.text!)).toBeLessThan(1e-9)
    expect(rel(p.memory.peakBytes, expected.memory.peakBytes)).toBeLessThan(1e-9)
    expect(rel(p.memory.troughBytes, expected.memory.troughBytes)).toBeLessThan(1e-9)
    const all = (3 * expected.meanStepMs.visual! + 2 * expected.meanStepMs.text!) / 5
    expect(rel(p.meanStepMsAll!, all)).toBeLessThan(1e-9)
  })

  it("the fitted profiles make the sim reproduce predict", () => {
    const f = fitOk(grid())
    const spec: ScheduleSpec = Either.getOrThrow(
      decodeSpec({
        name: "fitted",
        phases: [{ name: "joint", steps: 30, ratio: { visual: 4, text: 1 } }],
        batch: { visual: { size: 6 }, text: { size: 3 } },
        optimizer: { kind: "adamw", lr: 1e-4, groups: [{ name: "all" }] },
      }),
    )
    const ctx = makeSimContext(spec, f.hardware, f.model)
    const planner = makePlanner(spec)
    const d = (i: number) => {
      const o = simOutcome(ctx, planner.at(i))
      if (o instanceof StepFailure) throw o
      return o
    }
    const steadyVisual = (d(5).durationMs + d(6).durationMs + d(7).durationMs + d(8).durationMs) / 4
    const p = predict(f, { batch: { visual: 6, text: 3 }, ratio: { visual: 4, text: 1 } })
    expect(rel(steadyVisual, p.meanStepMs.visual!)).toBeLessThan(1e-6)
    expect(rel(d(9).durationMs, p.meanStepMs.text!)).toBeLessThan(1e-6)
    expect(rel(d(5).memory.peakBytes!, p.memory.peakBytes)).toBeLessThan(1e-9)
    expect(rel(d(9).memory.peakBytes!, p.memory.troughBytes)).toBeLessThan(1e-9)
  })
})

describe("mape and crossValidate", () => {
  it("MAPE on a hand example", () => {
    // errors: +10%, -10%, +25%  -> mean absolute 15%
    expect(
      mape([
        { predicted: 110, measured: 100 },
        { predicted: 90, measured: 100 },
        { predicted: 50, measured: 40 },
      ]),
    ).toBeCloseTo(15, 12)
    expect(percentError(90, 100)).toBeCloseTo(-10, 12)
    expect(mape([])).toBeUndefined()
  })

  it("leave-one-out on noise-free data: one fit per config, ~0% error", () => {
    const configs = grid()
    const cv = Either.getOrThrow(crossValidate(configs))
    expect(cv.fits).toBe(configs.length)
    expect(cv.heldOut.map((h) => h.id)).toEqual(configs.map((c) => c.id))
    expect(cv.mape.all!).toBeLessThan(1e-6)
    const vo = cv.heldOut.find((h) => h.id === "visual-only")!
    expect(vo.errorPct.stepMsText).toBeUndefined()
    expect(Math.abs(vo.errorPct.stepMsVisual!)).toBeLessThan(1e-6)
  })

  it("with noise, held-out error is small but not zero", () => {
    const cv = Either.getOrThrow(crossValidate(grid(0.02)))
    expect(cv.mape.stepMs!).toBeGreaterThan(0.01)
    expect(cv.mape.stepMs!).toBeLessThan(5)
    expect(cv.mape.memory!).toBeLessThan(5)
  })

  it("an explicit hold-out set: one fit, errors for exactly those configs", () => {
    const configs = grid(0.01)
    const holdOut = [configs[3]!.id, configs[10]!.id]
    const cv = Either.getOrThrow(crossValidate(configs, { holdOut }))
    expect(cv.fits).toBe(1)
    expect(cv.heldOut.map((h) => h.id)).toEqual(holdOut)
    const h = cv.heldOut[0]!
    const f = fitOk(configs.filter((c) => !holdOut.includes(c.id)))
    expect(h.errorPct.peakBytes).toBeCloseTo(
      percentError(predict(f, configs[3]!).memory.peakBytes, configs[3]!.memory.peakBytes),
      9,
    )
    expect(Either.isLeft(crossValidate(configs, { holdOut: ["nope"] }))).toBe(true)
    expect(Either.isLeft(crossValidate(configs, { holdOut: configs.map((c) => c.id) }))).toBe(true)
  })

  it("fits the sim's own measurements (trex2-swin-t on h100-sxm) to within 0.5%", () => {
    const hw = Effect.runSync(loadHardware("h100-sxm"))
    const model = Effect.runSync(loadModel("trex2-swin-t"))
    const measure = (id: string, bv: number, bt: number, v: number, t: number): MeasuredConfig => {
      const spec = Either.getOrThrow(
        decodeSpec({
          name: id,
          phases: [{ name: "joint", steps: 200 * (v + t), ratio: { visual: v, text: t } }],
          batch: { visual: { size: bv }, text: { size: bt } },
          optimizer: { kind: "adamw", lr: 1e-4, groups: [{ name: "all" }] },
        }),
      )
      const ctx = makeSimContext(spec, hw, model)
      const planner = makePlanner(spec)
      const sum = { visual: 0, text: 0 }
      const n = { visual: 0, text: 0 }
      let peak = 0
      let trough = Number.POSITIVE_INFINITY
      for (let i = 0; i < planner.total; i++) {
        const p = planner.at(i)
        const o = simOutcome(ctx, p)
        if (o instanceof StepFailure) throw o
        sum[p.modality] += o.durationMs
        n[p.modality]++
        peak = Math.max(peak, o.memory.peakBytes!)
        trough = Math.min(trough, o.memory.peakBytes!)
      }
      return {
        id,
        batch: { visual: bv, text: bt },
        ratio: { visual: v, text: t },
        meanStepMs: { visual: sum.visual / n.visual, text: sum.text / n.text },
        memory: { peakBytes: peak, troughBytes: trough },
      }
    }
    const configs = [
      measure("8:1 b2", 2, 2, 8, 1),
      measure("8:1 b4", 4, 1, 8, 1),
      measure("4:1 b1", 1, 4, 4, 1),
      measure("2:2 b3", 3, 3, 2, 2),
      measure("1:2 b2", 2, 4, 1, 2),
      measure("3:1 b4", 4, 2, 3, 1),
    ]
    const cv = Either.getOrThrow(crossValidate(configs))
    expect(cv.mape.stepMs!).toBeLessThan(0.5)
    expect(cv.mape.memory!).toBeLessThan(1e-6)
  })
})

describe("decodeMeasured", () => {
  it("decodes a measurement file and names the bad field", () => {
    const good = grid().slice(0, 2)
    const json = JSON.parse(JSON.stringify(good))
    expect(Either.getOrThrow(decodeMeasured(json))).toEqual(json)
    json[1].memory.peakByte = json[1].memory.peakBytes
    const e = decodeMeasured(json, "runs.json")
    expect(Either.isLeft(e) && e.left.message).toMatch(/^runs\.json: \[1\]\.memory\.peakByte: unknown key/)
  })
})

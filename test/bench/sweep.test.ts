/** Sweep files: decoding (defaults, every bad-input path), expansion into configurations, shipped sweeps. */
import { readdirSync, readFileSync } from "node:fs"
import { dirname, join, resolve } from "node:path"
import { Either } from "effect"
import { describe, expect, it } from "vitest"
import { BACKEND_NAMES } from "../../adapters/tfjs/backend.ts"
import { PRESET_NAMES } from "../../adapters/tfjs/presets.ts"
import {
  DEFAULT_RATIOS,
  decodeSweep,
  expandSweep,
  parseRatioText,
  parseSweep,
  ratioName,
  type SweepFile,
  TFJS_BACKENDS,
  TFJS_PRESETS,
} from "../../core/bench/sweep.ts"
import { makePlanner } from "../../core/schedule/plan.ts"
import { decodeSpec, parseSpec, type ScheduleSpec } from "../../core/schedule/spec.ts"

const ROOT = resolve(import.meta.dirname, "../..")
const SWEEPS = join(ROOT, "scenarios", "sweeps")

const base: ScheduleSpec = Either.getOrThrow(
  decodeSpec({
    name: "base",
    seed: 7,
    phases: [
      { name: "text-only", steps: 10, ratio: { visual: 0, text: 1 } },
      { name: "joint", steps: 90, ratio: { visual: 8, text: 1 }, order: "text-first" },
    ],
    batch: { visual: { size: 4, accumulation: 2 }, text: { size: 6 } },
    optimizer: {
      kind: "adamw",
      lr: 1e-4,
      groups: [{ name: "backbone", lrMultiplier: 0.1 }, { name: "head" }],
    },
    lr: {
      warmup: { kind: "linear", steps: 20 },
      decay: { kind: "multistep", milestones: [60, 90], gamma: 0.1 },
      modalityFactor: { visual: 1, text: 0.5 },
    },
  }),
)

const minimal = {
  name: "s",
  base: "../b.json",
  targets: [{ adapter: "sim" }],
  warmupSteps: 2,
  measuredSteps: 16,
}

const decodeOk = (input: unknown): SweepFile => Either.getOrThrow(decodeSweep(input, "s.json"))
const decodeErr = (input: unknown): string => {
  const r = decodeSweep(input, "s.json")
  if (Either.isRight(r)) throw new Error(`expected an error for ${JSON.stringify(input)}`)
  return r.left.message
}

describe("ratio strings", () => {
  it("parses V:T and the two names, and names them back", () => {
    expect(Either.getOrThrow(parseRatioText("16:1"))).toEqual({ visual: 16, text: 1 })
    expect(Either.getOrThrow(parseRatioText("visual-only"))).toEqual({ visual: 1, text: 0 })
    expect(Either.getOrThrow(parseRatioText("text-only"))).toEqual({ visual: 0, text: 1 })
    for (const r of DEFAULT_RATIOS) expect(ratioName(Either.getOrThrow(parseRatioText(r)))).toBe(r)
    for (const bad of ["8-1", "8:", " 8:1", "a:b", "0:0", "1.5:1", ""])
      expect(Either.isLeft(parseRatioText(bad))).toBe(true)
  })
})

describe("decodeSweep", () => {
  it("fills the defaults: seven ratios, no eval or checkpoints, 8 tinybench iterations", () => {
    const s = decodeOk(minimal)
    expect(s.ratios.map(ratioName)).toEqual([...DEFAULT_RATIOS])
    expect(s.batchSizes).toBeUndefined()
    expect(s).toMatchObject({ evalEvery: 0, checkpointEvery: 0, microIterations: 8, description: "" })
  })

  it.each([
    [{ ...minimal, extra: 1 }, "s.json: extra: unknown key (check its spelling)"],
    [{ ...minimal, targets: [{ adapter: "sim", hw: "t4" }] }, "s.json: targets[0].hw: unknown key"],
    [
      { ...minimal, targets: [{ adapter: "jax" }] },
      's.json: targets[0].adapter: unknown target adapter "jax"',
    ],
    [{ ...minimal, targets: [{ backend: "wasm" }] }, "s.json: targets[0].adapter: is required"],
    [
      { ...minimal, targets: [{ adapter: "tfjs", backend: "metal", preset: "tiny" }] },
      's.json: targets[0].backend: must be one of cpu, wasm, webgpu, tensorflow, got "metal"',
    ],
    [
      { ...minimal, targets: [{ adapter: "tfjs", backend: "wasm", preset: "huge" }] },
      's.json: targets[0].preset: must be one of tiny, small, base, got "huge"',
    ],
    [
      { ...minimal, targets: [{ adapter: "tfjs", backend: "wasm" }] },
      "s.json: targets[0].preset: is required",
    ],
    [{ ...minimal, targets: [] }, "s.json: targets: needs at least one target"],
    [
      { ...minimal, ratios: ["8:1", "8-1"] },
      's.json: ratios[1]: expected "V:T" (such as "8:1"), "visual-only" or "text-only", got "8-1"',
    ],
    [{ ...minimal, ratios: ["0:0"] }, "s.json: ratios[0]: visual and text cannot both be 0"],
    [{ ...minimal, ratios: [] }, "s.json: ratios: needs at least one ratio"],
    [{ ...minimal, batchSizes: [8, 0] }, "s.json: batchSizes[1]: must be an integer >= 1"],
    [{ ...minimal, batchSizes: [8, { visual: 2 }] }, "s.json: batchSizes[1]: must be an integer >= 1 or {"],
    [{ ...minimal, batchSizes: [{ visual: 2, text: 0 }] }, "s.json: batchSizes[0]"],
    [{ ...minimal, measuredSteps: 0 }, "s.json: measuredSteps: must be an integer >= 1"],
    [{ ...minimal, warmupSteps: -1 }, "s.json: warmupSteps: must be an integer >= 0"],
    [{ ...minimal, name: "has space" }, "s.json: name: must be letters, digits"],
    [
      { name: "s", targets: [{ adapter: "sim" }], warmupSteps: 2, measuredSteps: 16 },
      "s.json: base: is required",
    ],
  ])("%j -> %s", (input, message) => {
    expect(decodeErr(input)).toContain(message)
  })

  it("names line and column of a JSON syntax error", () => {
    const r = parseSweep('{\n  "name": "s",\n  "base": }', "s.json")
    expect(Either.isLeft(r) && r.left.message).toMatch(/^s\.json: invalid JSON at line 3, column \d+/)
  })
})

describe("expandSweep", () => {
  const sweep = decodeOk({
    ...minimal,
    ratios: ["visual-only", "8:1", "text-only"],
    batchSizes: [8, { visual: 16, text: 8 }],
    targets: [
      { adapter: "tfjs", backend: "wasm", preset: "tiny", profileEvery: 1 },
      { adapter: "sim", hardware: "../hw/my-gpu.json", model: "trex2-swin-t" },
    ],
  })
  const configs = Either.getOrThrow(expandSweep(sweep, base))

  it("gives one config per target x batch x ratio, with stable ids and unique labels, target-major", () => {
    expect(configs.map((c) => c.id)).toEqual([
      "tfjs-wasm-tiny-1x0-b8x8",
      "tfjs-wasm-tiny-8x1-b8x8",
      "tfjs-wasm-tiny-0x1-b8x8",
      "tfjs-wasm-tiny-1x0-b16x8",
      "tfjs-wasm-tiny-8x1-b16x8",
      "tfjs-wasm-tiny-0x1-b16x8",
      "sim-my-gpu-trex2-swin-t-1x0-b8x8",
      "sim-my-gpu-trex2-swin-t-8x1-b8x8",
      "sim-my-gpu-trex2-swin-t-0x1-b8x8",
      "sim-my-gpu-trex2-swin-t-1x0-b16x8",
      "sim-my-gpu-trex2-swin-t-8x1-b16x8",
      "sim-my-gpu-trex2-swin-t-0x1-b16x8",
    ])
    expect(new Set(configs.map((c) => c.label)).size).toBe(configs.length)
    expect(configs[4]!.label).toBe("8:1 b16/8 tfjs/wasm tiny")
    expect(configs[0]!.adapterOptions).toEqual({ backend: "wasm", preset: "tiny", profileEvery: 1 })
    expect(configs[6]!.adapterOptions).toEqual({ hardware: "../hw/my-gpu.json", model: "trex2-swin-t" })
  })

  it("runs one `bench` phase of warm-up + measured steps at the ratio, with a constant lr", () => {
    const c = configs[4]!
    expect(c.spec.phases).toEqual([
      { name: "bench", steps: 18, ratio: { visual: 8, text: 1 }, order: "text-first" },
    ])
    expect(c.spec.batch).toEqual({
      visual: { size: 16, accumulation: 2 },
      text: { size: 8, accumulation: 1 },
    })
    expect(c.spec.seed).toBe(7)
    expect(c.spec.optimizer).toEqual(base.optimizer)
    expect(c.spec.lr).toEqual({ decay: { kind: "none" }, modalityFactor: { visual: 1, text: 0.5 } })
    // The base's milestone 60 and 20-step warm-up would not fit 18 steps; the lr is flat instead.
    const planner = makePlanner(c.spec)
    const lrs = Array.from({ length: 18 }, (_, i) => planner.at(i))
      .filter((p) => p.modality === "visual")
      .map((p) => p.lr.head)
    expect(new Set(lrs)).toEqual(new Set([1e-4]))
    expect(c.warmupSteps).toBe(2)
    expect(c.measuredSteps).toBe(16)
  })

  it("uses the base's batch sizes by default and the sweep's order when given", () => {
    const [c] = Either.getOrThrow(
      expandSweep(decodeOk({ ...minimal, ratios: ["2:1"], order: "visual-first" }), base),
    )
    expect(c!.id).toBe("sim-h100-sxm-2x1-b4x6")
    expect(c!.spec.phases[0]!.order).toBe("visual-first")
  })

  it.each([
    [{ ratios: ["8:1", "1:1", "8:1"] }, "s.json: ratios[2]: same as ratios[0] (8:1)"],
    [{ batchSizes: [8, { visual: 8, text: 8 }] }, "s.json: batchSizes[1]: same as batchSizes[0] (b8x8)"],
    [
      {
        targets: [
          { adapter: "sim", hardware: "t4" },
          { adapter: "sim", hardware: "./x/t4.json" },
        ],
      },
      "s.json: targets[1]: same as targets[0] (sim-t4)",
    ],
  ])("a duplicate configuration is an error naming the field: %j", (over, message) => {
    const r = expandSweep(decodeOk({ ...minimal, ...over }), base, "s.json")
    expect(Either.isLeft(r) && r.left.message).toBe(message)
  })
})

describe("shipped sweeps", () => {
  it("lists the tfjs adapter's backends and presets", () => {
    expect([...TFJS_BACKENDS]).toEqual([...BACKEND_NAMES])
    expect([...TFJS_PRESETS]).toEqual([...PRESET_NAMES])
  })

  it("every sweep file decodes and expands against its base", () => {
    const files = readdirSync(SWEEPS).filter((f) => f.endsWith(".json"))
    expect(files).toEqual(
      expect.arrayContaining(["ratios-tiny-wasm.json", "ratios-sim-h100.json", "ratios-webgpu-small.json"]),
    )
    for (const f of files) {
      const file = join(SWEEPS, f)
      const sweep = Either.getOrThrow(parseSweep(readFileSync(file, "utf8"), file))
      const baseFile = resolve(dirname(file), sweep.base)
      const b = Either.getOrThrow(parseSpec(readFileSync(baseFile, "utf8"), baseFile))
      const configs = Either.getOrThrow(expandSweep(sweep, b, file))
      expect(configs.length, f).toBeGreaterThan(0)
    }
  })

  it("ratios-tiny-wasm: the seven default ratios on tfjs/wasm/tiny at batch 8, plus heavier visual steps", () => {
    const file = join(SWEEPS, "ratios-tiny-wasm.json")
    const sweep = Either.getOrThrow(parseSweep(readFileSync(file, "utf8"), file))
    expect(sweep.ratios.map(ratioName)).toEqual([...DEFAULT_RATIOS])
    const b = Either.getOrThrow(
      parseSpec(readFileSync(join(ROOT, "scenarios", "trex2-joint-8to1.json"), "utf8")),
    )
    const ids = Either.getOrThrow(expandSweep(sweep, b)).map((c) => c.id)
    expect(ids).toContain("tfjs-wasm-tiny-8x1-b8x8")
    expect(ids).toContain("tfjs-wasm-tiny-16x1-b16x8")
    expect(ids).toHaveLength(14)
  })
})

/** Pure parts of the tfjs adapter: synthetic data, group mapping, alignment rule, options. */
import { Either } from "effect"
import { describe, expect, it } from "vitest"
import { classifyError, decodeOptions } from "../../adapters/tfjs/adapter.ts"
import {
  className,
  iou,
  NUM_CLASSES,
  OBJECTS_PER_IMAGE,
  patchesPerImage,
  sampleAt,
  textBatchAt,
  tokenize,
  validationSet,
  visualBatchAt,
  visualPairs,
} from "../../adapters/tfjs/data.ts"
import { assignGroups } from "../../adapters/tfjs/param-groups.ts"
import { PRESETS } from "../../adapters/tfjs/presets.ts"
import { NonFiniteLoss, textStepsBefore } from "../../adapters/tfjs/trainer.ts"
import { AdapterUnavailable } from "../../core/run/training-adapter.ts"
import { makePlanner } from "../../core/schedule/plan.ts"
import { decodeSpec, type ScheduleSpec } from "../../core/schedule/spec.ts"

const geo = PRESETS.tiny

const spec = (phases: unknown): ScheduleSpec =>
  Either.getOrThrow(
    decodeSpec({
      name: "t",
      phases,
      batch: { visual: { size: 2 }, text: { size: 2 } },
      optimizer: { kind: "adamw", lr: 1e-3, groups: [{ name: "all" }] },
    }),
  )

describe("synthetic data", () => {
  it("is a pure function of (seed, stream, index, slot)", () => {
    const a = sampleAt(geo, 7, "visual", 12, 3)
    expect(sampleAt(geo, 7, "visual", 12, 3)).toEqual(a)
    expect(sampleAt(geo, 7, "text", 12, 3).pixels).not.toEqual(a.pixels)
    expect(sampleAt(geo, 8, "visual", 12, 3).pixels).not.toEqual(a.pixels)
    expect(sampleAt(geo, 7, "visual", 13, 3).pixels).not.toEqual(a.pixels)
  })

  it("draws distinct classes in disjoint boxes, named in words", () => {
    for (let i = 0; i < 50; i++) {
      const s = sampleAt(geo, 1, "text", i, 0)
      expect(s.instances).toHaveLength(OBJECTS_PER_IMAGE)
      expect(new Set(s.instances.map((o) => o.cls)).size).toBe(OBJECTS_PER_IMAGE)
      for (const [j, a] of s.instances.entries())
        for (const b of s.instances.slice(j + 1)) expect(iou(a.box, b.box)).toBe(0)
    }
    expect(className(0)).toBe("red circle")
    expect(tokenize("blue cross")).toEqual([2, 7])
    expect(new Set(Array.from({ length: NUM_CLASSES }, (_, c) => className(c))).size).toBe(NUM_CLASSES)
  })

  it("text batches prompt every class, so absent classes are negatives", () => {
    const b = textBatchAt(geo, 3, 5, 4)
    const n = patchesPerImage(geo)
    expect(b.promptClass).toHaveLength(NUM_CLASSES)
    expect(b.targets).toHaveLength(NUM_CLASSES * 4 * n)
    const present = new Set(b.samples.flatMap((s) => s.instances.map((o) => o.cls)))
    for (let c = 0; c < NUM_CLASSES; c++) {
      const row = b.targets.slice(c * 4 * n, (c + 1) * 4 * n)
      const positives = row.reduce((x, y) => x + y, 0)
      if (present.has(c)) expect(positives).toBeGreaterThan(0)
      else expect(positives).toBe(0)
    }
  })

  it("visual batches prompt each object's box, scored against every image", () => {
    const b = visualBatchAt(geo, 3, 5, 4, geo.boxFreqs)
    const n = patchesPerImage(geo)
    expect(b.promptClass).toHaveLength(4 * OBJECTS_PER_IMAGE)
    expect(b.boxEmbeddings).toHaveLength(4 * OBJECTS_PER_IMAGE * 8 * geo.boxFreqs)
    // Prompt k's own box: its bias is open (0) on at least one patch and closed elsewhere.
    for (let k = 0; k < b.promptClass.length; k++) {
      const bias = b.boxBias.slice(k * n, (k + 1) * n)
      expect(bias.some((x) => x === 0)).toBe(true)
      expect(bias.some((x) => x < 0)).toBe(true)
      // It is positive on its own image.
      const img = Math.floor(k / OBJECTS_PER_IMAGE)
      const own = b.targets.slice(k * 4 * n + img * n, k * 4 * n + (img + 1) * n)
      expect(own.some((x) => x === 1)).toBe(true)
    }
  })

  it("validation pairs never prompt an image with its own box", () => {
    const val = validationSet(geo, 0, 32)
    const pairs = visualPairs(val)
    expect(pairs.length).toBeGreaterThan(80)
    for (const p of pairs) {
      expect(Math.floor(p.exemplar / OBJECTS_PER_IMAGE)).not.toBe(p.target)
      const ex = val[Math.floor(p.exemplar / OBJECTS_PER_IMAGE)]!.instances[p.exemplar % OBJECTS_PER_IMAGE]!
      expect(ex.cls).toBe(p.cls)
    }
  })
})

describe("parameter groups", () => {
  it("maps modules by name, keyword, catch-all, else the last group", () => {
    expect(assignGroups(["backbone", "text-encoder", "rest"])).toEqual({
      backbone: "backbone",
      neck: "rest",
      "text-encoder": "text-encoder",
      "visual-encoder": "rest",
      head: "rest",
    })
    expect(assignGroups(["backbone", "language_model", "neck", "default"])).toMatchObject({
      "text-encoder": "language_model",
      neck: "neck",
      head: "default",
    })
    expect(assignGroups(["encoders", "decoder"])).toMatchObject({ backbone: "decoder", head: "decoder" })
    expect(assignGroups(["only"])["visual-encoder"]).toBe("only")
  })
})

describe("alignment rule", () => {
  it("counts the text steps before a step, from the spec alone", () => {
    const s = spec([
      { name: "text", steps: 5, ratio: { visual: 0, text: 1 } },
      { name: "joint", steps: 18, ratio: { visual: 8, text: 1 } },
    ])
    const p = makePlanner(s)
    let seen = 0
    for (let i = 0; i < p.total; i++) {
      const plan = p.at(i)
      expect(textStepsBefore(s, plan)).toBe(seen)
      if (plan.modality === "text") seen++
    }
    const visualOnly = spec([{ name: "v", steps: 10, ratio: { visual: 1, text: 0 } }])
    expect(textStepsBefore(visualOnly, makePlanner(visualOnly).at(9))).toBe(0)
  })
})

describe("adapter options", () => {
  const message = (raw: Record<string, unknown>) => {
    const r = decodeOptions(raw)
    expect(r).toBeInstanceOf(AdapterUnavailable)
    return (r as AdapterUnavailable).message
  }

  it("fills every default, per preset and backend", () => {
    expect(decodeOptions({})).toEqual({
      backend: "wasm",
      preset: "tiny",
      profileEvery: 1,
      evalBatches: 3,
      lrScale: 10,
      alignWeight: 1,
    })
    expect(decodeOptions({ preset: "base" })).toMatchObject({ lrScale: 1, evalBatches: 4 })
    expect(decodeOptions({ backend: "cpu" })).toMatchObject({ profileEvery: 1 })
    expect(decodeOptions({ backend: "webgpu" })).toMatchObject({ profileEvery: 25 })
    expect(decodeOptions({ backend: "webgpu", profileEvery: 0 })).toMatchObject({ profileEvery: 0 })
    expect(decodeOptions({ alignWeight: 0 })).toMatchObject({ alignWeight: 0 })
    expect(decodeOptions({ alignWeight: 2.5 })).toMatchObject({ alignWeight: 2.5 })
  })

  it("refuses a bad option naming it and the reason", () => {
    expect(message({ lrScale: 0 })).toBe("tfjs adapter option lrScale: must be a finite number > 0")
    expect(message({ lrScale: "x" })).toBe(
      'tfjs adapter option lrScale: must be a finite number > 0, got "x"',
    )
    expect(message({ preset: "huge" })).toBe(
      'tfjs adapter option preset: must be one of "tiny", "small", "base", got "huge"',
    )
    expect(message({ profileEvery: -1 })).toBe("tfjs adapter option profileEvery: must be an integer >= 0")
    expect(message({ profileEvery: 2.5 })).toBe(
      "tfjs adapter option profileEvery: must be an integer >= 0, got 2.5",
    )
    expect(message({ evalBatches: 0 })).toBe("tfjs adapter option evalBatches: must be an integer >= 1")
    expect(message({ evalBatches: null })).toMatch(
      /^tfjs adapter option evalBatches: must be an integer >= 1/,
    )
    expect(message({ alignWeight: -0.5 })).toBe(
      "tfjs adapter option alignWeight: must be a finite number >= 0",
    )
    expect(message({ alignWeight: Number.POSITIVE_INFINITY })).toMatch(
      /^tfjs adapter option alignWeight: must be a finite number >= 0, got Infinity/,
    )
    expect(message({ backend: 3 })).toBe("tfjs adapter option backend: must be a backend name, got 3")
    expect(message({ backnd: "cpu" })).toBe(
      'tfjs adapter: unknown option "backnd" (known: backend, preset, profileEvery, evalBatches, lrScale, alignWeight)',
    )
  })
})

describe("step failure classification", () => {
  it("maps errors to the engine's failure kinds", () => {
    expect(classifyError(new NonFiniteLoss("x")).kind).toBe("nan-loss")
    expect(classifyError(new Error("Failed to allocate 4 GB buffer")).kind).toBe("out-of-memory")
    expect(classifyError(new RangeError("Array buffer allocation failed")).kind).toBe("out-of-memory")
    expect(classifyError(new Error("GPU device was lost: destroyed")).kind).toBe("device-lost")
    expect(classifyError(new Error("shapes do not match")).kind).toBe("adapter-error")
    expect(classifyError("plain string").message).toBe("plain string")
  })
})

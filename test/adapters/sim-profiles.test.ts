import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect, Either } from "effect"
import { afterAll, afterEach, describe, expect, it } from "vitest"
import {
  bundledProfiles,
  decodeModel,
  loadHardware,
  loadHardwareProfile,
  loadModel,
  profileHash,
} from "../../adapters/sim/profiles.ts"
import { AdapterUnavailable } from "../../core/run/training-adapter.ts"

const tmp = mkdtempSync(join(tmpdir(), "sim-profiles-"))
afterAll(() => rmSync(tmp, { recursive: true, force: true }))
const writeJson = (name: string, value: unknown): string => {
  const file = join(tmp, name)
  writeFileSync(file, typeof value === "string" ? value : JSON.stringify(value, null, 2))
  return file
}
const failure = <A>(eff: Effect.Effect<A, AdapterUnavailable>): AdapterUnavailable => {
  const r = Effect.runSync(Effect.either(eff))
  if (Either.isRight(r)) throw new Error("expected a failure")
  expect(r.left).toBeInstanceOf(AdapterUnavailable)
  return r.left
}

const goodHardware = {
  name: "my-gpu",
  description: "test",
  peakFlops: 1e14,
  memoryBandwidth: 1e12,
  memoryBytes: 8e9,
  kernelOverheadUs: 4,
}

describe("bundled profiles", () => {
  // What the files say is theirs to say; that each one decodes, found by its bare name, is ours.
  it.each([
    ...bundledProfiles("hardware").map((n) => ["hardware", n] as const),
    ...bundledProfiles("models").map((n) => ["models", n] as const),
  ])("%s %s loads by its bare name", (kind, name) => {
    const loaded: Effect.Effect<unknown, AdapterUnavailable> =
      kind === "hardware" ? loadHardware(name) : loadModel(name)
    expect(Either.isRight(Effect.runSync(Effect.either(loaded)))).toBe(true)
  })
})

describe("resolving names and paths", () => {
  const cwd = process.cwd()
  afterEach(() => process.chdir(cwd))

  it("finds bundled files relative to the module, not the cwd", () => {
    process.chdir(tmp)
    expect(Effect.runSync(loadHardware("t4")).name).toBe("t4")
  })

  it("reads a path as given", () => {
    const file = writeJson("gpu.json", goodHardware)
    const loaded = Effect.runSync(loadHardwareProfile(file))
    expect(loaded.file).toBe(file)
    expect(loaded.profile.efficiency).toBe(1) // the default
  })

  it("an unknown name lists the known ones", () => {
    const e = failure(loadHardware("h200-nvl"))
    expect(e.message).toContain('unknown hardware profile "h200-nvl"')
    expect(e.message).toContain("h100-sxm")
    expect(e.message).toContain("cpu-2core")
  })

  it("a missing path says so", () => {
    expect(failure(loadModel(join(tmp, "nope.json"))).message).toContain("not found")
  })
})

describe("bad profile files name the file and the field", () => {
  it("JSON nested 100,000 deep is refused before it is decoded, naming the file and where", () => {
    const file = writeJson("deep.json", `${"[".repeat(100_000)}${"]".repeat(100_000)}`)
    const e = failure(loadHardware(file))
    expect(e.message).toMatch(new RegExp(`^${file}: invalid JSON: .*nested.*line 1, column`))
  })

  it("a non-number peakFlops", () => {
    const file = writeJson("bad-type.json", { ...goodHardware, peakFlops: "fast" })
    const e = failure(loadHardware(file))
    expect(e.message).toContain(file)
    expect(e.message).toContain("peakFlops")
  })

  it("a negative memoryBytes", () => {
    const file = writeJson("bad-neg.json", { ...goodHardware, memoryBytes: -1 })
    expect(failure(loadHardware(file)).message).toMatch(/memoryBytes: must be a finite number > 0/)
  })

  it("a misspelt key is an unknown-key error naming it", () => {
    const { peakFlops, ...rest } = goodHardware
    const file = writeJson("bad-key.json", { ...rest, peakFlop: peakFlops })
    expect(failure(loadHardware(file)).message).toContain("peakFlop: unknown key")
  })

  it("an extra key is an error even when every field is present", () => {
    const file = writeJson("extra.json", { ...goodHardware, tdpWatts: 700 })
    expect(failure(loadHardware(file)).message).toContain("tdpWatts: unknown key")
  })

  it("efficiency above 1", () => {
    const file = writeJson("bad-eff.json", { ...goodHardware, efficiency: 1.5 })
    expect(failure(loadHardware(file)).message).toContain("efficiency")
  })

  it("invalid JSON", () => {
    const file = writeJson("broken.json", "{ name: ")
    expect(failure(loadHardware(file)).message).toContain("invalid JSON")
  })

  it("model: a loss component named total, and final above initial", () => {
    const base = Effect.runSync(loadModel("trex2-tiny"))
    const withTotal = structuredClone(base) as { modalities: { text: { loss: { components: object } } } }
    withTotal.modalities.text.loss.components = { total: { initial: 1, final: 0.1, halfLife: 10 } }
    const a = decodeModel(withTotal, "m.json")
    expect(Either.isLeft(a) && a.left.message).toContain("modalities.text.loss.components")
    const rising = structuredClone(base) as { modalities: { visual: { loss: { components: object } } } }
    rising.modalities.visual.loss.components = { cls: { initial: 0.1, final: 0.5, halfLife: 10 } }
    const b = decodeModel(rising, "m.json")
    expect(Either.isLeft(b) && b.left.message).toContain("final must not exceed initial")
  })
})

describe("profileHash", () => {
  it("ignores key order and formatting, changes with any value", () => {
    const a = Effect.runSync(loadHardware(writeJson("h1.json", goodHardware)))
    const reordered = Object.fromEntries(Object.entries(goodHardware).reverse())
    const b = Effect.runSync(loadHardware(writeJson("h2.json", JSON.stringify(reordered))))
    const c = Effect.runSync(loadHardware(writeJson("h3.json", { ...goodHardware, kernelOverheadUs: 4.5 })))
    expect(profileHash(a)).toBe(profileHash(b))
    expect(profileHash(a)).not.toBe(profileHash(c))
    expect(profileHash(a)).toMatch(/^[0-9a-f]{16}$/)
  })
})

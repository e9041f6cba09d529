/**
 * `interleave study` end to end on the sim with its synthetic quality model: the Pareto set of a
 * case built to have a known answer (computed by hand below), the outputs say the metric is
 * synthetic, every configuration is a recorded run, and the HTML report's charts carry axis
 * titles and legends in the DOM (Chromium).
 */
import { readFileSync } from "node:fs"
import { join } from "node:path"
import { beforeAll, describe, expect, it } from "vitest"
import { SYNTHETIC_QUALITY } from "../../adapters/sim/synthetic-quality.ts"
import { launchChromium } from "../support/chromium.ts"
import { runCli, tempDir, writeJson } from "../support/cli-helpers.ts"
import { timeoutFor } from "../support/timeouts.ts"

const dir = tempDir("interleave-study-")
const store = join(dir, "runs.db")
const out = join(dir, "out")
const STEPS = 500
const LR_TEXT = [0.25, 0.5, 1, 2]

writeJson(dir, "base.json", {
  name: "base",
  seed: 3,
  phases: [{ name: "joint", steps: 10, ratio: { visual: 4, text: 1 } }],
  batch: { visual: { size: 8 }, text: { size: 8 } },
  optimizer: { kind: "adamw", lr: 1e-4, groups: [{ name: "all" }] },
})
const studyFile = writeJson(dir, "study.json", {
  name: "known",
  description: "a case with a known Pareto set",
  base: "base.json",
  target: { adapter: "sim" },
  ratios: ["visual-only", "4:1"],
  budget: { steps: STEPS },
  evalEvery: 100,
  lrFactors: LR_TEXT.map((t) => ({ visual: 1, text: t })),
})

interface Setting {
  setting: string
  pareto: boolean
  finalVisual: { mean: number }
  finalText: { mean: number }
  samplesPerSec: { mean: number }
  memorySwingBytes: { mean: number }
}
let settings: Setting[] = []
let stdout = ""

beforeAll(
  async () => {
    const r = await runCli(["study", studyFile, "--store", store, "--out", out])
    expect(r.code, r.stderr).toBe(0)
    stdout = r.stdout
    settings = JSON.parse(readFileSync(join(out, "results.json"), "utf8")).settings
  },
  timeoutFor({ starts: 1, simSteps: 8 * STEPS * 3, quietMs: 3000 }),
)

/**
 * By hand, for 4:1 (visual-first; updates k = 0.. counted over both modalities; text updates are
 * k = 4, 9, ..., so 100 of the 500 steps): the text lr factor f gives r = f / best.text (0.5), so
 * r = 0.5, 1, 2, 4. Text progress = sum over its updates of r e^(1-r), less, for k < 40 (8 text
 * updates, k = 5j - 1, j = 1..8), 3 x max(0, r - 5j/40). Visual progress is the same for all four
 * (its lr factor is 1 throughout), so visual recall differs only through the cross term
 * own_v x own_t, which grows with text progress. Throughput and memory swing do not depend on the
 * lr in the sim's cost model, so they tie. Hence r = 1 (f = 0.5) dominates the other three 4:1
 * settings (at 200 steps it would not: f = 0.25 pays less in the fragile first 40 updates and
 * would win; 100 text updates are enough for r = 1's efficiency to prevail). The four visual-only settings have no text step: identical in every objective (ties,
 * so all four stay), and their memory swing 0 is better than any 4:1 setting's, so none of them is
 * dominated. Expected front: the four visual-only settings and 4x1 with text lr 0.5.
 */
const textProgress = (f: number): number => {
  const q = SYNTHETIC_QUALITY
  const r = f / q.best.text
  let p = 0
  for (let j = 1; j <= STEPS / 5; j++) {
    const k = 5 * j - 1
    p += r * Math.exp(1 - r)
    if (k < q.fragileUpdates) p -= q.instability * Math.max(0, r - (k + 1) / q.fragileUpdates)
  }
  return p
}
const textRecall = (f: number, visualOwn: number): number => {
  const q = SYNTHETIC_QUALITY
  const own = 1 - Math.exp(-Math.max(0, textProgress(f)) / q.scale.text)
  return q.chance + (q.ceiling.text - q.chance) * ((1 - q.cross) * own + q.cross * own * visualOwn)
}

describe("study on the sim with the synthetic quality model", () => {
  const byName = (name: string) => settings.find((s) => s.setting === name)!
  it("marks the Pareto set computed by hand", () => {
    expect(settings.map((s) => s.setting)).toEqual([
      ...LR_TEXT.map((t) => `1x0-lrv1-lrt${t}`),
      ...LR_TEXT.map((t) => `4x1-lrv1-lrt${t}`),
    ])
    expect(settings.filter((s) => s.pareto).map((s) => s.setting)).toEqual([
      ...LR_TEXT.map((t) => `1x0-lrv1-lrt${t}`),
      "4x1-lrv1-lrt0.5",
    ])
  })
  it("the numbers behind it: ties in cost, text recall as computed by hand", () => {
    const four = LR_TEXT.map((t) => byName(`4x1-lrv1-lrt${t}`))
    for (const s of four) {
      expect(s.samplesPerSec.mean).toBe(four[0]!.samplesPerSec.mean)
      expect(s.memorySwingBytes.mean).toBe(four[0]!.memorySwingBytes.mean)
      expect(s.memorySwingBytes.mean).toBeGreaterThan(0)
    }
    const vis = LR_TEXT.map((t) => byName(`1x0-lrv1-lrt${t}`))
    for (const s of vis) {
      expect([s.finalVisual, s.finalText, s.samplesPerSec]).toEqual([
        vis[0]!.finalVisual,
        vis[0]!.finalText,
        vis[0]!.samplesPerSec,
      ])
      expect(s.memorySwingBytes.mean).toBe(0)
    }
    // Visual progress: 400 updates at lr factor 1 (the same in all four), so own_v is one number.
    const q = SYNTHETIC_QUALITY
    let pv = 0
    for (let k = 0, n = 0; n < (STEPS * 4) / 5; k++)
      if (k % 5 !== 4) {
        pv += 1 - (k < q.fragileUpdates ? q.instability * Math.max(0, 1 - (k + 1) / q.fragileUpdates) : 0)
        n++
      }
    const visualOwn = 1 - Math.exp(-pv / q.scale.visual)
    // The seeded noise is the same for every setting (same seed, same last step): differences are exact.
    const text = four.map((s) => s.finalText.mean)
    for (let i = 1; i < LR_TEXT.length; i++)
      expect(text[i]! - text[0]!).toBeCloseTo(
        textRecall(LR_TEXT[i]!, visualOwn) - textRecall(LR_TEXT[0]!, visualOwn),
        9,
      )
    expect(Math.max(...text)).toBe(text[1])
    expect(Math.max(...four.map((s) => s.finalVisual.mean))).toBe(four[1]!.finalVisual.mean)
  })
  it("says the metric is synthetic in every output, and each configuration is a recorded run", async () => {
    expect(stdout).toContain("SYNTHETIC")
    expect(readFileSync(join(out, "report.md"), "utf8")).toContain("SYNTHETIC")
    expect(readFileSync(join(out, "report.html"), "utf8")).toContain("SYNTHETIC")
    const results = JSON.parse(readFileSync(join(out, "results.json"), "utf8"))
    expect(results.runs).toHaveLength(8)
    const show = await runCli(["show", results.runs[5].runId, "--store", store, "--json"])
    expect(show.code, show.stderr).toBe(0)
    expect(show.stdout).toContain("synthetic-recall")
  })
})

describe("study HTML report in Chromium", () => {
  it.skipIf(process.env.INTERLEAVE_SKIP_BROWSER === "1")(
    "every chart has axis titles and a legend in the DOM",
    async () => {
      const browser = await launchChromium()
      try {
        const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } })
        await page.goto(`file://${join(out, "report.html")}`)
        const charts = await page.$$eval("figure[data-chart]", (figs) =>
          figs.map((f) => ({
            id: f.getAttribute("data-chart"),
            axes: Array.from(f.querySelectorAll("svg .role-axis-title text")).map((t) => t.textContent),
            legends: Array.from(f.querySelectorAll("svg .role-legend-title text")).map((t) => t.textContent),
          })),
        )
        expect(charts.map((c) => c.id)).toEqual([
          "visual-vs-steps",
          "text-vs-steps",
          "visual-vs-time",
          "text-vs-time",
          "final-vs-throughput",
          "final-vs-memory-swing",
          "by-lr",
        ])
        for (const c of charts) {
          expect(c.axes, c.id!).toHaveLength(2)
          expect(c.legends.length, c.id!).toBeGreaterThan(0)
        }
        const byId = Object.fromEntries(charts.map((c) => [c.id, c]))
        expect(byId["visual-vs-steps"]!.axes).toEqual([
          "step (steps trained, both modalities)",
          "visual synthetic-recall (synthetic)",
        ])
        expect(byId["text-vs-time"]!.axes[0]).toBe("training time (s, cumulative step time; simulated)")
        expect(byId["visual-vs-steps"]!.legends).toEqual([
          "Ratio (V:T)",
          "lr factor (visual / text), warm-up (steps)",
        ])
        expect(byId["final-vs-throughput"]!.axes[0]).toBe("throughput (samples/s of step time; simulated)")
        expect(byId["final-vs-throughput"]!.legends).toEqual(["Modality", "Pareto"])
        expect(byId["final-vs-memory-swing"]!.axes[0]).toContain("memory swing (MiB")
        expect(await page.textContent("[data-pareto]")).toContain("4x1-lrv1-lrt0.5")
      } finally {
        await browser.close()
      }
    },
    timeoutFor({ quietMs: 5000 }),
  )
})

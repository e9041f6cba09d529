/** Noisy latency numbers are marked and warned about; a step that changes across ratios is noted (item 5). */
import { describe, expect, it } from "vitest"
import { crossRatioNotes, crossRatioText, noiseReasons, noiseWarnings } from "../../core/bench/noise.ts"
import { outlierCount } from "../../core/bench/outliers.ts"
import { findingLines, latencyTable, summaryTable } from "../../core/bench/report/tables.ts"
import { buildConfigResult, type MeasuredStep, type SweepResults } from "../../core/bench/results.ts"
import { latencyStatistics } from "../../core/common/statistics.ts"

const machine = { cpu: "CPU A", cores: 2, memBytes: 8e9, node: "v20.20.2", platform: "linux-x64" }

const stats = (xs: ReadonlyArray<number>) => latencyStatistics(xs)!

/** A config whose visual steps take `visualMs` (cycled) and text steps `textMs` (cycled), at V:T. */
const config = (
  id: string,
  ratio: { visual: number; text: number },
  visualMs: ReadonlyArray<number>,
  textMs: ReadonlyArray<number>,
  n: number,
) => {
  let iv = 0
  let it = 0
  const records: MeasuredStep[] = Array.from({ length: n }, (_, step) => {
    const visual = step % (ratio.visual + ratio.text) < ratio.visual
    return {
      step,
      modality: visual ? "visual" : "text",
      durationMs: visual ? visualMs[iv++ % visualMs.length]! : textMs[it++ % textMs.length]!,
      memBytes: visual ? 900 : 400,
      loss: 1,
      samples: 16,
    }
  })
  const name = ratio.text === 0 ? "visual-only" : `${ratio.visual}:${ratio.text}`
  return buildConfigResult(
    {
      id,
      label: `${name} b16/8 tfjs/wasm tiny`,
      ratio,
      batch: { visual: 16, text: 8 },
      adapter: "tfjs",
      backend: "wasm",
      preset: "tiny",
      runId: `r-${id}`,
    },
    records,
  )
}

const results = (configs: SweepResults["configs"]): SweepResults => ({
  schemaVersion: 2,
  name: "t",
  machine,
  createdAt: "2025-01-01T00:00:00.000Z",
  configs,
})

describe("noise reasons", () => {
  it("few samples and a wide rme: the 16:1 text latency from 4 steps", () => {
    const s = stats([20, 55, 31, 70])
    expect(s.rme).toBeGreaterThan(60)
    expect(noiseReasons(s, 0)).toEqual([`only n=4 steps (< 10)`, `rme ±${Math.round(s.rme)}% (> 10%)`])
  })

  it("outliers: a max beyond 3x the median, or more than 5% of the steps beyond median + 3·MAD", () => {
    const spike = [...Array<number>(30).fill(10), 10.5, 40]
    expect(noiseReasons(stats(spike), outlierCount(spike, stats(spike)))).toContain(
      "max 40 ms > 3× median 10 ms",
    )
    // 4 of 40 steps at 14 ms, the rest around 10: not over 3x the median, but a heavy tail.
    const tail = [...Array.from({ length: 36 }, (_, i) => 10 + (i % 3) * 0.1), 14, 14, 14, 14]
    const s = stats(tail)
    expect(outlierCount(tail, s)).toBe(4)
    expect(noiseReasons(s, 4)).toEqual(["4 of 40 steps beyond median + 3·MAD (> 5% outliers)"])
  })

  it("a steady, deterministic series is not noisy: the 1% floor on the fence", () => {
    // The sim: identical steps, and every 4th slightly slower (the optimizer update): MAD 0.
    const sim = Array.from({ length: 200 }, (_, i) => (i % 4 === 3 ? 45.2 : 44.8))
    const s = stats(sim)
    expect(s.mad).toBe(0)
    expect(outlierCount(sim, s)).toBe(0)
    expect(noiseReasons(s, 0)).toEqual([])
  })
})

describe("noise in the tables and warnings", () => {
  const noisy = config("tfjs-wasm-tiny-16x1-b16x8", { visual: 16, text: 1 }, [430, 436], [20, 55, 31, 70], 68)
  const steady = config("tfjs-wasm-tiny-1x1-b16x8", { visual: 1, text: 1 }, [431, 433], [40, 41], 40)
  const r = results([noisy, steady])

  it("marks the noisy mean in the terminal summary and the report's latency table, with n and rme", () => {
    const summary = summaryTable(r)
    const textMean = summary.columns.findIndex((c) => c.header === "text mean ± rme")
    const textN = summary.columns.findIndex((c) => c.header === "n T")
    expect(summary.rows[0]![textMean]).toMatch(/^44 ms ±\d+%!$/)
    expect(summary.rows[0]![textN]).toBe("4")
    expect(summary.rows[1]![textMean]).toBe("40.5 ms ±0.6%")
    expect(latencyTable(r).rows[0]![6]).toMatch(/!$/)
  })

  it("one warning line per noisy config and modality, after the table", () => {
    expect(noiseWarnings(r).map((w) => [w.config, w.modality])).toEqual([
      ["tfjs-wasm-tiny-16x1-b16x8", "text"],
    ])
    const lines = findingLines(r).filter((l) => l.startsWith("warning: "))
    expect(lines).toHaveLength(1)
    expect(lines[0]).toMatch(
      /^warning: tfjs-wasm-tiny-16x1-b16x8 text step latency mean 44 ms ±\d+% \(n=4\): only n=4 steps \(< 10\), rme ±\d+% \(> 10%\)/,
    )
  })
})

describe("the same step across ratios", () => {
  it("notes a batch-16 visual step that takes 214 ms in visual-only and 433 ms in 16:1", () => {
    const only = config("tfjs-wasm-tiny-1x0-b16x8", { visual: 1, text: 0 }, [212, 214, 216], [], 72)
    const r161 = config("tfjs-wasm-tiny-16x1-b16x8", { visual: 16, text: 1 }, [430, 433, 436], [40, 41], 68)
    const r11 = config("tfjs-wasm-tiny-1x1-b16x8", { visual: 1, text: 1 }, [300, 301], [40, 41], 40)
    const notes = crossRatioNotes(results([only, r161, r11]))
    expect(notes).toHaveLength(1)
    const n = notes[0]!
    expect([n.modality, n.low.config, n.high.config]).toEqual([
      "visual",
      "tfjs-wasm-tiny-1x0-b16x8",
      "tfjs-wasm-tiny-16x1-b16x8",
    ])
    const text = crossRatioText(n)
    expect(text).toContain("the visual step of tfjs/wasm tiny at batch 16/8 takes 433 ms")
    expect(text).toContain("in 16:1 (tfjs-wasm-tiny-16x1-b16x8) but 214 ms")
    expect(text).toContain("in visual-only (tfjs-wasm-tiny-1x0-b16x8): +102%")
    expect(findingLines(results([only, r161, r11])).some((l) => l.startsWith("note: the visual step"))).toBe(
      true,
    )
  })

  it("says nothing when the difference is within the noise or small", () => {
    // Wide spread: 200 vs 260 ms means, but each mean's margin is wider than their difference.
    const a = config("tfjs-wasm-tiny-1x0-b16x8", { visual: 1, text: 0 }, [50, 350], [], 6)
    const b = config("tfjs-wasm-tiny-16x1-b16x8", { visual: 16, text: 1 }, [60, 460], [40], 6)
    expect(crossRatioNotes(results([a, b]))).toEqual([])
    // Steady but only 2% apart (the sim's update step amortised differently).
    const c = config("tfjs-wasm-tiny-1x0-b16x8", { visual: 1, text: 0 }, [100], [], 20)
    const d = config("tfjs-wasm-tiny-1x1-b16x8", { visual: 1, text: 1 }, [102], [40], 20)
    expect(crossRatioNotes(results([c, d]))).toEqual([])
    // Different batch sizes or targets are different steps: never compared.
    const e = { ...c, batch: { visual: 8, text: 8 } }
    const f = config("tfjs-webgpu-tiny-1x1-b16x8", { visual: 1, text: 1 }, [300], [40], 20)
    expect(crossRatioNotes(results([e, d, f]))).toEqual([])
  })
})

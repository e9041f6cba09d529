/** The UI's series: per-pixel min/max buckets keep every spike; few steps come back one by one. */
import { describe, expect, it } from "vitest"
import type { RunEvent } from "../../core/log/index.ts"
import { RunData, seriesOf } from "../../core/ui/index.ts"

const MiB = 1024 * 1024

/** A run of `n` steps, 8:1 visual:text, with a loss spike at step `spike`. */
const run = (id: string, n: number, spike: number): RunData => {
  const d = new RunData(id)
  for (let step = 0; step < n; step++) {
    const visual = step % 9 < 8
    const e = {
      _tag: "StepCompleted",
      step,
      phase: "joint",
      phaseStep: step,
      modality: visual ? "visual" : "text",
      cycle: Math.floor(step / 9),
      position: step % 9,
      micro: 0,
      update: true,
      lr: { head: 1e-4 },
      losses: { total: step === spike ? 50 : 1 + (step % 3) * 0.01 },
      durationMs: visual ? 10 : 5,
      samples: 8,
      memory: { peakBytes: (visual ? 900 : 400) * MiB },
    } as RunEvent
    d.apply(e, 1_000 + step)
  }
  return d
}

describe("seriesOf", () => {
  it("keeps a one-step spike in a 200,000-step run drawn at 1,000 pixels, as min and max per bucket", () => {
    const d = run("r", 200_000, 123_457)
    const res = seriesOf([d], { x: "step", buckets: 1000, keys: ["loss:total:visual", "mem:peakBytes:text"] })
    expect(res.mode).toBe("minmax")
    expect(res.xs.length).toBe(2000)
    const loss = res.series.r!["loss:total:visual"]!
    expect(loss.length).toBe(2000)
    expect(Math.max(...loss.map((v) => v ?? 0))).toBe(50)
    // The bucket holding the spike also holds its minimum: both extremes drawn.
    const b = Math.floor(123_457 / res.bucketWidth)
    expect([loss[2 * b], loss[2 * b + 1]].sort()).toEqual([1, 50])
    // Text steps' memory stays apart from visual steps': the swing shows.
    expect(new Set(res.series.r!["mem:peakBytes:text"]!.filter((v) => v !== null))).toEqual(
      new Set([400 * MiB]),
    )
    // Schedule: every step counted once, by modality.
    const v = res.schedule.r!.visual.reduce((a, x) => a + x, 0)
    const t = res.schedule.r!.text.reduce((a, x) => a + x, 0)
    expect([v, t]).toEqual([Math.ceil((200_000 * 8) / 9), 200_000 - Math.ceil((200_000 * 8) / 9)])
  })

  it("a range with no more steps than buckets: one slot per step, null where the modality differs", () => {
    const d = run("r", 100, -1)
    const res = seriesOf([d], {
      x: "step",
      from: 5,
      to: 14,
      buckets: 500,
      keys: ["loss:total:text", "time:visual"],
    })
    expect(res.mode).toBe("raw")
    expect(res.xs).toEqual([5, 6, 7, 8, 9, 10, 11, 12, 13, 14])
    const text = res.series.r!["loss:total:text"]!
    expect(text.map((v, i) => (v === null ? null : res.xs[i]))).toEqual([
      null,
      null,
      null,
      8,
      null,
      null,
      null,
      null,
      null,
      null,
    ])
    expect(res.series.r!["time:visual"]![0]).toBe(10)
    expect(res.schedule.r!.text).toEqual([0, 0, 0, 1, 0, 0, 0, 0, 0, 0])
  })

  it("two runs share one grid, on the step axis and on cumulative step time", () => {
    const a = run("a", 3000, -1)
    const b = run("b", 1500, -1)
    for (const x of ["step", "time"] as const) {
      const res = seriesOf([a, b], { x, buckets: 300, keys: ["loss:total:visual"] })
      expect(res.series.a!["loss:total:visual"]!.length).toBe(res.xs.length)
      expect(res.series.b!["loss:total:visual"]!.length).toBe(res.xs.length)
      // b ends half-way: its second half is empty.
      expect(res.series.b!["loss:total:visual"]!.slice(-10).every((v) => v === null)).toBe(true)
    }
  })
})

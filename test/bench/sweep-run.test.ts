/** The sweep's progress and notes: ETA from the configs done so far, tinybench lines with n and rme. */
import { describe, expect, it } from "vitest"
import { etaMs, microText } from "../../core/bench/sweep-run.ts"

describe("ETA", () => {
  it("assumes the configs left take as long on average as those done", () => {
    // 3 of 14 done in 30 s: 10 s each, 11 left.
    expect(etaMs(30_000, 3, 14)).toBe(110_000)
    expect(etaMs(30_000, 14, 14)).toBe(0)
    expect(etaMs(0, 0, 14)).toBeUndefined()
  })
})

describe("tinybench notes", () => {
  it("give n and rme with the mean, and the max rather than a p99 of a few iterations", () => {
    const latency = { mean: 45.0341, rme: 0.42, samplesCount: 8, max: 45.2, p99: 45.19 }
    expect(microText({ name: "visual step", latency })).toBe(
      "visual step mean 45.034 ms ±0.4% (n=8), max 45.200 ms",
    )
    expect(microText({ name: "text step", error: "out of memory" })).toBe("text step failed (out of memory)")
  })
})

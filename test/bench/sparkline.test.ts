/** Memory sparklines of long series draw whole cycles and never invent a period (issue step 5, item 3). */
import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { cycleProfile } from "../../core/bench/cycle-profile.ts"
import { memoryPicture } from "../../core/bench/report/sparkline.ts"
import { buildConfigResult, type MeasuredStep } from "../../core/bench/results.ts"

const MiB = 1024 * 1024

/**
 * A run at V:T (visual first) from step `start` (a warm-up cuts the first cycle) for `n` steps:
 * visual steps about 900 MiB, text steps about 400 MiB, plus `noise(step)` bytes.
 */
const run = (
  v: number,
  t: number,
  n: number,
  start = 0,
  noise: (step: number) => number = () => 0,
): MeasuredStep[] =>
  Array.from({ length: n }, (_, i) => {
    const step = start + i
    const visual = step % (v + t) < v
    return {
      step,
      modality: visual ? "visual" : "text",
      durationMs: visual ? 10 : 5,
      memBytes: (visual ? 900 : 400) * MiB + noise(step),
      loss: 1,
      samples: 4,
      phase: "bench",
      cycle: Math.floor(step / (v + t)),
    }
  })

const picture = (records: ReadonlyArray<MeasuredStep>, v: number, t: number) =>
  memoryPicture(
    buildConfigResult(
      {
        id: `sim-${v}x${t}-b4x4`,
        label: `${v}:${t} b4/4 sim`,
        ratio: { visual: v, text: t },
        batch: { visual: 4, text: 4 },
        adapter: "sim",
        runId: "r",
      },
      records,
    ),
  )

/** The two parts of a `cycle … ×N trend …` picture. */
const parts = (line: string) => {
  const m = /^cycle (\S+) +×(\d+) +trend (\S+)$/.exec(line)
  if (!m) throw new Error(`not a cycle picture: ${line}`)
  return { cycle: m[1]!, cycles: Number(m[2]), trend: m[3]! }
}

describe("cycle profile", () => {
  it("keeps whole cycles only: the one a warm-up cut is left out", () => {
    // Steps 17..1716 of 8:1: step 17 is the last visual step of cycle 1, step 1716 opens cycle 190.
    const p = cycleProfile(
      run(8, 1, 1700, 17).map((r) => ({ ...r, bytes: r.memBytes })),
      240,
    )!
    expect(p.modality).toEqual([...Array<string>(8).fill("visual"), "text"])
    expect(p.cycles).toBe(188)
    expect(p.medianBytes).toEqual([...Array<number>(8).fill(900 * MiB), 400 * MiB])
    expect(p.cyclesPerBucket).toBe(1)
    expect(p.peakBytes).toHaveLength(188)
  })

  it("one step per cycle when the run has one modality", () => {
    const p = cycleProfile(run(1, 0, 50).map((r) => ({ ...r, bytes: r.memBytes })))!
    expect(p.modality).toEqual(["visual"])
    expect(p.cycles).toBe(50)
  })
})

describe("memory sparkline of a long series", () => {
  it("8:1, 4:1 and 1:1 over a few thousand steps draw different lines, each its own cycle", () => {
    const lines = [
      [8, 1],
      [4, 1],
      [1, 1],
    ].map(([v, t]) => picture(run(v!, t!, 3000, 17), v!, t!))
    expect(new Set(lines).size).toBe(3)
    expect(lines.map((l) => parts(l).cycle)).toEqual(["████████▁", "████▁", "█▁"])
  })

  it("a whole-cycle sparkline of an 8:1 series never shows a period other than the cycle's", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 8 }),
        fc.integer({ min: 200, max: 5000 }),
        fc.array(fc.integer({ min: 0, max: 100 * MiB }), { minLength: 1, maxLength: 64 }),
        (start, n, jitter) => {
          // Any noise below the swing: visual 900-1000 MiB, text 400-500 MiB.
          const line = picture(
            run(8, 1, n, start, (s) => jitter[s % jitter.length]!),
            8,
            1,
          )
          const { cycle, trend } = parts(line)
          // The cycle: 8 visual characters in the upper half, then 1 text character in the lower half.
          expect([...cycle]).toHaveLength(9)
          expect(cycle).toMatch(/^[▅▆▇█]{8}[▁▂▃▄]$/)
          // The trend is one value per group of whole cycles (their peak, a visual step):
          // it never dips to the text level, so no visual/text alternation shows up in it.
          expect(trend).toMatch(/^[▅▆▇█]+$/)
        },
      ),
      { numRuns: 60 },
    )
  })

  it("a series that fits is drawn one character per step", () => {
    expect(picture(run(8, 1, 20), 8, 1)).toBe("steps ████████▁████████▁██")
  })
})

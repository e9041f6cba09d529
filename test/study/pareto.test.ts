/** The Pareto function: dominance, ties, a single point, all equal, missing values, directions. */
import { describe, expect, it } from "vitest"
import { dominatedBy, dominates, type Objective, paretoIndices } from "../../core/study/pareto.ts"

type P = { readonly a: number; readonly b: number }
const maxBoth: ReadonlyArray<Objective<P>> = [
  { name: "a", direction: "max", value: (p) => p.a },
  { name: "b", direction: "max", value: (p) => p.b },
]
const maxAminB: ReadonlyArray<Objective<P>> = [
  { name: "a", direction: "max", value: (p) => p.a },
  { name: "b", direction: "min", value: (p) => p.b },
]

describe("dominates", () => {
  it("needs at least as good everywhere and strictly better somewhere", () => {
    expect(dominates([2, 2], [1, 1], ["max", "max"])).toBe(true)
    expect(dominates([2, 1], [1, 1], ["max", "max"])).toBe(true)
    expect(dominates([1, 1], [1, 1], ["max", "max"])).toBe(false)
    expect(dominates([2, 0], [1, 1], ["max", "max"])).toBe(false)
    expect(dominates([1, 1], [2, 2], ["max", "max"])).toBe(false)
  })
  it("follows each objective's direction", () => {
    expect(dominates([2, 1], [1, 2], ["max", "min"])).toBe(true)
    expect(dominates([2, 3], [1, 2], ["max", "min"])).toBe(false)
    expect(dominates([1], [2], ["min"])).toBe(true)
  })
})

describe("paretoIndices", () => {
  it("keeps the non-dominated points, in input order", () => {
    const pts = [
      { a: 1, b: 5 },
      { a: 3, b: 3 },
      { a: 2, b: 2 }, // dominated by (3,3)
      { a: 5, b: 1 },
      { a: 0, b: 0 }, // dominated by all
    ]
    expect(paretoIndices(pts, maxBoth)).toEqual([0, 1, 3])
    expect(dominatedBy(pts, maxBoth)).toEqual([undefined, undefined, 1, undefined, 0])
  })
  it("a single point is its own front", () => {
    expect(paretoIndices([{ a: 1, b: 1 }], maxBoth)).toEqual([0])
  })
  it("keeps every point when all are equal", () => {
    const pts = [
      { a: 1, b: 1 },
      { a: 1, b: 1 },
      { a: 1, b: 1 },
    ]
    expect(paretoIndices(pts, maxBoth)).toEqual([0, 1, 2])
  })
  it("ties: equal points both stay, and both fall to a point better than them", () => {
    const pts = [
      { a: 2, b: 2 },
      { a: 2, b: 2 },
      { a: 3, b: 1 },
    ]
    expect(paretoIndices(pts, maxBoth)).toEqual([0, 1, 2])
    expect(paretoIndices([...pts, { a: 2, b: 3 }], maxBoth)).toEqual([2, 3])
  })
  it("a tie on one objective and better on another dominates", () => {
    expect(
      paretoIndices(
        [
          { a: 2, b: 1 },
          { a: 2, b: 2 },
        ],
        maxBoth,
      ),
    ).toEqual([1])
  })
  it("minimized objectives: the smaller value wins", () => {
    const pts = [
      { a: 2, b: 5 },
      { a: 2, b: 3 },
      { a: 1, b: 1 },
    ]
    expect(paretoIndices(pts, maxAminB)).toEqual([1, 2])
  })
  it("points with a missing value are neither on the front nor dominate", () => {
    const pts = [
      { a: Number.NaN, b: 9 },
      { a: 1, b: 1 },
    ]
    expect(paretoIndices(pts, maxBoth)).toEqual([1])
    expect(paretoIndices([], maxBoth)).toEqual([])
  })
})

/**
 * The Pareto set of a study's configurations (pure).
 *
 * Each point has objectives, each either maximized or minimized. Point a DOMINATES point b when a
 * is at least as good as b on every objective and strictly better on at least one. The Pareto set
 * is the points that no other point dominates. Consequences spelled out (and tested):
 *  - two points equal on every objective do not dominate each other: both stay in the set;
 *  - a single point is its own Pareto set; when all points are equal, all are in it;
 *  - a point with a missing (NaN or undefined) objective is left out of the comparison entirely:
 *    it is neither in the set nor allowed to dominate anyone (it could not be ranked).
 */

export type Direction = "max" | "min"

export interface Objective<A> {
  readonly name: string
  readonly direction: Direction
  readonly value: (a: A) => number | undefined
}

/** +1: a is better, -1: worse, 0: equal, on one objective. */
const compare = (direction: Direction, a: number, b: number): number =>
  a === b ? 0 : (direction === "max" ? a > b : a < b) ? 1 : -1

/** Does `a` dominate `b` on these objective values (same order and directions)? */
export const dominates = (
  a: ReadonlyArray<number>,
  b: ReadonlyArray<number>,
  directions: ReadonlyArray<Direction>,
): boolean => {
  let better = false
  for (let i = 0; i < directions.length; i++) {
    const c = compare(directions[i]!, a[i]!, b[i]!)
    if (c < 0) return false
    if (c > 0) better = true
  }
  return better
}

const finiteValues = <A>(p: A, objectives: ReadonlyArray<Objective<A>>): number[] | undefined => {
  const out: number[] = []
  for (const o of objectives) {
    const v = o.value(p)
    if (v === undefined || !Number.isFinite(v)) return undefined
    out.push(v)
  }
  return out
}

/**
 * Indices (in input order) of the points on the Pareto front. O(n^2 x objectives): a study has
 * tens of configurations.
 */
export const paretoIndices = <A>(
  points: ReadonlyArray<A>,
  objectives: ReadonlyArray<Objective<A>>,
): number[] => {
  const directions = objectives.map((o) => o.direction)
  const values = points.map((p) => finiteValues(p, objectives))
  const out: number[] = []
  for (let i = 0; i < points.length; i++) {
    const vi = values[i]
    if (vi === undefined) continue
    let dominated = false
    for (let j = 0; j < points.length && !dominated; j++) {
      const vj = values[j]
      if (j !== i && vj !== undefined && dominates(vj, vi, directions)) dominated = true
    }
    if (!dominated) out.push(i)
  }
  return out
}

/** For each point off the front, one point that dominates it (the first found), for the report. */
export const dominatedBy = <A>(
  points: ReadonlyArray<A>,
  objectives: ReadonlyArray<Objective<A>>,
): Array<number | undefined> => {
  const directions = objectives.map((o) => o.direction)
  const values = points.map((p) => finiteValues(p, objectives))
  return points.map((_, i) => {
    const vi = values[i]
    if (vi === undefined) return undefined
    for (let j = 0; j < points.length; j++) {
      const vj = values[j]
      if (j !== i && vj !== undefined && dominates(vj, vi, directions)) return j
    }
    return undefined
  })
}

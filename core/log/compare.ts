/**
 * Event comparison for `replay` (recorded vs re-executed) and `diff` (run vs run). Wall-clock
 * fields never count; for real adapters step time and memory are measurements, not results, so
 * they are left out too, and losses compare within a relative tolerance.
 */
import type { RunEvent } from "./events.ts"

export interface CompareOptions {
  /** Compare durations and memory too (the sim's are simulated, hence reproducible). */
  readonly measurements: boolean
  /** Relative tolerance on numbers (0 = exact). */
  readonly tolerance: number
  /**
   * With `measurements` false: compare step durations anyway, within this relative tolerance
   * (a trainer that states how far its step times may move on re-execution). Memory stays out.
   */
  readonly durationTolerance?: number | undefined
}

export interface Difference {
  readonly path: string
  readonly a: unknown
  readonly b: unknown
}

const WALL_CLOCK = new Set([
  "startedAt",
  "completedAt",
  "abortedAt",
  "resumedAt",
  "interruptedAt",
  "versions",
  "writer",
])
const MEASURED = new Set(["durationMs", "memory", "file", "info"])

const numbersClose = (a: number, b: number, tol: number) =>
  a === b ||
  (Number.isNaN(a) && Number.isNaN(b)) ||
  Math.abs(a - b) <= tol * Math.max(Math.abs(a), Math.abs(b))

const diffValues = (a: unknown, b: unknown, path: string, opts: CompareOptions): Difference | undefined => {
  if (typeof a === "number" && typeof b === "number")
    return numbersClose(a, b, opts.tolerance) ? undefined : { path, a, b }
  if (a === null || b === null || typeof a !== "object" || typeof b !== "object")
    return a === b ? undefined : { path, a, b }
  if (Array.isArray(a) !== Array.isArray(b)) return { path, a, b }
  const keys = new Set([...Object.keys(a), ...Object.keys(b)])
  for (const k of keys) {
    if (WALL_CLOCK.has(k)) continue
    if (!opts.measurements && MEASURED.has(k)) {
      if (k !== "durationMs" || opts.durationTolerance === undefined) continue
      const d = diffValues(
        (a as Record<string, unknown>)[k],
        (b as Record<string, unknown>)[k],
        path ? `${path}.${k}` : k,
        { measurements: false, tolerance: opts.durationTolerance },
      )
      if (d) return d
      continue
    }
    const d = diffValues(
      (a as Record<string, unknown>)[k],
      (b as Record<string, unknown>)[k],
      path ? `${path}.${k}` : k,
      opts,
    )
    if (d) return d
  }
  return undefined
}

/** The first difference between two events, or undefined when they match. */
export const compareEvents = (a: RunEvent, b: RunEvent, opts: CompareOptions): Difference | undefined => {
  if (a._tag !== b._tag) return { path: "_tag", a: a._tag, b: b._tag }
  if (a._tag === "RunStarted" && b._tag === "RunStarted") {
    // A replay re-creates the run: identity and provenance differ by design.
    const pick = (e: typeof a) => ({
      spec: e.spec,
      steps: e.steps,
      seed: e.seed,
      adapter: e.adapter.options,
      engine: e.engine,
    })
    return diffValues(pick(a), pick(b), "RunStarted", opts)
  }
  return diffValues(a, b, a._tag, opts)
}

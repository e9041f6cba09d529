/**
 * The outlier fence of a series of step times (pure): its own module because the results'
 * collection counts outliers when it builds a result, and the noise rules (noise.ts) read results:
 * with the count in noise.ts, results.ts and noise.ts imported each other.
 */
import type { Statistics } from "../common/index.ts"

/** Samples beyond the outlier fence (noise.ts explains it): median + max(3·MAD, 1% of median). */
export const outlierCount = (samples: ReadonlyArray<number>, s: Statistics | undefined): number => {
  if (!s) return 0
  const fence = s.p50 + Math.max(3 * s.mad, 0.01 * Math.abs(s.p50))
  let n = 0
  for (const x of samples) if (x > fence) n++
  return n
}

/**
 * Statistics defined once for the whole project: latency statistics that read the same as
 * tinybench 6's `Statistics` (the type is derived from its Schema below), and small helpers.
 *
 * Everything is a pure function of its input. Inputs are never mutated (we sort copies).
 */
import { Schema } from "effect"

// ---------------------------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------------------------

const ascending = (a: number, b: number): number => a - b

/** Arithmetic mean; NaN for an empty array. */
export const mean = (values: ReadonlyArray<number>): number => {
  if (values.length === 0) return Number.NaN
  // Running mean: no overflow on large byte counts, same order of operations as Welford below.
  let m = 0
  for (let i = 0; i < values.length; i++) m += (values[i]! - m) / (i + 1)
  return m
}

/**
 * Quantile of already-sorted values by linear interpolation between closest ranks
 * (Hyndman-Fan type 7, the default of R, NumPy and tinybench): h = (n - 1) q,
 * Q = x[floor h] + (h - floor h) (x[floor h + 1] - x[floor h]). NaN for an empty array.
 */
export const quantileSorted = (sorted: ReadonlyArray<number>, q: number): number => {
  if (sorted.length === 0) return Number.NaN
  if (!(q >= 0 && q <= 1)) throw new RangeError(`quantile: q must be in [0, 1], got ${q}`)
  const h = (sorted.length - 1) * q
  const lo = Math.floor(h)
  const x = sorted[lo]!
  if (h === lo) return x
  const y = sorted[lo + 1]!
  if (x === y) return x
  return x + (h - lo) * (y - x)
}

/** Quantile (type 7, see `quantileSorted`) of unsorted values; NaN for an empty array. */
export const quantile = (values: ReadonlyArray<number>, q: number): number =>
  quantileSorted([...values].sort(ascending), q)

/** Median: the 0.5 quantile (mean of the two middle values for an even count); NaN when empty. */
export const median = (values: ReadonlyArray<number>): number => quantile(values, 0.5)

/**
 * Mean absolute percentage error of `predicted` against `actual`, in percent:
 * 100/n * sum |actual_i - predicted_i| / |actual_i|, over the n pairs whose actual value is not 0
 * (the error is undefined there, so such pairs are left out). NaN when no pair is left.
 * Throws RangeError when the arrays differ in length (a caller bug, not a data condition).
 */
export const mape = (actual: ReadonlyArray<number>, predicted: ReadonlyArray<number>): number => {
  if (actual.length !== predicted.length)
    throw new RangeError(`mape: ${actual.length} actual values but ${predicted.length} predicted`)
  let sum = 0
  let n = 0
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i]!
    if (a === 0) continue
    sum += Math.abs(a - predicted[i]!) / Math.abs(a)
    n++
  }
  return n === 0 ? Number.NaN : (100 * sum) / n
}

// ---------------------------------------------------------------------------------------------
// Student's t critical value
// ---------------------------------------------------------------------------------------------

/** Lanczos approximation (g = 7, n = 9) of ln Γ(x) for x > 0. */
const LANCZOS = [
  0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059,
  12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
]
const logGamma = (x: number): number => {
  if (x < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * x)) - logGamma(1 - x)
  const z = x - 1
  let s = LANCZOS[0]!
  for (let i = 1; i < LANCZOS.length; i++) s += LANCZOS[i]! / (z + i)
  const t = z + 7.5
  return 0.5 * Math.log(2 * Math.PI) + (z + 0.5) * Math.log(t) - t + Math.log(s)
}

/**
 * ln Γ(a + 1/2) - ln Γ(a). For large a the difference of two big logGammas loses digits, so use
 * the Stirling series: ½ ln a + Σ_k (-1)^k (B_k(½) - B_k(0)) / (k (k-1) a^(k-1)), which with
 * B_k(½) = (2^(1-k) - 1) B_k gives the terms below.
 */
const logGammaHalfRatio = (a: number): number => {
  if (a < 16) return logGamma(a + 0.5) - logGamma(a)
  const x = 1 / a
  const x2 = x * x
  return (
    0.5 * Math.log(a) -
    x / 8 +
    (x * x2) / 192 -
    (x * x2 * x2) / 640 +
    (17 * x * x2 ** 3) / 14336 -
    (31 * x * x2 ** 4) / 18432
  )
}

/** Continued fraction for the regularized incomplete beta function (modified Lentz). */
const betaContinuedFraction = (a: number, b: number, x: number): number => {
  const tiny = 1e-300
  const qab = a + b
  const qap = a + 1
  const qam = a - 1
  let c = 1
  let d = 1 - (qab * x) / qap
  if (Math.abs(d) < tiny) d = tiny
  d = 1 / d
  let h = d
  for (let m = 1; m <= 10_000; m++) {
    const m2 = 2 * m
    let aa = (m * (b - m) * x) / ((qam + m2) * (a + m2))
    d = 1 + aa * d
    if (Math.abs(d) < tiny) d = tiny
    c = 1 + aa / c
    if (Math.abs(c) < tiny) c = tiny
    d = 1 / d
    h *= d * c
    aa = (-(a + m) * (qab + m) * x) / ((a + m2) * (qap + m2))
    d = 1 + aa * d
    if (Math.abs(d) < tiny) d = tiny
    c = 1 + aa / c
    if (Math.abs(c) < tiny) c = tiny
    d = 1 / d
    const delta = d * c
    h *= delta
    if (Math.abs(delta - 1) < 1e-16) break
  }
  return h
}

/** Two-sided tail P(|T| > t) of Student's t with `df` degrees of freedom: I_{df/(df+t²)}(df/2, ½). */
const studentTwoSidedTail = (t: number, df: number): number => {
  const x = df / (df + t * t)
  const a = df / 2
  const b = 0.5
  // ln of x^a (1-x)^b / B(a, b), with ln B(a, ½) = ln Γ(½) - (ln Γ(a + ½) - ln Γ(a)).
  const logFront = a * Math.log(x) + b * Math.log1p(-x) - 0.5 * Math.log(Math.PI) + logGammaHalfRatio(a)
  const front = Math.exp(logFront)
  return x < (a + 1) / (a + b + 2)
    ? (front * betaContinuedFraction(a, b, x)) / a
    : 1 - (front * betaContinuedFraction(b, a, 1 - x)) / b
}

/** The standard normal 0.975 quantile. */
const Z975 = 1.959963984540054

/**
 * Two-sided 95% critical value of Student's t, i.e. the 0.975 quantile, for `df` degrees of freedom
 * (df < 1 is treated as 1, as tinybench does). Exact (bisection on the t tail) up to 1000 degrees of
 * freedom; above that the Cornish-Fisher expansion in 1/df (Abramowitz & Stegun 26.7.5), whose
 * truncation error there is below 1e-14.
 */
export const studentTCritical95 = (df: number): number => {
  const v = df >= 1 ? df : 1
  if (v > 1000) {
    const z = Z975
    const z2 = z * z
    const g1 = (z * (z2 + 1)) / 4
    const g2 = (z * ((5 * z2 + 16) * z2 + 3)) / 96
    const g3 = (z * (((3 * z2 + 19) * z2 + 17) * z2 - 15)) / 384
    const g4 = (z * ((((79 * z2 + 776) * z2 + 1482) * z2 - 1920) * z2 - 945)) / 92160
    return z + g1 / v + g2 / v ** 2 + g3 / v ** 3 + g4 / v ** 4
  }
  // The tail falls as t grows; the 95% value lies in [z, t(1)] = [1.96, 12.71] for every df >= 1.
  let lo = Z975
  let hi = 12.8
  for (let i = 0; i < 200; i++) {
    const mid = (lo + hi) / 2
    if (mid === lo || mid === hi) break
    if (studentTwoSidedTail(mid, v) > 0.05) lo = mid
    else hi = mid
  }
  return (lo + hi) / 2
}

/** A number that may be non-finite: finite numbers as JSON numbers, the others as strings. */
export const NumberJson = Schema.transform(
  Schema.Union(Schema.Finite, Schema.Literal("Infinity", "-Infinity", "NaN")),
  Schema.Number,
  {
    strict: true,
    decode: (v) => (typeof v === "number" ? v : Number(v)),
    encode: (n) => (Number.isFinite(n) ? n : (String(n) as "Infinity" | "-Infinity" | "NaN")),
  },
)

/** tinybench 6's `Statistics` (definitions below), in the unit of its samples: milliseconds here. */
export const Statistics = Schema.Struct({
  aad: Schema.Finite,
  critical: Schema.Finite,
  df: Schema.NonNegativeInt,
  mad: Schema.Finite,
  max: Schema.Finite,
  mean: Schema.Finite,
  min: Schema.Finite,
  moe: Schema.Finite,
  p50: Schema.Finite,
  p75: Schema.Finite,
  p99: Schema.Finite,
  p995: Schema.Finite,
  p999: Schema.Finite,
  rme: NumberJson,
  samples: Schema.optional(Schema.Array(Schema.Finite)),
  samplesCount: Schema.NonNegativeInt,
  sd: Schema.Finite,
  sem: Schema.Finite,
  variance: Schema.Finite,
})
export type Statistics = typeof Statistics.Type

// ---------------------------------------------------------------------------------------------
// Latency statistics (tinybench 6 shape and definitions)
// ---------------------------------------------------------------------------------------------

/**
 * tinybench-compatible statistics of latency samples (any unit; we use ms). Undefined for no
 * samples, since no statistic is defined then. Non-finite samples make the result non-finite;
 * callers drop failed steps before.
 */
export const latencyStatistics = (
  samplesMs: ReadonlyArray<number>,
  options: { readonly retainSamples?: boolean } = {},
): Statistics | undefined => {
  const n = samplesMs.length
  if (n === 0) return undefined
  const sorted = [...samplesMs].sort(ascending)
  // Welford: one pass, numerically stable for large, close values (e.g. byte counts, ns).
  let m = 0
  let m2 = 0
  for (let i = 0; i < n; i++) {
    const x = sorted[i]!
    const d = x - m
    m += d / (i + 1)
    m2 += d * (x - m)
  }
  const variance = n === 1 ? 0 : m2 / (n - 1)
  const sd = Math.sqrt(variance)
  const sem = sd / Math.sqrt(n)
  const df = n - 1
  const critical = studentTCritical95(df)
  const moe = sem * critical
  const p50 = quantileSorted(sorted, 0.5)
  let aad = 0
  for (let i = 0; i < n; i++) aad += (Math.abs(sorted[i]! - m) - aad) / (i + 1)
  const deviations = sorted.map((x) => Math.abs(x - p50)).sort(ascending)
  return {
    aad,
    critical,
    df,
    mad: n === 1 ? 0 : quantileSorted(deviations, 0.5),
    max: sorted[n - 1]!,
    mean: m,
    min: sorted[0]!,
    moe,
    p50,
    p75: quantileSorted(sorted, 0.75),
    p99: quantileSorted(sorted, 0.99),
    p995: quantileSorted(sorted, 0.995),
    p999: quantileSorted(sorted, 0.999),
    rme: m === 0 ? Number.POSITIVE_INFINITY : (moe / Math.abs(m)) * 100,
    samples: options.retainSamples ? sorted : undefined,
    samplesCount: n,
    sd,
    sem,
    variance,
  }
}

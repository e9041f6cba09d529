/**
 * Number formatting, defined once for the terminal, markdown and HTML, so a value reads the same
 * everywhere. Missing values (null, undefined, NaN) print as an em dash.
 */

export const MISSING = "—"

const missing = (x: number | null | undefined): x is null | undefined =>
  x === null || x === undefined || Number.isNaN(x)

/**
 * An integer below 1e15 with comma thousands separators, as toLocaleString("en-US") writes it,
 * without it: the first toLocaleString call loads ICU's locale data, tens of ms at every start.
 */
/** "1 step", "2 steps": a count and its word, plural unless the count is 1. */
export const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? "" : "s"}`

export const groupThousands = (n: number): string => {
  const digits = String(Math.abs(n))
  let out = ""
  for (let i = 0; i < digits.length; i++) {
    if (i > 0 && (digits.length - i) % 3 === 0) out += ","
    out += digits[i]
  }
  return n < 0 ? `-${out}` : out
}

/**
 * Three significant digits, thousands separated (0.0123, 1.23, 12.3, 123, 1,234), and exponent
 * notation below 0.001 so learning rates stay readable (1.00e-5).
 */
export const formatNumber = (x: number | null | undefined): string => {
  if (missing(x)) return MISSING
  if (!Number.isFinite(x)) return x > 0 ? "∞" : "-∞"
  const a = Math.abs(x)
  if (a === 0) return "0"
  if (a >= 1e15) return x.toExponential(2)
  if (a >= 100 || Number.isInteger(x)) return groupThousands(Math.round(x))
  if (a >= 1) return x.toFixed(a >= 10 ? 1 : 2)
  if (a < 1e-3) return x.toExponential(2)
  return x.toPrecision(3)
}

const BYTE_UNITS = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"] as const

/** Binary units, three significant digits: 512 B, 12.0 KiB, 945 MiB, 1.23 GiB. Keeps the sign. */
export const formatBytes = (bytes: number | null | undefined): string => {
  if (missing(bytes)) return MISSING
  let v = Math.abs(bytes)
  let unit = 0
  while (v >= 1024 && unit < BYTE_UNITS.length - 1) {
    v /= 1024
    unit++
  }
  const digits = unit === 0 || v >= 100 ? 0 : v >= 10 ? 1 : 2
  return `${bytes < 0 ? "-" : ""}${v.toFixed(digits)} ${BYTE_UNITS[unit]}`
}

export const formatMs = (ms: number | null | undefined): string =>
  missing(ms) ? MISSING : `${formatNumber(ms)} ms`

/** A duration for people: 850 ms, 12.3 s, 4 min 05 s, 2 h 03 min, 3.2 days. */
export const formatDuration = (ms: number | null | undefined): string => {
  if (missing(ms)) return MISSING
  if (!Number.isFinite(ms)) return "∞"
  if (ms < 1000) return `${Math.round(ms)} ms`
  const s = ms / 1000
  if (s < 60) return `${s.toFixed(s < 10 ? 2 : 1)} s`
  const min = Math.floor(s / 60)
  if (min < 60) return `${min} min ${String(Math.floor(s % 60)).padStart(2, "0")} s`
  const h = Math.floor(min / 60)
  if (h < 48) return `${h} h ${String(min % 60).padStart(2, "0")} min`
  const days = h / 24
  if (days < 365 * 3) return `${days.toFixed(1)} days`
  const years = days / 365.25
  return years < 1e4 ? `${years.toFixed(1)} years` : `${years.toExponential(2)} years`
}

/** A rate per second: 12.3, 45.6k, 1.45M. */
export const formatRate = (perSec: number): string =>
  perSec >= 1e6
    ? `${(perSec / 1e6).toFixed(2)}M`
    : perSec >= 1e4
      ? `${(perSec / 1e3).toFixed(1)}k`
      : perSec.toFixed(1)

/** A fraction as a percentage with one decimal: 0.2214 -> 22.1%. */
export const formatPercent = (fraction: number | null | undefined): string =>
  missing(fraction) ? MISSING : `${(fraction * 100).toFixed(1)}%`

/** A multiplier: 1.8512 -> 1.85×. */
export const formatFactor = (x: number | null | undefined): string =>
  missing(x) ? MISSING : `${x.toFixed(2)}×`

export const formatRatio = (r: { readonly visual: number; readonly text: number }): string =>
  `${r.visual}:${r.text}`

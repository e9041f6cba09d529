/**
 * Number formatting shared by the markdown, HTML and terminal reports, so one value reads the same
 * everywhere. Missing values (null, undefined, NaN) print as an em dash.
 */

export const MISSING = "—"

const missing = (x: number | null | undefined): x is null | undefined =>
  x === null || x === undefined || Number.isNaN(x)

/** Three significant digits, thousands separated: 0.0123, 1.23, 12.3, 123, 1,234. */
export const formatNumber = (x: number | null | undefined): string => {
  if (missing(x)) return MISSING
  if (!Number.isFinite(x)) return x > 0 ? "∞" : "-∞"
  const a = Math.abs(x)
  if (a === 0) return "0"
  if (a >= 100) return Math.round(x).toLocaleString("en-US")
  if (a >= 1) return x.toFixed(a >= 10 ? 1 : 2)
  return x.toPrecision(3)
}

const BYTE_UNITS = ["B", "KiB", "MiB", "GiB", "TiB"] as const

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

/** A fraction as a percentage with one decimal: 0.2214 -> 22.1%. */
export const formatPercent = (fraction: number | null | undefined): string =>
  missing(fraction) ? MISSING : `${(fraction * 100).toFixed(1)}%`

/** A multiplier: 1.8512 -> 1.85×. */
export const formatFactor = (x: number | null | undefined): string =>
  missing(x) ? MISSING : `${x.toFixed(2)}×`

export const formatRatio = (r: { readonly visual: number; readonly text: number }): string =>
  `${r.visual}:${r.text}`

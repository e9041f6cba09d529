/** Terminal output: tables, numbers, JSON, and the progress line. */
import type { Progress } from "../core/run/engine.ts"

export const printJson = (value: unknown): void => {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`)
}

export const println = (line = ""): void => {
  process.stdout.write(`${line}\n`)
}

/** Left-aligned text columns, right-aligned numbers. */
export const table = (
  headers: ReadonlyArray<string>,
  rows: ReadonlyArray<ReadonlyArray<string | number>>,
): string => {
  const cells = rows.map((r) => r.map((c) => (typeof c === "number" ? fmtNum(c) : c)))
  const numeric = headers.map((_, i) => rows.length > 0 && rows.every((r) => typeof r[i] === "number"))
  const widths = headers.map((h, i) => Math.max(h.length, ...cells.map((r) => (r[i] ?? "").length)))
  const line = (r: ReadonlyArray<string>) =>
    r
      .map((c, i) => (numeric[i] ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join("  ")
      .trimEnd()
  return [line(headers), line(widths.map((w) => "-".repeat(w))), ...cells.map(line)].join("\n")
}

export const fmtNum = (x: number): string => {
  if (!Number.isFinite(x)) return String(x)
  if (Number.isInteger(x)) return String(x)
  const a = Math.abs(x)
  if (a !== 0 && (a < 1e-3 || a >= 1e6)) return x.toExponential(3)
  return x.toPrecision(4).replace(/\.?0+$/, "")
}

export const fmtBytes = (b: number | undefined): string => {
  if (b === undefined) return "-"
  const units = ["B", "KiB", "MiB", "GiB", "TiB"]
  let v = b
  let u = 0
  while (Math.abs(v) >= 1024 && u < units.length - 1) {
    v /= 1024
    u++
  }
  return `${v.toFixed(u === 0 ? 0 : 1)} ${units[u]}`
}

export const fmtRate = (perSec: number): string =>
  perSec >= 1e6
    ? `${(perSec / 1e6).toFixed(2)}M`
    : perSec >= 1e4
      ? `${(perSec / 1e3).toFixed(1)}k`
      : perSec.toFixed(1)

/**
 * A progress line on stderr, redrawn in place, only when stderr is a TTY (or INTERLEAVE_PROGRESS=1,
 * which prints a plain periodic line instead). Throttled so drawing never costs the run.
 */
export const makeProgress = (label: string, total: number, startStep = 0) => {
  const tty = process.stderr.isTTY === true
  const forced = process.env.INTERLEAVE_PROGRESS === "1"
  if (!tty && !forced) return { update: (_p: Progress) => {}, done: () => {} }
  let last = 0
  let drawn = false
  const update = (p: Progress) => {
    const now = Date.now()
    if (now - last < (tty ? 100 : 1000)) return
    last = now
    const s = p.state
    const doneSteps = s.lastStep + 1
    const frac = total > 0 ? Math.min(1, doneSteps / total) : 1
    const rate = p.elapsedMs > 0 ? (p.stepsThisSession * 1000) / p.elapsedMs : 0
    const width = 24
    const fill = Math.round(frac * width)
    const loss = (x: number | undefined) => (x === undefined ? "-" : fmtNum(x))
    const text =
      `${label} [${"#".repeat(fill)}${".".repeat(width - fill)}] ${(frac * 100).toFixed(1)}% ` +
      `step ${doneSteps}/${total} ${fmtRate(rate)} steps/s loss V ${loss(s.lastLoss.visual)} T ${loss(s.lastLoss.text)}`
    if (tty) {
      process.stderr.write(`\r\x1b[2K${text}`)
      drawn = true
    } else process.stderr.write(`${text}\n`)
    void startStep
  }
  const done = () => {
    if (drawn) process.stderr.write("\r\x1b[2K")
  }
  return { update, done }
}

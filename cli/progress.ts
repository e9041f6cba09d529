/**
 * Progress of long work on stderr. On a TTY: one line redrawn in place (bar, steps/s, elapsed,
 * ETA, phase, last losses), at most ten times a second. Elsewhere (CI logs, pipes): a line per
 * finished unit (a phase of a run, a configuration of a sweep), plus one every 30 s of silence.
 * INTERLEAVE_PROGRESS=1 forces the plain lines; INTERLEAVE_PROGRESS=0 silences everything.
 */
import { formatDuration, formatNumber, formatRate } from "../core/common/index.ts"
import type { Progress } from "../core/run/index.ts"
import { makePlanner, type ScheduleSpec } from "../core/schedule/index.ts"
import { colourAllowed } from "./output.ts"

export interface ProgressReporter {
  readonly update: (p: Progress) => void
  /** A finished unit: redrawn above the bar on a TTY, a line of its own elsewhere. */
  readonly unit: (text: string) => void
  readonly done: () => void
}

const silent: ProgressReporter = { update: () => {}, unit: () => {}, done: () => {} }

export interface ProgressOptions {
  readonly label: string
  /** Steps of the whole job (the run's planned length). */
  readonly total: number
  /** Where each phase but the last ends (phaseSpans): a line as each one finishes. */
  readonly phases?: ReadonlyArray<PhaseSpan> | undefined
}

export interface PhaseSpan {
  readonly name: string
  /** The global step after the phase's last. */
  readonly end: number
}

/**
 * The phases of a spec that end before `total`. The engine reports progress once per append
 * batch, which may hold a whole short phase, so a phase's end is found by its step, not by seeing
 * it in a report.
 */
export const phaseSpans = (spec: ScheduleSpec, total: number): ReadonlyArray<PhaseSpan> => {
  const { starts } = makePlanner(spec)
  return spec.phases
    .map((p, i) => ({ name: p.name, end: starts[i + 1] ?? Number.POSITIVE_INFINITY }))
    .filter((s) => s.end < total)
}

const mode = (): "tty" | "lines" | "off" => {
  const forced = process.env.INTERLEAVE_PROGRESS
  if (forced === "0") return "off"
  if (forced === "1") return "lines"
  return colourAllowed(process.stderr) ? "tty" : "lines"
}

/**
 * The terminal's width: stderr's (the line is drawn there), else stdout's, else 80. A pseudo-terminal
 * that was never sized (`script`, some CI runners) reports 0 columns, not undefined.
 */
const terminalColumns = (): number => {
  for (const c of [process.stderr.columns, process.stdout.columns]) if (c !== undefined && c > 0) return c
  return 80
}

/**
 * The parts joined with " · " in order (the least needed last), as many as fit in `columns - 1` characters (the last column
 * left free, so the terminal never wraps the line and a redraw clears all of it); a first part too
 * long alone is cut with "…".
 */
export const fitLine = (parts: ReadonlyArray<string>, columns: number): string => {
  const room = Math.max(1, columns - 1)
  let out = ""
  for (const part of parts) {
    const next = out === "" ? part : `${out} · ${part}`
    if ([...next].length > room) break
    out = next
  }
  if (out !== "") return out
  const first = [...(parts[0] ?? "")]
  return first.length <= room ? first.join("") : `${first.slice(0, room - 1).join("")}…`
}

export const makeProgress = (o: ProgressOptions): ProgressReporter => {
  const m = mode()
  if (m === "off") return silent
  const tty = m === "tty"
  const write = (s: string) => process.stderr.write(s)
  let lastDraw = 0
  let lastLine = Date.now()
  let drawn = false
  let last: Progress | undefined

  const status = (p: Progress): string => {
    const s = p.state
    const doneSteps = s.lastStep + 1
    const frac = o.total > 0 ? Math.min(1, doneSteps / o.total) : 1
    const rate = p.elapsedMs > 0 ? (p.stepsThisSession * 1000) / p.elapsedMs : 0
    const left = o.total - doneSteps
    const eta = rate > 0 ? formatDuration((left / rate) * 1000) : "?"
    const loss = (x: number | undefined) => (x === undefined ? "-" : formatNumber(x))
    const width = 20
    const fill = Math.round(frac * width)
    const bar = tty ? ` [${"#".repeat(fill)}${".".repeat(width - fill)}]` : ""
    const parts = [
      `${o.label}${bar} ${(frac * 100).toFixed(1)}% step ${doneSteps}/${o.total}`,
      `${formatRate(rate)} steps/s`,
      `elapsed ${formatDuration(p.elapsedMs)}`,
      `ETA ${eta}`,
      `phase ${s.phase ?? "-"}`,
      `loss V ${loss(s.lastLoss.visual)} T ${loss(s.lastLoss.text)}`,
    ]
    return tty ? fitLine(parts, terminalColumns()) : parts.join(" · ")
  }
  const clear = () => {
    if (drawn) write("\r\x1b[2K")
    drawn = false
  }
  const unit = (text: string) => {
    if (tty) {
      clear()
      write(`${text}\n`)
      if (last) {
        write(status(last))
        drawn = true
      }
    } else write(`${text}\n`)
    lastLine = Date.now()
  }
  const spans = o.phases ?? []
  // Index of the next phase end to announce; phases finished before this session are skipped.
  let next: number | undefined
  const update = (p: Progress) => {
    last = p
    const now = Date.now()
    const doneSteps = p.state.lastStep + 1
    if (next === undefined) {
      const before = doneSteps - p.stepsThisSession
      next = spans.findIndex((s) => s.end > before)
      if (next < 0) next = spans.length
    }
    for (; next < spans.length && spans[next]!.end <= doneSteps; next++)
      unit(`${o.label}: phase ${spans[next]!.name} done at step ${spans[next]!.end}/${o.total}`)
    if (tty) {
      if (now - lastDraw < 100) return
      lastDraw = now
      clear()
      write(status(p))
      drawn = true
    } else if (now - lastLine >= 30_000) {
      write(`${status(p)}\n`)
      lastLine = now
    }
  }
  return { update, unit, done: clear }
}

/**
 * Terminal output. Everything a command prints goes through Effect's `Console` (stdout: `log`,
 * stderr: `error`), so commands run in-process in tests with a capturing console. Colour and
 * redrawn progress lines only where the stream is a TTY, never with NO_COLOR or TERM=dumb.
 */
import { Console, Effect } from "effect"
import { formatNumber } from "../core/common/index.ts"

/** Whether a stream may carry colour and cursor control. */
export const colourAllowed = (stream: { readonly isTTY?: boolean }): boolean =>
  stream.isTTY === true &&
  process.env.NO_COLOR === undefined &&
  process.env.TERM !== "dumb" &&
  process.env.FORCE_COLOR !== "0"

export const terminalWidth = (): number => {
  const cols = process.stdout.columns
  return typeof cols === "number" && cols >= 40 ? Math.min(cols, 120) : 80
}

export const line = (text = ""): Effect.Effect<void> => Console.log(text)
export const lines = (texts: ReadonlyArray<string>): Effect.Effect<void> => Console.log(texts.join("\n"))
export const json = (value: unknown): Effect.Effect<void> => Console.log(JSON.stringify(value, null, 2))
/** A note for the user on stderr (never mixed into --json output on stdout). */
export const note = (text: string): Effect.Effect<void> => Console.error(text)
export const warn = (text: string): Effect.Effect<void> => Console.error(`interleave: warning: ${text}`)

/** Left-aligned text columns, right-aligned numbers. */
export const table = (
  headers: ReadonlyArray<string>,
  rows: ReadonlyArray<ReadonlyArray<string | number>>,
): string => {
  const cells = rows.map((r) => r.map((c) => (typeof c === "number" ? formatNumber(c) : c)))
  const numeric = headers.map((_, i) => rows.length > 0 && rows.every((r) => typeof r[i] === "number"))
  const widths = headers.map((h, i) => {
    let w = h.length
    for (const r of cells) w = Math.max(w, (r[i] ?? "").length)
    return w
  })
  const row = (r: ReadonlyArray<string>) =>
    r
      .map((c, i) => (numeric[i] ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join("  ")
      .trimEnd()
  return [row(headers), row(widths.map((w) => "-".repeat(w))), ...cells.map(row)].join("\n")
}

/** Runs `f` as a synchronous effect (for progress callbacks that must not be Effects). */
export const sync = (f: () => void): Effect.Effect<void> => Effect.sync(f)

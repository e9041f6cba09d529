/**
 * Help pages, rendered from the command definitions: plain text wrapped to the terminal's width,
 * with bold headings only when colour is allowed (a TTY, no NO_COLOR, TERM not dumb).
 */
import type { CommandDoc } from "./command.ts"
import type { FlagDoc } from "./flags.ts"

export interface HelpStyle {
  readonly width: number
  readonly colour: boolean
}

const bold = (s: string, style: HelpStyle) => (style.colour ? `\x1b[1m${s}\x1b[22m` : s)

/** Greedy word wrap of one paragraph into lines of at most `width` characters after `indent`. */
export const wrap = (text: string, width: number, indent = 0, firstIndent = indent): string[] => {
  const lines: string[] = []
  let line = ""
  let lead = " ".repeat(firstIndent)
  const max = Math.max(20, width)
  for (const word of text.split(/\s+/).filter((w) => w.length > 0)) {
    if (line === "") line = lead + word
    else if (line.length + 1 + word.length <= max) line += ` ${word}`
    else {
      lines.push(line)
      lead = " ".repeat(indent)
      line = lead + word
    }
  }
  if (line !== "") lines.push(line)
  return lines.length > 0 ? lines : [lead.trimEnd()]
}

/** A two-column list (names left, wrapped descriptions right). */
const definitionList = (rows: ReadonlyArray<[string, string]>, style: HelpStyle): string[] => {
  const left = Math.min(28, Math.max(...rows.map(([n]) => n.length)) + 4)
  const out: string[] = []
  for (const [name, text] of rows) {
    const head = `  ${name}`
    if (head.length + 2 > left) {
      out.push(head)
      out.push(...wrap(text, style.width, left))
    } else {
      const body = wrap(text, style.width, left, left)
      out.push(head.padEnd(left) + body[0]!.slice(left))
      out.push(...body.slice(1))
    }
  }
  return out
}

const flagLabel = (f: FlagDoc): string => (f.value ? `--${f.name} ${f.value}` : `--${f.name}`)

const flagText = (f: FlagDoc): string => {
  const parts = [f.description]
  if (f.choices) parts.push(`One of: ${f.choices.join(", ")}.`)
  if (f.default !== undefined) parts.push(`Default: ${f.default}.`)
  return parts.join(" ")
}

const usageLine = (path: string, doc: CommandDoc): string => {
  const args = doc.args.map((a) => (a.optional ? `[<${a.name}>]` : `<${a.name}>`))
  const sub = doc.subcommands.length > 0 ? ["<command>"] : []
  const opts = doc.flags.length > 0 ? ["[options]"] : []
  return [path, ...sub, ...args, ...opts].join(" ")
}

/** The help page of one command (`path` is how the user reached it, e.g. `interleave bench`). */
export const commandHelp = (path: string, doc: CommandDoc, style: HelpStyle): string => {
  const out: string[] = []
  out.push(...wrap(`${path}: ${doc.summary}`, style.width))
  for (const p of doc.details) {
    out.push("")
    out.push(...wrap(p, style.width))
  }
  out.push("", bold("Usage", style), ...wrap(usageLine(path, doc), style.width, 4, 2))
  if (doc.subcommands.length > 0) {
    out.push("", bold("Commands", style))
    out.push(
      ...definitionList(
        doc.subcommands.map((s) => [s.name, s.summary]),
        style,
      ),
    )
  }
  if (doc.args.length > 0) {
    out.push("", bold("Arguments", style))
    out.push(
      ...definitionList(
        doc.args.map((a) => [`<${a.name}>`, a.optional ? `${a.description} (optional)` : a.description]),
        style,
      ),
    )
  }
  out.push("", bold("Options", style))
  out.push(
    ...definitionList(
      [
        ...doc.flags.map((f): [string, string] => [flagLabel(f), flagText(f)]),
        ["-h, --help", "Show this help."],
      ],
      style,
    ),
  )
  if (doc.examples.length > 0) {
    out.push("", bold(doc.examples.length === 1 ? "Example" : "Examples", style))
    for (const e of doc.examples) out.push(...wrap(e, style.width, 4, 2))
  }
  return out.join("\n")
}

/** The top-level page: what the tool does, its commands, exit codes. */
export const rootHelp = (
  name: string,
  version: string,
  summary: string,
  commands: ReadonlyArray<CommandDoc>,
  notes: ReadonlyArray<string>,
  style: HelpStyle,
): string => {
  const out: string[] = []
  out.push(...wrap(`${name} ${version}: ${summary}`, style.width))
  out.push("", bold("Usage", style), `  ${name} <command> [arguments] [options]`)
  out.push("", bold("Commands", style))
  out.push(
    ...definitionList(
      commands.map((c) => [c.name, c.summary]),
      style,
    ),
  )
  for (const n of notes) {
    out.push("")
    out.push(...wrap(n, style.width))
  }
  out.push("", `Run \`${name} <command> --help\` for a command's options and an example.`)
  return out.join("\n")
}

/**
 * Reads the command line against the command definitions before the parser sees it, so that a
 * mistyped flag or value gets one line that names it (with "did you mean"), and `--help` anywhere
 * shows our help page. Pure: argv in, a decision out.
 */
import type { CommandDoc } from "./command.ts"
import type { FlagDoc } from "./flags.ts"

export type ArgvDecision =
  | { readonly _tag: "Run" }
  | { readonly _tag: "Help"; readonly path: ReadonlyArray<string>; readonly doc: CommandDoc | undefined }
  | { readonly _tag: "Version" }
  | { readonly _tag: "Invalid"; readonly message: string }

/** Levenshtein distance, for suggestions. */
export const editDistance = (a: string, b: string): number => {
  const prev = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0]!
    prev[0] = i
    for (let j = 1; j <= b.length; j++) {
      const up = prev[j]!
      prev[j] = Math.min(prev[j]! + 1, prev[j - 1]! + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1))
      diag = up
    }
  }
  return prev[b.length]!
}

/** The closest known name, if it is close enough to be what the user meant. */
export const suggest = (input: string, known: ReadonlyArray<string>): string | undefined => {
  let best: string | undefined
  let bestD = Number.POSITIVE_INFINITY
  for (const k of known) {
    const d = editDistance(input, k)
    if (d < bestD) {
      best = k
      bestD = d
    }
  }
  // Transpositions and a missing letter are distance 1-2; long names tolerate a bit more.
  return best !== undefined && bestD <= Math.max(2, Math.floor(best.length / 4)) ? best : undefined
}

const didYouMean = (s: string | undefined, prefix = "") => (s ? ` (did you mean ${prefix}${s}?)` : "")

const INTEGER = /^[+-]?\d+$/
const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/

const checkValue = (f: FlagDoc, value: string, where: string): string | undefined => {
  switch (f.kind) {
    case "integer":
      return INTEGER.test(value) ? undefined : `${where}: expected an integer, got "${value}"`
    case "number":
      return NUMBER.test(value) && Number.isFinite(Number(value))
        ? undefined
        : `${where}: expected a number, got "${value}"`
    case "choice":
      return f.choices?.includes(value)
        ? undefined
        : `${where}: must be one of ${f.choices?.join(", ")}, got "${value}"${didYouMean(suggest(value, f.choices ?? []))}`
    default:
      return undefined
  }
}

/**
 * `args` is argv after the executable and script. `commands` are the top-level commands.
 * Returns what to do: run (the parser will accept it), show help, or refuse with a message.
 */
export const checkArgv = (args: ReadonlyArray<string>, commands: ReadonlyArray<CommandDoc>): ArgvDecision => {
  if (args.length === 0) return { _tag: "Help", path: [], doc: undefined }
  const first = args[0]!
  if (first === "--help" || first === "-h" || first === "help") {
    const target = args[1] ? commands.find((c) => c.name === args[1]) : undefined
    return { _tag: "Help", path: target ? [target.name] : [], doc: target }
  }
  if (first === "--version") return { _tag: "Version" }
  const top = commands.find((c) => c.name === first)
  if (!top) {
    if (first.startsWith("-"))
      return { _tag: "Invalid", message: `${first}: give a command first (see \`interleave --help\`)` }
    return {
      _tag: "Invalid",
      message: `unknown command "${first}"${didYouMean(
        suggest(
          first,
          commands.map((c) => c.name),
        ),
      )}; see \`interleave --help\``,
    }
  }
  let doc: CommandDoc = top
  const path = [doc.name]
  let i = 1
  // Descend into subcommands (`bench report`, `sim fit`).
  while (i < args.length && doc.subcommands.length > 0) {
    const next: CommandDoc | undefined = doc.subcommands.find((s) => s.name === args[i])
    if (!next) break
    doc = next
    path.push(next.name)
    i++
  }
  const rest = args.slice(i)
  if (rest.includes("--help") || rest.includes("-h")) return { _tag: "Help", path, doc }
  const where = path.join(" ")
  if (doc.subcommands.length > 0 && doc.args.length === 0 && doc.flags.length === 0) {
    const sub = rest[0]
    if (sub === undefined)
      return { _tag: "Invalid", message: `${where}: give a command (see \`interleave ${where} --help\`)` }
    return {
      _tag: "Invalid",
      message: `${where}: unknown command "${sub}"${didYouMean(
        suggest(
          sub,
          doc.subcommands.map((s) => s.name),
        ),
      )}`,
    }
  }
  const byName = new Map(doc.flags.map((f) => [f.name, f]))
  const positional: string[] = []
  for (let j = 0; j < rest.length; j++) {
    const token = rest[j]!
    if (token === "--") {
      positional.push(...rest.slice(j + 1))
      break
    }
    if (token.startsWith("--")) {
      const eq = token.indexOf("=")
      const name = token.slice(2, eq < 0 ? undefined : eq)
      const f = byName.get(name)
      if (!f)
        return {
          _tag: "Invalid",
          message: `${where}: unknown option --${name}${didYouMean(suggest(name, [...byName.keys()]), "--")}; see \`interleave ${where} --help\``,
        }
      if (f.kind === "boolean") {
        if (eq >= 0 && !["true", "false"].includes(token.slice(eq + 1)))
          return { _tag: "Invalid", message: `--${name}: takes no value, got "${token.slice(eq + 1)}"` }
        continue
      }
      let value: string | undefined
      if (eq >= 0) value = token.slice(eq + 1)
      else {
        value = rest[j + 1]
        j++
      }
      if (value === undefined || (value.startsWith("--") && eq < 0))
        return { _tag: "Invalid", message: `--${name}: needs a value (${f.value})` }
      const bad = checkValue(f, value, `--${name}`)
      if (bad) return { _tag: "Invalid", message: bad }
      continue
    }
    if (token.startsWith("-") && token.length > 1 && !NUMBER.test(token))
      return {
        _tag: "Invalid",
        message: `${where}: unknown option ${token}; see \`interleave ${where} --help\``,
      }
    positional.push(token)
  }
  const required = doc.args.filter((a) => !a.optional).length
  if (positional.length < required) {
    const missing = doc.args[positional.length]!
    return {
      _tag: "Invalid",
      message: `${where}: missing <${missing.name}> (${missing.description}); see \`interleave ${where} --help\``,
    }
  }
  if (positional.length > doc.args.length) {
    const extra = positional[doc.args.length]!
    const sub =
      doc.subcommands.length > 0
        ? didYouMean(
            suggest(
              extra,
              doc.subcommands.map((s) => s.name),
            ),
          )
        : ""
    return { _tag: "Invalid", message: `${where}: unexpected argument "${extra}"${sub}` }
  }
  return { _tag: "Run" }
}

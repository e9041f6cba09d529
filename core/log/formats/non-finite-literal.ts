/**
 * Bare NaN / Infinity / -Infinity in a JSON line: Python's json.dumps writes them, JSON has no
 * such numbers, and JSON.parse's own message ("Unexpected token N") or a decoder's ("Expected
 * number, actual null", once they are read as null) names neither the field nor the literal.
 */

const LITERAL = /(?<=[:[,]\s*)(-?Infinity|NaN)(?=\s*[,}\]])/g
const SENTINEL = "\uE000interleave-non-finite:"

/** Where `value` holds a sentinel string: its path (`data.losses.total`, `a[2]`) and index. */
const findSentinel = (value: unknown): { path: string; index: number } | undefined => {
  const stack: Array<{ v: unknown; path: string }> = [{ v: value, path: "" }]
  while (stack.length > 0) {
    const { v, path } = stack.pop() as { v: unknown; path: string }
    if (typeof v === "string" && v.startsWith(SENTINEL))
      return { path, index: Number(v.slice(SENTINEL.length)) }
    if (Array.isArray(v))
      for (let i = v.length - 1; i >= 0; i--) stack.push({ v: v[i], path: `${path}[${i}]` })
    else if (typeof v === "object" && v !== null) {
      const entries = Object.entries(v)
      for (let i = entries.length - 1; i >= 0; i--) {
        const [k, x] = entries[i] as [string, unknown]
        stack.push({ v: x, path: path === "" ? k : `${path}.${k}` })
      }
    }
  }
  return undefined
}

/**
 * The first bare NaN / Infinity / -Infinity of `text` (a JSON line that does not parse as it is)
 * and the field that holds it; undefined when the text is valid JSON or holds none.
 */
export const nonFiniteLiteral = (
  text: string,
): { readonly path: string; readonly literal: string } | undefined => {
  if (!/NaN|Infinity/.test(text)) return undefined
  try {
    JSON.parse(text)
    return undefined
  } catch {
    // not JSON as it is: look for the literals
  }
  const literals: string[] = []
  const marked = text.replace(LITERAL, (m) => `"${SENTINEL}${literals.push(m) - 1}"`)
  if (literals.length === 0) return undefined
  let value: unknown
  try {
    value = JSON.parse(marked)
  } catch {
    return undefined
  }
  const at = findSentinel(value)
  if (at === undefined) return undefined
  return { path: at.path === "" ? "(the whole line)" : at.path, literal: literals[at.index] ?? "NaN" }
}

/** The reason to give for a literal `nonFiniteLiteral` found (in an event of type `type`, when known). */
export const nonFiniteReason = (literal: string, type?: unknown): string =>
  `${literal} is not a number JSON can hold (${typeof type === "string" ? `${type}'s values` : "values"} must be finite numbers)`

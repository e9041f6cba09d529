import { Either } from "effect"

/**
 * Where JSON text goes wrong. Node 20's JSON.parse often names no position ("Unexpected token
 * ',', ...] is not valid JSON"), so a scanner finds the first offending character and we report
 * its line and column.
 */

/**
 * The deepest nesting of arrays and objects a file may have. Deeper JSON is refused before it is
 * parsed: every recursive walk over a value (decoding, hashing, printing) would otherwise overflow
 * the stack on `[[[[...` (100,000 levels is a few hundred kB). Real scenarios and events nest a
 * handful of levels.
 */
export const MAX_JSON_DEPTH = 512

/**
 * Offset of the bracket where nesting first passes `max` levels, or undefined. A loop, not a
 * recursion, that skips strings; text shorter than `max` cannot nest that deep and is not scanned.
 */
export const jsonDepthOffset = (text: string, max = MAX_JSON_DEPTH): number | undefined => {
  if (text.length <= max) return undefined
  let depth = 0
  let inString = false
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (inString) {
      // A backslash escapes the next character.
      if (c === 92) i++
      else if (c === 34) inString = false
    } else if (c === 34) inString = true
    else if (c === 91 || c === 123) {
      if (++depth > max) return i
    } else if (c === 93 || c === 125) depth--
  }
  return undefined
}

/** The reason for refusing JSON nested too deep, naming where (`at line 3, column 9`). */
export const tooDeepReason = (where: string, max = MAX_JSON_DEPTH): string =>
  `JSON nested more than ${max} levels deep ${where} (interleave reads at most ${max})`

/** Offset of the first syntax error in `text`, or undefined when it is valid JSON. */
export const jsonErrorOffset = (text: string): number | undefined => {
  let i = 0
  const ws = () => {
    while (i < text.length && " \t\n\r".includes(text[i]!)) i++
  }
  const fail = (): never => {
    throw i
  }
  const literal = (word: string) => {
    if (text.startsWith(word, i)) i += word.length
    else fail()
  }
  const string = () => {
    i++ // opening quote
    while (i < text.length) {
      const c = text[i]!
      if (c === '"') {
        i++
        return
      }
      if (c === "\\") {
        i++
        if (text[i] === "u") {
          if (!/^[0-9a-fA-F]{4}$/.test(text.slice(i + 1, i + 5))) fail()
          i += 5
        } else if ('"\\/bfnrt'.includes(text[i] ?? "")) i++
        else fail()
      } else if (c < " ") fail()
      else i++
    }
    fail()
  }
  const number = () => {
    const m = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/.exec(text.slice(i))
    if (!m || m[0] === "" || m[0] === "-") fail()
    i += m![0].length
  }
  const value = (): void => {
    ws()
    const c = text[i]
    if (c === "{") {
      i++
      ws()
      if (text[i] === "}") {
        i++
        return
      }
      for (;;) {
        ws()
        if (text[i] !== '"') fail()
        string()
        ws()
        if (text[i] !== ":") fail()
        i++
        value()
        ws()
        if (text[i] === ",") i++
        else if (text[i] === "}") {
          i++
          return
        } else fail()
      }
    } else if (c === "[") {
      i++
      ws()
      if (text[i] === "]") {
        i++
        return
      }
      for (;;) {
        value()
        ws()
        if (text[i] === ",") i++
        else if (text[i] === "]") {
          i++
          return
        } else fail()
      }
    } else if (c === '"') string()
    else if (c === "t") literal("true")
    else if (c === "f") literal("false")
    else if (c === "n") literal("null")
    else if (c === "-" || (c !== undefined && c >= "0" && c <= "9")) number()
    else fail()
  }
  try {
    value()
    ws()
    if (i < text.length) fail()
    return undefined
  } catch (at) {
    if (typeof at === "number") return at
    throw at
  }
}

/** 1-based line and column of an offset. */
export const lineColumn = (text: string, offset: number): { line: number; column: number } => {
  let line = 1
  let start = 0
  for (let i = text.indexOf("\n"); i !== -1 && i < offset; i = text.indexOf("\n", i + 1)) {
    line++
    start = i + 1
  }
  return { line, column: offset - start + 1 }
}

/** JSON.parse's failure, with the line and column of the first error. */
export const describeJsonError = (text: string, e: unknown): string => {
  const msg = (e instanceof Error ? e.message : String(e)).split("\n")[0]!
  const offset = jsonErrorOffset(text)
  if (offset === undefined) return `invalid JSON: ${msg}`
  const { line, column } = lineColumn(text, offset)
  const near = text.slice(offset, offset + 12).split("\n")[0]
  return `invalid JSON at line ${line}, column ${column}${near ? ` (near ${JSON.stringify(near)})` : " (unexpected end)"}`
}

/**
 * The first key that an object of valid JSON text repeats (`{"seed":42,"seed":7}`: JSON.parse
 * keeps the last without a word) and the offset of its second occurrence, or undefined. One pass,
 * a set of keys per open object; strings are skipped by indexOf, so long values cost little.
 */
export const duplicateKey = (text: string): { key: string; offset: number } | undefined => {
  const keys: Array<Set<string> | undefined> = []
  let expectKey = false
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c === 34) {
      // A string: find its closing quote (one not escaped by an odd run of backslashes).
      let end = text.indexOf('"', i + 1)
      for (;;) {
        let b = 0
        while (text.charCodeAt(end - 1 - b) === 92) b++
        if (b % 2 === 0) break
        end = text.indexOf('"', end + 1)
      }
      const top = keys[keys.length - 1]
      if (expectKey && top !== undefined) {
        const raw = text.slice(i + 1, end)
        const key = raw.includes("\\") ? (JSON.parse(`"${raw}"`) as string) : raw
        if (top.has(key)) return { key, offset: i }
        top.add(key)
      }
      expectKey = false
      i = end
    } else if (c === 123) {
      keys.push(new Set())
      expectKey = true
    } else if (c === 91) keys.push(undefined)
    else if (c === 125 || c === 93) keys.pop()
    else if (c === 44) expectKey = keys[keys.length - 1] !== undefined
  }
  return undefined
}

/**
 * Parses JSON text; the failure is a reason naming line and column: a syntax error, nesting
 * deeper than MAX_JSON_DEPTH (checked first, so nothing downstream recurses that deep), or a key
 * an object repeats (JSON.parse would keep the last value and drop the first without a word).
 */
export const parseJsonText = (text: string): Either.Either<unknown, string> => {
  const deep = jsonDepthOffset(text)
  if (deep !== undefined) {
    const { line, column } = lineColumn(text, deep)
    return Either.left(tooDeepReason(`at line ${line}, column ${column}`))
  }
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (e) {
    return Either.left(describeJsonError(text, e))
  }
  const dup = duplicateKey(text)
  if (dup !== undefined) {
    const { line, column } = lineColumn(text, dup.offset)
    return Either.left(
      `duplicate key ${JSON.stringify(dup.key.length > 80 ? `${dup.key.slice(0, 80)}…` : dup.key)} at line ${line}, column ${column} (a key may appear once per object)`,
    )
  }
  return Either.right(value)
}

/**
 * The exec adapter's `cmd`: a command line split into words the way a POSIX shell splits a
 * simple command, without running a shell. Single quotes keep everything literally; double
 * quotes keep everything but `\"`, `\\`, `\$` and `` \` ``; a backslash outside quotes escapes
 * the next character.
 *
 * No shell runs, so there is no variable expansion, globbing, pipe, redirection or `&&`: an
 * unquoted shell operator is refused with a hint rather than passed on as a word. Reasons:
 * the recorded command re-opens exactly the same process on resume and replay (no environment-
 * dependent expansion), and the process interleave signals and reaps is the trainer itself.
 * Whoever needs a shell writes it: `sh -c 'source venv/bin/activate && exec python train.py'`.
 */
import { Either } from "effect"

const OPERATORS = new Set(["|", "&", ";", "<", ">", "(", ")", "$", "`", "*", "?", "[", "]", "{", "}"])
/** Special only at the start of a word (home directory, comment). */
const WORD_START = new Set(["~", "#"])

const needsShell = (c: string) =>
  `${JSON.stringify(c)} is shell syntax, and interleave runs the command without a shell: quote it, or write sh -c '...' yourself`

export const splitCommandLine = (text: string): Either.Either<ReadonlyArray<string>, string> => {
  const words: string[] = []
  let word = ""
  let inWord = false
  let i = 0
  while (i < text.length) {
    const c = text[i]!
    if (c === " " || c === "\t" || c === "\n") {
      if (inWord) words.push(word)
      word = ""
      inWord = false
      i++
    } else if (c === "'") {
      const end = text.indexOf("'", i + 1)
      if (end < 0) return Either.left(`unterminated ' quote at character ${i + 1}`)
      word += text.slice(i + 1, end)
      inWord = true
      i = end + 1
    } else if (c === '"') {
      let j = i + 1
      for (;;) {
        if (j >= text.length) return Either.left(`unterminated " quote at character ${i + 1}`)
        const d = text[j]!
        if (d === '"') break
        if (d === "\\" && j + 1 < text.length && '"\\$`'.includes(text[j + 1]!)) {
          word += text[j + 1]
          j += 2
        } else {
          word += d
          j++
        }
      }
      inWord = true
      i = j + 1
    } else if (c === "\\") {
      if (i + 1 >= text.length) return Either.left("a trailing backslash escapes nothing")
      word += text[i + 1]
      inWord = true
      i += 2
    } else if (OPERATORS.has(c) || (!inWord && WORD_START.has(c))) {
      return Either.left(needsShell(c))
    } else {
      word += c
      inWord = true
      i++
    }
  }
  if (inWord) words.push(word)
  if (words.length === 0) return Either.left("the command line is empty")
  if (/^[A-Za-z_][A-Za-z0-9_]*=/.test(words[0]!))
    return Either.left(
      `${JSON.stringify(words[0])} is a shell variable assignment; without a shell, write env ${words[0]} ...`,
    )
  return Either.right(words)
}

/** The words back as one line a user can read (and paste into a shell). */
export const joinCommandLine = (words: ReadonlyArray<string>): string =>
  words.map((w) => (/^[A-Za-z0-9_@%+=:,./-]+$/.test(w) ? w : `'${w.replaceAll("'", `'\\''`)}'`)).join(" ")

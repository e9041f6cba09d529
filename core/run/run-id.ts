/**
 * Run ids name streams, checkpoint folders and report files, so they are checked once here: never
 * a path, never a control or bidi character, never too long for a file name.
 */
import { Either } from "effect"

const RUN_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/

export const MAX_RUN_ID = 128

/** Why `id` cannot be a run id, or undefined when it can. */
export const runIdProblem = (id: string): string | undefined => {
  if (id.length === 0) return "must not be empty"
  if (id.length > MAX_RUN_ID) return `must be at most ${MAX_RUN_ID} characters, got ${id.length}`
  if (!RUN_ID.test(id))
    return "must start with a letter or digit and hold only letters, digits, '.', '_' and '-' (it names files)"
  if (id.includes("..")) return "must not contain '..'"
  return undefined
}

/**
 * A would-be run id, quoted for a message: JSON's escapes, and \u escapes for the characters a
 * terminal acts on that JSON leaves bare (C1 controls, bidi overrides and isolates); at most 80
 * characters.
 */
export const quoteRunId = (id: string): string =>
  JSON.stringify(id.slice(0, 100))
    .replace(
      /[\u007f-\u009f\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g,
      (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
    )
    .slice(0, 80)

export const checkRunId = (id: string, what = "--run-id"): Either.Either<string, string> => {
  const p = runIdProblem(id)
  return p === undefined ? Either.right(id) : Either.left(`${what}: ${quoteRunId(id)} ${p}`)
}

/**
 * A run id made from a free-form name (a scenario's `name`) and a suffix: characters that cannot
 * appear become '-', the name is cut so the whole id fits.
 */
export const runIdFrom = (name: string, suffix: string): string => {
  const room = MAX_RUN_ID - suffix.length - 1
  let base = name
    .normalize("NFKD")
    .replace(/[^A-Za-z0-9._-]+/g, "-")
    .replace(/\.{2,}/g, ".")
    .replace(/^[^A-Za-z0-9]+/, "")
    .replace(/-+$/, "")
    .slice(0, Math.max(1, room))
  if (base === "") base = "run"
  return `${base}-${suffix}`
}

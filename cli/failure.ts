/**
 * How the CLI ends: every expected failure becomes one line on stderr and an exit code.
 * 0 success, 1 a failed check, a divergence or a failed run, 2 bad input. Never a stack trace.
 */
import { Data } from "effect"

export class CliFailure extends Data.TaggedError("CliFailure")<{
  readonly code: 1 | 2
  readonly message: string
}> {}

export const badInput = (message: string) => new CliFailure({ code: 2, message })
export const failedCheck = (message: string) => new CliFailure({ code: 1, message })

interface Tagged {
  readonly _tag: string
  readonly message?: string
}

/** Maps the project's tagged errors to an exit code. */
export const exitCodeOf = (e: Tagged): 1 | 2 => {
  switch (e._tag) {
    case "CliFailure":
      return (e as CliFailure).code
    case "VersionConflict":
    case "StepFailure":
      return 1
    default:
      return 2
  }
}

export const messageOf = (e: unknown): string => {
  if (e && typeof e === "object") {
    const m = (e as { message?: unknown }).message
    if (typeof m === "string" && m.length > 0) return m
    const tag = (e as { _tag?: unknown })._tag
    if (typeof tag === "string") return tag
  }
  return String(e)
}

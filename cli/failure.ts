/**
 * How the CLI ends: every expected failure becomes one line on stderr and an exit code. Never a
 * stack trace, never an internal class name.
 *
 *   0 success · 1 a failed check, a divergence or an aborted run · 2 bad input (the message names
 *   the file, field, flag or line) · 3 the store is unavailable (locked, disk full, read-only) ·
 *   70 an internal error (a bug) · 130 / 143 stopped by SIGINT / SIGTERM.
 */
import { Data } from "effect"

export const EXIT = {
  ok: 0,
  failedCheck: 1,
  badInput: 2,
  unavailable: 3,
  internal: 70,
  sigint: 130,
  sigterm: 143,
} as const

export class CliFailure extends Data.TaggedError("CliFailure")<{
  readonly code: number
  readonly message: string
}> {}

export const badInput = (message: string) => new CliFailure({ code: EXIT.badInput, message })
export const failedCheck = (message: string) => new CliFailure({ code: EXIT.failedCheck, message })
export const unavailable = (message: string) => new CliFailure({ code: EXIT.unavailable, message })

interface Tagged {
  readonly _tag: string
  readonly message?: string
}

/** Maps the project's tagged errors to an exit code. */
export const exitCodeOf = (e: Tagged): number => {
  switch (e._tag) {
    case "CliFailure":
      return (e as CliFailure).code
    case "VersionConflict":
    case "StepFailure":
    case "Divergence":
      return EXIT.failedCheck
    case "StoreError":
      return (e as { kind?: string }).kind === "unavailable" ? EXIT.unavailable : EXIT.badInput
    default:
      return EXIT.badInput
  }
}

/**
 * The message of a failure, never a class name. Empty for failures that have said everything
 * already (a failed check with --json has printed its report on stdout).
 */
export const messageOf = (e: unknown): string => {
  if (typeof e === "string") return e
  if (e && typeof e === "object") {
    const m = (e as { message?: unknown }).message
    if (typeof m === "string") return m
  }
  return "unexpected failure"
}

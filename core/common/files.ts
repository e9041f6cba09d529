/**
 * Reading the user's files and writing ours, inside Effect: every failure is a typed `InputError`
 * (bad input, exit 2) or `OutputError` naming the file and the reason in words, never a raw errno.
 */
import * as fs from "node:fs"
import { dirname, join, resolve } from "node:path"
import { Data, Effect } from "effect"

/** A file the user named cannot be read or is not what it should be. */
export class InputError extends Data.TaggedError("InputError")<{ readonly message: string }> {}

/** A file we were asked to write cannot be written. */
export class OutputError extends Data.TaggedError("OutputError")<{ readonly message: string }> {}

const ERRNO_TEXT: Record<string, string> = {
  ENOENT: "no such file or directory",
  EACCES: "permission denied",
  EPERM: "operation not permitted",
  EISDIR: "is a directory",
  ENOTDIR: "a part of the path is not a directory",
  ENOSPC: "no space left on the device",
  EROFS: "read-only file system",
  EEXIST: "already exists",
  ENAMETOOLONG: "the name is too long",
  EMFILE: "too many open files",
}

/** An errno in words: `ENOSPC` -> "no space left on the device". */
export const errnoText = (e: unknown): string => {
  const code = (e as NodeJS.ErrnoException | undefined)?.code
  if (code && ERRNO_TEXT[code]) return ERRNO_TEXT[code]!
  return code ?? (e instanceof Error ? e.message : String(e))
}

/** A regular file's text; a directory, a missing file or an unreadable one is a one-line error. */
export const readTextFile = (file: string, what = "file"): Effect.Effect<string, InputError> =>
  Effect.try({
    try: () => {
      const st = fs.statSync(file)
      if (st.isDirectory()) throw new InputError({ message: `${file}: is a directory, expected a ${what}` })
      return fs.readFileSync(file, "utf8")
    },
    catch: (e) =>
      e instanceof InputError
        ? e
        : new InputError({
            message:
              (e as NodeJS.ErrnoException).code === "ENOENT"
                ? `${file}: no such ${what}`
                : `${file}: cannot read (${errnoText(e)})`,
          }),
  })

/** Checks that `file` is a readable regular file, without reading it (for streamed files). */
export const checkReadableFile = (file: string, what = "file"): Effect.Effect<void, InputError> =>
  Effect.try({
    try: () => {
      const st = fs.statSync(file)
      if (st.isDirectory()) throw new InputError({ message: `${file}: is a directory, expected a ${what}` })
      fs.accessSync(file, fs.constants.R_OK)
    },
    catch: (e) =>
      e instanceof InputError
        ? e
        : new InputError({
            message:
              (e as NodeJS.ErrnoException).code === "ENOENT"
                ? `${file}: no such ${what}`
                : `${file}: cannot read (${errnoText(e)})`,
          }),
  })

/**
 * Writes `text` to `file` through a temporary file in the same folder and a rename, so a reader
 * never sees half a file and a failure leaves the old file as it was. Creates missing folders.
 */
export const writeTextFile = (file: string, text: string): Effect.Effect<void, OutputError> =>
  Effect.try({
    try: () => {
      fs.mkdirSync(dirname(resolve(file)), { recursive: true })
      const tmp = join(dirname(resolve(file)), `.${process.pid}.${Date.now()}.tmp`)
      try {
        fs.writeFileSync(tmp, text)
        fs.renameSync(tmp, file)
      } catch (e) {
        fs.rmSync(tmp, { force: true })
        throw e
      }
    },
    catch: (e) => new OutputError({ message: `${file}: cannot write (${errnoText(e)})` }),
  })

export const writeJsonFile = (file: string, value: unknown): Effect.Effect<void, OutputError> =>
  writeTextFile(file, `${JSON.stringify(value, null, 2)}\n`)

/** Whether a name the user gave is a file path rather than the name of something bundled. */
export const looksLikePath = (s: string): boolean =>
  s.includes("/") || s.includes("\\") || s.endsWith(".json")

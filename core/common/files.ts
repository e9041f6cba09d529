/**
 * Reading the user's files and writing ours, inside Effect: every failure is a typed `InputError`
 * (bad input, exit 2) or `OutputError` naming the file and the reason in words, never a raw errno.
 */
import { isUtf8 } from "node:buffer"
import { randomBytes } from "node:crypto"
import * as fs from "node:fs"
import { basename, dirname, join, resolve } from "node:path"
import { Data, Effect, type Scope } from "effect"

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

/**
 * The most bytes read from an input file the user names (scenario, sweep, profile): real ones are
 * a few kB, and a path that is a device or a pipe (a symlink to /dev/zero) would otherwise be read
 * without end. Results and baseline files, which grow with a sweep, get RESULTS_MAX_BYTES.
 */
export const MAX_INPUT_BYTES = 16 * 1024 * 1024
export const RESULTS_MAX_BYTES = 256 * 1024 * 1024

const mib = (bytes: number): string => `${Math.round(bytes / (1024 * 1024))} MiB`

/**
 * The bytes of an input file, at most `maxBytes` of them: a larger file (or a device or pipe that
 * never ends) is an InputError naming the file and the limit, found by its size or after reading
 * one byte past the limit. Throws InputError, or the errno of a failed open or read.
 */
export const readInputBytes = (file: string, what: string, maxBytes = MAX_INPUT_BYTES): Buffer => {
  const tooLarge = () =>
    new InputError({
      message: `${file}: larger than ${mib(maxBytes)}, the most interleave reads from a ${what} (is it the file you meant?)`,
    })
  const fd = fs.openSync(file, "r")
  try {
    const st = fs.fstatSync(fd)
    if (st.isDirectory()) throw new InputError({ message: `${file}: is a directory, expected a ${what}` })
    if (st.isFile() && st.size > maxBytes) throw tooLarge()
    const chunks: Buffer[] = []
    let total = 0
    for (;;) {
      const chunk = Buffer.allocUnsafe(Math.min(1024 * 1024, maxBytes + 1 - total))
      const n = fs.readSync(fd, chunk, 0, chunk.length, null)
      if (n === 0) break
      chunks.push(n === chunk.length ? chunk : chunk.subarray(0, n))
      total += n
      if (total > maxBytes) throw tooLarge()
    }
    return Buffer.concat(chunks, total)
  } finally {
    fs.closeSync(fd)
  }
}

/** Offset of the first byte that is not part of valid UTF-8 (RFC 3629), or undefined. */
export const invalidUtf8Offset = (bytes: Uint8Array): number | undefined => {
  for (let i = 0; i < bytes.length; ) {
    const b = bytes[i]!
    if (b < 0x80) {
      i++
      continue
    }
    const n = b >= 0xc2 && b <= 0xdf ? 1 : b >= 0xe0 && b <= 0xef ? 2 : b >= 0xf0 && b <= 0xf4 ? 3 : -1
    if (n < 0) return i
    // The second byte's range excludes overlong forms, surrogates and code points past U+10FFFF.
    const lo = b === 0xe0 ? 0xa0 : b === 0xf0 ? 0x90 : 0x80
    const hi = b === 0xed ? 0x9f : b === 0xf4 ? 0x8f : 0xbf
    for (let k = 1; k <= n; k++) {
      const c = bytes[i + k]
      if (c === undefined || c < (k === 1 ? lo : 0x80) || c > (k === 1 ? hi : 0xbf)) return i
    }
    i += n + 1
  }
  return undefined
}

/**
 * UTF-8 bytes as text: a byte-order mark at the start is dropped (editors on Windows write one);
 * bytes that are not UTF-8 are an InputError naming the byte offset, line and column.
 */
export const decodeUtf8Text = (bytes: Buffer, file: string): string => {
  const body = bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf ? bytes.subarray(3) : bytes
  const offset = isUtf8(body) ? undefined : invalidUtf8Offset(body)
  if (offset !== undefined) {
    const before = body.subarray(0, offset)
    let line = 1
    let start = 0
    for (let i = before.indexOf(10); i !== -1; i = before.indexOf(10, i + 1)) {
      line++
      start = i + 1
    }
    const column = before.subarray(start).toString("utf8").length + 1
    const at = offset + (body === bytes ? 0 : 3)
    throw new InputError({
      message: `${file}: not UTF-8 text: byte 0x${body[offset]!.toString(16).padStart(2, "0")} at byte offset ${at} (line ${line}, column ${column}) is not valid UTF-8`,
    })
  }
  return body.toString("utf8")
}

/**
 * A file's text, read with a size limit (MAX_INPUT_BYTES unless given) and checked to be UTF-8;
 * a directory, a missing file, an unreadable one, one too large or one that is not UTF-8 is a
 * one-line error naming it.
 */
export const readTextFile = (
  file: string,
  what = "file",
  maxBytes = MAX_INPUT_BYTES,
): Effect.Effect<string, InputError> =>
  Effect.try({
    try: () => decodeUtf8Text(readInputBytes(file, what, maxBytes), file),
    catch: (e) =>
      e instanceof InputError
        ? e
        : new InputError({
            message:
              (e as NodeJS.ErrnoException).code === "ENOENT"
                ? `${file}: no such ${what}`
                : (e as NodeJS.ErrnoException).code === "EISDIR"
                  ? `${file}: is a directory, expected a ${what}`
                  : `${file}: cannot read (${errnoText(e)})`,
          }),
  })

/** What a path is, in words, when it is not a regular file. */
const notRegular = (st: fs.Stats): string =>
  st.isDirectory()
    ? "is a directory"
    : st.isFIFO()
      ? "is a FIFO (a named pipe)"
      : st.isSocket()
        ? "is a socket"
        : st.isCharacterDevice() || st.isBlockDevice()
          ? "is a device"
          : "is not a regular file"

/**
 * Checks that `file` is a readable regular file, without reading it (for streamed files, which
 * may be read more than once: a pipe or a device cannot be, and opening a FIFO would block).
 */
export const checkReadableFile = (file: string, what = "file"): Effect.Effect<void, InputError> =>
  Effect.try({
    try: () => {
      const st = fs.statSync(file)
      if (!st.isFile()) throw new InputError({ message: `${file}: ${notRegular(st)}, expected a ${what}` })
      // Opened and closed at once: permission checks as the kernel makes them (ACLs, root-squash).
      fs.closeSync(fs.openSync(file, "r"))
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

export interface OutputFileOptions {
  /** How the file is named in messages (a flag: `--out`), default the file name alone. */
  readonly label?: string
  /** Replace an existing file; without it an existing file is refused, untouched. */
  readonly force?: boolean
  /**
   * Files the output must never be, whatever the path says (a store and its -wal/-shm): compared
   * by real path, through symlinks, and by device and inode (hard links).
   */
  readonly protect?: ReadonlyArray<{ readonly file: string; readonly what: string }>
}

/** A file being written: `write` appends, `commit` publishes it whole; unpublished, it vanishes. */
export interface OutputFile {
  readonly write: (text: string) => Effect.Effect<void, OutputError>
  readonly commit: Effect.Effect<void, OutputError>
}

const errno = (e: unknown): string | undefined => (e as NodeJS.ErrnoException | undefined)?.code

/** The path a write to `file` lands on: through symlinks of the file and of its folders. */
const realTarget = (file: string): string => {
  try {
    return fs.realpathSync(file)
  } catch (e) {
    if (errno(e) !== "ENOENT") throw e
    // A dangling symlink names where the file would be created.
    const link = fs.lstatSync(file, { throwIfNoEntry: false })
    if (link?.isSymbolicLink()) return realTarget(resolve(dirname(resolve(file)), fs.readlinkSync(file)))
    return join(fs.realpathSync(dirname(resolve(file))), basename(file))
  }
}

/**
 * Opens `file` for writing, checked first: a folder that is missing, a directory, a protected file
 * (by real path or inode) or an existing file without `force` is refused with one line naming it
 * and the reason, before anything is written. A regular file is written to a temporary file beside
 * its real path and renamed onto it by `commit` (without `force`, linked, so that a file that
 * appeared meanwhile is not replaced either); closing the scope without `commit` removes the
 * temporary file. A device or FIFO (/dev/null, /dev/stdout) is written in place.
 */
export const openOutputFile = (
  file: string,
  options: OutputFileOptions = {},
): Effect.Effect<OutputFile, OutputError, Scope.Scope> => {
  const label = options.label === undefined ? file : `${options.label} ${file}`
  const failure = (reason: string) => new OutputError({ message: `${label}: ${reason}` })
  const check = Effect.try({
    try: () => {
      let target: string
      try {
        target = realTarget(file)
      } catch (e) {
        if (errno(e) === "ENOENT")
          throw failure(`cannot write (no such directory: ${dirname(resolve(file))})`)
        throw failure(`cannot write (${errnoText(e)})`)
      }
      const stat = fs.statSync(target, { throwIfNoEntry: false })
      for (const p of options.protect ?? []) {
        let same = false
        try {
          same = realTarget(p.file) === target
        } catch {
          // A protected file in a folder that does not exist cannot be the target.
        }
        const other = fs.statSync(p.file, { throwIfNoEntry: false })
        if (stat && other && stat.dev === other.dev && stat.ino === other.ino) same = true
        if (same) throw failure(`is ${p.what}; writing there would destroy it (choose another file)`)
      }
      if (stat?.isDirectory()) throw failure("is a directory, expected a file to write")
      if (stat?.isFile() && options.force !== true)
        throw failure("already exists; add --force to overwrite it")
      return { target, inPlace: stat !== undefined && !stat.isFile() }
    },
    catch: (e) => (e instanceof OutputError ? e : failure(`cannot write (${errnoText(e)})`)),
  })
  return Effect.flatMap(check, ({ target, inPlace }) => {
    const tmp = inPlace
      ? undefined
      : join(dirname(target), `.${basename(target)}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`)
    const state = { fd: -1, committed: false }
    const open = Effect.try({
      try: () => {
        state.fd = tmp === undefined ? fs.openSync(target, "w") : fs.openSync(tmp, "wx")
      },
      catch: (e) => failure(`cannot write (${errnoText(e)})`),
    })
    const release = Effect.sync(() => {
      if (state.fd >= 0) fs.closeSync(state.fd)
      state.fd = -1
      if (tmp !== undefined && !state.committed) fs.rmSync(tmp, { force: true })
    })
    const write = (text: string) =>
      Effect.try({
        try: () => {
          const bytes = Buffer.from(text, "utf8")
          for (let done = 0; done < bytes.length; ) done += fs.writeSync(state.fd, bytes, done)
        },
        catch: (e) => failure(`cannot write (${errnoText(e)})`),
      })
    const commit = Effect.try({
      try: () => {
        if (tmp !== undefined) fs.fsyncSync(state.fd)
        fs.closeSync(state.fd)
        state.fd = -1
        if (tmp === undefined) return
        if (options.force === true) fs.renameSync(tmp, target)
        else {
          try {
            fs.linkSync(tmp, target)
          } catch (e) {
            if (errno(e) === "EEXIST") throw failure("already exists; add --force to overwrite it")
            // No hard links on this file system: re-check, then rename.
            if (fs.existsSync(target)) throw failure("already exists; add --force to overwrite it")
            fs.renameSync(tmp, target)
          }
          fs.rmSync(tmp, { force: true })
        }
        state.committed = true
      },
      catch: (e) => (e instanceof OutputError ? e : failure(`cannot write (${errnoText(e)})`)),
    })
    return Effect.as(
      Effect.acquireRelease(open, () => release),
      { write, commit },
    )
  })
}

/** Whether a name the user gave is a file path rather than the name of something bundled. */
export const looksLikePath = (s: string): boolean =>
  s.includes("/") || s.includes("\\") || s.endsWith(".json")

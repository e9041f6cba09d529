/**
 * What every log format reader shares: a file's lines as a stream (bounded memory), its SHA-256,
 * its first bytes for sniffing, JSON lines that may hold Python's NaN / Infinity, and the one
 * error shape: file, line, field and the reason, in words.
 */
import { createHash } from "node:crypto"
import { closeSync, createReadStream, openSync, readSync, statSync } from "node:fs"
import { Data, Effect, Stream } from "effect"
import {
  checkReadableFile,
  clip,
  errnoText,
  InputError,
  jsonDepthOffset,
  tooDeepReason,
} from "../../common/index.ts"

/** A line of a log file that is not what its format says it must be. */
export class LogFileError extends Data.TaggedError("LogFileError")<{
  readonly file: string
  readonly line: number
  readonly field?: string | undefined
  readonly reason: string
}> {
  override get message(): string {
    return `${this.file}:${this.line}: ${this.field === undefined ? "" : `field "${this.field}": `}${this.reason}`
  }
}

/** Longest message about one line: a reason may quote the line, which may be megabytes long. */
const MAX_MESSAGE = 400

export const toInputError = (e: LogFileError): InputError =>
  new InputError({ message: clip(e.message, MAX_MESSAGE) })

export interface Line {
  readonly text: string
  /** 1-based line number. */
  readonly line: number
}

/**
 * One line ending: LF with any CRs before it (CRLF, and the CRCRLF a CRLF file gets when it is
 * converted again, as Python's text mode does on Windows), or a lone CR (as Python's universal
 * newlines and Node's readline read it). A CRLF log reads line for line as its LF original.
 */
const LINE_END = /\r*\n|\r/g

/** Splits text read in chunks into lines; CRs at a chunk's end wait for the next chunk (an LF may follow). */
async function* splitLines(chunks: AsyncIterable<string | Buffer>): AsyncGenerator<string[]> {
  let partial = ""
  let held = ""
  const drain = (s: string, final: boolean): string[] => {
    const out: string[] = []
    let cut = 0
    LINE_END.lastIndex = 0
    for (let m = LINE_END.exec(s); m !== null; m = LINE_END.exec(s)) {
      if (!final && m.index + m[0].length === s.length && m[0].endsWith("\r")) {
        held = s.slice(m.index)
        partial += s.slice(cut, m.index)
        return out
      }
      out.push(partial + s.slice(cut, m.index))
      partial = ""
      cut = m.index + m[0].length
    }
    partial += s.slice(cut)
    return out
  }
  for await (const chunk of chunks) {
    const s = held + String(chunk)
    held = ""
    const lines = drain(s, false)
    if (lines.length > 0) yield lines
  }
  const last = drain(held, true)
  if (partial !== "") last.push(partial)
  if (last.length > 0) yield last
}

/** The lines of `file`, numbered from 1, read lazily (every run of the stream reads the file again). */
export const fileLines = (file: string): Stream.Stream<Line, InputError> =>
  Stream.suspend(() => {
    let n = 0
    return Stream.fromAsyncIterable(
      splitLines(createReadStream(file, { encoding: "utf8" })),
      (e) => new InputError({ message: `${file}: cannot read (${errnoText(e)})` }),
    ).pipe(Stream.mapConcat((lines) => lines.map((text) => ({ text, line: ++n }))))
  })

/** SHA-256 (hex) and size of a file's bytes, streamed. */
export const fileDigest = (file: string): Effect.Effect<{ sha256: string; bytes: number }, InputError> =>
  Effect.async((resume) => {
    const h = createHash("sha256")
    let bytes = 0
    const s = createReadStream(file)
    s.on("data", (chunk) => {
      bytes += chunk.length
      h.update(chunk)
    })
    s.on("error", (e) =>
      resume(Effect.fail(new InputError({ message: `${file}: cannot read (${errnoText(e)})` }))),
    )
    s.on("end", () => resume(Effect.succeed({ sha256: h.digest("hex"), bytes })))
  })

/** The first `max` bytes of a file as text (for sniffing its format). */
export const fileHead = (file: string, max = 64 * 1024): Effect.Effect<string, InputError> =>
  Effect.zipRight(
    checkReadableFile(file, "log file"),
    Effect.try({
      try: () => {
        const size = statSync(file).size
        const buf = Buffer.alloc(Math.min(max, size))
        const fd = openSync(file, "r")
        try {
          readSync(fd, buf, 0, buf.length, 0)
        } finally {
          closeSync(fd)
        }
        return buf.toString("utf8")
      },
      catch: (e) => new InputError({ message: `${file}: cannot read (${errnoText(e)})` }),
    }),
  )

export type JsonObject = Record<string, unknown>

export interface JsonLine {
  readonly value: unknown
  /** Keys whose values were Python's NaN, Infinity or -Infinity (json.dumps writes them bare). */
  readonly nonFinite: ReadonlyArray<string>
}

const NON_FINITE = /(?<=[:[,]\s*)(-?Infinity|NaN)(?=\s*[,}\]])/g
const HAS_NON_FINITE = /(?<=[:[,]\s*)(-?Infinity|NaN)(?=\s*[,}\]])/

/**
 * Parses one JSON line. Python trainers write NaN / Infinity bare (json.dumps' default): such
 * values become null and their top-level keys are listed in `nonFinite`.
 */
export const parseJsonLine = (text: string, file: string, line: number): JsonLine | LogFileError => {
  // Refused before it is parsed: deeper JSON overflows every recursive walk over it.
  const deep = jsonDepthOffset(text)
  if (deep !== undefined)
    return new LogFileError({ file, line, reason: tooDeepReason(`at column ${deep + 1}`) })
  try {
    return { value: JSON.parse(text), nonFinite: [] }
  } catch (e) {
    if (HAS_NON_FINITE.test(text)) {
      try {
        const value = JSON.parse(text.replace(NON_FINITE, "null")) as unknown
        const nonFinite: string[] = []
        if (value && typeof value === "object" && !Array.isArray(value)) {
          const raw = JSON.parse(text.replace(NON_FINITE, '"__nonfinite__"')) as JsonObject
          for (const [k, v] of Object.entries(raw)) if (v === "__nonfinite__") nonFinite.push(k)
        }
        return { value, nonFinite }
      } catch {
        // fall through to the original error
      }
    }
    const why = e instanceof Error ? e.message : String(e)
    return new LogFileError({ file, line, reason: `not valid JSON (${why}); the line may be truncated` })
  }
}

export const isObject = (v: unknown): v is JsonObject =>
  typeof v === "object" && v !== null && !Array.isArray(v)

export const isFiniteNumber = (v: unknown): v is number => typeof v === "number" && Number.isFinite(v)

/** The finite numeric fields of a record, without `skip`. */
export const numericFields = (
  rec: JsonObject,
  skip: ReadonlySet<string> = new Set(),
): Record<string, number> => {
  const out: Record<string, number> = {}
  for (const [k, v] of Object.entries(rec)) if (!skip.has(k) && isFiniteNumber(v)) out[k] = v
  return out
}

/** The most frequent value of a histogram (the smallest on ties); undefined when empty. */
export const modeOf = (h: ReadonlyMap<number, number>): number | undefined => {
  let best: number | undefined
  let count = 0
  for (const [v, c] of h)
    if (c > count || (c === count && best !== undefined && v < best)) {
      best = v
      count = c
    }
  return best
}

/** Reads a log file line by line, in bounded memory, decoding every event. */
import { createReadStream } from "node:fs"
import { createInterface } from "node:readline"
import { Effect, Either, Option, Stream } from "effect"
import {
  checkReadableFile,
  clip,
  errnoText,
  InputError,
  jsonDepthOffset,
  tooDeepReason,
} from "../common/index.ts"
import { type LogFormat, parseLogLine, sniffFormat } from "./formats.ts"

/** Longest message about one line: the file, the line number and the start of the reason. */
const MAX_MESSAGE = 400

export const fileEvents = (file: string, format?: LogFormat) =>
  Stream.unwrap(
    Effect.gen(function* () {
      yield* checkReadableFile(file, "log file")
      let fmt = format
      let lineNo = 0
      const lines = Stream.fromAsyncIterable(
        createInterface({ input: createReadStream(file), crlfDelay: Number.POSITIVE_INFINITY }),
        (e) => new InputError({ message: `${file}: cannot read (${errnoText(e)})` }),
      )
      return lines.pipe(
        Stream.mapEffect((text) => {
          lineNo++
          fmt ??= sniffFormat(file, text)
          // Refused before it is parsed: deeper JSON overflows every recursive walk over it.
          const deep = jsonDepthOffset(text)
          if (deep !== undefined)
            return Effect.fail(
              new InputError({ message: `${file}:${lineNo}: ${tooDeepReason(`at column ${deep + 1}`)}` }),
            )
          const r = parseLogLine(text, fmt, file, lineNo)
          // A line's reason may quote the line (JSON.parse does, and so do unknown types): clipped.
          return Either.isLeft(r)
            ? Effect.fail(new InputError({ message: clip(r.left.message, MAX_MESSAGE) }))
            : Effect.succeed(r.right)
        }),
        Stream.filterMap((x) => (x ? Option.some(x) : Option.none())),
      )
    }),
  )

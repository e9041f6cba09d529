/** Reads a log file line by line, in bounded memory, decoding every event. */
import { Effect, Either, Option, Stream } from "effect"
import { checkReadableFile, jsonDepthOffset, tooDeepReason } from "../common/index.ts"
import {
  fileLines,
  LogFileError,
  type LogFormat,
  parseLogLine,
  sniffFormat,
  toInputError,
} from "./formats.ts"

export const fileEvents = (file: string, format?: LogFormat) =>
  Stream.unwrap(
    Effect.gen(function* () {
      yield* checkReadableFile(file, "log file")
      let fmt = format
      return fileLines(file).pipe(
        Stream.mapEffect(({ text, line }) => {
          fmt ??= sniffFormat(file, text)
          // Refused before it is parsed, with the column in the whole line (an MLLOG line's JSON
          // starts after its prefix): deeper JSON overflows every recursive walk over it.
          const deep = jsonDepthOffset(text)
          if (deep !== undefined)
            return Effect.fail(
              toInputError(new LogFileError({ file, line, reason: tooDeepReason(`at column ${deep + 1}`) })),
            )
          const r = parseLogLine(text, fmt, file, line)
          // A line's reason may quote the line (JSON.parse does, and so do unknown types): clipped.
          return Either.isLeft(r) ? Effect.fail(toInputError(r.left)) : Effect.succeed(r.right)
        }),
        Stream.filterMap((x) => (x ? Option.some(x) : Option.none())),
      )
    }),
  )

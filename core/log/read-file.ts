/** Reads a log file line by line, in bounded memory, decoding every event. */
import { createReadStream } from "node:fs"
import { createInterface } from "node:readline"
import { Effect, Either, Option, Stream } from "effect"
import { checkReadableFile, errnoText, InputError } from "../common/index.ts"
import { type LogFormat, parseLogLine, sniffFormat } from "./formats.ts"

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
          const r = parseLogLine(text, fmt, file, lineNo)
          return Either.isLeft(r)
            ? Effect.fail(new InputError({ message: r.left.message }))
            : Effect.succeed(r.right)
        }),
        Stream.filterMap((x) => (x ? Option.some(x) : Option.none())),
      )
    }),
  )

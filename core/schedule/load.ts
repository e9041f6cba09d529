/** Reads a scenario file into a ScheduleSpec; every failure names the file. */
import { Effect, Either } from "effect"
import { InputError, readTextFile } from "../common/index.ts"
import { parseSpec, type ScheduleSpec } from "./spec.ts"

export const loadScenario = (file: string): Effect.Effect<ScheduleSpec, InputError> =>
  Effect.flatMap(readTextFile(file, "scenario file"), (text) => {
    const r = parseSpec(text, file)
    return Either.isRight(r)
      ? Effect.succeed(r.right)
      : Effect.fail(new InputError({ message: r.left.message }))
  })

/** Reads a scenario file into a ScheduleSpec; every failure names the file. */
import { readFileSync, statSync } from "node:fs"
import { Effect, Either } from "effect"
import { parseSpec, type ScheduleSpec } from "../core/schedule/spec.ts"
import { badInput, type CliFailure } from "./failure.ts"

export const readTextFile = (file: string, what = "file"): Effect.Effect<string, CliFailure> =>
  Effect.suspend(() => {
    try {
      if (statSync(file).isDirectory())
        return Effect.fail(badInput(`${file}: is a directory, expected a ${what}`))
      return Effect.succeed(readFileSync(file, "utf8"))
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code
      return Effect.fail(
        badInput(
          code === "ENOENT" ? `${file}: no such ${what}` : `${file}: cannot read (${code ?? String(e)})`,
        ),
      )
    }
  })

export const loadScenario = (file: string): Effect.Effect<ScheduleSpec, CliFailure> =>
  Effect.flatMap(readTextFile(file, "scenario file"), (text) => {
    const r = parseSpec(text, file)
    return Either.isRight(r) ? Effect.succeed(r.right) : Effect.fail(badInput(r.left.message))
  })

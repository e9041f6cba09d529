/**
 * Schema primitives shared by every file format the tool reads (scenarios, sweeps, results,
 * profiles, adapter options), so a bad number is worded the same way wherever it appears:
 * `must be an integer >= 1, got "fast"`. All are built on Schema.Finite / Schema.Int, so what
 * decodes also round-trips through JSON.
 */
import { Schema } from "effect"

/** A value as an error message shows it: short, whatever its size. */
export const shown = (u: unknown): string => {
  const text = typeof u === "number" ? String(u) : (JSON.stringify(u) ?? String(u))
  return clip(text)
}

/** Cuts a long text for an error message, saying how long it was. */
export const clip = (text: string, max = 120): string =>
  text.length <= max ? text : `${text.slice(0, max)}… (${text.length} characters)`

const described = <S extends Schema.Schema<number>>(base: S, what: string) => {
  const message = (issue: { actual: unknown }) => `must be ${what}, got ${shown(issue.actual)}`
  return base.annotations({ message })
}

/** A finite number (JSON's 1e999 is Infinity and refused) whose type error says what was wanted. */
export const finiteNumber = (what = "a finite number") =>
  described(Schema.Number, what).pipe(
    Schema.finite({ message: (i) => `must be ${what}, got ${shown(i.actual)}` }),
  )

export const integer = (what = "an integer") =>
  described(Schema.Number, what).pipe(
    Schema.int({ message: (i) => `must be ${what}, got ${shown(i.actual)}` }),
  )

export const NonNegInt = integer("an integer >= 0").pipe(
  Schema.nonNegative({ message: () => "must be an integer >= 0" }),
)
export const PosInt = integer("an integer >= 1").pipe(
  Schema.positive({ message: () => "must be an integer >= 1" }),
)
export const NonNegFinite = finiteNumber("a finite number >= 0").pipe(
  Schema.nonNegative({ message: () => "must be a finite number >= 0" }),
)
export const PosFinite = finiteNumber("a finite number > 0").pipe(
  Schema.positive({ message: () => "must be a finite number > 0" }),
)
export const UnitInterval = finiteNumber("a finite number between 0 and 1").pipe(
  Schema.between(0, 1, { message: () => "must be a finite number between 0 and 1" }),
)
export const NonEmptyString = Schema.String.pipe(
  Schema.minLength(1, { message: () => "must be a non-empty string" }),
)

/** A literal choice whose error lists every choice (a union otherwise names only its first). */
export const oneOf = <const L extends ReadonlyArray<string>>(...values: L) =>
  Schema.Literal(...values).annotations({
    message: (issue) => ({
      message: `must be one of ${values.map((v) => JSON.stringify(v)).join(", ")}, got ${shown(issue.actual)}`,
      override: true,
    }),
  })

/** What a JSON value is, in words, for "a scenario must be a JSON object, got an array". */
export const jsonKind = (u: unknown): string =>
  u === null ? "null" : Array.isArray(u) ? "an array" : typeof u === "object" ? "an object" : `a ${typeof u}`

/** Undefined when `u` is a JSON object; otherwise the reason a file of kind `what` is refused. */
export const notAnObject = (u: unknown, what: string): string | undefined =>
  typeof u === "object" && u !== null && !Array.isArray(u)
    ? undefined
    : `${what} must be a JSON object, got ${jsonKind(u)}`

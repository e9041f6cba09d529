/**
 * One way to turn an Effect Schema decode failure into `path: reason`, shared by every file the
 * tool reads (scenarios, sweeps, results, profiles, event logs), so all of them word errors alike.
 */
import { Data, ParseResult, type SchemaAST } from "effect"
import { clip, jsonKind, shown } from "./schema.ts"

/**
 * Longest reason and path an issue quotes. Effect's messages echo the value they got (`actual
 * "..."`), whatever its size: a 55 MB string in the wrong place must not come back whole.
 */
const MAX_REASON = 240
const MAX_PATH = 160

/** `["phases", 1, "ratio"]` -> `phases[1].ratio` */
export const formatPath = (path: ReadonlyArray<PropertyKey>): string =>
  path.reduce<string>(
    (acc, k) => (typeof k === "number" ? `${acc}[${k}]` : acc ? `${acc}.${String(k)}` : String(k)),
    "",
  )

export interface Issue {
  readonly path: string
  readonly reason: string
  /** The formatter's own issue, for callers that word some cases themselves. */
  readonly issue: ParseResult.ArrayFormatterIssue | undefined
}

/**
 * The first issue of a decode failure: unknown keys and missing keys in plain words; the reason
 * and the path clipped, so no echoed value (nor a key of any length) comes back whole.
 */
export const firstIssue = (error: ParseResult.ParseError, fallback = "invalid"): Issue => {
  const raw = ParseResult.ArrayFormatter.formatErrorSync(error)[0]
  if (!raw) return { path: "", reason: fallback, issue: raw }
  // Callers that word a case themselves start from the formatter's message: clipped for them too.
  const issue = { ...raw, message: clip(raw.message, MAX_REASON) }
  const reason =
    issue._tag === "Unexpected"
      ? "unknown key (check its spelling)"
      : issue._tag === "Missing"
        ? "is required"
        : issue._tag === "Type"
          ? (wrongShape(error.issue) ?? issue.message)
          : issue.message
  return { path: clip(formatPath(issue.path), MAX_PATH), reason: clip(reason, MAX_REASON), issue }
}

/** What shape an AST node expects, seen through refinements, transformations and suspends. */
const shapeOf = (ast: SchemaAST.AST): "an object" | "an array" | undefined => {
  switch (ast._tag) {
    case "TypeLiteral":
      return "an object"
    case "TupleType":
      return "an array"
    case "Refinement":
      return shapeOf(ast.from)
    case "Transformation":
      return shapeOf(ast.from)
    case "Suspend":
      return shapeOf(ast.f())
    default:
      return undefined
  }
}

/**
 * The first leaf of a decode failure, when it is a value of the wrong shape for an object or an
 * array (`batch: null`): Effect's own message would print the schema's encoded and type sides.
 */
const wrongShape = (issue: ParseResult.ParseIssue): string | undefined => {
  switch (issue._tag) {
    case "Pointer":
    case "Refinement":
    case "Transformation":
      return wrongShape(issue.issue)
    case "Composite":
      return wrongShape(Array.isArray(issue.issues) ? issue.issues[0] : issue.issues)
    case "Type": {
      const shape = shapeOf(issue.ast)
      if (shape === undefined) return undefined
      const got = jsonKind(issue.actual)
      if (got === shape) return undefined
      // A scalar is quoted (clipped); null, an array or an object is named by its kind alone.
      const value = typeof issue.actual === "object" ? "" : ` ${shown(issue.actual)}`
      return `expected ${shape}, got ${got}${value}`
    }
    default:
      return undefined
  }
}

/** `path: reason`, or the reason alone at the root. */
export const issueText = (i: { readonly path: string; readonly reason: string }): string =>
  i.path ? `${i.path}: ${i.reason}` : i.reason

/**
 * A file the tool reads (scenario, sweep, results, profile) does not decode: which file, where in
 * it (a JSON path, empty for the whole file), and why. One class for every such file.
 */
export class DecodeError extends Data.TaggedError("DecodeError")<{
  readonly source: string
  readonly path: string
  readonly reason: string
}> {
  override get message(): string {
    return `${this.source}: ${this.path ? `${this.path}: ` : ""}${this.reason}`
  }
}

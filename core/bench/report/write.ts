/** Writes report.md and report.html for a sweep into a directory (created if missing). */
import * as FileSystem from "@effect/platform/FileSystem"
import * as Path from "@effect/platform/Path"
import { Data, Effect } from "effect"
import type { SweepResults } from "../results.ts"
import { renderHtml } from "./html.ts"
import { renderMarkdown } from "./markdown.ts"

export class ReportError extends Data.TaggedError("ReportError")<{
  readonly path: string
  readonly message: string
  readonly cause?: unknown
}> {}

export interface WrittenReport {
  readonly markdownPath: string
  readonly htmlPath: string
}

export const writeReport = (
  dir: string,
  results: SweepResults,
  notes: ReadonlyArray<string> = [],
): Effect.Effect<WrittenReport, ReportError, FileSystem.FileSystem | Path.Path> =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    const markdownPath = path.join(dir, "report.md")
    const htmlPath = path.join(dir, "report.html")
    const html = yield* Effect.tryPromise({
      try: () => renderHtml(results, notes),
      catch: (cause) =>
        new ReportError({ path: htmlPath, message: `could not render charts: ${String(cause)}`, cause }),
    })
    const io = (p: string) => (cause: unknown) =>
      new ReportError({ path: p, message: `could not write ${p}: ${String(cause)}`, cause })
    yield* fs.makeDirectory(dir, { recursive: true }).pipe(Effect.mapError(io(dir)))
    yield* fs
      .writeFileString(markdownPath, renderMarkdown(results, notes))
      .pipe(Effect.mapError(io(markdownPath)))
    yield* fs.writeFileString(htmlPath, html).pipe(Effect.mapError(io(htmlPath)))
    return { markdownPath, htmlPath }
  })

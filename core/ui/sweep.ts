/**
 * The UI's sweep page: the extension point where the sweep report plugs in. `/sweep?results=PATH`
 * serves what `sweepPageHtml` returns for a results.json given with `interleave ui --results`
 * (never a path taken from a URL). It draws with the sweep report's own renderer (core/bench), so
 * the static report.html and this page come from one definition; when the report's charts move
 * to a shared definition, only the import below changes. Loaded on first use: the report pulls in
 * vega, which the rest of the UI does not need.
 */
import { Effect, Either } from "effect"
import { renderHtml } from "../bench/report/html.ts"
import { parseSweepResults } from "../bench/results.ts"
import { RESULTS_MAX_BYTES, readTextFile } from "../common/index.ts"

/** The sweep report of a results.json, as one HTML page. */
export const sweepPageHtml = async (resultsFile: string): Promise<string> => {
  const text = await Effect.runPromise(readTextFile(resultsFile, "results", RESULTS_MAX_BYTES))
  const results = Either.getOrThrow(parseSweepResults(text, resultsFile))
  return renderHtml(results, [`shown by interleave ui from ${resultsFile}`])
}

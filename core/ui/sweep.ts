/**
 * The UI's sweep page: the extension point where the sweep report plugs in. `/sweep?results=PATH`
 * serves what `sweepPageHtml` returns for a results.json given with `interleave ui --results`
 * (never a path taken from a URL). It draws with the sweep report's own renderer (core/bench), so
 * the static report.html and this page come from one definition; when the report's charts move
 * to a shared definition, only the import below changes. Loaded on first use: the report pulls in
 * vega, which the rest of the UI does not need.
 */
import { Effect, Either } from "effect"
import { escapeHtml, parseSweepResults, REPORT_STYLE, renderReportBody } from "../bench/index.ts"
import { RESULTS_MAX_BYTES, readTextFile } from "../common/index.ts"

/**
 * The sweep report of a results.json inside the UI's own header: the report's body and style are
 * the ones report.html is made of (renderReportBody, REPORT_STYLE), so both show the same charts.
 */
export const sweepPageHtml = async (resultsFile: string, storeName: string): Promise<string> => {
  const text = await Effect.runPromise(readTextFile(resultsFile, "results", RESULTS_MAX_BYTES))
  const results = Either.getOrThrow(parseSweepResults(text, resultsFile))
  const body = await renderReportBody(results, [`shown by interleave ui from ${resultsFile}`])
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>interleave · sweep ${escapeHtml(results.name)}</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/assets/app.css">
<style>${REPORT_STYLE}</style>
</head>
<body data-page="sweep" data-ready="1">
<header class="top">
<a class="brand" href="/">interleave</a>
<nav><a href="/">runs</a> <a href="/sweep?results=${encodeURIComponent(resultsFile)}">sweep</a></nav>
<span class="store" title="the event store this UI reads (read-only)">store: ${escapeHtml(storeName)}</span>
</header>
<main>${body}</main>
</body>
</html>
`
}

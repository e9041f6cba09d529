/**
 * The sweep report as ONE self-contained HTML file: inline CSS, the tables, and the charts as inline
 * SVG rendered at build time. No script, no external URL; a CSP forbids fetching anything anyway.
 */

import { formatBytes } from "../../common/index.ts"
import type { SweepResults } from "../results.ts"
import { chartSpecs, clockWords, renderChartSvg, sweepClock } from "./charts.ts"
import {
  acrossMachinesTable,
  DEFINITIONS,
  findingLines,
  hasWorkers,
  latencyTable,
  memoryTable,
  type Table,
  throughputTable,
  workerMachines,
} from "./tables.ts"

export const escapeHtml = (s: string): string =>
  s
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;")
    .replace(/'/g, "&#39;")

export const htmlTable = (table: Table): string => {
  const align = (i: number) => (table.columns[i]?.align === "right" ? ' class="num"' : "")
  const head = table.columns.map((c, i) => `<th${align(i)}>${escapeHtml(c.header)}</th>`).join("")
  const body = table.rows
    .map((r) => `<tr>${r.map((v, i) => `<td${align(i)}>${escapeHtml(v)}</td>`).join("")}</tr>`)
    .join("\n")
  return `<div class="table-scroll"><table data-table="${escapeHtml(table.id)}">\n<thead><tr>${head}</tr></thead>\n<tbody>\n${body}\n</tbody>\n</table></div>`
}

/**
 * The report's CSS. Every rule is scoped under `.interleave-report` (the element the body is
 * wrapped in), so the same body can sit inside another page (the `interleave ui` sweep page).
 * Tables fit a 900 px window: smaller type, headers and words wrap, numbers stay on one line; a
 * table that still does not fit scrolls sideways inside its box with its first column (the
 * config) kept in view. Charts scale down to the page's width (their SVG has a viewBox).
 */
export const REPORT_STYLE = `
.interleave-report { font-family: system-ui, sans-serif; color: #222; }
.interleave-report h1 { margin-bottom: 0.2rem; }
.interleave-report .meta { color: #555; margin: 0 0 1.5rem; }
.interleave-report .table-scroll { max-width: 100%; overflow-x: auto; margin: 0.5rem 0 1.5rem; }
.interleave-report table { border-collapse: collapse; font-size: 0.78rem; line-height: 1.3; }
.interleave-report th, .interleave-report td { border-bottom: 1px solid #ddd; padding: 0.25rem 0.4rem; text-align: left; vertical-align: top; }
.interleave-report th { background: #f4f4f4; font-weight: 600; white-space: normal; hyphens: manual; }
.interleave-report td { white-space: normal; max-width: 16em; }
.interleave-report td.num { white-space: nowrap; }
.interleave-report th:first-child, .interleave-report td:first-child { position: sticky; left: 0; background: #fff; min-width: 8em; max-width: 13em; box-shadow: 1px 0 0 #ddd; }
.interleave-report th:first-child { background: #f4f4f4; }
.interleave-report .table-note { color: #555; margin: 0.2rem 0 0.3rem; font-size: 0.85rem; }
.interleave-report .num { text-align: right; font-variant-numeric: tabular-nums; }
.interleave-report figure.chart { margin: 0.5rem 0 2.5rem; }
.interleave-report figure.chart figcaption { font-weight: 600; margin-bottom: 0.3rem; }
.interleave-report figure.chart .chart-note { color: #555; margin: 0 0 0.5rem; font-size: 0.85rem; max-width: 60rem; }
.interleave-report figure.chart svg { display: block; max-width: 100%; height: auto; }
.interleave-report dl dt { font-weight: 600; }
.interleave-report dl dd { margin: 0 0 0.5rem 1rem; color: #444; }
`

const PAGE_STYLE = `
body { margin: 2rem auto; max-width: 1120px; padding: 0 1rem; }
`

/**
 * The report's body: heading, tables, charts (inline SVG), findings, notes and definitions, in one
 * `<div class="interleave-report">`. Style it with `REPORT_STYLE`. report.html is this inside a
 * page (`renderHtml`); the `interleave ui` sweep page shows the same. Async because vega renders
 * asynchronously.
 */
export const renderReportBody = async (
  results: SweepResults,
  notes: ReadonlyArray<string> = [],
): Promise<string> => {
  const charts = new Map<string, string>()
  if (results.configs.length > 0)
    for (const c of chartSpecs(results)) {
      const svg = await renderChartSvg(c.spec)
      charts.set(
        c.id,
        `<figure class="chart" data-chart="${c.id}" role="img" aria-label="${escapeHtml(c.title)}">\n<figcaption>${escapeHtml(c.title)}</figcaption>${c.note ? `\n<p class="chart-note">${escapeHtml(c.note)}</p>` : ""}\n${svg}\n</figure>`,
      )
    }
  const section = (table: Table, ...chartIds: string[]) =>
    [
      `<h2>${escapeHtml(table.title)}</h2>`,
      ...(table.note ? [`<p class="table-note">${escapeHtml(table.note)}</p>`] : []),
      htmlTable(table),
      ...chartIds.map((id) => charts.get(id) ?? ""),
    ].join("\n")
  const m = results.machine
  const built = `${m.cpu}, ${m.cores} cores, ${formatBytes(m.memBytes)} RAM, ${m.platform}, Node ${m.node}${m.gpu ? `, GPU ${m.gpu}` : ""}`
  const machine = hasWorkers(results)
    ? `workers: ${workerMachines(results).join("; ")} · report built on ${built}`
    : built
  const body =
    results.configs.length === 0
      ? "<p>No configurations were run.</p>"
      : [
          section(throughputTable(results), "throughput"),
          section(latencyTable(results), "latency", "p99"),
          section(memoryTable(results), "memory", "loss"),
          ...(hasWorkers(results) ? [section(acrossMachinesTable(results))] : []),
        ].join("\n")
  const definitions = DEFINITIONS.map(([t, d]) => `<dt>${escapeHtml(t)}</dt><dd>${escapeHtml(d)}</dd>`).join(
    "\n",
  )
  const found = findingLines(results)
  const findingsSection =
    found.length === 0
      ? ""
      : `<h2>Aborted configurations, noisy numbers and notes</h2>\n<ul data-findings="bench">\n${found.map((f) => `<li>${escapeHtml(f)}</li>`).join("\n")}\n</ul>\n`
  const notesSection =
    notes.length === 0
      ? ""
      : `<h2>How this bench measured</h2>\n<ul data-notes="bench">\n${notes.map((n) => `<li>${escapeHtml(n.replace(/`/g, ""))}</li>`).join("\n")}\n</ul>\n`
  const clock = results.configs.length === 0 ? "" : ` · times and memory ${clockWords(sweepClock(results))}`
  return `<div class="interleave-report" data-clock="${results.configs.length === 0 ? "none" : sweepClock(results)}">
<h1>Sweep: ${escapeHtml(results.name)}</h1>
<p class="meta">Created ${escapeHtml(results.createdAt)} · ${escapeHtml(machine)} · ${results.configs.length} configurations${clock}</p>
${body}
${findingsSection}${notesSection}<h2>Definitions</h2>
<dl>
${definitions}
</dl>
</div>`
}

/** The whole report.html: one self-contained page around `renderReportBody`. */
export const renderHtml = async (
  results: SweepResults,
  notes: ReadonlyArray<string> = [],
): Promise<string> => `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sweep: ${escapeHtml(results.name)}</title>
<style>${PAGE_STYLE}${REPORT_STYLE}</style>
</head>
<body>
${await renderReportBody(results, notes)}
</body>
</html>
`

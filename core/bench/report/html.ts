/**
 * The sweep report as ONE self-contained HTML file: inline CSS, the tables, and the charts as inline
 * SVG rendered at build time. No script, no external URL; a CSP forbids fetching anything anyway.
 */

import { formatBytes } from "../../common/index.ts"
import type { SweepResults } from "../results.ts"
import { chartSpecs, renderChartSvg } from "./charts.ts"
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
  return `<table data-table="${escapeHtml(table.id)}">\n<thead><tr>${head}</tr></thead>\n<tbody>\n${body}\n</tbody>\n</table>`
}

const STYLE = `
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1100px; padding: 0 1rem; color: #222; }
h1 { margin-bottom: 0.2rem; }
.meta { color: #555; margin: 0 0 1.5rem; }
table { border-collapse: collapse; margin: 0.5rem 0 1.5rem; font-size: 0.9rem; }
th, td { border-bottom: 1px solid #ddd; padding: 0.3rem 0.6rem; text-align: left; white-space: nowrap; }
th { background: #f4f4f4; }
.num { text-align: right; font-variant-numeric: tabular-nums; }
figure.chart { margin: 0.5rem 0 2rem; overflow-x: auto; }
figure.chart figcaption { font-weight: 600; margin-bottom: 0.4rem; }
figure.chart .chart-note { color: #555; margin: 0 0 0.4rem; font-size: 0.9rem; }
dl dt { font-weight: 600; } dl dd { margin: 0 0 0.5rem 1rem; color: #444; }
`

/** Renders the report; async because vega renders asynchronously. */
export const renderHtml = async (
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
          section(latencyTable(results), "latency"),
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
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sweep: ${escapeHtml(results.name)}</title>
<style>${STYLE}</style>
</head>
<body>
<h1>Sweep: ${escapeHtml(results.name)}</h1>
<p class="meta">Created ${escapeHtml(results.createdAt)} · ${escapeHtml(machine)} · ${results.configs.length} configurations</p>
${body}
${findingsSection}${notesSection}<h2>Definitions</h2>
<dl>
${definitions}
</dl>
</body>
</html>
`
}

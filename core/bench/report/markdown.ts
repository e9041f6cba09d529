/** The sweep report as GitHub-flavoured markdown: header, the three tables, definitions. */
import { formatBytes } from "../../common/index.ts"
import type { SweepResults } from "../results.ts"
import { DEFINITIONS, findingLines, hasWorkers, reportTables, type Table, workerMachines } from "./tables.ts"

/** A cell may hold a `|` (labels are user text); escape it so the row keeps its columns. */
const cell = (s: string): string => s.replace(/\\/g, "\\\\").replace(/\|/g, "\\|").replace(/\r?\n/g, " ")

export const markdownTable = (table: Table): string => {
  const header = `| ${table.columns.map((c) => cell(c.header)).join(" | ")} |`
  const rule = `| ${table.columns.map((c) => (c.align === "right" ? "---:" : ":---")).join(" | ")} |`
  const rows = table.rows.map((r) => `| ${r.map(cell).join(" | ")} |`)
  return [header, rule, ...rows].join("\n")
}

export const renderMarkdown = (results: SweepResults, notes: ReadonlyArray<string> = []): string => {
  const m = results.machine
  const lines: string[] = [
    `# Sweep: ${results.name}`,
    "",
    `- Created: ${results.createdAt}`,
    `- ${hasWorkers(results) ? "Report built on" : "Machine"}: ${m.cpu}, ${m.cores} cores, ${formatBytes(m.memBytes)} RAM, ${m.platform}, Node ${m.node}${m.gpu ? `, GPU ${m.gpu}` : ""}`,
    ...(hasWorkers(results) ? [`- Workers: ${workerMachines(results).join("; ")}`] : []),
    `- Configurations: ${results.configs.length}`,
    "",
  ]
  if (results.configs.length === 0) lines.push("No configurations were run.", "")
  else
    for (const t of reportTables(results))
      lines.push(`## ${t.title}`, "", ...(t.note ? [t.note, ""] : []), markdownTable(t), "")
  const found = findingLines(results)
  if (found.length > 0) {
    lines.push("## Aborted configurations, noisy numbers and notes", "")
    for (const f of found) lines.push(`- ${cell(f)}`)
    lines.push("")
  }
  if (notes.length > 0) {
    lines.push("## How this bench measured", "")
    for (const n of notes) lines.push(`- ${n}`)
    lines.push("")
  }
  lines.push("## Definitions", "")
  for (const [term, meaning] of DEFINITIONS) lines.push(`- **${term}**: ${meaning}`)
  lines.push("")
  return lines.join("\n")
}

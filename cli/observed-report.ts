/** How an observed run (imported from a foreign log) reads on the terminal: `show` and `verify --log`. */
import { Effect } from "effect"
import { formatDuration, formatNumber } from "../core/common/index.ts"
import type {
  ObservedAt,
  ObservedDescriptor,
  ObservedEval,
  ObservedVerifyReport,
  RunStarted,
  RunState,
} from "../core/log/index.ts"
import { failedCheck } from "./failure.ts"
import { json, line, table } from "./output.ts"

const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? "" : "s"}`

/** Where a point lies, in the log's own counters: "epoch 0.05", "samples 7296", "iteration 199". */
export const atText = (at: ObservedAt): string => {
  const parts: string[] = []
  if (at.epoch !== undefined) parts.push(`epoch ${at.epoch}`)
  if (at.samples !== undefined) parts.push(`samples ${at.samples}`)
  if (at.step !== undefined) parts.push(`step ${at.step}`)
  if (at.iteration !== undefined) parts.push(`iteration ${at.iteration}`)
  return parts.join(", ") || "—"
}

const provenance = (d: ObservedDescriptor): string =>
  `${d.source}, ${d.file} (sha256 ${d.fileSha256.slice(0, 12)}…, ${d.fileBytes} bytes; ${plural(d.lines.total, "line")}: ${d.lines.read} read, ${d.lines.skipped} skipped)`

const RULE_WORDS: Readonly<Record<string, string>> = {
  "event-log": "event log",
  "observed-order": "order",
  "observed-intervals": "intervals",
  "observed-time": "time",
  "observed-progress": "progress",
  "observed-iterations": "iterations",
  "observed-lr": "lr schedule",
  "observed-modality": "modality",
}

export const observedVerifyLines = (r: ObservedVerifyReport, d: ObservedDescriptor | undefined): string[] => {
  const out = [`observed run ${r.runId}: ${d ? provenance(d) : `${r.source}, ${r.file}`}`, "checked:"]
  const status = { ok: "ok", note: "note", fail: "FAIL", skipped: "not checked" } as const
  for (const c of r.checks) {
    out.push(`  ${status[c.status].padEnd(11)} ${(RULE_WORDS[c.rule] ?? c.rule).padEnd(12)} ${c.summary}`)
    for (const x of c.details) out.push(`  ${"".padEnd(11)} ${"".padEnd(12)} ${x}`)
  }
  out.push(`not checkable from this log: ${r.notChecked.join("; ")}`)
  const notes = r.checks.filter((c) => c.status === "note").length
  if (r.ok) out.push(`PASS: no violations${notes > 0 ? ` (${plural(notes, "note")} above, tolerated)` : ""}`)
  else {
    const rules = Object.keys(r.violationCounts)
    out.push(`FAIL: ${plural(r.violationTotal, "violation")} of ${plural(rules.length, "rule")}`)
    for (const rule of rules) {
      const found = r.violationCounts[rule as keyof typeof r.violationCounts] ?? 0
      const shown = r.violations.filter((v) => v.rule === rule)
      out.push(
        `  [${rule}] ${plural(found, "violation")}${shown.length < found ? `, first ${shown.length} shown` : ""}`,
      )
      for (const v of shown) out.push(`    ${v.message}`)
    }
  }
  return out
}

/** Prints an observed run's verification; exit 1 when it fails. */
export const reportObservedVerify = (
  r: ObservedVerifyReport,
  d: ObservedDescriptor | undefined,
  asJson: boolean,
) =>
  Effect.gen(function* () {
    if (asJson) yield* json(r)
    else yield* line(observedVerifyLines(r, d).join("\n"))
    if (!r.ok) return yield* failedCheck(asJson ? "" : "verification failed")
  })

const isoTime = (ms: number): string => new Date(ms).toISOString().replace(".000Z", "Z")

export const observedShowLines = (
  runId: string,
  started: RunStarted,
  s: RunState,
  evals: ReadonlyArray<ObservedEval>,
): string[] => {
  const d = started.observed!
  const o = s.observed
  const ending =
    s.status === "completed"
      ? "completed (the log's run_stop says success)"
      : s.status === "aborted"
        ? `aborted: ${s.abortReason}`
        : "the log does not say how the run ended"
  const out = [`run ${runId}: observed, ${ending}`, `observed in ${provenance(d)}`]
  out.push(`iterations: ${d.iterations}`)
  out.push(`window: ${d.window.description}`)
  const settings = Object.entries(d.settings)
  out.push(
    `settings the log states: ${settings.length === 0 ? "none" : settings.map(([k, v]) => `${k}=${v}`).join(", ")}`,
  )
  out.push(`carries: ${d.carries.join("; ")}`)
  out.push(`lacks: ${d.lacks.join("; ")}`)
  if (o) {
    if (o.firstTimeMs !== undefined && o.lastTimeMs !== undefined)
      out.push(
        `time span: ${isoTime(o.firstTimeMs)} .. ${isoTime(o.lastTimeMs)} (${formatDuration(o.lastTimeMs - o.firstTimeMs)}, the log's time_ms)`,
      )
    const iv = Object.entries(o.intervals)
      .map(([k, c]) => `${k} ${c.starts}/${c.stops}`)
      .join(", ")
    out.push(
      `counts: ${plural(o.windows, "train row")}${o.firstIteration !== undefined ? ` (iterations ${o.firstIteration}..${o.lastIteration}, 0-based)` : ""}; ${plural(o.evaluations, "evaluation result")}; ${iv ? `intervals (starts/stops) ${iv}` : "no intervals"}; ${plural(o.stats, "statistics line")}`,
    )
    const fields = Object.entries(d.fields)
    if (fields.length > 0) {
      out.push("fields:")
      for (const [k, v] of fields) out.push(`  ${k}: ${v}`)
    }
  }
  if (evals.length > 0) {
    out.push("", "evaluations")
    out.push(
      table(
        ["at", "metric", "value", "line"],
        evals.map((e) => [atText(e.at), e.metric, formatNumber(e.value), e.line]),
      ),
    )
  }
  return out
}

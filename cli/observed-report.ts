/** How an observed run (imported from a foreign log) reads on the terminal: `show` and `verify --log`. */
import { Effect } from "effect"
import { formatDuration, formatNumber, plural } from "../core/common/index.ts"
import type {
  ObservedAt,
  ObservedDescriptor,
  ObservedEval,
  ObservedSummary,
  ObservedVerifyReport,
  RunStarted,
  RunState,
} from "../core/log/index.ts"
import { failedCheck } from "./failure.ts"
import { json, line, table } from "./output.ts"

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
  const out = [`observed run ${r.runId}: ${d ? provenance(d) : `${r.source}, ${r.file}`}`]
  if (d) out.push(`window: ${d.window.description}`)
  out.push("checked:")
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

/** A time to train to the millisecond: "1 h 25 min 44.120 s", "2 min 58.700 s". */
export const trainTime = (ms: number): string => {
  const s = ms / 1000
  const h = Math.floor(s / 3600)
  const min = Math.floor((s % 3600) / 60)
  const sec = (s % 60).toFixed(3)
  return h > 0 ? `${h} h ${min} min ${sec} s` : min > 0 ? `${min} min ${sec} s` : `${sec} s`
}

/** run_start to run_stop, when the log has both (MLPerf's time to train). */
export const timeToTrainMs = (o: ObservedSummary): number | undefined =>
  o.runStart !== undefined && o.runStop !== undefined ? o.runStop.timeMs - o.runStart.timeMs : undefined

/**
 * A formatter for one metric's values (in log order) with enough digits to see their trend: the
 * smallest change between successive values to two significant digits (0.7199 -> 0.7200 is not
 * "0.720" twice), at least three significant digits of each value, at most six of the largest.
 */
export const digitsFor = (values: ReadonlyArray<number>): ((x: number) => string) => {
  const finite = values.filter(Number.isFinite)
  let step = Number.POSITIVE_INFINITY
  for (let i = 1; i < finite.length; i++) {
    const d = Math.abs(finite[i]! - finite[i - 1]!)
    if (d > 0 && d < step) step = d
  }
  const largest = Math.max(0, ...finite.map(Math.abs))
  const cap = largest > 0 ? 5 - Math.floor(Math.log10(largest)) : 0
  const stepDecimals = Number.isFinite(step) ? Math.min(cap, Math.ceil(-Math.log10(step)) + 1) : 0
  return (x) => {
    const a = Math.abs(x)
    if (!Number.isFinite(x) || a === 0 || a >= 1e15 || a < 1e-6) return formatNumber(x)
    const sig3 = 2 - Math.floor(Math.log10(a))
    return x.toFixed(Math.min(15, Math.max(0, sig3, stepDecimals)))
  }
}

const valuesText = (values: Readonly<Record<string, number>>): string =>
  Object.entries(values)
    .map(([k, v]) => `${k} ${formatNumber(v)}`)
    .join(", ") || "no numeric values"

const placeText = (p: { line: number; iteration?: number | undefined }): string =>
  `line ${p.line}${p.iteration === undefined ? "" : ` (iteration ${p.iteration})`}`

/** Every value the log wrote as NaN / Infinity, which no event holds: key, how many rows, where. */
export const nonFiniteLines = (d: ObservedDescriptor): string[] =>
  (d.nonFinite ?? []).map((n) => {
    const more = n.count - n.places.length
    const tail =
      more > 1 ? `, ... (${more - 1} more), ${placeText(n.last)}` : more === 1 ? `, ${placeText(n.last)}` : ""
    return `  ${n.key}: ${plural(n.count, "row")}: ${n.places.map(placeText).join(", ")}${tail}`
  })

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
  if (d.window.iterations !== undefined || d.format === "mmengine")
    out.push(
      `window size: ${d.window.iterations === undefined ? "unknown (import --window N)" : `${d.window.iterations} iterations`}`,
    )
  if (o) {
    const ttt = timeToTrainMs(o)
    if (o.runStart !== undefined && o.runStop !== undefined && ttt !== undefined)
      out.push(
        `time to train: ${trainTime(ttt)}, run_start (line ${o.runStart.line}, ${isoTime(o.runStart.timeMs)}) to run_stop (line ${o.runStop.line}, ${isoTime(o.runStop.timeMs)}), the log's time_ms`,
      )
    else if (d.format === "mllog")
      out.push(`time to train: not in the log (${o.runStart === undefined ? "no run_start" : "no run_stop"})`)
    if (o.firstTimeMs !== undefined && o.lastTimeMs !== undefined)
      out.push(
        `log span: ${isoTime(o.firstTimeMs)} .. ${isoTime(o.lastTimeMs)} (${formatDuration(o.lastTimeMs - o.firstTimeMs)}, the earliest to the latest time_ms of any line, lines outside run_start..run_stop such as offline evaluations included)`,
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
    const w = o.lastWindow
    if (w !== undefined)
      out.push(
        `last train row: iterations ${w.first}..${w.last}${w.epoch === undefined ? "" : `, epoch ${w.epoch}`} (line ${w.line}): ${valuesText(w.values)}${w.nonFinite ? `; non-finite: ${w.nonFinite.join(", ")}` : ""}`,
      )
    const stats = Object.entries(o.lastStats)
    if (stats.length > 0) {
      out.push("last statistics:")
      for (const [k, x] of stats)
        out.push(`  ${k} at ${atText(x.at)} (line ${x.line}): ${valuesText(x.values)}`)
    }
  }
  const dropped = nonFiniteLines(d)
  if (dropped.length > 0)
    out.push("non-finite values in the log (NaN / Infinity; no event holds them):", ...dropped)
  if (evals.length > 0) {
    // Digits per metric, from the changes between its values: 2.6948 and 2.6893 are not both "2.69".
    const byMetric = new Map<string, number[]>()
    for (const e of evals) byMetric.set(e.metric, [...(byMetric.get(e.metric) ?? []), e.value])
    const fmt = new Map([...byMetric].map(([m, v]) => [m, digitsFor(v)]))
    out.push("", "evaluations")
    out.push(
      table(
        ["at", "metric", "value", "line"],
        evals.map((e) => [atText(e.at), e.metric, fmt.get(e.metric)!(e.value), e.line]),
      ),
    )
  }
  return out
}

/**
 * `show --json` of an observed run: what its log carried (the observed summary: last train row,
 * last statistics, run_start / run_stop, counts), the time to train, the non-finite values, the
 * evaluations. Not the fields of runs we made (steps, losses per modality, memory): the log has none.
 */
export const observedShowJson = (s: RunState, evals: ReadonlyArray<ObservedEval>) => ({
  runId: s.runId,
  status: s.status,
  source: s.source,
  seed: s.seed,
  abortReason: s.abortReason,
  observed: s.observed ?? null,
  timeToTrainMs: s.observed ? (timeToTrainMs(s.observed) ?? null) : null,
  nonFinite: s.observed?.descriptor.nonFinite ?? [],
  evaluations: evals,
})

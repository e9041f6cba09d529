/**
 * MLPerf MLLOG: `:::MLLOG {json}` lines with `namespace`, `time_ms`, `event_type` (INTERVAL_START,
 * INTERVAL_END, POINT_IN_TIME), `key`, `value`, `metadata` (mlcommons/logging).
 *
 * Reading follows mlcommons' own parser (compliance_checker/mlp_parser): a line counts when it
 * contains `:::MLLOG ` anywhere; everything before the token (a rank prefix `0: `, a timestamp,
 * `[1,0]<stdout>:`) is dropped, keeping the text after its last occurrence, as the parser's greedy
 * `re.sub(".*:::MLLOG ", ...)` does; every other line is skipped (and counted).
 *
 * Two kinds of MLLOG files:
 * - ours (`interleave export --format mllog`): MLPerf's standard keys where they exist, and each
 *   event's full envelope under ONE metadata key, `metadata.interleave`, on exactly one line, so a
 *   round trip is lossless. Lines without it (block_stop, the second modality's eval_accuracy,
 *   seed, global_batch_size) are derived and skipped on import.
 *     RunStarted      run_start (INTERVAL_START), then seed and global_batch_size (one per modality)
 *     PhaseStarted    block_stop of the previous phase, block_start (value: the phase; samples_count)
 *     StepCompleted   tracked_stats {loss, lr, step_ms} (metadata: step, modality, phase, samples_count)
 *     EvalCompleted   eval_accuracy, a number, per modality (metadata: metric, modality, step)
 *     RunCompleted    block_stop, run_stop {status: "success"};  RunAborted: {status: "aborted"}
 *     others          POINT_IN_TIME lines named for the event (checkpoint, step_failed, ...)
 * - anyone else's (MLPerf result logs): read as an observed run (observed-events.ts): run_start /
 *   run_stop and its status, block / epoch / eval intervals as they are (real logs are not always
 *   balanced), eval_accuracy with its metadata (metric name, epoch_num, samples_count, step_num),
 *   tracked statistics, and the settings stated before run_start (seed, global_batch_size, ...).
 *   The events also carry every MLLOG line as written (`mllog`): exporting such a run as MLLOG
 *   writes the original lines back (keys, values, time_ms, metadata), not lines of ours, so
 *   mlcommons' compliance checker judges the export as it judges the source.
 */
import { Either } from "effect"
import type { EventEnvelope, StoredEvent } from "../../store/index.ts"
import { decodeEvent, type RunEvent } from "../events.ts"
import type { ObservedAt, ObservedEvent } from "../observed-events.ts"
import { isFiniteNumber, isObject, type JsonObject, type Line, LogFileError, parseJsonLine } from "./lines.ts"
import { type NonFiniteTally, nonFiniteTally, withNonFinite } from "./non-finite.ts"
import { nonFiniteLiteral, nonFiniteReason } from "./non-finite-literal.ts"
import type { Analyzer, Converter, Described, ObservedReader } from "./observed-reader.ts"

export const MLLOG_TOKEN = ":::MLLOG "

/** The JSON text of an MLLOG line (after its last `:::MLLOG ` token), or undefined for other lines. */
export const mllogJson = (text: string): string | undefined => {
  const i = text.lastIndexOf(MLLOG_TOKEN)
  return i < 0 ? undefined : text.slice(i + MLLOG_TOKEN.length).trim()
}

export interface MllogRecord {
  readonly timeMs: number
  readonly eventType: string | undefined
  readonly key: string
  readonly value: unknown
  readonly metadata: JsonObject
  /** Top-level fields written as NaN / Infinity (parsed as null): "value" when the value was. */
  readonly nonFinite: ReadonlyArray<string>
}

/** Parses an MLLOG line; undefined for lines that are not MLLOG lines. */
export const parseMllogLine = (
  text: string,
  file: string,
  line: number,
): MllogRecord | LogFileError | undefined => {
  const json = mllogJson(text)
  if (json === undefined) return undefined
  const parsed = parseJsonLine(json, file, line)
  if (parsed instanceof LogFileError) return parsed
  const r = parsed.value
  if (!isObject(r)) return new LogFileError({ file, line, reason: "an MLLOG line must hold a JSON object" })
  // mlcommons' parser: float(m['time_ms']), so a numeric string passes too.
  const t = typeof r.time_ms === "string" ? Number(r.time_ms) : r.time_ms
  if (!isFiniteNumber(t))
    return new LogFileError({
      file,
      line,
      field: "time_ms",
      reason: `expected the time in ms since the epoch, got ${JSON.stringify(r.time_ms)}`,
    })
  if (typeof r.key !== "string" || r.key === "")
    return new LogFileError({ file, line, field: "key", reason: "expected the MLLOG key (a string)" })
  if (!("metadata" in r) || (!isObject(r.metadata) && r.metadata !== null))
    return new LogFileError({ file, line, field: "metadata", reason: "expected an object" })
  return {
    timeMs: t,
    eventType: typeof r.event_type === "string" ? r.event_type : undefined,
    key: r.key,
    value: r.value,
    metadata: (r.metadata ?? {}) as JsonObject,
    nonFinite: parsed.nonFinite,
  }
}

// ---- ours: export ------------------------------------------------------------------------------

const line = (time: number, eventType: string, key: string, value: unknown, metadata: JsonObject): string =>
  `${MLLOG_TOKEN}${JSON.stringify({ namespace: "", time_ms: time, event_type: eventType, key, value, metadata })}`

const envelopeOf = (e: StoredEvent) => ({
  type: e.type,
  version: e.version,
  position: e.position,
  recordedAt: e.recordedAt,
  data: e.data,
})

export interface MllogExporter {
  /** The lines for one stored event, in order. */
  readonly push: (e: StoredEvent) => ReadonlyArray<string>
}

/**
 * Our events as MLLOG lines in MLPerf's shape. Stateful across a run's events: block_stop closes
 * the phase that a PhaseStarted or the run's end leaves, and samples_count counts the samples
 * trained so far.
 */
export const makeMllogExporter = (): MllogExporter => {
  let samples = 0
  let phase: string | undefined
  // An observed MLPerf run whose events carry its source's lines: those lines, as written.
  let original = false
  const closePhase = (t: number): string[] => {
    if (phase === undefined) return []
    const p = phase
    phase = undefined
    return [line(t, "INTERVAL_END", "block_stop", p, { samples_count: samples, phase: p })]
  }
  return {
    push: (e) => {
      const d = e.data as RunEvent
      if (d._tag === "RunStarted")
        original = d.observed?.format === "mllog" && d.observed.mllogLines !== undefined
      if (original) return "mllog" in d && d.mllog ? d.mllog.map((text) => `${MLLOG_TOKEN}${text}`) : []
      const interleave = envelopeOf(e)
      const t = e.recordedAt
      switch (d._tag) {
        case "RunStarted": {
          samples = 0
          phase = undefined
          const out = [line(t, "INTERVAL_START", "run_start", null, { run_id: d.runId, interleave })]
          out.push(line(t, "POINT_IN_TIME", "seed", d.seed, {}))
          const batch = (
            d.spec as { batch?: Record<string, { size?: unknown; accumulation?: unknown }> } | null
          )?.batch
          for (const m of ["visual", "text"] as const) {
            const b = batch?.[m]
            if (b && typeof b.size === "number")
              out.push(
                line(
                  t,
                  "POINT_IN_TIME",
                  "global_batch_size",
                  b.size * (typeof b.accumulation === "number" ? b.accumulation : 1),
                  {
                    modality: m,
                  },
                ),
              )
          }
          return out
        }
        case "PhaseStarted": {
          const out = closePhase(t)
          phase = d.phase
          out.push(
            line(t, "INTERVAL_START", "block_start", d.phase, {
              samples_count: samples,
              phase: d.phase,
              step: d.step,
              interleave,
            }),
          )
          return out
        }
        case "StepCompleted": {
          samples += d.samples
          const value: Record<string, number> = {}
          if (d.losses.total !== undefined) value.loss = d.losses.total
          const lr = Object.values(d.lr)[0]
          if (lr !== undefined) value.lr = lr
          value.step_ms = d.durationMs
          return [
            line(t, "POINT_IN_TIME", "tracked_stats", value, {
              step: d.step,
              modality: d.modality,
              phase: d.phase,
              samples_count: samples,
              interleave,
            }),
          ]
        }
        case "StepFailed":
          return [
            line(t, "POINT_IN_TIME", "step_failed", d.kind, {
              step: d.step,
              modality: d.modality,
              interleave,
            }),
          ]
        case "EvalCompleted": {
          const meta = (m: "visual" | "text") => ({
            metric: d.metric,
            modality: m,
            step: d.step,
            samples_count: samples,
          })
          return [
            line(t, "POINT_IN_TIME", "eval_accuracy", d.values.visual, { ...meta("visual"), interleave }),
            line(t, "POINT_IN_TIME", "eval_accuracy", d.values.text, meta("text")),
          ]
        }
        case "Checkpointed":
          return [line(t, "POINT_IN_TIME", "checkpoint", d.file, { step: d.step, interleave })]
        case "RunResumed":
          return [line(t, "POINT_IN_TIME", "run_resumed", d.fromStep, { interleave })]
        case "RunInterrupted":
          return [line(t, "POINT_IN_TIME", "run_interrupted", d.lastStep, { reason: d.reason, interleave })]
        case "RunCompleted":
          return [
            ...closePhase(t),
            line(t, "INTERVAL_END", "run_stop", null, { status: "success", interleave }),
          ]
        case "RunAborted":
          return [
            ...closePhase(t),
            line(t, "INTERVAL_END", "run_stop", null, { status: "aborted", reason: d.reason, interleave }),
          ]
        default:
          return [line(t, "POINT_IN_TIME", "interleave_observed", d._tag, { interleave })]
      }
    },
  }
}

// ---- ours: import ------------------------------------------------------------------------------

export interface OurLine {
  readonly envelope: EventEnvelope
  /** The file's line (1-based) the event is written on. */
  readonly line: number
  readonly position: number | undefined
  readonly recordedAt: number | undefined
  readonly event: RunEvent
}

/** An event from a `{type, version, position, recordedAt, data}` record (a JSONL line, or metadata.interleave). */
export const eventFromRecord = (rec: unknown, file: string, line: number): OurLine | LogFileError => {
  if (!isObject(rec))
    return new LogFileError({ file, line, reason: "expected a JSON object with type, version and data" })
  if (typeof rec.type !== "string" || typeof rec.version !== "number" || !("data" in rec))
    return new LogFileError({ file, line, reason: "missing type, version or data" })
  const envelope: EventEnvelope = { type: rec.type, version: rec.version, data: rec.data }
  const d = decodeEvent(envelope, `${file}:${line}`)
  if (Either.isLeft(d)) return new LogFileError({ file, line, reason: d.left.reason })
  return {
    envelope,
    line,
    position: typeof rec.position === "number" ? rec.position : undefined,
    recordedAt: typeof rec.recordedAt === "number" ? rec.recordedAt : undefined,
    event: d.right,
  }
}

/** Whether an MLLOG record was written by interleave (carries an envelope). */
export const isOurs = (r: MllogRecord): boolean => r.metadata.interleave !== undefined

/** One line of our MLLOG: the event its envelope holds, or undefined for derived and foreign lines. */
export const parseOurMllogLine = (
  text: string,
  file: string,
  line: number,
): OurLine | LogFileError | undefined => {
  const r = parseMllogLine(text, file, line)
  if (r === undefined || r instanceof LogFileError) return r
  if (!isOurs(r)) return undefined
  // Our writer never writes NaN / Infinity: one in an envelope is named, not read as null.
  const bad = nonFiniteLiteral(mllogJson(text) ?? "")
  if (bad !== undefined && bad.path.startsWith("metadata.interleave"))
    return new LogFileError({ file, line, field: bad.path, reason: nonFiniteReason(bad.literal) })
  return eventFromRecord(r.metadata.interleave, file, line)
}

// ---- MLPerf result logs: observed runs --------------------------------------------------------

/** Keys whose values are settings of the run, wherever they appear. */
const isSettingKey = (key: string): boolean =>
  key.startsWith("submission_") ||
  key.startsWith("opt_") ||
  [
    "seed",
    "global_batch_size",
    "gradient_accumulation_steps",
    "train_samples",
    "eval_samples",
    "max_sequence_length",
    "samples_per_epoch",
  ].includes(key)

const INTERVAL_KEYS: Readonly<Record<string, string>> = {
  run_start: "run",
  run_stop: "run",
  block_start: "block",
  block_stop: "block",
  epoch_start: "epoch",
  epoch_stop: "epoch",
  eval_start: "eval",
  eval_stop: "eval",
}

/** Interval kinds that are not part of training's record (counted, not converted). */
const SETUP_KEYS = new Set(["init_start", "init_stop", "staging_start", "staging_stop", "cache_clear"])

const atOf = (m: JsonObject): ObservedAt => {
  const at: { -readonly [K in keyof ObservedAt]: ObservedAt[K] } = {}
  const epoch = isFiniteNumber(m.epoch_num)
    ? m.epoch_num
    : isFiniteNumber(m.first_epoch_num)
      ? m.first_epoch_num
      : undefined
  if (epoch !== undefined) at.epoch = epoch
  if (isFiniteNumber(m.samples_count)) at.samples = m.samples_count
  const step = isFiniteNumber(m.step_num) ? m.step_num : isFiniteNumber(m.step) ? m.step : undefined
  if (step !== undefined) at.step = step
  return at
}

const scalarSetting = (v: unknown): string | number | boolean | undefined =>
  typeof v === "string" || typeof v === "boolean" || isFiniteNumber(v)
    ? v
    : v === null || v === undefined
      ? undefined
      : JSON.stringify(v)

export interface MlperfAnalysis {
  readonly lines: { total: number; read: number; skipped: number }
  readonly keyCounts: Record<string, number>
  readonly settings: Record<string, string | number | boolean>
  readonly seeds: ReadonlySet<string>
  readonly runStart: { line: number; timeMs: number } | undefined
  readonly runStop: { line: number; timeMs: number; status: string | undefined } | undefined
  readonly firstTimeMs: number | undefined
  readonly evalMetrics: ReadonlySet<string>
  readonly statKeys: ReadonlySet<string>
  readonly oursAt: number | undefined
  readonly nonFinite: NonFiniteTally
}

/** The values of a line written as NaN / Infinity: the key, or key.name inside an object value. */
const nonFiniteValues = (r: MllogRecord): string[] => {
  if (!r.nonFinite.includes("value")) return []
  if (!isObject(r.value)) return [r.key]
  const inner = Object.entries(r.value)
    .filter(([, v]) => v === null)
    .map(([k]) => `${r.key}.${k}`)
  return inner.length > 0 ? inner : [r.key]
}

/** eval_accuracy's results: a number (named by metadata.metric), or an object of named numbers (BBOX, SEGM). */
const evalResults = (r: MllogRecord, file: string, line: number): Array<[string, number]> | LogFileError => {
  const metric = typeof r.metadata.metric === "string" ? r.metadata.metric : r.key
  if (isFiniteNumber(r.value)) return [[metric, r.value]]
  if (isObject(r.value)) {
    const out = Object.entries(r.value).filter((kv): kv is [string, number] => isFiniteNumber(kv[1]))
    if (out.length > 0 || r.nonFinite.includes("value")) return out
  }
  // NaN / Infinity: no result, noted (the analysis counts it).
  if (r.value === null && r.nonFinite.includes("value")) return []
  return new LogFileError({
    file,
    line,
    field: "value",
    reason: `${r.key} must be a number or an object of numbers (such as {"BBOX": 0.38, "SEGM": 0.34}), got ${JSON.stringify(r.value)?.slice(0, 60)}`,
  })
}

const statValues = (r: MllogRecord): Record<string, number> => {
  if (isFiniteNumber(r.value)) return { [r.key]: r.value }
  const out: Record<string, number> = {}
  if (isObject(r.value)) for (const [k, v] of Object.entries(r.value)) if (isFiniteNumber(v)) out[k] = v
  return out
}

const mlperfAnalyzer = (file: string): Analyzer<MlperfAnalysis> => {
  const a = {
    lines: { total: 0, read: 0, skipped: 0 },
    keyCounts: {} as Record<string, number>,
    settings: {} as Record<string, string | number | boolean>,
    seeds: new Set<string>(),
    runStart: undefined as MlperfAnalysis["runStart"],
    runStop: undefined as MlperfAnalysis["runStop"],
    firstTimeMs: undefined as number | undefined,
    evalMetrics: new Set<string>(),
    statKeys: new Set<string>(),
    oursAt: undefined as number | undefined,
    nonFinite: nonFiniteTally(),
  }
  return {
    push: (l: Line) => {
      a.lines.total++
      const r = parseMllogLine(l.text, file, l.line)
      if (r === undefined) {
        a.lines.skipped++
        return undefined
      }
      if (r instanceof LogFileError) return r
      a.lines.read++
      for (const k of nonFiniteValues(r)) a.nonFinite.add(k, { line: l.line })
      if (isOurs(r)) a.oursAt ??= l.line
      a.keyCounts[r.key] = (a.keyCounts[r.key] ?? 0) + 1
      a.firstTimeMs ??= r.timeMs
      if (r.key === "run_start" && a.runStart === undefined) a.runStart = { line: l.line, timeMs: r.timeMs }
      else if (r.key === "run_stop" && a.runStop === undefined)
        a.runStop = {
          line: l.line,
          timeMs: r.timeMs,
          status: typeof r.metadata.status === "string" ? r.metadata.status : undefined,
        }
      else if (r.key === "eval_accuracy") {
        const res = evalResults(r, file, l.line)
        if (res instanceof LogFileError) return res
        for (const [m] of res) a.evalMetrics.add(m)
      } else if (isSettingKey(r.key)) {
        if (r.key === "seed") a.seeds.add(JSON.stringify(r.value))
        const v = scalarSetting(r.value)
        if (v !== undefined && !(r.key in a.settings)) a.settings[r.key] = v
      } else if (
        a.runStart !== undefined &&
        INTERVAL_KEYS[r.key] === undefined &&
        !SETUP_KEYS.has(r.key) &&
        Object.keys(statValues(r)).length > 0
      )
        a.statKeys.add(r.key)
      return undefined
    },
    finish: () => Either.right(a),
  }
}

const describeMlperf = (a: MlperfAnalysis, file: string): Either.Either<Described, LogFileError | string> => {
  if (a.oursAt !== undefined)
    return Either.left(
      `${file}: line ${a.oursAt} was written by interleave (it carries metadata.interleave): read the file as a recorded run, not an observed one`,
    )
  if (a.lines.read === 0)
    return Either.left(
      `${file}: no MLLOG lines (no line contains ":::MLLOG "); ${a.lines.total} lines skipped`,
    )
  const settings: Record<string, string | number | boolean> = { ...a.settings }
  if (a.seeds.size > 1) {
    settings.seed_lines = a.keyCounts.seed ?? 0
    settings.seed_values = a.seeds.size
  }
  const carries: string[] = []
  if (a.runStart) carries.push(`run_start (line ${a.runStart.line})`)
  if (a.runStop) carries.push(`run_stop (line ${a.runStop.line}, status ${a.runStop.status ?? "not given"})`)
  for (const [key, kind] of [
    ["block_start", "block"],
    ["epoch_start", "epoch"],
    ["eval_start", "eval"],
  ] as const) {
    const starts = a.keyCounts[key] ?? 0
    const stops = a.keyCounts[key.replace("_start", "_stop")] ?? 0
    if (starts + stops > 0) carries.push(`${kind} intervals (${starts} starts, ${stops} stops)`)
  }
  if (a.evalMetrics.size > 0)
    carries.push(
      `eval_accuracy: ${a.keyCounts.eval_accuracy ?? 0} results (${[...a.evalMetrics].join(", ")})`,
    )
  if (a.statKeys.size > 0) carries.push(`tracked statistics: ${[...a.statKeys].join(", ")}`)
  for (const k of ["seed", "global_batch_size", "submission_benchmark"]) if (k in a.settings) carries.push(k)
  const lacks = [
    "per-iteration records (MLLOG logs intervals and points, not iterations)",
    "per-step modality",
    "the lr of each parameter group",
    "optimizer update steps and gradient accumulation",
  ]
  if (!("seed" in a.settings)) lacks.push("seed")
  if (!a.runStart) lacks.push("run_start")
  const fields: Record<string, string> = {
    eval_accuracy:
      "the benchmark's quality metric, as a number (metadata.metric names it when the log does; otherwise the benchmark's target metric, unnamed); at the epoch_num / samples_count / step_num in its metadata",
    tracked_stats:
      "statistics over the block or epoch the line closes (throughput in samples/s, loss, lr, as the benchmark reports them)",
    time_ms: "wall time of the line, ms since the epoch (the writing process's clock)",
  }
  const bench = a.settings.submission_benchmark
  return Either.right({
    descriptor: {
      format: "mllog",
      source: "MLPerf MLLOG (mlcommons/logging)",
      lines: a.lines,
      iterations:
        "MLLOG has no iteration counter: points keep the log's own epoch_num (first_epoch_num for blocks), samples_count and step_num",
      window: {
        kind: "interval",
        description:
          "statistics cover the block or epoch interval they close; the log does not say how many iterations that is",
      },
      fields,
      carries,
      lacks,
      settings,
      keyCounts: a.keyCounts,
      // Every MLLOG line rides on an event when the log has one (run_start at least).
      ...(a.runStart === undefined ? {} : { mllogLines: a.lines.read }),
      ...withNonFinite(a.nonFinite.result()),
    },
    name: typeof bench === "string" ? `mlperf-${bench}` : "mlperf",
    startedAt: a.runStart?.timeMs ?? a.firstTimeMs ?? 0,
    steps: 0,
    seed: typeof a.settings.seed === "number" && Number.isSafeInteger(a.settings.seed) ? a.settings.seed : 0,
  })
}

const mlperfConverter = (a: MlperfAnalysis, file: string): Converter => {
  let started = false
  const eventsOf = (r: MllogRecord, line: number): ObservedEvent[] => {
    const at = atOf(r.metadata)
    const base = { line, timeMs: r.timeMs }
    const kind = INTERVAL_KEYS[r.key]
    if (kind !== undefined) {
      if (r.key === "run_start") started = true
      const status =
        r.key === "run_stop" && typeof r.metadata.status === "string" ? r.metadata.status : undefined
      const word = status ?? (typeof r.value === "string" ? r.value : undefined)
      return [
        {
          _tag: "ObservedInterval",
          kind,
          edge: r.key.endsWith("_start") ? "start" : "stop",
          at,
          ...(word === undefined ? {} : { value: word }),
          ...base,
        },
      ]
    }
    if (r.key === "eval_accuracy") {
      const res = evalResults(r, file, line)
      if (res instanceof LogFileError) return []
      return res.map(
        ([metric, value]): ObservedEvent => ({ _tag: "ObservedEval", metric, value, at, ...base }),
      )
    }
    if (isSettingKey(r.key) || SETUP_KEYS.has(r.key) || !started) return []
    const values = statValues(r)
    if (Object.keys(values).length === 0) return []
    return [{ _tag: "ObservedStats", key: r.key, values, at, ...base }]
  }
  // The events of the last line that gave any, held until the next such line: its MLLOG lines
  // (its own, the ones after it that gave none, and before the first event the ones before it).
  let pending: ObservedEvent[] = []
  let lines: string[] = []
  const flush = (): ObservedEvent[] => {
    // Before the first event the lines wait for it.
    if (pending.length === 0) return []
    const kept = lines
    const out = pending.map((e, i) => (i === 0 && e._tag !== "ObservedWindow" ? { ...e, mllog: kept } : e))
    pending = []
    lines = []
    return out
  }
  return {
    push: (l) => {
      const r = parseMllogLine(l.text, file, l.line)
      if (r === undefined || r instanceof LogFileError) return []
      const text = mllogJson(l.text) ?? ""
      const events = eventsOf(r, l.line)
      if (events.length === 0) {
        lines.push(text)
        return []
      }
      const out = flush()
      lines.push(text)
      pending = events
      return out
    },
    end: () => {
      const out: RunEvent[] = flush()
      const stop = a.runStop
      if (!stop) return out
      out.push(
        stop.status === "success"
          ? { _tag: "RunCompleted", steps: 0, completedAt: stop.timeMs }
          : {
              _tag: "RunAborted",
              reason: `the log's run_stop (line ${stop.line}) has status ${stop.status === undefined ? "(none)" : `"${stop.status}"`}`,
              abortedAt: stop.timeMs,
            },
      )
      return out
    },
  }
}

export const mlperfReader: ObservedReader<MlperfAnalysis> = {
  format: "mllog",
  analyzer: mlperfAnalyzer,
  describe: (a, file) => describeMlperf(a, file),
  converter: (a, file) => mlperfConverter(a, file),
}

/**
 * Log files: our JSONL (one event envelope a line) and MLPerf's `:::MLLOG {json}` line format.
 *
 * MLLOG lines follow mlcommons/logging: `time_ms`, `event_type` (INTERVAL_START, INTERVAL_END,
 * POINT_IN_TIME), `key`, `value`, `metadata`. Steps map to `step_start`/`step_stop` intervals with
 * the modality in the metadata; every line that ends an event carries the full envelope under
 * `metadata.interleave`, so our own logs round-trip losslessly.
 */
import { Data, Either } from "effect"
import type { EventEnvelope, StoredEvent } from "../store/index.ts"
import { decodeEvent, type RunEvent } from "./events.ts"

export type LogFormat = "jsonl" | "mllog"

export class LogLineError extends Data.TaggedError("LogLineError")<{
  readonly file: string
  readonly line: number
  readonly reason: string
}> {
  override get message(): string {
    return `${this.file}:${this.line}: ${this.reason}`
  }
}

/** One JSONL line: `{ type, version, position, recordedAt, data }`. */
export const toJsonlLine = (e: StoredEvent): string =>
  JSON.stringify({
    type: e.type,
    version: e.version,
    position: e.position,
    recordedAt: e.recordedAt,
    data: e.data,
  })

const MLLOG_PREFIX = ":::MLLOG "

const mllog = (
  time: number,
  eventType: string,
  key: string,
  value: unknown,
  metadata: Record<string, unknown>,
) =>
  `${MLLOG_PREFIX}${JSON.stringify({ namespace: "", time_ms: time, event_type: eventType, key, value, metadata })}`

/** The MLLOG lines for one stored event. Only the line carrying `metadata.interleave` is read back. */
export const toMllogLines = (e: StoredEvent): string[] => {
  const d = e.data as RunEvent
  const full = {
    interleave: {
      type: e.type,
      version: e.version,
      position: e.position,
      recordedAt: e.recordedAt,
      data: e.data,
    },
  }
  const t = e.recordedAt
  switch (d._tag) {
    case "RunStarted":
      return [mllog(t, "INTERVAL_START", "run_start", null, { run_id: d.runId, ...full })]
    case "PhaseStarted":
      return [mllog(t, "POINT_IN_TIME", "phase_start", d.phase, { step: d.step, ...full })]
    case "StepCompleted":
      return [
        mllog(t, "INTERVAL_START", "step_start", d.step, { modality: d.modality, phase: d.phase }),
        mllog(t, "INTERVAL_END", "step_stop", d.step, {
          modality: d.modality,
          phase: d.phase,
          loss: d.losses.total,
          ...full,
        }),
      ]
    case "StepFailed":
      return [
        mllog(t, "POINT_IN_TIME", "step_failed", d.step, { modality: d.modality, kind: d.kind, ...full }),
      ]
    case "EvalCompleted":
      return [
        mllog(t, "POINT_IN_TIME", "eval_accuracy", d.values, { step: d.step, metric: d.metric, ...full }),
      ]
    case "Checkpointed":
      return [mllog(t, "POINT_IN_TIME", "checkpoint", d.file, { step: d.step, ...full })]
    case "RunResumed":
      return [mllog(t, "POINT_IN_TIME", "run_resumed", d.fromStep, { ...full })]
    case "RunInterrupted":
      return [mllog(t, "POINT_IN_TIME", "run_interrupted", d.lastStep, { reason: d.reason, ...full })]
    case "RunCompleted":
      return [mllog(t, "INTERVAL_END", "run_stop", null, { status: "success", ...full })]
    case "RunAborted":
      return [mllog(t, "INTERVAL_END", "run_stop", null, { status: "aborted", reason: d.reason, ...full })]
    default:
      return [mllog(t, "POINT_IN_TIME", d._tag, null, { ...full })]
  }
}

export const sniffFormat = (file: string, firstLine: string): LogFormat =>
  file.endsWith(".mllog") || firstLine.startsWith(MLLOG_PREFIX) ? "mllog" : "jsonl"

export interface ParsedLine {
  readonly envelope: EventEnvelope
  readonly position: number | undefined
  readonly recordedAt: number | undefined
  readonly event: RunEvent
}

const parseJson = (text: string, file: string, line: number): Either.Either<unknown, LogLineError> => {
  try {
    return Either.right(JSON.parse(text))
  } catch (e) {
    const why = e instanceof Error ? e.message : String(e)
    return Either.left(
      new LogLineError({ file, line, reason: `not valid JSON (${why}); the line may be truncated` }),
    )
  }
}

const fromRecord = (rec: unknown, file: string, line: number): Either.Either<ParsedLine, LogLineError> => {
  if (typeof rec !== "object" || rec === null || Array.isArray(rec))
    return Either.left(
      new LogLineError({ file, line, reason: "expected a JSON object with type, version and data" }),
    )
  const r = rec as Record<string, unknown>
  if (typeof r.type !== "string" || typeof r.version !== "number" || !("data" in r))
    return Either.left(new LogLineError({ file, line, reason: "missing type, version or data" }))
  const envelope: EventEnvelope = { type: r.type, version: r.version, data: r.data }
  return Either.mapBoth(decodeEvent(envelope, `${file}:${line}`), {
    onLeft: (e) => new LogLineError({ file, line, reason: e.reason }),
    onRight: (event) => ({
      envelope,
      position: typeof r.position === "number" ? r.position : undefined,
      recordedAt: typeof r.recordedAt === "number" ? r.recordedAt : undefined,
      event,
    }),
  })
}

/**
 * Parses one line. Returns undefined for lines that carry no event (blank lines; MLLOG lines that
 * only open an interval or come from another tool's namespace without our metadata).
 */
export const parseLogLine = (
  text: string,
  format: LogFormat,
  file: string,
  line: number,
): Either.Either<ParsedLine | undefined, LogLineError> => {
  const trimmed = text.trim()
  if (trimmed === "") return Either.right(undefined)
  if (format === "jsonl")
    return Either.flatMap(parseJson(trimmed, file, line), (j) => fromRecord(j, file, line))
  if (!trimmed.startsWith(MLLOG_PREFIX.trim()))
    return Either.left(new LogLineError({ file, line, reason: `expected a line starting with ":::MLLOG"` }))
  return Either.flatMap(parseJson(trimmed.slice(MLLOG_PREFIX.trim().length), file, line), (j) => {
    const meta = (j as { metadata?: { interleave?: unknown } } | null)?.metadata
    if (!meta || meta.interleave === undefined) return Either.right(undefined)
    return fromRecord(meta.interleave, file, line)
  })
}

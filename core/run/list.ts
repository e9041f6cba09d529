/**
 * The runs in a store, as `interleave runs` lists them and the web UI shows them: each run's
 * status (a run whose writer is gone reads as interrupted), scenario, adapter and device, steps
 * and last losses, from its first event and its last few (never the whole log).
 */
import { Clock, Effect, Option, Stream } from "effect"
import type { RunEvent, RunStarted, Writer } from "../log/index.ts"
import { EventStore } from "../store/index.ts"
import { effectiveStatus } from "./liveness.ts"
import { readRunEvents } from "./read.ts"

export const RUN_STATUSES = ["running", "interrupted", "completed", "aborted", "observed"] as const

/** Events read from a run's end for its row. */
const TAIL_EVENTS = 16

export interface RunRow {
  readonly runId: string
  readonly status: string
  /** Steps recorded: the last recorded step + 1. */
  readonly stepsDone: number
  /** Planned steps. */
  readonly steps: number
  readonly adapter: string
  /** The device the adapter ran on, as it described it (`device`, `backend` or `hardware`), if it said. */
  readonly device: string | null
  readonly scenario: string
  readonly source: string
  readonly events: number
  readonly startedAt: string
  readonly lastRecordedAt: string
  readonly writer: Writer | null
  /** Total loss of the last step of each modality among the run's last events (null: none there). */
  readonly lastLoss: { readonly visual: number | null; readonly text: number | null }
  readonly forkOf: { readonly runId: string; readonly atStep: number } | null
  readonly resume?: string
}

/** What the list shows of a run, from its first event and its last few. */
const summarize = (head: RunEvent | undefined, tail: ReadonlyArray<RunEvent>) => {
  const started = head?._tag === "RunStarted" ? (head as RunStarted) : undefined
  // An observed run (imported from a foreign log) has no writer: it ended as far as its log goes.
  let status: string = started?.observed ? "observed" : "running"
  let lastStep = -1
  let writer: Writer | undefined = started?.writer
  const lastLoss: { visual: number | null; text: number | null } = { visual: null, text: null }
  for (const e of tail) {
    if (e._tag === "RunCompleted") status = "completed"
    else if (e._tag === "RunAborted") status = "aborted"
    else if (e._tag === "RunInterrupted") {
      status = "interrupted"
      lastStep = Math.max(lastStep, e.lastStep)
    } else if (e._tag === "RunResumed") {
      status = "running"
      writer = e.writer
      lastStep = Math.max(lastStep, e.fromStep - 1)
    } else if (e._tag === "StepCompleted") {
      lastStep = e.step
      if (e.losses.total !== undefined) lastLoss[e.modality] = e.losses.total
    }
  }
  return { started, status, lastStep, writer, lastLoss }
}

/** The device a run's adapter described: what it reported (`info.device`), else what it was given. */
export const deviceOf = (started: RunStarted | undefined): string | null => {
  if (!started) return null
  const info = started.adapter.info
  const options = started.adapter.options
  for (const v of [info.device, options.device, options.backend, info.backend, options.hardware])
    if (typeof v === "string" && v !== "") return v
  return null
}

/** Every run in the store, in creation order. */
export const listRuns = Effect.gen(function* () {
  const es = yield* EventStore
  const infos = yield* es.streams()
  const now = yield* Clock.currentTimeMillis
  const rows: RunRow[] = []
  for (const info of infos) {
    const head = Option.getOrUndefined(
      yield* readRunEvents(info.stream, { from: 0, to: 1 }).pipe(Stream.runHead),
    )
    const tail = yield* readRunEvents(info.stream, { from: Math.max(1, info.version - TAIL_EVENTS) }).pipe(
      Stream.runCollect,
    )
    const s = summarize(head, Array.from(tail))
    const status = effectiveStatus(s.status, s.writer, info.heartbeatAt, now)
    const st = s.started
    const scenario = (st?.spec as { name?: unknown } | undefined)?.name
    rows.push({
      runId: info.stream,
      status,
      stepsDone: s.lastStep + 1,
      steps: st?.steps ?? 0,
      adapter: st?.adapter.kind ?? "?",
      device: deviceOf(st),
      scenario: typeof scenario === "string" ? scenario : "?",
      source: st?.source ?? "?",
      events: info.version,
      startedAt: new Date(info.firstRecordedAt).toISOString(),
      lastRecordedAt: new Date(info.lastRecordedAt).toISOString(),
      writer: s.writer ?? null,
      lastLoss: s.lastLoss,
      forkOf: st?.forkOf ?? null,
      ...(status === "interrupted" ? { resume: `interleave resume ${info.stream}` } : {}),
    })
  }
  return rows as ReadonlyArray<RunRow>
})

export interface RunFilter {
  readonly status?: string | undefined
  readonly adapter?: string | undefined
  /** Text in the scenario name or the source. */
  readonly scenario?: string | undefined
}

/** The rows `runs --status/--adapter/--scenario` keep. */
export const filterRuns = (rows: ReadonlyArray<RunRow>, f: RunFilter): ReadonlyArray<RunRow> =>
  rows.filter(
    (r) =>
      (f.status === undefined || r.status === f.status) &&
      (f.adapter === undefined || r.adapter === f.adapter) &&
      (f.scenario === undefined || r.scenario.includes(f.scenario) || r.source.includes(f.scenario)),
  )

/** `interleave runs`: the runs in the store, with filters. */
import { existsSync } from "node:fs"
import { Clock, Effect, Option, Stream } from "effect"
import type { RunEvent, RunStarted, Writer } from "../../core/log/index.ts"
import { effectiveStatus, readRunEvents } from "../../core/run/index.ts"
import { EventStore } from "../../core/store/index.ts"
import { defineCommand } from "../command.ts"
import { flag } from "../flags.ts"
import { jsonFlag, storeFlag } from "../options.ts"
import { json, line, table } from "../output.ts"
import { isPostgresStore, storeName, withStore } from "../store.ts"

const STATUSES = ["running", "interrupted", "completed", "aborted", "observed"] as const

/** What the list shows of a run, from its first event and its last few (never the whole log). */
const summarize = (head: RunEvent | undefined, tail: ReadonlyArray<RunEvent>) => {
  const started = head?._tag === "RunStarted" ? (head as RunStarted) : undefined
  // An observed run (imported from a foreign log) has no writer: it ended as far as its log goes.
  let status: string = started?.observed ? "observed" : "running"
  let lastStep = -1
  let writer: Writer | undefined = started?.writer
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
    } else if (e._tag === "StepCompleted") lastStep = e.step
  }
  return { started, status, lastStep, writer }
}

export const runsCommand = defineCommand({
  name: "runs",
  summary: "List the runs in the store (a run whose writer is gone shows as interrupted).",
  args: {},
  flags: {
    status: flag.choice("status", STATUSES, "Only runs with this status."),
    scenario: flag.text("scenario", "Only runs whose scenario name or source contains this text.", {
      value: "TEXT",
    }),
    adapter: flag.text("adapter", "Only runs of this adapter kind (sim, tfjs, pytorch, exec, ...).", {
      value: "KIND",
    }),
    store: storeFlag,
    json: jsonFlag,
  },
  examples: ["interleave runs --status interrupted"],
  run: (o) =>
    Effect.gen(function* () {
      const es = yield* EventStore
      const infos = yield* es.streams()
      const now = yield* Clock.currentTimeMillis
      const rows = []
      for (const info of infos) {
        const head = Option.getOrUndefined(
          yield* readRunEvents(info.stream, { from: 0, to: 1 }).pipe(Stream.runHead),
        )
        const tail = yield* readRunEvents(info.stream, { from: Math.max(1, info.version - 16) }).pipe(
          Stream.runCollect,
        )
        const s = summarize(head, Array.from(tail))
        const heartbeatAt = (info as { heartbeatAt?: number }).heartbeatAt
        const status = effectiveStatus(s.status, s.writer, heartbeatAt, now)
        const st = s.started
        const scenario = (st?.spec as { name?: unknown } | undefined)?.name
        rows.push({
          runId: info.stream,
          status,
          stepsDone: s.lastStep + 1,
          steps: st?.steps ?? 0,
          adapter: st?.adapter.kind ?? "?",
          scenario: typeof scenario === "string" ? scenario : "?",
          source: st?.source ?? "?",
          events: info.version,
          startedAt: new Date(info.firstRecordedAt).toISOString(),
          lastRecordedAt: new Date(info.lastRecordedAt).toISOString(),
          writer: s.writer ?? null,
          ...(status === "interrupted" ? { resume: `interleave resume ${info.stream}` } : {}),
        })
      }
      const picked = rows.filter(
        (r) =>
          (Option.isNone(o.status) || r.status === o.status.value) &&
          (Option.isNone(o.adapter) || r.adapter === o.adapter.value) &&
          (Option.isNone(o.scenario) ||
            r.scenario.includes(o.scenario.value) ||
            r.source.includes(o.scenario.value)),
      )
      if (o.json) return yield* json(picked)
      if (picked.length === 0)
        return yield* line(
          rows.length === 0
            ? isPostgresStore(o.store) || existsSync(o.store)
              ? `no runs in ${storeName(o.store)}`
              : `no runs (no store at ${o.store})`
            : `no runs match (${rows.length} in ${storeName(o.store)})`,
        )
      yield* line(
        table(
          ["run", "status", "steps", "adapter", "events", "started", "source"],
          picked.map((r) => [
            r.runId,
            r.status,
            `${r.stepsDone}/${r.steps}`,
            r.adapter,
            r.events,
            r.startedAt,
            r.source,
          ]),
        ),
      )
      const interrupted = picked.filter((r) => r.status === "interrupted")
      if (interrupted.length > 0)
        yield* line(
          `\n${interrupted.length} interrupted: resume with \`interleave resume ${interrupted[0]!.runId}\`${interrupted.length > 1 ? " (and so on)" : ""}`,
        )
    }).pipe((eff) => withStore(o.store, eff, { readOnly: true })),
})

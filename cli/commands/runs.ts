/** `interleave runs`: the runs in the store. */
import { existsSync } from "node:fs"
import { Effect, Option, Stream } from "effect"
import { readRunEvents } from "../../core/run/index.ts"
import { EventStore } from "../../core/store/index.ts"
import { defineCommand } from "../command.ts"
import { jsonFlag, storeFlag } from "../options.ts"
import { json, line, table } from "../output.ts"
import { withStore } from "../store.ts"

export const runsCommand = defineCommand({
  name: "runs",
  summary: "List the runs in the store.",
  args: {},
  flags: { store: storeFlag, json: jsonFlag },
  examples: ["interleave runs --json"],
  run: (o) =>
    Effect.gen(function* () {
      const es = yield* EventStore
      const infos = yield* es.streams()
      const rows = []
      for (const info of infos) {
        const head = yield* readRunEvents(info.stream, { from: 0, to: 1 }).pipe(Stream.runHead)
        const tail = yield* readRunEvents(info.stream, { from: Math.max(0, info.version - 8) }).pipe(
          Stream.runCollect,
        )
        const started = Option.getOrUndefined(head)
        let status = "running"
        let lastStep = -1
        for (const e of tail) {
          if (e._tag === "RunCompleted") status = "completed"
          if (e._tag === "RunAborted") status = "aborted"
          if (e._tag === "StepCompleted") lastStep = e.step
        }
        const st = started?._tag === "RunStarted" ? started : undefined
        rows.push({
          runId: info.stream,
          status,
          stepsDone: lastStep + 1,
          steps: st?.steps ?? 0,
          adapter: st?.adapter.kind ?? "?",
          source: st?.source ?? "?",
          events: info.version,
          startedAt: new Date(info.firstRecordedAt).toISOString(),
        })
      }
      if (o.json) return yield* json(rows)
      if (rows.length === 0)
        return yield* line(existsSync(o.store) ? `no runs in ${o.store}` : `no runs (no store at ${o.store})`)
      yield* line(
        table(
          ["run", "status", "steps", "adapter", "events", "started", "source"],
          rows.map((r) => [
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
    }).pipe((eff) => withStore(o.store, eff, { readOnly: true })),
})

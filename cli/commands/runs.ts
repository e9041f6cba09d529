/** `interleave runs`: the runs in the store, with filters. */
import { existsSync } from "node:fs"
import { Effect, Option } from "effect"
import { filterRuns, listRuns, RUN_STATUSES } from "../../core/run/index.ts"
import { defineCommand } from "../command.ts"
import { flag } from "../flags.ts"
import { jsonFlag, storeFlag } from "../options.ts"
import { json, line, table } from "../output.ts"
import { isPostgresStore, storeName, withStore } from "../store.ts"

export const runsCommand = defineCommand({
  name: "runs",
  summary: "List the runs in the store (a run whose writer is gone shows as interrupted).",
  args: {},
  flags: {
    status: flag.choice("status", RUN_STATUSES, "Only runs with this status."),
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
      const rows = yield* listRuns
      const picked = filterRuns(rows, {
        status: Option.getOrUndefined(o.status),
        adapter: Option.getOrUndefined(o.adapter),
        scenario: Option.getOrUndefined(o.scenario),
      })
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

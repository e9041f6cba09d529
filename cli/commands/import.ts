/** `interleave import`: a run from a log file, checked fully before anything is written. */
import { Effect, Option } from "effect"
import { openLog } from "../../core/log/index.ts"
import { checkLog, checkObservedLog, importRunId, writeLog } from "../../core/run/index.ts"
import { defineCommand } from "../command.ts"
import { badInput } from "../failure.ts"
import { arg, flag } from "../flags.ts"
import { jsonFlag, logFormatFlag, segmentFlag, storeFlag, windowFlag } from "../options.ts"
import { json, line } from "../output.ts"
import { withStore } from "../store.ts"

export const importCommand = defineCommand({
  name: "import",
  summary:
    "Add a run from a log file to the store: ours (JSONL, MLLOG), or an MLPerf, mmengine or detectron2 log as an observed run (checked fully before anything is written).",
  args: {
    file: arg.required(
      "file",
      "a log file: .jsonl / .mllog of ours, an MLPerf result log, mmengine scalars.json / log.json, detectron2 metrics.json",
    ),
  },
  flags: {
    format: logFormatFlag,
    segment: segmentFlag,
    window: windowFlag,
    runId: flag.text("run-id", "Store the run under this id instead of the one in the log.", { value: "ID" }),
    store: storeFlag,
    json: jsonFlag,
  },
  examples: [
    "interleave import run.jsonl --run-id my-run",
    "interleave import work_dirs/petdino/20240101_120000/vis_data/scalars.json",
  ],
  run: (o) =>
    Effect.gen(function* () {
      // Checked whole before the store is even opened: a bad log never touches it.
      const window = Option.getOrUndefined(o.window)
      if (window !== undefined && window < 1)
        return yield* badInput(`--window: expected iterations >= 1, got ${window}`)
      const file = yield* openLog(o.file, {
        format: o.format,
        segment: Option.getOrUndefined(o.segment),
        window,
      })
      if (file.kind === "observed") {
        const checked = yield* checkObservedLog(o.file, file)
        yield* importRunId(checked, Option.getOrUndefined(o.runId))
        const w = yield* withStore(o.store, writeLog(checked, { runId: Option.getOrUndefined(o.runId) }))
        if (o.json) return yield* json({ ...w, format: file.format })
        return yield* line(
          `imported ${w.events} events from ${o.file} as observed run ${w.runId} (${file.started.observed?.source}); \`interleave show ${w.runId}\` shows what it carries`,
        )
      }
      const log = yield* checkLog(o.file, file)
      // The id is checked before the store is opened too: a refused import never touches it.
      yield* importRunId(log, Option.getOrUndefined(o.runId))
      const r = yield* withStore(o.store, writeLog(log, { runId: Option.getOrUndefined(o.runId) }))
      if (o.json) return yield* json(r)
      yield* line(`imported ${r.events} events from ${o.file} as run ${r.runId}`)
    }),
})

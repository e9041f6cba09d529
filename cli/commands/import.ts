/** `interleave import`: a run from a log file, checked fully before anything is written. */
import { Effect, Option } from "effect"
import { checkLog, writeLog } from "../../core/run/index.ts"
import { defineCommand } from "../command.ts"
import { arg, flag } from "../flags.ts"
import { jsonFlag, storeFlag } from "../options.ts"
import { json, line } from "../output.ts"
import { withStore } from "../store.ts"
import { LOG_FORMATS } from "./export.ts"

export const importCommand = defineCommand({
  name: "import",
  summary:
    "Add a run from a JSONL or MLLOG log file to the store (checked fully before anything is written).",
  args: { file: arg.required("file", "a log file (.jsonl or .mllog)") },
  flags: {
    format: flag.choice("format", LOG_FORMATS, "Log format.", { default: "guessed from the file" }),
    runId: flag.text("run-id", "Store the run under this id instead of the one in the log.", { value: "ID" }),
    store: storeFlag,
    json: jsonFlag,
  },
  examples: ["interleave import run.jsonl --run-id my-run"],
  run: (o) =>
    Effect.gen(function* () {
      // Checked whole before the store is even opened: a bad log never touches it.
      const log = yield* checkLog(o.file, { format: Option.getOrUndefined(o.format) })
      const r = yield* withStore(o.store, writeLog(log, { runId: Option.getOrUndefined(o.runId) }))
      if (o.json) return yield* json(r)
      yield* line(`imported ${r.events} events from ${o.file} as run ${r.runId}`)
    }),
})

/** `interleave export`: a run's event log as JSONL or MLPerf MLLOG lines. */
import { Console, Effect, Option } from "effect"
import { exportLog, streamWriter } from "../../core/run/index.ts"
import { defineCommand } from "../command.ts"
import { flag, flagWithDefault } from "../flags.ts"
import { runArg, storeFlag } from "../options.ts"
import { note } from "../output.ts"
import { storeFiles, withStore } from "../store.ts"

export const LOG_FORMATS = ["jsonl", "mllog"] as const

export const exportCommand = defineCommand({
  name: "export",
  summary: "Write a run's event log as JSONL or MLPerf MLLOG lines.",
  args: { run: runArg },
  flags: {
    format: flagWithDefault.choice("format", LOG_FORMATS, "Log format.", "jsonl"),
    out: flag.text("out", "Output file (never the store itself; written whole or not at all).", {
      value: "FILE",
      default: "stdout",
    }),
    force: flag.boolean("force", "Overwrite an existing --out file."),
    store: storeFlag,
  },
  examples: ["interleave export RUN --format mllog --out run.mllog"],
  run: (o) =>
    Effect.gen(function* () {
      const out = Option.getOrUndefined(o.out)
      if (out === undefined) {
        // To stdout through the console, a batch of lines at a time (Linux writes pipes synchronously).
        const toConsole = (text: string) => Console.log(text.endsWith("\n") ? text.slice(0, -1) : text)
        return yield* withStore(o.store, exportLog(o.run, o.format, toConsole), { readOnly: true })
      }
      // Checked before the store is opened: `--out` may never be the store or its -wal/-shm.
      const w = yield* streamWriter(out, {
        label: "--out",
        force: o.force,
        protect: storeFiles(o.store).map((file) => ({ file, what: `the event store (${o.store})` })),
      })
      yield* withStore(o.store, exportLog(o.run, o.format, w.write), { readOnly: true })
      yield* w.close
      yield* note(`exported ${o.run} to ${out} (${o.format})`)
    }).pipe(Effect.scoped),
})

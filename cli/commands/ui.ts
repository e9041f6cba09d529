/** `interleave ui`: a local web app over the store (read-only); runs until Ctrl-C or SIGTERM. */
import { existsSync, statSync } from "node:fs"
import { join } from "node:path"
import { Effect, Option } from "effect"
import { startUi } from "../../core/ui/index.ts"
import { defineCommand } from "../command.ts"
import { badInput } from "../failure.ts"
import { flag, flagWithDefault } from "../flags.ts"
import { storeFlag } from "../options.ts"
import { line } from "../output.ts"
import { storeName, withStore } from "../store.ts"

export const DEFAULT_UI_PORT = 8484

export const uiCommand = defineCommand({
  name: "ui",
  summary: "A local web UI over the store: runs, a live page per run, runs compared (Ctrl-C stops it).",
  details: [
    "Serves pages on this machine only (127.0.0.1) unless --host names another interface. It reads the store and never writes it: the runs list (what `runs --json` prints), a page per run (loss per term and modality, lr of every group, step time, memory, the V/T schedule with phases, checkpoints, evaluations, failures and `verify`'s violations on one step axis) that follows a running run within a second, and /compare?runs=A,B to overlay runs.",
  ],
  args: {},
  flags: {
    store: storeFlag,
    port: flagWithDefault.integer(
      "port",
      "Port to listen on; 0 picks a free one (the URL printed says which).",
      DEFAULT_UI_PORT,
    ),
    host: flagWithDefault.text(
      "host",
      "Interface to listen on (0.0.0.0: every interface, other machines too).",
      "127.0.0.1",
    ),
    results: flag.text(
      "results",
      "A sweep's results (its --out folder, or its results.json) to show at /sweep.",
      { value: "DIR" },
    ),
  },
  examples: [
    "interleave ui",
    "interleave ui --store postgres://me@db:5432/runs --port 0",
    "interleave ui --results out/sweep",
  ],
  run: (o) =>
    Effect.gen(function* () {
      if (o.port < 0 || o.port > 65535) return yield* badInput(`--port: must be 0..65535, got ${o.port}`)
      const results: string[] = []
      if (Option.isSome(o.results)) {
        const given = o.results.value
        const file = existsSync(given) && statSync(given).isDirectory() ? join(given, "results.json") : given
        if (!existsSync(file)) return yield* badInput(`--results ${given}: no results.json there`)
        results.push(file)
      }
      const server = yield* startUi({ host: o.host, port: o.port, storeName: storeName(o.store), results })
      yield* line(`interleave ui: ${server.url} (store ${storeName(o.store)}, read-only; Ctrl-C stops it)`)
      return yield* Effect.never
    }).pipe(Effect.scoped, (eff) => withStore(o.store, eff, { readOnly: true })),
})

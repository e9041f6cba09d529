/** `interleave backends`: the TensorFlow.js backends this machine can train on. */
import { Effect } from "effect"
import { defineCommand } from "../command.ts"
import { jsonFlag } from "../options.ts"
import { json, line, table } from "../output.ts"

export const backendsCommand = defineCommand({
  name: "backends",
  summary: "List the TensorFlow.js backends this machine can train on, with device names.",
  args: {},
  flags: { json: jsonFlag },
  examples: ["interleave backends"],
  run: (o) =>
    Effect.gen(function* () {
      const { listBackends } = yield* Effect.promise(() => import("../../adapters/tfjs/index.ts"))
      const list = yield* Effect.promise(() => listBackends())
      if (o.json) return yield* json(list)
      yield* line(
        table(
          ["backend", "available", "device / reason"],
          list.map((b) => [b.name, b.available ? "yes" : "no", (b.available ? b.device : b.reason) ?? ""]),
        ),
      )
    }),
})

/** `interleave delete`: removes a run from the store, with its checkpoints. */
import { rmSync } from "node:fs"
import { join } from "node:path"
import { Clock, Effect } from "effect"
import { effectiveStatus, summarizeLog } from "../../core/run/index.ts"
import { EventStore } from "../../core/store/index.ts"
import { defineCommand } from "../command.ts"
import { badInput } from "../failure.ts"
import { flag } from "../flags.ts"
import { jsonFlag, runArg, storeFlag } from "../options.ts"
import { json, line } from "../output.ts"
import { checkpointDirOf, withStore } from "../store.ts"

export const deleteCommand = defineCommand({
  name: "delete",
  summary: "Remove a run from the store, with its checkpoints (<store>.checkpoints/<run>/).",
  details: [
    "A run that is still being written (its process alive, or its heartbeat fresh) is refused unless --force.",
  ],
  args: { run: runArg },
  flags: {
    force: flag.boolean("force", "Delete even a run that looks alive."),
    store: storeFlag,
    json: jsonFlag,
  },
  examples: ["interleave runs --status interrupted --json   # then: interleave delete RUN"],
  run: (o) =>
    Effect.gen(function* () {
      const log = yield* summarizeLog(o.run)
      const store = yield* EventStore
      const info = (yield* store.streams()).find((x) => x.stream === o.run)
      const status = effectiveStatus(
        log.state.status,
        log.state.writer,
        info?.heartbeatAt,
        yield* Clock.currentTimeMillis,
      )
      if (status === "running" && !o.force)
        return yield* badInput(
          `run "${o.run}" is still being written${log.state.writer ? ` by process ${log.state.writer.pid} on ${log.state.writer.host}` : ""}; stop it first, or pass --force`,
        )
      const events = yield* store.deleteStream(o.run)
      const checkpoints = join(checkpointDirOf(o.store), o.run)
      rmSync(checkpoints, { recursive: true, force: true })
      if (o.json) return yield* json({ runId: o.run, events, checkpoints })
      yield* line(`deleted run ${o.run} (${events} events) and its checkpoints (${checkpoints})`)
    }).pipe((eff) => withStore(o.store, eff)),
})

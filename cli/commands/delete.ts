/** `interleave delete`: removes a run from the store, with its checkpoints. */
import { lstatSync, realpathSync, rmSync } from "node:fs"
import { join, relative, resolve } from "node:path"
import { Clock, Effect } from "effect"
import { effectiveStatus, runIdProblem, summarizeLog } from "../../core/run/index.ts"
import { EventStore } from "../../core/store/index.ts"
import { defineCommand } from "../command.ts"
import { badInput } from "../failure.ts"
import { flag } from "../flags.ts"
import { jsonFlag, runArg, storeFlag } from "../options.ts"
import { json, line } from "../output.ts"
import { checkpointDirOf, withStore } from "../store.ts"

/**
 * The checkpoint folder of run `runId` under `root` (the store's checkpoint folder), when there is
 * one to remove; a string when removing it would reach outside `root`. Only a valid run id names
 * a folder (a run stored under another, by an older version, has none: nothing is removed for
 * it), and the folder's real path, symbolic links resolved, must lie inside the real `root`: a
 * link pointing out is refused, not followed.
 */
export const checkpointsOf = (
  root: string,
  runId: string,
): { readonly path: string | undefined } | { readonly refused: string } => {
  if (runIdProblem(runId) !== undefined) return { path: undefined }
  const path = join(root, runId)
  try {
    lstatSync(path)
  } catch {
    return { path: undefined }
  }
  let real: string
  let realRoot: string
  try {
    realRoot = realpathSync(root)
    real = realpathSync(path)
  } catch {
    // A dangling link: removing it removes the link alone, nothing it points at.
    return { path: resolve(path) }
  }
  const rel = relative(realRoot, real)
  if (rel === "" || rel.startsWith("..") || resolve(realRoot, rel) !== real)
    return {
      refused: `${path} leads to ${real}, outside the store's checkpoint folder ${realRoot}; nothing was deleted (remove that link yourself, then delete the run)`,
    }
  return { path: resolve(path) }
}

export const deleteCommand = defineCommand({
  name: "delete",
  summary: "Remove a run from the store, with its checkpoints (<store>.checkpoints/<run>/).",
  details: [
    "A run that is still being written (its process alive, or its heartbeat fresh) is refused unless --force.",
    "Only the run's own folder inside the store's checkpoint folder is removed, real paths compared: a run folder that links outside is refused (exit 2) and nothing is deleted.",
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
      // Looked at before anything is deleted: a refusal deletes nothing.
      const found = checkpointsOf(checkpointDirOf(o.store), o.run)
      if ("refused" in found) return yield* badInput(`delete ${o.run}: ${found.refused}`)
      const events = yield* store.deleteStream(o.run)
      const checkpoints = found.path
      if (checkpoints !== undefined) rmSync(checkpoints, { recursive: true, force: true })
      if (o.json) return yield* json({ runId: o.run, events, checkpoints: checkpoints ?? null })
      yield* line(
        `deleted run ${o.run} (${events} events)${checkpoints === undefined ? "; it had no checkpoints" : ` and its checkpoints (${checkpoints})`}`,
      )
    }).pipe((eff) => withStore(o.store, eff)),
})

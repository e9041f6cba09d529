/** `interleave store copy`: runs from one event store to another (SQLite and PostgreSQL, any direction). */
import { existsSync } from "node:fs"
import { resolve } from "node:path"
import { Context, Effect, Layer, Option } from "effect"
import { quoteRunId, runIdProblem } from "../../core/run/index.ts"
import { copyStreams, EventStore } from "../../core/store/index.ts"
import { commandGroup, defineCommand } from "../command.ts"
import { badInput, failedCheck } from "../failure.ts"
import { flag } from "../flags.ts"
import { jsonFlag } from "../options.ts"
import { json, line, note, table } from "../output.ts"
import { storeLayer, storeLocation } from "../store.ts"

const storeArg = (name: string, description: string) =>
  flag.text(name, description, { value: "FILE|URL", default: "required" })

/** The store a value names, opened in the current scope. */
const open = (value: string, readOnly = false) =>
  Effect.map(Layer.build(storeLayer(value, { readOnly })), (ctx) => Context.get(ctx, EventStore))

const copyCommand = defineCommand({
  name: "copy",
  summary:
    "Copy runs from one event store to another (a SQLite file or a postgres:// URL, either way), checked event for event afterwards.",
  details: [
    "A run already at the destination is never overwritten: identical there (same events: type, version, data, positions), it is skipped with a note; a strict prefix there (an earlier copy of a run that has gone on), the rest is appended; anything else is a conflict, and then nothing is copied. After copying, every run is read back from both stores and compared event for event. Recording times are the copy's own; checkpoint files stay where they are.",
    "Exits 1 on a conflict or a difference found by the check, 2 when a store cannot be opened or a run is not at the source.",
  ],
  args: {},
  flags: {
    from: storeArg("from", "The store to copy from."),
    to: storeArg("to", "The store to copy into (created if missing)."),
    run: flag.text("run", "Copy only this run.", { value: "RUN", default: "every run" }),
    json: jsonFlag,
  },
  examples: [
    "interleave store copy --from .interleave/runs.db --to postgres://bench@db:5432/interleave",
    "interleave store copy --from postgres://bench@db:5432/interleave --to copy.db --run bench-x-a1",
  ],
  run: (o) =>
    Effect.gen(function* () {
      if (Option.isNone(o.from)) return yield* badInput("store copy: --from FILE|URL is required")
      if (Option.isNone(o.to)) return yield* badInput("store copy: --to FILE|URL is required")
      const fromValue = o.from.value
      const toValue = o.to.value
      const from = storeLocation(fromValue)
      const to = storeLocation(toValue)
      if (from.kind === "sqlite" && !existsSync(from.file))
        return yield* badInput(`store copy: --from ${from.file}: no such store`)
      const same =
        from.kind === "sqlite" && to.kind === "sqlite"
          ? resolve(from.file) === resolve(to.file)
          : from.kind === "postgres" &&
            to.kind === "postgres" &&
            from.url === to.url &&
            from.schema === to.schema
      if (same) return yield* badInput("store copy: --from and --to name the same store")
      const copied = yield* Effect.scoped(
        Effect.gen(function* () {
          const source = yield* open(fromValue, true)
          // Run ids name checkpoint folders and report files wherever they land: one that could
          // not be made here (a store written by an older version) is not carried on.
          const names = Option.isSome(o.run) ? [o.run.value] : (yield* source.streams()).map((s) => s.stream)
          const bad = names.flatMap((n) => {
            const why = runIdProblem(n)
            return why === undefined ? [] : [`${quoteRunId(n)} ${why}`]
          })
          if (bad.length > 0)
            return yield* badInput(
              `store copy: ${Option.isSome(o.run) ? "--run" : `--from ${fromValue}`}: run id ${bad.slice(0, 3).join("; ")}${bad.length > 3 ? `; and ${bad.length - 3} more` : ""}; nothing copied${Option.isSome(o.run) ? "" : " (delete it at the source, or copy the others one by one with --run RUN)"}`,
            )
          const destination = yield* open(toValue)
          return yield* copyStreams(source, destination, {
            streams: Option.isSome(o.run) ? [o.run.value] : undefined,
            onStream: (d) =>
              o.json
                ? Effect.void
                : note(
                    d.action === "skip"
                      ? `store copy: ${d.stream}: already at the destination, identical (${d.events} events): skipped`
                      : `store copy: ${d.stream}: ${d.action === "append" ? `appended ${d.written} events to the ${d.events - d.written} already there` : `copied ${d.written} events`}, verified`,
                  ),
          })
        }),
      ).pipe(
        Effect.catchTags({
          CopyRefused: (e) => Effect.fail(failedCheck(e.message)),
          CopyMismatch: (e) => Effect.fail(failedCheck(e.message)),
          VersionConflict: (e) =>
            Effect.fail(
              failedCheck(
                `store copy: someone else is writing ${e.stream} at the destination (${e.message})`,
              ),
            ),
        }),
      )
      const written = copied.filter((c) => c.action !== "skip")
      const skipped = copied.filter((c) => c.action === "skip")
      const events = written.reduce((n, c) => n + c.written, 0)
      if (o.json) return yield* json({ from: from.shown, to: to.shown, runs: copied })
      if (copied.length > 0)
        yield* line(
          table(
            ["run", "action", "events", "written", "verified"],
            copied.map((c) => [c.stream, c.action, c.events, c.written, c.verified]),
          ),
        )
      yield* line(
        `copied ${written.length} run${written.length === 1 ? "" : "s"} (${events} events) from ${from.shown} to ${to.shown}` +
          `${skipped.length > 0 ? `, skipped ${skipped.length} identical` : ""}; every run verified event for event (type, version, data, positions)`,
      )
    }),
})

export const storeCommand = commandGroup(
  "store",
  "Work on event stores as a whole: copy runs between them.",
  [copyCommand],
  ["interleave store copy --from .interleave/runs.db --to postgres://bench@db:5432/interleave"],
)

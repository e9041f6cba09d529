/** Log interchange (`export`, `import`) and `backends`. */
import { createWriteStream } from "node:fs"
import { Args, Command, Options } from "@effect/cli"
import { Effect, Option, Stream } from "effect"
import { type RunEvent, toEnvelope } from "../core/log/events.ts"
import { type LogFormat, toJsonlLine, toMllogLines } from "../core/log/formats.ts"
import { makeLogChecker } from "../core/log/log-invariants.ts"
import { summarizeLog } from "../core/run/engine.ts"
import { EventStore } from "../core/store/event-store.ts"
import { benchCommand } from "./bench-command.ts"
import { badInput } from "./failure.ts"
import { printJson, println, table } from "./output.ts"
import { fileEvents, stepOfEvent, storeOption, withStore } from "./run-commands.ts"
import { jsonOption } from "./schedule-commands.ts"

const formatOption = Options.choice("format", ["jsonl", "mllog"]).pipe(Options.withDescription("log format"))

const exportCommand = Command.make(
  "export",
  {
    run: Args.text({ name: "run" }),
    format: formatOption.pipe(Options.withDefault("jsonl" as const)),
    out: Options.text("out").pipe(Options.optional, Options.withDescription("output file (default stdout)")),
    store: storeOption,
  },
  ({ run, format, out, store }) =>
    Effect.gen(function* () {
      yield* summarizeLog(run)
      const es = yield* EventStore
      const sink = Option.isSome(out) ? createWriteStream(out.value) : process.stdout
      const write = (text: string) =>
        Effect.async<void>((resume) => {
          if (sink.write(text)) resume(Effect.void)
          else {
            sink.once("drain", () => resume(Effect.void))
          }
        })
      yield* es.read(run).pipe(
        Stream.grouped(1024),
        Stream.runForEach((chunk) => {
          let text = ""
          for (const e of chunk)
            text += format === "jsonl" ? `${toJsonlLine(e)}\n` : `${toMllogLines(e).join("\n")}\n`
          return write(text)
        }),
      )
      if (Option.isSome(out)) {
        const file = sink as ReturnType<typeof createWriteStream>
        yield* Effect.async<void>((resume) => {
          file.end(() => resume(Effect.void))
        })
        process.stderr.write(`exported ${run} to ${out.value} (${format})\n`)
      }
    }).pipe((eff) => withStore(store, eff)),
).pipe(Command.withDescription("Write a run's event log as JSONL or MLPerf MLLOG lines."))

const importCommand = Command.make(
  "import",
  {
    file: Args.text({ name: "file" }),
    format: formatOption.pipe(Options.optional),
    runId: Options.text("run-id").pipe(
      Options.optional,
      Options.withDescription("store under this id instead"),
    ),
    store: storeOption,
    json: jsonOption,
  },
  ({ file, format, runId, store, json }) =>
    Effect.gen(function* () {
      const fmt: LogFormat | undefined = Option.getOrUndefined(format)
      // Pass 1: decode and check every line before writing anything, so a bad file changes nothing.
      const log = makeLogChecker()
      let started: Extract<RunEvent, { _tag: "RunStarted" }> | undefined
      let count = 0
      yield* fileEvents(file, fmt).pipe(
        Stream.runForEach((l) =>
          Effect.sync(() => {
            const e = l.event
            log.push({ position: l.position ?? count, type: e._tag, step: stepOfEvent(e) })
            count++
            if (e._tag === "RunStarted" && !started) started = e
          }),
        ),
      )
      const problems = log.finish().violations
      if (count === 0) return yield* badInput(`${file}: no events`)
      if (!started || problems.length > 0)
        return yield* badInput(
          `${file}: not a valid run log: ${problems[0]?.message ?? "no RunStarted event"}`,
        )
      const id = Option.getOrElse(runId, () => started!.runId)
      const es = yield* EventStore
      if ((yield* es.version(id)) > 0)
        return yield* badInput(`run "${id}" already exists in ${store}; import with --run-id NEW_ID`)
      // Pass 2: append in batches (the first batch creates the stream at version 0).
      let version = 0
      yield* fileEvents(file, fmt).pipe(
        Stream.map((l) => {
          const e = l.event
          return e._tag === "RunStarted" ? toEnvelope({ ...e, runId: id }) : l.envelope
        }),
        Stream.grouped(4096),
        Stream.runForEach((chunk) =>
          Effect.map(es.append(id, Array.from(chunk), version), (v) => {
            version = v
          }),
        ),
      )
      if (json) printJson({ runId: id, events: version })
      else println(`imported ${version} events from ${file} as run ${id}`)
    }).pipe((eff) => withStore(store, eff)),
).pipe(
  Command.withDescription(
    "Add a run from a JSONL or MLLOG log file to the store (checked fully before anything is written).",
  ),
)

const backendsCommand = Command.make("backends", { json: jsonOption }, ({ json }) =>
  Effect.gen(function* () {
    const { listBackends } = yield* Effect.promise(() => import("../adapters/tfjs/backend.ts"))
    const list = yield* Effect.promise(() => listBackends())
    if (json) return printJson(list)
    println(
      table(
        ["backend", "available", "device / reason"],
        list.map((b) => [b.name, b.available ? "yes" : "no", (b.available ? b.device : b.reason) ?? ""]),
      ),
    )
  }),
).pipe(
  Command.withDescription("List the TensorFlow.js backends this machine can train on, with device names."),
)

export const extraCommands = [exportCommand, importCommand, backendsCommand, benchCommand] as const

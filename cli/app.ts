/**
 * The CLI as a function: argv in, output through Console, an exit code out. `main.ts` runs it as
 * the process; tests run it in-process with a capturing console.
 */
import type * as CliApp from "@effect/cli/CliApp"
import * as Command from "@effect/cli/Command"
import { Cause, Console, Effect, Exit, Option } from "effect"
import { toolVersion } from "../core/common/index.ts"
import { checkArgv } from "./argv.ts"
import { commands } from "./commands/index.ts"
import { EXIT, exitCodeOf, messageOf } from "./failure.ts"
import { commandHelp, rootHelp } from "./help.ts"
import { colourAllowed, terminalWidth } from "./output.ts"

export const SUMMARY =
  "verify, benchmark and replay interleaved multimodal training schedules (visual-prompt / text-prompt steps)"

const NOTES = [
  "Runs are recorded in an event store: the SQLite file .interleave/runs.db unless --store or INTERLEAVE_STORE names another.",
  "Exit codes: 0 success; 1 a failed check, a divergence or an aborted run; 2 bad input (the message names the file, field, flag or line); 3 the store is unavailable (locked, disk full, read-only); 130/143 stopped by SIGINT/SIGTERM (the run can be resumed).",
]

const root = Command.make("interleave").pipe(
  Command.withDescription(SUMMARY),
  // biome-ignore lint/suspicious/noExplicitAny: the commands' parsers differ in type
  Command.withSubcommands(commands.map((c) => c.command) as any),
)

const docs = commands.map((c) => c.doc)

const style = () => ({ width: terminalWidth(), colour: colourAllowed(process.stdout) })

/** Runs the CLI on `args` (argv without node and the script); succeeds with the exit code. */
export const runCli = (
  args: ReadonlyArray<string>,
): Effect.Effect<number, never, CliApp.CliApp.Environment> =>
  Effect.gen(function* () {
    const decision = checkArgv(args, docs)
    switch (decision._tag) {
      case "Help":
        yield* Console.log(
          decision.doc
            ? commandHelp(`interleave ${decision.path.join(" ")}`, decision.doc, style())
            : rootHelp("interleave", toolVersion(), SUMMARY, docs, NOTES, style()),
        )
        return EXIT.ok
      case "Version":
        yield* Console.log(toolVersion())
        return EXIT.ok
      case "Invalid":
        yield* Console.error(`interleave: ${decision.message}`)
        return EXIT.badInput
      case "Run":
        break
    }
    const cli = Command.run(root, { name: "interleave", version: toolVersion() })
    const exit = yield* Effect.exit(
      cli(["node", "interleave", ...args]) as Effect.Effect<void, unknown, CliApp.CliApp.Environment>,
    )
    if (Exit.isSuccess(exit)) return EXIT.ok
    const failure = Cause.failureOption(exit.cause)
    if (Option.isSome(failure)) {
      const e = failure.value as { _tag?: string }
      // The parser has printed its own message for arguments the pre-check let through.
      if (e._tag === "ValidationError" || e._tag === undefined) return EXIT.badInput
      const msg = messageOf(e)
      // Some failures (a failed check with --json) have already said everything on stdout.
      if (msg) yield* Console.error(`interleave: ${msg}`)
      return exitCodeOf(e as { _tag: string })
    }
    if (Cause.isInterruptedOnly(exit.cause)) return yield* Effect.interrupt
    // A defect: a bug, not bad input. One line, and the details only on request.
    yield* Console.error(`interleave: internal error: ${messageOf(Cause.squash(exit.cause))}`)
    if (process.env.INTERLEAVE_DEBUG) yield* Console.error(Cause.pretty(exit.cause))
    return EXIT.internal
  })

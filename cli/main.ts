/**
 * interleave's command line. Every command lives in one of the `*-commands.ts` modules; this file
 * wires them and turns failures into one line on stderr plus an exit code (see failure.ts).
 */
import { Command } from "@effect/cli"
import { NodeContext } from "@effect/platform-node"
import { Cause, Effect, Exit, Fiber, Option } from "effect"
import { toolVersion } from "../core/common/versions.ts"
import { extraCommands } from "./extra-commands.ts"
import { exitCodeOf, messageOf } from "./failure.ts"
import { runCommands } from "./run-commands.ts"
import { planCommand } from "./schedule-commands.ts"

const root = Command.make("interleave").pipe(
  Command.withDescription(
    "Verify, benchmark and replay interleaved multimodal training schedules (visual-prompt / text-prompt steps).",
  ),
  Command.withSubcommands([planCommand, ...runCommands, ...extraCommands]),
)

const cli = Command.run(root, { name: "interleave", version: toolVersion() })

const program = Effect.suspend(() => cli(process.argv)).pipe(Effect.provide(NodeContext.layer))

// `interleave export RUN | head`: a closed pipe ends the output quietly, not with a trace.
for (const stream of [process.stdout, process.stderr])
  stream.on("error", (e: NodeJS.ErrnoException) => {
    if (e.code === "EPIPE") process.exit(process.exitCode ?? 0)
    throw e
  })

const fiber = Effect.runFork(program)
// Ctrl-C interrupts the fiber, so a run flushes what it has done before the process ends.
process.once("SIGINT", () => Effect.runFork(Fiber.interrupt(fiber)))
process.once("SIGTERM", () => Effect.runFork(Fiber.interrupt(fiber)))
const exit = await Effect.runPromise(Fiber.await(fiber))
if (Exit.isFailure(exit)) {
  const failure = Cause.failureOption(exit.cause)
  if (Option.isSome(failure)) {
    const e = failure.value as { _tag?: string }
    // @effect/cli has already printed its own help text for bad arguments.
    if (e._tag === "ValidationError" || e._tag === undefined) process.exitCode = 2
    else {
      const msg = messageOf(e)
      if (msg) process.stderr.write(`interleave: ${msg}\n`)
      process.exitCode = exitCodeOf(e as { _tag: string })
    }
  } else if (Cause.isInterruptedOnly(exit.cause)) {
    process.stderr.write("interleave: interrupted; a run can be continued with `interleave resume RUN`\n")
    process.exitCode = 130
  } else {
    // A defect: a bug, not bad input. One line, and the details only on request.
    const squashed = Cause.squash(exit.cause)
    process.stderr.write(`interleave: internal error: ${messageOf(squashed)}\n`)
    if (process.env.INTERLEAVE_DEBUG) process.stderr.write(`${Cause.pretty(exit.cause)}\n`)
    process.exitCode = 70
  }
}

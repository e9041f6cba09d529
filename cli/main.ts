/**
 * The process: runs the CLI under NodeRuntime.runMain, which turns SIGINT and SIGTERM into an
 * interruption of the command (a run flushes what it has done and records the interruption),
 * and ends with the command's exit code (130 / 143 after a signal).
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Cause, Effect, Exit } from "effect"
import { runCli } from "./app.ts"
import { EXIT } from "./failure.ts"
import { noteSignal, receivedSignal, watchLauncher } from "./signals.ts"

// `interleave export RUN | head`: a closed pipe ends the output quietly, not with a trace.
for (const stream of [process.stdout, process.stderr])
  stream.on("error", (e: NodeJS.ErrnoException) => {
    if (e.code === "EPIPE") process.exit(process.exitCode ?? 0)
    throw e
  })

// runMain interrupts on either signal; which one came decides the exit code.
process.once("SIGINT", () => noteSignal("SIGINT"))
process.once("SIGTERM", () => noteSignal("SIGTERM"))
// Under npx or npm, stop once the wrapper is gone or was sent SIGINT (see watchLauncher): by sending
// ourselves the signal, so that runMain interrupts the command as it does for a real one.
watchLauncher((signal) => process.kill(process.pid, signal))

NodeRuntime.runMain(runCli(process.argv.slice(2)).pipe(Effect.provide(NodeContext.layer)), {
  disableErrorReporting: true,
  teardown: (exit, onExit) => {
    if (Exit.isSuccess(exit)) {
      onExit(exit.value as number)
      return
    }
    if (Cause.isInterruptedOnly(exit.cause)) {
      const code = receivedSignal() === "SIGTERM" ? EXIT.sigterm : EXIT.sigint
      process.exitCode = code
      onExit(code)
      return
    }
    process.stderr.write(`interleave: internal error: ${Cause.pretty(exit.cause).split("\n")[0]}\n`)
    onExit(EXIT.internal)
  },
})

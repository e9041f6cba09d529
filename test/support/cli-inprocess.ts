/**
 * Runs the CLI in this process, as `interleave <args>` would, with a console that captures
 * stdout (Console.log) and stderr (Console.error). No process start, so command tests are cheap.
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import { Console, Effect } from "effect"
import { runCli } from "../../cli/app.ts"

export interface InProcessResult {
  readonly code: number
  readonly stdout: string
  readonly stderr: string
}

const text = (args: ReadonlyArray<unknown>) =>
  args.map((a) => (typeof a === "string" ? a : String(a))).join(" ")

/**
 * `cwd` runs the command from another folder (the default store is relative to it); the test
 * pool is forks, where a worker may change its directory. It is restored afterwards.
 * `onStdout` sees each stdout line as it is written, for a test that acts on what a long-running
 * command has printed so far (show --follow).
 */
export const cliInProcess = async (
  args: ReadonlyArray<string>,
  opts: { cwd?: string; onStdout?: (line: string) => void } = {},
): Promise<InProcessResult> => {
  const out: string[] = []
  const push = (line: string) => {
    out.push(line)
    opts.onStdout?.(line)
  }
  const err: string[] = []
  const unsafe = {
    ...globalThis.console,
    log: (...a: unknown[]) => push(text(a)),
    info: (...a: unknown[]) => push(text(a)),
    error: (...a: unknown[]) => err.push(text(a)),
    warn: (...a: unknown[]) => err.push(text(a)),
  }
  const capture: Console.Console = {
    [Console.TypeId]: Console.TypeId,
    assert: () => Effect.void,
    clear: Effect.void,
    count: () => Effect.void,
    countReset: () => Effect.void,
    debug: () => Effect.void,
    dir: () => Effect.void,
    dirxml: () => Effect.void,
    error: (...a) => Effect.sync(() => err.push(text(a))),
    group: () => Effect.void,
    groupEnd: Effect.void,
    info: (...a) => Effect.sync(() => push(text(a))),
    log: (...a) => Effect.sync(() => push(text(a))),
    table: () => Effect.void,
    time: () => Effect.void,
    timeEnd: () => Effect.void,
    timeLog: () => Effect.void,
    trace: () => Effect.void,
    warn: (...a) => Effect.sync(() => err.push(text(a))),
    unsafe: unsafe as unknown as Console.UnsafeConsole,
  }
  const previous = process.cwd()
  if (opts.cwd !== undefined) process.chdir(opts.cwd)
  const code = await Effect.runPromise(
    runCli(args).pipe(Effect.withConsole(capture), Effect.provide(NodeContext.layer)),
  ).finally(() => process.chdir(previous))
  const join = (xs: string[]) => (xs.length === 0 ? "" : `${xs.join("\n")}\n`)
  return { code, stdout: join(out), stderr: join(err) }
}

/** Runs in-process commands one after another (they share this process's cwd and console). */
export const inSequence = async <const T extends ReadonlyArray<() => Promise<unknown>>>(
  thunks: T,
): Promise<{ -readonly [K in keyof T]: Awaited<ReturnType<T[K]>> }> => {
  const out: unknown[] = []
  for (const t of thunks) out.push(await t())
  return out as { -readonly [K in keyof T]: Awaited<ReturnType<T[K]>> }
}

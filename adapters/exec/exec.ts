/**
 * The `exec` TrainingAdapter: any trainer that speaks the step protocol (docs/step-protocol.md)
 * on its stdin/stdout, started as a child process.
 *
 * Options (recorded in the description, enough to re-open the same trainer):
 *   cmd           the trainer's command line, split into words like a shell's simple command but
 *                 run without a shell (see command-line.ts); required
 *   args          more arguments, appended verbatim (an array of strings; no splitting)
 *   options       trainer options, sent as `hello.options` (a JSON object; default {})
 *   stepTimeout   seconds a step, evaluation, checkpoint or restore may take before the run fails
 *                 with adapter-error and the trainer is ended (default 600)
 *   startTimeout  seconds from start to the `ready` reply (default 600)
 * The child's stderr is echoed to interleave's stderr, each line prefixed `[trainer] `
 * (INTERLEAVE_TRAINER_STDERR=quiet keeps it to the last 20 lines quoted in failure messages), and
 * never mixed into interleave's stdout.
 */
import { Effect, Either, Layer } from "effect"
import {
  AdapterUnavailable,
  type OpenOptions,
  TrainingAdapter,
  type TrainingAdapterShape,
} from "../../core/run/index.ts"
import { splitCommandLine } from "./command-line.ts"
import { openProtocolSession } from "./session.ts"

export const DEFAULT_STEP_TIMEOUT_S = 600
export const DEFAULT_START_TIMEOUT_S = 600

type Raw = Readonly<Record<string, unknown>>

/** Option readers that name the adapter and the option in their complaint (bad input: exit 2). */
export const optionReader = (adapter: string, raw: Raw, known: ReadonlyArray<string>) => {
  const fail = (message: string) => new AdapterUnavailable({ message: `${adapter} adapter: ${message}` })
  const unknown = Object.keys(raw).filter((k) => !known.includes(k))
  const check =
    unknown.length > 0
      ? Effect.fail(fail(`unknown option ${unknown.join(", ")} (known: ${known.join(", ")})`))
      : Effect.void
  const seconds = (name: string, flag: string, dflt: number) => {
    const v = raw[name] ?? dflt
    return typeof v === "number" && Number.isFinite(v) && v > 0
      ? Effect.succeed(v)
      : Effect.fail(fail(`${name} (${flag}) must be a number of seconds > 0, got ${JSON.stringify(v)}`))
  }
  const text = (name: string, dflt?: string) => {
    const v = raw[name] ?? dflt
    return v === undefined || (typeof v === "string" && v.length > 0)
      ? Effect.succeed(v as string | undefined)
      : Effect.fail(fail(`${name} must be a non-empty string, got ${JSON.stringify(v)}`))
  }
  const number = (name: string, ok: (x: number) => boolean, what: string) => {
    const v = raw[name]
    return v === undefined || (typeof v === "number" && Number.isFinite(v) && ok(v))
      ? Effect.succeed(v as number | undefined)
      : Effect.fail(fail(`${name} must be ${what}, got ${JSON.stringify(v)}`))
  }
  return { fail, check, seconds, text, number }
}

const KNOWN = ["cmd", "args", "options", "stepTimeout", "startTimeout"]

export interface ExecOptions {
  readonly cmd: string
  readonly args: ReadonlyArray<string>
  readonly options: Readonly<Record<string, unknown>>
  readonly stepTimeout: number
  readonly startTimeout: number
}

export const decodeExecOptions = (raw: Raw) =>
  Effect.gen(function* () {
    const r = optionReader("exec", raw, KNOWN)
    yield* r.check
    const cmd = yield* r.text("cmd")
    if (cmd === undefined)
      return yield* r.fail('needs cmd, the trainer\'s command line (--cmd "python train.py")')
    const words = splitCommandLine(cmd)
    if (Either.isLeft(words)) return yield* r.fail(`cmd: ${words.left}`)
    const args = raw.args ?? []
    if (!Array.isArray(args) || !args.every((a) => typeof a === "string"))
      return yield* r.fail(`args must be an array of strings, got ${JSON.stringify(args)}`)
    const options = raw.options ?? {}
    if (typeof options !== "object" || options === null || Array.isArray(options))
      return yield* r.fail(`options (--hello-options) must be a JSON object, got ${JSON.stringify(options)}`)
    const decoded: ExecOptions = {
      cmd,
      args: args as string[],
      options: options as Record<string, unknown>,
      stepTimeout: yield* r.seconds("stepTimeout", "--step-timeout", DEFAULT_STEP_TIMEOUT_S),
      startTimeout: yield* r.seconds("startTimeout", "startTimeout", DEFAULT_START_TIMEOUT_S),
    }
    return { decoded, argv: [...words.right, ...decoded.args] }
  })

const open = (opts: OpenOptions) =>
  Effect.gen(function* () {
    const { decoded, argv } = yield* decodeExecOptions(opts.options)
    return yield* openProtocolSession(
      {
        kind: "exec",
        argv,
        helloOptions: decoded.options,
        descriptionOptions: { ...decoded },
        stepTimeoutMs: decoded.stepTimeout * 1000,
        startTimeoutMs: decoded.startTimeout * 1000,
        timeoutHint: "--step-timeout SECONDS sets it",
      },
      opts.spec,
    )
  })

export const ExecAdapter: TrainingAdapterShape = { kind: "exec", open }

export const ExecAdapterLive: Layer.Layer<TrainingAdapter> = Layer.succeed(TrainingAdapter, ExecAdapter)

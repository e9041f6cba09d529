/**
 * The `pytorch` TrainingAdapter: the bundled reference trainer (python/interleave_reference_trainer.py,
 * the small T-Rex2-like model in PyTorch) driven over the step protocol: `exec` with the command
 * line and hello options filled in, the same session code.
 *
 * Options (recorded in the description):
 *   python       the interpreter (default /usr/bin/python3: Debian's, where python3-torch lives)
 *   device       cpu | cuda | cuda:N (default cpu); the trainer refuses cuda without a CUDA device
 *   preset       tiny | small | base (default tiny)
 *   alignWeight  weight of the visual-text alignment loss (default the trainer's: 1; 0 = off)
 *   lrScale      factor on every lr of the plan (default the preset's: 10 for tiny and small)
 *   threads      torch CPU threads (default 1)
 *   stepTimeout, startTimeout  as for exec (seconds; default 600 each)
 */
import { existsSync } from "node:fs"
import { join } from "node:path"
import { Effect, Layer } from "effect"
import { packageRoot } from "../../core/common/index.ts"
import { type OpenOptions, TrainingAdapter, type TrainingAdapterShape } from "../../core/run/index.ts"
import { DEFAULT_START_TIMEOUT_S, DEFAULT_STEP_TIMEOUT_S, optionReader } from "./exec.ts"
import { openProtocolSession } from "./session.ts"

export const DEFAULT_PYTHON = "/usr/bin/python3"
export const PYTORCH_PRESETS = ["tiny", "small", "base"] as const
export const REFERENCE_TRAINER = join("python", "interleave_reference_trainer.py")

const KNOWN = [
  "python",
  "device",
  "preset",
  "alignWeight",
  "lrScale",
  "threads",
  "stepTimeout",
  "startTimeout",
]

export interface PytorchOptions {
  readonly python: string
  readonly device: string
  readonly preset: string
  readonly alignWeight?: number | undefined
  readonly lrScale?: number | undefined
  readonly threads: number
  readonly stepTimeout: number
  readonly startTimeout: number
}

export const decodePytorchOptions = (raw: Readonly<Record<string, unknown>>) =>
  Effect.gen(function* () {
    const r = optionReader("pytorch", raw, KNOWN)
    yield* r.check
    const device = (yield* r.text("device", "cpu"))!
    if (!/^(cpu|cuda|cuda:\d+)$/.test(device))
      return yield* r.fail(`device (--device) must be cpu, cuda or cuda:N, got ${JSON.stringify(device)}`)
    const preset = (yield* r.text("preset", "tiny"))!
    if (!(PYTORCH_PRESETS as ReadonlyArray<string>).includes(preset))
      return yield* r.fail(
        `preset must be one of ${PYTORCH_PRESETS.join(", ")}, got ${JSON.stringify(preset)}`,
      )
    const threads = raw.threads ?? 1
    if (typeof threads !== "number" || !Number.isInteger(threads) || threads < 1)
      return yield* r.fail(`threads must be an integer >= 1, got ${JSON.stringify(threads)}`)
    const alignWeight = yield* r.number("alignWeight", (x) => x >= 0, "a number >= 0 (--align-weight)")
    const lrScale = yield* r.number("lrScale", (x) => x > 0, "a number > 0 (--lr-scale)")
    const o: PytorchOptions = {
      python: (yield* r.text("python", DEFAULT_PYTHON))!,
      device,
      preset,
      ...(alignWeight !== undefined ? { alignWeight } : {}),
      ...(lrScale !== undefined ? { lrScale } : {}),
      threads,
      stepTimeout: yield* r.seconds("stepTimeout", "--step-timeout", DEFAULT_STEP_TIMEOUT_S),
      startTimeout: yield* r.seconds("startTimeout", "startTimeout", DEFAULT_START_TIMEOUT_S),
    }
    return o
  })

/** "No torch" and "no interpreter" are the two ways this goes wrong on a fresh machine. */
const explain =
  (python: string) =>
  (reason: string, tail: ReadonlyArray<string>): string | undefined => {
    if (reason.includes("ENOENT"))
      return `pytorch: there is no python at ${python}: install Debian's python3-torch (it brings /usr/bin/python3) or pass --python PATH`
    if (reason.includes("EACCES"))
      return `pytorch: ${python} cannot be run (permission denied): pass --python PATH`
    if (tail.some((l) => /No module named '?torch'?/.test(l)))
      return `pytorch: python at ${python} has no torch: install Debian's python3-torch or pass --python PATH`
    return undefined
  }

const open = (opts: OpenOptions) =>
  Effect.gen(function* () {
    const o = yield* decodePytorchOptions(opts.options)
    const r = optionReader("pytorch", {}, [])
    const trainer = join(packageRoot, REFERENCE_TRAINER)
    if (!existsSync(trainer))
      return yield* r.fail(`the reference trainer is not where interleave keeps it (${trainer})`)
    const hello: Record<string, unknown> = { preset: o.preset, device: o.device }
    if (o.alignWeight !== undefined) hello.alignWeight = o.alignWeight
    if (o.lrScale !== undefined) hello.lrScale = o.lrScale
    return yield* openProtocolSession(
      {
        kind: "pytorch",
        argv: [o.python, trainer, "--threads", String(o.threads), "--device", o.device],
        helloOptions: hello,
        descriptionOptions: { ...o },
        stepTimeoutMs: o.stepTimeout * 1000,
        startTimeoutMs: o.startTimeout * 1000,
        timeoutHint: "--step-timeout SECONDS sets it",
        explainStartFailure: explain(o.python),
      },
      opts.spec,
    )
  })

export const PytorchAdapter: TrainingAdapterShape = { kind: "pytorch", open }

export const PytorchAdapterLive: Layer.Layer<TrainingAdapter> = Layer.succeed(TrainingAdapter, PytorchAdapter)

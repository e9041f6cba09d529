/**
 * Sweep files: which configurations `interleave bench` runs, and their expansion (pure).
 *
 * A sweep names a base scenario (its optimizer, batch accumulation and seed are kept), a list of
 * ratios, batch sizes and targets (sim hardware profiles, tfjs backend + preset, the bundled
 * PyTorch trainer on a device, or any step-protocol trainer command), and how many
 * warm-up and measured steps each configuration runs. `expandSweep` turns it into one
 * configuration per target x batch size x ratio, each with a stable id such as
 * `tfjs-wasm-tiny-8x1-b8x8` (ids are what baselines match on) and a one-phase spec.
 *
 * Decoding follows core/spec.ts: unknown keys are errors, and every error names the JSON path.
 */
import { Either, ParseResult, Schema } from "effect"
import {
  clip,
  DecodeError,
  formatPath,
  firstIssue as genericIssue,
  notAnObject,
  parseJsonText,
  shown,
} from "../common/index.ts"
import { CycleOrder, decodeSpec, encodeSpec, type Ratio, type ScheduleSpec } from "../schedule/index.ts"

/** tfjs backends and presets a sweep may name (checked against the adapter's lists in a test). */
export const TFJS_BACKENDS = ["cpu", "wasm", "webgpu", "tensorflow"] as const
export const TFJS_PRESETS = ["tiny", "small", "base"] as const

export const DEFAULT_RATIOS = ["visual-only", "16:1", "8:1", "4:1", "2:1", "1:1", "text-only"] as const

const NonNegInt = Schema.Int.pipe(Schema.nonNegative({ message: () => "must be an integer >= 0" }))
const PosInt = Schema.Int.pipe(Schema.positive({ message: () => "must be an integer >= 1" }))
const NonEmpty = Schema.String.pipe(Schema.minLength(1, { message: () => "must be a non-empty string" }))
/** Names end up in run ids and directory names. */
const SafeName = Schema.String.pipe(
  Schema.pattern(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, {
    message: () => "must be letters, digits, '.', '_' or '-' (it is used in run ids and file names)",
  }),
)

/** `"V:T"`, `"visual-only"` (1:0) or `"text-only"` (0:1). */
export const parseRatioText = (text: string): Either.Either<Ratio, string> => {
  if (text === "visual-only") return Either.right({ visual: 1, text: 0 })
  if (text === "text-only") return Either.right({ visual: 0, text: 1 })
  const m = /^(\d+):(\d+)$/.exec(text)
  if (!m)
    return Either.left(
      `expected "V:T" (such as "8:1"), "visual-only" or "text-only", got ${JSON.stringify(text)}`,
    )
  const visual = Number(m[1])
  const t = Number(m[2])
  if (!Number.isSafeInteger(visual) || !Number.isSafeInteger(t)) return Either.left(`${text}: too large`)
  if (visual + t === 0) return Either.left("visual and text cannot both be 0")
  return Either.right({ visual, text: t })
}

/** The inverse of `parseRatioText` for display: 1:0 and 0:1 by name. */
export const ratioName = (r: Ratio): string =>
  r.text === 0 ? "visual-only" : r.visual === 0 ? "text-only" : `${r.visual}:${r.text}`

const RatioText = Schema.transformOrFail(
  Schema.String,
  Schema.Struct({ visual: NonNegInt, text: NonNegInt }),
  {
    strict: true,
    decode: (s, _, ast) =>
      Either.match(parseRatioText(s), {
        onLeft: (reason) => ParseResult.fail(new ParseResult.Type(ast, s, reason)),
        onRight: ParseResult.succeed,
      }),
    encode: (r) => ParseResult.succeed(ratioName(r)),
  },
)

const BatchPair = Schema.Struct({ visual: PosInt, text: PosInt })
/** A number sets both modalities' batch size. */
const BatchSize = Schema.Union(PosInt, BatchPair)
const BATCH_REASON = 'must be an integer >= 1 or { "visual": V, "text": T } with integers >= 1'

export const SimTarget = Schema.Struct({
  adapter: Schema.Literal("sim"),
  /** Hardware profile name or file (relative to the sweep file); default the sim's (h100-sxm). */
  hardware: Schema.optional(NonEmpty),
  /** Model profile name or file; default the sim's (trex2-swin-t). */
  model: Schema.optional(NonEmpty),
})
export type SimTarget = typeof SimTarget.Type

export const TfjsTarget = Schema.Struct({
  adapter: Schema.Literal("tfjs"),
  backend: Schema.Literal(...TFJS_BACKENDS),
  preset: Schema.Literal(...TFJS_PRESETS),
  /**
   * tf.profile every Nth step, which gives the step's peak bytes; default the adapter's (25).
   * With 1, every step has a peak and the bench uses it as the memory measure.
   */
  profileEvery: Schema.optional(NonNegInt),
})
export type TfjsTarget = typeof TfjsTarget.Type

/** Seconds a trainer's step may take (exec and pytorch targets). */
const Seconds = Schema.Number.pipe(
  Schema.filter((x) => (Number.isFinite(x) && x > 0) || "must be a number of seconds > 0"),
)

/** The bundled reference trainer (python/interleave_reference_trainer.py) through the pytorch adapter. */
export const PytorchTarget = Schema.Struct({
  adapter: Schema.Literal("pytorch"),
  /** cpu (default), cuda or cuda:N. */
  device: Schema.optional(
    Schema.String.pipe(
      Schema.pattern(/^(cpu|cuda|cuda:\d+)$/, { message: () => "must be cpu, cuda or cuda:N" }),
    ),
  ),
  preset: Schema.optional(Schema.Literal(...TFJS_PRESETS)),
  /** The interpreter; default /usr/bin/python3. */
  python: Schema.optional(NonEmpty),
  alignWeight: Schema.optional(Schema.Number.pipe(Schema.nonNegative())),
  threads: Schema.optional(PosInt),
  stepTimeout: Schema.optional(Seconds),
})
export type PytorchTarget = typeof PytorchTarget.Type

/** Any trainer command that speaks the step protocol (docs/step-protocol.md), run in the current folder. */
export const ExecTarget = Schema.Struct({
  adapter: Schema.Literal("exec"),
  /** Names the target in config ids (`exec-NAME-...`); default the program's base name. */
  name: Schema.optional(SafeName),
  cmd: NonEmpty,
  args: Schema.optional(Schema.Array(Schema.String)),
  /** Trainer options, sent in hello. */
  options: Schema.optional(Schema.Record({ key: Schema.String, value: Schema.Unknown })),
  stepTimeout: Schema.optional(Seconds),
})
export type ExecTarget = typeof ExecTarget.Type

export const TARGET_ADAPTERS = ["sim", "tfjs", "pytorch", "exec"] as const

export const Target = Schema.Union(SimTarget, TfjsTarget, PytorchTarget, ExecTarget)
export type Target = typeof Target.Type

export const SweepFile = Schema.Struct({
  name: SafeName,
  description: Schema.optionalWith(Schema.String, { default: () => "" }),
  /** Base scenario, relative to the sweep file. */
  base: NonEmpty,
  ratios: Schema.optionalWith(
    Schema.Array(RatioText).pipe(Schema.minItems(1, { message: () => "needs at least one ratio" })),
    { default: () => DEFAULT_RATIOS.map((r) => Either.getOrThrow(parseRatioText(r))) },
  ),
  /** Default: the base scenario's batch sizes. */
  batchSizes: Schema.optional(
    Schema.Array(BatchSize).pipe(Schema.minItems(1, { message: () => "needs at least one batch size" })),
  ),
  targets: Schema.Array(Target).pipe(Schema.minItems(1, { message: () => "needs at least one target" })),
  /** Steps run first and left out of every statistic (compilation, allocator, caches). */
  warmupSteps: NonNegInt,
  measuredSteps: PosInt,
  /** Cycle order of the bench phase; default the base's first joint phase's, else visual-first. */
  order: Schema.optional(CycleOrder),
  /** Engine settings for tfjs runs; 0 by default, since evaluation and checkpoints distort timing. */
  evalEvery: Schema.optionalWith(NonNegInt, { default: () => 0 }),
  checkpointEvery: Schema.optionalWith(NonNegInt, { default: () => 0 }),
  /** tinybench iterations per single-step task ("visual step", "text step"); 0 = skip. */
  microIterations: Schema.optionalWith(NonNegInt, { default: () => 8 }),
})
export type SweepFile = typeof SweepFile.Type

const decodeUnknown = Schema.decodeUnknownEither(SweepFile, { onExcessProperty: "error", errors: "first" })

/** Unions report every member's complaint; the user wants the one about the member they meant. */
const unionReason = (issue: ParseResult.ArrayFormatterIssue, input: unknown): string => {
  const path = issue.path
  // targets[i].adapter that is neither "sim" nor "tfjs"
  if (path[0] === "targets" && typeof path[1] === "number") {
    const t = (input as { targets?: ReadonlyArray<unknown> }).targets?.[path[1]]
    const adapter = t && typeof t === "object" ? (t as { adapter?: unknown }).adapter : undefined
    if (!(TARGET_ADAPTERS as ReadonlyArray<unknown>).includes(adapter))
      return `unknown target adapter ${shown(adapter)} (known: ${TARGET_ADAPTERS.map((a) => `"${a}"`).join(", ")})`
    const known = { backend: TFJS_BACKENDS, preset: TFJS_PRESETS }[String(path[2])]
    if (
      (adapter === "tfjs" || adapter === "pytorch") &&
      path.length === 3 &&
      known &&
      issue.message.startsWith("Expected")
    )
      return `must be one of ${known.join(", ")}, got ${shown((t as Record<string, unknown>)[String(path[2])])}`
  }
  // batchSizes[i] that is neither a number nor a pair: the union's first member speaks for both.
  if (path[0] === "batchSizes" && path.length === 2 && issue.message.startsWith("Expected"))
    return BATCH_REASON
  return clip(issue.message)
}

const firstIssue = (error: ParseResult.ParseError, input: unknown): { path: string; reason: string } => {
  const { issue, path, reason } = genericIssue(error, "invalid sweep")
  if (!issue || issue._tag === "Unexpected" || issue._tag === "Missing") return { path, reason }
  const why = unionReason(issue, input)
  // A bad target adapter is reported at the target's `adapter` key.
  const p = [...issue.path]
  if (p[0] === "targets" && typeof p[1] === "number" && why.startsWith("unknown target adapter"))
    p.splice(2, p.length - 2, "adapter")
  return { path: formatPath(p), reason: why }
}

/** Decodes an already-parsed sweep file. */
export const decodeSweep = (input: unknown, source = "sweep"): Either.Either<SweepFile, DecodeError> => {
  const shape = notAnObject(input, "a sweep file")
  if (shape) return Either.left(new DecodeError({ source, path: "", reason: shape }))
  return Either.mapLeft(decodeUnknown(input), (e) => new DecodeError({ source, ...firstIssue(e, input) }))
}

/** Parses JSON text, then decodes; a syntax error names line and column. */
export const parseSweep = (text: string, source = "sweep"): Either.Either<SweepFile, DecodeError> =>
  Either.flatMap(
    Either.mapLeft(parseJsonText(text), (reason) => new DecodeError({ source, path: "", reason })),
    (json) => decodeSweep(json, source),
  )

// ---------------------------------------------------------------------------------------------
// Expansion

export interface BenchConfig {
  /** Stable across sweeps: `<target>-<V>x<T>-b<bv>x<bt>`, e.g. `tfjs-wasm-tiny-8x1-b8x8`. */
  readonly id: string
  /** Unique inside the sweep, for tables and legends: `8:1 b8/8 tfjs/wasm tiny`. */
  readonly label: string
  readonly target: Target
  readonly ratio: Ratio
  readonly batch: { readonly visual: number; readonly text: number }
  /** The base spec with one phase `bench` of warm-up + measured steps, a constant lr. */
  readonly spec: ScheduleSpec
  /** Options for `adapter.open`, as `interleave run` would build them. */
  readonly adapterOptions: Readonly<Record<string, unknown>>
  readonly warmupSteps: number
  readonly measuredSteps: number
}

/** A file-ish profile value becomes its base name: `../hw/my-gpu.json` -> `my-gpu`. */
const profileSlug = (s: string): string =>
  (s.split(/[\\/]/).pop() ?? s).replace(/\.json$/, "").replace(/[^A-Za-z0-9._-]/g, "_")

/** An exec target's name: given, or its program's base name (`python3 train.py` -> `python3`). */
const execName = (t: ExecTarget): string =>
  t.name ?? profileSlug((t.cmd.trim().split(/\s+/)[0] ?? "exec").replace(/^['"]|['"]$/g, ""))

/** The part of a config id that names the target. */
export const targetId = (t: Target): string => {
  switch (t.adapter) {
    case "sim":
      return ["sim", profileSlug(t.hardware ?? "h100-sxm"), ...(t.model ? [profileSlug(t.model)] : [])].join(
        "-",
      )
    case "tfjs":
      return `tfjs-${t.backend}-${t.preset}`
    case "pytorch":
      return `pytorch-${(t.device ?? "cpu").replace(":", "")}-${t.preset ?? "tiny"}`
    case "exec":
      return `exec-${execName(t)}`
  }
}

const targetLabel = (t: Target): string => {
  switch (t.adapter) {
    case "sim":
      return `sim ${profileSlug(t.hardware ?? "h100-sxm")}${t.model ? ` ${profileSlug(t.model)}` : ""}`
    case "tfjs":
      return `tfjs/${t.backend} ${t.preset}`
    case "pytorch":
      return `pytorch/${t.device ?? "cpu"} ${t.preset ?? "tiny"}`
    case "exec":
      return `exec ${execName(t)}`
  }
}

/** The adapter options a target's run is started with (the ones the sweep file set). */
export const adapterOptionsOf = (t: Target): Record<string, unknown> => {
  const some = (o: Record<string, unknown>) =>
    Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined))
  switch (t.adapter) {
    case "sim":
      return some({ hardware: t.hardware, model: t.model })
    case "tfjs":
      return some({ backend: t.backend, preset: t.preset, profileEvery: t.profileEvery })
    case "pytorch":
      return some({
        python: t.python,
        device: t.device,
        preset: t.preset,
        alignWeight: t.alignWeight,
        threads: t.threads,
        stepTimeout: t.stepTimeout,
      })
    case "exec":
      return some({ cmd: t.cmd, args: t.args, options: t.options, stepTimeout: t.stepTimeout })
  }
}

/**
 * The configuration's schedule: the base's optimizer, accumulation, seed and per-modality lr
 * factors, one phase at the ratio, and no warm-up or decay (their milestones could fall outside a
 * short bench, and a changing lr is not what a bench measures).
 */
export const benchSpec = (
  base: ScheduleSpec,
  options: {
    readonly name: string
    readonly ratio: Ratio
    readonly batch: { readonly visual: number; readonly text: number }
    readonly steps: number
    readonly order: CycleOrder
  },
): Either.Either<ScheduleSpec, string> => {
  const spec: ScheduleSpec = {
    ...base,
    name: options.name,
    description: `bench of ${base.name}: ${ratioName(options.ratio)}, batch ${options.batch.visual}/${options.batch.text}`,
    phases: [{ name: "bench", steps: options.steps, ratio: options.ratio, order: options.order }],
    batch: {
      visual: { ...base.batch.visual, size: options.batch.visual },
      text: { ...base.batch.text, size: options.batch.text },
    },
    lr: { decay: { kind: "none" }, modalityFactor: base.lr.modalityFactor },
  }
  // Through the decoder once, so a bench spec obeys every rule a scenario file does.
  return Either.mapLeft(decodeSpec(encodeSpec(spec), options.name), (e) => e.message)
}

/** The base's cycle order: that of its first phase with both modalities. */
const baseOrder = (base: ScheduleSpec): CycleOrder =>
  base.phases.find((p) => p.ratio.visual > 0 && p.ratio.text > 0)?.order ?? "visual-first"

/**
 * One configuration per target x batch size x ratio, in that nesting (so a report lists a
 * target's ratios together). Duplicate ids (a ratio or batch size listed twice) are errors.
 */
export const expandSweep = (
  sweep: SweepFile,
  base: ScheduleSpec,
  source = "sweep",
): Either.Either<ReadonlyArray<BenchConfig>, DecodeError> => {
  const batches = (sweep.batchSizes ?? [{ visual: base.batch.visual.size, text: base.batch.text.size }]).map(
    (b) => (typeof b === "number" ? { visual: b, text: b } : b),
  )
  const order = sweep.order ?? baseOrder(base)
  const steps = sweep.warmupSteps + sweep.measuredSteps
  const dup = <A>(path: string, items: ReadonlyArray<A>, key: (a: A) => string): DecodeError | undefined => {
    const seen = new Map<string, number>()
    for (const [i, item] of items.entries()) {
      const k = key(item)
      const j = seen.get(k)
      if (j !== undefined)
        return new DecodeError({ source, path: `${path}[${i}]`, reason: `same as ${path}[${j}] (${k})` })
      seen.set(k, i)
    }
    return undefined
  }
  const bad =
    dup("targets", sweep.targets, targetId) ??
    dup("batchSizes", batches, (b) => `b${b.visual}x${b.text}`) ??
    dup("ratios", sweep.ratios, (r) => ratioName(r))
  if (bad) return Either.left(bad)
  const out: BenchConfig[] = []
  for (const target of sweep.targets) {
    for (const batch of batches) {
      for (const ratio of sweep.ratios) {
        const id = `${targetId(target)}-${ratio.visual}x${ratio.text}-b${batch.visual}x${batch.text}`
        const spec = benchSpec(base, { name: `${sweep.name}-${id}`, ratio, batch, steps, order })
        if (Either.isLeft(spec))
          return Either.left(new DecodeError({ source, path: `base (for ${id})`, reason: spec.left }))
        out.push({
          id,
          label: `${ratioName(ratio)} b${batch.visual}/${batch.text} ${targetLabel(target)}`,
          target,
          ratio,
          batch,
          spec: spec.right,
          adapterOptions: adapterOptionsOf(target),
          warmupSteps: sweep.warmupSteps,
          measuredSteps: sweep.measuredSteps,
        })
      }
    }
  }
  return Either.right(out)
}

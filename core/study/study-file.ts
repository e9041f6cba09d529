/**
 * Study files (`interleave study STUDY.json`): one scenario at several ratios (and, as further
 * axes, lr factors per modality, warm-up lengths and seeds) for a fixed budget, with evaluations
 * every K steps, on one target (any adapter a sweep can name). Decoding and expansion are pure.
 *
 * Decoding follows core/bench/sweep.ts: unknown keys are errors, and every error names the JSON
 * path. `expandStudy` turns a study into one configuration per ratio x lr factors x warm-up x seed,
 * each with a stable id (`4x1-lrt0.5-w50-s1`) and a one-phase spec that obeys every scenario rule.
 */
import { Either, Schema } from "effect"
import {
  adapterOptionsOf,
  type BenchConfig,
  DEFAULT_RATIOS,
  decodeSweep,
  parseRatioText,
  ratioName,
  type SweepFile,
  type Target,
  targetId,
} from "../bench/sweep.ts"
import {
  DecodeError,
  firstIssue,
  NonNegFinite,
  NonNegInt,
  notAnObject,
  PosFinite,
  PosInt,
  parseJsonText,
  UnitInterval,
} from "../common/index.ts"
import { CycleOrder, decodeSpec, encodeSpec, type Ratio, type ScheduleSpec } from "../schedule/index.ts"

const SafeName = Schema.String.pipe(
  Schema.pattern(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, {
    message: () => "must be letters, digits, '.', '_' or '-' (it is used in run ids and file names)",
  }),
)

/**
 * The fixed budget every configuration gets: `steps`, `samples` (the run stops at the first step
 * that brings its samples to at least this many), or `seconds` of step time (the sum of the
 * adapter's step durations: simulated for sim, measured by the trainer otherwise; evaluation and
 * process start are not counted), with `maxSteps` as the schedule's length (default 100000).
 */
export const Budget = Schema.Struct({
  steps: Schema.optional(PosInt),
  samples: Schema.optional(PosInt),
  seconds: Schema.optional(PosFinite),
  maxSteps: Schema.optional(PosInt),
}).pipe(
  Schema.filter((b) => {
    const n = [b.steps, b.samples, b.seconds].filter((x) => x !== undefined).length
    if (n !== 1) return 'give exactly one of "steps", "samples" or "seconds"'
    if (b.maxSteps !== undefined && b.seconds === undefined) return '"maxSteps" applies only to "seconds"'
    return true
  }),
)
export type Budget = typeof Budget.Type

export const DEFAULT_MAX_STEPS = 100_000

const LrFactor = Schema.Struct({ visual: NonNegFinite, text: NonNegFinite })
export type LrFactor = typeof LrFactor.Type

export const StudyFile = Schema.Struct({
  name: SafeName,
  description: Schema.optionalWith(Schema.String, { default: () => "" }),
  /** Base scenario, relative to the study file: optimizer, groups, batch sizes and seed are kept. */
  base: Schema.String.pipe(Schema.minLength(1, { message: () => "must be a non-empty string" })),
  /** A sweep target (see core/bench/sweep.ts): sim, tfjs, pytorch or exec. Checked by the sweep decoder. */
  target: Schema.Record({ key: Schema.String, value: Schema.Unknown }),
  /** "V:T", "visual-only", "text-only"; default visual-only, 16:1, 8:1, 4:1, 2:1, 1:1, text-only. */
  ratios: Schema.optionalWith(
    Schema.Array(Schema.String).pipe(Schema.minItems(1, { message: () => "needs at least one ratio" })),
    {
      default: () => [...DEFAULT_RATIOS],
    },
  ),
  budget: Budget,
  /** Evaluate every K steps (and after the last step). */
  evalEvery: PosInt,
  /** Seeds (spec.seed); absent: the base scenario's seed only. */
  seeds: Schema.optional(
    Schema.Array(NonNegInt).pipe(Schema.minItems(1, { message: () => "needs at least one seed" })),
  ),
  /** lr factor per modality (spec lr.modalityFactor); absent: the base's. */
  lrFactors: Schema.optional(
    Schema.Array(LrFactor).pipe(Schema.minItems(1, { message: () => "needs at least one lr factor pair" })),
  ),
  /** Warm-up lengths in steps (0 = none; spec lr.warmup.steps); absent: the base's warm-up. */
  warmupSteps: Schema.optional(
    Schema.Array(NonNegInt).pipe(Schema.minItems(1, { message: () => "needs at least one warm-up length" })),
  ),
  warmupKind: Schema.optionalWith(Schema.Literal("linear", "constant"), { default: () => "linear" as const }),
  /** Factor on the base lr at step 0 of a warm-up (spec lr.warmup.startFactor). */
  warmupStartFactor: Schema.optional(UnitInterval),
  /** Batch size per modality (a number sets both); default the base's. */
  batch: Schema.optional(Schema.Union(PosInt, Schema.Struct({ visual: PosInt, text: PosInt }))),
  order: Schema.optional(CycleOrder),
})
export type StudyFile = typeof StudyFile.Type

const decodeUnknown = Schema.decodeUnknownEither(StudyFile, { onExcessProperty: "error", errors: "first" })

export interface DecodedStudy {
  readonly file: StudyFile
  readonly target: Target
  readonly ratios: ReadonlyArray<Ratio>
}

/** Decodes an already-parsed study file. */
export const decodeStudy = (input: unknown, source = "study"): Either.Either<DecodedStudy, DecodeError> => {
  const shape = notAnObject(input, "a study file")
  if (shape) return Either.left(new DecodeError({ source, path: "", reason: shape }))
  const decoded = decodeUnknown(input)
  if (Either.isLeft(decoded)) {
    const { path, reason } = firstIssue(decoded.left, "invalid study")
    return Either.left(new DecodeError({ source, path, reason }))
  }
  const file = decoded.right
  const ratios: Ratio[] = []
  const seen = new Map<string, number>()
  for (const [i, text] of file.ratios.entries()) {
    const r = parseRatioText(text)
    if (Either.isLeft(r))
      return Either.left(new DecodeError({ source, path: `ratios[${i}]`, reason: r.left }))
    const name = ratioName(r.right)
    const j = seen.get(name)
    if (j !== undefined)
      return Either.left(
        new DecodeError({ source, path: `ratios[${i}]`, reason: `same as ratios[${j}] (${name})` }),
      )
    seen.set(name, i)
    ratios.push(r.right)
  }
  for (const [key, list] of [
    ["seeds", file.seeds?.map(String)],
    ["lrFactors", file.lrFactors?.map((f: LrFactor) => `${f.visual}/${f.text}`)],
    ["warmupSteps", file.warmupSteps?.map(String)],
  ] as const) {
    const at = new Map<string, number>()
    for (const [i, k] of (list ?? []).entries()) {
      const j = at.get(k)
      if (j !== undefined)
        return Either.left(
          new DecodeError({ source, path: `${key}[${i}]`, reason: `same as ${key}[${j}] (${k})` }),
        )
      at.set(k, i)
    }
  }
  // The target through the sweep decoder, so a study names targets exactly as a sweep does.
  const asSweep = decodeSweep(
    { name: file.name, base: file.base, targets: [file.target], warmupSteps: 0, measuredSteps: 1 },
    source,
  )
  if (Either.isLeft(asSweep)) {
    const e = asSweep.left
    return Either.left(
      new DecodeError({ source, path: e.path.replace(/^targets\[0\]/, "target"), reason: e.reason }),
    )
  }
  return Either.right({ file, target: asSweep.right.targets[0]!, ratios })
}

/** Parses JSON text, then decodes; a syntax error names line and column. */
export const parseStudy = (text: string, source = "study"): Either.Either<DecodedStudy, DecodeError> =>
  Either.flatMap(
    Either.mapLeft(parseJsonText(text), (reason) => new DecodeError({ source, path: "", reason })),
    (json) => decodeStudy(json, source),
  )

// ---------------------------------------------------------------------------------------------
// Expansion

/** One configuration of a study: a BenchConfig (so sweep workers can run it) plus its axes. */
export interface StudyConfig extends BenchConfig {
  /** The configuration without its seed: seeds of one setting are aggregated. */
  readonly setting: string
  readonly seed: number
  readonly lrFactor: LrFactor
  /** 0 = no warm-up. */
  readonly warmup: number
  /** Steps of the schedule (the budget's steps, the steps that reach its samples, or maxSteps). */
  readonly steps: number
}

/** Steps until the samples reach `samples`: whole cycles, then the cycle's steps in order. */
export const stepsForSamples = (
  ratio: Ratio,
  batch: { readonly visual: number; readonly text: number },
  order: CycleOrder,
  samples: number,
): number => {
  const perCycle = ratio.visual * batch.visual + ratio.text * batch.text
  const cycleSteps = ratio.visual + ratio.text
  const full = Math.floor(samples / perCycle)
  let left = samples - full * perCycle
  let steps = full * cycleSteps
  const blocks =
    order === "text-first"
      ? [
          [ratio.text, batch.text],
          [ratio.visual, batch.visual],
        ]
      : [
          [ratio.visual, batch.visual],
          [ratio.text, batch.text],
        ]
  for (const [n, size] of blocks)
    for (let i = 0; i < n! && left > 0; i++) {
      left -= size!
      steps++
    }
  return Math.max(1, steps)
}

/** A number in an id: `0.5`, `1`, `1e-3` stay as JavaScript writes them. */
const num = (x: number): string => String(x)

const baseOrder = (base: ScheduleSpec): CycleOrder =>
  base.phases.find((p) => p.ratio.visual > 0 && p.ratio.text > 0)?.order ?? "visual-first"

/** The synthetic quality model is switched on for every sim target of a study. */
export const SIM_QUALITY_OPTION = { quality: "synthetic-recall" } as const

/** A sweep target's options; a sim run of a study also gets the synthetic quality model. */
const studyAdapterOptions = (t: Target): Record<string, unknown> =>
  t.adapter === "sim" ? { ...adapterOptionsOf(t), ...SIM_QUALITY_OPTION } : adapterOptionsOf(t)

/**
 * One configuration per ratio x lr factors x warm-up x seed, in that nesting. The spec: the base's
 * optimizer, groups and accumulation, one phase `study` at the ratio, the lr factors and warm-up of
 * the configuration, no decay (a base's multistep milestones would fall outside a short budget).
 */
export const expandStudy = (
  study: DecodedStudy,
  base: ScheduleSpec,
  source = "study",
): Either.Either<ReadonlyArray<StudyConfig>, DecodeError> => {
  const f = study.file
  const batch =
    f.batch === undefined
      ? { visual: base.batch.visual.size, text: base.batch.text.size }
      : typeof f.batch === "number"
        ? { visual: f.batch, text: f.batch }
        : f.batch
  const order = f.order ?? baseOrder(base)
  const seeds = f.seeds ?? [base.seed]
  const lrs = f.lrFactors ?? [base.lr.modalityFactor]
  const warmups = f.warmupSteps ?? [base.lr.warmup?.steps ?? 0]
  const tid = targetId(study.target)
  const out: StudyConfig[] = []
  for (const ratio of study.ratios) {
    const steps =
      f.budget.steps ??
      (f.budget.samples !== undefined
        ? stepsForSamples(ratio, batch, order, f.budget.samples)
        : (f.budget.maxSteps ?? DEFAULT_MAX_STEPS))
    for (const lr of lrs)
      for (const warmup of warmups)
        for (const seed of seeds) {
          const parts = [`${ratio.visual}x${ratio.text}`]
          if (f.lrFactors) parts.push(`lrv${num(lr.visual)}-lrt${num(lr.text)}`)
          if (f.warmupSteps) parts.push(`w${warmup}`)
          const setting = parts.join("-")
          const id = f.seeds ? `${setting}-s${seed}` : setting
          if (warmup > steps)
            return Either.left(
              new DecodeError({
                source,
                path: f.warmupSteps ? "warmupSteps" : "base (lr.warmup.steps)",
                reason: `a warm-up of ${warmup} steps is longer than the ${steps} steps of ${id}`,
              }),
            )
          const baseWarm = base.lr.warmup
          const warm =
            warmup === 0
              ? undefined
              : {
                  kind:
                    f.warmupStartFactor !== undefined || f.warmupSteps
                      ? f.warmupKind
                      : (baseWarm?.kind ?? "linear"),
                  steps: warmup,
                  startFactor: f.warmupStartFactor ?? baseWarm?.startFactor ?? 0.001,
                }
          const spec: ScheduleSpec = {
            ...base,
            name: `${f.name}-${id}`,
            description: `study ${f.name} of ${base.name}: ${ratioName(ratio)}, lr factor visual ${lr.visual} text ${lr.text}, warm-up ${warmup} steps, seed ${seed}`,
            seed,
            phases: [{ name: "study", steps, ratio, order }],
            batch: {
              visual: { ...base.batch.visual, size: batch.visual },
              text: { ...base.batch.text, size: batch.text },
            },
            lr: { ...(warm ? { warmup: warm } : {}), decay: { kind: "none" }, modalityFactor: lr },
          }
          const checked = decodeSpec(encodeSpec(spec), `${source} (${id})`)
          if (Either.isLeft(checked))
            return Either.left(
              new DecodeError({ source, path: `base (for ${id})`, reason: checked.left.message }),
            )
          out.push({
            id: `${tid}-${id}`,
            label: id,
            setting,
            seed,
            lrFactor: lr,
            warmup,
            steps,
            target: study.target,
            ratio,
            batch,
            spec: checked.right,
            adapterOptions: studyAdapterOptions(study.target),
            warmupSteps: 0,
            measuredSteps: steps,
          })
        }
  }
  return Either.right(out)
}

/** The study as a sweep, so the sweep queue and its workers (core/bench/sweep-worker.ts) can run it. */
export const studyAsSweep = (study: DecodedStudy): SweepFile => ({
  name: `study-${study.file.name}`,
  description: study.file.description,
  base: study.file.base,
  ratios: study.ratios,
  targets: [study.target],
  warmupSteps: 0,
  measuredSteps: 1,
  evalEvery: study.file.evalEvery,
  checkpointEvery: 0,
  microIterations: 0,
})

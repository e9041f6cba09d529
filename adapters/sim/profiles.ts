/**
 * Hardware and model profiles for the sim adapter: JSON files decoded with Effect Schema.
 *
 * A bare name (`h100-sxm`) resolves to the bundled file under scenarios/hardware or
 * scenarios/models, found relative to this module (not the cwd), so the CLI works from any
 * directory. Anything that looks like a path is read as given. Bad input is an
 * `AdapterUnavailable` whose message names the file and the field.
 */
import { existsSync, readdirSync } from "node:fs"
import { join, resolve } from "node:path"
import { Effect, Either, type ParseResult, Schema } from "effect"
import {
  decodeUtf8Text,
  errnoText,
  firstIssue,
  hashJson,
  InputError,
  issueText,
  looksLikePath,
  packageRoot,
  parseJsonText,
  readInputBytes,
} from "../../core/common/index.ts"
import { AdapterUnavailable } from "../../core/run/index.ts"

const NonEmpty = Schema.String.pipe(Schema.minLength(1, { message: () => "must be a non-empty string" }))
const PosFinite = Schema.Finite.pipe(Schema.positive({ message: () => "must be a finite number > 0" }))
const NonNegFinite = Schema.Finite.pipe(Schema.nonNegative({ message: () => "must be a finite number >= 0" }))
const UnitFraction = Schema.Finite.pipe(
  Schema.greaterThan(0, { message: () => "must be a finite number in (0, 1]" }),
  Schema.lessThanOrEqualTo(1, { message: () => "must be a finite number in (0, 1]" }),
)
const between = (lo: number, hi: number) =>
  Schema.Finite.pipe(
    Schema.between(lo, hi, { message: () => `must be a finite number between ${lo} and ${hi}` }),
  )

export const HardwareProfile = Schema.Struct({
  name: NonEmpty,
  /** Where the numbers come from (vendor datasheet figures). */
  description: NonEmpty,
  /** Dense peak FLOP/s at the training precision (BF16/FP16 tensor cores, FP32 on CPUs). */
  peakFlops: PosFinite,
  /** Device memory bandwidth, bytes/s. */
  memoryBandwidth: PosFinite,
  /** Device memory capacity, bytes: a step whose in-step peak exceeds it fails out-of-memory. */
  memoryBytes: PosFinite,
  /** Fixed cost of dispatching one kernel (launch + framework op overhead), microseconds. */
  kernelOverheadUs: NonNegFinite,
  /** Achievable fraction of peak FLOP/s and bandwidth (real kernels rarely reach the datasheet). */
  efficiency: Schema.optionalWith(UnitFraction, { default: () => 1 }),
  /**
   * "caching": the framework keeps freed device memory in a pool (PyTorch's CUDA caching
   * allocator), so reserved bytes hold the high-water mark of the in-step peaks; "none": no pool
   * (CPU, tfjs), and the sim reports no reserved figure.
   */
  allocator: Schema.optionalWith(Schema.Literal("caching", "none"), { default: () => "none" as const }),
})
export type HardwareProfile = typeof HardwareProfile.Type

export const LossComponent = Schema.Struct({
  /** Loss before any update of this modality. */
  initial: PosFinite,
  /** Asymptote the loss decays towards. */
  final: NonNegFinite,
  /** Updates (of this modality, plus transfer) after which half the gap to `final` is closed. */
  halfLife: PosFinite,
}).pipe(Schema.filter((c) => c.final <= c.initial || "final must not exceed initial"))
export type LossComponent = typeof LossComponent.Type

export const LossCurve = Schema.Struct({
  /** Named components (cls, box, align, ...); the sim adds `total`, so that name is reserved. */
  components: Schema.Record({ key: Schema.String, value: LossComponent }).pipe(
    Schema.filter((r) => {
      const keys = Object.keys(r)
      if (keys.length === 0) return "needs at least one component"
      if (keys.includes("total")) return '"total" is reserved (the sim adds it)'
      return true
    }),
  ),
  /** Relative amplitude of the seeded per-step noise: loss * (1 + noise * u), u in [-1, 1). */
  noise: Schema.optionalWith(between(0, 0.5), { default: () => 0.02 }),
  /** Fraction of the other modality's updates that also count as progress (shared encoder). */
  transfer: Schema.optionalWith(between(0, 1), { default: () => 0 }),
})
export type LossCurve = typeof LossCurve.Type

/** One step of a modality: what it trains, what it computes and keeps. docs/sim-profiles.md defines each term. */
export const ModalityProfile = Schema.Struct({
  /** Parameter branches (keys of `parameters`) this modality's steps compute gradients for and update. */
  trains: Schema.Array(NonEmpty),
  /** Training FLOPs (forward + backward) per sample. */
  flopsPerSample: NonNegFinite,
  /** Training FLOPs per step that do not scale with the batch (a text encoder over the step's class names). */
  fixedFlops: Schema.optionalWith(NonNegFinite, { default: () => 0 }),
  /** Activation bytes kept for backward, per sample. */
  activationBytesPerSample: NonNegFinite,
  /** Activation bytes per sample squared (prompts drawn from the whole batch scored against every image). */
  activationBytesPerSampleSquared: Schema.optionalWith(NonNegFinite, { default: () => 0 }),
  /** Bytes live at the step's peak that do not scale with the batch (beyond weights, optimizer state, gradients). */
  fixedActivationBytes: Schema.optionalWith(NonNegFinite, { default: () => 0 }),
  /** Kernels dispatched by one forward + backward step. */
  kernelsPerStep: NonNegFinite,
  /** Kernels dispatched by one optimizer update after a step of this modality. */
  updateKernels: Schema.optionalWith(NonNegFinite, { default: () => 0 }),
  /** Host-side time per step not overlapped with the device (collation, loss bookkeeping), microseconds. */
  hostUsPerStep: Schema.optionalWith(NonNegFinite, { default: () => 0 }),
  /** Host-side time per sample (Hungarian matching on the CPU), microseconds. */
  hostUsPerSample: Schema.optionalWith(NonNegFinite, { default: () => 0 }),
  /** Extra time on a step whose predecessor was of the other modality (allocator, caches), microseconds. */
  switchUs: Schema.optionalWith(NonNegFinite, { default: () => 0 }),
  loss: LossCurve,
})
export type ModalityProfile = typeof ModalityProfile.Type

/** The memory figures a calibration may fit (the names of core/log's MemorySample). */
export const MemoryFigureName = Schema.Literal(
  "peakBytes",
  "allocatedBytes",
  "reservedBytes",
  "deviceBytes",
  "rssBytes",
)
export type MemoryFigureName = typeof MemoryFigureName.Type

/** Fitted step time of one modality, ms: fixedMs + perSampleMs * batch, + updateMs, + switchMs. */
export const TimeTerms = Schema.Struct({
  fixedMs: NonNegFinite,
  perSampleMs: NonNegFinite,
  updateMs: NonNegFinite,
  switchMs: NonNegFinite,
})
export type TimeTerms = typeof TimeTerms.Type

/** Fitted memory of one modality's step, bytes: fixedBytes + perSampleBytes * B + perSampleSquaredBytes * B^2. */
export const MemoryTerms = Schema.Struct({
  fixedBytes: NonNegFinite,
  perSampleBytes: NonNegFinite,
  perSampleSquaredBytes: NonNegFinite,
})
export type MemoryTerms = typeof MemoryTerms.Type

const NullablePct = Schema.NullOr(Schema.Finite)
/** MAPE (%) on mean step time per modality and on each config's peak memory; null where nothing was held out. */
export const HeldOutMape = Schema.Struct({
  visualStepMs: NullablePct,
  textStepMs: NullablePct,
  peakBytes: NullablePct,
})
export type HeldOutMape = typeof HeldOutMape.Type

export const FittedTerm = Schema.Struct({
  /** "visual.perSampleMs", "memory.text.fixedBytes", ... */
  term: NonEmpty,
  value: Schema.Finite,
  unit: NonEmpty,
  /** fitted: from the data; fitted-at-bound: the data pull it below 0, held at 0; prior: not identifiable, held at `value`. */
  status: Schema.Literal("fitted", "fitted-at-bound", "prior"),
  note: Schema.optional(Schema.String),
})
export type FittedTerm = typeof FittedTerm.Type

export const Calibrated = Schema.Struct({
  status: Schema.Literal("calibrated"),
  /** Name of the hardware profile the fitted terms hold for; on other hardware the physical terms apply. */
  hardware: NonEmpty,
  fittedAt: Schema.String,
  method: NonEmpty,
  source: Schema.Struct({
    file: Schema.String,
    sha256: Schema.String,
    sweep: Schema.String,
    machine: Schema.String,
    adapter: Schema.String,
    backend: Schema.optional(Schema.String),
    preset: Schema.optional(Schema.String),
    device: Schema.optional(Schema.String),
    /** Configurations fitted on, after merging duplicates. */
    configs: Schema.NonNegativeInt,
  }),
  time: Schema.Struct({ visual: Schema.optional(TimeTerms), text: Schema.optional(TimeTerms) }),
  memory: Schema.optional(
    Schema.Struct({
      figure: MemoryFigureName,
      visual: Schema.optional(MemoryTerms),
      text: Schema.optional(MemoryTerms),
    }),
  ),
  terms: Schema.Array(FittedTerm),
  heldOut: Schema.Struct({
    method: NonEmpty,
    groups: Schema.Array(
      Schema.Struct({ group: NonEmpty, configs: Schema.Array(Schema.String), mapePct: HeldOutMape }),
    ),
    /** Over every held-out config of every group. */
    mapePct: HeldOutMape,
  }),
  warnings: Schema.Array(Schema.String),
})
export type Calibrated = typeof Calibrated.Type

export const Calibration = Schema.Union(
  Schema.Struct({ status: Schema.Literal("uncalibrated"), note: Schema.optional(Schema.String) }),
  Calibrated,
)
export type Calibration = typeof Calibration.Type

const ModelFields = Schema.Struct({
  name: NonEmpty,
  description: NonEmpty,
  /** How the numbers were derived: sources, assumptions, arithmetic (one entry a line). */
  derivation: Schema.optional(Schema.Array(Schema.String)),
  /** Absent or {status: "uncalibrated"} until a fit (`interleave sim fit`) attaches measured terms. */
  calibration: Schema.optional(Calibration),
  /** Parameter counts per branch (e.g. shared, visualPrompt, textEncoder). */
  parameters: Schema.Record({ key: Schema.String, value: Schema.NonNegativeInt }).pipe(
    Schema.filter((r) => Object.keys(r).length > 0 || "needs at least one branch"),
  ),
  /** Bytes per weight (4: FP32 master weights). */
  bytesPerParameter: Schema.optionalWith(PosFinite, { default: () => 4 }),
  /** Bytes per gradient element; defaults to bytesPerParameter. */
  gradientBytesPerParameter: Schema.optional(NonNegFinite),
  /** Optimizer state bytes per trained parameter (AdamW, FP32: two moments = 8). */
  optimizerBytesPerParameter: Schema.optionalWith(NonNegFinite, { default: () => 8 }),
  /** Fraction of the hardware's achievable FLOP rate this model's kernels reach (gathers, small ops). */
  flopEfficiency: Schema.optionalWith(UnitFraction, { default: () => 1 }),
  modalities: Schema.Struct({ visual: ModalityProfile, text: ModalityProfile }),
})

export const ModelProfile = ModelFields.pipe(
  Schema.filter((p) => {
    for (const m of ["visual", "text"] as const)
      for (const b of p.modalities[m].trains)
        if (!Object.hasOwn(p.parameters, b))
          return {
            path: ["modalities", m, "trains"],
            message: `names branch "${b}", which parameters does not have (has: ${Object.keys(p.parameters).join(", ")})`,
          }
    return true
  }),
)
export type ModelProfile = typeof ModelProfile.Type

export type ProfileKind = "hardware" | "models"

const describeIssue = (error: ParseResult.ParseError): string =>
  issueText(firstIssue(error, "invalid profile"))

const decoder = <A, I>(schema: Schema.Schema<A, I>) => {
  const decode = Schema.decodeUnknownEither(schema, { onExcessProperty: "error", errors: "first" })
  return (input: unknown, source: string): Either.Either<A, AdapterUnavailable> =>
    Either.mapLeft(
      decode(input),
      (e) => new AdapterUnavailable({ message: `${source}: ${describeIssue(e)}` }),
    )
}

/** Decodes an already-parsed hardware profile; `source` names the file in error messages. */
export const decodeHardware = decoder(HardwareProfile)
/** Decodes an already-parsed model profile; `source` names the file in error messages. */
export const decodeModel = decoder(ModelProfile)

/**
 * Hash of a decoded profile (defaults filled in, keys sorted): whitespace or key-order edits keep
 * it, any change of a value changes it. Recorded in the adapter description so replay can tell
 * whether the profile behind a recorded run has changed.
 */
export const profileHash = (profile: HardwareProfile | ModelProfile): string => hashJson(profile)

/** scenarios/, located from this module's own URL. */
export const scenariosDir: string = join(packageRoot, "scenarios")

const kindDir = (kind: ProfileKind): string => resolve(scenariosDir, kind)
const kindLabel = (kind: ProfileKind): string => (kind === "hardware" ? "hardware" : "model")

/** Names of the bundled profiles of a kind (file names without `.json`), sorted. */
export const bundledProfiles = (kind: ProfileKind): ReadonlyArray<string> => {
  try {
    return readdirSync(kindDir(kind))
      .filter((f) => f.endsWith(".json"))
      .map((f) => f.slice(0, -".json".length))
      .sort()
  } catch {
    return []
  }
}

/** A bare name -> the bundled file; a path -> itself, resolved against the cwd. */
export const resolveProfile = (
  kind: ProfileKind,
  nameOrPath: string,
): Either.Either<string, AdapterUnavailable> => {
  if (looksLikePath(nameOrPath)) {
    const file = resolve(nameOrPath)
    return existsSync(file)
      ? Either.right(file)
      : Either.left(new AdapterUnavailable({ message: `${kindLabel(kind)} profile file not found: ${file}` }))
  }
  const file = resolve(kindDir(kind), `${nameOrPath}.json`)
  if (nameOrPath.length > 0 && existsSync(file)) return Either.right(file)
  const known = bundledProfiles(kind)
  return Either.left(
    new AdapterUnavailable({
      message: `unknown ${kindLabel(kind)} profile "${nameOrPath}" (known: ${known.join(", ") || "none"}; or give a path to a .json file)`,
    }),
  )
}

export interface LoadedProfile<A> {
  readonly profile: A
  /** Absolute path of the file it was read from. */
  readonly file: string
  readonly hash: string
}

const loadWith =
  <A extends HardwareProfile | ModelProfile>(
    kind: ProfileKind,
    decode: (input: unknown, source: string) => Either.Either<A, AdapterUnavailable>,
  ) =>
  (nameOrPath: string): Effect.Effect<LoadedProfile<A>, AdapterUnavailable> =>
    Effect.gen(function* () {
      const file = yield* resolveProfile(kind, nameOrPath)
      const text = yield* Effect.try({
        // Bounded: a profile path that is a device or a pipe is refused, not read without end.
        try: () => decodeUtf8Text(readInputBytes(file, `${kindLabel(kind)} profile`), file),
        catch: (e) =>
          new AdapterUnavailable({
            message: e instanceof InputError ? e.message : `${file}: cannot read (${errnoText(e)})`,
          }),
      })
      // The shared reader: a position for a syntax error, and nesting too deep refused up front
      // (decoding a value nested 10^5 deep would overflow the stack).
      const json = yield* Either.match(parseJsonText(text), {
        onLeft: (reason) =>
          Effect.fail(new AdapterUnavailable({ message: `${file}: invalid JSON: ${reason}` })),
        onRight: (value) => Effect.succeed(value),
      })
      const profile = yield* decode(json, file)
      return { profile, file, hash: profileHash(profile) }
    })

/** Loads a hardware profile with its file and hash. */
export const loadHardwareProfile = loadWith("hardware", decodeHardware)
/** Loads a model profile with its file and hash. */
export const loadModelProfile = loadWith("models", decodeModel)

/** `loadHardware("t4")` or `loadHardware("./my-gpu.json")`. */
export const loadHardware = (nameOrPath: string): Effect.Effect<HardwareProfile, AdapterUnavailable> =>
  Effect.map(loadHardwareProfile(nameOrPath), (l) => l.profile)

/** `loadModel("trex2-tiny")` or `loadModel("./my-model.json")`. */
export const loadModel = (nameOrPath: string): Effect.Effect<ModelProfile, AdapterUnavailable> =>
  Effect.map(loadModelProfile(nameOrPath), (l) => l.profile)

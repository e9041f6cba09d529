/**
 * Hardware and model profiles for the sim adapter: JSON files decoded with Effect Schema.
 *
 * A bare name (`h100-sxm`) resolves to the bundled file under scenarios/hardware or
 * scenarios/models, found relative to this module (not the cwd), so the CLI works from any
 * directory. Anything that looks like a path is read as given. Bad input is an
 * `AdapterUnavailable` whose message names the file and the field.
 */
import { createHash } from "node:crypto"
import { existsSync, readdirSync, readFileSync } from "node:fs"
import { join, resolve } from "node:path"
import { Effect, Either, type ParseResult, Schema } from "effect"
import { firstIssue, issueText, looksLikePath, packageRoot } from "../../core/common/index.ts"
import { AdapterUnavailable } from "../../core/run/index.ts"

const NonEmpty = Schema.String.pipe(Schema.minLength(1, { message: () => "must be a non-empty string" }))
const PosFinite = Schema.Finite.pipe(Schema.positive({ message: () => "must be a finite number > 0" }))
const NonNegFinite = Schema.Finite.pipe(Schema.nonNegative({ message: () => "must be a finite number >= 0" }))
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
  /** Device memory capacity, bytes: a step whose working set exceeds it fails out-of-memory. */
  memoryBytes: PosFinite,
  /** Fixed cost of dispatching one kernel (launch + framework op overhead), microseconds. */
  kernelOverheadUs: NonNegFinite,
  /** Achievable fraction of peak FLOP/s and bandwidth (real kernels rarely reach the datasheet). */
  efficiency: Schema.optionalWith(
    Schema.Finite.pipe(
      Schema.greaterThan(0, { message: () => "must be a finite number in (0, 1]" }),
      Schema.lessThanOrEqualTo(1, { message: () => "must be a finite number in (0, 1]" }),
    ),
    { default: () => 1 },
  ),
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

export const ModalityProfile = Schema.Struct({
  /** Training FLOPs (forward + backward) per sample. */
  flopsPerSample: NonNegFinite,
  /** Training FLOPs per step that do not scale with the batch (e.g. encoding the batch's class names once). */
  fixedFlops: Schema.optionalWith(NonNegFinite, { default: () => 0 }),
  /** Activation bytes saved for backward, per sample. */
  activationBytesPerSample: NonNegFinite,
  /** Kernels dispatched by one forward + backward step. */
  kernelsPerStep: NonNegFinite,
  /** Extra time on a step whose predecessor was of the other modality (allocator, caches), microseconds. */
  switchUs: Schema.optionalWith(NonNegFinite, { default: () => 0 }),
  loss: LossCurve,
})
export type ModalityProfile = typeof ModalityProfile.Type

export const ModelProfile = Schema.Struct({
  name: NonEmpty,
  description: NonEmpty,
  /** Weights resident on the device. */
  parameterBytes: PosFinite,
  /** Gradient buffers (accumulated across micro-steps); defaults to parameterBytes. */
  gradientBytes: Schema.optional(NonNegFinite),
  /** Optimizer state (AdamW: two moments). */
  optimizerStateBytes: NonNegFinite,
  /** Kernels dispatched by one optimizer update. */
  updateKernels: Schema.optionalWith(NonNegFinite, { default: () => 0 }),
  modalities: Schema.Struct({ visual: ModalityProfile, text: ModalityProfile }),
})
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

/** JSON with keys sorted at every level, so the hash ignores key order and formatting. */
const canonicalJson = (value: unknown): string => {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`
  if (value !== null && typeof value === "object") {
    const entries = Object.keys(value)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`)
    return `{${entries.join(",")}}`
  }
  return JSON.stringify(value)
}

/**
 * Hash of a decoded profile (defaults filled in, keys sorted): whitespace or key-order edits keep
 * it, any change of a value changes it. Recorded in the adapter description so replay can tell
 * whether the profile behind a recorded run has changed.
 */
export const profileHash = (profile: HardwareProfile | ModelProfile): string =>
  createHash("sha256").update(canonicalJson(profile)).digest("hex").slice(0, 16)

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
        try: () => readFileSync(file, "utf8"),
        catch: (e) => new AdapterUnavailable({ message: `${file}: cannot read: ${String(e)}` }),
      })
      const json = yield* Effect.try({
        try: () => JSON.parse(text) as unknown,
        catch: (e) =>
          new AdapterUnavailable({ message: `${file}: invalid JSON: ${e instanceof Error ? e.message : e}` }),
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

/**
 * Fitting the sim to measurements of a real backend, and stating its error.
 *
 * The model fitted is the sim's cost model, linearised:
 *   mean step time of modality m (ms) = a_m + b_m * batch_m + s_m * f_m
 *     a_m: per-step fixed cost (kernel dispatch, and the optimizer update when every step updates)
 *     b_m: cost per sample (the roofline's compute or traffic slope, whichever binds)
 *     s_m: cost of a switch, f_m the fraction of m's steps that follow the other modality
 *          (1/ratio_m when both sides are > 0, else 0); fitted only when the configs vary the
 *          ratio enough to tell it from a_m, otherwise s_m = 0.
 *   memory of a step of modality m (bytes) = c + d_m * batch_m
 *     c: resident bytes (weights, gradients, optimizer state), d_m: activation bytes per sample.
 *     A config's peak is the step of the modality with the larger predicted memory and its
 *     trough the other (with a zero side both are the one modality). The assignment starts from
 *     a fit that needs none (peak + trough = 2c + d_v B_v + d_t B_t) and from "visual is the
 *     peak", each refitted until it stops changing; the start with the smaller residual wins.
 * Each is an ordinary linear least-squares problem, solved by QR (modified Gram-Schmidt on
 * unit-scaled columns); a column the data cannot identify is dropped (coefficient 0) with a
 * warning. Measurements are assumed taken without gradient accumulation (an update every step).
 */
import { Data, Either, Schema } from "effect"
import type { SweepResults } from "../../core/bench/index.ts"
import { firstIssue, issueText } from "../../core/common/index.ts"
import { MODALITIES, type Modality } from "../../core/schedule/index.ts"
import type { HardwareProfile, LossCurve, ModelProfile } from "./profiles.ts"

/**
 * One configuration measured on a real backend, without gradient accumulation: mean step time per
 * modality, and the largest and smallest per-step peak memory over the run.
 */
export interface MeasuredConfig {
  readonly id: string
  readonly batch: { readonly visual: number; readonly text: number }
  readonly ratio: { readonly visual: number; readonly text: number }
  readonly meanStepMs: { readonly visual?: number | undefined; readonly text?: number | undefined }
  readonly memory: { readonly peakBytes: number; readonly troughBytes: number }
}

const NonNeg = Schema.Finite.pipe(Schema.nonNegative({ message: () => "must be a finite number >= 0" }))
const PerModality = Schema.Struct({ visual: NonNeg, text: NonNeg })

/** Schema for measurement files (a JSON array of MeasuredConfig). */
export const MeasuredConfigSchema: Schema.Schema<MeasuredConfig> = Schema.Struct({
  id: Schema.String.pipe(Schema.minLength(1, { message: () => "must be a non-empty string" })),
  batch: PerModality,
  ratio: PerModality,
  meanStepMs: Schema.Struct({ visual: Schema.optional(NonNeg), text: Schema.optional(NonNeg) }),
  memory: Schema.Struct({ peakBytes: NonNeg, troughBytes: NonNeg }),
})

const decodeMeasuredEither = Schema.decodeUnknownEither(Schema.Array(MeasuredConfigSchema), {
  onExcessProperty: "error",
  errors: "first",
})

/** Decodes a parsed measurement file; the error names the source, the index and the field. */
export const decodeMeasured = (
  input: unknown,
  source = "measurements",
): Either.Either<ReadonlyArray<MeasuredConfig>, FitError> =>
  Either.mapLeft(
    decodeMeasuredEither(input),
    (e) => new FitError({ message: `${source}: ${issueText(firstIssue(e, "invalid measurements"))}` }),
  )

export type ConfigInput = Pick<MeasuredConfig, "batch" | "ratio">

export interface TimeFit {
  readonly fixedMs: number
  readonly perSampleMs: number
  readonly switchMs: number
  readonly switchFitted: boolean
  /** Observations used. */
  readonly n: number
}

export interface MemoryFit {
  readonly residentBytes: number
  readonly activationBytesPerSample: { readonly visual: number; readonly text: number }
  readonly n: number
}

export interface SimFit {
  /** Undefined for a modality no config measured. */
  readonly time: { readonly visual: TimeFit | undefined; readonly text: TimeFit | undefined }
  readonly memory: MemoryFit
  /** Configs fitted on. */
  readonly ids: ReadonlyArray<string>
  readonly warnings: ReadonlyArray<string>
  /** Profiles that make the sim reproduce `predict` (see `fittedProfiles`). */
  readonly hardware: HardwareProfile
  readonly model: ModelProfile
}

export interface Prediction {
  readonly meanStepMs: { readonly visual?: number | undefined; readonly text?: number | undefined }
  /** Mean over a cycle of the ratio, when every needed modality has a time fit. */
  readonly meanStepMsAll: number | undefined
  readonly memory: { readonly peakBytes: number; readonly troughBytes: number }
}

export class FitError extends Data.TaggedError("FitError")<{ readonly message: string }> {}

// ---------------------------------------------------------------------------------------------
// Linear least squares

export interface LeastSquares {
  readonly coef: ReadonlyArray<number>
  /** Indices of the columns dropped as not identifiable. */
  readonly dropped: ReadonlyArray<number>
}

/**
 * min ||X c - y||_2 by modified Gram-Schmidt QR, re-orthogonalised once. Columns are scaled to
 * unit norm first (bytes and batch sizes differ by ten orders of magnitude); a column whose
 * residual after projection is below `tol` of its norm is dropped and gets coefficient 0.
 */
export const leastSquares = (
  rows: ReadonlyArray<ReadonlyArray<number>>,
  y: ReadonlyArray<number>,
  tol = 1e-9,
): LeastSquares => {
  const n = rows.length
  const p = rows[0]?.length ?? 0
  const cols: Float64Array[] = []
  const scale: number[] = []
  for (let j = 0; j < p; j++) {
    const col = new Float64Array(n)
    let norm = 0
    for (let i = 0; i < n; i++) {
      col[i] = rows[i]![j]!
      norm += col[i]! * col[i]!
    }
    norm = Math.sqrt(norm)
    scale.push(norm)
    if (norm > 0) for (let i = 0; i < n; i++) col[i]! /= norm
    cols.push(col)
  }
  const q: Float64Array[] = []
  const kept: number[] = []
  const dropped: number[] = []
  const r: number[][] = [] // r[k][j] for kept k, column j
  for (let j = 0; j < p; j++) {
    const v = Float64Array.from(cols[j]!)
    const rj: number[] = new Array(q.length).fill(0)
    for (let pass = 0; pass < 2; pass++) {
      for (let k = 0; k < q.length; k++) {
        let d = 0
        for (let i = 0; i < n; i++) d += q[k]![i]! * v[i]!
        for (let i = 0; i < n; i++) v[i]! -= d * q[k]![i]!
        rj[k]! += d
      }
    }
    let nv = 0
    for (let i = 0; i < n; i++) nv += v[i]! * v[i]!
    nv = Math.sqrt(nv)
    if (scale[j] === 0 || nv < tol) {
      dropped.push(j)
      continue
    }
    for (let i = 0; i < n; i++) v[i]! /= nv
    rj.push(nv)
    r.push(rj)
    q.push(v)
    kept.push(j)
  }
  // R c = Q^T y over the kept columns; R is upper triangular in kept order.
  const m = kept.length
  const qty = q.map((qk) => qk.reduce((s, x, i) => s + x * y[i]!, 0))
  const c = new Array<number>(m).fill(0)
  for (let k = m - 1; k >= 0; k--) {
    let s = qty[k]!
    for (let l = k + 1; l < m; l++) s -= r[l]![k]! * c[l]!
    c[k] = s / r[k]![k]!
  }
  const coef = new Array<number>(p).fill(0)
  kept.forEach((j, k) => {
    coef[j] = c[k]! / scale[j]!
  })
  return { coef, dropped }
}

// ---------------------------------------------------------------------------------------------
// The fit

const other = (m: Modality): Modality => (m === "visual" ? "text" : "visual")

/** Fraction of m's steps that follow a step of the other modality, in steady state. */
export const switchFraction = (ratio: ConfigInput["ratio"], m: Modality): number =>
  ratio[m] > 0 && ratio[other(m)] > 0 ? 1 / ratio[m] : 0

const fitTime = (
  configs: ReadonlyArray<MeasuredConfig>,
  m: Modality,
  warnings: string[],
): TimeFit | undefined => {
  const used = configs.filter((c) => c.meanStepMs[m] !== undefined && c.ratio[m] > 0)
  if (used.length === 0) return undefined
  const rows = used.map((c) => [1, c.batch[m], switchFraction(c.ratio, m)])
  const y = used.map((c) => c.meanStepMs[m]!)
  const { coef, dropped } = leastSquares(rows, y)
  if (dropped.includes(1))
    warnings.push(`${m} step time: the configs use one ${m} batch size, so the per-sample cost is set to 0`)
  return {
    fixedMs: coef[0]!,
    perSampleMs: coef[1]!,
    switchMs: coef[2]!,
    switchFitted: !dropped.includes(2),
    n: used.length,
  }
}

/** Which modality a config's peak (index 0) and trough (index 1) come from. */
type Assignment = ReadonlyArray<readonly [Modality, Modality]>

const assign = (configs: ReadonlyArray<MeasuredConfig>, fit: MemoryFit | undefined): Assignment =>
  configs.map((c) => {
    if (c.ratio.text === 0) return ["visual", "visual"] as const
    if (c.ratio.visual === 0) return ["text", "text"] as const
    if (fit === undefined) return ["visual", "text"] as const
    const v = fit.activationBytesPerSample.visual * c.batch.visual
    const t = fit.activationBytesPerSample.text * c.batch.text
    return v >= t ? (["visual", "text"] as const) : (["text", "visual"] as const)
  })

const memRow = (c: MeasuredConfig, m: Modality): number[] => [
  1,
  m === "visual" ? c.batch.visual : 0,
  m === "text" ? c.batch.text : 0,
]

interface MemorySolve {
  readonly fit: MemoryFit
  readonly dropped: ReadonlyArray<number>
  readonly sse: number
}

const solveMemory = (configs: ReadonlyArray<MeasuredConfig>, a: Assignment): MemorySolve => {
  const rows: number[][] = []
  const y: number[] = []
  configs.forEach((c, i) => {
    const [peakM, troughM] = a[i]!
    rows.push(memRow(c, peakM))
    y.push(c.memory.peakBytes)
    rows.push(memRow(c, troughM))
    y.push(c.memory.troughBytes)
  })
  const ls = leastSquares(rows, y)
  const fit: MemoryFit = {
    residentBytes: ls.coef[0]!,
    activationBytesPerSample: { visual: ls.coef[1]!, text: ls.coef[2]! },
    n: rows.length,
  }
  const sse = rows.reduce(
    (s, r, i) => s + (r[0]! * ls.coef[0]! + r[1]! * ls.coef[1]! + r[2]! * ls.coef[2]! - y[i]!) ** 2,
    0,
  )
  return { fit, dropped: ls.dropped, sse }
}

/**
 * A starting point that needs no assignment: peak + trough = 2c + d_v B_v + d_t B_t for a config
 * with both modalities, and both equal c + d_m B_m with one. Undefined if it cannot identify all three.
 */
const assignmentFreeStart = (configs: ReadonlyArray<MeasuredConfig>): MemoryFit | undefined => {
  const rows: number[][] = []
  const y: number[] = []
  for (const c of configs) {
    const sum = c.memory.peakBytes + c.memory.troughBytes
    if (c.ratio.text === 0) rows.push(memRow(c, "visual").map((x) => 2 * x))
    else if (c.ratio.visual === 0) rows.push(memRow(c, "text").map((x) => 2 * x))
    else rows.push([2, c.batch.visual, c.batch.text])
    y.push(sum)
  }
  const ls = leastSquares(rows, y)
  if (ls.dropped.length > 0) return undefined
  return {
    residentBytes: ls.coef[0]!,
    activationBytesPerSample: { visual: ls.coef[1]!, text: ls.coef[2]! },
    n: rows.length,
  }
}

/** Refits until the peak/trough assignment stops changing. */
const refine = (configs: ReadonlyArray<MeasuredConfig>, start: MemoryFit | undefined): MemorySolve => {
  let a = assign(configs, start)
  let solved = solveMemory(configs, a)
  for (let iter = 0; iter < 20; iter++) {
    const next = assign(configs, solved.fit)
    if (next.every((x, i) => x[0] === a[i]![0])) break
    a = next
    solved = solveMemory(configs, a)
  }
  return solved
}

const fitMemory = (configs: ReadonlyArray<MeasuredConfig>, warnings: string[]): MemoryFit => {
  // Two starts (assignment-free, and "visual is the peak"); keep the better fixed point.
  const candidates = [refine(configs, assignmentFreeStart(configs)), refine(configs, undefined)]
  const best = candidates.reduce((b, c) => (c.sse < b.sse ? c : b))
  if (best.dropped.length > 0)
    warnings.push(
      `memory: cannot separate ${best.dropped.map((j) => ["resident bytes", "visual activations", "text activations"][j]).join(", ")} with these configs (set to 0)`,
    )
  return best.fit
}

const DEFAULT_LOSS: LossCurve = {
  components: { loss: { initial: 1, final: 0.1, halfLife: 500 } },
  noise: 0,
  transfer: 0,
}

export interface FitOptions {
  /** Device memory of the measured hardware (for out-of-memory); default 1 PB (never). */
  readonly memoryBytes?: number
  /** Loss curves to carry into the fitted model profile (the fit knows nothing of losses). */
  readonly loss?: { readonly visual: LossCurve; readonly text: LossCurve }
  readonly name?: string
}

/**
 * Profiles that make the sim reproduce a fit: 1 kernel = 1 us of fixed cost, 1 FLOP = 1e-12 s
 * (peak 1e12 FLOP/s, efficiency 1), and a bandwidth of 1e18 B/s so the traffic term and the
 * update's traffic are negligible (below 1e-5 ms at the byte counts of real models). Negative
 * fitted costs cannot be expressed and are clamped to 0 (with a warning).
 */
const fittedProfiles = (
  time: SimFit["time"],
  memory: MemoryFit,
  options: FitOptions,
  ids: ReadonlyArray<string>,
  warnings: string[],
): { hardware: HardwareProfile; model: ModelProfile } => {
  const name = options.name ?? "fitted"
  const nonNeg = (x: number, what: string) => {
    if (x >= 0) return x
    warnings.push(`${what} fitted as ${x}; the fitted profile uses 0`)
    return 0
  }
  const hardware: HardwareProfile = {
    name,
    description: `Fitted by fitSim from ${ids.length} measured configs (${ids.join(", ")}): 1 kernel = 1 us, 1e12 FLOP/s, traffic negligible.`,
    peakFlops: 1e12,
    memoryBandwidth: 1e18,
    memoryBytes: options.memoryBytes ?? 1e15,
    kernelOverheadUs: 1,
    efficiency: 1,
  }
  const modality = (m: Modality) => {
    const t = time[m]
    return {
      flopsPerSample: nonNeg((t?.perSampleMs ?? 0) * 1e9, `${m} per-sample time`),
      fixedFlops: 0,
      activationBytesPerSample: nonNeg(
        memory.activationBytesPerSample[m],
        `${m} activation bytes per sample`,
      ),
      kernelsPerStep: nonNeg((t?.fixedMs ?? 0) * 1e3, `${m} fixed step time`),
      switchUs: nonNeg((t?.switchMs ?? 0) * 1e3, `${m} switch time`),
      loss: options.loss?.[m] ?? DEFAULT_LOSS,
    }
  }
  const model: ModelProfile = {
    name,
    description: hardware.description,
    parameterBytes: Math.max(memory.residentBytes, 1),
    gradientBytes: 0,
    optimizerStateBytes: 0,
    updateKernels: 0,
    modalities: { visual: modality("visual"), text: modality("text") },
  }
  return { hardware, model }
}

const validate = (configs: ReadonlyArray<MeasuredConfig>): FitError | undefined => {
  if (configs.length === 0) return new FitError({ message: "no measured configs to fit" })
  const ids = new Set<string>()
  for (const c of configs) {
    if (ids.has(c.id)) return new FitError({ message: `duplicate config id "${c.id}"` })
    ids.add(c.id)
    const nums = [
      c.batch.visual,
      c.batch.text,
      c.ratio.visual,
      c.ratio.text,
      c.memory.peakBytes,
      c.memory.troughBytes,
      c.meanStepMs.visual ?? 0,
      c.meanStepMs.text ?? 0,
    ]
    if (!nums.every((x) => Number.isFinite(x) && x >= 0))
      return new FitError({ message: `config "${c.id}": every number must be finite and >= 0` })
    if (c.ratio.visual + c.ratio.text === 0)
      return new FitError({ message: `config "${c.id}": ratio visual and text cannot both be 0` })
  }
  return undefined
}

/** Fits time and memory by linear least squares (see the module comment for the model). */
export const fitSim = (
  measured: ReadonlyArray<MeasuredConfig>,
  options: FitOptions = {},
): Either.Either<SimFit, FitError> => {
  const bad = validate(measured)
  if (bad) return Either.left(bad)
  const warnings: string[] = []
  const time = { visual: fitTime(measured, "visual", warnings), text: fitTime(measured, "text", warnings) }
  const memory = fitMemory(measured, warnings)
  const ids = measured.map((c) => c.id)
  const profiles = fittedProfiles(time, memory, options, ids, warnings)
  return Either.right({ time, memory, ids, warnings, ...profiles })
}

/** Predicted mean step times and memory extremes of a config. */
export const predict = (fit: SimFit, config: ConfigInput): Prediction => {
  const meanStepMs: { visual?: number; text?: number } = {}
  let all = 0
  let complete = true
  for (const m of MODALITIES) {
    if (config.ratio[m] === 0) continue
    const t = fit.time[m]
    if (t === undefined) {
      complete = false
      continue
    }
    const ms = t.fixedMs + t.perSampleMs * config.batch[m] + t.switchMs * switchFraction(config.ratio, m)
    meanStepMs[m] = ms
    all += ms * config.ratio[m]
  }
  const bytes = (m: Modality) =>
    fit.memory.residentBytes + fit.memory.activationBytesPerSample[m] * config.batch[m]
  const present = MODALITIES.filter((m) => config.ratio[m] > 0).map(bytes)
  return {
    meanStepMs,
    meanStepMsAll: complete ? all / (config.ratio.visual + config.ratio.text) : undefined,
    memory: { peakBytes: Math.max(...present), troughBytes: Math.min(...present) },
  }
}

// ---------------------------------------------------------------------------------------------
// Cross-validation

/** Signed percentage error of a prediction: 100 * (predicted - measured) / measured. */
export const percentError = (predicted: number, measured: number): number =>
  (100 * (predicted - measured)) / measured

/** Mean absolute percentage error over (predicted, measured) pairs; undefined when empty. */
export const mape = (
  pairs: ReadonlyArray<{ readonly predicted: number; readonly measured: number }>,
): number | undefined =>
  pairs.length === 0
    ? undefined
    : pairs.reduce((s, p) => s + Math.abs(percentError(p.predicted, p.measured)), 0) / pairs.length

export interface HeldOutResult {
  readonly id: string
  readonly predicted: Prediction
  /** Signed % errors; a step-time entry is absent when the config did not measure it. */
  readonly errorPct: {
    readonly stepMsVisual?: number | undefined
    readonly stepMsText?: number | undefined
    readonly peakBytes: number
    readonly troughBytes: number
  }
}

export interface CrossValidation {
  readonly heldOut: ReadonlyArray<HeldOutResult>
  readonly mape: {
    readonly stepMs: number | undefined
    readonly memory: number | undefined
    readonly all: number | undefined
  }
  /** Number of fits made (1 with an explicit hold-out set, one per config for leave-one-out). */
  readonly fits: number
  readonly warnings: ReadonlyArray<string>
}

type Pair = { predicted: number; measured: number }

const evaluateHeldOut = (fit: SimFit, c: MeasuredConfig, time: Pair[], memory: Pair[]): HeldOutResult => {
  const predicted = predict(fit, c)
  const stepErr = (m: Modality): number | undefined => {
    const measured = c.meanStepMs[m]
    const p = predicted.meanStepMs[m]
    if (measured === undefined || p === undefined) return undefined
    time.push({ predicted: p, measured })
    return percentError(p, measured)
  }
  const stepMsVisual = stepErr("visual")
  const stepMsText = stepErr("text")
  memory.push({ predicted: predicted.memory.peakBytes, measured: c.memory.peakBytes })
  memory.push({ predicted: predicted.memory.troughBytes, measured: c.memory.troughBytes })
  return {
    id: c.id,
    predicted,
    errorPct: {
      stepMsVisual,
      stepMsText,
      peakBytes: percentError(predicted.memory.peakBytes, c.memory.peakBytes),
      troughBytes: percentError(predicted.memory.troughBytes, c.memory.troughBytes),
    },
  }
}

/**
 * Fits on all configs but the held-out ones and reports each held-out config's prediction error;
 * without `holdOut`, leave-one-out (one fit per config).
 */
export const crossValidate = (
  measured: ReadonlyArray<MeasuredConfig>,
  options: { readonly holdOut?: ReadonlyArray<string> | undefined } = {},
): Either.Either<CrossValidation, FitError> => {
  const bad = validate(measured)
  if (bad) return Either.left(bad)
  const folds: Array<{ train: MeasuredConfig[]; test: MeasuredConfig[] }> = []
  if (options.holdOut !== undefined) {
    const known = new Set(measured.map((c) => c.id))
    const missing = options.holdOut.filter((id) => !known.has(id))
    if (missing.length > 0)
      return Either.left(new FitError({ message: `unknown hold-out id ${missing.join(", ")}` }))
    const held = new Set(options.holdOut)
    folds.push({
      train: measured.filter((c) => !held.has(c.id)),
      test: measured.filter((c) => held.has(c.id)),
    })
  } else {
    for (const c of measured) folds.push({ train: measured.filter((x) => x !== c), test: [c] })
  }
  const time: Pair[] = []
  const memory: Pair[] = []
  const heldOut: HeldOutResult[] = []
  const warnings: string[] = []
  for (const fold of folds) {
    if (fold.train.length === 0) return Either.left(new FitError({ message: "nothing left to fit on" }))
    const fit = fitSim(fold.train)
    if (Either.isLeft(fit)) return Either.left(fit.left)
    for (const w of fit.right.warnings)
      warnings.push(`without ${fold.test.map((c) => c.id).join(", ")}: ${w}`)
    for (const c of fold.test) heldOut.push(evaluateHeldOut(fit.right, c, time, memory))
  }
  return Either.right({
    heldOut,
    mape: { stepMs: mape(time), memory: mape(memory), all: mape([...time, ...memory]) },
    fits: folds.length,
    warnings,
  })
}

/** The fit's input from a results file: configurations that completed and sampled memory. */
export const measuredFromResults = (results: SweepResults): MeasuredConfig[] =>
  results.configs.flatMap((c) =>
    c.aborted || !c.memory
      ? []
      : [
          {
            id: c.id,
            batch: c.batch,
            ratio: c.ratio,
            meanStepMs: { visual: c.latency.visual?.mean, text: c.latency.text?.mean },
            memory: { peakBytes: c.memory.peak, troughBytes: c.memory.trough },
          },
        ],
  )

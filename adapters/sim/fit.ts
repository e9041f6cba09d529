/**
 * Calibration: the sim's terms fitted to a measured sweep (any adapter's results.json), with the
 * error it makes on whole groups of configurations it was not fitted on.
 *
 * The model fitted is the sim's own (cost-model.ts), per modality m:
 *   mean step time (ms)   = fixedMs + perSampleMs * B_m + switchMs * f_m + updateMs * u_m
 *     f_m: fraction of m's measured steps that follow a step of the other modality (counted from
 *          the config's per-step series when it is complete, else 1/ratio_m in steady state);
 *     u_m: fraction that apply an update (1: sweeps run without gradient accumulation).
 *   memory of a step (B)  = fixedBytes + perSampleBytes * B_m + perSampleSquaredBytes * B_m^2
 *     for the sweep's memory figure; a per-step figure (in-step peak, allocated) is fitted on each
 *     modality's peak, a high-water figure (reserved, RSS, device) on each config's peak, which is
 *     the larger of its modalities' values (assigned from the priors, refitted until stable).
 * Each is a non-negative least-squares problem (Lawson-Hanson active set) on relative errors
 * (rows scaled by 1/measured, so it minimises what MAPE measures): no coefficient is clamped after
 * the fact. A term the configs cannot identify (its column is a combination of earlier ones: one
 * batch size, one switch fraction, an update on every step) is not fitted but held at its prior,
 * the base hardware x model profile's physical value, and reported by name with that value.
 * Duplicate configurations (same target, same batch of the modalities they run, same ratio) are
 * merged into their mean, with a warning naming them.
 */
import { Data, Either, Schema } from "effect"
import type { ConfigResult, SweepResults } from "../../core/bench/index.ts"
import { firstIssue, issueText, mape } from "../../core/common/index.ts"
import type { Modality } from "../../core/schedule/index.ts"
import { HIGH_WATER_FIGURES, MODALITY_LIST, memoryAt, physicalTerms } from "./cost-model.ts"
import type {
  Calibrated,
  FittedTerm,
  HardwareProfile,
  HeldOutMape,
  MemoryFigureName,
  MemoryTerms,
  ModelProfile,
  TimeTerms,
} from "./profiles.ts"

export class FitError extends Data.TaggedError("FitError")<{ readonly message: string }> {}

const other = (m: Modality): Modality => (m === "visual" ? "text" : "visual")

// ---------------------------------------------------------------------------------------------
// Least squares and non-negative least squares

export interface LeastSquares {
  readonly coef: ReadonlyArray<number>
  /** Indices of the columns dropped as not identifiable. */
  readonly dropped: ReadonlyArray<number>
}

const columnsOf = (rows: ReadonlyArray<ReadonlyArray<number>>, p: number): Float64Array[] => {
  const n = rows.length
  const cols: Float64Array[] = []
  for (let j = 0; j < p; j++) {
    const col = new Float64Array(n)
    for (let i = 0; i < n; i++) col[i] = rows[i]![j]!
    cols.push(col)
  }
  return cols
}

const dot = (a: ArrayLike<number>, b: ArrayLike<number>): number => {
  let s = 0
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!
  return s
}

/**
 * min ||X c - y||_2 by modified Gram-Schmidt QR (re-orthogonalised once) on unit-scaled columns
 * (bytes and batch sizes differ by ten orders of magnitude). Columns are taken in order; one whose
 * residual after projection on the kept ones is below `tol` of its norm is not identifiable: it is
 * dropped with coefficient 0, and so earlier columns take precedence.
 */
export const leastSquares = (
  rows: ReadonlyArray<ReadonlyArray<number>>,
  y: ReadonlyArray<number>,
  tol = 1e-9,
): LeastSquares => {
  const n = rows.length
  const p = rows[0]?.length ?? 0
  const cols = columnsOf(rows, p)
  const scale = cols.map((c) => Math.sqrt(dot(c, c)))
  const q: Float64Array[] = []
  const kept: number[] = []
  const dropped: number[] = []
  const r: number[][] = []
  for (let j = 0; j < p; j++) {
    if (scale[j] === 0) {
      dropped.push(j)
      continue
    }
    const v = cols[j]!.map((x) => x / scale[j]!)
    const rj: number[] = new Array(q.length).fill(0)
    for (let pass = 0; pass < 2; pass++)
      for (let k = 0; k < q.length; k++) {
        const d = dot(q[k]!, v)
        for (let i = 0; i < n; i++) v[i]! -= d * q[k]![i]!
        rj[k]! += d
      }
    const nv = Math.sqrt(dot(v, v))
    if (nv < tol) {
      dropped.push(j)
      continue
    }
    for (let i = 0; i < n; i++) v[i]! /= nv
    rj.push(nv)
    r.push(rj)
    q.push(v)
    kept.push(j)
  }
  const m = kept.length
  const qty = q.map((qk) => dot(qk, y))
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

/**
 * min ||X c - y||_2 subject to c >= 0, by Lawson and Hanson's active-set algorithm (Solving Least
 * Squares Problems, 1974, ch. 23). Columns must be identifiable (see `identifiable`).
 */
export const nnls = (
  rows: ReadonlyArray<ReadonlyArray<number>>,
  y: ReadonlyArray<number>,
  maxIter = 100,
): ReadonlyArray<number> => {
  const n = rows.length
  const p = rows[0]?.length ?? 0
  if (p === 0) return []
  const cols = columnsOf(rows, p)
  const scale = cols.map((c) => Math.sqrt(dot(c, c)) || 1)
  const a = cols.map((c, j) => c.map((x) => x / scale[j]!))
  const x = new Array<number>(p).fill(0)
  const passive = new Set<number>()
  const residual = () => {
    const res = Float64Array.from(y)
    for (let j = 0; j < p; j++) if (x[j] !== 0) for (let i = 0; i < n; i++) res[i]! -= a[j]![i]! * x[j]!
    return res
  }
  const solvePassive = (): number[] => {
    const idx = [...passive].sort((u, v) => u - v)
    const sub = rows.map((_, i) => idx.map((j) => a[j]![i]!))
    const ls = leastSquares(sub, y)
    const z = new Array<number>(p).fill(0)
    idx.forEach((j, k) => {
      z[j] = ls.coef[k]!
    })
    return z
  }
  const tol = 1e-12 * Math.max(1, Math.sqrt(dot(y, y)))
  for (let iter = 0; iter < maxIter; iter++) {
    const res = residual()
    let best = -1
    let bestW = tol
    for (let j = 0; j < p; j++) {
      if (passive.has(j)) continue
      const w = dot(a[j]!, res)
      if (w > bestW) {
        bestW = w
        best = j
      }
    }
    if (best < 0) break
    passive.add(best)
    for (let inner = 0; inner < 3 * p + 3; inner++) {
      const z = solvePassive()
      const bad = [...passive].filter((j) => z[j]! <= 0)
      if (bad.length === 0) {
        for (let j = 0; j < p; j++) x[j] = z[j]!
        break
      }
      let alpha = 1
      for (const j of bad) {
        const step = x[j]! - z[j]!
        alpha = Math.min(alpha, step > 0 ? x[j]! / step : 0)
      }
      for (let j = 0; j < p; j++) x[j] = x[j]! + alpha * (z[j]! - x[j]!)
      for (const j of [...passive])
        if (x[j]! <= 1e-15) {
          passive.delete(j)
          x[j] = 0
        }
    }
  }
  return x.map((v, j) => v / scale[j]!)
}

/** Which columns, taken in order, are identifiable (not a combination of earlier identifiable ones). */
export const identifiable = (rows: ReadonlyArray<ReadonlyArray<number>>, tol = 1e-9): boolean[] => {
  const p = rows[0]?.length ?? 0
  const { dropped } = leastSquares(
    rows,
    rows.map(() => 0),
    tol,
  )
  return Array.from({ length: p }, (_, j) => !dropped.includes(j))
}

// ---------------------------------------------------------------------------------------------
// Measurements

/** One configuration of a measured sweep, as the fit reads it. */
export interface MeasuredConfig {
  readonly id: string
  /** The results' config ids it stands for (more than one after merging duplicates). */
  readonly ids: ReadonlyArray<string>
  /** The sweep's batch pairs ("16/8", visual/text) of those configs, whatever modalities they run. */
  readonly sweepBatches: ReadonlyArray<string>
  readonly batch: { readonly visual: number; readonly text: number }
  readonly ratio: { readonly visual: number; readonly text: number }
  /** Measured steps of each modality. */
  readonly steps: { readonly visual: number; readonly text: number }
  readonly meanStepMs: { readonly visual?: number | undefined; readonly text?: number | undefined }
  /** Fraction of each modality's steps that follow a step of the other modality. */
  readonly switchFraction: { readonly visual: number; readonly text: number }
  /** The memory figure: each config's peak, and each modality's peak. Absent: no memory sampled. */
  readonly memory?:
    | {
        readonly peakBytes: number
        readonly byModality: { readonly visual?: number | undefined; readonly text?: number | undefined }
      }
    | undefined
}

const NonNeg = Schema.Finite.pipe(Schema.nonNegative({ message: () => "must be a finite number >= 0" }))
const Pair = Schema.Struct({ visual: NonNeg, text: NonNeg })
const OptionalPair = Schema.Struct({ visual: Schema.optional(NonNeg), text: Schema.optional(NonNeg) })

/** A file of measured configurations (what `measuredFromResults` gives, as JSON), from any source. */
export const MeasuredConfigs = Schema.Array(
  Schema.Struct({
    id: Schema.String.pipe(Schema.minLength(1, { message: () => "must be a non-empty string" })),
    ids: Schema.Array(Schema.String),
    sweepBatches: Schema.Array(Schema.String),
    batch: Pair,
    ratio: Pair,
    steps: Pair,
    meanStepMs: OptionalPair,
    switchFraction: Pair,
    memory: Schema.optional(Schema.Struct({ peakBytes: NonNeg, byModality: OptionalPair })),
  }),
).annotations({ identifier: "an array of measured configs" })

const decodeMeasuredEither = Schema.decodeUnknownEither(MeasuredConfigs, {
  onExcessProperty: "error",
  errors: "first",
})

/** Decodes a parsed measured-configs file; the error names the source and the field. */
export const decodeMeasured = (
  input: unknown,
  source = "measurements",
): Either.Either<ReadonlyArray<MeasuredConfig>, FitError> =>
  Either.mapLeft(
    decodeMeasuredEither(input),
    (e) => new FitError({ message: `${source}: ${issueText(firstIssue(e, "invalid measurements"))}` }),
  )

/** What a results file says about where its numbers come from. */
export interface MeasuredSweep {
  readonly configs: ReadonlyArray<MeasuredConfig>
  readonly sweep: string
  readonly machine: string
  readonly adapter: string
  readonly backend?: string | undefined
  readonly preset?: string | undefined
  readonly device?: string | undefined
  /** The memory figure the results carry (assumed "peakBytes" for results that do not name it). */
  readonly memoryFigure: MemoryFigureName | undefined
  readonly warnings: ReadonlyArray<string>
}

const present = (c: Pick<MeasuredConfig, "ratio">): Modality[] => MODALITY_LIST.filter((m) => c.ratio[m] > 0)

/** Steady-state share of m's steps that follow the other modality: 1/ratio_m when both sides run. */
export const steadySwitchFraction = (ratio: MeasuredConfig["ratio"], m: Modality): number =>
  ratio[m] > 0 && ratio[other(m)] > 0 ? 1 / ratio[m] : 0

const switchFractionOf = (c: ConfigResult, m: Modality): number => {
  const s = c.series
  if (s.modality.length === 0 || s.sourceSteps !== s.modality.length) return steadySwitchFraction(c.ratio, m)
  // The first measured step's predecessor (a warm-up step) is not in the series: counted as not after a switch.
  let n = 0
  let after = 0
  for (let i = 0; i < s.modality.length; i++) {
    if (s.modality[i] !== m) continue
    n++
    if (i > 0 && s.modality[i - 1] !== m) after++
  }
  return n === 0 ? steadySwitchFraction(c.ratio, m) : after / n
}

const FIGURES: ReadonlyArray<MemoryFigureName> = [
  "peakBytes",
  "allocatedBytes",
  "reservedBytes",
  "deviceBytes",
  "rssBytes",
]

/** The figure a v2 results config names (`memoryFigure.source`); v1 files do not. */
const figureOf = (c: ConfigResult): MemoryFigureName | undefined => {
  const source = (c as { readonly memoryFigure?: { readonly source?: unknown } }).memoryFigure?.source
  return FIGURES.find((f) => f === source)
}

const targetOf = (c: ConfigResult): string =>
  [c.adapter, c.backend, c.preset, c.hardware].filter((x) => x !== undefined).join("/")

/** Every completed configuration of a results file, as the fit reads it (any target, not merged). */
export const measuredFromResults = (results: SweepResults): MeasuredConfig[] =>
  results.configs.filter((c) => c.aborted === undefined).map(toMeasured)

const toMeasured = (c: ConfigResult): MeasuredConfig => ({
  id: c.id,
  ids: [c.id],
  sweepBatches: [`${c.batch.visual}/${c.batch.text}`],
  batch: c.batch,
  ratio: c.ratio,
  steps: { visual: c.latency.visual?.samplesCount ?? 0, text: c.latency.text?.samplesCount ?? 0 },
  meanStepMs: { visual: c.latency.visual?.mean, text: c.latency.text?.mean },
  switchFraction: { visual: switchFractionOf(c, "visual"), text: switchFractionOf(c, "text") },
  memory: c.memory
    ? {
        peakBytes: c.memory.peak,
        byModality: { visual: c.memory.byModality.visual?.peak, text: c.memory.byModality.text?.peak },
      }
    : undefined,
})

/**
 * The fit's input from a results file: the configurations of one target that completed, with
 * where they come from. With several targets, `target` (a substring of
 * "adapter/backend/preset/hardware") picks one.
 */
export const measureSweep = (
  results: SweepResults,
  options: { readonly target?: string | undefined } = {},
): Either.Either<MeasuredSweep, FitError> => {
  const warnings: string[] = []
  const done = results.configs.filter((c) => {
    if (c.aborted !== undefined) warnings.push(`config ${c.id} aborted (${c.aborted}): left out`)
    return c.aborted === undefined
  })
  const targets = [...new Set(done.map(targetOf))]
  const wanted = options.target
  const chosen = wanted === undefined ? targets : targets.filter((t) => t.includes(wanted))
  if (chosen.length === 0)
    return Either.left(
      new FitError({
        message:
          wanted === undefined
            ? "no completed configuration to fit"
            : `no target matches "${wanted}" (targets: ${targets.join("; ")})`,
      }),
    )
  if (chosen.length > 1)
    return Either.left(
      new FitError({
        message: `the results hold ${chosen.length} targets (${chosen.join("; ")}): a calibration is for one; pick it with --target`,
      }),
    )
  const configs = done.filter((c) => targetOf(c) === chosen[0])
  const figures = new Set(configs.filter((c) => c.memory !== undefined).map(figureOf))
  let memoryFigure: MemoryFigureName | undefined
  if (figures.size > 1)
    return Either.left(
      new FitError({ message: `the configs carry different memory figures (${[...figures].join(", ")})` }),
    )
  if (figures.size === 1) {
    memoryFigure = [...figures][0]
    if (memoryFigure === undefined) {
      memoryFigure = "peakBytes"
      warnings.push(
        "the results do not name their memory figure (results v1): taken as the in-step peak, the figure a sweep records first when every step has it",
      )
    }
  }
  const first = configs[0]!
  return Either.right({
    configs: configs.map(toMeasured),
    sweep: results.name,
    machine: `${results.machine.cpu}, ${results.machine.cores} cores, ${results.machine.platform}${results.machine.gpu ? `, ${results.machine.gpu}` : ""}`,
    adapter: first.adapter,
    backend: first.backend,
    preset: first.preset,
    device: first.hardware,
    memoryFigure,
    warnings,
  })
}

/** The batch of the modalities a config runs, as a key: "8/8", "16/8", "-/8" (text only). */
export const batchKey = (c: Pick<MeasuredConfig, "batch" | "ratio">): string =>
  MODALITY_LIST.map((m) => (c.ratio[m] > 0 ? String(c.batch[m]) : "-")).join("/")

const ratioKey = (r: MeasuredConfig["ratio"]): string => `${r.visual}:${r.text}`

const weightedMean = (xs: ReadonlyArray<readonly [number | undefined, number]>): number | undefined => {
  const ok = xs.filter((x): x is readonly [number, number] => x[0] !== undefined)
  const w = ok.reduce((s, [, n]) => s + n, 0)
  if (ok.length === 0) return undefined
  return w > 0 ? ok.reduce((s, [v, n]) => s + v * n, 0) / w : ok.reduce((s, [v]) => s + v, 0) / ok.length
}

/**
 * Merges configurations that are the same measurement (same ratio and the same batch of the
 * modalities they run: a text-only config does not depend on its visual batch): times are
 * averaged weighted by steps, memory averaged.
 */
export const mergeDuplicates = (
  configs: ReadonlyArray<MeasuredConfig>,
): { readonly configs: ReadonlyArray<MeasuredConfig>; readonly warnings: ReadonlyArray<string> } => {
  const groups = new Map<string, MeasuredConfig[]>()
  for (const c of configs) {
    const k = `${ratioKey(c.ratio)}|${batchKey(c)}`
    groups.set(k, [...(groups.get(k) ?? []), c])
  }
  const warnings: string[] = []
  const out: MeasuredConfig[] = []
  for (const g of groups.values()) {
    if (g.length === 1) {
      out.push(g[0]!)
      continue
    }
    const first = g[0]!
    const batch = {
      visual: first.ratio.visual > 0 ? first.batch.visual : 0,
      text: first.ratio.text > 0 ? first.batch.text : 0,
    }
    // How far the repeated measurements disagree: the sweep's own noise floor.
    const spread = present(first).flatMap((m) => {
      const ys = g.flatMap((c) => (c.meanStepMs[m] !== undefined ? [c.meanStepMs[m]!] : []))
      return ys.length > 1 ? [`${m} ${(100 * (Math.max(...ys) / Math.min(...ys) - 1)).toFixed(1)}%`] : []
    })
    warnings.push(
      `merged duplicate configs ${g.map((c) => c.id).join(", ")} (same target, ratio ${ratioKey(first.ratio)}, batch ${batchKey(first)} of the modalities they run): averaged${spread.length > 0 ? `; their mean step times differ by ${spread.join(", ")} (the sweep's own repeatability)` : ""}`,
    )
    const mem = g.every((c) => c.memory !== undefined)
      ? {
          peakBytes: g.reduce((s, c) => s + c.memory!.peakBytes, 0) / g.length,
          byModality: {
            visual: weightedMean(g.map((c) => [c.memory!.byModality.visual, 1] as const)),
            text: weightedMean(g.map((c) => [c.memory!.byModality.text, 1] as const)),
          },
        }
      : undefined
    out.push({
      id: g.map((c) => c.id).join("+"),
      ids: g.flatMap((c) => c.ids),
      sweepBatches: [...new Set(g.flatMap((c) => c.sweepBatches))],
      batch,
      ratio: first.ratio,
      steps: {
        visual: g.reduce((s, c) => s + c.steps.visual, 0),
        text: g.reduce((s, c) => s + c.steps.text, 0),
      },
      meanStepMs: {
        visual: weightedMean(g.map((c) => [c.meanStepMs.visual, c.steps.visual] as const)),
        text: weightedMean(g.map((c) => [c.meanStepMs.text, c.steps.text] as const)),
      },
      switchFraction: {
        visual: weightedMean(g.map((c) => [c.switchFraction.visual, c.steps.visual] as const)) ?? 0,
        text: weightedMean(g.map((c) => [c.switchFraction.text, c.steps.text] as const)) ?? 0,
      },
      memory: mem,
    })
  }
  return { configs: out, warnings }
}

// ---------------------------------------------------------------------------------------------
// Hold-out groups

export interface HoldOutGroup {
  readonly label: string
  readonly matches: (c: MeasuredConfig) => boolean
}

const parseRatio = (s: string): { visual: number; text: number } | undefined => {
  const m = /^(\d+):(\d+)$/.exec(s.trim())
  return m ? { visual: Number(m[1]), text: Number(m[2]) } : undefined
}

/**
 * Hold-out groups from the command line; `;` separates groups, each one of:
 *   batch=N        configs in which a modality they run has batch N
 *   batch=V/T      configs the sweep ran at batch V/T (a merged duplicate: if any of its runs was)
 *   ratio=A:B,C:D  configs with one of these ratios
 *   text-only, visual-only
 *   ID,ID,...      these config ids (one group)
 */
export const parseHoldOut = (
  text: string,
  configs: ReadonlyArray<MeasuredConfig>,
): Either.Either<ReadonlyArray<HoldOutGroup>, FitError> => {
  const groups: HoldOutGroup[] = []
  for (const raw of text.split(";")) {
    const spec = raw.trim()
    if (spec.length === 0) continue
    const bad = (why: string) =>
      Either.left(
        new FitError({
          message: `--hold-out ${JSON.stringify(spec)}: ${why} (give batch=N, batch=V/T, ratio=A:B[,C:D], text-only, visual-only or config ids; separate groups with ";")`,
        }),
      )
    let g: HoldOutGroup
    if (spec === "text-only" || spec === "visual-only") {
      const m: Modality = spec === "text-only" ? "text" : "visual"
      g = { label: spec, matches: (c) => c.ratio[m] > 0 && c.ratio[other(m)] === 0 }
    } else if (spec.startsWith("batch=")) {
      const v = spec.slice("batch=".length)
      if (/^\d+$/.test(v)) {
        const b = Number(v)
        g = { label: `batch ${b}`, matches: (c) => present(c).some((m) => c.batch[m] === b) }
      } else if (/^\d+\/\d+$/.test(v)) g = { label: `batch ${v}`, matches: (c) => c.sweepBatches.includes(v) }
      else return bad("batch= wants N or V/T")
    } else if (spec.startsWith("ratio=")) {
      const rs = spec.slice("ratio=".length).split(",").map(parseRatio)
      if (rs.length === 0 || rs.some((r) => r === undefined)) return bad("ratio= wants A:B[,C:D...]")
      const keys = new Set(rs.map((r) => ratioKey(r!)))
      g = { label: `ratio ${[...keys].join(", ")}`, matches: (c) => keys.has(ratioKey(c.ratio)) }
    } else {
      const ids = spec.split(",").map((x) => x.trim())
      const known = new Set(configs.flatMap((c) => [c.id, ...c.ids]))
      const missing = ids.filter((id) => !known.has(id))
      if (missing.length > 0) return bad(`unknown config id ${missing.join(", ")}`)
      const set = new Set(ids)
      g = { label: ids.join(", "), matches: (c) => set.has(c.id) || c.ids.some((id) => set.has(id)) }
    }
    if (!configs.some(g.matches)) return bad("matches no configuration")
    if (configs.every(g.matches)) return bad("holds out every configuration, leaving nothing to fit on")
    groups.push(g)
  }
  if (groups.length === 0) return Either.left(new FitError({ message: "--hold-out: no group given" }))
  return Either.right(groups)
}

/**
 * Leave-one-group-out over the batch sizes: one group per batch pair the sweep ran. A merged
 * duplicate (a text-only config run at two visual batches) is held out with every group it was
 * run in, so it never helps predict itself.
 */
export const batchGroups = (configs: ReadonlyArray<MeasuredConfig>): ReadonlyArray<HoldOutGroup> =>
  [...new Set(configs.flatMap((c) => c.sweepBatches))].map((k) => ({
    label: `batch ${k}`,
    matches: (c) => c.sweepBatches.includes(k),
  }))

// ---------------------------------------------------------------------------------------------
// The fit

export interface FitPriors {
  readonly time: Readonly<Record<Modality, TimeTerms>>
  readonly memory: Readonly<Record<Modality, MemoryTerms>>
  /** Physical per-sample time of each modality, to carry a fitted efficiency to the other. */
  readonly physicalPerSampleMs: Readonly<Record<Modality, number>>
  readonly source: string
}

/** Priors from the base profiles' physical terms. */
export const priorsFrom = (hardware: HardwareProfile, model: ModelProfile): FitPriors => {
  const t = { visual: physicalTerms(hardware, model, "visual"), text: physicalTerms(hardware, model, "text") }
  return {
    time: { visual: t.visual.time, text: t.text.time },
    memory: { visual: t.visual.peak, text: t.text.peak },
    physicalPerSampleMs: { visual: t.visual.time.perSampleMs, text: t.text.time.perSampleMs },
    source: `${hardware.name} x ${model.name}`,
  }
}

interface TermSpec {
  readonly key: string
  readonly unit: "ms" | "bytes"
  readonly column: (c: MeasuredConfig) => number
  readonly prior: number
  readonly priorNote: string
}

interface LinearFit {
  readonly values: ReadonlyArray<number>
  readonly terms: ReadonlyArray<FittedTerm>
  /** Observations that the terms held at priors alone already exceed. */
  readonly overshoot: number
  readonly n: number
}

/** Identifies, holds the rest at their priors, and solves the NNLS on relative errors. */
const fitTerms = (
  prefix: string,
  specs: ReadonlyArray<TermSpec>,
  obs: ReadonlyArray<{ readonly config: MeasuredConfig; readonly y: number }>,
): LinearFit => {
  const rows = obs.map((o) => specs.map((s) => s.column(o.config)))
  const ok = obs.length > 0 ? identifiable(rows) : specs.map(() => false)
  const fixed = specs.map((s, j) => (ok[j] ? 0 : s.prior))
  const idx = specs.flatMap((_, j) => (ok[j] ? [j] : []))
  const wRows = obs.map((o, i) => idx.map((j) => rows[i]![j]! / o.y))
  const held = obs.map((_, i) => specs.reduce((s, _, j) => s + fixed[j]! * rows[i]![j]!, 0))
  const wY = obs.map((o, i) => (o.y - held[i]!) / o.y)
  const sol = idx.length > 0 ? nnls(wRows, wY) : []
  const values = specs.map((_, j) => (ok[j] ? sol[idx.indexOf(j)]! : fixed[j]!))
  const terms = specs.map((s, j): FittedTerm => {
    const term = `${prefix}.${s.key}`
    if (!ok[j]) return { term, value: values[j]!, unit: s.unit, status: "prior", note: s.priorNote }
    if (values[j] === 0)
      return {
        term,
        value: 0,
        unit: s.unit,
        status: "fitted-at-bound",
        note: "the data pull it below 0; held at 0 by the non-negative fit",
      }
    return { term, value: values[j]!, unit: s.unit, status: "fitted" }
  })
  return { values, terms, overshoot: obs.filter((o, i) => held[i]! > o.y).length, n: obs.length }
}

const whyNot = {
  fixed: "no configuration measured this modality",
  perSample: (m: Modality) =>
    `every configuration runs the same ${m} batch, so the per-sample cost cannot be told from the fixed cost`,
  switch: (m: Modality) =>
    `every configuration has the same share of ${m} steps after a switch, so the switch cost cannot be told from the fixed cost`,
  update:
    "every measured step applied an update (no gradient accumulation), so the update cost cannot be told from the fixed cost",
  squared: (m: Modality) =>
    `fewer than three ${m} batch sizes: the B^2 term cannot be told from the linear ones`,
}

const timeSpecs = (m: Modality, priors: FitPriors, perSamplePrior?: { value: number; note: string }) => {
  const p = priors.time[m]
  const at = (what: string) => `held at the prior from ${priors.source}: ${what}`
  return [
    { key: "fixedMs", unit: "ms", column: () => 1, prior: p.fixedMs, priorNote: at(whyNot.fixed) },
    {
      key: "perSampleMs",
      unit: "ms",
      column: (c) => c.batch[m],
      prior: perSamplePrior?.value ?? p.perSampleMs,
      priorNote: perSamplePrior?.note ?? at(whyNot.perSample(m)),
    },
    {
      key: "switchMs",
      unit: "ms",
      column: (c) => c.switchFraction[m],
      prior: p.switchMs,
      priorNote: at(whyNot.switch(m)),
    },
    { key: "updateMs", unit: "ms", column: () => 1, prior: p.updateMs, priorNote: at(whyNot.update) },
  ] satisfies ReadonlyArray<TermSpec>
}

const memorySpecs = (m: Modality, priors: FitPriors): ReadonlyArray<TermSpec> => {
  const p = priors.memory[m]
  const at = (what: string) => `held at the prior from ${priors.source}: ${what}`
  return [
    { key: "fixedBytes", unit: "bytes", column: () => 1, prior: p.fixedBytes, priorNote: at(whyNot.fixed) },
    {
      key: "perSampleBytes",
      unit: "bytes",
      column: (c) => c.batch[m],
      prior: p.perSampleBytes,
      priorNote: at(whyNot.perSample(m)),
    },
    {
      key: "perSampleSquaredBytes",
      unit: "bytes",
      column: (c) => c.batch[m] ** 2,
      prior: p.perSampleSquaredBytes,
      priorNote: at(whyNot.squared(m)),
    },
  ]
}

export interface SimFit {
  readonly time: { readonly visual?: TimeTerms | undefined; readonly text?: TimeTerms | undefined }
  readonly memory?:
    | {
        readonly figure: MemoryFigureName
        readonly visual?: MemoryTerms | undefined
        readonly text?: MemoryTerms | undefined
      }
    | undefined
  readonly terms: ReadonlyArray<FittedTerm>
  /** Configs fitted on. */
  readonly ids: ReadonlyArray<string>
  readonly warnings: ReadonlyArray<string>
}

const toTime = (v: ReadonlyArray<number>): TimeTerms => ({
  fixedMs: v[0]!,
  perSampleMs: v[1]!,
  switchMs: v[2]!,
  updateMs: v[3]!,
})
const toMemory = (v: ReadonlyArray<number>): MemoryTerms => ({
  fixedBytes: v[0]!,
  perSampleBytes: v[1]!,
  perSampleSquaredBytes: v[2]!,
})

/** Fits every term it can on `configs`; the others are held at `priors`. */
export const fitSim = (
  configs: ReadonlyArray<MeasuredConfig>,
  priors: FitPriors,
  memoryFigure: MemoryFigureName | undefined,
): SimFit => {
  // Time, per modality; a per-sample cost the configs cannot identify carries the other
  // modality's fitted-to-physical ratio (the measured efficiency) onto its physical value.
  const timeObs = (m: Modality) =>
    configs.flatMap((c) => {
      const y = c.meanStepMs[m]
      return c.ratio[m] > 0 && y !== undefined && y > 0 ? [{ config: c, y }] : []
    })
  const first = {
    visual: fitTerms("time.visual", timeSpecs("visual", priors), timeObs("visual")),
    text: fitTerms("time.text", timeSpecs("text", priors), timeObs("text")),
  }
  const time: Partial<Record<Modality, LinearFit>> = {}
  for (const m of MODALITY_LIST) {
    if (timeObs(m).length === 0) continue
    const mine = first[m].terms[1]!
    const theirs = first[other(m)].terms[1]!
    const phys = priors.physicalPerSampleMs
    if (
      mine.status === "prior" &&
      theirs.status === "fitted" &&
      phys[other(m)] > 0 &&
      timeObs(other(m)).length > 0
    ) {
      const k = theirs.value / phys[other(m)]
      time[m] = fitTerms(
        "time." + m,
        timeSpecs(m, priors, {
          value: phys[m] * k,
          note: `${whyNot.perSample(m)}; held at the physical ${m} per-sample cost (${phys[m].toPrecision(3)} ms) times the ${other(m)} fitted-to-physical ratio ${k.toPrecision(3)}`,
        }),
        timeObs(m),
      )
    } else time[m] = first[m]
  }
  // Memory
  let memory: SimFit["memory"]
  const memTerms: FittedTerm[] = []
  const fits: Partial<Record<Modality, LinearFit>> = {}
  const memFits = fits
  if (memoryFigure !== undefined) {
    const withMem = configs.filter((c) => c.memory !== undefined)
    if (HIGH_WATER_FIGURES.includes(memoryFigure)) {
      // Each config's peak is its heavier modality's value; assign from the priors, refit until stable.
      let current = priors.memory
      let assign = withMem.map((c) => heavier(c, current))
      for (let iter = 0; iter < 10; iter++) {
        for (const m of MODALITY_LIST) {
          const obs = withMem.flatMap((c, i) =>
            assign[i] === m ? [{ config: c, y: c.memory!.peakBytes }] : [],
          )
          fits[m] = obs.length > 0 ? fitTerms(`memory.${m}`, memorySpecs(m, priors), obs) : undefined
        }
        current = {
          visual: fits.visual ? toMemory(fits.visual.values) : priors.memory.visual,
          text: fits.text ? toMemory(fits.text.values) : priors.memory.text,
        }
        const next = withMem.map((c) => heavier(c, current))
        if (next.every((m, i) => m === assign[i])) break
        assign = next
      }
    } else
      for (const m of MODALITY_LIST) {
        const obs = withMem.flatMap((c) => {
          const y = c.memory!.byModality[m]
          return c.ratio[m] > 0 && y !== undefined && y > 0 ? [{ config: c, y }] : []
        })
        if (obs.length > 0) fits[m] = fitTerms(`memory.${m}`, memorySpecs(m, priors), obs)
      }
    memory = {
      figure: memoryFigure,
      visual: fits.visual ? toMemory(fits.visual.values) : undefined,
      text: fits.text ? toMemory(fits.text.values) : undefined,
    }
    for (const m of MODALITY_LIST) memTerms.push(...(fits[m]?.terms ?? []))
  }
  const warnings: string[] = []
  const linear: Array<[string, LinearFit | undefined]> = [
    ["visual step time", time.visual],
    ["text step time", time.text],
    ["visual memory", memFits.visual],
    ["text memory", memFits.text],
  ]
  for (const [what, f] of linear)
    if (f !== undefined && f.overshoot > 0)
      warnings.push(
        `${what}: the terms held at their priors alone exceed the measurement in ${f.overshoot} of ${f.n} configs, so the fitted terms are pushed to 0: the base profiles (${priors.source}) do not describe this sweep; name the right ones with --hardware and --model`,
      )
  return {
    warnings,
    time: {
      visual: time.visual ? toTime(time.visual.values) : undefined,
      text: time.text ? toTime(time.text.values) : undefined,
    },
    memory,
    terms: [...(time.visual?.terms ?? []), ...(time.text?.terms ?? []), ...memTerms],
    ids: configs.map((c) => c.id),
  }
}

const heavier = (c: MeasuredConfig, terms: Readonly<Record<Modality, MemoryTerms>>): Modality => {
  const ms = present(c)
  if (ms.length === 1) return ms[0]!
  return memoryAt(terms.visual, c.batch.visual) >= memoryAt(terms.text, c.batch.text) ? "visual" : "text"
}

export interface Prediction {
  readonly meanStepMs: { readonly visual?: number | undefined; readonly text?: number | undefined }
  /** The config's peak of the fitted memory figure: the larger of its modalities' values. */
  readonly peakBytes: number | undefined
}

/** A config's mean step times and memory peak under a fit (a modality the fit lacks: undefined). */
export const predict = (fit: SimFit, c: MeasuredConfig): Prediction => {
  const meanStepMs: { visual?: number; text?: number } = {}
  for (const m of present(c)) {
    const t = fit.time[m]
    if (t !== undefined)
      meanStepMs[m] = t.fixedMs + t.perSampleMs * c.batch[m] + t.switchMs * c.switchFraction[m] + t.updateMs
  }
  const mem = fit.memory
  const values = mem ? present(c).map((m) => (mem[m] ? memoryAt(mem[m]!, c.batch[m]) : undefined)) : []
  const peakBytes =
    values.length > 0 && values.every((v) => v !== undefined) ? Math.max(...(values as number[])) : undefined
  return { meanStepMs, peakBytes }
}

// ---------------------------------------------------------------------------------------------
// Held-out error

/** Signed percentage error: 100 * (predicted - measured) / measured. */
export const percentError = (predicted: number, measured: number): number =>
  (100 * (predicted - measured)) / measured

type Pair = { readonly predicted: number; readonly measured: number }

/** Mean absolute percentage error (core/common's `mape`); null when there is no pair. */
const mapeOf = (pairs: ReadonlyArray<Pair>): number | null =>
  pairs.length === 0
    ? null
    : mape(
        pairs.map((p) => p.measured),
        pairs.map((p) => p.predicted),
      )

export interface HeldOutConfig {
  readonly id: string
  readonly group: string
  readonly measured: MeasuredConfig
  readonly predicted: Prediction
  readonly errorPct: {
    readonly visualStepMs: number | null
    readonly textStepMs: number | null
    readonly peakBytes: number | null
  }
}

export interface HeldOutGroupResult {
  readonly group: string
  readonly configs: ReadonlyArray<string>
  readonly mapePct: HeldOutMape
  /** Terms the fit without this group could not identify (held at their priors). */
  readonly priorTerms: ReadonlyArray<string>
}

export interface CrossValidation {
  readonly method: string
  readonly groups: ReadonlyArray<HeldOutGroupResult>
  readonly heldOut: ReadonlyArray<HeldOutConfig>
  /** Over every held-out config of every group. */
  readonly mapePct: HeldOutMape
}

const pairsOf = (hs: ReadonlyArray<HeldOutConfig>) => {
  const time = (m: Modality) =>
    hs.flatMap((h) => {
      const y = h.measured.meanStepMs[m]
      const p = h.predicted.meanStepMs[m]
      return y !== undefined && p !== undefined && h.measured.ratio[m] > 0
        ? [{ predicted: p, measured: y }]
        : []
    })
  const mem = hs.flatMap((h) =>
    h.measured.memory && h.predicted.peakBytes !== undefined
      ? [{ predicted: h.predicted.peakBytes, measured: h.measured.memory.peakBytes }]
      : [],
  )
  return { visualStepMs: mapeOf(time("visual")), textStepMs: mapeOf(time("text")), peakBytes: mapeOf(mem) }
}

/** One fit per group on every config outside it; errors on the group's configs. */
export const crossValidate = (
  configs: ReadonlyArray<MeasuredConfig>,
  groups: ReadonlyArray<HoldOutGroup>,
  priors: FitPriors,
  memoryFigure: MemoryFigureName | undefined,
  method: string,
): Either.Either<CrossValidation, FitError> => {
  const heldOut: HeldOutConfig[] = []
  const results: HeldOutGroupResult[] = []
  for (const g of groups) {
    const test = configs.filter(g.matches)
    const train = configs.filter((c) => !g.matches(c))
    if (test.length === 0)
      return Either.left(new FitError({ message: `hold-out group ${g.label} matches no configuration` }))
    if (train.length === 0)
      return Either.left(new FitError({ message: `hold-out group ${g.label} leaves nothing to fit on` }))
    const fit = fitSim(train, priors, memoryFigure)
    const mine: HeldOutConfig[] = test.map((c) => {
      const p = predict(fit, c)
      const err = (pred: number | undefined, meas: number | undefined) =>
        pred === undefined || meas === undefined ? null : percentError(pred, meas)
      return {
        id: c.id,
        group: g.label,
        measured: c,
        predicted: p,
        errorPct: {
          visualStepMs: c.ratio.visual > 0 ? err(p.meanStepMs.visual, c.meanStepMs.visual) : null,
          textStepMs: c.ratio.text > 0 ? err(p.meanStepMs.text, c.meanStepMs.text) : null,
          peakBytes: err(p.peakBytes, c.memory?.peakBytes),
        },
      }
    })
    heldOut.push(...mine)
    results.push({
      group: g.label,
      configs: test.map((c) => c.id),
      mapePct: pairsOf(mine),
      priorTerms: fit.terms.filter((t) => t.status === "prior").map((t) => t.term),
    })
  }
  return Either.right({ method, groups: results, heldOut, mapePct: pairsOf(heldOut) })
}

// ---------------------------------------------------------------------------------------------
// The calibration flow: results -> calibrated model profile

export interface CalibrateInput {
  readonly results: SweepResults
  /** Path of the results file as given, and the sha256 of its bytes. */
  readonly file: string
  readonly sha256: string
  /** The base profiles: their physical terms are the priors, the model's other fields are kept. */
  readonly hardware: HardwareProfile
  readonly model: ModelProfile
  /** Hold-out groups (parseHoldOut syntax); default leave-one-group-out over batch sizes. */
  readonly holdOut?: string | undefined
  readonly target?: string | undefined
  /** Name of the written profile; default `${model.name}-${sweep}`. */
  readonly name?: string | undefined
  /** ISO time recorded as fittedAt. */
  readonly now: string
}

export interface CalibrateOutput {
  readonly profile: ModelProfile
  readonly calibration: Calibrated
  readonly fit: SimFit
  readonly crossValidation: CrossValidation
  readonly configs: ReadonlyArray<MeasuredConfig>
  readonly sweep: MeasuredSweep
}

export const calibrate = (input: CalibrateInput): Either.Either<CalibrateOutput, FitError> =>
  Either.gen(function* () {
    const sweep = yield* measureSweep(input.results, { target: input.target })
    const merged = mergeDuplicates(sweep.configs)
    const configs = merged.configs
    const priors = priorsFrom(input.hardware, input.model)
    const groups =
      input.holdOut === undefined ? batchGroups(configs) : yield* parseHoldOut(input.holdOut, configs)
    if (groups.length < 2 && input.holdOut === undefined)
      return yield* Either.left(
        new FitError({
          message: `the sweep ran one batch pair (${configs[0]!.sweepBatches.join(", ")}): leave-one-group-out over batch sizes needs two; give --hold-out`,
        }),
      )
    const method =
      input.holdOut === undefined
        ? `leave-one-group-out over batch sizes (${groups.length} groups)`
        : `held out: ${groups.map((g) => g.label).join("; ")}`
    const cv = yield* crossValidate(configs, groups, priors, sweep.memoryFigure, method)
    const fit = fitSim(configs, priors, sweep.memoryFigure)
    const calibration: Calibrated = {
      status: "calibrated",
      hardware: input.hardware.name,
      fittedAt: input.now,
      method:
        "non-negative least squares (Lawson-Hanson active set) on relative errors of each config's mean step time per modality and memory figure; terms the configs cannot identify held at the physical priors of the base profiles",
      source: {
        file: input.file,
        sha256: input.sha256,
        sweep: sweep.sweep,
        machine: sweep.machine,
        adapter: sweep.adapter,
        ...(sweep.backend !== undefined ? { backend: sweep.backend } : {}),
        ...(sweep.preset !== undefined ? { preset: sweep.preset } : {}),
        ...(sweep.device !== undefined ? { device: sweep.device } : {}),
        configs: configs.length,
      },
      time: {
        ...(fit.time.visual ? { visual: fit.time.visual } : {}),
        ...(fit.time.text ? { text: fit.time.text } : {}),
      },
      ...(fit.memory
        ? {
            memory: {
              figure: fit.memory.figure,
              ...(fit.memory.visual ? { visual: fit.memory.visual } : {}),
              ...(fit.memory.text ? { text: fit.memory.text } : {}),
            },
          }
        : {}),
      terms: fit.terms,
      heldOut: {
        method: cv.method,
        groups: cv.groups.map((g) => ({ group: g.group, configs: g.configs, mapePct: g.mapePct })),
        mapePct: cv.mapePct,
      },
      warnings: [...sweep.warnings, ...merged.warnings, ...fit.warnings],
    }
    const name = input.name ?? `${input.model.name}-${sweep.sweep}`
    const profile: ModelProfile = {
      ...input.model,
      name,
      description: `${input.model.name} calibrated on ${input.hardware.name} from the ${sweep.sweep} sweep (${sweep.adapter}${sweep.backend ? `/${sweep.backend}` : ""}, ${sweep.machine}). Base profile: ${input.model.description}`,
      calibration,
    }
    return { profile, calibration, fit, crossValidation: cv, configs, sweep }
  })

/**
 * fast-check arbitraries for valid ScheduleSpecs, shared by the property tests.
 *
 * Specs are generated as scenario JSON and decoded with `decodeSpec`, so every one is valid by
 * construction of the decoder, not by our say-so. Values that depend on the run's length
 * (warm-up steps, milestones) are drawn as fractions and mapped, never chained: that keeps
 * shrinking independent per field, so a counterexample shrinks to a small, readable spec.
 * Each spec prints as one line (`describeSpec`) in fast-check's failure report.
 */
import { Either } from "effect"
import fc from "fast-check"
import {
  decodeSpec,
  type ScheduleSpec,
  type ScheduleSpecEncoded,
  totalSteps,
} from "../../core/schedule/spec.ts"

export interface SpecSize {
  /** Most phases (1..4). */
  readonly maxPhases?: number
  /** Most steps per phase. */
  readonly maxPhaseSteps?: number
  /** Fewest steps per phase in the long-phase branch (a third of phases stay short regardless). */
  readonly minPhaseSteps?: number
}

type Mutable<T> = { -readonly [K in keyof T]: Mutable<T[K]> }
type EncodedPhase = Mutable<ScheduleSpecEncoded["phases"][number]>

/** Ratios: T-Rex2's 8:1, zero sides, unusual ones, and anything small (never 0:0). */
export const arbRatio: fc.Arbitrary<{ visual: number; text: number }> = fc.oneof(
  fc.constantFrom(
    { visual: 8, text: 1 },
    { visual: 1, text: 1 },
    { visual: 1, text: 8 },
    { visual: 3, text: 2 },
  ),
  fc.oneof(
    fc.integer({ min: 1, max: 12 }).map((v) => ({ visual: v, text: 0 })),
    fc.integer({ min: 1, max: 12 }).map((t) => ({ visual: 0, text: t })),
  ),
  fc
    .record({ visual: fc.integer({ min: 0, max: 16 }), text: fc.integer({ min: 0, max: 16 }) })
    .filter((r) => r.visual + r.text > 0),
)

type DrawnPhase = Omit<EncodedPhase, "name" | "offset"> & {
  /** The phase's offset as a fraction of its cycle (absent: no offset key). */
  readonly offsetFrac: number | undefined
}

const arbPhase = (maxSteps: number, minSteps: number): fc.Arbitrary<DrawnPhase> =>
  fc.record({
    ratio: arbRatio,
    order: fc.constantFrom("visual-first" as const, "text-first" as const),
    // Most phases have no offset; the rest any of 0..V+T-1 (mapped from a fraction, not chained).
    offsetFrac: fc.oneof(
      { weight: 2, arbitrary: fc.constant(undefined) },
      { weight: 1, arbitrary: fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }) },
    ),
    // Short phases (shorter than a cycle, or a few cycles) are where off-by-ones live.
    steps: fc.oneof(
      { weight: 1, arbitrary: fc.integer({ min: 1, max: Math.min(maxSteps, 40) }) },
      { weight: 2, arbitrary: fc.integer({ min: Math.min(minSteps, maxSteps), max: maxSteps }) },
    ),
  })

const arbGroup = fc.oneof(
  fc.constant({}),
  fc.constantFrom(0.01, 0.1, 0.5, 2, 0).map((lrMultiplier) => ({ lrMultiplier })),
  fc.constantFrom(1e-5, 1e-4, 3e-3, 0).map((lr) => ({ lr })),
)

const GROUP_NAMES = ["backbone", "text-encoder", "neck", "head"]

interface Draw {
  readonly phases: ReadonlyArray<DrawnPhase>
  readonly accumulation: { readonly visual: number; readonly text: number }
  readonly optimizerLr: number
  readonly groups: ReadonlyArray<{ lr?: number; lrMultiplier?: number }>
  readonly warmup: { kind: "none" } | { kind: "linear" | "constant"; frac: number; startFactor: number }
  readonly decay:
    | { kind: "none" }
    | { kind: "cosine"; floor: number }
    | { kind: "multistep"; fracs: ReadonlyArray<number>; gamma: number }
  readonly modalityFactor: { readonly visual: number; readonly text: number }
}

/** Turns a draw into scenario JSON; fractions become step indices valid for this run's length. */
const toScenario = (d: Draw, index: number): ScheduleSpecEncoded => {
  const phases = d.phases.map(({ offsetFrac, ...p }, i) => {
    const named: EncodedPhase = { name: `p${i}`, ...p }
    if (offsetFrac !== undefined) named.offset = Math.floor(offsetFrac * (p.ratio.visual + p.ratio.text))
    return named
  })
  const total = phases.reduce((n, p) => n + p.steps, 0)
  const lr: Mutable<NonNullable<ScheduleSpecEncoded["lr"]>> = { modalityFactor: { ...d.modalityFactor } }
  let w = 0
  if (d.warmup.kind !== "none") {
    w = Math.max(1, Math.min(total, Math.round(d.warmup.frac * total)))
    lr.warmup = { kind: d.warmup.kind, steps: w, startFactor: d.warmup.startFactor }
  }
  if (d.decay.kind === "cosine") lr.decay = { kind: "cosine", floor: d.decay.floor }
  else if (d.decay.kind === "multistep") {
    // Milestones live in [max(w, 1), total): the decoder wants integers >= 1, outside warm-up.
    const lo = Math.max(w, 1)
    const ms = [...new Set(d.decay.fracs.map((f) => lo + Math.floor(f * (total - lo))))]
      .filter((m) => m < total)
      .sort((a, b) => a - b)
    if (ms.length > 0) lr.decay = { kind: "multistep", milestones: ms, gamma: d.decay.gamma }
  }
  return {
    name: `spec-${index}`,
    phases,
    batch: {
      visual: { size: 2, accumulation: d.accumulation.visual },
      text: { size: 2, accumulation: d.accumulation.text },
    },
    optimizer: {
      kind: "adamw",
      lr: d.optimizerLr,
      groups: d.groups.map((g, i) => ({ name: GROUP_NAMES[i]!, ...g })),
    },
    lr,
  }
}

/** One line: `p0 12@0:1 vf | p1 37@8:1 tf +1 | acc v2 t1 | warmup linear 5 from 0.001 | ...` */
export const describeSpec = (spec: ScheduleSpec): string => {
  const phases = spec.phases
    .map(
      (p) =>
        `${p.name} ${p.steps}@${p.ratio.visual}:${p.ratio.text} ${p.order === "text-first" ? "tf" : "vf"}${p.offset !== undefined ? ` +${p.offset}` : ""}`,
    )
    .join(" | ")
  const w = spec.lr.warmup
  const d = spec.lr.decay
  const decay =
    d.kind === "cosine"
      ? `cosine floor ${d.floor}`
      : d.kind === "multistep"
        ? `multistep [${d.milestones.join(",")}] x${d.gamma}`
        : "none"
  const groups = spec.optimizer.groups
    .map(
      (g) =>
        `${g.name}${g.lr !== undefined ? `=${g.lr}` : g.lrMultiplier !== undefined ? `x${g.lrMultiplier}` : ""}`,
    )
    .join(" ")
  const mf = spec.lr.modalityFactor
  return [
    `${phases} (${totalSteps(spec)} steps)`,
    `acc v${spec.batch.visual.accumulation} t${spec.batch.text.accumulation}`,
    `warmup ${w ? `${w.kind} ${w.steps} from ${w.startFactor}` : "none"}`,
    `decay ${decay}`,
    `mf v${mf.visual} t${mf.text}`,
    `lr ${spec.optimizer.lr} [${groups}]`,
  ].join(" | ")
}

let specCounter = 0

/** Decodes and attaches a one-line description that fast-check prints for counterexamples. */
const decodeForTest = (d: Draw): ScheduleSpec => {
  const scenario = toScenario(d, specCounter++ % 1000)
  const decoded = decodeSpec(scenario, "arbitrary")
  if (Either.isLeft(decoded))
    throw new Error(
      `arbSpec produced an invalid scenario: ${decoded.left.message}\n${JSON.stringify(scenario)}`,
    )
  const spec = decoded.right
  Object.defineProperty(spec, fc.toStringMethod, { value: () => describeSpec(spec), enumerable: false })
  return spec
}

/** Valid specs with up to `maxPhases` phases of up to `maxPhaseSteps` steps each. */
export const arbSpecWith = (size: SpecSize = {}): fc.Arbitrary<ScheduleSpec> => {
  const maxPhases = Math.min(4, Math.max(1, size.maxPhases ?? 4))
  const maxPhaseSteps = Math.max(1, size.maxPhaseSteps ?? 200)
  const draw: fc.Arbitrary<Draw> = fc.record({
    phases: fc.array(arbPhase(maxPhaseSteps, Math.max(1, size.minPhaseSteps ?? 1)), {
      minLength: 1,
      maxLength: maxPhases,
    }),
    accumulation: fc.record({ visual: fc.integer({ min: 1, max: 6 }), text: fc.integer({ min: 1, max: 6 }) }),
    optimizerLr: fc.constantFrom(1e-4, 4e-4, 1e-5, 0.1),
    groups: fc.array(arbGroup, { minLength: 1, maxLength: 4 }),
    warmup: fc.oneof(
      fc.constant({ kind: "none" as const }),
      fc.record({
        kind: fc.constantFrom("linear" as const, "constant" as const),
        frac: fc.double({ min: 0, max: 1, noNaN: true }),
        startFactor: fc.constantFrom(0.001, 0, 0.1, 0.5, 1),
      }),
    ),
    decay: fc.oneof(
      fc.constant({ kind: "none" as const }),
      fc.record({ kind: fc.constant("cosine" as const), floor: fc.constantFrom(0, 0.01, 0.1, 1) }),
      fc.record({
        kind: fc.constant("multistep" as const),
        fracs: fc.array(fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), {
          minLength: 1,
          maxLength: 4,
        }),
        gamma: fc.constantFrom(0.1, 0.5, 0, 1),
      }),
    ),
    modalityFactor: fc.oneof(
      { weight: 3, arbitrary: fc.constant({ visual: 1, text: 1 }) },
      {
        weight: 2,
        arbitrary: fc.record({
          visual: fc.constantFrom(1, 0.5, 2, 0),
          text: fc.constantFrom(1, 0.5, 0.1, 0),
        }),
      },
    ),
  })
  return draw.map(decodeForTest)
}

/** Small specs (phases of up to 200 steps): for many runs. */
export const arbSpec: fc.Arbitrary<ScheduleSpec> = arbSpecWith()

/** Big specs (up to 4 phases of 10 000 to 30 000 steps, up to about 10^5 in all): for a few runs. */
export const arbBigSpec: fc.Arbitrary<ScheduleSpec> = arbSpecWith({
  maxPhaseSteps: 25_000,
  minPhaseSteps: 5_000,
})

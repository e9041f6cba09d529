/**
 * ScheduleSpec: what a scenario file says about an interleaved training schedule.
 *
 * Decoding is pure: `decodeSpec(json)` returns the spec or a `DecodeError` whose message names the
 * JSON path and the reason (`phases[1].ratio: visual and text cannot both be 0`). Unknown keys are
 * errors, so a typo never passes silently.
 */
import { Either, Schema } from "effect"
import {
  DecodeError,
  firstIssue,
  formatNumber,
  NonEmptyString,
  NonNegFinite,
  NonNegInt,
  notAnObject,
  oneOf,
  PosFinite,
  PosInt,
  parseJsonText,
  shown,
  UnitInterval,
} from "../common/index.ts"

/**
 * The most steps a schedule may have in all (10^9). Real schedules are far shorter (T-Rex2's joint
 * stage is ~10^5 steps; the acceptance tests verify 4 x 10^6); past this, `verify` would walk for
 * hours and a run's log would not fit on a disk, so a larger one is refused as bad input up front.
 */
export const MAX_TOTAL_STEPS = 1_000_000_000

const pathAndReason = (i: { path: string; reason: string }) => ({ path: i.path, reason: i.reason })

export const Modality = Schema.Literal("visual", "text")
export type Modality = typeof Modality.Type
export const MODALITIES: ReadonlyArray<Modality> = ["visual", "text"]

export const Ratio = Schema.Struct({ visual: NonNegInt, text: NonNegInt }).pipe(
  Schema.filter((r) => r.visual + r.text > 0 || "visual and text cannot both be 0"),
)
export type Ratio = typeof Ratio.Type

export const CycleOrder = oneOf("visual-first", "text-first")
export type CycleOrder = typeof CycleOrder.Type

export const Phase = Schema.Struct({
  name: NonEmptyString,
  steps: PosInt,
  ratio: Ratio,
  order: Schema.optionalWith(CycleOrder, { default: () => "visual-first" as const }),
  /**
   * Where the phase enters its cycle: phase step i sits at cycle position (i + offset) mod (V+T),
   * 0 <= offset < V+T. PET-DINO's `(iter + 1) % 9 < 8` is 8:1 visual-first with offset 1. Absent
   * means 0 (kept absent, so specs without it encode, and hash, as before).
   */
  offset: Schema.optional(NonNegInt),
  description: Schema.optional(Schema.String),
})
export type Phase = typeof Phase.Type

/** A phase's offset, 0 when absent. */
export const phaseOffset = (p: Pick<Phase, "offset">): number => p.offset ?? 0

export const ModalityBatch = Schema.Struct({
  /** Samples per micro-step. */
  size: PosInt,
  /** Micro-steps per optimizer update (1 = no accumulation). */
  accumulation: Schema.optionalWith(PosInt, { default: () => 1 }),
})
export type ModalityBatch = typeof ModalityBatch.Type

export const ParamGroup = Schema.Struct({
  name: NonEmptyString,
  /** Absolute base lr for this group; overrides `optimizer.lr`. */
  lr: Schema.optional(NonNegFinite),
  /** Multiplier on `optimizer.lr` (PET-DINO's 0.01 on backbone, language model, neck). */
  lrMultiplier: Schema.optional(NonNegFinite),
  weightDecay: Schema.optional(NonNegFinite),
  description: Schema.optional(Schema.String),
}).pipe(
  Schema.filter(
    (g) => g.lr === undefined || g.lrMultiplier === undefined || "set lr or lrMultiplier, not both",
  ),
)
export type ParamGroup = typeof ParamGroup.Type

export const Optimizer = Schema.Struct({
  kind: oneOf("adamw", "adam", "sgd"),
  lr: PosFinite,
  weightDecay: Schema.optionalWith(NonNegFinite, { default: () => 0 }),
  beta1: Schema.optionalWith(UnitInterval, { default: () => 0.9 }),
  beta2: Schema.optionalWith(UnitInterval, { default: () => 0.999 }),
  epsilon: Schema.optionalWith(PosFinite, { default: () => 1e-8 }),
  momentum: Schema.optionalWith(UnitInterval, { default: () => 0 }),
  groups: Schema.Array(ParamGroup).pipe(Schema.minItems(1, { message: () => "needs at least one group" })),
})
export type Optimizer = typeof Optimizer.Type

export const Warmup = Schema.Struct({
  kind: oneOf("linear", "constant"),
  /** Warm-up covers global steps [0, steps); the lr reaches its base value at step `steps - 1`. */
  steps: PosInt,
  /** Factor on the base lr at step 0 (linear) or for the whole warm-up but its last step (constant). */
  startFactor: Schema.optionalWith(UnitInterval, { default: () => 0.001 }),
})
export type Warmup = typeof Warmup.Type

export const Decay = Schema.Union(
  Schema.Struct({ kind: Schema.Literal("none") }),
  Schema.Struct({
    kind: Schema.Literal("multistep"),
    /** Global step indices at which the lr is multiplied by gamma, strictly increasing. */
    milestones: Schema.Array(PosInt).pipe(
      Schema.minItems(1, { message: () => "needs at least one milestone" }),
    ),
    gamma: UnitInterval,
  }),
  Schema.Struct({
    kind: Schema.Literal("cosine"),
    /** Final lr as a fraction of the base lr. */
    floor: Schema.optionalWith(UnitInterval, { default: () => 0 }),
  }),
)
export type Decay = typeof Decay.Type

export const LrSchedule = Schema.Struct({
  warmup: Schema.optional(Warmup),
  decay: Schema.optionalWith(Decay, { default: () => ({ kind: "none" as const }) }),
  /** Per-modality factor on every group's lr (e.g. a lighter text update). */
  modalityFactor: Schema.optionalWith(Schema.Struct({ visual: NonNegFinite, text: NonNegFinite }), {
    default: () => ({ visual: 1, text: 1 }),
  }),
})
export type LrSchedule = typeof LrSchedule.Type

export const ScheduleSpec = Schema.Struct({
  name: NonEmptyString,
  description: Schema.optionalWith(Schema.String, { default: () => "" }),
  seed: Schema.optionalWith(NonNegInt, { default: () => 0 }),
  phases: Schema.Array(Phase).pipe(Schema.minItems(1, { message: () => "needs at least one phase" })),
  batch: Schema.Struct({ visual: ModalityBatch, text: ModalityBatch }),
  optimizer: Optimizer,
  lr: Schema.optionalWith(LrSchedule, {
    default: () => ({ decay: { kind: "none" as const }, modalityFactor: { visual: 1, text: 1 } }),
  }),
})
export type ScheduleSpec = typeof ScheduleSpec.Type
export type ScheduleSpecEncoded = typeof ScheduleSpec.Encoded

const decodeUnknown = Schema.decodeUnknownEither(ScheduleSpec, { onExcessProperty: "error", errors: "first" })

/** Cross-field rules that a per-field schema cannot express. */
const checkConsistency = (spec: ScheduleSpec): { path: string; reason: string } | undefined => {
  const names = new Set<string>()
  for (const [i, p] of spec.phases.entries()) {
    if (names.has(p.name))
      return { path: `phases[${i}].name`, reason: `duplicate phase name ${shown(p.name)}` }
    names.add(p.name)
    const c = p.ratio.visual + p.ratio.text
    if (phaseOffset(p) >= c)
      return {
        path: `phases[${i}].offset`,
        reason: `must be less than the cycle length V+T = ${c}, got ${p.offset}`,
      }
  }
  let sum = 0
  for (const [i, p] of spec.phases.entries()) {
    sum += p.steps
    if (sum > MAX_TOTAL_STEPS)
      return {
        path: `phases[${i}].steps`,
        reason: `the schedule would have ${formatNumber(totalSteps(spec))} steps in all; interleave plans at most ${formatNumber(MAX_TOTAL_STEPS)} (10^9)`,
      }
  }
  const groups = new Set<string>()
  for (const [i, g] of spec.optimizer.groups.entries()) {
    if (groups.has(g.name))
      return { path: `optimizer.groups[${i}].name`, reason: `duplicate group name ${shown(g.name)}` }
    groups.add(g.name)
  }
  const total = totalSteps(spec)
  const warm = spec.lr.warmup?.steps ?? 0
  if (warm > total)
    return { path: "lr.warmup.steps", reason: `${warm} is longer than the whole run (${total} steps)` }
  const decay = spec.lr.decay
  if (decay.kind === "multistep") {
    for (const [i, m] of decay.milestones.entries()) {
      const path = `lr.decay.milestones[${i}]`
      if (m >= total)
        return { path, reason: `step ${m} is out of range: the run has ${total} steps (0..${total - 1})` }
      if (m < warm) return { path, reason: `step ${m} falls inside the warm-up (steps 0..${warm - 1})` }
      const prev = decay.milestones[i - 1]
      if (prev !== undefined && m <= prev)
        return { path, reason: `milestones must be strictly increasing (${prev} then ${m})` }
    }
  }
  return checkRunnable(spec)
}

/**
 * Every lr a run can record is finite: each group's base lr x each modality factor x the largest
 * factor warm-up and decay apply. Without this, `run` would record `"lr":{"head":null}` (1e308 x
 * 1e308) that `verify` then rejects. O(#groups), never per step.
 */
const checkRunnable = (spec: ScheduleSpec): { path: string; reason: string } | undefined => {
  const { warmup, decay, modalityFactor } = spec.lr
  // Warm-up and decay factors never exceed 1 today (UnitInterval); the max keeps that an assumption.
  const top = Math.max(1, warmup?.startFactor ?? 0, decay.kind === "cosine" ? decay.floor : 0)
  for (const [i, g] of spec.optimizer.groups.entries()) {
    const base = g.lr ?? spec.optimizer.lr * (g.lrMultiplier ?? 1)
    if (!Number.isFinite(base))
      return {
        path: `optimizer.groups[${i}].lrMultiplier`,
        reason: `optimizer.lr ${spec.optimizer.lr} x ${g.lrMultiplier} is ${base}: group "${g.name}" needs a finite lr`,
      }
    for (const m of MODALITIES) {
      const f = modalityFactor[m]
      const lr = base * f * top
      if (!Number.isFinite(lr))
        return {
          path: `lr.modalityFactor.${m}`,
          reason: `${f} x the base lr of group "${g.name}" (${base}) is ${lr}; every lr of the run must be finite`,
        }
    }
  }
  return undefined
}

export const totalSteps = (spec: Pick<ScheduleSpec, "phases">): number =>
  spec.phases.reduce((n, p) => n + p.steps, 0)

/** Decodes an already-parsed JSON value. `source` names the file in error messages. */
export const decodeSpec = (input: unknown, source = "scenario"): Either.Either<ScheduleSpec, DecodeError> => {
  const shape = notAnObject(input, "a scenario")
  if (shape) return Either.left(new DecodeError({ source, path: "", reason: shape }))
  return Either.flatMap(
    Either.mapLeft(
      decodeUnknown(input),
      (e) => new DecodeError({ source, ...pathAndReason(firstIssue(e, "invalid scenario")) }),
    ),
    (spec) => {
      const bad = checkConsistency(spec)
      return bad ? Either.left(new DecodeError({ source, ...bad })) : Either.right(spec)
    },
  )
}

/** Parses JSON text, then decodes; a JSON syntax error names the line and column. */
export const parseSpec = (text: string, source = "scenario"): Either.Either<ScheduleSpec, DecodeError> =>
  Either.flatMap(
    Either.mapLeft(parseJsonText(text), (reason) => new DecodeError({ source, path: "", reason })),
    (json) => decodeSpec(json, source),
  )

export const encodeSpec = Schema.encodeSync(ScheduleSpec)

/** Base lr of each parameter group, before warm-up, decay and modality factors. */
export const groupBaseLrs = (spec: ScheduleSpec): Record<string, number> => {
  const out: Record<string, number> = {}
  for (const g of spec.optimizer.groups) out[g.name] = g.lr ?? spec.optimizer.lr * (g.lrMultiplier ?? 1)
  return out
}

/**
 * What one step of a schedule does: the planner produces it, the invariants judge recorded ones
 * (from the engine, a trainer's Recorder, or a foreign log) field by field. Defined once here.
 */
import type { Modality } from "./spec.ts"

export interface StepPlan {
  readonly step: number
  readonly phase: string
  readonly phaseStep: number
  readonly modality: Modality
  /** Index of the V+T cycle inside the phase: floor((phaseStep + offset) / (V+T)). */
  readonly cycle: number
  /** Position inside the cycle, (phaseStep + offset) mod (V+T); the first cycle starts at `offset`. */
  readonly position: number
  /** Index of this micro-step inside its accumulation group. */
  readonly micro: number
  /** True on the micro-step that applies the group's accumulated gradient. */
  readonly update: boolean
  readonly lr: Readonly<Record<string, number>>
}

/** A plan's own fields, copied out of whatever carries them (an event, a wire message). */
export const planFields = (p: StepPlan): StepPlan => ({
  step: p.step,
  phase: p.phase,
  phaseStep: p.phaseStep,
  modality: p.modality,
  cycle: p.cycle,
  position: p.position,
  micro: p.micro,
  update: p.update,
  lr: p.lr,
})

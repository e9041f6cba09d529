/** core/schedule: the spec, the planner and the schedule invariants. */
export * from "./describe.ts"
export * from "./invariants/index.ts"
export * from "./load.ts"
export * from "./plan.ts"
export * from "./ratio-fork.ts"
export * from "./spec.ts"
export * from "./step-plan.ts"
export * from "./verify.ts"

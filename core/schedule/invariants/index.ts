/**
 * Schedule invariants as named rules (DESIGN.md, "Schedule invariants"), one module per family:
 * sequence (step-sequence, phase-boundaries), modality (modality-pattern, max-run, phase-counts),
 * accumulation, lr (lr-finite, lr-warmup, lr-decay, lr-group-ratios, lr-matches-spec).
 *
 * Every rule is a fold over step records: `init` builds its state from the spec, `check` sees one
 * record at a time and returns the violation it finds there, `finish` reports what only the end
 * can tell. Records may come from the planner or from a recorded (possibly wrong) log, so rules
 * judge records against the spec with their own reading of DESIGN.md's formulas (formulas.ts),
 * never the planner's code. State is O(#phases), never O(#steps).
 *
 * Rules judge a record by its global step index: the spec says which phase, modality and lr step
 * `s` must have. Only `phase-boundaries` looks at the record's phase labels, so a wrong label
 * and a wrong modality are told apart.
 */
export * from "./checker.ts"
export { expectedModality, expectedScheduleFactor } from "./formulas.ts"
export type { Rule, RuleContext, RuleName, StepRecord, Violation } from "./view.ts"

/** core/log: run events, the folds over them, comparisons, log files and the event-log rules. */
export * from "./compare.ts"
export * from "./events.ts"
export * from "./formats.ts"
export * from "./log-invariants.ts"
export * from "./projections.ts"
export * from "./read-file.ts"
export * from "./run-report.ts"
export * from "./step-times.ts"

/** core/run: the engine (start, resume, fork, replay) and the TrainingAdapter seam it drives. */

export * from "./diff.ts"
export * from "./drive.ts"
export * from "./errors.ts"
export * from "./fork.ts"
export * from "./import-log.ts"
export * from "./liveness.ts"
export * from "./read.ts"
export * from "./replay.ts"
export * from "./run-id.ts"
export * from "./start.ts"
export * from "./training-adapter.ts"
export * from "./verify-log.ts"

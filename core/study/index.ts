/** core/study: ratio studies (study files, running them as recorded runs, Pareto sets, reports). */
export * from "./pareto.ts"
export * from "./report.ts"
export * from "./results.ts"
export * from "./run.ts"
export * from "./study-file.ts"

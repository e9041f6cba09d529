/** adapters/sim: the simulator adapter, its hardware and model profiles, and the fit to measurements. */
export * from "./fit.ts"
export * from "./profiles.ts"
export * from "./sim.ts"

/** adapters/tfjs: real training of the small T-Rex2-like model with TensorFlow.js. */
export * from "./adapter.ts"
export * from "./backend.ts"
export * from "./presets.ts"

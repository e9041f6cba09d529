/** adapters/exec: trainers in child processes over the step protocol (exec), and the bundled PyTorch one (pytorch). */
export * from "./command-line.ts"
export * from "./exec.ts"
export * from "./protocol.ts"
export * from "./pytorch.ts"
export * from "./session.ts"

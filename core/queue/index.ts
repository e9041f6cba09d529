/** core/queue: the sweep queue seam (claim, renew, complete, fail, list) and its implementations. */
export * from "./memory.ts"
export * from "./sweep-queue.ts"

/** core/store: the EventStore seam and its implementations (memory, SQLite). */

export * from "./copy.ts"
export * from "./event-store.ts"
export * from "./memory.ts"
export * from "./sqlite.ts"
export * from "./url.ts"

/** core/store: the EventStore seam and its implementations (memory, SQLite). */
export * from "./event-store.ts"
export * from "./memory.ts"
export * from "./sqlite.ts"

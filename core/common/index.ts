/** core/common: the small pieces every stage shares (formatting, hashing, schema primitives, JSON text). */

export * from "./files.ts"
export * from "./format.ts"
export * from "./hash.ts"
export * from "./json-text.ts"
export * from "./package-root.ts"
export * from "./schema.ts"
export * from "./schema-issue.ts"
export * from "./statistics.ts"
export * from "./versions.ts"

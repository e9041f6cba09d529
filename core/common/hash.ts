/** Hashing: content hashes of JSON values, and the 32-bit mix behind every seeded generator. */
import { createHash } from "node:crypto"

/** murmur3's 32-bit finaliser: a bijective avalanche mix, for counter-based randomness. */
export const fmix32 = (x: number): number => {
  let h = x | 0
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  h ^= h >>> 16
  return h >>> 0
}

/** JSON with sorted keys, so equal values hash equally. */
export const canonicalJson = (value: unknown): string =>
  JSON.stringify(value, (_k, v) =>
    v && typeof v === "object" && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : v,
  )

/** First 16 hex digits of the SHA-256 of the canonical JSON. */
export const hashJson = (value: unknown): string =>
  createHash("sha256").update(canonicalJson(value)).digest("hex").slice(0, 16)

/** SHA-256 of a file's bytes (hex), for provenance records. */
export const hashBytes = (bytes: Uint8Array | string): string =>
  createHash("sha256").update(bytes).digest("hex")

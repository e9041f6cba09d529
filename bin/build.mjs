#!/usr/bin/env node
// Bundles the CLI's TypeScript into dist/interleave.mjs (packages stay external, loaded from
// node_modules). Runs on `npm ci` (prepare) and whenever bin/interleave.mjs finds the bundle stale.
// The bundle starts faster and uses ~70 MB less memory than compiling on the fly with tsx.
import { renameSync } from "node:fs"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"

const root = join(dirname(fileURLToPath(import.meta.url)), "..")

export const buildBundle = async () => {
  const { build } = await import("esbuild")
  const out = join(root, "dist", "interleave.mjs")
  const tmp = `${out}.${process.pid}.tmp`
  await build({
    entryPoints: [join(root, "cli", "main.ts")],
    bundle: true,
    platform: "node",
    target: "node20",
    format: "esm",
    packages: "external",
    outfile: tmp,
    logLevel: "warning",
  })
  // Atomic: concurrent invocations never see a half-written bundle.
  renameSync(tmp, out)
  return out
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) await buildBundle()

#!/usr/bin/env node
// interleave's CLI. Runs the bundle in dist/ (built by `npm ci`, rebuilt here when a source file
// is newer), or, if it cannot be built, the TypeScript sources through tsx.
import { existsSync, readdirSync, statSync } from "node:fs"
import { dirname, join } from "node:path"
import { fileURLToPath, pathToFileURL } from "node:url"
import { setFlagsFromString } from "node:v8"

// A run keeps its recent events alive until they are appended; a larger young generation stops
// them being promoted and re-scanned, which halves the engine's GC time on fast (sim) runs.
// optimize-for-size keeps the old generation from growing lazily while a long log streams past:
// replaying 10^6 events peaks near 200 MB RSS with it and above 400 MB without.
setFlagsFromString("--max-semi-space-size=32")
setFlagsFromString("--optimize-for-size")

const root = join(dirname(fileURLToPath(import.meta.url)), "..")
const bundle = join(root, "dist", "interleave.js")

const newestSource = () => {
  let newest = 0
  const walk = (dir) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name)
      if (e.isDirectory()) walk(p)
      else if (e.name.endsWith(".ts")) newest = Math.max(newest, statSync(p).mtimeMs)
    }
  }
  for (const d of ["core", "adapters", "cli"]) walk(join(root, d))
  return newest
}

const fresh = () => existsSync(bundle) && statSync(bundle).mtimeMs >= newestSource()

let entry = fresh() ? bundle : undefined
if (!entry) {
  try {
    const { buildBundle } = await import("./build.mjs")
    entry = await buildBundle()
  } catch {
    entry = undefined
  }
}
if (entry) await import(pathToFileURL(entry).href)
else {
  const { register } = await import("tsx/esm/api")
  register()
  await import("../cli/main.ts")
}

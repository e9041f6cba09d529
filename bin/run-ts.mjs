#!/usr/bin/env node
// Runs a TypeScript entry (benchmarks, scripts) through tsx: `node bin/run-ts.mjs FILE [ARGS...]`.
import { resolve } from "node:path"
import { pathToFileURL } from "node:url"
import { setFlagsFromString } from "node:v8"
import { register } from "tsx/esm/api"

// A run keeps its recent events alive until they are appended; a larger young generation stops
// them being promoted and re-scanned, which halves the engine's GC time on fast (sim) runs.
setFlagsFromString("--max-semi-space-size=32")

register()
const file = process.argv[2]
if (!file) {
  process.stderr.write("usage: run-ts.mjs FILE [ARGS...]\n")
  process.exit(2)
}
// argv as `node FILE ARGS...` would give it: scripts that check whether they are the entry work.
process.argv.splice(1, 2, resolve(file))
await import(pathToFileURL(resolve(file)).href)

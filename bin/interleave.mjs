#!/usr/bin/env node
// The CLI is TypeScript; tsx compiles it on the fly so `npm ci` needs no build step.
import { setFlagsFromString } from "node:v8"
import { register } from "tsx/esm/api"

// A run keeps its recent events alive until they are appended; a larger young generation stops
// them being promoted and re-scanned, which halves the engine's GC time on fast (sim) runs.
setFlagsFromString("--max-semi-space-size=32")

register()
await import("../cli/main.ts")

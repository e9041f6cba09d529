#!/usr/bin/env node
// Bundles the CLI into dist/ (ES modules, split at every dynamic import so a command loads only
// what it needs). Effect and the other pure-JS packages are bundled in: resolving and loading
// hundreds of small ESM files from node_modules cost more than a second at every start. Packages
// with native code, wasm files or heavy optional parts stay external and load from node_modules
// when a command first needs them. Runs on `npm ci` (prepare) and whenever bin/interleave.mjs
// finds the bundle stale.
import { mkdirSync, renameSync, rmSync, utimesSync } from "node:fs"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"

const root = join(dirname(fileURLToPath(import.meta.url)), "..")

export const EXTERNAL = [
  "better-sqlite3",
  "@tensorflow/*",
  "webgpu",
  "vega",
  "vega-lite",
  "tinybench",
  "esbuild",
  "tsx",
  "pg",
  "pg-native",
]

export const buildBundle = async () => {
  const { build } = await import("esbuild")
  const out = join(root, "dist")
  const tmp = `${out}.${process.pid}.tmp`
  rmSync(tmp, { recursive: true, force: true })
  mkdirSync(tmp, { recursive: true })
  // The bundle is dated from when the build began: a source saved while esbuild was reading the
  // tree is then newer than it, and the next command rebuilds instead of running stale code.
  const began = new Date()
  await build({
    entryPoints: { interleave: join(root, "cli", "main.ts") },
    bundle: true,
    splitting: true,
    platform: "node",
    target: "node20",
    format: "esm",
    external: EXTERNAL,
    outdir: tmp,
    logLevel: "warning",
    // Whitespace and syntax only (names stay, for INTERLEAVE_DEBUG traces): smaller files parse
    // faster, and parsing the bundle is most of a command's start-up.
    minifyWhitespace: true,
    minifySyntax: true,
    // Bundled CommonJS dependencies call require(); give ESM chunks one.
    banner: {
      js: "import { createRequire as __ilCreateRequire } from 'node:module'; const require = __ilCreateRequire(import.meta.url);",
    },
  })
  utimesSync(join(tmp, "interleave.js"), began, began)
  // Atomic enough: concurrent invocations never see a half-written bundle directory.
  const old = `${out}.${process.pid}.old`
  try {
    renameSync(out, old)
  } catch {}
  renameSync(tmp, out)
  rmSync(old, { recursive: true, force: true })
  return join(out, "interleave.js")
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) await buildBundle()

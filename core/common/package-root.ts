/**
 * The folder holding interleave's package.json, found by walking up from this module. Works from
 * the TypeScript sources and from the bundle in dist/, which sit at different depths. A bundle
 * packed without it (the GPU pack) falls back to the bundle's own folder.
 */
import { existsSync, readFileSync } from "node:fs"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"

const find = (): string => {
  const start = dirname(fileURLToPath(import.meta.url))
  let dir = start
  for (;;) {
    const pkg = join(dir, "package.json")
    try {
      if (
        existsSync(pkg) &&
        (JSON.parse(readFileSync(pkg, "utf8")) as { name?: string }).name === "interleave"
      )
        return dir
    } catch {
      // An unreadable package.json is not ours; keep looking.
    }
    const up = dirname(dir)
    if (up === dir) return start
    dir = up
  }
}

export const packageRoot: string = find()

/**
 * The folder holding interleave's package.json, found by walking up from this module. Works from
 * the TypeScript sources and from the bundle in dist/, which sit at different depths.
 */
import { existsSync, readFileSync } from "node:fs"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"

const find = (): string => {
  let dir = dirname(fileURLToPath(import.meta.url))
  for (;;) {
    const pkg = join(dir, "package.json")
    if (existsSync(pkg) && (JSON.parse(readFileSync(pkg, "utf8")) as { name?: string }).name === "interleave")
      return dir
    const up = dirname(dir)
    if (up === dir)
      throw new Error("interleave: cannot find the package root (package.json named interleave)")
    dir = up
  }
}

export const packageRoot: string = find()

/** Tool and runtime versions recorded in every RunStarted, so a log says what produced it. */
import { createRequire } from "node:module"
import { join } from "node:path"
import { packageRoot } from "./package-root.ts"

const require = createRequire(join(packageRoot, "package.json"))

const versionOf = (pkg: string): string => {
  try {
    return (require(`${pkg}/package.json`) as { version: string }).version
  } catch {
    return "unknown"
  }
}

let cached: Record<string, string> | undefined

export const toolVersion = (): string => {
  try {
    return (require("./package.json") as { version: string }).version
  } catch {
    return "unknown"
  }
}

export const runtimeVersions = (
  adapterInfo: Readonly<Record<string, string>> = {},
): Record<string, string> => {
  cached ??= { interleave: toolVersion(), node: process.versions.node, effect: versionOf("effect") }
  const out = { ...cached }
  if (adapterInfo.tfjs) out.tfjs = adapterInfo.tfjs
  return out
}

/**
 * A JSONL log file of a sim run of `steps` steps (1000 text-only, then 8:1), recorded into
 * `store` as run "big" and exported to `log` (not a test itself). Made in-process: only the
 * reading commands under test need their own process. Returns the file's size in MB.
 */
import { statSync } from "node:fs"
import { writeJson } from "./cli-helpers.ts"
import { cliInProcess } from "./cli-inprocess.ts"

export const writeSimLog = async (
  dir: string,
  steps: number,
  store: string,
  log: string,
): Promise<number> => {
  const spec = writeJson(dir, "big.json", {
    name: "big",
    seed: 5,
    phases: [
      { name: "text-only", steps: 1000, ratio: { visual: 0, text: 1 } },
      { name: "joint", steps: steps - 1000, ratio: { visual: 8, text: 1 } },
    ],
    batch: { visual: { size: 8 }, text: { size: 8 } },
    optimizer: { kind: "adamw", lr: 1e-4, groups: [{ name: "all" }] },
  })
  for (const args of [
    ["run", spec, "--run-id", "big", "--store", store],
    ["export", "big", "--store", store, "--out", log],
  ]) {
    const r = await cliInProcess(args)
    if (r.code !== 0) throw new Error(`${args.join(" ")}: exit ${r.code}: ${r.stderr}`)
  }
  return statSync(log).size / 1e6
}

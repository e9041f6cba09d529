/** Spawns the real `interleave` binary, as a user would. */
import { execFile, spawn } from "node:child_process"
import { mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join, resolve } from "node:path"

export const BIN = resolve(import.meta.dirname, "../../bin/interleave.mjs")
export const ROOT = resolve(import.meta.dirname, "../..")

export interface CliResult {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

export const runCli = (
  args: ReadonlyArray<string>,
  opts: { cwd?: string; env?: Record<string, string> } = {},
) =>
  new Promise<CliResult>((done) => {
    execFile(
      process.execPath,
      [BIN, ...args],
      { cwd: opts.cwd ?? ROOT, env: { ...process.env, ...opts.env }, maxBuffer: 64 * 1024 * 1024 },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === "number" ? error.code : null) : 0
        done({ code, stdout, stderr })
      },
    )
  })

/** Starts the binary and returns the child, for kill tests. */
export const spawnCli = (
  args: ReadonlyArray<string>,
  opts: { cwd?: string; env?: Record<string, string | undefined> } = {},
) =>
  spawn(process.execPath, [BIN, ...args], {
    cwd: opts.cwd ?? ROOT,
    env: { ...process.env, ...opts.env },
    stdio: ["ignore", "pipe", "pipe"],
  })

export const tempDir = (prefix = "interleave-test-") => mkdtempSync(join(tmpdir(), prefix))

export const writeJson = (dir: string, name: string, value: unknown): string => {
  const file = join(dir, name)
  writeFileSync(file, typeof value === "string" ? value : JSON.stringify(value, null, 2))
  return file
}

export const scenario = (name: string) => join(ROOT, "scenarios", name)

/** A minimal valid scenario to mutate in bad-input tests. */
export const baseScenario = () => ({
  name: "t",
  phases: [
    { name: "text-only", steps: 9, ratio: { visual: 0, text: 1 } },
    { name: "joint", steps: 36, ratio: { visual: 8, text: 1 } },
  ],
  batch: { visual: { size: 2 }, text: { size: 2 } },
  optimizer: { kind: "adamw", lr: 1e-4, groups: [{ name: "backbone", lrMultiplier: 0.1 }, { name: "head" }] },
})

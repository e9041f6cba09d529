/**
 * Shared by the exec tests: whether /usr/bin/python3 (and its torch) are there, said loudly when
 * not; INTERLEAVE_REQUIRE_TORCH=1 (CI) turns a missing torch into a failure instead of a skip.
 */
import { spawnSync } from "node:child_process"
import { readFileSync } from "node:fs"
import { join } from "node:path"

export const PYTHON = "/usr/bin/python3"
export const ROOT = join(import.meta.dirname, "../..")
export const PY_TESTS = join(ROOT, "python", "tests")

const probe = (code: string) => {
  const r = spawnSync(PYTHON, ["-c", code], { encoding: "utf8", timeout: 60_000 })
  return r.error
    ? `${PYTHON} cannot run: ${r.error.message}`
    : r.status === 0
      ? undefined
      : r.stderr.trim().split("\n").at(-1)
}

/** Undefined when present, else why not. */
export const pythonMissing: string | undefined = probe("import sys")
export const torchMissing: string | undefined = pythonMissing ?? probe("import torch")
export const requireTorch = process.env.INTERLEAVE_REQUIRE_TORCH === "1"

export const banner = (what: string, why: string) =>
  console.warn(
    `\n${"!".repeat(100)}\n!!! ${what} SKIPPED: ${why}\n!!! Install Debian's python3-torch (apt-get install python3-torch) to run them; CI sets INTERLEAVE_REQUIRE_TORCH=1 and fails instead.\n${"!".repeat(100)}\n`,
  )

/** True when the torch tests may run; warns (or, with INTERLEAVE_REQUIRE_TORCH=1, throws) otherwise. */
export const torchTestsRun = (what: string): boolean => {
  if (!torchMissing) return true
  if (requireTorch) throw new Error(`INTERLEAVE_REQUIRE_TORCH=1 but torch is missing: ${torchMissing}`)
  banner(what, torchMissing)
  return false
}

export const pythonTestsRun = (what: string): boolean => {
  if (!pythonMissing) return true
  if (requireTorch) throw new Error(`INTERLEAVE_REQUIRE_TORCH=1 but ${PYTHON} is missing: ${pythonMissing}`)
  banner(what, pythonMissing)
  return false
}

/**
 * Whether a process with this pid exists (a zombie counts: it has not been reaped). For children
 * of this process or of an interleave that is still running, whose reaping is on us.
 */
export const alive = (pid: number): boolean => {
  // A missing pid (NaN from an absent info field) would otherwise read as "not alive".
  if (!Number.isInteger(pid) || pid <= 0) throw new Error(`not a process id: ${pid}`)
  try {
    process.kill(pid, 0)
    return true
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM"
  }
}

/**
 * Whether a process with this pid is running (a zombie does not count). For the trainer of an
 * interleave that was killed: the orphan is reaped by whoever adopts it, which is not ours to check.
 */
export const running = (pid: number): boolean => {
  if (!alive(pid)) return false
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8")
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z"
  } catch {
    return false
  }
}

/**
 * Shared by the exec tests: whether /usr/bin/python3 (and its torch) are there, said loudly when
 * not; INTERLEAVE_REQUIRE_TORCH=1 (CI) turns a missing torch into a failure instead of a skip.
 *
 * The probe waits for its answer: on a loaded machine `import torch` can take a minute, and a probe
 * that gave up would skip tests for want of a package that is installed. Only a probe that found
 * the interpreter or the module absent says "not installed"; one that broke otherwise (torch fails
 * to import, the probe was killed or ran past PROBE_LIMIT_MS) says what happened, and one that did
 * not finish fails the tests that needed it rather than skipping them.
 */
import { execFile } from "node:child_process"
import { readFileSync } from "node:fs"
import { join } from "node:path"

export const PYTHON = "/usr/bin/python3"
export const ROOT = join(import.meta.dirname, "../..")
export const PY_TESTS = join(ROOT, "python", "tests")
export const requireTorch = process.env.INTERLEAVE_REQUIRE_TORCH === "1"

/** Far past what `import torch` takes on the most loaded machine seen: only a hang reaches it. */
const PROBE_LIMIT_MS = 600_000

// Exit 3: torch itself is not there (a module torch needs is missing: that is a broken torch).
const PROBE = `
import sys
try:
    import torch
except ModuleNotFoundError as e:
    if e.name == "torch":
        print(f"ModuleNotFoundError: {e}", file=sys.stderr)
        sys.exit(3)
    raise
`

type Probe =
  | { readonly python: "ok"; readonly torch: "ok" }
  | { readonly python: "ok"; readonly torch: string }
  | { readonly python: string; readonly torch: string }

const probe = (): Promise<Probe> =>
  new Promise((resolve, reject) => {
    execFile(
      PYTHON,
      ["-c", PROBE],
      { encoding: "utf8", timeout: PROBE_LIMIT_MS, killSignal: "SIGKILL" },
      (error, _stdout, stderr) => {
        const last = stderr.trim().split("\n").at(-1) ?? ""
        if (!error) return resolve({ python: "ok", torch: "ok" })
        const e = error as unknown as {
          code?: number | string
          signal?: string | null
          killed?: boolean
          message: string
        }
        if (e.code === "ENOENT") {
          const why = `${PYTHON} is not installed (no such file); install Debian's python3 (apt-get install python3)`
          return resolve({ python: why, torch: why })
        }
        if (e.code === 3)
          return resolve({
            python: "ok",
            torch: `torch is not installed for ${PYTHON} (${last}); install Debian's python3-torch (apt-get install python3-torch)`,
          })
        if (typeof e.code === "number")
          return resolve({
            python: "ok",
            torch: `torch is installed for ${PYTHON} but does not import (exit ${e.code}): ${last}`,
          })
        // Killed (by PROBE_LIMIT_MS or anyone else) or not startable: nothing known about torch.
        reject(
          new Error(
            `the probe \`${PYTHON} -c "import torch"\` did not finish (${
              e.killed || e.signal
                ? `killed by ${e.signal ?? "a signal"}, ${PROBE_LIMIT_MS / 1000} s allowed`
                : e.message
            }); the tests that need it cannot say whether torch is there, so they fail rather than skip${
              last ? `: ${last}` : ""
            }`,
          ),
        )
      },
    )
  })

const probed = await probe()

/** Undefined when present, else why not (the words "not installed" only when it is not). */
export const pythonMissing: string | undefined = probed.python === "ok" ? undefined : probed.python
export const torchMissing: string | undefined = probed.torch === "ok" ? undefined : probed.torch

export const banner = (what: string, why: string) =>
  console.warn(
    `\n${"!".repeat(100)}\n!!! ${what} SKIPPED: ${why}\n!!! CI sets INTERLEAVE_REQUIRE_TORCH=1 and fails instead.\n${"!".repeat(100)}\n`,
  )

/** True when the torch tests may run; warns (or, with INTERLEAVE_REQUIRE_TORCH=1, throws) otherwise. */
export const torchTestsRun = (what: string): boolean => {
  if (!torchMissing) return true
  if (requireTorch) throw new Error(`INTERLEAVE_REQUIRE_TORCH=1 but torch cannot be used: ${torchMissing}`)
  banner(what, torchMissing)
  return false
}

export const pythonTestsRun = (what: string): boolean => {
  if (!pythonMissing) return true
  if (requireTorch)
    throw new Error(`INTERLEAVE_REQUIRE_TORCH=1 but ${PYTHON} cannot be used: ${pythonMissing}`)
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

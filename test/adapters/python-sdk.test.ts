/**
 * The Python side's own unittest suite (python/tests: SDK protocol server, Recorder, JS-compatible
 * hashes, mmengine hook, reference trainer), run with /usr/bin/python3; this test fails if it fails.
 * Without /usr/bin/python3 the suite cannot run, and without torch its trainer tests skip: both
 * are said loudly, and with INTERLEAVE_REQUIRE_TORCH=1 (CI) both are failures. The suite's
 * real-mmengine tests (test_mmengine_real.py: two 200-iteration Runner runs) skip loudly without
 * mmengine (see python/tests/_mmengine.py), or fail with INTERLEAVE_REQUIRE_MMENGINE=1 (CI).
 */
import { spawn } from "node:child_process"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { banner, PYTHON, pythonMissing, ROOT, requireTorch, torchMissing } from "../support/exec-support.ts"
import { timeoutFor } from "../support/timeouts.ts"

const runSuite = () =>
  new Promise<{ code: number | null; output: string }>((resolve) => {
    const p = spawn(PYTHON, ["-m", "unittest", "discover", "-s", join(ROOT, "python", "tests")], {
      cwd: ROOT,
      stdio: ["ignore", "pipe", "pipe"],
    })
    let output = ""
    p.stdout.on("data", (d) => {
      output += d
    })
    p.stderr.on("data", (d) => {
      output += d
    })
    p.on("close", (code) => resolve({ code, output }))
  })

describe("python/tests (unittest, /usr/bin/python3)", () => {
  if (pythonMissing) {
    if (requireTorch)
      it("needs /usr/bin/python3 (INTERLEAVE_REQUIRE_TORCH=1)", () => {
        throw new Error(`INTERLEAVE_REQUIRE_TORCH=1 but ${PYTHON} cannot run: ${pythonMissing}`)
      })
    else {
      banner("the Python SDK suite (python/tests)", `${PYTHON} cannot run: ${pythonMissing}`)
      it.skip("needs /usr/bin/python3", () => {})
    }
    return
  }

  it(
    "passes",
    async () => {
      if (torchMissing) {
        if (requireTorch) throw new Error(`INTERLEAVE_REQUIRE_TORCH=1 but torch is missing: ${torchMissing}`)
        banner("the reference-trainer part of python/tests (the rest runs)", torchMissing)
      }
      const { code, output } = await runSuite()
      const tail = output.trim().split("\n").slice(-30).join("\n")
      expect(code, `python -m unittest failed:\n${tail}`).toBe(0)
      expect(output).toMatch(/\nOK( \(skipped=\d+\))?\s*$/)
      const ran = Number(/Ran (\d+) tests?/.exec(output)?.[1] ?? 0)
      expect(ran).toBeGreaterThan(40)
      // With torch present nothing may be skipped: a skip there would hide the trainer tests. The
      // one exception is mmengine's absence (not under INTERLEAVE_REQUIRE_MMENGINE=1), said loudly.
      const mmengineSkip = /!!! mmengine is not importable[^\n]*/.exec(output)?.[0]
      if (mmengineSkip) console.warn(`\n${"!".repeat(100)}\n${mmengineSkip}\n${"!".repeat(100)}\n`)
      if (!torchMissing) expect(output).toMatch(mmengineSkip ? /skipped=2\)/ : /^(?![\s\S]*skipped=)/)
    },
    // The trainer tests and two real mmengine runs of 200 iterations, each in a child process.
    timeoutFor({ trainers: 12, pySteps: 2000 }),
  )
})

/**
 * Hardening found by an adversarial pass (issue 19, item 4): absurd schedule sizes, endless input
 * files, hostile trainers, signals sent to a wrapper alone, and stores that cannot be written.
 * Each case ends in its documented exit code with one clear line, and nothing is left running.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { readFileSync, rmSync, symlinkSync, truncateSync } from "node:fs"
import { join } from "node:path"
import { Either } from "effect"
import { afterAll, describe, expect, it } from "vitest"
import { MAX_INPUT_BYTES } from "../../core/common/index.ts"
import { MAX_TOTAL_STEPS, parseSpec } from "../../core/schedule/index.ts"
import { BIN, baseScenario, ROOT, scenario, tempDir, writeJson } from "../support/cli-helpers.ts"
import { cliInProcess } from "../support/cli-inprocess.ts"

const dir = tempDir("interleave-hardening-")
afterAll(() => rmSync(dir, { recursive: true, force: true }))

const withSteps = (...steps: number[]) => ({
  ...baseScenario(),
  phases: steps.map((n, i) => ({ name: `p${i}`, steps: n, ratio: { visual: 8, text: 1 } })),
})

const exited = (child: ChildProcess) =>
  new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>((done) => {
    let stderr = ""
    child.stderr?.on("data", (d) => {
      stderr += String(d)
    })
    child.on("exit", (code, signal) => done({ code, signal, stderr }))
  })

/** CPU seconds a process has used so far (user + system), from /proc; 0 once it is gone. */
const cpuSeconds = (pid: number): number => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8")
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
    return (Number(fields[11]) + Number(fields[12])) / 100
  } catch {
    return 0
  }
}

/** Waits until `pid` has used `seconds` of CPU (it is deep in its work, past start-up). */
const waitForCpu = async (pid: number, seconds: number, exit: Promise<unknown>) => {
  let gone = false
  void exit.then(() => {
    gone = true
  })
  while (!gone && cpuSeconds(pid) < seconds) await new Promise((r) => setTimeout(r, 50))
  if (gone) throw new Error(`process ${pid} exited before using ${seconds} s of CPU`)
}

describe("1. schedule sizes", () => {
  it("a schedule past 10^9 steps in all is refused up front, naming the phase and the limit", async () => {
    expect(Either.isRight(parseSpec(JSON.stringify(withSteps(MAX_TOTAL_STEPS)), "s.json"))).toBe(true)
    const over = parseSpec(JSON.stringify(withSteps(MAX_TOTAL_STEPS - 5, 6)), "s.json")
    expect(Either.isLeft(over) && over.left.message).toBe(
      "s.json: phases[1].steps: the schedule would have 1,000,000,001 steps in all; interleave plans at most 1,000,000,000 (10^9)",
    )
    const file = writeJson(dir, "absurd.json", withSteps(1e15))
    for (const args of [
      ["verify", file],
      ["plan", file, "--count", "2"],
    ]) {
      const r = await cliInProcess(args)
      expect(r.code, r.stderr).toBe(2)
      expect(r.stderr.trim()).toBe(
        `interleave: ${file}: phases[0].steps: the schedule would have 1.00e+15 steps in all; interleave plans at most 1,000,000,000 (10^9)`,
      )
    }
  })

  it("verify of a 10^9-step schedule (minutes of work) stops at SIGTERM with 143", async () => {
    const file = writeJson(dir, "long.json", withSteps(MAX_TOTAL_STEPS))
    const child = spawn(process.execPath, [BIN, "verify", file], {
      cwd: ROOT,
      stdio: ["ignore", "ignore", "pipe"],
    })
    const done = exited(child)
    try {
      // Past start-up (well under 1 s of CPU) and into the walk, which takes minutes in all.
      await waitForCpu(child.pid!, 2, done)
      child.kill("SIGTERM")
      const r = await done
      expect(r.signal).toBeNull()
      expect(r.code, r.stderr).toBe(143)
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL")
    }
  }, 60_000)
})

describe("2. input files are read with a size limit", () => {
  const zero = join(dir, "zero.json")
  symlinkSync("/dev/zero", zero)
  const limit = (what: string) =>
    `${zero}: larger than 16 MiB, the most interleave reads from a ${what} (is it the file you meant?)`

  it("a scenario that is a symlink to /dev/zero is refused by verify, plan and run (exit 2, the limit named)", async () => {
    for (const args of [
      ["verify", zero],
      ["plan", zero],
      ["run", zero, "--store", join(dir, "z.db")],
      ["verify", "--log", join(dir, "none.jsonl"), "--spec", zero],
    ]) {
      const r = await cliInProcess(args)
      expect(r.code, `${args[0]}: ${r.stderr}`).toBe(2)
      expect(r.stderr.trim()).toBe(`interleave: ${limit("scenario file")}`)
    }
  })

  it("a sweep, a results file and a hardware profile that never end are refused the same way", async () => {
    const bench = await cliInProcess(["bench", zero, "--out", join(dir, "out")])
    expect(bench.code, bench.stderr).toBe(2)
    expect(bench.stderr.trim()).toBe(`interleave: ${limit("sweep file")}`)
    const fit = await cliInProcess(["sim", "fit", zero, "--out", join(dir, "p.json")])
    expect(fit.code, fit.stderr).toBe(2)
    expect(fit.stderr).toContain(
      `${zero}: larger than 256 MiB, the most interleave reads from a results file`,
    )
    const hw = await cliInProcess([
      "run",
      scenario("visual-only.json"),
      "--hardware",
      zero,
      "--steps",
      "2",
      "--store",
      join(dir, "z.db"),
    ])
    expect(hw.code, hw.stderr).toBe(2)
    expect(hw.stderr.trim()).toBe(`interleave: ${limit("hardware profile")}`)
  })

  it("a regular file past the limit is refused by its size, unread", async () => {
    const big = join(dir, "big.json")
    writeJson(dir, "big.json", "")
    truncateSync(big, MAX_INPUT_BYTES + 1)
    const r = await cliInProcess(["verify", big])
    expect(r.code).toBe(2)
    expect(r.stderr).toContain(`${big}: larger than 16 MiB, the most interleave reads from a scenario file`)
  })
})

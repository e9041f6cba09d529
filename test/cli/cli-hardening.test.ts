/**
 * Hardening found by an adversarial pass (issue 19, item 4): absurd schedule sizes, endless input
 * files, hostile trainers, signals sent to a wrapper alone, and stores that cannot be written.
 * Each case ends in its documented exit code with one clear line, and nothing is left running.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process"
import {
  closeSync,
  existsSync,
  openSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  truncateSync,
  writeFileSync,
  writeSync,
} from "node:fs"
import { join } from "node:path"
import { Either } from "effect"
import { afterAll, describe, expect, it } from "vitest"
import { MAX_INPUT_BYTES } from "../../core/common/index.ts"
import { MAX_TOTAL_STEPS, parseSpec } from "../../core/schedule/index.ts"
import { BIN, baseScenario, ROOT, scenario, tempDir, writeJson } from "../support/cli-helpers.ts"
import { cliInProcess } from "../support/cli-inprocess.ts"
import { running } from "../support/exec-support.ts"
import { countEvents } from "../support/store-file.ts"

/** A step-protocol trainer in Node (no Python needed), for item 6. */
const TRAINER = `// A step-protocol trainer for the hardening tests: --huge-at K writes a 10 MB line that is not
// JSON in place of step K's reply; --grandchild FILE starts \`sleep 300\` holding our stdout and
// stderr, and writes its pid to FILE.
import { spawn } from "node:child_process"
import { writeFileSync } from "node:fs"
import { createInterface } from "node:readline"
const arg = (name) => {
  const i = process.argv.indexOf(name)
  return i < 0 ? -1 : Number(process.argv[i + 1])
}
const hugeAt = arg("--huge-at")
const pidFile = process.argv[process.argv.indexOf("--grandchild") + 1]
if (process.argv.includes("--grandchild")) {
  const g = spawn("sleep", ["300"], { stdio: ["ignore", "inherit", "inherit"] })
  writeFileSync(pidFile, String(g.pid))
}
const send = (o) => process.stdout.write(\`\${JSON.stringify(o)}\\n\`)
for await (const raw of createInterface({ input: process.stdin })) {
  const req = JSON.parse(raw)
  if (req.type === "hello")
    send({ type: "ready", id: req.id, protocol: 1, trainer: { name: "h6", version: "1" }, device: "cpu", framework: "node", stateless: true, capabilities: { evaluate: false, checkpoint: false } })
  else if (req.type === "step") {
    if (req.plan.step === hugeAt) process.stdout.write(\`\${"x".repeat(10 * 1024 * 1024)}\\n\`)
    else send({ type: "outcome", id: req.id, step: req.plan.step, losses: { total: 1 / (1 + req.plan.step) }, durationMs: 1, samples: 8 })
  } else if (req.type === "close") {
    send({ type: "closed", id: req.id })
    process.exit(0)
  }
}
`

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

  it("plan --count past 1,000,000 (every step held and printed at once) is refused", async () => {
    const file = writeJson(dir, "plan-long.json", withSteps(MAX_TOTAL_STEPS))
    const r = await cliInProcess(["plan", file, "--count", String(MAX_TOTAL_STEPS)])
    expect(r.code).toBe(2)
    expect(r.stderr.trim()).toBe(
      "interleave: --count: at most 1,000,000 steps are shown at once, got 1,000,000,000 (`interleave verify` checks the whole schedule)",
    )
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

describe("4. --steps past the end of the schedule", () => {
  it("run --steps 300000 of a 9,090-step scenario is refused (exit 2) before a store is made; fork too", async () => {
    const store = join(dir, "steps.db")
    const r = await cliInProcess([
      "run",
      scenario("trex2-joint-8to1.json"),
      "--steps",
      "300000",
      "--store",
      store,
    ])
    expect(r.code).toBe(2)
    expect(r.stderr.trim()).toBe(
      "interleave: --steps 300000: the schedule has only 9,090 steps; give --steps 9090 or less, or leave --steps out to run it all",
    )
    expect(existsSync(store)).toBe(false)
    const small = writeJson(dir, "small.json", withSteps(45))
    const whole = await cliInProcess(["run", small, "--steps", "45", "--run-id", "whole", "--store", store])
    expect(whole.code, whole.stderr).toBe(0)
    const fork = await cliInProcess([
      "fork",
      "whole",
      "--at",
      "9",
      "--ratio",
      "2:1",
      "--steps",
      "46",
      "--store",
      store,
    ])
    expect(fork.code).toBe(2)
    expect(fork.stderr).toContain("--steps 46: the schedule has only 45 steps")
  })
})

describe("5. a SQLite store whose b-tree is malformed", () => {
  it("run, resume and runs refuse it with exit 3 naming the file; nothing is written to it", async () => {
    const store = join(dir, "damaged.db")
    for (const id of ["a", "b"]) {
      const r = await cliInProcess([
        "run",
        scenario("visual-only.json"),
        "--steps",
        "3000",
        "--run-id",
        id,
        "--store",
        store,
      ])
      expect(r.code, r.stderr).toBe(0)
    }
    // A page in the middle of the file (of the events table) overwritten with garbage.
    const size = statSync(store).size
    expect(existsSync(`${store}-wal`)).toBe(false)
    const fd = openSync(store, "r+")
    writeSync(fd, Buffer.alloc(4096, 0xff), 0, 4096, Math.floor(size / 8192) * 4096)
    closeSync(fd)
    const before = readFileSync(store)
    const damaged = `the store file is damaged (SQLite: database disk image is malformed)`
    for (const args of [
      ["run", scenario("visual-only.json"), "--steps", "50", "--run-id", "c"],
      ["resume", "a"],
      // Reads each run's stream, and so meets the damaged page (a reader that never reads it may
      // go on reading the rest).
      ["runs"],
    ]) {
      const r = await cliInProcess([...args, "--store", store])
      expect(r.code, `${args[0]}: ${r.stderr}`).toBe(3)
      expect(r.stderr).toContain(store)
      expect(r.stderr).toContain(damaged)
      expect(r.stderr.trim().split("\n")).toHaveLength(1)
    }
    expect(readFileSync(store).equals(before)).toBe(true)
  })
})

describe("6. a trainer that writes a huge line, or leaves a grandchild holding its stdout", () => {
  // A step-protocol trainer, in Node so that it needs no Python.
  const trainer = join(dir, "trainer.mjs")
  writeFileSync(trainer, TRAINER)
  const exec = (args: string, extra: string[] = []) => [
    "run",
    scenario("visual-only.json"),
    "--steps",
    "20",
    "--adapter",
    "exec",
    "--cmd",
    `${process.execPath} ${trainer} ${args}`,
    "--store",
    join(dir, "exec.db"),
    ...extra,
  ]

  it("a 10 MB line that is not a reply is named as a line too long, quoting its start, not as a timeout", async () => {
    // A step timeout far longer than reading 10 MB takes, linearly or not.
    const r = await cliInProcess(exec("--huge-at 5", ["--step-timeout", "120"]))
    expect(r.code, r.stderr).toBe(1)
    expect(r.stderr).toContain(
      `adapter-error at step 5: the trainer wrote a line of more than 1 MiB on stdout (a reply is one short JSON line), starting "${"x".repeat(80)}"…`,
    )
    expect(r.stderr).not.toMatch(/step timeout/)
  })

  it("a grandchild that holds the trainer's stdout (sleep 300) ends with the run", async () => {
    const pidFile = join(dir, "grandchild.pid")
    const r = await cliInProcess(exec(`--grandchild ${pidFile}`))
    expect(r.code, r.stderr).toBe(0)
    const pid = Number(readFileSync(pidFile, "utf8"))
    try {
      expect(running(pid)).toBe(false)
    } finally {
      if (running(pid)) process.kill(pid, "SIGKILL")
    }
  })
})

describe("7. a signal sent to the npx wrapper alone, as a process manager does", () => {
  const store = join(dir, "npx.db")
  // Never ends by itself (the largest schedule there may be).
  const endless = writeJson(dir, "endless.json", withSteps(MAX_TOTAL_STEPS))

  /** The pids of processes whose command line names the run (pgrep's exit 1 is "none"). */
  const processesOf = (runId: string): number[] => {
    const r = spawnSync("pgrep", ["-f", "--", `--run-id ${runId}`], { encoding: "utf8" })
    if (r.status === 1) return []
    if (r.status !== 0) throw new Error(`pgrep failed (${r.status}): ${r.stderr}`)
    return r.stdout.trim().split("\n").filter(Boolean).map(Number)
  }

  for (const [signal, reason] of [
    ["SIGTERM", "stopped: the npx or npm that started it"],
    ["SIGINT", "stopped by SIGINT (Ctrl-C)"],
  ] as const)
    it(`${signal} to npx alone: the run ends with RunInterrupted and no interleave process is left`, async () => {
      // npx links the project's bin through a cache folder on first use; set it up unhurried.
      expect(spawnSync("npx", ["--no-install", "interleave", "--version"], { cwd: ROOT }).status).toBe(0)
      const runId = `npx-${signal}`
      // npx in a process group of its own: the signal below goes to its pid alone, never its group.
      const npx = spawn(
        "npx",
        ["--no-install", "interleave", "run", endless, "--run-id", runId, "--store", store],
        {
          cwd: ROOT,
          detached: true,
          stdio: ["ignore", "ignore", "pipe"],
        },
      )
      const done = exited(npx)
      try {
        while (countEvents(store, runId, "StepCompleted") < 1000) {
          if (npx.exitCode !== null) throw new Error(`npx exited early: ${(await done).stderr}`)
          await new Promise((r) => setTimeout(r, 50))
        }
        // npx, its sh -c and interleave.
        expect(processesOf(runId).length).toBeGreaterThanOrEqual(2)
        process.kill(npx.pid!, signal)
        await done
        // interleave notices within a poll (250 ms) and flushes what it has.
        // Bounded, so that a failure still ends what it started (below) before the test's timeout.
        for (let i = 0; processesOf(runId).length > 0; i++) {
          if (i > 300) throw new Error("interleave still runs 30 s after its wrapper was signalled")
          await new Promise((r) => setTimeout(r, 100))
        }
        const show = await cliInProcess(["show", runId, "--json", "--store", store])
        expect(show.code, show.stderr).toBe(0)
        const shown = JSON.parse(show.stdout)
        expect(shown.status).toBe("interrupted")
        expect(shown.lastInterruption.reason).toContain(reason)
      } finally {
        for (const pid of processesOf(runId)) process.kill(pid, "SIGKILL")
      }
    }, 60_000)
})

describe("8. resuming a run that another live process is writing", () => {
  it("a second resume while the first is writing is exit 3, naming the other writer", async () => {
    const store = join(dir, "resume.db")
    const endless = writeJson(dir, "endless-resume.json", withSteps(MAX_TOTAL_STEPS))
    const runId = "resumed-twice"
    const binary = (args: string[]) =>
      spawn(process.execPath, [BIN, ...args, "--store", store], {
        cwd: ROOT,
        stdio: ["ignore", "ignore", "pipe"],
      })
    const waitForSteps = async (child: ChildProcess, n: number) => {
      while (countEvents(store, runId, "StepCompleted") < n) {
        if (child.exitCode !== null || child.signalCode !== null) throw new Error("the writer ended early")
        await new Promise((r) => setTimeout(r, 50))
      }
    }
    const run = binary(["run", endless, "--run-id", runId])
    const ran = exited(run)
    await waitForSteps(run, 1000)
    run.kill("SIGTERM")
    expect((await ran).code).toBe(143)
    const first = binary(["resume", runId])
    const resumed = exited(first)
    try {
      await waitForSteps(first, countEvents(store, runId, "StepCompleted") + 1000)
      const second = await cliInProcess(["resume", runId, "--store", store])
      expect(second.code, second.stderr).toBe(3)
      expect(second.stderr.trim()).toMatch(
        new RegExp(
          `^interleave: run "${runId}" is being written by another live writer \\(process ${first.pid} on .*\\); stop it first \\(Ctrl-C keeps what it did\\), then \`interleave resume ${runId}\`$`,
        ),
      )
      first.kill("SIGTERM")
      expect((await resumed).code).toBe(143)
    } finally {
      if (first.exitCode === null && first.signalCode === null) first.kill("SIGKILL")
    }
  }, 60_000)
})

/**
 * Long work says how it goes, and the store can be sorted out (issue 8, items 11, 32 and 33):
 * a line per finished phase off a TTY (even when a phase ends inside one append batch), a status
 * line with steps/s, elapsed, ETA and phase on a TTY (through `script`, which gives the binary a
 * pseudo-terminal), `runs` filters, and `fork --steps` with one `-fork` suffix however deep.
 */
import { spawnSync } from "node:child_process"
import { rmSync } from "node:fs"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { fitLine } from "../../cli/progress.ts"
import { BIN, ROOT, runCli, scenario, tempDir } from "../support/cli-helpers.ts"
import { cliInProcess } from "../support/cli-inprocess.ts"

const dir = tempDir("interleave-progress-")
afterAll(() => rmSync(dir, { recursive: true, force: true }))
const store = join(dir, "runs.db")
const cli = (args: ReadonlyArray<string>) => cliInProcess([...args, "--store", store])

beforeAll(async () => {
  // trex2-joint-8to1: a 90-step text-only phase, then the joint phase.
  const r = await cli(["run", scenario("trex2-joint-8to1.json"), "--steps", "200", "--run-id", "p"])
  expect(r.code, r.stderr).toBe(0)
  const t = await cli(["run", scenario("text-first-3to2.json"), "--steps", "40", "--run-id", "t"])
  expect(t.code, t.stderr).toBe(0)
})

describe("progress off a TTY: a line per finished phase", () => {
  it("run and replay name the phase that finished and where, on stderr only", async () => {
    const run = await runCli([
      "run",
      scenario("trex2-joint-8to1.json"),
      "--steps",
      "200",
      "--run-id",
      "q",
      "--store",
      store,
    ])
    expect(run.code).toBe(0)
    expect(run.stderr).toBe("q: phase text-only done at step 90/200\n")
    expect(run.stdout).not.toContain("phase text-only done")
    const replay = await runCli(["replay", "q", "--store", store])
    expect(replay.code).toBe(0)
    expect(replay.stderr).toBe("replay q: phase text-only done at step 90/200\n")
  })
})

const noScript =
  spawnSync("script", ["--version"]).status === 0 ? undefined : "util-linux `script` is not installed"
if (noScript !== undefined) console.warn(`\n!!! cli-progress: the TTY case is SKIPPED: ${noScript} !!!\n`)

/** The environment of a terminal user: no NO_COLOR (the status line is drawn only with colour allowed). */
const ttyEnv = () => {
  const env: Record<string, string | undefined> = { ...process.env, TERM: "xterm-256color" }
  delete env.NO_COLOR
  delete env.INTERLEAVE_PROGRESS
  return env
}

describe.skipIf(noScript !== undefined)("progress on a TTY", () => {
  it("draws a status line with the step, steps/s, elapsed, ETA and phase, and clears it at the end", () => {
    const r = spawnSync(
      "script",
      // A terminal wide enough for every part of the line.
      ["-qec", `stty cols 200; ${process.execPath} ${BIN} replay p --store ${store}`, "/dev/null"],
      {
        cwd: ROOT,
        encoding: "utf8",
        env: ttyEnv(),
      },
    )
    expect(r.status).toBe(0)
    const out = r.stdout.replaceAll("\r", "\n")
    expect(out).toMatch(
      /replay p \[#+\.*\] 100\.0% step 200\/200 · [\d.,k]+ steps\/s · elapsed .+ · ETA .+ · phase joint/,
    )
    expect(out).toContain("\x1b[2K")
    expect(out).toContain("run p: replay matches the log")
  })
})

describe("the status line fits the terminal", () => {
  it("fitLine keeps whole parts in order within columns - 1, and cuts a lone first part with …", () => {
    const parts = ["run x [####] 50.0% step 5/10", "1.2k steps/s", "elapsed 3 s", "ETA 3 s", "phase joint"]
    expect(fitLine(parts, 200)).toBe(parts.join(" · "))
    expect(fitLine(parts, 60)).toBe("run x [####] 50.0% step 5/10 · 1.2k steps/s · elapsed 3 s")
    for (const cols of [1, 2, 10, 33, 34, 45, 59, 60, 61, 80]) {
      const line = fitLine(parts, cols)
      expect([...line].length).toBeLessThanOrEqual(Math.max(1, cols - 1))
      expect(line.length).toBeGreaterThan(0)
    }
    expect(fitLine(parts, 10)).toBe("run x [#…")
  })

  // Each redraw is the text after "\r\x1b[2K": at most columns - 1 characters, so nothing wraps and
  // no stale piece of a longer line stays behind (a pseudo-terminal with 0 columns used to get
  // lines one character short of their full length).
  const redraws = (cols: number | undefined) => {
    const size = cols === undefined ? "" : `stty cols ${cols}; `
    const r = spawnSync(
      "script",
      ["-qec", `${size}${process.execPath} ${BIN} replay p --store ${store}`, "/dev/null"],
      { cwd: ROOT, encoding: "utf8", env: ttyEnv() },
    )
    expect(r.status).toBe(0)
    return r.stdout
      .split("\r\x1b[2K")
      .slice(1)
      .map((d) => d.split(/\r|\n/)[0]!)
      .filter((d) => d.startsWith("replay p ["))
  }
  it.skipIf(noScript !== undefined).each([120, 60])("on a %i-column terminal", (cols) => {
    const drawn = redraws(cols)
    expect(drawn.length).toBeGreaterThan(0)
    for (const d of drawn) expect([...d].length).toBeLessThanOrEqual(cols - 1)
    expect(drawn.at(-1)).toMatch(/^replay p \[#+\.*\] 100\.0% step 200\/200/)
  })
  it.skipIf(noScript !== undefined)("on a pseudo-terminal that reports 0 columns: 80", () => {
    for (const d of redraws(undefined)) expect([...d].length).toBeLessThanOrEqual(79)
  })
})

describe("runs filters", () => {
  const ids = async (...filters: string[]) =>
    (JSON.parse((await cli(["runs", "--json", ...filters])).stdout) as Array<{ runId: string }>)
      .map((r) => r.runId)
      .sort()

  it("by status, scenario (name or source) and adapter; together they all apply", async () => {
    expect(await ids("--status", "completed")).toEqual(expect.arrayContaining(["p", "t"]))
    expect(await ids("--status", "interrupted")).toEqual([])
    expect(await ids("--scenario", "text-first")).toEqual(["t"])
    expect(await ids("--scenario", "scenarios/trex2")).not.toContain("t")
    expect(await ids("--adapter", "tfjs")).toEqual([])
    expect(await ids("--adapter", "sim", "--scenario", "text-first")).toEqual(["t"])
    const bad = await cli(["runs", "--status", "sleeping"])
    expect(bad.code).toBe(2)
    expect(bad.stderr).toContain("--status")
  })
})

describe("fork --steps and its run ids", () => {
  it("defaults to the parent's length, takes --steps, and a fork of a fork has one -fork suffix", async () => {
    const first = await cli(["fork", "t", "--at", "20", "--ratio", "1:1", "--json"])
    expect(first.code, first.stderr).toBe(0)
    const a = JSON.parse(first.stdout) as { runId: string; stepsCompleted: number }
    expect(a.stepsCompleted).toBe(40)
    expect(a.runId).toMatch(/^text-first-3to2-fork-/)
    const second = await cli(["fork", a.runId, "--at", "30", "--ratio", "2:1", "--steps", "35", "--json"])
    expect(second.code, second.stderr).toBe(0)
    const b = JSON.parse(second.stdout) as { runId: string; stepsCompleted: number }
    expect(b.stepsCompleted).toBe(35)
    expect(b.runId).toMatch(/^text-first-3to2-fork-/)
    expect(b.runId).not.toContain("-fork-fork")
    expect(b.runId).not.toBe(a.runId)
  })
})

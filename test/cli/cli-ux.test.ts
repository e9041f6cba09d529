/**
 * What a user types: help pages (plain text off a TTY, wrapped, an example per command, choices and
 * defaults stated), flag errors that name the flag (with "did you mean"), no internal class names,
 * files that are not JSON objects, run ids, absurd run lengths. In-process, except where the real
 * binary's bytes matter (`interleave --help | cat`).
 */
import { rmSync } from "node:fs"
import { join } from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { commands } from "../../cli/commands/index.ts"
import { baseScenario, runCli, scenario, tempDir, writeJson } from "../support/cli-helpers.ts"
import { cliInProcess } from "../support/cli-inprocess.ts"

const dir = tempDir("interleave-ux-")
afterAll(() => rmSync(dir, { recursive: true, force: true }))
const store = join(dir, "runs.db")

const ESC = "\x1b"

describe("help", () => {
  it("the real binary's --help through a pipe has no escape character, also with NO_COLOR and TERM=dumb", async () => {
    for (const env of [{}, { NO_COLOR: "1" }, { TERM: "dumb" }] as Array<Record<string, string>>) {
      const r = await runCli(["--help"], { env })
      expect(r.code).toBe(0)
      expect(r.stdout).not.toContain(ESC)
      expect(r.stdout).toContain("Commands")
    }
    const sub = await runCli(["run", "--help"])
    expect(sub.stdout).not.toContain(ESC)
  })

  it("every command's page is wrapped to 80 columns, has an example, names its choices and defaults, and no filler", async () => {
    for (const c of commands) {
      const r = await cliInProcess([c.doc.name, "--help"])
      expect(r.code, c.doc.name).toBe(0)
      const page = r.stdout
      for (const l of page.split("\n")) expect(l.length, `${c.doc.name}: ${l}`).toBeLessThanOrEqual(80)
      expect(page, c.doc.name).toMatch(/\nExamples?\n {2}interleave /)
      expect(page).not.toMatch(/A user-defined piece of text|This setting is optional|\$ show/)
      if (c.doc.flags.some((f) => f.name === "store"))
        expect(page).toMatch(/--store FILE\|URL[\s\S]*Default:\s+\.interleave\/runs\.db/)
      expect(page).toContain(`Usage\n  interleave ${c.doc.name}`)
    }
    const run = (await cliInProcess(["run", "--help"])).stdout
    expect(run).toMatch(/--adapter NAME[\s\S]*One of: sim, tfjs/)
    expect(run).toMatch(/--backend NAME[\s\S]*One of: cpu, wasm, webgpu,\s+tensorflow/)
  })

  it("`interleave`, `interleave help run` and `interleave run -h` show help, exit 0", async () => {
    expect((await cliInProcess([])).stdout).toContain("Commands")
    expect((await cliInProcess(["help", "run"])).stdout).toContain("Usage\n  interleave run <scenario>")
    expect((await cliInProcess(["run", "-h"])).code).toBe(0)
  })
})

describe("flag errors name the flag", () => {
  const bad = async (args: string[], pattern: RegExp) => {
    const r = await cliInProcess(args)
    expect(r.code, r.stderr).toBe(2)
    expect(r.stderr).toMatch(pattern)
    expect(r.stderr.trim().split("\n")).toHaveLength(1)
    expect(r.stderr).not.toMatch(
      /CliFailure|InvalidValue|ValidationError|Expected one of the following cases/,
    )
    expect(r.stdout).toBe("")
  }

  it("mistyped options and commands get a suggestion", async () => {
    await bad(
      ["run", scenario("trex2-joint-8to1.json"), "--stpes", "3"],
      /unknown option --stpes \(did you mean --steps\?\)/,
    )
    await bad(["rnu"], /unknown command "rnu" \(did you mean run\?\)/)
    await bad(["verify", "--lgo", "x"], /unknown option --lgo \(did you mean --log\?\)/)
  })

  it("bad values name the flag and the reason", async () => {
    await bad(
      ["run", scenario("trex2-joint-8to1.json"), "--adapter", "foo"],
      /--adapter: must be one of sim, tfjs, pytorch, exec, got "foo"/,
    )
    await bad(
      ["run", scenario("trex2-joint-8to1.json"), "--steps", "many"],
      /--steps: expected an integer, got "many"/,
    )
    await bad(["plan", scenario("trex2-joint-8to1.json"), "--count"], /--count: needs a value/)
    await bad(["run"], /run: missing <scenario>/)
    await bad(["show", "a", "b"], /unexpected argument "b"/)
  })

  it("run ids are checked: paths, empty, control and bidi characters, flags, overlong ids", async () => {
    const s = scenario("visual-only.json")
    for (const id of ["../../../x", "", "a\nb", "a\u202eb", "x".repeat(300)])
      await bad(["run", s, "--run-id", id, "--steps", "3", "--store", store], /--run-id: .* (must|is)/)
  })
})

describe("files that are not what they should be", () => {
  it("a scenario that is [] or null says it must be a JSON object", async () => {
    for (const [name, body] of [
      ["arr.json", "[]"],
      ["null.json", "null"],
      ["num.json", "42"],
    ] as const) {
      const file = writeJson(dir, name, body)
      const r = await cliInProcess(["verify", file])
      expect(r.code).toBe(2)
      expect(r.stderr).toMatch(/a scenario must be a JSON object, got (an array|null|a number)/)
      expect(r.stderr).not.toMatch(/Encoded side|Expected Struct/)
    }
  })

  it("a run of an absurd length gets a warning with its estimated time and store size before it starts", async () => {
    const huge = writeJson(dir, "huge.json", {
      ...baseScenario(),
      // The most steps a schedule may have (MAX_TOTAL_STEPS); past it, the scenario is refused.
      phases: [{ name: "joint", steps: 1e9, ratio: { visual: 8, text: 1 } }],
    })
    const r = await cliInProcess(["run", huge, "--steps", "200", "--store", store])
    expect(r.code).toBe(0)
    expect(r.stderr).not.toMatch(/warning/)
    const big = await cliInProcess(["plan", huge, "--count", "2"])
    expect(big.code).toBe(0)
    const { sizeWarning } = await import("../../cli/commands/run.ts")
    expect(sizeWarning(1e15, "sim")).toMatch(
      /1\.00e\+15 steps would take about 31\.7 years on sim and write about .* PiB/,
    )
    expect(sizeWarning(9090, "sim")).toBeUndefined()
  })
})

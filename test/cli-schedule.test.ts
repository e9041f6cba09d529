/** `plan` and `verify` through the real binary, including every bad-input case of a scenario file. */
import { describe, expect, it } from "vitest"
import { expectedVisualSteps } from "../core/schedule/plan.ts"
import { baseScenario, runCli, scenario, tempDir, writeJson } from "./cli-helpers.ts"

const dir = tempDir()

describe("interleave verify <scenario>", () => {
  it("passes the T-Rex2 joint scenario with the counts the closed formula gives", async () => {
    const r = await runCli(["verify", scenario("trex2-joint-8to1.json"), "--json"])
    expect(r.stderr).toBe("")
    expect(r.code).toBe(0)
    const out = JSON.parse(r.stdout)
    const visual =
      expectedVisualSteps({ steps: 90, ratio: { visual: 0, text: 1 }, order: "visual-first" }) +
      expectedVisualSteps({ steps: 9000, ratio: { visual: 8, text: 1 }, order: "visual-first" })
    expect(out).toMatchObject({
      ok: true,
      steps: 9090,
      visualSteps: visual,
      textSteps: 9090 - visual,
      violations: [],
    })
    expect(visual).toBe(8000)
    expect(out.updates).toEqual({ visual: 8000, text: 1090 })
  })

  it("passes every bundled scenario", async () => {
    for (const f of [
      "petdino-swin-t.json",
      "visual-accumulate-4.json",
      "text-first-3to2.json",
      "visual-only.json",
    ]) {
      const r = await runCli(["verify", scenario(f)])
      expect(r.code, `${f}: ${r.stderr}`).toBe(0)
      expect(r.stdout).toContain("PASS")
    }
  })
})

describe("interleave plan", () => {
  it("shows VVVVVVVVT cycles in the joint phase", async () => {
    const r = await runCli(["plan", scenario("trex2-joint-8to1.json"), "--from", "90", "--count", "27"])
    expect(r.code).toBe(0)
    expect(r.stdout).toContain("joint: VVVVVVVVT VVVVVVVVT VVVVVVVVT")
  })

  it("prints StepPlan objects with --json", async () => {
    const r = await runCli([
      "plan",
      scenario("visual-accumulate-4.json"),
      "--from",
      "0",
      "--count",
      "9",
      "--json",
    ])
    expect(r.code).toBe(0)
    const plans = JSON.parse(r.stdout)
    expect(plans.map((p: { modality: string }) => p.modality[0]).join("")).toBe("vvvvvvvvt")
    expect(plans.map((p: { update: boolean }) => p.update)).toEqual([
      false,
      false,
      false,
      true,
      false,
      false,
      false,
      true,
      true,
    ])
    expect(Object.keys(plans[0]).sort()).toEqual(
      ["cycle", "lr", "micro", "modality", "phase", "phaseStep", "position", "step", "update"].sort(),
    )
  })

  it("rejects --from outside the schedule with exit 2", async () => {
    const r = await runCli(["plan", scenario("text-first-3to2.json"), "--from", "99999"])
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/--from: step 99999 is outside the schedule/)
  })
})

/** A copy of the base scenario with the value at `path` replaced (undefined removes it). */
const withValue = (path: ReadonlyArray<string | number>, value: unknown) => {
  const root = structuredClone(baseScenario()) as Record<string | number, unknown>
  let node = root
  for (const k of path.slice(0, -1)) node = node[k] as Record<string | number, unknown>
  const last = path.at(-1)!
  if (value === undefined) delete node[last]
  else node[last] = value
  return root
}

const cases: ReadonlyArray<{ name: string; json: unknown; message: RegExp }> = [
  {
    name: "0:0 ratio",
    json: withValue(["phases", 1, "ratio"], { visual: 0, text: 0 }),
    message: /phases\[1\]\.ratio: visual and text cannot both be 0/,
  },
  { name: "unknown key", json: withValue(["phasess"], []), message: /phasess: unknown key/ },
  {
    name: "typo in a nested key",
    json: withValue(["batch", "visual"], { sise: 2 }),
    message: /batch\.visual\.sise: unknown key/,
  },
  {
    name: "negative steps",
    json: withValue(["phases", 0, "steps"], -3),
    message: /phases\[0\]\.steps: must be an integer >= 1/,
  },
  {
    name: "zero steps",
    json: withValue(["phases", 0, "steps"], 0),
    message: /phases\[0\]\.steps: must be an integer >= 1/,
  },
  {
    name: "negative ratio",
    json: withValue(["phases", 1, "ratio", "visual"], -8),
    message: /phases\[1\]\.ratio\.visual: must be an integer >= 0/,
  },
  {
    name: "non-finite lr",
    json: JSON.stringify(withValue(["optimizer", "lr"], 12345)).replace("12345", "1e999"),
    message: /optimizer\.lr: must be a finite number > 0, got Infinity/,
  },
  {
    name: "negative lr",
    json: withValue(["optimizer", "lr"], -1),
    message: /optimizer\.lr: must be a finite number > 0/,
  },
  {
    name: "accumulation < 1",
    json: withValue(["batch", "visual", "accumulation"], 0),
    message: /batch\.visual\.accumulation: must be an integer >= 1/,
  },
  {
    name: "decay step out of range",
    json: withValue(["lr"], { decay: { kind: "multistep", milestones: [10, 500], gamma: 0.1 } }),
    message: /lr\.decay\.milestones\[1\]: step 500 is out of range/,
  },
  {
    name: "unknown optimizer",
    json: withValue(["optimizer", "kind"], "lamb"),
    message: /optimizer\.kind: must be one of "adamw", "adam", "sgd", got "lamb"/,
  },
  {
    name: "a string where a number belongs",
    json: withValue(["optimizer", "lr"], "fast"),
    message: /optimizer\.lr: must be a finite number > 0, got "fast"/,
  },
  { name: "missing batch", json: withValue(["batch"], undefined), message: /batch: is required/ },
  {
    name: "bad order",
    json: withValue(["phases", 1, "order"], "random"),
    message: /phases\[1\]\.order: must be one of "visual-first", "text-first", got "random"/,
  },
]

describe("bad scenario files: one clear error, exit 2, no stack trace", () => {
  for (const c of cases) {
    it(c.name, async () => {
      const file = writeJson(dir, `${c.name.replace(/\W+/g, "-")}.json`, c.json)
      for (const cmd of ["verify", "plan"]) {
        const r = await runCli([cmd, file])
        expect(r.code).toBe(2)
        expect(r.stderr).toMatch(c.message)
        expect(r.stderr).toContain(file)
        expect(r.stderr).not.toMatch(/\n\s+at /)
        expect(r.stderr.trim().split("\n")).toHaveLength(1)
      }
    })
  }

  it("a JSON syntax error names the line", async () => {
    const file = writeJson(dir, "syntax.json", '{\n  "name": "x",\n  "phases": [,]\n}')
    const r = await runCli(["verify", file])
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/invalid JSON at line 3/)
  })

  it("a missing file is named", async () => {
    const r = await runCli(["verify", `${dir}/nope.json`])
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/nope\.json: no such scenario file/)
  })
})

describe("--help", () => {
  it("is available on every command", async () => {
    for (const cmd of [
      "plan",
      "verify",
      "run",
      "runs",
      "show",
      "replay",
      "resume",
      "fork",
      "diff",
      "export",
      "import",
      "backends",
    ]) {
      const r = await runCli([cmd, "--help"])
      expect(r.code, cmd).toBe(0)
      expect(r.stdout, cmd).toContain(cmd)
    }
  })
})

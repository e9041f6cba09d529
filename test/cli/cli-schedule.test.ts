/**
 * `plan` and `verify`, including every bad-input case of a scenario file: in-process (the command
 * exactly as the binary runs it, with a capturing console), plus a smoke test of the real binary.
 */
import { existsSync, rmSync } from "node:fs"
import { join } from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { baseScenario, runCli as runBinary, scenario, tempDir, writeJson } from "../support/cli-helpers.ts"
import { cliInProcess as runCli } from "../support/cli-inprocess.ts"

const dir = tempDir()
afterAll(() => rmSync(dir, { recursive: true, force: true }))

describe("interleave verify <scenario>", () => {
  it("passes the T-Rex2 joint scenario with the counts the closed formula gives", async () => {
    const r = await runCli(["verify", scenario("trex2-joint-8to1.json"), "--json"])
    expect(r.stderr).toBe("")
    expect(r.code).toBe(0)
    const out = JSON.parse(r.stdout)
    // 90 text-only steps, then floor(9000 / 9) * 8 + min(9000 mod 9, 8) visual steps.
    const visual = 0 + 1000 * 8 + 0
    expect(out).toMatchObject({
      ok: true,
      steps: 9090,
      visualSteps: visual,
      textSteps: 9090 - visual,
      violations: [],
    })
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

describe("interleave verify: the text output counts what the JSON counts", () => {
  it("FAIL gives the total and, per rule, how many were found and how many are shown", async () => {
    const store = join(dir, "verify-counts.db")
    const run = await runCli([
      "run",
      scenario("trex2-joint-8to1.json"),
      "--steps",
      "200",
      "--store",
      store,
      "--run-id",
      "v",
    ])
    expect(run.code, run.stderr).toBe(0)
    const args = ["verify", "--log", "v", "--spec", scenario("text-first-3to2.json"), "--store", store]
    const text = await runCli(args)
    const data = JSON.parse((await runCli([...args, "--json"])).stdout)
    expect(text.code).toBe(1)
    const rules = Object.keys(data.violationCounts)
    expect(text.stdout).toContain(`FAIL: ${data.violationTotal} violations of ${rules.length} rules`)
    expect(data.violationTotal).toBeGreaterThan(data.violations.length)
    for (const rule of rules) {
      const found = data.violationCounts[rule]
      const shown = data.violations.filter((v: { rule: string }) => v.rule === rule).length
      const head = `  [${rule}] ${found} violation${found === 1 ? "" : "s"}`
      expect(text.stdout).toContain(shown < found ? `${head}, first ${shown} shown\n` : `${head}\n`)
    }
    // Each shown violation names its step first.
    const shownLines = text.stdout.split("\n").filter((l) => l.startsWith("    "))
    expect(shownLines).toHaveLength(data.violations.length)
    for (const l of shownLines) expect(l).toMatch(/^ {4}(step|position) \d+/)
  })

  it("PASS lists the rules checked", async () => {
    const r = await runCli(["verify", scenario("visual-only.json")])
    expect(r.stdout).toContain(
      "PASS: all 11 rules hold: step-sequence, phase-boundaries, modality-pattern, max-run, phase-counts, accumulation, lr-finite, lr-warmup, lr-decay, lr-group-ratios, lr-matches-spec",
    )
  })
})

describe("interleave plan", () => {
  it("summarises each phase: its predicate in a trainer's words, its first cycles, its counts", async () => {
    const trex = await runCli(["plan", scenario("trex2-joint-8to1.json")])
    expect(trex.code).toBe(0)
    expect(trex.stdout).toContain("iter = the step within its phase, from 0")
    expect(trex.stdout).toContain(
      [
        "phase text-only: steps 0..89 (90), 0:1 visual-first, offset 0",
        "  always text (0:1)",
        "  first cycles: T T ...",
        "  0 visual + 90 text steps",
        "phase joint: steps 90..9089 (9,000), 8:1 visual-first, offset 0",
        "  visual iff iter % 9 < 8   (text at iter 8, 17, 26, ...)",
        "  first cycles: VVVVVVVVT VVVVVVVVT ...",
        "  8,000 visual + 1,000 text steps",
      ].join("\n"),
    )
    const petdino = await runCli(["plan", scenario("petdino-swin-t.json"), "--count", "9"])
    expect(petdino.stdout).toContain(
      [
        "phase joint: steps 0..11999 (12,000), 8:1 visual-first, offset 1",
        "  visual iff (iter + 1) % 9 < 8   (text at iter 7, 16, 25, ...)",
        "  first cycles: VVVVVVVT VVVVVVVVT ...",
        "  10,667 visual + 1,333 text steps",
      ].join("\n"),
    )
    const textFirst = await runCli(["plan", scenario("text-first-3to2.json")])
    expect(textFirst.stdout).toContain("  visual iff iter % 5 >= 2   (text at iter 0, 1, 5, ...)")
    expect(textFirst.stdout).toContain("  first cycles: TTVVV TTVVV ...")
  })

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
    name: "offset as long as the cycle",
    json: withValue(["phases", 1, "offset"], 9),
    message: /phases\[1\]\.offset: must be less than the cycle length V\+T = 9, got 9/,
  },
  {
    name: "negative offset",
    json: withValue(["phases", 1, "offset"], -1),
    message: /phases\[1\]\.offset: must be an integer >= 0/,
  },
  {
    name: "an lr that overflows by its modality factor",
    json: { ...withValue(["optimizer", "lr"], 1e300), lr: { modalityFactor: { visual: 1, text: 1e10 } } },
    message:
      /lr\.modalityFactor\.text: 10000000000 x the base lr of group "backbone" \(1e\+299\) is Infinity; every lr of the run must be finite/,
  },
  {
    name: "an lr multiplier that overflows",
    json: {
      ...withValue(["optimizer", "lr"], 1e300),
      optimizer: { kind: "adamw", lr: 1e300, groups: [{ name: "backbone", lrMultiplier: 1e10 }] },
    },
    message: /optimizer\.groups\[0\]\.lrMultiplier: optimizer\.lr 1e\+300 x 10000000000 is Infinity/,
  },
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

describe("interleave run refuses a spec that verify would reject", () => {
  it("an lr of 1e308 x a modality factor of 1e308: exit 2, the field named, no store created", async () => {
    const bad = structuredClone(baseScenario()) as Record<string, unknown>
    bad.optimizer = { kind: "adamw", lr: 1e308, groups: [{ name: "head" }] }
    bad.lr = { modalityFactor: { visual: 1, text: 1e308 } }
    const file = writeJson(dir, "overflow.json", bad)
    const store = join(dir, "x.db")
    const r = await runCli(["run", file, "--store", store])
    expect(r.code).toBe(2)
    expect(r.stderr).toContain(
      'lr.modalityFactor.text: 1e+308 x the base lr of group "head" (1e+308) is Infinity',
    )
    expect(existsSync(store)).toBe(false)
  })
})

describe("the real binary", () => {
  it("verify, plan, a bad scenario and --help: the same output and exit codes as in-process", async () => {
    const bad = writeJson(dir, "smoke-bad.json", { ...baseScenario(), phases: [] })
    for (const args of [
      ["verify", scenario("trex2-joint-8to1.json"), "--json"],
      ["plan", scenario("petdino-swin-t.json"), "--count", "3"],
      ["verify", bad],
      ["plan", "--help"],
    ]) {
      const [spawned, inProcess] = await Promise.all([runBinary(args), runCli(args)])
      expect(spawned.code, args.join(" ")).toBe(inProcess.code)
      expect(spawned.stdout).toBe(inProcess.stdout)
      expect(spawned.stderr).toBe(inProcess.stderr)
      expect(spawned.stderr).not.toMatch(/\n\s+at /)
    }
  })
})

/**
 * The mmengine recorder hook in a real mmengine 0.10.7 Runner, checked by the real CLI:
 * python/tests/mmengine_toy.py trains a toy detector with PET-DINO's module names, optimizer
 * (AdamW, paramwise lr_mult custom_keys: one unnamed param group per parameter), LinearLR warm-up
 * + MultiStepLR and prompt-type switch hook for 200 iterations, with InterleaveRecorderHook on.
 * - `interleave verify --log` passes every rule on its log, lr-matches-spec for all four groups
 *   included (the hook reads each iteration's lr before ParamSchedulerHook steps it);
 * - mmengine's global `accumulative_counts` (4) mixes a text step into a visual accumulation
 *   group, and verify says so against a spec that accumulates within visual blocks;
 * - the run's own vis_data/scalars.json, an observed run, has the scenario's lr.
 * The hook raising mid-run (training goes on) is python/tests/test_mmengine_real.py's.
 *
 * mmengine comes from INTERLEAVE_MMENGINE_PATH (`../shared/vendor/mmengine.sh` prints it; .ci/run
 * sets it), else from the folder that script unpacks into, when it has run. Without it the tests
 * are skipped with a loud banner; INTERLEAVE_REQUIRE_MMENGINE=1 (CI) fails them instead. Only the
 * children get mmengine's path: nothing else in the process sees it.
 */
import { spawn, spawnSync } from "node:child_process"
import { existsSync, readdirSync, readFileSync, rmSync } from "node:fs"
import { homedir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { runCli, tempDir, writeJson } from "../support/cli-helpers.ts"
import { PYTHON, pythonMissing, ROOT, torchMissing } from "../support/exec-support.ts"
import { timeoutFor } from "../support/timeouts.ts"

const TOY = join(ROOT, "python", "tests", "mmengine_toy.py")
const SPEC = join(ROOT, "python", "tests", "scenarios", "petdino-mmengine-toy.json")
const ITERS = 200
const requireMmengine = process.env.INTERLEAVE_REQUIRE_MMENGINE === "1"

const candidates = (): string[] => {
  const env = process.env.INTERLEAVE_MMENGINE_PATH
  if (env) return [env]
  const cache =
    process.env.INTERLEAVE_VENDOR_CACHE ??
    join(process.env.XDG_CACHE_HOME ?? join(homedir(), ".cache"), "interleave-vendor")
  const out = [""]
  if (existsSync(join(cache, "mmengine-0.10.7", "mmengine", "__init__.py")))
    out.push(`${join(cache, "mmengine-0.10.7")}:${join(cache, "stubs")}`)
  return out
}

const childEnv = (path: string) => ({
  ...process.env,
  PYTHONPATH: [join(ROOT, "python"), path, process.env.PYTHONPATH ?? ""].filter((p) => p !== "").join(":"),
})

/** mmengine's path for the children, or why there is none. */
const findMmengine = (): { path: string } | { missing: string } => {
  if (pythonMissing) return { missing: pythonMissing }
  if (torchMissing) return { missing: `torch: ${torchMissing}` }
  const tried: string[] = []
  for (const path of candidates()) {
    const r = spawnSync(PYTHON, ["-c", "import mmengine; from mmengine.runner import Runner"], {
      env: childEnv(path),
      encoding: "utf8",
      timeout: 300_000,
    })
    if (r.status === 0) return { path }
    tried.push(`${path || "PYTHONPATH"}: ${(r.stderr ?? "").trim().split("\n").at(-1)}`)
  }
  return { missing: tried.join("; ") }
}

const found = findMmengine()

const runToy = (work: string, args: ReadonlyArray<string>) =>
  new Promise<{ code: number | null; output: string; last: { iter: number; scalars: string | null } }>(
    (resolve) => {
      const p = spawn(
        PYTHON,
        [TOY, "--work-dir", work, "--log", join(work, "run.jsonl"), "--iters", String(ITERS), ...args],
        { cwd: ROOT, env: childEnv("path" in found ? found.path : ""), stdio: ["ignore", "pipe", "pipe"] },
      )
      let stdout = ""
      let output = ""
      p.stdout.on("data", (d) => {
        stdout += d
        output += d
      })
      p.stderr.on("data", (d) => {
        output += d
      })
      p.on("close", (code) => {
        const line = stdout.trim().split("\n").at(-1) ?? ""
        let last = { iter: -1, scalars: null as string | null }
        try {
          last = JSON.parse(line)
        } catch {}
        resolve({ code, output, last })
      })
    },
  )

interface VerifyJson {
  readonly ok: boolean
  readonly steps: number
  readonly rulesChecked: ReadonlyArray<string>
  readonly violationTotal: number
  readonly violationCounts: Readonly<Record<string, number>>
  readonly violations: ReadonlyArray<{
    readonly rule: string
    readonly step?: number
    readonly message: string
  }>
}

// Two toy runs (a Python start with torch and mmengine, 200 quick steps each) and four CLI starts.
const WORK = timeoutFor({ trainers: 2, pySteps: 2 * ITERS, starts: 4 })

describe("InterleaveRecorderHook in a real mmengine Runner", () => {
  if ("missing" in found) {
    if (requireMmengine)
      it("needs mmengine (INTERLEAVE_REQUIRE_MMENGINE=1)", () => {
        throw new Error(`INTERLEAVE_REQUIRE_MMENGINE=1 but mmengine is not importable: ${found.missing}`)
      })
    else {
      console.warn(
        `\n${"!".repeat(100)}\n!!! the real-mmengine tests (test/adapters/mmengine-real.test.ts) SKIPPED: ${found.missing}\n!!! export INTERLEAVE_MMENGINE_PATH="$(../shared/vendor/mmengine.sh)" to run them; CI sets INTERLEAVE_REQUIRE_MMENGINE=1 and fails instead.\n${"!".repeat(100)}\n`,
      )
      it.skip("needs mmengine", () => {})
    }
    return
  }

  const dir = tempDir("interleave-mmengine-")
  let plain: Awaited<ReturnType<typeof runToy>>
  let accumulating: Awaited<ReturnType<typeof runToy>>
  let accSpec: string

  beforeAll(async () => {
    // The spec a user who accumulates 4 visual steps (and applies each text step) would write;
    // mmengine's OptimWrapper counts accumulation over all iterations, whatever their modality.
    const spec = JSON.parse(readFileSync(SPEC, "utf8"))
    spec.name = "petdino-mmengine-toy-visual-accumulate-4"
    spec.batch.visual.accumulation = 4
    accSpec = writeJson(dir, "acc-spec.json", spec)
    plain = await runToy(join(dir, "plain"), [])
    accumulating = await runToy(join(dir, "acc"), ["--accumulative-counts", "4", "--spec", accSpec])
  }, WORK)

  afterAll(() => rmSync(dir, { recursive: true, force: true }))

  it(
    "trains 200 iterations and verify --log passes every rule, per-group lr included",
    async () => {
      expect(plain.code, plain.output.slice(-3000)).toBe(0)
      expect(plain.last.iter).toBe(ITERS)
      const log = join(dir, "plain", "run.jsonl")
      const r = await runCli(["verify", "--log", log, "--json"])
      const report = JSON.parse(r.stdout) as VerifyJson
      expect(report.violations.slice(0, 3)).toEqual([])
      expect(r.code).toBe(0)
      expect(report.ok).toBe(true)
      expect(report.steps).toBe(ITERS)
      for (const rule of [
        "lr-matches-spec",
        "lr-group-ratios",
        "lr-warmup",
        "lr-decay",
        "modality-pattern",
        "accumulation",
      ])
        expect(report.rulesChecked).toContain(rule)
      const steps = readFileSync(log, "utf8")
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l))
        .filter((e) => e.type === "StepCompleted")
      expect(Object.keys(steps[0].data.lr).sort()).toEqual(["backbone", "head", "language-model", "neck"])
      // Iteration 0 trains at the warm-up's start factor: 4e-4 x 0.01 x 0.1 for the backbone.
      expect(steps[0].data.lr.backbone).toBeCloseTo(4e-7, 15)
      expect(steps[7].data.modality).toBe("text")
      // The text output says the same in words.
      const text = await runCli(["verify", "--log", log])
      expect(text.stdout).toMatch(/PASS: all \d+ rules hold/)
    },
    WORK,
  )

  it(
    "catches mmengine's global accumulative_counts mixing a text step into a visual group",
    async () => {
      expect(accumulating.code, accumulating.output.slice(-3000)).toBe(0)
      expect(accumulating.last.iter).toBe(ITERS)
      const r = await runCli(["verify", "--log", join(dir, "acc", "run.jsonl"), "--json"])
      expect(r.code).toBe(1)
      const report = JSON.parse(r.stdout) as VerifyJson
      expect(report.ok).toBe(false)
      // Only the accumulation is wrong: lr and modality still follow the spec.
      expect(Object.keys(report.violationCounts)).toEqual(["accumulation"])
      // Visual iterations 4, 5, 6 open a group that mmengine closes with text iteration 7.
      expect(report.violations.find((v) => v.step === 7)?.message).toMatch(
        /visual group opened at step 4 \(3 micro-steps\) was never applied before the switch to text/,
      )
    },
    WORK,
  )

  it(
    "the run's own scalars.json (an observed run) has the scenario's lr",
    async () => {
      const scalars = plain.last.scalars
      expect(scalars, "no vis_data/scalars.json").toBeTruthy()
      expect(readdirSync(join(scalars as string, ".."))).toContain("scalars.json")
      const r = await runCli(["verify", "--log", scalars as string, "--spec", SPEC])
      expect(r.stdout).toMatch(/ok +lr schedule +lr of 20 rows against petdino-mmengine-toy/)
      expect(r.stdout).toMatch(/ok +iterations +20 train rows, iterations 0\.\.199/)
      expect(r.code, r.stdout + r.stderr).toBe(0)
    },
    WORK,
  )
})

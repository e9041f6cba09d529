/**
 * Recorded runs through the CLI, in-process (the SIGKILL case spawns the binary): run, verify,
 * replay, export/import round trips, a SIGKILL mid-run then resume, and corrupt inputs that must
 * change nothing.
 */
import { readFileSync, statSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { beforeAll, describe, expect, it } from "vitest"
import { scenario, spawnCli, tempDir, writeJson } from "../support/cli-helpers.ts"
import { cliInProcess as runCli } from "../support/cli-inprocess.ts"
import { countEvents } from "../support/store-file.ts"
import { timeoutFor, waitUntil } from "../support/timeouts.ts"

const dir = tempDir()
const store = join(dir, "runs.db")
const cli = (args: string[]) => runCli([...args, "--store", store])

/** Events of a JSONL export without wall-clock fields and run ids. */
const comparableExport = (text: string) =>
  text
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l).data)
    // The resume's own event is the one difference a kill may leave (the writer differs too).
    .filter((data) => data._tag !== "RunResumed")
    .map((data) => {
      const { startedAt, completedAt, runId, writer, ...rest } = data
      void startedAt
      void completedAt
      void runId
      void writer
      return rest
    })

describe("run, verify --log, replay, show, export/import", () => {
  beforeAll(async () => {
    const r = await cli([
      "run",
      scenario("trex2-joint-8to1.json"),
      "--steps",
      "900",
      "--run-id",
      "t900",
      "--json",
    ])
    expect(r.stderr).toBe("")
    expect(r.code).toBe(0)
    // The same report as `show --json`: per-modality step times with their unit, and a named memory figure.
    const out = JSON.parse(r.stdout)
    expect(out).toMatchObject({
      runId: "t900",
      status: "completed",
      outcome: "completed",
      stepsCompleted: 900,
      visualSteps: 720,
      textSteps: 180,
      stepTime: { kind: "simulated", unit: "ms" },
      memory: { source: "peakBytes", measure: "in-step peak", unit: "bytes", complete: true },
    })
    expect(out.stepTime.visual.count).toBe(720)
    expect(out.stepTime.visual.meanMs).toBeCloseTo(out.stepTime.visual.totalMs / 720, 9)
    expect(out.stepTime.visual.p99Ms).toBeGreaterThan(0)
    expect(out.stepTime.totalMs).toBeCloseTo(out.stepTime.visual.totalMs + out.stepTime.text.totalMs, 6)
    expect(out.memory.visual.max).not.toBe(out.memory.text.max)
  })

  it("verify --log passes and reports step 1's counts", async () => {
    const r = await cli(["verify", "--log", "t900", "--json"])
    expect(r.code).toBe(0)
    expect(JSON.parse(r.stdout)).toMatchObject({
      ok: true,
      steps: 900,
      visualSteps: 720,
      textSteps: 180,
      violations: [],
    })
  })

  it("replay reports no divergence", async () => {
    const r = await cli(["replay", "t900", "--json"])
    expect(r.code).toBe(0)
    expect(JSON.parse(r.stdout)).toMatchObject({ ok: true, steps: 900 })
  })

  it("export --format mllog then import gives the same projection", async () => {
    const out = join(dir, "t900.mllog")
    expect((await cli(["export", "t900", "--format", "mllog", "--out", out])).code).toBe(0)
    const lines = readFileSync(out, "utf8").trim().split("\n")
    expect(lines.every((l) => l.startsWith(":::MLLOG {"))).toBe(true)
    // MLPerf's shape: a step is a tracked_stats point, its modality and envelope in the metadata.
    const first = JSON.parse(lines.find((l) => l.includes('"tracked_stats"'))!.slice(9))
    expect(first).toMatchObject({
      event_type: "POINT_IN_TIME",
      key: "tracked_stats",
      metadata: { step: 0, modality: "text", interleave: { type: "StepCompleted" } },
    })
    const imp = await cli(["import", out, "--run-id", "t900-copy"])
    expect(imp.stderr).toBe("")
    expect(imp.code).toBe(0)
    const a = JSON.parse((await cli(["show", "t900", "--json"])).stdout)
    const b = JSON.parse((await cli(["show", "t900-copy", "--json"])).stdout)
    expect({ ...b, runId: "t900" }).toEqual(a)
    const ja = (await cli(["export", "t900"])).stdout
    const jb = (await cli(["export", "t900-copy"])).stdout
    expect(comparableExport(jb)).toEqual(comparableExport(ja))
  })

  it("a JSONL export verifies as a file and re-imports losslessly", async () => {
    const out = join(dir, "t900.jsonl")
    expect((await cli(["export", "t900", "--format", "jsonl", "--out", out])).code).toBe(0)
    const v = await cli(["verify", "--log", out, "--json"])
    expect(v.code).toBe(0)
    expect(JSON.parse(v.stdout).ok).toBe(true)
    expect((await cli(["import", out, "--run-id", "t900-j"])).code).toBe(0)
    expect(comparableExport((await cli(["export", "t900-j"])).stdout)).toEqual(
      comparableExport(readFileSync(out, "utf8")),
    )
  })

  it("verify --log against a different spec names the first offending step", async () => {
    const r = await cli(["verify", "--log", "t900", "--spec", scenario("text-first-3to2.json"), "--json"])
    expect(r.code).toBe(1)
    const out = JSON.parse(r.stdout)
    expect(out.ok).toBe(false)
    expect(out.violations.length).toBeGreaterThan(0)
  })

  it("show --at gives the state at a step, with its curves", async () => {
    const r = await cli(["show", "t900", "--at", "98", "--json"])
    expect(r.code).toBe(0)
    const out = JSON.parse(r.stdout)
    expect(out).toMatchObject({ lastStep: 98, stepsCompleted: 99, visualSteps: 8, textSteps: 91 })
    expect(out.curves.loss.visual.map((p: number[]) => p[0])).toEqual([90, 91, 92, 93, 94, 95, 96, 97])
    expect(out.curves.loss.text).toHaveLength(91)
    const text = await cli(["show", "t900"])
    expect(text.stdout).toMatch(/loss visual\s+\S+\s+[\d.]+ -> [\d.]+/)
    // A completed run was running at step 98: not "interrupted", and no resume advice.
    expect(out.status).toBe("running")
    expect(out.statusNow).toBe("completed")
    const at = await cli(["show", "t900", "--at", "98"])
    expect(at.stdout).toMatch(
      /^run t900 at step 98: running \(the log goes on past it; the run is now completed\)$/m,
    )
    expect(at.stdout).not.toMatch(/interrupted|resume with/)
    // At its last step the log has nothing after: the run's own status.
    const last = JSON.parse((await cli(["show", "t900", "--at", "899", "--json"])).stdout)
    expect(last.status).toBe("completed")
    expect(last.statusNow).toBeUndefined()
    const beyond = await cli(["show", "t900", "--at", "900"])
    expect(beyond.code).toBe(2)
    expect(beyond.stderr).toMatch(/--at: step 900 is outside the recorded steps \(0\.\.899\)/)
  })

  it("fork --ratio and diff", async () => {
    const f = await cli(["fork", "t900", "--at", "450", "--ratio", "2:1", "--run-id", "t900-2to1", "--json"])
    expect(f.stderr).toBe("")
    expect(f.code).toBe(0)
    expect(JSON.parse(f.stdout)).toMatchObject({ forked: { parentId: "t900", atStep: 450 } })
    expect(JSON.parse(f.stdout).resumed).toBeUndefined()
    const t = await cli(["fork", "t900", "--at", "600", "--ratio", "4:1", "--run-id", "t900-4to1"])
    expect(t.code).toBe(0)
    expect(t.stdout).toMatch(/^forked run t900-4to1 from t900 at step 600$/m)
    expect(t.stdout).not.toMatch(/resumed/)
    expect((await cli(["verify", "--log", "t900-2to1"])).code).toBe(0)
    const d = await cli(["diff", "t900", "t900-2to1", "--json"])
    expect(d.code).toBe(1)
    const out = JSON.parse(d.stdout)
    expect(out.firstPlanDifference.step).toBeGreaterThanOrEqual(450)
    expect((await cli(["diff", "t900", "t900-copy"])).code).toBe(0)
  })
})

describe("a run killed with SIGKILL mid-way", () => {
  it(
    "resumes to a log with every step exactly once, equal to an uninterrupted run",
    async () => {
      const big = writeJson(dir, "big.json", {
        name: "big",
        seed: 3,
        phases: [
          { name: "text-only", steps: 1000, ratio: { visual: 0, text: 1 } },
          { name: "joint", steps: 19000, ratio: { visual: 8, text: 1 } },
        ],
        batch: { visual: { size: 8, accumulation: 2 }, text: { size: 8 } },
        optimizer: { kind: "adamw", lr: 1e-4, groups: [{ name: "all" }] },
        lr: { warmup: { kind: "linear", steps: 500 }, decay: { kind: "cosine" } },
      })
      const child = spawnCli(["run", big, "--run-id", "killed", "--store", store])
      const exited = new Promise<void>((resolve) => child.on("exit", () => resolve()))
      // Wait until some events are on disk (however long the start takes), then kill without warning.
      const seen = await waitUntil(
        "run killed never recorded 5000 events",
        () => {
          const n = countEvents(store, "killed")
          return n >= 5000 ? n : undefined
        },
        {
          stopped: () =>
            child.exitCode === null && child.signalCode === null ? undefined : "it exited first",
        },
      )
      child.kill("SIGKILL")
      await exited
      expect(seen).toBeGreaterThan(0)
      const runs = JSON.parse((await cli(["runs", "--json"])).stdout) as Array<{
        runId: string
        status: string
        stepsDone: number
        resume?: string
      }>
      // Its writer is gone: interrupted, with the command that continues it.
      const killed = runs.find((r) => r.runId === "killed")!
      expect(killed.status).toBe("interrupted")
      expect(killed.resume).toBe("interleave resume killed")
      expect(killed.stepsDone).toBeLessThan(20000)

      const resumed = await cli(["resume", "killed", "--json"])
      expect(resumed.stderr).toBe("")
      expect(resumed.code).toBe(0)
      expect(JSON.parse(resumed.stdout)).toMatchObject({ status: "completed", stepsCompleted: 20000 })
      expect((await cli(["verify", "--log", "killed"])).code).toBe(0)
      // show --at reads past the RunResumed event to a step after the kill.
      const after = await cli(["show", "killed", "--at", "19999", "--json"])
      expect(after.code).toBe(0)
      expect(JSON.parse(after.stdout)).toMatchObject({ status: "completed", lastStep: 19999 })

      expect((await cli(["run", big, "--run-id", "clean"])).code).toBe(0)
      const exported = async (run: string) => {
        const out = join(dir, `${run}.jsonl`)
        expect((await cli(["export", run, "--out", out])).code).toBe(0)
        return comparableExport(readFileSync(out, "utf8"))
      }
      const a = await exported("killed")
      const b = await exported("clean")
      expect(a.length).toBe(b.length)
      expect(a).toEqual(b)
      // One start of the binary; 20,000 steps about eight times over (the killed run, runs, resume,
      // verify, show --at, the clean run, two exports), in-process.
    },
    timeoutFor({ starts: 1, simSteps: 8 * 20_000 }),
  )
})

describe("corrupt inputs: a clear error, non-zero exit, nothing changed", () => {
  let jsonl: string[] = []
  beforeAll(async () => {
    const r = await cli(["run", scenario("text-first-3to2.json"), "--steps", "40", "--run-id", "small"])
    expect(r.code).toBe(0)
    jsonl = (await cli(["export", "small"])).stdout.trim().split("\n")
  })

  const runsSnapshot = async () => (await cli(["runs", "--json"])).stdout

  const importFails = async (name: string, lines: string[], message: RegExp) => {
    const before = await runsSnapshot()
    const file = writeJson(dir, name, `${lines.join("\n")}\n`)
    const r = await cli(["import", file, "--run-id", `imp-${name}`])
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(message)
    expect(r.stderr).not.toMatch(/\n\s+at /)
    expect(await runsSnapshot()).toBe(before)
  }

  it("a truncated last line names its line", async () => {
    const lines = [...jsonl]
    lines[lines.length - 1] = lines.at(-1)!.slice(0, 40)
    await importFails(
      "truncated.jsonl",
      lines,
      new RegExp(`truncated\\.jsonl:${lines.length}: not valid JSON`),
    )
  })

  it("a garbage line names its line", async () => {
    const lines = [...jsonl]
    lines[5] = "garbage ~~~"
    await importFails("garbage.jsonl", lines, /garbage\.jsonl:6: not valid JSON/)
  })

  it("a wrong schema version names the line and the version", async () => {
    const lines = [...jsonl]
    lines[3] = lines[3]!.replace(/"version":\d+/, '"version":99')
    await importFails("version.jsonl", lines, /version\.jsonl:4: .*schema version 99/)
  })

  it("a field of the wrong type names the field", async () => {
    const lines = [...jsonl]
    lines[3] = lines[3]!.replace(/"modality":"\w+"/, '"modality":"audio"')
    await importFails("field.jsonl", lines, /field\.jsonl:4: StepCompleted\.modality/)
  })

  it("a log with a missing event fails the log rules", async () => {
    const lines = [...jsonl]
    lines.splice(10, 1)
    await importFails("gap.jsonl", lines, /not a valid run log: .*position/)
  })

  /** The exported events, each line's JSON edited by `edit` (which may drop a line by returning undefined). */
  const edited = (
    edit: (e: { type: string; position: number; data: Record<string, unknown> }, i: number) => unknown,
  ) => {
    const out: string[] = []
    for (const [i, l] of jsonl.entries()) {
      const e = edit(JSON.parse(l), i)
      if (e !== undefined) out.push(JSON.stringify({ ...(e as object), position: out.length }))
    }
    return out
  }
  const stepLines = () => jsonl.flatMap((l, i) => (JSON.parse(l).type === "StepCompleted" ? [i] : []))

  it("a log whose steps break the schedule is refused as verify --log refuses it, naming the step", async () => {
    const steps = stepLines()
    const cases: Array<readonly [string, string[], RegExp]> = [
      // A step cut out (positions renumbered, so only the schedule rules can tell).
      ["step-gap.jsonl", edited((e, i) => (i === steps[12] ? undefined : e)), /step 12: missing/],
      [
        "shifted.jsonl",
        edited((e) =>
          e.type === "StepCompleted" ? { ...e, data: { ...e.data, step: (e.data.step as number) + 1 } } : e,
        ),
        /step 0: missing/,
      ],
      [
        "modality.jsonl",
        edited((e, i) =>
          i === steps[20]
            ? { ...e, data: { ...e.data, modality: e.data.modality === "visual" ? "text" : "visual" } }
            : e,
        ),
        /step 20 .*expected (visual|text), got (text|visual)/,
      ],
    ]
    for (const [name, lines, reason] of cases) {
      const file = writeJson(dir, `v-${name}`, `${lines.join("\n")}\n`)
      expect((await cli(["verify", "--log", file])).code, name).toBe(1)
      await importFails(name, lines, new RegExp(`not a valid run log: .*${reason.source}`))
    }
  })

  it("a log whose recorded spec does not decode is refused, naming the file and the field", async () => {
    const lines = edited((e) =>
      e.type === "RunStarted"
        ? { ...e, data: { ...e.data, spec: { ...(e.data.spec as object), phases: [] } } }
        : e,
    )
    await importFails(
      "bad-spec.jsonl",
      lines,
      /bad-spec\.jsonl: .*recorded spec: phases: needs at least one phase/,
    )
  })

  it("verify --log on a corrupt file names the line and exits 2", async () => {
    const lines = [...jsonl]
    lines[7] = "{]"
    const file = writeJson(dir, "corrupt-verify.jsonl", lines.join("\n"))
    const r = await cli(["verify", "--log", file])
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/corrupt-verify\.jsonl:8: not valid JSON/)
  })

  it("importing a run id that exists is refused", async () => {
    const file = writeJson(dir, "dup.jsonl", `${jsonl.join("\n")}\n`)
    const r = await cli(["import", file])
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/run "small" already exists/)
  })

  it("a non-SQLite file passed as --store is refused and left untouched", async () => {
    const file = writeJson(dir, "not-a-db.jsonl", `${jsonl.join("\n")}\n`)
    const before = readFileSync(file)
    const mtime = statSync(file).mtimeMs
    for (const args of [
      ["runs"],
      ["show", "small"],
      ["run", scenario("text-first-3to2.json"), "--steps", "5"],
    ]) {
      const r = await runCli([...args, "--store", file])
      expect(r.code).toBe(2)
      expect(r.stderr).toMatch(/not an interleave event store/)
      expect(r.stderr).not.toMatch(/\n\s+at /)
    }
    expect(readFileSync(file).equals(before)).toBe(true)
    expect(statSync(file).mtimeMs).toBe(mtime)
  })

  it("unknown run ids are named", async () => {
    for (const args of [
      ["show", "ghost"],
      ["replay", "ghost"],
      ["resume", "ghost"],
      ["export", "ghost"],
      ["verify", "--log", "ghost"],
      ["fork", "ghost", "--at", "3"],
      ["diff", "small", "ghost"],
    ]) {
      const r = await cli(args)
      expect(r.code, args.join(" ")).toBe(2)
      expect(r.stderr, args.join(" ")).toMatch(/no run "ghost"/)
    }
  })

  it("bad run options are named", async () => {
    const r1 = await cli(["run", scenario("text-first-3to2.json"), "--steps", "0"])
    expect(r1.code).toBe(2)
    expect(r1.stderr).toMatch(/--steps/)
    const r2 = await cli(["run", scenario("text-first-3to2.json"), "--hardware", "tpu-v9"])
    expect(r2.code).toBe(2)
    expect(r2.stderr).toMatch(/tpu-v9/)
    const r3 = await cli(["fork", "small", "--at", "10", "--ratio", "0:0"])
    expect(r3.code).toBe(2)
    expect(r3.stderr).toMatch(/--ratio: visual and text cannot both be 0/)
    writeFileSync(join(dir, "x"), "")
  })
})

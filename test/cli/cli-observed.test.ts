/**
 * Real logs in, through the CLI (in-process, as the binary runs it): MLPerf result logs (four
 * benchmarks) imported as observed runs, shown with their evaluations and verified with a clear verdict; replay, resume and fork
 * refused; mmengine and detectron2 logs verified against PET-DINO's scenario (the planted warm-up
 * fault flagged at its first logged iteration); files named for what they are; a PET-DINO log
 * with a per-iteration modality verified against the right and the wrong scenario.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { dirname, join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { ROOT, scenario, tempDir } from "../support/cli-helpers.ts"
import { cliInProcess as runCli } from "../support/cli-inprocess.ts"

const dir = tempDir("interleave-observed-")
afterAll(() => rmSync(dir, { recursive: true, force: true }))
const store = join(dir, "runs.db")
const cli = (args: string[]) => runCli([...args, "--store", store])
const fixture = (name: string) => join(ROOT, "test", "fixtures", "logs", name)

const MLPERF = {
  unet3d: "mlperf-v1.0-dell-unet3d.txt",
  rgat: "mlperf-v5.1-asustek-rgat.txt",
  llama2_70b_lora: "mlperf-v4.0-nvidia-llama2_70b_lora.txt",
  stable_diffusion: "mlperf-v3.1-nvidia-stable_diffusion.txt",
} as const

describe("MLPerf result logs as observed runs", () => {
  const ids: Record<string, string> = {}
  beforeAll(async () => {
    for (const [bench, file] of Object.entries(MLPERF)) {
      const r = await cli(["import", fixture(file), "--json"])
      expect(r.stderr).toBe("")
      expect(r.code).toBe(0)
      const out = JSON.parse(r.stdout)
      expect(out).toMatchObject({ format: "mllog" })
      expect(out.runId).toMatch(new RegExp(`^mlperf-${bench}-[0-9a-f]{8}$`))
      ids[bench] = out.runId
    }
  })

  it("runs lists them as observed or completed, never as interrupted", async () => {
    const runs = JSON.parse((await cli(["runs", "--json"])).stdout) as Array<{
      runId: string
      status: string
    }>
    for (const id of Object.values(ids)) expect(runs.find((r) => r.runId === id)?.status).toBe("completed")
  })

  it("show says what the log carried and lists its evaluations with their metric names", async () => {
    const sd = await cli(["show", ids.stable_diffusion!])
    expect(sd.code).toBe(0)
    expect(sd.stdout).toMatch(
      /^run mlperf-stable_diffusion-\w+: observed, completed \(the log's run_stop says success\)/,
    )
    expect(sd.stdout).toMatch(
      /observed in MLPerf MLLOG \(mlcommons\/logging\), .*stable_diffusion\.txt \(sha256 [0-9a-f]{12}…/,
    )
    expect(sd.stdout).toMatch(/settings the log states: .*global_batch_size=2048/)
    expect(sd.stdout).toMatch(/log span: 2023-10-04T\d\d:\d\d:\d\d\.\d+Z \.\. /)
    expect(sd.stdout).toMatch(/step 2250\s+FID\s+79\.4\s+38/)
    expect(sd.stdout).toMatch(/step 2000\s+CLIP\s+0\.1842\s+41/)
    const json = JSON.parse((await cli(["show", ids.rgat!, "--json"])).stdout)
    expect(json.observed).toMatchObject({
      evaluations: 3,
      intervals: { epoch: { starts: 1, stops: 1 } },
      descriptor: { format: "mllog", lines: { total: 38, read: 38, skipped: 0 } },
    })
    expect(
      json.evaluations.map((e: { metric: string; at: { epoch: number } }) => [e.metric, e.at.epoch]),
    ).toEqual([
      ["eval_accuracy", 0.05],
      ["eval_accuracy", 0.1],
      ["eval_accuracy", 0.9],
    ])
    expect(json.seed).toBe(15879)
  })

  it("verify --log gives a verdict and says what it checked and what it could not", async () => {
    for (const id of Object.values(ids)) {
      const r = await cli(["verify", "--log", id])
      expect(r.code).toBe(0)
      expect(r.stdout).toMatch(/^observed run /)
      expect(r.stdout).toMatch(/\n {2}(ok {10}|note {8})order {8}run_start at line \d+, run_stop at line \d+/)
      expect(r.stdout).toMatch(/not checkable from this log: .*per-step modality/)
      expect(r.stdout).toMatch(/\nPASS: no violations/)
    }
    const u = await cli(["verify", "--log", ids.unet3d!])
    expect(u.stdout).toMatch(
      /note {8}intervals {4}block 4\/4, eval 2\/2 \(starts\/stops\): unbalanced, tolerated/,
    )
    expect(u.stdout).toMatch(
      /block: 4 starts, 4 stops: 1 stop without a start \(first at line 64\); 1 start never closed/,
    )
    // The same checks on the file itself, without a store.
    const f = await runCli(["verify", "--log", fixture(MLPERF.stable_diffusion), "--json"])
    expect(f.code).toBe(0)
    const rep = JSON.parse(f.stdout)
    expect(rep).toMatchObject({ kind: "observed", ok: true, format: "mllog" })
    expect(rep.checks.map((c: { rule: string; status: string }) => `${c.rule}:${c.status}`)).toEqual([
      "event-log:ok",
      "observed-order:ok",
      "observed-intervals:note",
      "observed-time:note",
      "observed-progress:note",
    ])
  })

  it("replay, resume and fork refuse an observed run with one line", async () => {
    const id = ids.llama2_70b_lora!
    for (const [cmd, word] of [
      ["replay", "replayed"],
      ["resume", "resumed"],
      ["fork", "forked"],
    ] as const) {
      const r = await cli(cmd === "fork" ? [cmd, id, "--at", "1", "--ratio", "2:1"] : [cmd, id])
      expect(r.code).toBe(2)
      expect(r.stdout).toBe("")
      expect(r.stderr.trim().split("\n")).toHaveLength(1)
      expect(r.stderr).toMatch(
        new RegExp(
          `^interleave: run ${id} is an observed run \\(imported from MLPerf MLLOG .*it cannot be ${word}`,
        ),
      )
    }
  })
})

describe("mmengine and detectron2 logs against PET-DINO's scenario", () => {
  const petdino = scenario("petdino-swin-t.json")

  it("the clean scalars.json passes and says what it could not check", async () => {
    const r = await runCli(["verify", "--log", fixture("mmengine-petdino-scalars.json"), "--spec", petdino])
    expect(r.code).toBe(0)
    expect(r.stdout).toMatch(
      /ok {10}iterations {3}40 train rows, iterations 0\.\.1999 \(0-based\), every 50 iterations: no gaps/,
    )
    expect(r.stdout).toMatch(
      /ok {10}lr schedule {2}lr of 40 rows against petdino-swin-t: warm-up linear from x0\.1 over 1000 iterations/,
    )
    expect(r.stdout).toMatch(
      /not checked modality {5}per-step modality: the log has no per-iteration modality field/,
    )
    expect(r.stdout).toMatch(
      /not checkable from this log: per-iteration modality .*optimizer update steps and gradient accumulation/,
    )
  })

  it("the planted warm-up fault is flagged at its first logged iteration, expected vs logged lr", async () => {
    const r = await runCli([
      "verify",
      "--log",
      fixture("mmengine-petdino-lr-fault-scalars.json"),
      "--spec",
      petdino,
    ])
    expect(r.code).toBe(1)
    expect(r.stdout).toMatch(
      /FAIL: 19 violations of 1 rule\n {2}\[observed-lr\] 19 violations, first 10 shown\n/,
    )
    expect(r.stdout).toContain(
      'iteration 49 (logged step 50), line 1: lr 2e-7, expected 5.76577e-7 for group "backbone" (base 4e-6 x schedule 0.144144); in warm-up (iteration 49 of 1000), the logged lr implies a linear warm-up start factor of 0.001 (the spec\'s is 0.1)',
    )
    // Without a spec there is nothing to hold the lr to, and it says so.
    const bare = await runCli(["verify", "--log", fixture("mmengine-petdino-lr-fault-scalars.json")])
    expect(bare.code).toBe(0)
    expect(bare.stdout).toMatch(/not checked lr schedule {2}the lr schedule: give --spec SCENARIO/)
  })

  it("imports mmengine and one detectron2 segment; the appended file without --segment is refused", async () => {
    const m = await cli([
      "import",
      fixture("mmengine-petdino-scalars.json"),
      "--run-id",
      "petdino-mm",
      "--json",
    ])
    expect(m.code).toBe(0)
    expect(JSON.parse(m.stdout)).toMatchObject({ runId: "petdino-mm", format: "mmengine", events: 53 })
    const show = await cli(["show", "petdino-mm"])
    expect(show.stdout).toMatch(
      /window: losses and times are means over mmengine's logging window \(window_size, default 10; not recorded in scalars\.json\)/,
    )
    expect(show.stdout).toMatch(/memory: torch\.cuda\.max_memory_allocated since the previous row, MiB/)
    expect(show.stdout).toMatch(/epoch 2\s+coco\/bbox_mAP\s+0\.312/)
    const v = await cli(["verify", "--log", "petdino-mm", "--spec", petdino])
    expect(v.code).toBe(0)
    const whole = await cli(["import", fixture("detectron2-two-runs-metrics.json")])
    expect(whole.code).toBe(2)
    expect(whole.stderr).toMatch(/holds 2 runs appended .*Pick one with --segment 1\.\.2\n$/)
    const seg = await cli(["import", fixture("detectron2-two-runs-metrics.json"), "--segment", "2", "--json"])
    expect(seg.code).toBe(0)
    expect(JSON.parse(seg.stdout)).toMatchObject({ format: "detectron2", events: 17 })
  })

  it("an observed run exports (JSONL, MLLOG) and re-imports as the same events; diff refuses it", async () => {
    const events = (text: string) =>
      text
        .trim()
        .split("\n")
        .map((l) => {
          const { runId: _r, ...data } = JSON.parse(l).data
          return data
        })
    const jsonl = join(dir, "petdino-mm.jsonl")
    const mllog = join(dir, "petdino-mm.mllog")
    expect((await cli(["export", "petdino-mm", "--out", jsonl])).code).toBe(0)
    expect((await cli(["export", "petdino-mm", "--format", "mllog", "--out", mllog])).code).toBe(0)
    for (const [file, id] of [
      [jsonl, "mm-from-jsonl"],
      [mllog, "mm-from-mllog"],
    ] as const) {
      const r = await cli(["import", file, "--run-id", id])
      expect(r.stdout).toMatch(new RegExp(`as observed run ${id} \\(mmengine LoggerHook`))
      expect(events((await cli(["export", id])).stdout)).toEqual(events(readFileSync(jsonl, "utf8")))
    }
    const d = await cli(["diff", "petdino-mm", "mm-from-jsonl"])
    expect(d.code).toBe(2)
    expect(d.stderr).toMatch(/it cannot be diffed: diff compares the steps of runs we made/)
  })

  it("import is as strict as verify --log: a log with a gap is refused and nothing is written", async () => {
    const rows = [50, 100, 200].map((step) =>
      JSON.stringify({ lr: 0.01, loss: 1, time: 0.5, memory: 100, step }),
    )
    const gap = join(dir, "gap", "vis_data", "scalars.json")
    mkdirSync(dirname(gap), { recursive: true })
    writeFileSync(gap, rows.join("\n"))
    const r = await cli(["import", gap, "--run-id", "gappy"])
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(
      /scalars\.json: not a valid mmengine LoggerHook vis_data\/scalars\.json: iteration 199 \(logged step 200\), line 3: 100 iterations after iteration 99 .*iterations 100\.\.149 have no row \(rule observed-iterations\); nothing was imported/,
    )
    const runs = JSON.parse((await cli(["runs", "--json"])).stdout) as Array<{ runId: string }>
    expect(runs.map((x) => x.runId)).not.toContain("gappy")
  })
})

describe("files named for what they are", () => {
  it("a file of another format says which --format reads it", async () => {
    const cases: Array<[string[], RegExp]> = [
      [
        ["verify", "--log", fixture("mmengine-petdino-scalars.json"), "--format", "jsonl"],
        /looks like an mmengine vis_data\/scalars\.json .*read it with --format mmengine/,
      ],
      [
        ["import", fixture(MLPERF.rgat), "--format", "jsonl"],
        /looks like an MLPerf MLLOG log \(lines with :::MLLOG\), not interleave's JSONL; read it with --format mllog/,
      ],
      [
        ["verify", "--log", fixture("detectron2-two-runs-metrics.json"), "--format", "mmengine"],
        /looks like a detectron2 metrics\.json .*read it with --format detectron2/,
      ],
      [
        ["verify", "--log", scenario("petdino-swin-t.json")],
        /looks like a scenario file .*check it with `interleave verify FILE`/,
      ],
      [
        ["import", join(ROOT, "test", "fixtures", "sweep-results.json")],
        /looks like a benchmark results file written by `interleave bench`, not a run log/,
      ],
    ]
    for (const [args, message] of cases) {
      const r = await cli(args)
      expect(r.code).toBe(2)
      expect(r.stderr).toMatch(message)
      expect(r.stderr.trim().split("\n")).toHaveLength(1)
    }
  })

  it("a missing file is 'no such file', not a run missing from the store", async () => {
    for (const arg of ["logs/run.jsonl", "nosuch.mllog", "metrics.json"]) {
      const r = await cli(["verify", "--log", arg])
      expect(r.code).toBe(2)
      expect(r.stderr).toBe(`interleave: ${arg}: no such log file\n`)
    }
    const run = await cli(["verify", "--log", "no-such-run"])
    expect(run.code).toBe(2)
    expect(run.stderr).toMatch(/no run "no-such-run" in the store/)
  })
})

describe("a PET-DINO log with a per-iteration modality (our JSONL, as the SDK's Recorder writes it)", () => {
  /**
   * Written here from PET-DINO's own predicate and lr, not from the planner: iteration i is visual
   * iff (i + 1) % 9 < 8; lr = base x (0.1 + 0.9 i / 999) during the 1000-iteration warm-up.
   */
  const spec = JSON.parse(readFileSync(scenario("petdino-swin-t.json"), "utf8"))
  const steps = 120
  const lines: string[] = []
  const event = (data: Record<string, unknown>) =>
    lines.push(
      JSON.stringify({
        type: data._tag,
        version: data._tag === "StepCompleted" ? 2 : 1,
        position: lines.length,
        recordedAt: 1_700_000_000_000 + lines.length,
        data,
      }),
    )
  event({
    _tag: "RunStarted",
    runId: "petdino-recorded",
    spec,
    specHash: "recorder",
    source: "recorder: petdino",
    steps: 12000,
    seed: 0,
    adapter: { kind: "recorder", options: {}, info: { trainer: "petdino" } },
    versions: { "interleave-sdk": "0.1.0" },
    startedAt: 1_700_000_000_000,
    engine: { evalEvery: 0, checkpointEvery: 0 },
  })
  event({ _tag: "PhaseStarted", phase: "joint", index: 0, step: 0 })
  const bases: Record<string, number> = { backbone: 4e-6, "language-model": 4e-6, neck: 4e-6, head: 4e-4 }
  for (let i = 0; i < steps; i++) {
    const visual = (i + 1) % 9 < 8
    const f = 0.1 + (0.9 * i) / 999
    event({
      _tag: "StepCompleted",
      step: i,
      phase: "joint",
      phaseStep: i,
      modality: visual ? "visual" : "text",
      cycle: Math.floor((i + 1) / 9),
      position: (i + 1) % 9,
      micro: 0,
      update: true,
      lr: Object.fromEntries(Object.entries(bases).map(([g, b]) => [g, b * f])),
      losses: { total: 2 - i / 100 },
      durationMs: visual ? 410 : 250,
      samples: 16,
      memory: { peakBytes: visual ? 21e9 : 15e9 },
    })
  }
  const log = join(dir, "petdino-recorded.jsonl")
  writeFileSync(log, `${lines.join("\n")}\n`)
  // T-Rex2's 8:1 visual-first cycle entered at its start (no offset): text at 8, 17, ...
  const visualFirst = join(dir, "eight-to-one-visual-first.json")
  writeFileSync(
    visualFirst,
    JSON.stringify({
      ...spec,
      name: "eight-to-one-visual-first",
      phases: [{ ...spec.phases[0], offset: 0 }],
    }),
  )

  it("verifies against scenarios/petdino-swin-t.json (offset 1)", async () => {
    const r = await runCli(["verify", "--log", log, "--spec", scenario("petdino-swin-t.json"), "--json"])
    expect(r.stderr).toBe("")
    expect(r.code).toBe(0)
    expect(JSON.parse(r.stdout)).toMatchObject({ ok: true, steps, textSteps: 13, visualSteps: 107 })
  })

  it("fails against an 8:1 visual-first scenario at step 7", async () => {
    const r = await runCli(["verify", "--log", log, "--spec", visualFirst, "--json"])
    expect(r.code).toBe(1)
    const out = JSON.parse(r.stdout)
    const first = out.violations.find((v: { rule: string }) => v.rule === "modality-pattern")
    expect(first.step).toBe(7)
    expect(first.message).toMatch(/^step 7 .*text.*visual|^step 7 .*visual.*text/)
  })
})

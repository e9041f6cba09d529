/**
 * Logs read as their tools wrote them (issue 18, item 6), through the CLI in-process:
 * - a CRLF copy of a real log (and a CRLF file converted again, CR CR LF) reads line for line as
 *   the LF original: the same line numbers, lines read and skipped;
 * - mmengine's scalars.json does not record LogProcessor's window_size: the window is never the
 *   step increment (the logging interval); `--window N` or a config next to the file states it;
 * - `export --format mllog` of an imported MLPerf result log writes its original MLLOG lines;
 * - `show` of an observed run: the last values, time to train (run_start to run_stop), evaluations
 *   with the digits their changes need, every non-finite value dropped (key, line, iteration).
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { digitsFor } from "../../cli/observed-report.ts"
import { ROOT, tempDir } from "../support/cli-helpers.ts"
import { cliInProcess as runCli } from "../support/cli-inprocess.ts"

const dir = tempDir("interleave-as-written-")
afterAll(() => rmSync(dir, { recursive: true, force: true }))
const store = join(dir, "runs.db")
const cli = (args: string[]) => runCli([...args, "--store", store])
const fixture = (name: string) => join(ROOT, "test", "fixtures", "logs", name)

const MLPERF = [
  "mlperf-v1.0-dell-unet3d.txt",
  "mlperf-v5.1-asustek-rgat.txt",
  "mlperf-v4.0-nvidia-llama2_70b_lora.txt",
  "mlperf-v3.1-nvidia-stable_diffusion.txt",
]

/** A copy of `name` with every LF replaced by `ending`. */
const withEnding = (name: string, ending: string, tag: string): string => {
  const out = join(dir, `${tag}-${name}`)
  writeFileSync(out, readFileSync(fixture(name), "utf8").replaceAll("\n", ending))
  return out
}

interface VerifyJson {
  readonly ok: boolean
  readonly violations: ReadonlyArray<{ line: number }>
  readonly checks: ReadonlyArray<{ rule: string; summary: string; details: ReadonlyArray<string> }>
}

const showJson = async (id: string) => {
  const r = await cli(["show", id, "--json"])
  expect(r.stderr).toBe("")
  return JSON.parse(r.stdout)
}

describe("CRLF logs read like LF ones", () => {
  const all = [...MLPERF, "mmengine-petdino-scalars.json", "detectron2-two-runs-metrics.json"]
  for (const name of all)
    it(`${name}: CRLF and CR CR LF copies give the LF file's line numbers and counts`, async () => {
      const seg = name.startsWith("detectron2") ? ["--segment", "2"] : []
      const lf = await runCli(["verify", "--log", fixture(name), ...seg, "--json"])
      expect(lf.stderr).toBe("")
      const base = JSON.parse(lf.stdout) as VerifyJson
      const lfImport = JSON.parse((await cli(["import", fixture(name), ...seg, "--json"])).stdout)
      const lfShow = await showJson(lfImport.runId)
      for (const [tag, ending] of [
        ["crlf", "\r\n"],
        ["crcrlf", "\r\r\n"],
      ] as const) {
        const copy = withEnding(name, ending, tag)
        const r = await runCli(["verify", "--log", copy, ...seg, "--json"])
        expect(r.stderr).toBe("")
        const v = JSON.parse(r.stdout) as VerifyJson
        // Every check's summary and details name the same lines as the LF file's.
        expect(v.checks).toEqual(base.checks)
        expect(v.ok).toBe(base.ok)
        const imported = JSON.parse((await cli(["import", copy, ...seg, "--json"])).stdout)
        const show = await showJson(imported.runId)
        expect(show.observed.descriptor.lines).toEqual(lfShow.observed.descriptor.lines)
        expect(show.evaluations).toEqual(lfShow.evaluations)
        expect(show.observed.intervals).toEqual(lfShow.observed.intervals)
      }
    })

  it("the real rgat log's last eval stays at line 32 in a CR CR LF copy (not 63)", async () => {
    const copy = withEnding("mlperf-v5.1-asustek-rgat.txt", "\r\r\n", "eval-line")
    const r = await cli(["import", copy, "--run-id", "rgat-crcrlf"])
    expect(r.code).toBe(0)
    const show = await cli(["show", "rgat-crcrlf"])
    expect(show.stdout).toMatch(/38 lines: 38 read, 0 skipped/)
    expect(show.stdout).toMatch(/epoch 0\.9\s+eval_accuracy\s+0\.721\s+32\n/)
  })
})

describe("mmengine's window: never the step increment", () => {
  // A run that logs every iteration (interval 1), as the mmpose run did, with a window of 50.
  const rows = Array.from({ length: 60 }, (_, i) =>
    JSON.stringify({
      lr: 0.004,
      data_time: 0.01,
      loss: 1 - i / 1000,
      time: 0.3,
      iter: i + 1,
      memory: 2048,
      step: i + 1,
    }),
  )
  const work = join(dir, "work_dirs", "rtmpose")
  const stamp = join(work, "20240101_120000")
  const scalars = join(stamp, "vis_data", "scalars.json")
  const bare = join(dir, "bare", "scalars.json")
  mkdirSync(join(stamp, "vis_data"), { recursive: true })
  mkdirSync(join(dir, "bare"), { recursive: true })
  writeFileSync(scalars, `${rows.join("\n")}\n`)
  writeFileSync(bare, `${rows.join("\n")}\n`)
  const UNKNOWN = "mmengine's logging window (window_size, default 10; not recorded in scalars.json)"

  it("a row every iteration is not 'a mean over the last 1 iterations': the window is unknown", async () => {
    const v = await runCli(["verify", "--log", bare])
    expect(v.code).toBe(0)
    expect(v.stdout).toContain(`window: losses and times are means over ${UNKNOWN}`)
    expect(v.stdout).toContain("rows come every iteration: the logging interval, not the window")
    expect(v.stdout).not.toMatch(/last 1 iterations/)
    const r = await cli(["import", bare, "--run-id", "mm-bare"])
    expect(r.code).toBe(0)
    const show = await cli(["show", "mm-bare"])
    expect(show.stdout).toContain(`  loss: mean over ${UNKNOWN}`)
    expect(show.stdout).toContain("window size: unknown (import --window N)")
    const json = await showJson("mm-bare")
    expect(json.observed.descriptor.window.iterations).toBeUndefined()
    expect(json.observed.descriptor.settings).toMatchObject({ logging_interval: 1 })
  })

  it("--window N on import and verify --log; show shows it; a run in the store or another format refuses it", async () => {
    const v = await runCli(["verify", "--log", bare, "--window", "50"])
    expect(v.code).toBe(0)
    expect(v.stdout).toContain(
      "window: losses and times are means over the last 50 iterations (window_size 50, --window)",
    )
    expect((await cli(["import", bare, "--window", "50", "--run-id", "mm-50"])).code).toBe(0)
    const show = await cli(["show", "mm-50"])
    expect(show.stdout).toContain("window size: 50 iterations")
    expect(show.stdout).toContain("  loss: mean over the last 50 iterations (window_size 50, --window)")
    const stored = await cli(["verify", "--log", "mm-50", "--window", "20"])
    expect(stored.code).toBe(2)
    expect(stored.stderr).toMatch(/--window: mm-50 is a run in the store/)
    const mlperf = await cli(["import", fixture(MLPERF[0]!), "--window", "5"])
    expect(mlperf.code).toBe(2)
    expect(mlperf.stderr).toMatch(/--window: only mmengine's scalars\.json/)
    expect((await runCli(["verify", "--log", bare, "--window", "0"])).code).toBe(2)
  })

  it("a config mmengine dumped next to scalars.json states the window, and show says which file", async () => {
    // No config yet: unknown.
    expect((await runCli(["verify", "--log", scalars])).stdout).toContain(UNKNOWN)
    // The work dir's dumped config (<work_dir>/<name>.py) without window_size: mmengine's default.
    writeFileSync(
      join(work, "rtmpose.py"),
      "default_scope = 'mmpose'\nlog_processor = dict(type='LogProcessor', by_epoch=True)\n",
    )
    expect((await runCli(["verify", "--log", scalars])).stdout).toContain(
      `means over the last 10 iterations (window_size 10, ${join(work, "rtmpose.py")}: its log_processor sets no window_size, so mmengine's default)`,
    )
    // The timestamp folder's text log prints the config: it comes before the work dir's .py.
    writeFileSync(
      join(stamp, "20240101_120000.log"),
      "2024/01/01 12:00:00 - mmengine - INFO - Config:\nlog_processor = dict(\n    type='LogProcessor', window_size=30, by_epoch=True)\n",
    )
    expect((await runCli(["verify", "--log", scalars])).stdout).toContain(
      `(window_size 30, log_processor's window_size in ${join(stamp, "20240101_120000.log")})`,
    )
    // vis_data/config.py (LocalVisBackend's copy) first of all.
    writeFileSync(
      join(stamp, "vis_data", "config.py"),
      "log_processor = dict(type='LogProcessor', window_size=50, by_epoch=True, num_digits=6)\n",
    )
    const v = await runCli(["verify", "--log", scalars])
    expect(v.stdout).toContain(
      `window: losses and times are means over the last 50 iterations (window_size 50, log_processor's window_size in ${join(stamp, "vis_data", "config.py")}); rows come every iteration`,
    )
    // --window wins over the config.
    expect((await runCli(["verify", "--log", scalars, "--window", "7"])).stdout).toContain(
      "(window_size 7, --window)",
    )
  })
})

describe("export --format mllog of an imported MLPerf run writes its original lines", () => {
  const mllogLines = (text: string) =>
    text
      .split("\n")
      .filter((l) => l.includes(":::MLLOG "))
      .map((l) => {
        const r = JSON.parse(l.slice(l.lastIndexOf(":::MLLOG ") + ":::MLLOG ".length))
        return {
          namespace: r.namespace,
          time_ms: r.time_ms,
          event_type: r.event_type,
          key: r.key,
          value: r.value,
          metadata: r.metadata,
        }
      })

  for (const name of MLPERF)
    it(`${name}: key, value, time_ms and metadata, line for line`, async () => {
      const imported = JSON.parse(
        (await cli(["import", fixture(name), "--run-id", `export-${name}`, "--json"])).stdout,
      )
      const out = join(dir, `${name}.export.mllog`)
      const r = await cli(["export", imported.runId, "--format", "mllog", "--out", out])
      expect(r.code).toBe(0)
      const source = readFileSync(fixture(name), "utf8")
      const exported = readFileSync(out, "utf8")
      const original = mllogLines(source)
      expect(original.length).toBeGreaterThan(30)
      expect(mllogLines(exported)).toEqual(original)
      // Nothing but the MLLOG lines (no lines of ours, no blank lines), each as the log wrote it.
      const lines = exported.trimEnd().split("\n")
      expect(lines).toHaveLength(original.length)
      expect(exported).not.toContain("interleave")
      const texts = source
        .split("\n")
        .filter((l) => l.includes(":::MLLOG "))
        .map((l) => `:::MLLOG ${l.slice(l.lastIndexOf(":::MLLOG ") + ":::MLLOG ".length).trim()}`)
      expect(lines).toEqual(texts)
      // The export is an MLPerf log again: it imports with the same evaluations.
      const again = JSON.parse((await cli(["import", out, "--run-id", `again-${name}`, "--json"])).stdout)
      expect(again.format).toBe("mllog")
      const a = (await showJson(again.runId)).evaluations.map((e: { metric: string; value: number }) => [
        e.metric,
        e.value,
      ])
      const b = (await showJson(imported.runId)).evaluations.map((e: { metric: string; value: number }) => [
        e.metric,
        e.value,
      ])
      expect(a).toEqual(b)
    })
})

describe("show of an observed run", () => {
  it("an MLPerf run: time to train is run_start to run_stop, not the log's first to last line", async () => {
    const r = await cli(["import", fixture("mlperf-v3.1-nvidia-stable_diffusion.txt"), "--run-id", "sd"])
    expect(r.code).toBe(0)
    const show = await cli(["show", "sd"])
    // run_start 1696386449385 (line 17) to run_stop 1696386628085 (line 46); offline FID after it.
    expect(show.stdout).toContain(
      "time to train: 2 min 58.700 s, run_start (line 17, 2023-10-04T02:27:29.385Z) to run_stop (line 46, 2023-10-04T02:30:28.085Z)",
    )
    expect(show.stdout).toMatch(/log span: .*\(45 min 05 s, the earliest to the latest time_ms of any line/)
    expect(show.stdout).toMatch(
      /last statistics:\n {2}tracked_stats at step 2200 \(line 30\): throughput 24,160, loss 0\.329/,
    )
    const json = await showJson("sd")
    expect(json.timeToTrainMs).toBe(178_700)
    expect(json.observed.runStart).toEqual({ timeMs: 1696386449385, line: 17 })
    expect(json).not.toHaveProperty("lastLoss")
  })

  it("an mmengine run: the last train row's values, in text and JSON", async () => {
    expect((await cli(["import", fixture("mmengine-petdino-scalars.json"), "--run-id", "mm"])).code).toBe(0)
    const show = await cli(["show", "mm"])
    expect(show.stdout).toMatch(
      /last train row: iterations 1950\.\.1999, epoch 2 \(line 41\): base_lr 4\.00e-4, lr 4\.00e-6, .*loss 1\.09, .*memory 20,867/,
    )
    const json = await showJson("mm")
    expect(json.observed.lastWindow).toMatchObject({ first: 1950, last: 1999, line: 41 })
    expect(json.observed.lastWindow.values.memory).toBe(20867)
    expect(json.observed.lastWindow.values.lr).toBeCloseTo(4e-6, 12)
  })

  it("a detectron2 bbox/APs: NaN is noted with its key, line and iteration", async () => {
    const text = readFileSync(fixture("detectron2-two-runs-metrics.json"), "utf8").split("\n")
    const i = text.findIndex((l) => l.includes('"bbox/APs"'))
    expect(i).toBeGreaterThan(0)
    text[i] = text[i]!.replace(/"bbox\/APs": [-0-9.e]+/, '"bbox/APs": NaN')
    const file = join(dir, "nan", "metrics.json")
    mkdirSync(join(dir, "nan"), { recursive: true })
    writeFileSync(file, text.join("\n"))
    expect((await cli(["import", file, "--segment", "2", "--run-id", "d2-nan"])).code).toBe(0)
    const show = await cli(["show", "d2-nan"])
    expect(show.stdout).toContain(
      `non-finite values in the log (NaN / Infinity; no event holds them):\n  bbox/APs: 1 row: line ${i + 1} (iteration 199)`,
    )
    expect(show.stdout).not.toMatch(/bbox\/APs\s+\S+\s+\d+\n/)
    const json = await showJson("d2-nan")
    expect(json.nonFinite).toEqual([
      {
        key: "bbox/APs",
        count: 1,
        places: [{ line: i + 1, iteration: 199 }],
        last: { line: i + 1, iteration: 199 },
      },
    ])
  })

  it("evaluations get the digits their changes need: 2.6948 .. 2.6893 are not all '2.69'", () => {
    const perplexity = [2.6948, 2.692, 2.6893]
    expect(perplexity.map(digitsFor(perplexity))).toEqual(["2.6948", "2.6920", "2.6893"])
    // The real rgat log's last evaluations (NVIDIA result_0, v5.1): 0.71988, 0.72000, 0.72043.
    const rgat = [0.7198811769485474, 0.7199991345405579, 0.7204341292381287]
    expect(rgat.map(digitsFor(rgat))).toEqual(["0.71988", "0.72000", "0.72043"])
    // Far apart: the smallest change (1.46) to two digits, at least three significant digits.
    const fid = [79.3578305105583, 77.90123441855178, 448.06417640183344]
    expect(fid.map(digitsFor(fid))).toEqual(["79.4", "77.9", "448.1"])
  })
})

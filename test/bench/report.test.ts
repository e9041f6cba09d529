import { mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { pathToFileURL } from "node:url"
import { NodeContext } from "@effect/platform-node"
import { Effect, Either } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { measuredFromResults } from "../../adapters/sim/fit.ts"
import { compareResults } from "../../core/bench/baseline.ts"
import { chartSpecs, renderChartSvg, throughputChart } from "../../core/bench/report/charts.ts"
import { renderHtml } from "../../core/bench/report/html.ts"
import { renderMarkdown } from "../../core/bench/report/markdown.ts"
import { sparkline, sparklines } from "../../core/bench/report/sparkline.ts"
import { findingLines, memoryTable, summaryTable } from "../../core/bench/report/tables.ts"
import { writeReport } from "../../core/bench/report/write.ts"
import {
  buildConfigResult,
  decodeSweepResults,
  downsampleSeries,
  encodeSweepResults,
  type MeasuredStep,
  parseSweepResults,
  type SweepResults,
} from "../../core/bench/results.ts"
import { benchNotes } from "../../core/bench/sweep-run.ts"
import { formatBytes, formatNumber, formatPercent } from "../../core/common/format.ts"
import { launchChromium } from "../support/chromium.ts"

const FIXTURE = join(import.meta.dirname, "..", "fixtures", "sweep-results.json")
const FIXTURE_V1 = join(import.meta.dirname, "..", "fixtures", "sweep-results-v1.json")
const fixture: SweepResults = Either.getOrThrow(parseSweepResults(readFileSync(FIXTURE, "utf8"), FIXTURE))
const CHART_IDS = ["throughput", "latency", "p99", "memory", "loss"] as const

const MiB = 1024 * 1024
/** An 8:1 run: visual steps 900 MiB + small growth, text steps 400 MiB. */
const records = (n: number, failAt?: number): MeasuredStep[] =>
  Array.from({ length: n }, (_, step) => {
    const visual = step % 9 < 8
    return {
      step,
      modality: visual ? "visual" : "text",
      durationMs: visual ? 10 + (step % 3) : 5,
      memBytes: (visual ? 900 : 400) * MiB + step,
      loss: step === failAt ? Number.NaN : 1 / (step + 1),
      samples: visual ? 4 : 8,
      phase: "joint",
      cycle: Math.floor(step / 9),
    }
  })

describe("sweep results schema", () => {
  it("the fixture decodes, and encode -> JSON -> decode gives it back", () => {
    expect(fixture.configs.map((c) => c.id)).toEqual([
      "sim-8x1-b4x8",
      "sim-4x1-b4x8",
      "sim-1x1-b4x8",
      "tfjs-cpu-8x1-b4x8",
    ])
    const again = Either.getOrThrow(parseSweepResults(JSON.stringify(encodeSweepResults(fixture))))
    expect(again).toEqual(fixture)
    // The failed step's NaN loss survives the trip as "NaN".
    expect(fixture.configs[3]!.series.loss.some(Number.isNaN)).toBe(true)
  })

  it("non-finite statistics round-trip as strings", () => {
    const zero = buildConfigResult(
      {
        id: "z",
        label: "z",
        ratio: { visual: 1, text: 0 },
        batch: { visual: 1, text: 1 },
        adapter: "sim",
        runId: "r",
      },
      [{ step: 0, modality: "visual", durationMs: 0, memBytes: 1, loss: 1, samples: 1 }],
      {},
    )
    const results: SweepResults = { ...fixture, configs: [zero] }
    const json = JSON.stringify(encodeSweepResults(results))
    expect(json).toContain('"rme":"Infinity"')
    expect(Either.getOrThrow(parseSweepResults(json)).configs[0]!.latency.visual!.rme).toBe(
      Number.POSITIVE_INFINITY,
    )
  })

  it("rejects bad input and names the field", () => {
    const bad = JSON.parse(readFileSync(FIXTURE, "utf8"))
    bad.configs[1].throughput.samplesPerSec = "fast"
    const e = decodeSweepResults(bad)
    expect(Either.isLeft(e) && e.left.message).toMatch(/configs\[1\]\.throughput\.samplesPerSec/)
    const ragged = JSON.parse(readFileSync(FIXTURE, "utf8"))
    ragged.configs[0].series.loss.pop()
    const r = decodeSweepResults(ragged)
    expect(Either.isLeft(r) && r.left.message).toMatch(/same length/)
    expect(Either.isLeft(parseSweepResults("{"))).toBe(true)
  })

  it("buildConfigResult summarizes step records", () => {
    const c = buildConfigResult(
      {
        id: "x",
        label: "8:1",
        ratio: { visual: 8, text: 1 },
        batch: { visual: 4, text: 8 },
        adapter: "sim",
        runId: "run-x",
      },
      records(18, 4),
    )
    // 16 visual steps (4 samples), 2 text steps (8 samples); durations: visual 10/11/12 cycling, text 5.
    const totalMs = records(18).reduce((s, r) => s + r.durationMs, 0)
    expect(c.durationMs).toBe(totalMs)
    expect(c.throughput.stepsPerSec).toBeCloseTo(18 / (totalMs / 1000), 9)
    expect(c.throughput.samplesPerSec).toBeCloseTo((16 * 4 + 2 * 8) / (totalMs / 1000), 9)
    expect(c.failedSteps).toBe(1)
    expect(c.latency.visual!.samplesCount).toBe(15) // the failed visual step is left out
    expect(c.latency.text!.samplesCount).toBe(2)
    // Each cycle: visual peak 900 MiB + (last visual step), text 400 MiB + (text step) -> 500 MiB - 1.
    expect(c.memory!.swing).toEqual({ cycles: 2, mean: 500 * MiB - 1, max: 500 * MiB - 1 })
    expect(c.series.step).toHaveLength(18)
    expect(c.series.sourceSteps).toBe(18)
  })

  it("downsampling keeps text steps and the memory extremes", () => {
    const long = records(9 * 1000)
    const s = downsampleSeries(long, 200)
    expect(s.step.length).toBeLessThanOrEqual(200)
    expect(s.step.length).toBeGreaterThan(100)
    expect(s.sourceSteps).toBe(9000)
    expect(s.modality.filter((m) => m === "text").length).toBeGreaterThanOrEqual(50)
    expect(Math.max(...s.memBytes)).toBe(900 * MiB + 8998) // the last visual step, the series' peak
    expect(Math.min(...s.memBytes)).toBe(400 * MiB + 8) // the first text step, the series' trough
    expect([...s.step].sort((a, b) => a - b)).toEqual(s.step)
    expect(downsampleSeries(records(20), 200).step).toHaveLength(20)
  })
})

describe("markdown report", () => {
  const md = renderMarkdown(fixture)
  const rowsOf = (title: string) => {
    const section = md.split(`## ${title}`)[1]!.split("\n## ")[0]!
    return section.split("\n").filter((l) => l.startsWith("| ") && !l.startsWith("| :---"))
  }

  it("has a header, the machine, and one row per config in each table", () => {
    expect(md).toMatch(/^# Sweep: fixture-sweep\n/)
    expect(md).toContain("Example CPU @ 2.0GHz, 2 cores, 8.00 GiB RAM, linux-x64, Node v20.20.2")
    for (const title of [
      "Configurations and throughput",
      "Step latency per modality (ms per step, simulated for sim configs, measured for the others)",
      "Memory fluctuation (bytes of each config's memory figure)",
    ]) {
      const rows = rowsOf(title)
      expect(rows, title).toHaveLength(1 + fixture.configs.length) // header + rows
      for (const c of fixture.configs) expect(rows.some((r) => r.startsWith(`| ${c.label} |`))).toBe(true)
    }
  })

  it("formats the numbers", () => {
    const sim81 = fixture.configs[0]!
    const throughputRow = rowsOf("Configurations and throughput")[1]!
    expect(throughputRow).toBe(
      `| 8:1 b4/8 sim | 8:1 | 4/8 | sim (tiny) | a100-40g | completed | 45 | 0 | simulated | ${formatNumber(sim81.durationMs)} ms | ${formatNumber(sim81.throughput.stepsPerSec)} | ${formatNumber(sim81.throughput.samplesPerSec)} |`,
    )
    expect(throughputRow).toContain("| 81.1 | 360 |")
    const memoryRow = rowsOf("Memory fluctuation (bytes of each config's memory figure)")[1]!
    expect(memoryRow).toContain(`| ${formatBytes(sim81.memory!.peak)} |`)
    expect(memoryRow).toMatch(
      /^\| 8:1 b4\/8 sim \| in-step peak, simulated \(sim cost model\) \| 942 MiB \| 421 MiB \| 522 MiB \| 17\.9% \| 1\.03× \| 512 MiB \| 521 MiB \| 5 \|$/,
    )
    expect(
      rowsOf(
        "Step latency per modality (ms per step, simulated for sim configs, measured for the others)",
      )[4],
    ).toContain("| 31 | 89.0 ms ±1.0% | 88.9 ms | 92.8 ms | 4 | 41.2 ms ±4.0%! |")
    expect(rowsOf("Configurations and throughput")[4]).toContain("| 36 | 1 | measured | 3,010 ms |")
  })

  it("escapes pipes in labels and handles an empty sweep", () => {
    const piped = renderMarkdown({ ...fixture, configs: [{ ...fixture.configs[0]!, label: "a|b" }] })
    expect(piped).toContain("| a\\|b |")
    expect(renderMarkdown({ ...fixture, configs: [] })).toContain("No configurations were run.")
  })

  it("formatters", () => {
    expect(formatBytes(512)).toBe("512 B")
    expect(formatBytes(1536)).toBe("1.50 KiB")
    expect(formatBytes(945 * MiB)).toBe("945 MiB")
    expect(formatBytes(-38.3 * MiB)).toBe("-38.3 MiB")
    expect(formatBytes(null)).toBe("—")
    expect(formatNumber(0.012345)).toBe("0.0123")
    expect(formatNumber(1234.5)).toBe("1,235")
    expect(formatPercent(0.2214)).toBe("22.1%")
  })
})

describe("terminal sparklines", () => {
  it("one character per step when the series fits", () => {
    expect(sparkline([0, 7, 1, 7], 10)).toBe("▁█▂█")
    expect(sparkline([5, 5, 5])).toBe("▁▁▁")
    expect(sparkline([])).toBe("")
  })

  it("a longer series shows each group's max, one character per group: a trend, no max/min zigzag", () => {
    const line = sparkline(
      records(900).map((r) => r.memBytes),
      20,
    )
    expect(line).toHaveLength(20)
    // Each group of 45 steps holds visual peaks: the line stays high (it used to read █▁█▁...).
    expect(line).toMatch(/^[▇█]{20}$/)
  })

  it("one line per config with its key numbers", () => {
    const lines = sparklines(fixture).split("\n")
    expect(lines).toHaveLength(2 + fixture.configs.length)
    expect(lines[2]).toMatch(/^8:1 b4\/8 sim +steps █{8}▁█{8}▁/)
    expect(lines[2]).toContain("peak 942 MiB")
    expect(lines[2]).toContain("swing mean 512 MiB")
    expect(lines[2]).toContain("360 samples/s")
    expect(lines[5]).toContain("p99 V 92.8 ms  T 42.4 ms")
    // The figures differ between sim and tfjs, so each line names its own.
    expect(lines[2]).toContain("[in-step peak, simulated (sim cost model)]")
    expect(lines[5]).toContain("[in-step peak, 35 of 36 steps]")
  })
})

describe("HTML report", () => {
  let html = ""
  let dir = ""
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "interleave-report-"))
    const written = await Effect.runPromise(
      writeReport(join(dir, "out"), fixture).pipe(Effect.provide(NodeContext.layer)),
    )
    expect(written.htmlPath).toBe(join(dir, "out", "report.html"))
    html = readFileSync(written.htmlPath, "utf8")
    expect(readFileSync(written.markdownPath, "utf8")).toBe(renderMarkdown(fixture))
  })
  afterAll(() => rmSync(dir, { recursive: true, force: true }))

  it("is one self-contained file: no URL, no script, one inline SVG per chart", () => {
    expect(html).not.toMatch(/https?:\/\//i)
    expect(html).not.toMatch(/<script|<link|<img|<iframe|url\(/i)
    for (const id of CHART_IDS) expect(html).toContain(`data-chart="${id}"`)
    expect(html.match(/<svg\b/g)).toHaveLength(CHART_IDS.length)
    for (const c of fixture.configs) expect(html).toContain(`<td>${c.label}</td>`)
  })

  it("escapes user text", async () => {
    const evil = await renderHtml({ ...fixture, name: "<b>x</b>", configs: [] })
    expect(evil).toContain("&lt;b&gt;x&lt;/b&gt;")
    expect(evil).not.toContain("<b>x</b>")
  })

  it("charts come from vega-lite specs with the modality encodings", async () => {
    const specs = chartSpecs(fixture)
    expect(specs.map((s) => s.id)).toEqual([...CHART_IDS])
    const svg = await renderChartSvg(specs.find((s) => s.id === "memory")!.spec)
    // Both modalities drawn in their colours.
    expect(svg).toContain('fill="#4c78a8"')
    expect(svg).toContain('fill="#e45756"')
  })
  it.skipIf(process.env.INTERLEAVE_SKIP_BROWSER === "1")(
    "renders in headless Chromium: every chart drawn, no console or page errors",
    async () => {
      const browser = await launchChromium()
      try {
        const page = await browser.newPage()
        const problems: string[] = []
        const requests: string[] = []
        page.on("console", (m) => {
          if (m.type() === "error" || m.type() === "warning")
            problems.push(`console ${m.type()}: ${m.text()}`)
        })
        page.on("pageerror", (e) => problems.push(`page error: ${e.message}`))
        page.on("request", (r) => requests.push(r.url()))
        const url = pathToFileURL(join(dir, "out", "report.html")).href
        await page.goto(url, { waitUntil: "load" })

        const charts = await page.$$eval("figure.chart", (figures) =>
          figures.map((f) => {
            const svg = f.querySelector("svg")
            const box = svg?.getBoundingClientRect()
            return {
              id: f.getAttribute("data-chart"),
              width: box?.width ?? 0,
              height: box?.height ?? 0,
              marks: f.querySelectorAll(".role-mark path").length,
              symbols: f.querySelectorAll(".role-mark.mark-symbol path").length,
              lines: f.querySelectorAll(".role-mark.mark-line path").length,
              rects: f.querySelectorAll(".role-mark.mark-rect path").length,
              // The SVG landed in the SVG namespace despite having no xmlns attribute.
              svgNamespace: svg?.namespaceURI === "http://www.w3.org/2000/svg",
            }
          }),
        )
        expect(charts.map((c) => c.id)).toEqual([...CHART_IDS])
        for (const c of charts) {
          expect(c.width, c.id!).toBeGreaterThan(100)
          expect(c.height, c.id!).toBeGreaterThan(100)
          expect(c.marks, c.id!).toBeGreaterThan(0)
          expect(c.svgNamespace, c.id!).toBe(true)
        }
        const byId = Object.fromEntries(charts.map((c) => [c.id, c]))
        // One point per config on the throughput chart, one bar per (config, modality) on latency.
        expect(byId.throughput!.symbols).toBe(fixture.configs.length)
        const stats = fixture.configs.flatMap((c) => [c.latency.visual, c.latency.text].filter(Boolean))
        expect(byId.latency!.symbols).toBe(stats.length)
        expect(byId.p99!.symbols).toBe(stats.length)
        // Every config's memory panel has its bands (an area and two lines per modality it ran).
        const modalities = fixture.configs.reduce((n, c) => n + new Set(c.series.modality).size, 0)
        expect(byId.memory!.lines).toBe(2 * modalities)

        const tableRows = await page.$$eval("table[data-table] tbody tr", (rows) => rows.length)
        expect(tableRows).toBe(3 * fixture.configs.length)
        expect(problems).toEqual([])
        expect(requests).toEqual([url])
      } finally {
        await browser.close()
      }
    },
  )
})

/** A sweep over two sim targets at one batch size; the A100's visual-heavy ratios ran out of memory. */
const twoTargets = (): SweepResults => {
  const OOM = "out-of-memory at step 0: step 0 (visual, batch 16) needs 61.32 GiB but a100-40g has 40.00 GiB"
  const ratios = [
    ["16x1", "16:1", { visual: 16, text: 1 }],
    ["1x1", "1:1", { visual: 1, text: 1 }],
    ["1x0", "visual-only", { visual: 1, text: 0 }],
    ["0x1", "text-only", { visual: 0, text: 1 }],
    ["8x1", "8:1", { visual: 8, text: 1 }],
  ] as const
  const configs = ["h100-sxm", "a100-40g"].flatMap((hw) =>
    ratios.map(([idPart, name, ratio]) => {
      const aborted = hw === "a100-40g" && ratio.visual > 0 ? OOM : undefined
      return buildConfigResult(
        {
          id: `sim-${hw}-trex2-swin-t-${idPart}-b16x8`,
          label: `${name} b16/8 sim ${hw} trex2-swin-t`,
          ratio,
          batch: { visual: 16, text: 8 },
          adapter: "sim",
          hardware: hw,
          runId: `r-${hw}-${idPart}`,
          aborted,
          memoryFigure: { source: "peakBytes", origin: "simulated", sampledSteps: aborted ? 0 : 18 },
        },
        aborted ? [] : records(18),
      )
    }),
  )
  return { ...fixture, configs }
}

describe("memory numbers name their figure (item 2)", () => {
  it("the memory table, the summary table and the notes name the figure; a sim config's never says tf.memory", () => {
    const rows = memoryTable(fixture).rows
    expect(rows.map((r) => r[1])).toEqual([
      "in-step peak, simulated (sim cost model)",
      "in-step peak, simulated (sim cost model)",
      "in-step peak, simulated (sim cost model)",
      "in-step peak, 35 of 36 steps",
    ])
    // Figures differ: the terminal summary has a column for them.
    const mixed = summaryTable(fixture)
    expect(mixed.columns.at(-1)!.header).toBe("memory figure")
    expect(mixed.rows.map((r) => r.at(-1))).toEqual([
      "in-step peak, simulated",
      "in-step peak, simulated",
      "in-step peak, simulated",
      "in-step peak, 35/36 steps",
    ])
    // One figure for all: the header says it.
    const sims = { ...fixture, configs: fixture.configs.slice(0, 3) }
    expect(summaryTable(sims).columns.map((c) => c.header)).toContain("mem peak (in-step peak, simulated)")
    const notes = benchNotes({ warmupSteps: 3, measuredSteps: 45 }, fixture.configs, [])
    const simNote = notes.find((n) => n.includes("sim-8x1-b4x8"))!
    expect(simNote).toContain("Memory figure in-step peak, simulated (sim cost model)")
    expect(simNote).not.toMatch(/tf\.memory|tf\.profile|numBytes/)
    expect(notes.find((n) => n.includes("tfjs-cpu-8x1-b4x8"))).toContain("tf.profile peakBytes")
  })

  it("a version-1 results file still decodes: for --compare and for fitting the sim", () => {
    const v1 = Either.getOrThrow(parseSweepResults(readFileSync(FIXTURE_V1, "utf8"), FIXTURE_V1))
    expect(v1.schemaVersion).toBe(1)
    expect(v1.configs.every((c) => c.memoryFigure === undefined)).toBe(true)
    expect(memoryTable(v1).rows[0]![1]).toBe("figure not recorded (results v1)")
    expect(measuredFromResults(v1).map((m) => m.id)).toEqual(fixture.configs.map((c) => c.id))
    const c = compareResults(v1, fixture)
    expect(c.failed).toBe(false)
    expect(c.deltas.length).toBeGreaterThan(0)
    // A version this build does not know is refused, naming the field.
    const v3 = JSON.parse(readFileSync(FIXTURE, "utf8"))
    v3.schemaVersion = 3
    const bad = decodeSweepResults(v3, "r.json")
    expect(Either.isLeft(bad) && bad.left.message).toBe(
      "r.json: schemaVersion: unsupported results version 3 (this interleave reads versions 1 and 2)",
    )
  })
})

describe("aborted configurations read aborted, never 0 (item 6)", () => {
  it("in the summary, the reports' tables and the findings", () => {
    const r = twoTargets()
    const summary = summaryTable(r)
    const row = summary.rows.find((x) => x[0] === "sim-a100-40g-trex2-swin-t-16x1-b16x8")!
    expect(row[1]).toBe("aborted (OOM)")
    expect(row.slice(2).every((x) => x === "—")).toBe(true)
    const md = renderMarkdown(r)
    expect(md).toContain(
      "| 16:1 b16/8 sim a100-40g trex2-swin-t | 16:1 | 16/8 | a100-40g | aborted (OOM) | 0 | 0 | — | aborted | aborted |",
    )
    expect(md).not.toMatch(/a100-40g trex2-swin-t \|[^\n]*\| 0 \| 0 \|$/m)
    expect(findingLines(r)).toContain(
      "aborted: sim-a100-40g-trex2-swin-t-16x1-b16x8: out-of-memory at step 0: step 0 (visual, batch 16) needs 61.32 GiB but a100-40g has 40.00 GiB",
    )
  })
})

describe("throughput chart keyed by target (item 4)", () => {
  it("one series per target and batch, aborted configs as marked gaps, ratios by visual share", () => {
    const r = twoTargets()
    const { spec } = throughputChart(r)
    const values = (spec.data as { values: Array<Record<string, unknown>> }).values
    const of = (id: string) => values.find((v) => v.id === id)!
    expect(of("sim-h100-sxm-trex2-swin-t-8x1-b16x8")).toMatchObject({
      target: "sim h100-sxm trex2-swin-t",
      batch: "b16/8",
    })
    expect(of("sim-a100-40g-trex2-swin-t-0x1-b16x8").target).toBe("sim a100-40g trex2-swin-t")
    expect(new Set(values.map((v) => v.target)).size).toBe(2)
    // Aborted: no value (a gap in the line), the reason as a label; nothing plotted at 0.
    const aborted = values.filter((v) => v.aborted !== null)
    expect(aborted).toHaveLength(4)
    expect(aborted.every((v) => v.samplesPerSec === null && v.aborted === "OOM")).toBe(true)
    expect(values.some((v) => v.samplesPerSec === 0)).toBe(false)
    const x = (spec as { spec: { layer: Array<{ encoding: { x: { sort: string[] } } }> } }).spec.layer[0]!
      .encoding.x
    expect(x.sort).toEqual(["text-only", "1:1", "8:1", "16:1", "visual-only"])
  })

  it("the SVG draws a point per completed config and an OOM label per aborted one", async () => {
    const r = twoTargets()
    const svg = await renderChartSvg(throughputChart(r).spec)
    // A panel per target: count the marks of every panel.
    const groups = (cls: string) =>
      svg
        .split(`class="${cls} role-mark`)
        .slice(1)
        .map((g) => g.split("</g>")[0]!)
        .join("")
    expect(groups("mark-symbol").match(/<path/g)).toHaveLength(6)
    expect(groups("mark-text").match(/>OOM</g)).toHaveLength(4)
    const html = await renderHtml(r)
    const figure = html.split('data-chart="throughput"')[1]!.split("</figure>")[0]!
    expect(figure).toContain("it is not 0")
    expect(figure).toContain(">OOM<")
  })
})

/**
 * The sweep report's charts as a reader sees them: report.html opened in headless Chromium at
 * 1400 px and 900 px. Axis titles, units and legend entries are read from the SVG's text; the abort
 * mark's position and colour from the DOM; the tables' right edges with getBoundingClientRect.
 * Screenshots of every chart and table land in out/report-screenshots/ (git-ignored) for a person
 * to look at; nothing asserts on pixels.
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { pathToFileURL } from "node:url"
import { Either } from "effect"
import type { Browser, Page } from "playwright-core"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { lossChoice, memoryBuckets } from "../../core/bench/report/charts.ts"
import { renderHtml } from "../../core/bench/report/html.ts"
import {
  buildConfigResult,
  type ConfigResult,
  type MeasuredStep,
  parseSweepResults,
  type SweepResults,
} from "../../core/bench/results.ts"
import { launchChromium } from "../support/chromium.ts"

const ROOT = join(import.meta.dirname, "..", "..")
/** Where the screenshots go (git-ignored); kept after the run so a person can look at them. */
const SHOTS = join(ROOT, "out", "report-screenshots")
const FIXTURE = join(ROOT, "test", "fixtures", "sweep-results.json")
const fixture: SweepResults = Either.getOrThrow(parseSweepResults(readFileSync(FIXTURE, "utf8"), FIXTURE))
const committed = (dir: string): SweepResults => {
  const path = join(ROOT, "benchmarks", "results", dir, "results.json")
  return Either.getOrThrow(parseSweepResults(readFileSync(path, "utf8"), path))
}

const MiB = 1024 * 1024
const RATIOS = [
  ["0x1", "text-only", { visual: 0, text: 1 }],
  ["1x1", "1:1", { visual: 1, text: 1 }],
  ["8x1", "8:1", { visual: 8, text: 1 }],
  ["1x0", "visual-only", { visual: 1, text: 0 }],
] as const

/**
 * `n` steps of a V:T schedule: step times that vary (so intervals have width), memory high on
 * visual steps, and loss terms where a visual step gains `align` once a text step has run (as
 * tfjs's does), so its total is not comparable across ratios.
 */
const steps = (ratio: { visual: number; text: number }, n: number, batch: number): MeasuredStep[] => {
  const cycle = ratio.visual + ratio.text
  let textSeen = false
  return Array.from({ length: n }, (_, step) => {
    const visual = step % cycle < ratio.visual
    const cls = 1 / (1 + step / 20) + (visual ? 0.1 : 0)
    const box = 0.5 / (1 + step / 30)
    const align = visual && textSeen ? 3 : undefined
    if (!visual) textSeen = true
    return {
      step,
      modality: visual ? "visual" : "text",
      durationMs: (visual ? 40 : 20) * (batch / 4) + (step % 5),
      memBytes: (visual ? 900 : 500) * MiB * (batch / 4) + (step % 7) * MiB,
      loss: cls + box + (align ?? 0),
      lossTerms: { cls, box, ...(align === undefined ? {} : { align }) },
      samples: batch,
      phase: "joint",
      cycle: Math.floor(step / cycle),
    }
  })
}

const config = (
  adapter: "sim" | "pytorch",
  hardware: string,
  [idPart, name, ratio]: (typeof RATIOS)[number],
  batch: number,
  aborted?: string,
): ConfigResult => {
  const target = adapter === "sim" ? `sim-${hardware}-trex2-swin-t` : "pytorch-cpu-tiny"
  const words = adapter === "sim" ? `sim ${hardware} trex2-swin-t` : "pytorch/cpu tiny"
  const text = batch === 16 ? 8 : batch
  return buildConfigResult(
    {
      id: `${target}-${idPart}-b${batch}x${text}`,
      label: `${name} b${batch}/${text} ${words}`,
      ratio,
      batch: { visual: batch, text },
      adapter,
      hardware,
      runId: `r-${target}-${idPart}-${batch}`,
      aborted,
      memoryFigure: {
        source: "peakBytes",
        origin: adapter === "sim" ? "simulated" : "measured",
        sampledSteps: aborted ? 0 : 120,
      },
    },
    aborted ? [] : steps(ratio, 120, batch),
  )
}

const OOM = "out-of-memory at step 0: step 0 (visual, batch 16) needs 61.32 GiB but a100-40g has 40.00 GiB"
/** Two sim targets at two batch sizes; on the A100 every ratio with visual steps at b16/8 ran out of memory. */
const simSweep: SweepResults = {
  ...fixture,
  name: "two-targets-sim",
  configs: ["h100-sxm", "a100-40g"].flatMap((hw) =>
    [4, 16].flatMap((b) =>
      RATIOS.map((r) =>
        config("sim", hw, r, b, hw === "a100-40g" && b === 16 && r[2].visual > 0 ? OOM : undefined),
      ),
    ),
  ),
}
/** A measured-only sweep: PyTorch on the CPU, two batch sizes. */
const measuredSweep: SweepResults = {
  ...fixture,
  name: "pytorch-cpu-measured",
  configs: [4, 16].flatMap((b) => RATIOS.map((r) => config("pytorch", "cpu", r, b))),
}

const REPORTS = {
  sim: simSweep,
  measured: measuredSweep,
  mixed: fixture,
  "tfjs-wasm-committed": committed("ratios-tiny-wasm"),
  "pytorch-cpu-committed": committed("calibration-pytorch-cpu"),
} as const
type ReportName = keyof typeof REPORTS
const skipBrowser = process.env.INTERLEAVE_SKIP_BROWSER === "1"

/** Every text of a chart's SVG (axis titles and labels, legend titles and entries, headers, marks). */
const svgTexts = (page: Page, id: string) =>
  page.$$eval(`figure[data-chart="${id}"] svg text`, (ts) =>
    ts.map((t) => (t.textContent ?? "").replace(/\s+/g, " ").trim()),
  )

describe("memory drawn per pixel column, never thinned", () => {
  it("each bucket holds the lowest and highest memory of its visual and of its text steps", () => {
    const c = config("pytorch", "cpu", RATIOS[2], 4) // 8:1, 120 steps
    for (const pixels of [7, 40, 120, 500]) {
      const buckets = memoryBuckets(c, pixels)
      const { step, modality, memBytes } = c.series
      const size = Math.max(1, Math.ceil((step.at(-1)! - step[0]! + 1) / pixels))
      for (const b of buckets) {
        const inIt = step
          .map((s, i) => [s, i] as const)
          .filter(([s, i]) => s >= b.step && s < b.step + size && modality[i] === b.modality)
          .map(([, i]) => memBytes[i]!)
        if (inIt.length === 0) expect(b.min).toBeNull()
        else {
          expect(b.min).toBe(Math.min(...inIt))
          expect(b.max).toBe(Math.max(...inIt))
        }
      }
      // Every step lands in a bucket: the extremes of the run are all there.
      const all = buckets.flatMap((b) => (b.max === null ? [] : [b.min!, b.max]))
      expect(Math.max(...all)).toBe(Math.max(...memBytes))
      expect(Math.min(...all)).toBe(Math.min(...memBytes))
      expect(buckets.filter((b) => b.modality === "visual").length).toBeLessThanOrEqual(pixels)
    }
  })
})

describe("the loss chart compares like with like", () => {
  it("draws a term every step has when the totals add up different terms, and says which", () => {
    const choice = lossChoice(measuredSweep)
    expect(choice.term).toBe("cls")
    expect(choice.why).toMatch(/align \(in \d+ of \d+ drawn steps\)/)
    // Without terms (a results file from before they were kept) it draws the total and says why.
    expect(lossChoice(REPORTS["tfjs-wasm-committed"]).term).toBe("total")
    expect(lossChoice(REPORTS["tfjs-wasm-committed"]).why).toContain("compare runs within a panel")
  })
})

describe.skipIf(skipBrowser)("the sweep report in headless Chromium (issue 20 item 2)", () => {
  let browser: Browser
  const files = new Map<ReportName, string>()
  beforeAll(async () => {
    mkdirSync(SHOTS, { recursive: true })
    for (const [name, results] of Object.entries(REPORTS)) {
      const file = join(SHOTS, `${name}.html`)
      writeFileSync(file, await renderHtml(results))
      files.set(name as ReportName, file)
    }
    browser = await launchChromium()
  }, 120_000)
  afterAll(async () => {
    await browser?.close()
  })

  const open = async (name: ReportName, width: number): Promise<Page> => {
    const page = await browser.newPage({ viewport: { width, height: 1000 } })
    const problems: string[] = []
    page.on("console", (m) => {
      if (m.type() === "error" || m.type() === "warning") problems.push(`console ${m.type()}: ${m.text()}`)
    })
    page.on("pageerror", (e) => problems.push(`page error: ${e.message}`))
    await page.goto(pathToFileURL(files.get(name)!).href, { waitUntil: "load" })
    expect(problems).toEqual([])
    return page
  }

  /** The page, every chart and every table, one PNG each: `<report>-<width>-<part>.png`. */
  const screenshots = async (page: Page, name: ReportName, width: number) => {
    await page.screenshot({ path: join(SHOTS, `${name}-${width}-page.png`), fullPage: true })
    for (const f of await page.$$("figure.chart"))
      await f.screenshot({
        path: join(SHOTS, `${name}-${width}-chart-${await f.getAttribute("data-chart")}.png`),
      })
    for (const t of await page.$$("div.table-scroll")) {
      const id = await t.evaluate((e) => e.querySelector("table")?.getAttribute("data-table"))
      await t.screenshot({ path: join(SHOTS, `${name}-${width}-table-${id}.png`) })
    }
  }

  for (const width of [1400, 900])
    it(`every report at ${width} px: no sideways scrolling, tables and legends inside the window; screenshots`, async () => {
      for (const name of Object.keys(REPORTS) as ReportName[]) {
        const page = await open(name, width)
        try {
          const box = await page.evaluate(() => ({
            scrollWidth: document.documentElement.scrollWidth,
            tables: Array.from(document.querySelectorAll("table[data-table]")).map((t) => ({
              id: t.getAttribute("data-table"),
              right: t.getBoundingClientRect().right,
            })),
            legends: Array.from(document.querySelectorAll("figure.chart svg .role-legend")).map((l) => ({
              chart: l.closest("figure")?.getAttribute("data-chart"),
              right: l.getBoundingClientRect().right,
              width: l.getBoundingClientRect().width,
            })),
            charts: Array.from(document.querySelectorAll("figure.chart svg")).map(
              (s) => s.getBoundingClientRect().right,
            ),
          }))
          expect(box.scrollWidth, name).toBeLessThanOrEqual(width)
          for (const t of box.tables) expect(t.right, `${name} table ${t.id}`).toBeLessThanOrEqual(width)
          for (const right of box.charts) expect(right, name).toBeLessThanOrEqual(width)
          expect(box.legends.length, name).toBeGreaterThanOrEqual(5)
          for (const l of box.legends) {
            expect(l.width, `${name} ${l.chart} legend`).toBeGreaterThan(0)
            expect(l.right, `${name} ${l.chart} legend`).toBeLessThanOrEqual(width)
          }
          await screenshots(page, name, width)
        } finally {
          await page.close()
        }
      }
    }, 240_000)

  it("each chart has its axis titles, units and legend entries in the SVG", async () => {
    const page = await open("sim", 1400)
    try {
      const ids = await page.$$eval("figure.chart", (fs) => fs.map((f) => f.getAttribute("data-chart")))
      expect(ids).toEqual(["throughput", "latency", "p99", "memory", "loss"])
      const throughput = await svgTexts(page, "throughput")
      expect(throughput).toEqual(
        expect.arrayContaining([
          "Samples / s (axis not from 0)",
          "Ratio V:T (visual steps : text steps, by visual share)",
          "Batch V/T (samples per visual / text step)",
          "b4/4",
          "b16/8",
          "sim h100-sxm trex2-swin-t",
          "sim a100-40g trex2-swin-t",
        ]),
      )
      for (const id of ["latency", "p99"]) {
        const texts = await svgTexts(page, id)
        expect(texts, id).toEqual(
          expect.arrayContaining([
            id === "p99" ? "p99 step time (ms)" : "Mean step time (ms)",
            "Ratio V:T (visual steps : text steps, by visual share)",
            "Modality",
            "visual",
            "text",
            "sim h100-sxm trex2-swin-t b4/4",
            "sim a100-40g trex2-swin-t b16/8",
          ]),
        )
      }
      const memory = await svgTexts(page, "memory")
      expect(memory).toEqual(
        expect.arrayContaining([
          "Memory figure (GiB)",
          "visual steps",
          "text steps",
          "mean over one cycle",
          "Step",
        ]),
      )
      // Each row names its target and batch, its memory figure and where its y axis starts.
      expect(
        memory.filter((t) => /^sim (h100-sxm|a100-40g) trex2-swin-t b\d+\/\d+ · in-step peak/.test(t)),
      ).toHaveLength(4)
      expect(memory.filter((t) => /y axis from [\d.]+ GiB, not 0$/.test(t))).toHaveLength(4)
      for (const r of ["text-only", "1:1", "8:1", "visual-only"]) expect(memory).toContain(`ratio ${r}`)
      const loss = await svgTexts(page, "loss")
      expect(loss).toEqual(
        expect.arrayContaining([
          "Loss term “cls”",
          "Step",
          "Ratio V:T",
          "visual steps",
          "text steps",
          "Target, batch V/T",
          "sim h100-sxm trex2-swin-t b4/4",
          "sim a100-40g trex2-swin-t b16/8",
        ]),
      )
      const lossNote = await page.$eval('figure[data-chart="loss"] .chart-note', (p) => p.textContent ?? "")
      expect(lossNote).toMatch(
        /the “cls” term, which every step of every run has; the total is not drawn because align/,
      )
    } finally {
      await page.close()
    }
  })

  it("the OOM mark sits on the configuration that aborted: its target's panel, its ratio, its batch's colour", async () => {
    const page = await open("sim", 1400)
    try {
      const geo = await page.$eval('figure[data-chart="throughput"] svg', (svg) => {
        const centre = (e: Element) => {
          const r = e.getBoundingClientRect()
          return { x: r.left + r.width / 2, left: r.left, y: r.top + r.height / 2 }
        }
        const texts = Array.from(svg.querySelectorAll("text"))
        const find = (s: string) => texts.filter((t) => t.textContent?.trim() === s)
        return {
          headers: Object.fromEntries(
            ["sim h100-sxm trex2-swin-t", "sim a100-40g trex2-swin-t"].map((h) => [h, centre(find(h)[0]!).x]),
          ),
          ticks: Object.fromEntries(
            ["text-only", "1:1", "8:1", "visual-only"].map((r) => [r, find(r).map((t) => centre(t).x)]),
          ),
          ooms: find("OOM").map((t) => ({
            left: centre(t).left,
            fill: t.getAttribute("fill"),
            label: t.getAttribute("aria-label") ?? "",
          })),
          legend: Object.fromEntries(
            Array.from(svg.querySelectorAll(".role-legend-entry .role-scope > g, .role-legend-entry g"))
              .map((g) => [
                g.querySelector("text")?.textContent?.trim(),
                g.querySelector(".role-legend-symbol path")?.getAttribute("fill"),
              ])
              .filter(([k, v]) => k && v),
          ),
        }
      })
      // Three ratios with visual steps aborted at b16/8 on the A100: three marks.
      expect(geo.ooms).toHaveLength(3)
      const a100 = geo.headers["sim a100-40g trex2-swin-t"]!
      const h100 = geo.headers["sim h100-sxm trex2-swin-t"]!
      const b16 = geo.legend["b16/8"]
      expect(b16).toBeTruthy()
      expect(b16).not.toBe(geo.legend["b4/4"])
      for (const o of geo.ooms) {
        // In the A100's panel (nearer its header than the H100's), never on an H100 line.
        expect(Math.abs(o.left - a100), o.label).toBeLessThan(Math.abs(o.left - h100))
        expect(o.label).toMatch(/^aborted: \S+ b16\/8 sim a100-40g trex2-swin-t: out-of-memory/)
        // At its ratio: the label starts 4 px right of the ratio's tick in that panel.
        const ratio = /^aborted: (\S+) /.exec(o.label)![1]!
        const tick = geo.ticks[ratio]!.reduce((a, b) => (Math.abs(b - a100) < Math.abs(a - a100) ? b : a))
        expect(Math.abs(o.left - tick), o.label).toBeLessThan(8)
        // In the colour of the batch that aborted.
        expect(o.fill).toBe(b16)
      }
    } finally {
      await page.close()
    }
  })

  it("error bars (95% CI) on throughput and mean latency; the p99 chart has a point per modality and config", async () => {
    const page = await open("measured", 1400)
    try {
      const labels = (id: string, sel: string) =>
        page.$$eval(`figure[data-chart="${id}"] svg ${sel}`, (es) =>
          es.map((e) => e.getAttribute("aria-label") ?? ""),
        )
      const completed = measuredSweep.configs
      const stats = completed.flatMap((c) => [c.latency.visual, c.latency.text].filter(Boolean))
      const throughputBars = (await labels("throughput", ".role-mark line")).filter((l) =>
        l.includes("95% CI"),
      )
      expect(throughputBars).toHaveLength(completed.length)
      // Each bar has width: the step times vary.
      for (const l of throughputBars) {
        const [, lo, hi] = /95% CI ([\d.]+) to ([\d.]+)/.exec(l)!
        expect(Number(hi)).toBeGreaterThan(Number(lo))
      }
      const latencyBars = (await labels("latency", ".role-mark *")).filter((l) => /95% CI .* ms/.test(l))
      // An error bar is a rule plus its two ticks, each described.
      expect(new Set(latencyBars).size).toBe(stats.length)
      const p99Points = (await labels("p99", ".mark-symbol.role-mark path")).filter((l) =>
        / p99 [\d.]+ ms/.test(l),
      )
      expect(p99Points).toHaveLength(stats.length)
      expect(await svgTexts(page, "p99")).toContain("p99 step time (ms)")
    } finally {
      await page.close()
    }
  })

  it("headings are true to the targets: measured, simulated or mixed", async () => {
    const headings = async (name: ReportName) => {
      const page = await open(name, 1400)
      try {
        return await page.$eval(".interleave-report", (r) => ({
          clock: r.getAttribute("data-clock"),
          text: Array.from(r.querySelectorAll("h1, h2, .meta, figcaption, .chart-note, .table-note"))
            .map((e) => e.textContent ?? "")
            .join("\n"),
        }))
      } finally {
        await page.close()
      }
    }
    const measured = await headings("measured")
    expect(measured.clock).toBe("measured")
    expect(measured.text).not.toMatch(/simulat/i)
    expect(measured.text).toContain("Step latency per modality (ms per step, measured)")
    expect(measured.text).toContain("Throughput by ratio (samples/s, measured)")
    expect(measured.text).toContain("times and memory measured")
    const committedTorch = await headings("pytorch-cpu-committed")
    expect(committedTorch.text).not.toMatch(/simulat/i)
    const sim = await headings("sim")
    expect(sim.clock).toBe("simulated")
    expect(sim.text).toContain("Step latency per modality (ms per step, simulated)")
    expect(sim.text).not.toMatch(/\bmeasured\)/)
    const mixed = await headings("mixed")
    expect(mixed.clock).toBe("mixed")
    expect(mixed.text).toContain("simulated for sim configs, measured for the others")
    expect(mixed.text).toContain("simulated for sim targets, measured for the others")
  })
})

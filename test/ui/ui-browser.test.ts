/**
 * `interleave ui` in a real browser (Debian's Chromium through playwright-core, one browser for
 * every test): the pages load with no console error, every chart has its axis titles, units and
 * legend as DOM text, a running run's page shows its step count grow (SQLite, and PostgreSQL when
 * a server is there), the compare page overlays a run and its fork, a 200,000-step run's page
 * draws, and the server stops cleanly on SIGTERM. Screenshots of each page at 1400 and 900 px
 * go to out/ui-browser/ (git-ignored), with draw-times.log.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { appendFileSync, mkdirSync, rmSync, writeFileSync } from "node:fs"
import { request } from "node:http"
import { join } from "node:path"
import type { Browser, Page } from "playwright-core"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { launchChromium } from "../support/chromium.ts"
import { BIN, ROOT, runCli, tempDir, writeJson } from "../support/cli-helpers.ts"
import { createDatabase, postgresSkipReason, testPostgresUrl } from "../support/postgres.ts"
import { timeoutFor, waitUntil } from "../support/timeouts.ts"

const SHOTS = join(ROOT, "out", "ui-browser")
const LOG = join(SHOTS, "draw-times.log")
const TRAINER = join(import.meta.dirname, "slow-trainer.mjs")
const SWEEP_RESULTS = join(ROOT, "test", "fixtures", "sweep-results.json")
const LONG_STEPS = 200_000

const scenarioOf = (name: string, text: number, joint: number) => ({
  name,
  seed: 5,
  phases: [
    { name: "text-only", steps: text, ratio: { visual: 0, text: 1 } },
    { name: "joint", steps: joint, ratio: { visual: 8, text: 1 }, order: "visual-first" },
  ],
  batch: { visual: { size: 8 }, text: { size: 8 } },
  optimizer: { kind: "adamw", lr: 1e-4, groups: [{ name: "backbone", lr: 1e-5 }, { name: "head" }] },
  lr: {
    warmup: { kind: "linear", steps: 200 },
    decay: { kind: "multistep", milestones: [Math.floor((text + joint) * 0.75)], gamma: 0.1 },
    modalityFactor: { visual: 1, text: 0.5 },
  },
})

const must = async (args: string[]) => {
  const r = await runCli(args)
  if (r.code !== 0) throw new Error(`interleave ${args.join(" ")}: exit ${r.code}\n${r.stderr}`)
  return r
}

/** `interleave ui` as a user starts it; resolves with its URL once it printed it. */
const startUi = (store: string, extra: string[] = []) =>
  new Promise<{ url: string; child: ChildProcess; stderr: () => string }>((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, "ui", "--store", store, "--port", "0", ...extra], {
      cwd: ROOT,
      stdio: ["ignore", "pipe", "pipe"],
    })
    let out = ""
    let err = ""
    child.stdout!.on("data", (b) => {
      out += b
      const m = /interleave ui: (http:\/\/\S+)/.exec(out)
      if (m) resolve({ url: m[1]!.replace(/\/$/, ""), child, stderr: () => err })
    })
    child.stderr!.on("data", (b) => {
      err += b
    })
    child.on("exit", (code) =>
      reject(new Error(`interleave ui exited (${code}) before printing its URL: ${err}`)),
    )
  })

const exited = (child: ChildProcess) =>
  new Promise<number | null>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve(child.exitCode)
    child.on("exit", (code) => resolve(code))
  })

let dir: string
let store: string
let ui: { url: string; child: ChildProcess; stderr: () => string }
let browser: Browser
let forkId: string

const WIDTHS = [1400, 900] as const

/** Opens `path` at each width; checks it drew with no console error; writes the screenshots. */
const visit = async (
  path: string,
  name: string,
  check: (page: Page, width: number) => Promise<void>,
  base = ui.url,
) => {
  for (const width of WIDTHS) {
    const context = await browser.newContext({ viewport: { width, height: 900 } })
    const page = await context.newPage()
    const errors: string[] = []
    page.on("console", (m) => {
      if (m.type() === "error") errors.push(m.text())
    })
    page.on("pageerror", (e) => errors.push(e.message))
    try {
      await page.goto(`${base}${path}`)
      await page.waitForFunction(
        () =>
          document.body.dataset.drawn === "1" ||
          document.body.dataset.ready === "1" ||
          document.body.dataset.failed === "1",
        null,
        { timeout: 0 },
      )
      expect(await page.evaluate(() => document.body.dataset.failed)).toBeUndefined()
      await check(page, width)
      await page.screenshot({ path: join(SHOTS, `${name}-${width}.png`), fullPage: true })
      expect(errors).toEqual([])
    } finally {
      await context.close()
    }
  }
}

/** Each chart's title, axis titles and legend entries, as the DOM has them. */
const chartTexts = (page: Page) =>
  page.$$eval("figure.chart", (figs) =>
    figs.map((f) => ({
      id: f.getAttribute("data-chart"),
      title: f.querySelector("figcaption")?.textContent ?? "",
      y: f.querySelector(".y-title")?.textContent ?? "",
      x: f.querySelector(".x-title")?.textContent ?? "",
      legend: Array.from(f.querySelectorAll("ul.legend li")).map((li) => li.textContent ?? ""),
      canvas: f.querySelectorAll("canvas").length,
    })),
  )

beforeAll(
  async () => {
    rmSync(SHOTS, { recursive: true, force: true })
    mkdirSync(SHOTS, { recursive: true })
    writeFileSync(LOG, `interleave ui browser test, ${new Date().toISOString()}\n`)
    dir = tempDir("interleave-ui-")
    store = join(dir, "runs.db")
    const short = writeJson(dir, "short.json", scenarioOf("short-8to1", 90, 2910))
    const long = writeJson(dir, "long.json", scenarioOf("long-200k", 2000, LONG_STEPS - 2000))
    await must(["run", short, "--store", store, "--run-id", "short", "--eval-every", "500"])
    const fork = await must(["fork", "short", "--at", "1500", "--ratio", "4:1", "--store", store, "--json"])
    forkId = (JSON.parse(fork.stdout) as { runId: string }).runId
    await must([
      "run",
      short,
      "--store",
      store,
      "--run-id",
      "failing",
      "--adapter",
      "exec",
      "--cmd",
      `node ${TRAINER} 1 120`,
      "--steps",
      "300",
      "--eval-every",
      "50",
      "--checkpoint-every",
      "0",
    ]).catch(() => undefined) // aborts at step 120 (exit 1), as meant
    await must(["run", long, "--store", store, "--run-id", "long", "--eval-every", "20000"])
    ui = await startUi(store, ["--results", SWEEP_RESULTS])
    browser = await launchChromium()
  },
  timeoutFor({ starts: 6, simSteps: LONG_STEPS + 6000, pySteps: 300 }),
)

afterAll(async () => {
  await browser?.close()
  if (ui && ui.child.exitCode === null) {
    ui.child.kill("SIGKILL")
    await exited(ui.child)
  }
  if (dir) rmSync(dir, { recursive: true, force: true })
})

describe("interleave ui in Chromium", () => {
  it("the runs list shows what `runs --json` says, and filters", async () => {
    const cli = JSON.parse((await must(["runs", "--store", store, "--json"])).stdout) as Array<{
      runId: string
      status: string
      stepsDone: number
      device: string | null
    }>
    const api = (await (await fetch(`${ui.url}/api/runs`)).json()) as typeof cli
    expect(api.map((r) => [r.runId, r.status, r.stepsDone, r.device])).toEqual(
      cli.map((r) => [r.runId, r.status, r.stepsDone, r.device]),
    )
    await visit("/", "runs", async (page) => {
      const rows = await page.$$eval("table.runs tbody tr", (trs) =>
        trs.map((tr) => Array.from(tr.querySelectorAll("td")).map((td) => td.textContent ?? "")),
      )
      expect(rows.map((r) => r[1]!.split("fork of")[0])).toEqual(cli.map((r) => r.runId))
      const failing = rows.find((r) => r[1] === "failing")!
      expect(failing[2]).toBe("aborted")
      expect(failing[4]).toBe("exec")
      expect(failing[5]).toBe("cpu (test)")
      expect(failing[6]).toBe("120 / 300")
      await page.selectOption('select[aria-label="status"]', "aborted")
      expect(await page.$$eval("table.runs tbody tr", (t) => t.length)).toBe(1)
      await page.selectOption('select[aria-label="status"]', "")
      await page.fill('input[type="search"]', "fork")
      expect(
        await page.$$eval("table.runs tbody tr", (t) => t.map((r) => r.getAttribute("data-run"))),
      ).toEqual([forkId])
      await page.fill('input[type="search"]', "")
    })
  })

  it("a run's page: every chart titled, with axis titles, units and legends; verify's result; the markers", async () => {
    await visit("/run/failing", "run-failing", async (page) => {
      const charts = await chartTexts(page)
      expect(charts.map((c) => c.id)).toEqual(["schedule", "loss", "lr", "time", "memory", "evals"])
      for (const c of charts) {
        expect(c.title).not.toBe("")
        expect(c.x).toMatch(/^step/)
        expect(c.y).not.toBe("")
        expect(c.legend.length).toBeGreaterThan(0)
        expect(c.canvas).toBeGreaterThan(0)
      }
      const by = Object.fromEntries(charts.map((c) => [c.id, c]))
      expect(by.loss!.y).toBe("loss: total (unitless)")
      expect(by.loss!.legend).toEqual(
        expect.arrayContaining(["visual steps (total)", "text steps (total)", "step failure"]),
      )
      expect(by.lr!.y).toBe("learning rate (unitless)")
      expect(by.lr!.legend).toEqual(expect.arrayContaining(["group backbone", "group head"]))
      expect(by.time!.y).toBe("step time (ms, measured)")
      expect(by.memory!.y).toBe("memory: in-step peak (GiB)")
      expect(by.memory!.legend).toEqual(
        expect.arrayContaining(["visual steps (in-step peak)", "text steps (in-step peak)"]),
      )
      expect(by.evals!.legend).toEqual(expect.arrayContaining(["visual prompts", "text prompts", "chance"]))
      expect(by.schedule!.legend).toEqual(expect.arrayContaining(["V: visual step", "T: text step"]))
      // Each loss term on its own: like with like.
      expect(await page.$$eval("#loss-term option", (o) => o.map((x) => x.getAttribute("value")))).toEqual(
        expect.arrayContaining(["total", "cls", "box", "align"]),
      )
      await page.selectOption("#loss-term", "box")
      await page.waitForFunction(
        () => document.querySelector('[data-chart="loss"] .y-title')?.textContent === "loss: box (unitless)",
      )
      await page.selectOption("#memory-figure", "allocatedBytes")
      await page.waitForFunction(() =>
        /allocated \(MiB\)/.test(document.querySelector('[data-chart="memory"] .y-title')?.textContent ?? ""),
      )
      // verify's verdict, the same as `verify --log failing --json`.
      await page.waitForSelector("#verify-result")
      const cli = await runCli(["verify", "--log", "failing", "--store", store, "--json"])
      const report = JSON.parse(cli.stdout) as { ok: boolean; violationTotal: number }
      const shown = await page.textContent("#verify-result")
      expect(shown).toMatch(report.ok ? /^PASS/ : /^FAIL/)
      const api = await (await fetch(`${ui.url}/api/run/failing/verify`)).json()
      expect(api).toEqual(report)
      expect(await page.textContent("#events")).toContain("nan-loss")
    })
    await visit("/run/short", "run-short", async (page) => {
      expect(await page.textContent("#steps")).toBe("step 3,000 of 3,000")
      await page.waitForSelector("#verify-result")
      expect(await page.textContent("#verify-result")).toMatch(/^PASS: all \d+ rules hold over 3,000 steps/)
      expect(await page.textContent("#events")).toContain("sim-gap-closed")
    })
  })

  it("compare: a run and its fork overlaid on one step axis, or on step time", async () => {
    await visit(`/compare?runs=short,${forkId}`, "compare", async (page) => {
      const charts = await chartTexts(page)
      const loss = charts.find((c) => c.id === "loss")!
      expect(loss.legend).toEqual(
        expect.arrayContaining([
          "run A (solid): visual steps",
          "run A (solid): text steps",
          "run B (dashed): visual steps",
          "run B (dashed): text steps",
          "fork point",
        ]),
      )
      expect(await page.textContent(".runs-legend")).toContain(`fork of short at 1,500`)
      const data = await (
        await fetch(`${ui.url}/api/series?runs=short,${forkId}&buckets=600&keys=loss:total:visual`)
      ).json()
      expect(data.series.short["loss:total:visual"].length).toBe(data.xs.length)
      expect(data.series[forkId]["loss:total:visual"].length).toBe(data.xs.length)
      await page.selectOption("#x-axis", "time")
      await page.waitForFunction(
        () =>
          document.querySelector('[data-chart="loss"] .x-title')?.textContent === "cumulative step time (s)",
      )
      await page.selectOption("#x-axis", "step")
      await page.waitForFunction(() =>
        document.querySelector('[data-chart="loss"] .x-title')?.textContent?.startsWith("step"),
      )
    })
  })

  it(
    "a 200,000-step run's page draws (times in draw-times.log)",
    async () => {
      for (const pass of [
        "first visit (the server reads the run from the store)",
        "second visit (in memory)",
      ]) {
        await visit(
          "/run/long",
          pass.startsWith("first") ? "run-long" : "run-long-again",
          async (page, width) => {
            const t = await page.evaluate(() => ({
              navigationToDrawnMs: Math.round(performance.now()),
              fetchAndDrawMs: Number(document.body.dataset.drawMs),
            }))
            appendFileSync(
              LOG,
              `run page of ${LONG_STEPS} steps at ${width} px, ${pass}: drawn ${t.navigationToDrawnMs} ms after navigation (series fetched and drawn in ${t.fetchAndDrawMs} ms)\n`,
            )
            const charts = await chartTexts(page)
            expect(charts.every((c) => c.canvas > 0)).toBe(true)
            expect(await page.textContent("#steps")).toBe("step 200,000 of 200,000")
          },
        )
      }
    },
    timeoutFor({ simSteps: 2 * LONG_STEPS }),
  )

  it("the sweep page shows the sweep report of a results file given at start-up, and no other path", async () => {
    const ok = await fetch(`${ui.url}/sweep?results=${encodeURIComponent(SWEEP_RESULTS)}`)
    expect(ok.status).toBe(200)
    expect(await ok.text()).toContain("<figure")
    // In the UI's own header, drawn by the report's definition: its charts' axis titles in the SVG.
    await visit(`/sweep?results=${encodeURIComponent(SWEEP_RESULTS)}`, "sweep", async (page) => {
      expect(await page.locator("header.top nav").textContent()).toContain("runs")
      const svgText = (
        await page.$$eval(".interleave-report svg text", (ts) => ts.map((t) => t.textContent))
      ).join("|")
      expect(svgText).toMatch(/steps?\s*\/\s*s|Samples\s*\/\s*s/i)
      expect(svgText).toMatch(/ratio/i)
    })
    const other = await fetch(`${ui.url}/sweep?results=${encodeURIComponent("/etc/passwd")}`)
    expect(other.status).toBe(404)
    // A page of another site reaching this port through DNS rebinding names its own host.
    const { port } = new URL(ui.url)
    const status = await new Promise<number | undefined>((resolve, reject) =>
      request(
        { host: "127.0.0.1", port, path: "/api/runs", headers: { Host: "attacker.example" } },
        (res) => {
          res.resume()
          resolve(res.statusCode)
        },
      )
        .on("error", reject)
        .end(),
    )
    expect(status).toBe(403)
  })

  /** Starts a slow exec run on `runStore`, opens its page on `base`, sees its step count grow. */
  const watchLive = async (runStore: string, base: string, name: string) => {
    const scen = writeJson(dir, `${name}.json`, scenarioOf(`${name}-live`, 30, 3000))
    const runId = `${name}-live`
    const child = spawn(
      process.execPath,
      [
        BIN,
        "run",
        scen,
        "--store",
        runStore,
        "--run-id",
        runId,
        "--adapter",
        "exec",
        "--cmd",
        `node ${TRAINER} 25`,
        "--checkpoint-every",
        "0",
        "--eval-every",
        "100",
      ],
      { cwd: ROOT, stdio: ["ignore", "ignore", "pipe"] },
    )
    let stderr = ""
    child.stderr!.on("data", (b) => {
      stderr += b
    })
    const gone = () => (child.exitCode !== null ? `the run exited (${child.exitCode}): ${stderr}` : undefined)
    try {
      await waitUntil(
        "the run has steps",
        async () => {
          const r = await fetch(`${base}/api/run/${runId}`)
          return r.ok && ((await r.json()) as { stepsRecorded: number }).stepsRecorded > 0 ? true : undefined
        },
        { stopped: gone, everyMs: 100 },
      )
      await visit(
        `/run/${runId}`,
        `live-${name}`,
        async (page) => {
          const steps = async () =>
            Number(
              ((await page.textContent("#steps")) ?? "")
                .replace(/[^\d ]/g, "")
                .trim()
                .split(/\s+/)[0],
            )
          const first = await steps()
          expect(await page.textContent("#live")).toContain("live")
          // Pushed by the server (no reload): the count grows, twice.
          const second = await waitUntil(
            "the step count grows",
            async () => ((await steps()) > first ? steps() : undefined),
            { stopped: gone },
          )
          await waitUntil("it grows again", async () => ((await steps()) > second ? true : undefined), {
            stopped: gone,
          })
          expect(await page.$$eval("#feed li", (l) => l.length)).toBeGreaterThan(0)
        },
        base,
      )
    } finally {
      child.kill("SIGTERM")
      await exited(child)
    }
    appendFileSync(LOG, `live ${name}: step count grew while the run ran\n`)
  }

  it(
    "live: a running run's page shows its step count grow (SQLite)",
    async () => {
      await watchLive(store, ui.url, "sqlite")
    },
    timeoutFor({ starts: 2, ms: 60_000 }),
  )

  const pg = testPostgresUrl()
  it.skipIf(pg === undefined)(
    `live: the same over a PostgreSQL store${pg === undefined ? ` (SKIPPED: ${postgresSkipReason()})` : ""}`,
    async () => {
      const url = await createDatabase(pg!, "ui_live")
      // The schema exists once a writer made it: a first short run.
      const scen = writeJson(dir, "pg-first.json", scenarioOf("pg-first", 90, 300))
      await must(["run", scen, "--store", url, "--run-id", "pg-first"])
      const pgUi = await startUi(url)
      try {
        await watchLive(url, pgUi.url, "postgres")
      } finally {
        pgUi.child.kill("SIGTERM")
        await exited(pgUi.child)
      }
    },
    timeoutFor({ starts: 4, ms: 60_000 }),
  )

  it("stops cleanly on SIGTERM (exit 143, nothing on stderr)", async () => {
    ui.child.kill("SIGTERM")
    expect(await exited(ui.child)).toBe(143)
    expect(ui.stderr()).toBe("")
  })
})

/**
 * The study report: report.md (tables, charts as SVG files beside it) and ONE self-contained
 * report.html (inline CSS, the same tables, the charts as inline SVG rendered at build time from
 * vega-lite specs; no script, no external URL). Every chart has axis titles with units and a
 * legend; every output of a sim study says that its metric is synthetic.
 */
import { join } from "node:path"
import { Effect } from "effect"
import type { TopLevelSpec } from "vega-lite"
import { ratioName } from "../bench/sweep.ts"
import { OutputError, writeTextFile } from "../common/index.ts"
import { PARETO_DEFINITION, type RunResult, type SettingResult, type Spread } from "./results.ts"
import type { LoadedStudy } from "./run.ts"

export interface StudyReportInput {
  readonly loaded: LoadedStudy
  readonly runs: ReadonlyArray<RunResult>
  readonly settings: ReadonlyArray<SettingResult>
  readonly createdAt: string
  readonly notes: ReadonlyArray<string>
}

/** Said wherever a sim study's metric appears. */
export const SYNTHETIC_WARNING =
  "SYNTHETIC: the sim's evaluations come from its synthetic quality model (adapters/sim/synthetic-quality.ts), a deterministic function of the schedule (steps of each modality, lr factor, warm-up), not a measurement of any model; its times and memory are the sim's cost model (simulated)."

const MiB = 1024 * 1024

export interface StudyChart {
  readonly id: string
  readonly title: string
  readonly note?: string | undefined
  readonly spec: TopLevelSpec
}

const baseConfig = {
  font: "sans-serif",
  background: "white",
  axis: { labelFontSize: 11, titleFontSize: 12 },
  legend: { labelFontSize: 11, titleFontSize: 12, labelLimit: 320, titleLimit: 420 },
} as const

const modalityColor = {
  field: "modality",
  type: "nominal",
  title: "Modality",
  scale: { domain: ["visual", "text"], range: ["#4c78a8", "#e45756"] },
} as const

/** The metric's name as axis titles say it. */
const metricWords = (input: StudyReportInput): string => {
  const m = input.runs.find((r) => r.metric !== undefined)?.metric ?? "metric"
  return input.runs.some((r) => r.simulated) ? `${m} (synthetic)` : m
}

const timeWords = (input: StudyReportInput): string =>
  input.runs.some((r) => r.simulated)
    ? "training time (s, cumulative step time; simulated)"
    : "training time (s, cumulative step time; measured)"

/** Mean over seeds of each setting's evaluations, at each evaluated step. */
const curveRows = (input: StudyReportInput) => {
  const rows: Array<{
    setting: string
    ratio: string
    variant: string
    step: number
    seconds: number
    modality: string
    value: number
  }> = []
  for (const s of input.settings) {
    const byStep = new Map<number, { n: number; seconds: number; visual: number; text: number }>()
    for (const r of s.runs)
      for (const e of r.evals) {
        const a = byStep.get(e.step) ?? { n: 0, seconds: 0, visual: 0, text: 0 }
        byStep.set(e.step, {
          n: a.n + 1,
          seconds: a.seconds + e.seconds,
          visual: a.visual + e.visual,
          text: a.text + e.text,
        })
      }
    for (const [step, a] of [...byStep].sort(([x], [y]) => x - y))
      for (const m of ["visual", "text"] as const)
        rows.push({
          setting: s.setting,
          ratio: ratioName(s.ratio),
          variant: variantOf(s),
          step,
          seconds: a.seconds / a.n,
          modality: m,
          value: a[m] / a.n,
        })
  }
  return rows
}

/** The setting's axes beyond ratio, in words: `lr 1 / 0.5, warm-up 40`. */
const variantOf = (s: SettingResult): string => `lr ${lrText(s)}, warm-up ${s.warmup}`

const ratioOrder = (input: StudyReportInput) => [...new Set(input.settings.map((s) => ratioName(s.ratio)))]
const variantOrder = (input: StudyReportInput) => [...new Set(input.settings.map(variantOf))]

export const studyCharts = (input: StudyReportInput): StudyChart[] => {
  const metric = metricWords(input)
  const curves = curveRows(input)
  const seeded = input.settings.some((s) => s.runs.length > 1)
  const mean = seeded ? " (mean over seeds)" : ""
  const variants = variantOrder(input).length
  const chance = input.runs.find((r) => r.chance !== undefined)?.chance
  const curve = (modality: "visual" | "text", x: "step" | "seconds"): StudyChart => ({
    ...(chance !== undefined
      ? { note: `Chance (a predictor that ignores the prompt): ${chance.toFixed(3)}.` }
      : {}),
    id: `${modality}-vs-${x === "step" ? "steps" : "time"}`,
    title: `${modality} ${metric} against ${x === "step" ? "steps" : "training time"}`,
    spec: {
      $schema: "https://vega.github.io/schema/vega-lite/v5.json",
      width: 520,
      height: 260,
      config: baseConfig,
      data: { values: curves.filter((r) => r.modality === modality) },
      mark: { type: "line", strokeWidth: 2 },
      encoding: {
        x: {
          field: x,
          type: "quantitative",
          title: x === "step" ? "step (steps trained, both modalities)" : timeWords(input),
        },
        y: { field: "value", type: "quantitative", title: `${modality} ${metric}${mean}` },
        color: { field: "ratio", type: "nominal", title: "Ratio (V:T)", sort: ratioOrder(input) },
        ...(variants > 1
          ? {
              strokeDash: {
                field: "variant",
                type: "nominal",
                title: "lr factor (visual / text), warm-up (steps)",
                sort: variantOrder(input),
              },
            }
          : {}),
        detail: { field: "setting", type: "nominal" },
      },
    } as TopLevelSpec,
  })
  const points = input.settings.flatMap((s) =>
    (["visual", "text"] as const).flatMap((m) => {
      const f = m === "visual" ? s.finalVisual : s.finalText
      if (!f) return []
      return [
        {
          setting: s.setting,
          modality: m,
          value: f.mean,
          lo: f.min,
          hi: f.max,
          throughput: s.samplesPerSec?.mean ?? null,
          swingMiB: s.memorySwingBytes === undefined ? null : s.memorySwingBytes.mean / MiB,
          pareto: s.pareto ? "on the Pareto set" : "dominated",
        },
      ]
    }),
  )
  const tradeoff = (x: "throughput" | "swingMiB"): StudyChart => ({
    id: x === "throughput" ? "final-vs-throughput" : "final-vs-memory-swing",
    title: `Final ${metric} against ${x === "throughput" ? "throughput" : "memory swing"}`,
    note: "Filled marks (labelled): the Pareto set (see its definition above); hollow marks: dominated settings. Each setting has a visual and a text mark at the same x.",
    spec: {
      $schema: "https://vega.github.io/schema/vega-lite/v5.json",
      width: 760,
      height: 320,
      config: { ...baseConfig, legend: { ...baseConfig.legend, orient: "bottom", direction: "horizontal" } },
      data: { values: points.filter((p) => p[x] !== null) },
      encoding: {
        x: {
          field: x,
          type: "quantitative",
          scale: { zero: false },
          title:
            x === "throughput"
              ? `throughput (samples/s of step time; ${input.runs.some((r) => r.simulated) ? "simulated" : "measured"})`
              : `memory swing (MiB; max - min of the per-step memory figure)`,
        },
        y: { field: "value", type: "quantitative", title: `final ${metric}${mean}` },
        color: modalityColor,
      },
      layer: [
        ...(seeded
          ? [
              {
                mark: { type: "rule" },
                encoding: { y: { field: "lo", type: "quantitative" }, y2: { field: "hi" } },
              },
            ]
          : []),
        {
          mark: { type: "point", size: 90, strokeWidth: 2 },
          encoding: {
            fill: {
              field: "pareto",
              type: "nominal",
              title: "Pareto",
              scale: { domain: ["on the Pareto set", "dominated"], range: ["#333333", "transparent"] },
              legend: { symbolType: "circle", symbolStrokeColor: "#333333", symbolStrokeWidth: 1.5 },
            },
          },
        },
        {
          // Labels on the Pareto set only: dominated settings are named in the Settings table.
          transform: [{ filter: "datum.pareto === 'on the Pareto set'" }],
          mark: { type: "text", align: "left", dx: 7, dy: -6, fontSize: 10 },
          encoding: { text: { field: "setting" }, color: { value: "#444" } },
        },
      ],
    } as TopLevelSpec,
  })
  const charts = [
    curve("visual", "step"),
    curve("text", "step"),
    curve("visual", "seconds"),
    curve("text", "seconds"),
    tradeoff("throughput"),
    tradeoff("swingMiB"),
  ]
  // One chart per axis beyond ratio with several values: the final metric against that axis.
  for (const axis of axesOf(input)) {
    const rows = input.settings.flatMap((s) =>
      (["visual", "text"] as const).flatMap((m) => {
        const f = m === "visual" ? s.finalVisual : s.finalText
        return f
          ? [{ group: groupWithout(s, axis.key), value: axis.valueOf(s), modality: m, final: f.mean }]
          : []
      }),
    )
    charts.push({
      id: `by-${axis.key}`,
      title: `Final ${metric} by ${axis.words}`,
      note: `Lines join settings that differ only in ${axis.words}; solid: visual, dashed: text.`,
      spec: {
        $schema: "https://vega.github.io/schema/vega-lite/v5.json",
        width: 520,
        height: 260,
        config: baseConfig,
        data: { values: rows },
        mark: { type: "line", strokeWidth: 2 },
        encoding: {
          x: { field: "value", type: "ordinal", title: axis.title, sort: axis.values },
          y: { field: "final", type: "quantitative", title: `final ${metric}${mean}` },
          color: { field: "group", type: "nominal", title: `Setting (without ${axis.words})` },
          strokeDash: {
            field: "modality",
            type: "nominal",
            title: "Modality",
            scale: {
              domain: ["visual", "text"],
              range: [
                [1, 0],
                [5, 3],
              ],
            },
          },
        },
      } as TopLevelSpec,
    })
  }
  return charts
}

interface Axis {
  readonly key: "lr" | "warmup"
  readonly words: string
  readonly title: string
  readonly values: string[]
  readonly valueOf: (s: SettingResult) => string
}

const lrText = (s: SettingResult) => `${s.lrFactor.visual} / ${s.lrFactor.text}`
const warmText = (s: SettingResult) => String(s.warmup)

/** The study's axes beyond ratio that have more than one value. */
const axesOf = (input: StudyReportInput): Axis[] => {
  const f = input.loaded.study.file
  const out: Axis[] = []
  if ((f.lrFactors?.length ?? 0) > 1)
    out.push({
      key: "lr",
      words: "lr factor",
      title: "lr factor per modality (visual / text; x the base lr of every group)",
      values: f.lrFactors!.map((l) => `${l.visual} / ${l.text}`),
      valueOf: lrText,
    })
  if ((f.warmupSteps?.length ?? 0) > 1)
    out.push({
      key: "warmup",
      words: "warm-up",
      title: `warm-up length (steps, ${f.warmupKind})`,
      values: f.warmupSteps!.map(String),
      valueOf: warmText,
    })
  return out
}

const groupWithout = (s: SettingResult, key: "lr" | "warmup"): string =>
  [
    ratioName(s.ratio),
    ...(key === "lr" ? [] : [`lr ${lrText(s)}`]),
    ...(key === "warmup" ? [] : [`warm-up ${s.warmup}`]),
  ].join(", ")

/** Renders a vega-lite spec to SVG in Node (vega's headless renderer, no canvas). */
export const renderSvg = async (spec: TopLevelSpec): Promise<string> => {
  const [{ parse, View }, { compile }] = await Promise.all([import("vega"), import("vega-lite")])
  const view = new View(parse(compile(spec).spec), { renderer: "none" })
  try {
    return (await view.toSVG()).replace(/\s+xmlns(:\w+)?="[^"]*"/g, "")
  } finally {
    view.finalize()
  }
}

// ---------------------------------------------------------------------------------------------
// Tables

interface Table {
  readonly id: string
  readonly headers: ReadonlyArray<string>
  readonly rows: ReadonlyArray<ReadonlyArray<string>>
}

const f3 = (x: number) => x.toFixed(3)
const spreadText = (s: Spread | undefined, fmt: (x: number) => string = f3): string =>
  s === undefined
    ? "—"
    : s.n > 1
      ? `${fmt(s.mean)} ± ${fmt(s.se)} (${fmt(s.min)}–${fmt(s.max)}, n=${s.n})`
      : fmt(s.mean)
const num = (x: number | undefined, digits = 1) => (x === undefined ? "—" : x.toFixed(digits))
const mib = (b: number) => (b / MiB).toFixed(1)

const settingsTable = (input: StudyReportInput): Table => ({
  id: "settings",
  headers: [
    "setting",
    "ratio",
    "lr factor v / t",
    "warm-up",
    "seeds",
    "final visual",
    "final text",
    "samples/s",
    "memory swing MiB",
    "Pareto",
  ],
  rows: input.settings.map((s) => [
    s.setting,
    ratioName(s.ratio),
    lrText(s),
    String(s.warmup),
    s.seeds.join(", "),
    spreadText(s.finalVisual),
    spreadText(s.finalText),
    spreadText(s.samplesPerSec, (x) => x.toFixed(1)),
    spreadText(s.memorySwingBytes, mib),
    s.pareto ? "yes" : `no (dominated by ${s.dominatedBy ?? "?"})`,
  ]),
})

const runsTable = (input: StudyReportInput): Table => ({
  id: "runs",
  headers: [
    "configuration",
    "run",
    "status",
    "steps",
    "samples",
    "step time s",
    "wall s",
    "final visual",
    "final text",
  ],
  rows: input.runs.map((r) => [
    r.label,
    r.runId,
    r.stopped ? `${r.status}: ${r.stopped}` : r.status,
    String(r.steps),
    String(r.samples),
    num(r.stepSeconds, 2),
    num(r.wallSeconds, 1),
    r.final ? f3(r.final.visual) : "—",
    r.final ? f3(r.final.text) : "—",
  ]),
})

/** Final metrics grouped by an axis: a row per other setting, a column per axis value. */
const axisTable = (input: StudyReportInput, axis: Axis): Table => {
  const groups = new Map<string, Map<string, SettingResult>>()
  for (const s of input.settings) {
    const g = groupWithout(s, axis.key)
    groups.set(g, (groups.get(g) ?? new Map()).set(axis.valueOf(s), s))
  }
  return {
    id: `by-${axis.key}`,
    headers: [
      `setting (without ${axis.words})`,
      ...axis.values.map((v) => `${axis.words} ${v}: visual / text`),
    ],
    rows: [...groups].map(([g, m]) => [
      g,
      ...axis.values.map((v) => {
        const s = m.get(v)
        return s
          ? `${s.finalVisual ? f3(s.finalVisual.mean) : "—"} / ${s.finalText ? f3(s.finalText.mean) : "—"}`
          : "—"
      }),
    ]),
  }
}

const definitions = (input: StudyReportInput): string[] => {
  const f = input.loaded.study.file
  const b = f.budget
  const budget =
    b.steps !== undefined
      ? `${b.steps} steps per configuration`
      : b.samples !== undefined
        ? `${b.samples} samples per configuration (each run stops at the first step that brings its samples to at least this many)`
        : `${b.seconds} s of step time per configuration (a run stops after the step whose cumulative step time reaches it, recorded as interrupted; its final metric is its last evaluation, at most ${f.evalEvery} steps earlier)`
  const out = [
    `Budget: ${budget}; evaluations every ${f.evalEvery} steps and after the last step. Target: ${input.loaded.configs[0]?.id.replace(/-[^-]*$/, "") ?? "?"} (${input.loaded.study.target.adapter}). Base scenario: ${f.base} (its optimizer, parameter groups and batch sizes; one phase at each ratio, no decay).`,
    "Final metric: the value of a run's last evaluation, per modality. Throughput: samples per second of step time (the sum of the adapter's step durations; evaluation and start-up are not counted). Memory swing: max - min of the run's per-step memory figure (the in-step peak where every step carries one) over all its steps. Training time in the charts: cumulative step time.",
    PARETO_DEFINITION,
  ]
  if (input.settings.some((s) => s.runs.length > 1))
    out.push(
      "Seed spread: mean ± standard error of the mean (sample s.d. / sqrt(n)) and (min–max) over the seeds of a setting; the Pareto set and charts use the means.",
    )
  if (input.runs.some((r) => r.simulated)) out.unshift(SYNTHETIC_WARNING)
  return [...out, ...input.notes]
}

// ---------------------------------------------------------------------------------------------
// Markdown and HTML

const mdTable = (t: Table): string =>
  [
    `| ${t.headers.join(" | ")} |`,
    `| ${t.headers.map(() => "---").join(" | ")} |`,
    ...t.rows.map((r) => `| ${r.map((c) => c.replace(/\|/g, "\\|")).join(" | ")} |`),
  ].join("\n")

const tablesOf = (input: StudyReportInput) => [
  { title: "Settings (Pareto set marked)", table: settingsTable(input) },
  ...axesOf(input).map((a) => ({ title: `Final metric by ${a.words}`, table: axisTable(input, a) })),
  { title: "Runs (`interleave show RUN`, `diff`, `replay`)", table: runsTable(input) },
]

export const renderStudyMarkdown = (input: StudyReportInput, charts: ReadonlyArray<StudyChart>): string => {
  const f = input.loaded.study.file
  const front = input.settings.filter((s) => s.pareto).map((s) => s.setting)
  const out = [
    `# Study ${f.name}`,
    "",
    f.description,
    "",
    `Created ${input.createdAt} from ${input.loaded.file}.`,
    "",
    ...definitions(input).flatMap((d) => [`- ${d}`]),
    "",
    `**Pareto set:** ${front.length > 0 ? front.join(", ") : "none (no setting has all four objectives)"}.`,
    "",
  ]
  for (const t of tablesOf(input)) out.push(`## ${t.title}`, "", mdTable(t.table), "")
  out.push("## Charts", "")
  for (const c of charts) {
    out.push(`### ${c.title}`, "")
    if (c.note) out.push(c.note, "")
    out.push(`![${c.title}](charts/${c.id}.svg)`, "")
  }
  return `${out.join("\n")}\n`
}

const esc = (s: string): string =>
  s
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;")
    .replace(/'/g, "&#39;")

const STYLE = `
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1200px; padding: 0 1rem; color: #222; }
table { border-collapse: collapse; margin: 0.5rem 0 1.5rem; font-size: 0.85rem; }
th, td { border: 1px solid #ccc; padding: 0.25rem 0.5rem; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
.synthetic { border: 2px solid #c00; background: #fff3f3; padding: 0.5rem 1rem; font-weight: 600; }
figure { margin: 1rem 0 2rem; }
figcaption { font-weight: 600; margin-bottom: 0.3rem; }
.note { color: #555; font-size: 0.9rem; }
.pareto { font-weight: 600; }
`

export const renderStudyHtml = (
  input: StudyReportInput,
  charts: ReadonlyArray<StudyChart>,
  svgs: ReadonlyArray<string>,
): string => {
  const f = input.loaded.study.file
  const front = input.settings.filter((s) => s.pareto).map((s) => s.setting)
  const defs = definitions(input)
  const synthetic = input.runs.some((r) => r.simulated)
  const table = (t: Table) =>
    `<table data-table="${esc(t.id)}"><thead><tr>${t.headers.map((h) => `<th>${esc(h)}</th>`).join("")}</tr></thead><tbody>\n${t.rows
      .map((r) => `<tr>${r.map((c) => `<td>${esc(c)}</td>`).join("")}</tr>`)
      .join("\n")}\n</tbody></table>`
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<title>Study ${esc(f.name)}</title><style>${STYLE}</style></head>
<body>
<h1>Study ${esc(f.name)}</h1>
<p>${esc(f.description)}</p>
<p class="note">Created ${esc(input.createdAt)} from ${esc(input.loaded.file)}.</p>
${synthetic ? `<p class="synthetic" data-synthetic>${esc(defs[0]!)}</p>` : ""}
<ul>${defs
    .slice(synthetic ? 1 : 0)
    .map((d) => `<li>${esc(d)}</li>`)
    .join("\n")}</ul>
<p class="pareto" data-pareto>Pareto set: ${esc(front.length > 0 ? front.join(", ") : "none")}</p>
${tablesOf(input)
  .map((t) => `<h2>${esc(t.title)}</h2>\n${table(t.table)}`)
  .join("\n")}
<h2>Charts</h2>
${charts
  .map(
    (c, i) =>
      `<figure data-chart="${esc(c.id)}"><figcaption>${esc(c.title)}</figcaption>${c.note ? `<p class="note">${esc(c.note)}</p>` : ""}${svgs[i]}</figure>`,
  )
  .join("\n")}
</body></html>
`
}

/** Renders the charts and writes report.md, charts/*.svg and report.html into `dir`. */
export const writeStudyReport = (dir: string, input: StudyReportInput) =>
  Effect.gen(function* () {
    const charts = studyCharts(input)
    const svgs = yield* Effect.tryPromise({
      try: () => Promise.all(charts.map((c) => renderSvg(c.spec))),
      catch: (cause) =>
        new OutputError({ message: `${dir}: could not render the study's charts: ${String(cause)}` }),
    })
    for (const [i, c] of charts.entries()) yield* writeTextFile(join(dir, "charts", `${c.id}.svg`), svgs[i]!)
    const markdown = join(dir, "report.md")
    const html = join(dir, "report.html")
    yield* writeTextFile(markdown, renderStudyMarkdown(input, charts))
    yield* writeTextFile(html, renderStudyHtml(input, charts, svgs))
    return { markdown, html }
  })

/**
 * The report's tables as data: one model rendered both as markdown and as HTML, so the two reports
 * always show the same rows and the same formatted numbers.
 */

import type { Statistics } from "../../common/index.ts"
import {
  formatBytes,
  formatFactor,
  formatMs,
  formatNumber,
  formatPercent,
  formatRatio,
  MISSING,
} from "../../common/index.ts"
import type { ConfigResult, SweepResults } from "../results.ts"

export interface Column {
  readonly header: string
  readonly align: "left" | "right"
}

export interface Table {
  readonly id: string
  readonly title: string
  readonly columns: ReadonlyArray<Column>
  readonly rows: ReadonlyArray<ReadonlyArray<string>>
}

const left = (header: string): Column => ({ header, align: "left" })
const right = (header: string): Column => ({ header, align: "right" })

/** "sim", "tfjs/webgpu", plus the preset when there is one. */
export const adapterLabel = (c: ConfigResult): string =>
  `${c.adapter}${c.backend ? `/${c.backend}` : ""}${c.preset ? ` (${c.preset})` : ""}`

export const throughputTable = (results: SweepResults): Table => ({
  id: "throughput",
  title: "Configurations and throughput",
  columns: [
    left("Config"),
    right("Ratio V:T"),
    right("Batch V/T"),
    left("Adapter"),
    left("Hardware"),
    right("Steps"),
    right("Failed"),
    right("Time"),
    right("Steps/s"),
    right("Samples/s"),
  ],
  rows: results.configs.map((c) => [
    c.label,
    formatRatio(c.ratio),
    `${c.batch.visual}/${c.batch.text}`,
    adapterLabel(c),
    c.hardware ?? MISSING,
    c.steps.toLocaleString("en-US"),
    c.aborted ? `${c.failedSteps} (aborted)` : String(c.failedSteps),
    formatMs(c.durationMs),
    formatNumber(c.throughput.stepsPerSec),
    formatNumber(c.throughput.samplesPerSec),
  ]),
})

const meanRme = (s: Statistics | undefined): string =>
  s ? `${formatNumber(s.mean)} ± ${Number.isFinite(s.rme) ? s.rme.toFixed(1) : "∞"}%` : MISSING

export const latencyTable = (results: SweepResults): Table => ({
  id: "latency",
  title: "Step latency (ms)",
  columns: [
    left("Config"),
    right("Visual n"),
    right("Visual mean ± rme"),
    right("Visual p50"),
    right("Visual p99"),
    right("Text n"),
    right("Text mean ± rme"),
    right("Text p50"),
    right("Text p99"),
  ],
  rows: results.configs.map((c) => {
    const { visual: v, text: t } = c.latency
    return [
      c.label,
      v ? String(v.samplesCount) : "0",
      meanRme(v),
      formatNumber(v?.p50),
      formatNumber(v?.p99),
      t ? String(t.samplesCount) : "0",
      meanRme(t),
      formatNumber(t?.p50),
      formatNumber(t?.p99),
    ]
  }),
})

export const memoryTable = (results: SweepResults): Table => ({
  id: "memory",
  title: "Memory fluctuation",
  columns: [
    left("Config"),
    right("Peak"),
    right("Trough"),
    right("Range"),
    right("CV"),
    right("Peak/median"),
    right("Swing mean"),
    right("Swing max"),
    right("Cycles"),
  ],
  rows: results.configs.map((c) => {
    const m = c.memory
    return [
      c.label,
      formatBytes(m?.peak),
      formatBytes(m?.trough),
      formatBytes(m?.range),
      formatPercent(m?.cv),
      formatFactor(m?.peakToMedian),
      formatBytes(m?.swing?.mean),
      formatBytes(m?.swing?.max),
      m?.swing ? String(m.swing.cycles) : "0",
    ]
  }),
})

export const reportTables = (results: SweepResults): ReadonlyArray<Table> => [
  throughputTable(results),
  latencyTable(results),
  memoryTable(results),
]

/** What each reported number means, shown under the tables of both reports. */
export const DEFINITIONS: ReadonlyArray<readonly [string, string]> = [
  [
    "Samples/s",
    "samples processed by the measured steps (batch size of each step's modality) / their total time.",
  ],
  [
    "Latency",
    "per-step time, per modality, failed steps excluded; statistics as tinybench 6 defines them (type-7 quantiles, sample variance, rme = 100 · sem · t(0.975, n-1) / mean).",
  ],
  ["Peak / Trough / Range", "max, min, and max - min of the memory sampled after each step."],
  ["CV", "population standard deviation / mean of the memory series."],
  ["Peak/median", "peak / median of the memory series."],
  [
    "Swing",
    "per cycle (a visual block and the text block after it, or each (phase, cycle) pair), the visual-step peak minus the text-step trough; mean and max over the cycles that have both modalities.",
  ],
]

/**
 * The report's tables as data: one model rendered as markdown, as HTML and (the summary) in the
 * terminal, so all of them show the same rows and the same formatted numbers. Every number says
 * what it is: time totals and per-step means with their unit, simulated or measured, and which
 * memory figure a memory number is. An aborted configuration reads "aborted", never 0.
 */

import {
  formatBytes,
  formatFactor,
  formatMs,
  formatNumber,
  formatPercent,
  groupThousands,
  MISSING,
  type Statistics,
} from "../../common/index.ts"
import type { Modality } from "../../schedule/index.ts"
import { figureLabel, figureTag } from "../memory-figure.ts"
import {
  type CrossRatioNote,
  crossRatioNotes,
  crossRatioText,
  isNoisy,
  NOISE_HINT,
  type NoiseWarning,
  noiseWarnings,
  noiseWarningText,
  rmeText,
} from "../noise.ts"
import type { ConfigResult, SweepResults } from "../results.ts"
import { abortShort, adapterLabel, isSimulated, ratioLabel, targetText, visualShare } from "../target.ts"

export interface Column {
  readonly header: string
  readonly align: "left" | "right"
}

export interface Table {
  readonly id: string
  readonly title: string
  /** A sentence under the title: what every row shares (a column left out because it would repeat). */
  readonly note?: string | undefined
  readonly columns: ReadonlyArray<Column>
  readonly rows: ReadonlyArray<ReadonlyArray<string>>
}

const left = (header: string): Column => ({ header, align: "left" })
const right = (header: string): Column => ({ header, align: "right" })

/** The cell an aborted configuration shows where a measured number would be. */
export const ABORTED = "aborted"
/** Appended to a latency cell whose number is noisy (see core/bench/noise.ts). */
export const NOISY_MARK = "!"

const clock = (c: ConfigResult): string => (isSimulated(c) ? "simulated" : "measured")

/** The memory figure of a configuration, in words (`in-step peak, simulated (sim cost model)`). */
export const memoryFigureText = (c: ConfigResult): string =>
  c.memory ? figureLabel(c.memoryFigure, c.steps) : c.aborted ? ABORTED : "not sampled"

/** The figure every configuration with memory shares (long or short words), or undefined when they differ. */
export const commonMemoryFigure = (
  results: SweepResults,
  form: "label" | "tag" = "label",
): string | undefined => {
  const withMemory = results.configs.filter((c) => c.memory)
  const labels = new Set(withMemory.map(memoryFigureText))
  if (labels.size !== 1) return undefined
  const c = withMemory[0]!
  return form === "label" ? memoryFigureText(c) : figureTag(c.memoryFigure, c.steps)
}

/** Whether a configuration aborted before measuring anything: its numbers read "aborted". */
const gone = (c: ConfigResult): boolean => c.aborted !== undefined && c.steps === 0

/** `45.0 ms ±0.3%`, with the noise mark when the modality is flagged. */
export const meanRme = (c: ConfigResult, m: Modality): string => {
  const s: Statistics | undefined = c.latency[m]
  if (!s) return c.aborted ? ABORTED : MISSING
  return `${formatMs(s.mean)} ${rmeText(s)}${isNoisy(c, m) ? NOISY_MARK : ""}`
}

const count = (c: ConfigResult, s: Statistics | undefined): string =>
  s ? String(s.samplesCount) : gone(c) ? MISSING : "0"

/** The workers' machines, once each: `gpu-box-1 (AMD EPYC 7763, 16 cores, linux-x64)`. */
export const workerMachines = (results: SweepResults): string[] => [
  ...new Set(
    results.configs.flatMap((c) =>
      c.worker ? [`${c.worker.host} (${c.worker.cpu}, ${c.worker.cores} cores, ${c.worker.platform})`] : [],
    ),
  ),
]

/** Whether the results come from sweep workers: a report across machines, with a Machine column. */
export const hasWorkers = (results: SweepResults): boolean => results.configs.some((c) => c.worker)

/** The worker that ran a configuration: `gpu-box-2`, `gpu-box-2 (attempt 2)`. */
export const machineText = (c: ConfigResult): string =>
  c.worker ? `${c.worker.host}${c.worker.attempt > 1 ? ` (attempt ${c.worker.attempt})` : ""}` : MISSING

const machineColumn = (results: SweepResults): Column[] => (hasWorkers(results) ? [left("Machine")] : [])
const machineCell = (results: SweepResults, c: ConfigResult): string[] =>
  hasWorkers(results) ? [machineText(c)] : []

/**
 * The configurations with their throughput. The Clock column (simulated or measured) is there only
 * when the sweep has both; otherwise the title says which, and the table is narrower.
 */
export const throughputTable = (results: SweepResults): Table => {
  const clocks = new Set(results.configs.map(clock))
  const one = clocks.size === 1 ? [...clocks][0] : undefined
  // Adapter and hardware repeat on every row of a one-target sweep: said once, above the table.
  const hardware = (c: ConfigResult) => c.hardware ?? MISSING
  const shared = (f: (c: ConfigResult) => string) => {
    const all = new Set(results.configs.map(f))
    return results.configs.length > 1 && all.size === 1 ? [...all][0] : undefined
  }
  const sameAdapter = shared(adapterLabel)
  const sameHardware = shared(hardware)
  const same = [
    ...(sameAdapter ? [`adapter ${sameAdapter}`] : []),
    ...(sameHardware ? [`hardware ${sameHardware}`] : []),
  ]
  return {
    id: "throughput",
    title: one ? `Configurations and throughput (${one})` : "Configurations and throughput",
    note: same.length > 0 ? `Every configuration: ${same.join("; ")}.` : undefined,
    columns: [
      left("Config"),
      ...machineColumn(results),
      right("Ratio V:T"),
      right("Batch V/T"),
      ...(sameAdapter ? [] : [left("Adapter")]),
      ...(sameHardware ? [] : [left("Hardware")]),
      left("Status"),
      right("Measured steps"),
      right("Failed steps"),
      ...(one ? [] : [left("Clock")]),
      right("Total step time"),
      right("Steps/s"),
      right("Samples/s"),
    ],
    rows: results.configs.map((c) => [
      c.label,
      ...machineCell(results, c),
      ratioLabel(c.ratio),
      `${c.batch.visual}/${c.batch.text}`,
      ...(sameAdapter ? [] : [adapterLabel(c)]),
      ...(sameHardware ? [] : [hardware(c)]),
      c.aborted ? `aborted (${abortShort(c.aborted)})` : "completed",
      groupThousands(c.steps),
      String(c.failedSteps),
      ...(one ? [] : [clock(c)]),
      gone(c) ? MISSING : formatMs(c.durationMs),
      gone(c) ? ABORTED : formatNumber(c.throughput.stepsPerSec),
      gone(c) ? ABORTED : formatNumber(c.throughput.samplesPerSec),
    ]),
  }
}

const pctl = (s: Statistics | undefined, q: "p50" | "p99"): string => (s ? formatMs(s[q]) : MISSING)

/** Whether the sweep's numbers are simulated, measured, or both, in a heading's words. */
const clockOfSweep = (results: SweepResults): string => {
  const sim = results.configs.filter(isSimulated).length
  return sim === 0
    ? "measured"
    : sim === results.configs.length
      ? "simulated"
      : "simulated for sim configs, measured for the others"
}

export const latencyTable = (results: SweepResults): Table => ({
  id: "latency",
  title: `Step latency per modality (ms per step, ${clockOfSweep(results)})`,
  columns: [
    left("Config"),
    ...machineColumn(results),
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
      ...machineCell(results, c),
      count(c, v),
      meanRme(c, "visual"),
      pctl(v, "p50"),
      pctl(v, "p99"),
      count(c, t),
      meanRme(c, "text"),
      pctl(t, "p50"),
      pctl(t, "p99"),
    ]
  }),
})

export const memoryTable = (results: SweepResults): Table => ({
  id: "memory",
  title: "Memory fluctuation (bytes of each config's memory figure)",
  columns: [
    left("Config"),
    ...machineColumn(results),
    left("Memory figure"),
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
    if (!m && c.aborted)
      return [c.label, ...machineCell(results, c), ABORTED, ...Array<string>(8).fill(MISSING)]
    return [
      c.label,
      ...machineCell(results, c),
      memoryFigureText(c),
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

/**
 * A report across machines: each ratio and batch size with the targets and machines it ran on on
 * adjacent rows, so the same configuration on different hardware reads side by side.
 */
export const acrossMachinesTable = (results: SweepResults): Table => {
  const rows = [...results.configs].sort(
    (a, b) =>
      visualShare(a.ratio) - visualShare(b.ratio) ||
      a.batch.visual - b.batch.visual ||
      a.batch.text - b.batch.text ||
      targetText(a).localeCompare(targetText(b)) ||
      machineText(a).localeCompare(machineText(b)),
  )
  return {
    id: "machines",
    title: "Same ratio and batch across hardware and machines",
    columns: [
      right("Ratio V:T"),
      right("Batch V/T"),
      left("Target"),
      left("Hardware"),
      left("Machine"),
      left("Clock"),
      right("Samples/s"),
      right("Visual mean ± rme"),
      right("Text mean ± rme"),
      right("Memory peak"),
      right("Swing max"),
    ],
    rows: rows.map((c) => [
      ratioLabel(c.ratio),
      `${c.batch.visual}/${c.batch.text}`,
      targetText(c),
      c.worker?.device ?? c.hardware ?? MISSING,
      c.worker ? `${machineText(c)}: ${c.worker.cpu}, ${c.worker.cores} cores` : MISSING,
      clock(c),
      gone(c) ? ABORTED : formatNumber(c.throughput.samplesPerSec),
      meanRme(c, "visual"),
      meanRme(c, "text"),
      formatBytes(c.memory?.peak),
      formatBytes(c.memory?.swing?.max),
    ]),
  }
}

export const reportTables = (results: SweepResults): ReadonlyArray<Table> => [
  throughputTable(results),
  latencyTable(results),
  memoryTable(results),
  ...(hasWorkers(results) ? [acrossMachinesTable(results)] : []),
]

/**
 * The terminal's summary: one row per configuration, the per-step means with rme and n, memory
 * with its figure (in the header when every configuration shares one, else in a column).
 */
export const summaryTable = (results: SweepResults): Table => {
  const common = commonMemoryFigure(results, "tag")
  const mem = (h: string) => (common ? `${h} (${common})` : h)
  // Time is simulated or measured: in the headers when all configs agree, else in a column.
  const clocks = new Set(results.configs.map(clock))
  const oneClock = clocks.size === 1 ? [...clocks][0] : undefined
  const timed = (h: string) => (oneClock ? `${h} (${oneClock})` : h)
  return {
    id: "summary",
    title: "Summary",
    columns: [
      left("config"),
      ...(oneClock ? [] : [left("clock")]),
      right(timed("steps/s")),
      right("samples/s"),
      right("visual mean ± rme"),
      right("n V"),
      right("text mean ± rme"),
      right("n T"),
      right(mem("mem peak")),
      right("mem swing max"),
      right("mem cv"),
      ...(common ? [] : [left("memory figure")]),
    ],
    rows: results.configs.map((c) => {
      const clockCell = oneClock ? [] : [clock(c)]
      if (gone(c))
        return [
          c.id,
          ...clockCell,
          `${ABORTED} (${abortShort(c.aborted!)})`,
          ...Array<string>(8).fill(MISSING),
          ...(common ? [] : [MISSING]),
        ]
      return [
        c.aborted ? `${c.id} (aborted)` : c.id,
        ...clockCell,
        formatNumber(c.throughput.stepsPerSec),
        formatNumber(c.throughput.samplesPerSec),
        meanRme(c, "visual"),
        count(c, c.latency.visual),
        meanRme(c, "text"),
        count(c, c.latency.text),
        formatBytes(c.memory?.peak),
        formatBytes(c.memory?.swing?.max),
        formatPercent(c.memory?.cv),
        ...(common ? [] : [figureTag(c.memoryFigure, c.steps)]),
      ]
    }),
  }
}

/** Everything a reader should be told after the tables: aborts, noisy numbers, cross-ratio notes. */
export interface Findings {
  readonly aborted: ReadonlyArray<{ readonly config: string; readonly reason: string }>
  readonly noise: ReadonlyArray<NoiseWarning>
  readonly crossRatio: ReadonlyArray<CrossRatioNote>
}

export const findings = (results: SweepResults): Findings => ({
  aborted: results.configs.flatMap((c) => (c.aborted ? [{ config: c.id, reason: c.aborted }] : [])),
  noise: noiseWarnings(results),
  crossRatio: crossRatioNotes(results),
})

/**
 * The findings as lines, each starting with what it is: `aborted: ID: REASON`,
 * `warning: ID ... latency ...`, `note: the visual step of ...`.
 */
export const findingLines = (
  results: SweepResults,
  f: Findings = findings(results),
): ReadonlyArray<string> => [
  ...f.aborted.map((a) => `aborted: ${a.config}: ${a.reason}`),
  ...f.noise.map((w) => `warning: ${noiseWarningText(results, w)}`),
  ...(f.noise.length > 0 ? [NOISE_HINT] : []),
  ...f.crossRatio.map((n) => `note: ${crossRatioText(n)}`),
]

/** What each reported number means, shown under the tables of both reports. */
export const DEFINITIONS: ReadonlyArray<readonly [string, string]> = [
  [
    "Clock",
    "measured: the adapter's wall time of each step on this machine; simulated: the sim adapter's cost model (no step ran on the named hardware).",
  ],
  ["Total step time", "sum of the measured steps' times (warm-up excluded)."],
  [
    "Samples/s",
    "samples processed by the measured steps (batch size of each step's modality) / their total step time; Steps/s likewise with steps.",
  ],
  [
    "Latency",
    "time per step, per modality, failed steps excluded; statistics as tinybench 6 defines them (type-7 quantiles, sample variance, rme = 100 · sem · t(0.975, n-1) / mean, the 95% margin of error of the mean in percent of it); n = steps measured.",
  ],
  [
    `Noise mark (${NOISY_MARK})`,
    "a mean that should not be trusted as it stands: n < 10, rme > 10%, max > 3× median, or more than 5% of the steps beyond median + max(3·MAD, 1% of the median); the warnings under the tables say which.",
  ],
  [
    "Memory figure",
    "which per-step memory the config's memory numbers are: in-step peak, allocated, reserved, device or RSS bytes, measured on every step (or on how many), or simulated by the sim cost model.",
  ],
  ["Peak / Trough / Range", "max, min, and max - min of the memory figure over the measured steps."],
  ["CV", "population standard deviation / mean of the memory figure's series."],
  ["Peak/median", "peak / median of the memory figure's series."],
  [
    "Swing",
    "per cycle (a visual block and the text block after it, or each (phase, cycle) pair), the visual-step peak minus the text-step trough; mean and max over the cycles that have both modalities.",
  ],
  [
    "Aborted",
    "the run stopped early (the reason is its RunAborted event's); its numbers are not shown as 0.",
  ],
]

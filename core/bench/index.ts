/** core/bench: sweeps, their recorded runs summarised into results, baselines and reports. */
export * from "./baseline.ts"
export * from "./collect.ts"
export * from "./cycle-profile.ts"
export * from "./memory-figure.ts"
export * from "./memory-fluctuation.ts"
export * from "./micro.ts"
export * from "./noise.ts"
export {
  type ChartId,
  type ChartSpec,
  chartSpecs,
  clockWords,
  renderChartSvg,
  type SweepClock,
  sweepClock,
} from "./report/charts.ts"
export { escapeHtml, REPORT_STYLE, renderHtml, renderReportBody } from "./report/html.ts"
export * from "./report/sparkline.ts"
export * from "./report/tables.ts"
export * from "./report/write.ts"
export * from "./results.ts"
export * from "./sweep.ts"
export * from "./sweep-key.ts"
export * from "./sweep-report.ts"
export * from "./sweep-run.ts"
export * from "./sweep-worker.ts"
export * from "./target.ts"

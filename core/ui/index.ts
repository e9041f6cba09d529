/**
 * core/ui: `interleave ui`, a local web app over the event store (read-only): the runs, a page
 * per run that follows it live, and runs overlaid. The server reads only the store, through
 * core/log and core/run's readers; it draws with uPlot, served from node_modules.
 */
export {
  RunData,
  type RunMarkers,
  type SeriesQuery,
  type SeriesResult,
  seriesOf,
  type XAxis,
} from "./run-data.ts"
export { startUi, type UiOptions, type UiServer } from "./server.ts"

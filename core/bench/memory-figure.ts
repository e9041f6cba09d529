/**
 * Which memory figure a configuration's memory numbers are (results.json's `memoryFigure`), and
 * the words every table, chart and note uses for it, so that no memory number goes unnamed.
 */
import { Schema } from "effect"
import { MEMORY_SOURCES, type MemorySource } from "../log/index.ts"

/** The figures a step's `MemorySample` may carry (core/log/events.ts), in the order results name them. */
export const MEMORY_FIGURES = [
  "peakBytes",
  "allocatedBytes",
  "reservedBytes",
  "deviceBytes",
  "rssBytes",
] as const satisfies ReadonlyArray<MemorySource>

export const MemoryFigure = Schema.Struct({
  /** The per-step figure the series, peak, trough, swing and cv of the configuration are made of. */
  source: Schema.Literal(...MEMORY_FIGURES),
  /** "simulated": the sim adapter's cost model computed it; "measured": a real backend reported it. */
  origin: Schema.Literal("measured", "simulated"),
  /**
   * Measured steps whose own sample carried the figure. Steps without one (a failed step has no
   * memory sample) repeat the previous step's value in the series.
   */
  sampledSteps: Schema.NonNegativeInt,
})
export type MemoryFigure = typeof MemoryFigure.Type

/** The figure's name alone: "in-step peak", "allocated", "reserved", "device", "RSS". */
export const figureName = (f: MemoryFigure): string => MEMORY_SOURCES[f.source].short

/**
 * Short, for a table cell or a chart label: "in-step peak, simulated (sim cost model)",
 * "in-step peak, every step", "allocated, 70 of 72 steps". `steps` is the configuration's
 * measured steps. Undefined figure: a version-1 results file, which did not record it.
 */
export const figureLabel = (f: MemoryFigure | undefined, steps: number): string => {
  if (!f) return "figure not recorded (results v1)"
  if (f.origin === "simulated") return `${figureName(f)}, simulated (sim cost model)`
  return `${figureName(f)}, ${f.sampledSteps >= steps ? "every step" : `${f.sampledSteps} of ${steps} steps`}`
}

/**
 * Shorter, for a column header: "in-step peak, simulated", "in-step peak, every step",
 * "allocated, 70/72 steps".
 */
export const figureTag = (f: MemoryFigure | undefined, steps: number): string => {
  if (!f) return "figure not recorded"
  if (f.origin === "simulated") return `${figureName(f)}, simulated`
  return `${figureName(f)}, ${f.sampledSteps >= steps ? "every step" : `${f.sampledSteps}/${steps} steps`}`
}

/** What a measured figure is, in the APIs that report it. */
const MEASURED_TEXT: Record<MemorySource, string> = {
  peakBytes: "peak bytes inside each step (tfjs: tf.profile peakBytes; torch: max_memory_allocated per step)",
  allocatedBytes:
    "live (allocated) bytes after each step (tfjs: tf.memory().numBytes; torch: memory_allocated)",
  reservedBytes:
    "bytes reserved by the allocator's pool after each step (torch: memory_reserved; webgpu: numBytesAllocatedInGPU)",
  deviceBytes: "device bytes in use after each step (webgpu: numBytesInGPU)",
  rssBytes: "process resident set size after each step",
}

/** What the sim's figures are: computed, not measured. */
const SIMULATED_TEXT: Record<MemorySource, string> = {
  peakBytes:
    "the sim cost model's in-step footprint (resident weights and optimizer state + gradients of the branches the step trains + activations of the step's batch), computed, not measured",
  allocatedBytes:
    "the sim cost model's live bytes after the step (weights and optimizer state, plus gradients waiting for the rest of an accumulation group), computed, not measured",
  reservedBytes: "the sim cost model's reserved bytes, computed, not measured",
  deviceBytes: "the sim cost model's device bytes, computed, not measured",
  rssBytes: "the sim cost model's process memory, computed, not measured",
}

/** One sentence for a report's notes: what the figure measures. */
export const figureDescription = (f: MemoryFigure): string =>
  f.origin === "simulated" ? SIMULATED_TEXT[f.source] : MEASURED_TEXT[f.source]

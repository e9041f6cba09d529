/** A configuration's recorded run, read back into the measured steps its statistics are built from. */
import { Effect, Stream } from "effect"
import type { MemorySample, MemorySource } from "../log/index.ts"
import { readRunEvents } from "../run/index.ts"
import type { MemoryFigure } from "./memory-figure.ts"
import type { MeasuredStep } from "./results.ts"

/** Which per-step memory figure a configuration's series uses (see `memoryMeasure`). */
export type MemoryMeasure = MemorySource

/**
 * The figure every measured step carries, by preference: the in-step peak (tfjs with profileEvery
 * 1, torch, the sim), then reserved (it holds the high-water mark a caching allocator keeps),
 * device, allocated, RSS. Live bytes after a tfjs step are only the weights and optimizer state (a
 * step frees its activations), so they barely move between visual and text steps: the peak is
 * what shows the fluctuation.
 */
const PREFERENCE: ReadonlyArray<MemorySource> = [
  "peakBytes",
  "reservedBytes",
  "deviceBytes",
  "allocatedBytes",
  "rssBytes",
]

export const memoryMeasure = (samples: ReadonlyArray<MemorySample>): MemoryMeasure | undefined =>
  samples.length === 0 ? undefined : PREFERENCE.find((k) => samples.every((m) => m[k] !== undefined))

export interface CollectedRun {
  readonly records: ReadonlyArray<MeasuredStep>
  /** Undefined when no figure was carried by every measured step. */
  readonly measure: MemoryMeasure | undefined
  /** The figure as results.json names it: which one, simulated or measured, on how many steps. */
  readonly figure: MemoryFigure | undefined
  readonly aborted: string | undefined
  readonly info: Readonly<Record<string, string>>
}

/** Reads a run's events back and keeps the steps after the warm-up. */
export const collectRun = (runId: string, warmupSteps: number) =>
  Effect.gen(function* () {
    const steps: Array<{ r: Omit<MeasuredStep, "memBytes">; m: MemorySample | undefined }> = []
    let aborted: string | undefined
    let info: Readonly<Record<string, string>> = {}
    let simulated = false
    yield* readRunEvents(runId).pipe(
      Stream.runForEach((e) =>
        Effect.sync(() => {
          if (e._tag === "RunStarted") {
            info = e.adapter.info
            simulated = e.adapter.kind === "sim"
          } else if (e._tag === "RunAborted") aborted = e.reason
          else if (e._tag === "StepCompleted" && e.step >= warmupSteps)
            steps.push({
              r: {
                step: e.step,
                modality: e.modality,
                durationMs: e.durationMs,
                loss: e.losses.total ?? Number.NaN,
                lossTerms: Object.fromEntries(Object.entries(e.losses).filter(([k]) => k !== "total")),
                samples: e.samples,
                phase: e.phase,
                cycle: e.cycle,
              },
              m: e.memory,
            })
          else if (e._tag === "StepFailed" && e.step >= warmupSteps)
            // Shown as a gap in the loss chart; no time, and no memory sample of its own.
            steps.push({
              r: {
                step: e.step,
                modality: e.modality,
                durationMs: 0,
                loss: Number.NaN,
                samples: 0,
                phase: e.phase,
              },
              m: undefined,
            })
        }),
      ),
    )
    const measure = memoryMeasure(steps.flatMap((s) => (s.m ? [s.m] : [])))
    const records: MeasuredStep[] = []
    let last: number | undefined
    let sampledSteps = 0
    for (const s of steps) {
      const own = s.m && measure ? s.m[measure] : undefined
      const bytes = own ?? last
      if (bytes === undefined) continue
      if (own !== undefined) sampledSteps++
      last = bytes
      records.push({ ...s.r, memBytes: bytes })
    }
    const figure: MemoryFigure | undefined = measure
      ? { source: measure, origin: simulated ? "simulated" : "measured", sampledSteps }
      : undefined
    return { records, measure, figure, aborted, info } satisfies CollectedRun
  })

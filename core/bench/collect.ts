/** A configuration's recorded run, read back into the measured steps its statistics are built from. */
import { Effect, Stream } from "effect"
import type { MemorySample, MemorySource } from "../log/index.ts"
import { readRunEvents } from "../run/index.ts"
import type { MeasuredStep } from "./results.ts"

/** Which per-step memory figure a configuration's series uses (see `memoryMeasure`). */
export type MemoryMeasure = MemorySource

export const MEASURE_TEXT: Record<MemoryMeasure, string> = {
  peakBytes:
    "peak bytes inside each step (tf.profile peakBytes; torch max_memory_allocated; the sim's step footprint)",
  allocatedBytes: "live (allocated) bytes after each step (tf.memory().numBytes; torch memory_allocated)",
  reservedBytes:
    "bytes reserved by the allocator's pool after each step (torch memory_reserved; webgpu numBytesAllocatedInGPU)",
  deviceBytes: "device bytes in use after each step (webgpu numBytesInGPU)",
  rssBytes: "process resident set size after each step",
}

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
  readonly aborted: string | undefined
  readonly info: Readonly<Record<string, string>>
}

/** Reads a run's events back and keeps the steps after the warm-up. */
export const collectRun = (runId: string, warmupSteps: number) =>
  Effect.gen(function* () {
    const steps: Array<{ r: Omit<MeasuredStep, "memBytes">; m: MemorySample | undefined }> = []
    let aborted: string | undefined
    let info: Readonly<Record<string, string>> = {}
    yield* readRunEvents(runId).pipe(
      Stream.runForEach((e) =>
        Effect.sync(() => {
          if (e._tag === "RunStarted") info = e.adapter.info
          else if (e._tag === "RunAborted") aborted = e.reason
          else if (e._tag === "StepCompleted" && e.step >= warmupSteps)
            steps.push({
              r: {
                step: e.step,
                modality: e.modality,
                durationMs: e.durationMs,
                loss: e.losses.total ?? Number.NaN,
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
    for (const s of steps) {
      const bytes = s.m && measure ? s.m[measure] : last
      if (bytes === undefined) continue
      last = bytes
      records.push({ ...s.r, memBytes: bytes })
    }
    return { records, measure, aborted, info } satisfies CollectedRun
  })

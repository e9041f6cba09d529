/**
 * Drives a tfjs session through a whole schedule, outside the engine, and summarises it: step time
 * per modality, memory peak and trough, evaluation curve. Used by the GPU benchmark and by the
 * learning measurement (`benchmarks/gpu-webgpu.ts`); the engine proper records events instead.
 */
import { Effect } from "effect"
import type { AdapterDescription, EvalResult, StepOutcome } from "../../core/run/index.ts"
import { type Modality, makePlanner, type ScheduleSpec } from "../../core/schedule/index.ts"
import { TfjsAdapter } from "./adapter.ts"

export interface TimingStats {
  readonly steps: number
  readonly medianMs: number
  readonly meanMs: number
  readonly p90Ms: number
}

export interface RunSummary {
  readonly scenario: string
  readonly description: AdapterDescription
  readonly steps: number
  readonly wallSeconds: number
  /** Per modality, over steps after the warm-up and not profiled. */
  readonly timing: Partial<Record<Modality, TimingStats>>
  /** The same, per phase (a long single-modality phase runs under different cache and JIT state). */
  readonly timingByPhase: Readonly<Record<string, Partial<Record<Modality, TimingStats>>>>
  readonly memory: {
    /** Highest tf.profile peak of the sampled steps, else the highest logical bytes. */
    readonly peakBytes: number
    /** Highest sampled in-step peak per modality: the visual/text memory swing. */
    readonly peakBytesByModality: Partial<Record<Modality, number>>
    readonly troughLogicalBytes: number
    readonly maxLogicalBytes: number
    readonly maxDeviceBytes?: number | undefined
    readonly minDeviceBytes?: number | undefined
    readonly maxDeviceAllocatedBytes?: number | undefined
    readonly maxRssBytes?: number | undefined
  }
  readonly finalLosses: Partial<Record<Modality, Readonly<Record<string, number>>>>
  readonly evals: ReadonlyArray<{ readonly step: number } & EvalResult>
}

const stats = (xs: number[]): TimingStats => {
  const s = [...xs].sort((a, b) => a - b)
  const at = (q: number) => s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? Number.NaN
  return {
    steps: s.length,
    medianMs: at(0.5),
    meanMs: s.reduce((a, b) => a + b, 0) / Math.max(1, s.length),
    p90Ms: at(0.9),
  }
}

const maxOf = (xs: ReadonlyArray<number | undefined>): number | undefined => {
  const v = xs.filter((x): x is number => x !== undefined)
  return v.length > 0 ? Math.max(...v) : undefined
}
const minOf = (xs: ReadonlyArray<number | undefined>): number | undefined => {
  const v = xs.filter((x): x is number => x !== undefined)
  return v.length > 0 ? Math.min(...v) : undefined
}

export interface RunOptions {
  readonly spec: ScheduleSpec
  readonly adapterOptions: Readonly<Record<string, unknown>>
  /** Evaluate every K steps and after the last; 0 = only after the last. */
  readonly evalEvery: number
  /** Steps left out of the timing statistics (shader compilation, allocator warm-up). */
  readonly warmupSteps: number
  readonly log?: (line: string) => void
}

export const runSchedule = (o: RunOptions) =>
  Effect.scoped(
    Effect.gen(function* () {
      const planner = makePlanner(o.spec)
      const session = yield* TfjsAdapter.open({ spec: o.spec, options: o.adapterOptions })
      const t0 = performance.now()
      const times: Record<Modality, number[]> = { visual: [], text: [] }
      const byPhase: Record<string, Record<Modality, number[]>> = {}
      const outcomes: StepOutcome[] = []
      const peaks: Partial<Record<Modality, number>> = {}
      const finalLosses: Partial<Record<Modality, Readonly<Record<string, number>>>> = {}
      const evals: Array<{ step: number } & EvalResult> = []
      for (let i = 0; i < planner.total; i++) {
        const plan = planner.at(i)
        const out = yield* session.step(plan)
        outcomes.push(out)
        if (out.memory.peakBytes !== undefined)
          peaks[plan.modality] = Math.max(peaks[plan.modality] ?? 0, out.memory.peakBytes)
        finalLosses[plan.modality] = out.losses
        if (i >= o.warmupSteps && out.memory.peakBytes === undefined) {
          times[plan.modality].push(out.durationMs)
          byPhase[plan.phase] ??= { visual: [], text: [] }
          byPhase[plan.phase]![plan.modality].push(out.durationMs)
        }
        const last = i === planner.total - 1
        if (session.evaluate && (last || (o.evalEvery > 0 && (i + 1) % o.evalEvery === 0))) {
          const e = yield* session.evaluate()
          evals.push({ step: i + 1, ...e })
          o.log?.(
            `step ${i + 1}: ${e.metric} visual ${e.values.visual.toFixed(3)} text ${e.values.text.toFixed(3)}`,
          )
        }
      }
      const mem = outcomes.map((x) => x.memory)
      const timing: Partial<Record<Modality, TimingStats>> = {}
      for (const m of ["visual", "text"] as const) if (times[m].length > 0) timing[m] = stats(times[m])
      const timingByPhase: Record<string, Partial<Record<Modality, TimingStats>>> = {}
      for (const [phase, t] of Object.entries(byPhase)) {
        const entry: Partial<Record<Modality, TimingStats>> = {}
        for (const m of ["visual", "text"] as const) if (t[m].length > 0) entry[m] = stats(t[m])
        timingByPhase[phase] = entry
      }
      const summary: RunSummary = {
        scenario: o.spec.name,
        description: session.description,
        steps: planner.total,
        wallSeconds: (performance.now() - t0) / 1000,
        timing,
        timingByPhase,
        memory: {
          peakBytes: maxOf(mem.map((m) => m.peakBytes)) ?? Math.max(...mem.map((m) => m.logicalBytes)),
          peakBytesByModality: peaks,
          troughLogicalBytes: Math.min(...mem.map((m) => m.logicalBytes)),
          maxLogicalBytes: Math.max(...mem.map((m) => m.logicalBytes)),
          maxDeviceBytes: maxOf(mem.map((m) => m.deviceBytes)),
          minDeviceBytes: minOf(mem.map((m) => m.deviceBytes)),
          maxDeviceAllocatedBytes: maxOf(mem.map((m) => m.deviceAllocatedBytes)),
          maxRssBytes: maxOf(mem.map((m) => m.rssBytes)),
        },
        finalLosses,
        evals,
      }
      return summary
    }),
  )

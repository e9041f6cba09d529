/**
 * verifyLog over an in-memory event stream: one pass over the log, whether the run completed,
 * was aborted or just stopped; a stopped run is held to its recorded length.
 */
import { Effect, Either, Stream } from "effect"
import { describe, expect, it } from "vitest"
import type { RunEvent } from "../../core/log/index.ts"
import { verifyLog } from "../../core/run/verify-log.ts"
import { planRange } from "../../core/schedule/plan.ts"
import { decodeSpec, encodeSpec } from "../../core/schedule/spec.ts"

const spec = Either.getOrThrow(
  decodeSpec({
    name: "log",
    phases: [
      { name: "text-only", steps: 5, ratio: { visual: 0, text: 1 } },
      { name: "joint", steps: 40, ratio: { visual: 8, text: 1 }, offset: 1 },
    ],
    batch: { visual: { size: 1, accumulation: 3 }, text: { size: 1 } },
    optimizer: { kind: "adamw", lr: 1e-4, groups: [{ name: "head" }] },
  }),
)

const started: RunEvent = {
  _tag: "RunStarted",
  runId: "r",
  spec: encodeSpec(spec),
  specHash: "0",
  source: "test",
  steps: 45,
  seed: 0,
  adapter: { kind: "sim", options: {}, info: {} },
  versions: {},
  startedAt: 0,
  engine: { evalEvery: 0, checkpointEvery: 0 },
}

const stepsUpTo = (n: number): RunEvent[] =>
  [...planRange(spec, 0, n)].map((p) => ({
    _tag: "StepCompleted",
    ...p,
    losses: { total: 1 },
    durationMs: 1,
    samples: 1,
    memory: {},
  }))

/** The events as a stream that counts how often it is read from the start. */
const counted = (events: ReadonlyArray<RunEvent>) => {
  const reads = { n: 0 }
  const iterable: Iterable<RunEvent> = {
    [Symbol.iterator]: () => {
      reads.n++
      return events[Symbol.iterator]()
    },
  }
  return { stream: Stream.fromIterable(iterable), reads }
}

const verify = (events: ReadonlyArray<RunEvent>) => {
  const { stream, reads } = counted(events)
  const report = Effect.runSync(verifyLog("test", stream, undefined))
  return { report, reads: reads.n }
}

describe("verifyLog", () => {
  it("reads a run that stopped at step 20 of 45 once, and holds it to the 20 steps it recorded", () => {
    // Step 19 is joint step 14, inside an open visual group: a stopped run may end there.
    const { report, reads } = verify([started, ...stepsUpTo(20)])
    expect(reads).toBe(1)
    expect(report).toMatchObject({ ok: true, ending: "incomplete", limit: 20, steps: 20, violationTotal: 0 })
    expect(report.rulesChecked).toContain("log-positions")
    expect(report.rulesChecked).toContain("lr-matches-spec")
  })

  it("a completed run is held to its planned length; an aborted one to what it recorded", () => {
    const all = stepsUpTo(45)
    const completed = verify([started, ...all, { _tag: "RunCompleted", steps: 45, completedAt: 1 }])
    expect(completed).toMatchObject({ reads: 1, report: { ok: true, ending: "completed", limit: 45 } })
    const short = verify([started, ...all.slice(0, 30), { _tag: "RunCompleted", steps: 30, completedAt: 1 }])
    expect(short.report.ok).toBe(false)
    expect(short.report.violations[0]).toMatchObject({ rule: "step-sequence", step: 30 })
    const aborted = verify([
      started,
      ...all.slice(0, 30),
      { _tag: "RunAborted", reason: "stop", abortedAt: 1 },
    ])
    expect(aborted).toMatchObject({ reads: 1, report: { ok: true, ending: "aborted", limit: 30 } })
  })

  // Step 11 is joint step 6: visual (text falls at joint steps 7, 16, ... with offset 1).
  it("a fault in a stopped run's prefix is still found, and log and schedule violations are counted together", () => {
    const steps = stepsUpTo(20).map((e) =>
      e._tag === "StepCompleted" && e.step === 11 ? { ...e, modality: "text" as const } : e,
    )
    const { report, reads } = verify([started, ...steps, started])
    expect(reads).toBe(1)
    expect(report.ok).toBe(false)
    expect(report.violationCounts).toMatchObject({ "log-run-started": 1, "modality-pattern": 1 })
    expect(report.violationTotal).toBe(
      Object.values(report.violationCounts).reduce((a: number, b) => a + (b ?? 0), 0),
    )
    expect(report.violations.find((v) => v.rule === "modality-pattern")).toMatchObject({ step: 11 })
  })
})

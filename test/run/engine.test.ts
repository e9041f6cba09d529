/**
 * The engine with the sim adapter and the in-memory store: the event-sourcing contract
 * (replay(log) = live state), resume = uninterrupted run, forks, replay divergence, conflicts.
 */
import { Effect, Either, Layer, Stream } from "effect"
import { describe, expect, it } from "vitest"
import { SimAdapterLive } from "../../adapters/sim/sim.ts"
import { type RunEvent, toEnvelope } from "../../core/log/events.ts"
import { evolveRunState, foldRunState, initialRunState } from "../../core/log/projections.ts"
import { forkRun, readRunEvents, replayRun, resumeRun, startRun } from "../../core/run/index.ts"
import { checkSchedule } from "../../core/schedule/invariants/index.ts"
import { makePlanner } from "../../core/schedule/plan.ts"
import { forkSpecWithRatio } from "../../core/schedule/ratio-fork.ts"
import { decodeSpec, type ScheduleSpec } from "../../core/schedule/spec.ts"
import { EventStore } from "../../core/store/event-store.ts"
import { makeMemoryEventStore } from "../../core/store/memory.ts"

const spec: ScheduleSpec = Either.getOrThrow(
  decodeSpec({
    name: "engine-test",
    seed: 5,
    phases: [
      { name: "text-only", steps: 20, ratio: { visual: 0, text: 1 } },
      { name: "joint", steps: 200, ratio: { visual: 8, text: 1 } },
    ],
    batch: { visual: { size: 4, accumulation: 2 }, text: { size: 4 } },
    optimizer: {
      kind: "adamw",
      lr: 1e-4,
      groups: [{ name: "backbone", lrMultiplier: 0.1 }, { name: "head" }],
    },
    lr: { warmup: { kind: "linear", steps: 30 }, decay: { kind: "cosine", floor: 0.1 } },
  }),
)

/** A fresh memory store + the sim adapter, shared by the effects of one test. */
const withWorld = <A, E>(
  f: Effect.Effect<A, E, EventStore | import("../../core/run/training-adapter.ts").TrainingAdapter>,
) =>
  Effect.runPromise(
    Effect.gen(function* () {
      const store = yield* makeMemoryEventStore()
      return yield* f.pipe(Effect.provide(Layer.merge(Layer.succeed(EventStore, store), SimAdapterLive)))
    }) as Effect.Effect<A, E>,
  )

const events = (runId: string) =>
  Stream.runCollect(readRunEvents(runId)).pipe(Effect.map((c) => Array.from(c)))

/** Events without wall-clock fields and run ids, for "equal event for event (timestamps aside)". */
/** A log as training wrote it: without wall clocks, ids, and the resume's own session event. */
const comparable = (es: ReadonlyArray<RunEvent>) =>
  es
    .filter((e) => e._tag !== "RunResumed")
    .map((e) => {
      const { startedAt, completedAt, abortedAt, runId, ...rest } = e as Record<string, unknown>
      void startedAt
      void completedAt
      void abortedAt
      void runId
      return rest
    })

const start = (
  runId: string,
  opts: Parameters<typeof startRun>[1] = {},
  s: ScheduleSpec = spec,
  steps?: number,
) => startRun({ runId, spec: s, source: "test", adapterOptions: {}, steps }, opts)

describe("engine + sim", () => {
  it("records every planned step once, in order, and the log verifies", async () => {
    const log = await withWorld(
      Effect.gen(function* () {
        const summary = yield* start("a")
        expect(summary.status).toBe("completed")
        return yield* events("a")
      }),
    )
    expect(log[0]!._tag).toBe("RunStarted")
    expect(log.at(-1)!._tag).toBe("RunCompleted")
    const steps = log.filter((e) => e._tag === "StepCompleted")
    expect(steps.map((e) => e.step)).toEqual(Array.from({ length: 220 }, (_, i) => i))
    expect(log.filter((e) => e._tag === "PhaseStarted").map((e) => e.phase)).toEqual(["text-only", "joint"])
    const report = checkSchedule(spec, steps)
    expect(report.violations).toEqual([])
    expect(report.visualSteps).toBe(8 * 22 + 2)
  })

  it("replaying the log through the fold gives the live state", async () => {
    await withWorld(
      Effect.gen(function* () {
        const live = yield* start("b")
        const replayed = foldRunState(yield* events("b"))
        expect(replayed).toEqual(live.state)
        expect(replayed.stepsCompleted).toBe(220)
        expect(replayed.updates.text).toBe(20 + 22)
      }),
    )
  })

  it("same spec and seed give an identical event stream; another seed changes the losses", async () => {
    await withWorld(
      Effect.gen(function* () {
        yield* start("c1")
        yield* start("c2")
        yield* start("c3", {}, { ...spec, seed: 6 })
        const [a, b, c] = [yield* events("c1"), yield* events("c2"), yield* events("c3")]
        expect(comparable(a)).toEqual(comparable(b))
        expect(comparable(a)).not.toEqual(comparable(c))
      }),
    )
  })

  it("a run stopped at any step and resumed equals an uninterrupted run, event for event", async () => {
    await withWorld(
      Effect.gen(function* () {
        yield* start("full")
        const full = comparable(yield* events("full"))
        for (const k of [1, 19, 20, 21, 97, 219]) {
          const id = `part-${k}`
          const first = yield* start(id, { stopAfter: k, flushEvery: 7 })
          expect(first.status).toBe("stopped")
          expect(first.state.lastStep).toBe(k - 1)
          const second = yield* resumeRun(id, { flushEvery: 5 })
          expect(second.status).toBe("completed")
          const log = yield* events(id)
          expect(comparable(log)).toEqual(full)
          // The resume itself is on record, where it happened, saying where it resumed.
          const resumed = log.filter((e) => e._tag === "RunResumed")
          expect(resumed).toHaveLength(1)
          expect(resumed[0]).toMatchObject({ fromStep: k })
          expect(log.findIndex((e) => e._tag === "RunResumed")).toBe(
            log.findIndex((e) => e._tag === "StepCompleted" && e.step === k - 1) + 1,
          )
        }
      }),
    )
  })

  it("resuming a completed run changes nothing; resuming an unknown run is an error", async () => {
    await withWorld(
      Effect.gen(function* () {
        yield* start("done")
        const before = yield* events("done")
        const again = yield* resumeRun("done")
        expect(again.status).toBe("completed")
        expect(yield* events("done")).toEqual(before)
        const missing = yield* Effect.either(resumeRun("nope"))
        expect(Either.isLeft(missing) && missing.left.message).toMatch(/no run "nope"/)
      }),
    )
  })

  it("replay reports no divergence on an honest log and names the step of a tampered one", async () => {
    await withWorld(
      Effect.gen(function* () {
        yield* start("r")
        const ok = yield* replayRun("r")
        expect(ok.steps).toBe(220)
        // Tamper: a copy of the log with one loss changed at step 150.
        const store = yield* EventStore
        const log = yield* events("r")
        const tampered = log.map((e) =>
          e._tag === "StepCompleted" && e.step === 150 ? { ...e, losses: { ...e.losses, total: 99 } } : e,
        )
        yield* store.append("r2", tampered.map(toEnvelope), 0)
        const bad = yield* Effect.either(replayRun("r2"))
        expect(Either.isLeft(bad)).toBe(true)
        if (Either.isLeft(bad)) {
          expect(bad.left._tag).toBe("Divergence")
          expect(bad.left.message).toMatch(/step 150/)
          expect(bad.left.message).toMatch(/losses\.total/)
        }
      }),
    )
  })

  it("a fork with a new ratio shares the parent's history and then follows its own schedule", async () => {
    await withWorld(
      Effect.gen(function* () {
        yield* start("parent")
        const forked = Either.getOrThrow(forkSpecWithRatio(spec, 110, { visual: 4, text: 1 }))
        const summary = yield* forkRun({
          parentId: "parent",
          atStep: 110,
          runId: "child",
          spec: forked,
          source: "fork",
        })
        expect(summary.status).toBe("completed")
        const parent = (yield* events("parent")).filter((e) => e._tag === "StepCompleted")
        const child = (yield* events("child")).filter((e) => e._tag === "StepCompleted")
        expect(child.slice(0, 110)).toEqual(parent.slice(0, 110))
        expect(child).toHaveLength(220)
        expect(
          child
            .slice(110, 120)
            .map((e) => e.modality[0])
            .join(""),
        ).toBe("vvvvtvvvvt")
        expect(checkSchedule(forked, child).violations).toEqual([])
        const started = (yield* events("child"))[0]!
        expect(started._tag === "RunStarted" && started.forkOf).toEqual({ runId: "parent", atStep: 110 })
        // A fork replays like any run.
        expect((yield* replayRun("child")).steps).toBe(220)
      }),
    )
  })

  it("a fork whose spec disagrees before --at is refused", async () => {
    await withWorld(
      Effect.gen(function* () {
        yield* start("p2")
        const other = {
          ...spec,
          phases: [spec.phases[0]!, { ...spec.phases[1]!, ratio: { visual: 2, text: 1 } }],
        }
        const r = yield* Effect.either(
          forkRun({ parentId: "p2", atStep: 50, runId: "c2", spec: other, source: "x" }),
        )
        expect(Either.isLeft(r) && r.left.message).toMatch(/plans step 22 differently/)
      }),
    )
  })

  it("two writers on one run: one gets VersionConflict and the log stays valid", async () => {
    await withWorld(
      Effect.gen(function* () {
        yield* start("w", { stopAfter: 50 })
        const results = yield* Effect.all(
          [
            Effect.either(resumeRun("w", { flushEvery: 16 })),
            Effect.either(resumeRun("w", { flushEvery: 16 })),
          ],
          {
            concurrency: 2,
          },
        )
        const failures = results.filter(Either.isLeft)
        expect(failures).toHaveLength(1)
        expect(failures[0]!.left._tag).toBe("VersionConflict")
        const log = yield* events("w")
        const steps = log.filter((e) => e._tag === "StepCompleted")
        expect(steps.map((e) => e.step)).toEqual(Array.from({ length: 220 }, (_, i) => i))
        expect(log.filter((e) => e._tag === "RunCompleted")).toHaveLength(1)
      }),
    )
  })

  it("--steps runs a prefix of the schedule that still verifies", async () => {
    await withWorld(
      Effect.gen(function* () {
        const s = yield* start("short", {}, spec, 100)
        expect(s.state.stepsCompleted).toBe(100)
        const steps = (yield* events("short")).filter((e) => e._tag === "StepCompleted")
        expect(checkSchedule(spec, steps, { limit: 100 }).violations).toEqual([])
      }),
    )
  })

  it("live state at every step equals the fold of the log up to that step", async () => {
    await withWorld(
      Effect.gen(function* () {
        const states: Array<ReturnType<typeof evolveRunState>> = []
        yield* start("p", { flushEvery: 1, onProgress: (p) => states.push(p.state) })
        const log = yield* events("p")
        let s = initialRunState
        const folded = new Map<number, typeof s>()
        for (const e of log) {
          s = evolveRunState(s, e)
          folded.set(s.stepsCompleted, s)
        }
        for (const live of states) expect(folded.get(live.stepsCompleted)?.lastStep).toBe(live.lastStep)
        expect(makePlanner(spec).total).toBe(220)
      }),
    )
  })
})

/**
 * The engine's life-cycle with a stateful fake adapter: checkpoints that follow the schedule, a
 * lost checkpoint redone on resume, checkpoint paths relative to the store, failures after a step
 * (evaluation, checkpoint folder), machinery failures that leave the run resumable, training
 * failures that abort it, replay of a tampered RunStarted, fork lengths and refusals, run ids.
 */
import * as fs from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect, Either, Layer, Stream } from "effect"
import { afterAll, describe, expect, it } from "vitest"
import { SimAdapterLive } from "../../adapters/sim/index.ts"
import { checkLog, type RunEvent, stepEventStep, toEnvelope } from "../../core/log/index.ts"
import {
  forkRun,
  isCheckpointStep,
  readRunEvents,
  replayRun,
  resumeRun,
  runIdFrom,
  runIdProblem,
  StepFailure,
  startRun,
  TrainingAdapter,
  type TrainingAdapterShape,
} from "../../core/run/index.ts"
import { decodeSpec, makePlanner, type ScheduleSpec } from "../../core/schedule/index.ts"
import { EventStore, type EventStoreShape, makeMemoryEventStore } from "../../core/store/index.ts"

const spec: ScheduleSpec = Either.getOrThrow(
  decodeSpec({
    name: "lifecycle",
    seed: 3,
    phases: [{ name: "joint", steps: 60, ratio: { visual: 4, text: 1 } }],
    batch: { visual: { size: 2, accumulation: 2 }, text: { size: 2 } },
    optimizer: { kind: "sgd", lr: 0.1, groups: [{ name: "all" }] },
  }),
)

interface FakeOptions {
  /** Step at which `step` fails, and how. */
  readonly failAt?: { readonly step: number; readonly kind: StepFailure["kind"]; readonly times?: number }
  /** Step after which `evaluate` fails. */
  readonly evalFailsAfter?: number
}

/**
 * A trainer whose state is the sum of the steps it has applied: losses depend on the state, so a
 * wrong restore or a skipped step shows in the log. Checkpoints are JSON files with the seed.
 */
const fakeAdapter = (o: FakeOptions = {}): TrainingAdapterShape => {
  let failures = 0
  return {
    kind: "fake",
    open: ({ spec: s }) =>
      Effect.sync(() => {
        let state = 0
        let lastStep = -1
        return {
          description: { kind: "fake", options: {}, info: {} },
          stateless: false,
          step: (plan) =>
            Effect.suspend(() => {
              if (o.failAt && plan.step === o.failAt.step && failures < (o.failAt.times ?? 1)) {
                failures++
                return Effect.fail(new StepFailure({ kind: o.failAt.kind, message: "planted failure" }))
              }
              state += plan.step + 1
              lastStep = plan.step
              return Effect.succeed({
                losses: { total: 1 / (1 + state) },
                durationMs: 1,
                samples: 2,
                memory: { allocatedBytes: 100 + state },
              })
            }),
          evaluate: () =>
            o.evalFailsAfter !== undefined && lastStep === o.evalFailsAfter
              ? Effect.fail(new StepFailure({ kind: "adapter-error", message: "evaluator crashed" }))
              : Effect.succeed({ metric: "m", values: { visual: state % 7, text: state % 5 } }),
          checkpoint: (file) =>
            Effect.try({
              try: () => fs.writeFileSync(file, JSON.stringify({ state, seed: s.seed })),
              catch: (e) => new StepFailure({ kind: "adapter-error", message: String(e) }),
            }),
          restore: (file) =>
            Effect.try({
              try: () => {
                const c = JSON.parse(fs.readFileSync(file, "utf8")) as { state: number; seed: number }
                if (c.seed !== s.seed) throw new Error(`seed ${c.seed} != ${s.seed}`)
                state = c.state
              },
              catch: (e) => new StepFailure({ kind: "adapter-error", message: String(e) }),
            }),
        }
      }),
  }
}

const dirs: string[] = []
const tempDir = () => {
  const d = fs.mkdtempSync(join(tmpdir(), "interleave-lifecycle-"))
  dirs.push(d)
  return d
}
afterAll(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true })
})

const run = <A, E>(
  body: Effect.Effect<A, E, EventStore | TrainingAdapter>,
  adapter: TrainingAdapterShape = fakeAdapter(),
  store?: EventStoreShape,
) =>
  Effect.runPromise(
    Effect.gen(function* () {
      const s = store ?? (yield* makeMemoryEventStore())
      return yield* body.pipe(
        Effect.provide(Layer.merge(Layer.succeed(EventStore, s), Layer.succeed(TrainingAdapter, adapter))),
      )
    }) as Effect.Effect<A, E>,
  )

const events = (runId: string) =>
  Stream.runCollect(readRunEvents(runId)).pipe(Effect.map((c) => Array.from(c)))

/** What training wrote: session events and wall clocks left out. */
const trained = (es: ReadonlyArray<RunEvent>) =>
  es
    .filter((e) => e._tag !== "RunResumed" && e._tag !== "RunInterrupted")
    .map((e) => {
      const { startedAt, completedAt, runId, writer, file, ...rest } = e as Record<string, unknown>
      void [startedAt, completedAt, runId, writer, file]
      return rest
    })

const logRules = (es: ReadonlyArray<RunEvent>) =>
  checkLog(es.map((e, position) => ({ position, type: e._tag, step: stepEventStep(e) })))

describe("checkpoints follow the schedule", () => {
  it("checkpoint after the first update step past each multiple of K, never at the last step", () => {
    const planner = makePlanner(spec)
    const at = (k: number) =>
      Array.from({ length: 60 }, (_, s) => s).filter((s) => isCheckpointStep(planner, s, k, 60))
    // 4:1 with visual accumulation 2: visual updates on positions 1 and 3, text on 4 (every 5).
    expect(at(10)).toEqual([9, 19, 29, 39, 49])
    expect(at(7)).toEqual([6, 13, 21, 28, 34, 41, 48, 56])
    for (const s of at(7)) expect(planner.at(s).update).toBe(true)
    expect(at(0)).toEqual([])
  })

  it("a checkpoint whose event was lost is redone on resume, and the log equals an uninterrupted run", async () => {
    const dir = tempDir()
    const opts = { checkpointEvery: 10, checkpointDir: join(dir, "ck"), flushEvery: 4 }
    await run(
      Effect.gen(function* () {
        yield* startRun({ runId: "ref", spec, source: "t", adapterOptions: {} }, opts)
        const ref = yield* events("ref")
        // A run killed right after writing the checkpoint file of step 29, before its event landed.
        yield* startRun({ runId: "cut", spec, source: "t", adapterOptions: {} }, { ...opts, stopAfter: 30 })
        const cut = yield* events("cut")
        expect(cut.at(-1)).toMatchObject({ _tag: "Checkpointed", step: 29 })
        const store = yield* EventStore
        yield* store.append("lost", cut.slice(0, -1).map(toEnvelope), 0)
        const resumed = yield* resumeRun("lost", opts)
        expect(resumed.status).toBe("completed")
        const log = yield* events("lost")
        expect(trained(log)).toEqual(trained(ref).map((e) => ({ ...e })))
        expect(log.filter((e) => e._tag === "Checkpointed").map((e) => (e as { step: number }).step)).toEqual(
          [9, 19, 29, 39, 49],
        )
        expect(logRules(log).violations).toEqual([])
      }),
    )
  })

  it("records checkpoint paths relative to the store's folder; a missing checkpoint names the run and the file", async () => {
    const dir = tempDir()
    const opts = { checkpointEvery: 10, checkpointDir: join(dir, "runs.db.checkpoints"), checkpointBase: dir }
    await run(
      Effect.gen(function* () {
        yield* startRun({ runId: "rel", spec, source: "t", adapterOptions: {} }, { ...opts, stopAfter: 25 })
        const ck = (yield* events("rel")).filter((e) => e._tag === "Checkpointed")
        expect(ck.map((e) => (e as { file: string }).file)).toEqual([
          join("runs.db.checkpoints", "rel", "step-9.ckpt"),
          join("runs.db.checkpoints", "rel", "step-19.ckpt"),
        ])
        fs.rmSync(join(dir, "runs.db.checkpoints", "rel", "step-19.ckpt"))
        const missing = yield* Effect.either(resumeRun("rel", opts))
        expect(Either.isLeft(missing) && missing.left.message).toMatch(
          /run "rel": its checkpoint after step 19 is missing \(.*step-19\.ckpt\)/,
        )
      }),
    )
  })
})

describe("failures", () => {
  it("an evaluation that fails after a completed step interrupts the run: no StepFailed for that step, resumable", async () => {
    await run(
      Effect.gen(function* () {
        const r = yield* startRun({ runId: "ev", spec, source: "t", adapterOptions: {} }, { evalEvery: 10 })
        expect(r.status).toBe("interrupted")
        const log = yield* events("ev")
        expect(log.filter((e) => e._tag === "StepFailed")).toEqual([])
        expect(log.at(-1)).toMatchObject({ _tag: "RunInterrupted", lastStep: 19 })
        expect((log.at(-1) as { reason: string }).reason).toMatch(/evaluation after step 19 failed/)
        expect(logRules(log).violations).toEqual([])
      }),
      fakeAdapter({ evalFailsAfter: 19 }),
    )
  })

  it("a checkpoint folder that cannot be created interrupts the run with the folder named, not an internal error", async () => {
    const dir = tempDir()
    fs.writeFileSync(join(dir, "ck"), "a file where the folder should be")
    await run(
      Effect.gen(function* () {
        const r = yield* startRun(
          { runId: "ck", spec, source: "t", adapterOptions: {} },
          { checkpointEvery: 10, checkpointDir: join(dir, "ck") },
        )
        expect(r.status).toBe("interrupted")
        const last = (yield* events("ck")).at(-1) as { _tag: string; reason: string }
        expect(last._tag).toBe("RunInterrupted")
        expect(last.reason).toMatch(/checkpoint after step 9 failed .*cannot create checkpoint folder .*ck/)
      }),
    )
  })

  it("a failure of the machinery (adapter-error) records StepFailed, leaves the run resumable, and resume retries that step", async () => {
    await run(
      Effect.gen(function* () {
        const first = yield* startRun({ runId: "ae", spec, source: "t", adapterOptions: {} }, {})
        expect(first.status).toBe("interrupted")
        const second = yield* resumeRun("ae")
        expect(second.status).toBe("completed")
        const log = yield* events("ae")
        const steps = log.filter((e) => e._tag === "StepCompleted").map((e) => (e as { step: number }).step)
        expect(steps).toEqual(Array.from({ length: 60 }, (_, i) => i))
        expect(log.filter((e) => e._tag === "StepFailed")).toHaveLength(1)
        expect(logRules(log).violations).toEqual([])
        // Replay leaves the session's events out and re-executes from step 0 on a fresh adapter.
        const replayed = yield* Effect.either(replayRun("ae"))
        expect(Either.isRight(replayed)).toBe(true)
      }),
      fakeAdapter({ failAt: { step: 33, kind: "adapter-error" } }),
    )
  })

  it("a training failure (nan-loss) aborts the run; it cannot be resumed", async () => {
    await run(
      Effect.gen(function* () {
        const r = yield* startRun({ runId: "nan", spec, source: "t", adapterOptions: {} }, {})
        expect(r.status).toBe("aborted")
        const log = yield* events("nan")
        expect(log.slice(-2).map((e) => e._tag)).toEqual(["StepFailed", "RunAborted"])
        const again = yield* Effect.either(resumeRun("nan"))
        expect(Either.isLeft(again) && again.left.message).toMatch(/was aborted/)
      }),
      fakeAdapter({ failAt: { step: 12, kind: "nan-loss", times: 99 } }),
    )
  })

  it("a retried step after a resume passes the log rules; the same step twice without a resume does not", () => {
    const items = (types: ReadonlyArray<[string, number | undefined]>) =>
      types.map(([type, step], position) => ({ position, type, step }))
    expect(
      checkLog(
        items([
          ["RunStarted", undefined],
          ["StepCompleted", 0],
          ["StepFailed", 1],
          ["RunInterrupted", undefined],
          ["RunResumed", undefined],
          ["StepCompleted", 1],
        ]),
      ).violations,
    ).toEqual([])
    expect(
      checkLog(
        items([
          ["RunStarted", undefined],
          ["StepCompleted", 0],
          ["StepFailed", 1],
          ["StepCompleted", 1],
        ]),
      ).violations.map((v) => v.rule),
    ).toEqual(["log-step-order"])
  })
})

describe("replay, forks and run ids", () => {
  const sim = (body: Effect.Effect<unknown, unknown, EventStore | TrainingAdapter>) =>
    Effect.runPromise(
      Effect.gen(function* () {
        const s = yield* makeMemoryEventStore()
        return yield* body.pipe(Effect.provide(Layer.merge(Layer.succeed(EventStore, s), SimAdapterLive)))
      }) as Effect.Effect<unknown, unknown>,
    )

  it("replay derives the RunStarted anew: a tampered seed in the log diverges at event 0", async () => {
    await sim(
      Effect.gen(function* () {
        yield* startRun({ runId: "orig", spec, source: "t", adapterOptions: {} }, {})
        const log = yield* events("orig")
        const started = log[0] as Extract<RunEvent, { _tag: "RunStarted" }>
        const store = yield* EventStore
        yield* store.append(
          "tampered",
          [toEnvelope({ ...started, seed: 99 }), ...log.slice(1).map(toEnvelope)],
          0,
        )
        const r = yield* Effect.either(replayRun("tampered"))
        expect(Either.isLeft(r) && r.left._tag).toBe("Divergence")
        expect(Either.isLeft(r) && r.left.message).toMatch(/event 0: RunStarted\.seed/)
        expect(Either.isRight(yield* Effect.either(replayRun("orig")))).toBe(true)
      }),
    )
  })

  it("a fork runs to the parent's planned length by default, and refuses another seed or batch", async () => {
    await sim(
      Effect.gen(function* () {
        yield* startRun({ runId: "p", spec, source: "t", adapterOptions: {}, steps: 45 }, {})
        const f = yield* forkRun({ parentId: "p", atStep: 20, runId: "p-fork", spec, source: "fork" }, {})
        expect(f.state.stepsCompleted).toBe(45)
        const g = yield* forkRun(
          { parentId: "p", atStep: 20, runId: "p-fork2", spec, source: "fork", steps: 30 },
          {},
        )
        expect(g.state.stepsCompleted).toBe(30)
        const seed = yield* Effect.either(
          forkRun({ parentId: "p", atStep: 20, runId: "s", spec: { ...spec, seed: 4 }, source: "fork" }, {}),
        )
        expect(Either.isLeft(seed) && seed.left.message).toMatch(/seed \(4\) differs from the parent's \(3\)/)
        const batch = yield* Effect.either(
          forkRun(
            {
              parentId: "p",
              atStep: 20,
              runId: "b",
              spec: { ...spec, batch: { ...spec.batch, visual: { size: 8, accumulation: 2 } } },
              source: "fork",
            },
            {},
          ),
        )
        expect(Either.isLeft(batch) && batch.left.message).toMatch(/visual batch \(8 x 2\) differs/)
      }),
    )
  })

  it("run ids are checked before anything is written, and made safe when generated from a name", async () => {
    for (const bad of [
      "",
      "../../../x",
      "a/b",
      "x".repeat(200),
      "a\nb",
      "a\u0000b",
      "a\u202eb",
      "--json",
      ".hidden",
    ])
      expect(runIdProblem(bad), JSON.stringify(bad)).toBeDefined()
    expect(runIdProblem("trex2-joint-8to1-20261201-120000-3fa2")).toBeUndefined()
    expect(runIdFrom("my run/../\u202eevil", "s1")).toBe("my-run-.-evil-s1")
    expect(runIdFrom("x".repeat(300), "20261201-120000-3fa2").length).toBeLessThanOrEqual(128)
    expect(runIdProblem(runIdFrom("../", "s"))).toBeUndefined()
    await sim(
      Effect.gen(function* () {
        const r = yield* Effect.either(
          startRun({ runId: "../../x", spec, source: "t", adapterOptions: {} }, {}),
        )
        expect(Either.isLeft(r) && r.left.message).toMatch(/--run-id: .* must start with a letter or digit/)
        const store = yield* EventStore
        expect(yield* store.streams()).toEqual([])
      }),
    )
  })
})

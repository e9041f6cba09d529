/**
 * The environment a run records (framework build, BLAS, threads, CPU) and what replay says about
 * it (issue 18, item 4b): a divergence names the entries that differ, or says the environment
 * matched; a log without one says it cannot tell. A toy stateless adapter whose environment and
 * results the test sets; the exec adapter's decoding of `ready.environment`.
 */
import { Effect, Either, Layer, Stream } from "effect"
import { describe, expect, it } from "vitest"
import { decodeReply, ProtocolViolation } from "../../adapters/exec/protocol.ts"
import { type RunEvent, toEnvelope } from "../../core/log/events.ts"
import {
  compareEnvironments,
  environmentText,
  readRunEvents,
  replayRun,
  startRun,
  TrainingAdapter,
  type TrainingSession,
} from "../../core/run/index.ts"
import { decodeSpec } from "../../core/schedule/spec.ts"
import { EventStore } from "../../core/store/event-store.ts"
import { makeMemoryEventStore } from "../../core/store/memory.ts"

const spec = Either.getOrThrow(
  decodeSpec({
    name: "env",
    phases: [{ name: "joint", steps: 30, ratio: { visual: 2, text: 1 } }],
    batch: { visual: { size: 2 }, text: { size: 2 } },
    optimizer: { kind: "sgd", lr: 0.1, groups: [{ name: "all" }] },
  }),
)

const REFERENCE = "/usr/lib/x86_64-linux-gnu/blas/libblas.so.3"
const OPENBLAS = "/usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3"

/** What the toy trainer's machine is like now: its BLAS, and a drift of its losses from step 12. */
const world = { blas: REFERENCE, drift: 0, environment: true }

const toy: TrainingSession = {
  get description() {
    return {
      kind: "toy",
      options: {},
      info: {},
      ...(world.environment ? { environment: { torch: "1.13.0", blas: world.blas, threads: "1" } } : {}),
    }
  },
  reproducible: "exact",
  stateless: true,
  step: (plan) =>
    Effect.succeed({
      losses: { total: 1 / (1 + plan.step) + (plan.step >= 12 ? world.drift : 0) },
      durationMs: 1,
      samples: 2,
      memory: {},
    }),
  checkpoint: () => Effect.void,
  restore: () => Effect.void,
}

const run = <A, E>(f: Effect.Effect<A, E, EventStore | TrainingAdapter>) =>
  Effect.runPromise(
    Effect.gen(function* () {
      const store = yield* makeMemoryEventStore()
      const adapter = Layer.succeed(TrainingAdapter, { kind: "toy", open: () => Effect.succeed(toy) })
      return yield* f.pipe(Effect.provide(Layer.merge(Layer.succeed(EventStore, store), adapter)))
    }) as Effect.Effect<A, E>,
  )

/** Replays `id` in the world `w`: the result, or the divergence. */
const replayIn = (id: string, w: Partial<typeof world>) =>
  Effect.suspend(() => {
    Object.assign(world, { blas: REFERENCE, drift: 0, environment: true }, w)
    return Effect.either(replayRun(id))
  })

describe("replay names the environment", () => {
  it("a divergence while the BLAS differs names it; one with the same environment says it matched", async () => {
    await run(
      Effect.gen(function* () {
        Object.assign(world, { blas: REFERENCE, drift: 0, environment: true })
        yield* startRun({ runId: "r", spec, source: "test", adapterOptions: {} })
        const started = (yield* Stream.runCollect(readRunEvents("r"))).pipe((c) => Array.from(c)[0]!)
        expect(started._tag === "RunStarted" && started.adapter.environment).toEqual({
          torch: "1.13.0",
          blas: REFERENCE,
          threads: "1",
        })

        const same = yield* replayIn("r", {})
        expect(Either.isRight(same) && same.right.environment).toEqual({
          status: "matched",
          keys: ["torch", "blas", "threads"],
        })

        // Another BLAS, and the losses move: the divergence says which entry differs.
        const other = yield* replayIn("r", { blas: OPENBLAS, drift: 1e-3 })
        expect(Either.isLeft(other)).toBe(true)
        if (Either.isLeft(other)) {
          const d = other.left as Extract<typeof other.left, { _tag: "Divergence" }>
          expect(d._tag).toBe("Divergence")
          expect(d.step).toBe(12)
          expect(d.environment).toEqual({
            status: "differs",
            differences: [{ key: "blas", recorded: REFERENCE, replayed: OPENBLAS }],
          })
          expect(d.message).toMatch(
            /diverges at step 12 .*losses\.total: recorded 0\.0769\d*, replayed 0\.0779\d*/,
          )
          expect(d.message).toContain(`; the environment differs: blas ${REFERENCE} → ${OPENBLAS}`)
        }

        // The same environment, and the losses move anyway: not the machine's doing.
        const drift = yield* replayIn("r", { drift: 1e-3 })
        expect(Either.isLeft(drift) && drift.left.message).toContain(
          "; the environment matched the recorded one (torch, blas, threads)",
        )

        // Another BLAS that happens not to change the results: the replay matches, and says so.
        const lucky = yield* replayIn("r", { blas: OPENBLAS })
        expect(Either.isRight(lucky) && lucky.right.environment.status).toBe("differs")
      }),
    )
  })

  it("a log recorded without an environment (older interleave): a divergence says it cannot tell", async () => {
    await run(
      Effect.gen(function* () {
        Object.assign(world, { blas: REFERENCE, drift: 0, environment: true })
        yield* startRun({ runId: "new", spec, source: "test", adapterOptions: {} })
        const log = Array.from(yield* Stream.runCollect(readRunEvents("new")))
        const old = log.map((e): RunEvent => {
          if (e._tag !== "RunStarted") return e
          const { environment, ...adapter } = e.adapter
          void environment
          return { ...e, runId: "old", adapter }
        })
        const store = yield* EventStore
        // As a v3 RunStarted (before environments), upcast on read.
        yield* store.append(
          "old",
          old.map((e) => (e._tag === "RunStarted" ? { ...toEnvelope(e), version: 3 } : toEnvelope(e))),
          0,
        )
        const r = yield* replayIn("old", { drift: 1e-3 })
        expect(Either.isLeft(r) && r.left.message).toContain(
          "; the log records no environment (written before interleave recorded one, or by an adapter that reports none), so whether it differs is unknown",
        )
      }),
    )
  })
})

describe("compareEnvironments", () => {
  it("lists differing, missing and extra entries in the recorded order", () => {
    const c = compareEnvironments(
      { torch: "1.13.0", blas: "a", threads: "1", cpu: "EPYC" },
      { cpu: "EPYC", torch: "2.1.0", threads: "1", gpu: "H100" },
    )
    expect(c).toEqual({
      status: "differs",
      differences: [
        { key: "torch", recorded: "1.13.0", replayed: "2.1.0" },
        { key: "blas", recorded: "a", replayed: undefined },
        { key: "gpu", recorded: undefined, replayed: "H100" },
      ],
    })
    expect(environmentText(c)).toBe(
      "the environment differs: torch 1.13.0 → 2.1.0; blas a → (not reported); gpu (not reported) → H100",
    )
    expect(compareEnvironments({ a: "1" }, undefined).status).toBe("unreported")
    expect(compareEnvironments({}, { a: "1" }).status).toBe("unrecorded")
  })
})

describe("ready.environment on the wire", () => {
  const ready = (extra: Record<string, unknown>) =>
    JSON.stringify({
      type: "ready",
      id: 0,
      protocol: 1,
      trainer: { name: "t", version: "1" },
      device: "cpu",
      framework: "torch 1.13.0",
      stateless: false,
      capabilities: { evaluate: false, checkpoint: true },
      ...extra,
    })

  it("is decoded when present (strings only) and absent when not sent", () => {
    expect(decodeReply(ready({ environment: { blas: REFERENCE, threads: "1" } }))).toMatchObject({
      environment: { blas: REFERENCE, threads: "1" },
    })
    expect(decodeReply(ready({}))).not.toHaveProperty("environment")
    const bad = decodeReply(ready({ environment: { threads: 1 } }))
    expect(bad).toBeInstanceOf(ProtocolViolation)
    expect((bad as ProtocolViolation).reason).toBe(
      "invalid ready reply: ready.environment.threads must be a string, got 1",
    )
  })
})

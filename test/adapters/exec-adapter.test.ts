/**
 * The exec adapter in-process, with small Python trainers (no torch): a sound SDK trainer runs,
 * checkpoints, evaluates and resumes; trainers that break the protocol (garbage on stdout, exit
 * mid-step, a hang past the step timeout, replies out of turn, NaN) end in a StepFailed that names
 * the reason and quotes their stderr, and their process is gone afterwards.
 */
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect, Either, Exit, Fiber, Layer, Scope, Stream } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import {
  decodeReply,
  ExecAdapter,
  ExecAdapterLive,
  joinCommandLine,
  openProtocolSession,
  ProtocolViolation,
  splitCommandLine,
} from "../../adapters/exec/index.ts"
import type { RunEvent, RunStarted, StepFailed } from "../../core/log/index.ts"
import { readRunEvents, replayRun, resumeRun, startRun } from "../../core/run/index.ts"
import { decodeSpec, makePlanner, type ScheduleSpec } from "../../core/schedule/index.ts"
import { EventStore, makeMemoryEventStore } from "../../core/store/index.ts"
import { alive, PY_TESTS, PYTHON, pythonTestsRun } from "../support/exec-support.ts"

// Forks run many files: the quiet trainer stderr is this file's alone.
const stderrWas = process.env.INTERLEAVE_TRAINER_STDERR
beforeAll(() => {
  process.env.INTERLEAVE_TRAINER_STDERR = "quiet"
})
afterAll(() => {
  if (stderrWas === undefined) delete process.env.INTERLEAVE_TRAINER_STDERR
  else process.env.INTERLEAVE_TRAINER_STDERR = stderrWas
})

const spec: ScheduleSpec = Either.getOrThrow(
  decodeSpec({
    name: "exec-test",
    seed: 5,
    phases: [
      { name: "text-only", steps: 3, ratio: { visual: 0, text: 1 } },
      { name: "joint", steps: 18, ratio: { visual: 2, text: 1 } },
    ],
    batch: { visual: { size: 4 }, text: { size: 2 } },
    optimizer: { kind: "adamw", lr: 1e-3, groups: [{ name: "backbone" }, { name: "head" }] },
  }),
)

const FAKE = join(PY_TESTS, "fake_trainer.py")
const RAW = join(PY_TESTS, "raw_trainer.py")
const raw = (...flags: string[]) => ({ cmd: `${PYTHON} ${RAW}`, args: flags })

let dir = ""
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "interleave-exec-"))
})
afterAll(() => rmSync(dir, { recursive: true, force: true }))

const world = <A, E>(
  f: Effect.Effect<A, E, EventStore | import("../../core/run/index.ts").TrainingAdapter>,
) =>
  Effect.runPromise(
    Effect.gen(function* () {
      const store = yield* makeMemoryEventStore()
      return yield* f.pipe(Effect.provide(Layer.merge(Layer.succeed(EventStore, store), ExecAdapterLive)))
    }) as Effect.Effect<A, E>,
  )

const events = (runId: string) =>
  Effect.map(Stream.runCollect(readRunEvents(runId)), (c) => Array.from(c) as RunEvent[])

/** Runs `options` on the spec; returns the log, the failure and the trainer's pid (now gone?). */
const runFailing = (options: Record<string, unknown>, runId: string) =>
  world(
    Effect.gen(function* () {
      const summary = yield* startRun(
        { runId, spec, source: "t", adapterOptions: options },
        { evalEvery: 0, checkpointEvery: 0 },
      )
      const log = yield* events(runId)
      const started = log[0] as RunStarted
      const failed = log.find((e): e is StepFailed => e._tag === "StepFailed")
      return { summary, log, failed, pid: Number(started.adapter.info.pid) }
    }),
  )

const runs = pythonTestsRun("exec adapter tests (they run small Python trainers)")

describe.runIf(runs)("exec adapter: a sound trainer (the SDK's fake trainer)", () => {
  it("runs, evaluates, checkpoints; stdout stays clean although the trainer prints; the child is reaped", async () => {
    const options = { cmd: `${PYTHON} ${FAKE}`, options: { noisy: true } }
    const { log, started } = await world(
      Effect.gen(function* () {
        const s = yield* startRun(
          { runId: "ok", spec, source: "t", adapterOptions: options },
          { evalEvery: 7, checkpointEvery: 5, checkpointDir: dir },
        )
        expect(s.status).toBe("completed")
        const log = yield* events("ok")
        return { log, started: log[0] as RunStarted }
      }),
    )
    const steps = log.filter((e) => e._tag === "StepCompleted")
    expect(steps.map((e) => e.step)).toEqual([...Array(21).keys()])
    const text = steps.find((e) => e.modality === "text")!
    expect(text.samples).toBe(3) // the trainer's own count (StepResult)
    expect(text.memory.peakBytes).toBe(123)
    expect(steps.find((e) => e.modality === "visual")!.samples).toBe(4)
    expect(log.filter((e) => e._tag === "EvalCompleted").map((e) => e.step)).toEqual([6, 13, 20])
    expect(log.filter((e) => e._tag === "Checkpointed").length).toBeGreaterThan(0)
    expect(started.adapter.kind).toBe("exec")
    expect(started.adapter.options).toEqual({ ...options, args: [], stepTimeout: 600, startTimeout: 600 })
    expect(started.adapter.info).toMatchObject({
      trainer: "fake",
      trainerVersion: "9",
      device: "fake",
      framework: "none",
      flavour: "42",
      protocol: "1",
    })
    expect(started.adapter.info.reproducible).toContain("1e-6")
    expect(alive(Number(started.adapter.info.pid))).toBe(false)
  })

  it("stop mid-run and resume: restore over the protocol, the same results as an uninterrupted run", async () => {
    const options = { cmd: `${PYTHON} ${FAKE}` }
    const engine = { evalEvery: 4, checkpointEvery: 5, checkpointDir: dir }
    const [full, cut] = await world(
      Effect.gen(function* () {
        yield* startRun({ runId: "full", spec, source: "t", adapterOptions: options }, engine)
        const first = yield* startRun(
          { runId: "cut", spec, source: "t", adapterOptions: options },
          { ...engine, stopAfter: 14 },
        )
        expect(first.status).toBe("stopped")
        expect((yield* resumeRun("cut", engine)).status).toBe("completed")
        // Replay re-runs the whole log against a fresh trainer and compares it event by event.
        const replay = yield* replayRun("cut", { checkpointDir: dir })
        expect(replay.tolerance.text).toContain("1e-6")
        const pick = (log: RunEvent[]) =>
          log.flatMap((e) =>
            e._tag === "StepCompleted"
              ? [[e.step, e.losses]]
              : e._tag === "EvalCompleted"
                ? [[e.step, e.values]]
                : [],
          )
        return [pick(yield* events("full")), pick(yield* events("cut"))]
      }),
    )
    expect(cut).toEqual(full)
  })

  it("a NaN loss is a nan-loss StepFailed; the run aborts cleanly and the trainer is closed", async () => {
    const { summary, failed, pid, log } = await runFailing(
      { cmd: `${PYTHON} ${FAKE}`, options: { nanAt: 4 } },
      "nan",
    )
    expect(summary.status).toBe("aborted")
    expect(failed).toMatchObject({ step: 4, kind: "nan-loss" })
    expect(failed!.message).toContain("total=nan")
    expect(log.at(-1)!._tag).toBe("RunAborted")
    expect(alive(pid)).toBe(false)
  })

  it("a trainer exception is an adapter-error quoting the traceback", async () => {
    const { failed, pid } = await runFailing({ cmd: `${PYTHON} ${FAKE}`, options: { raiseAt: 2 } }, "raise")
    expect(failed).toMatchObject({ step: 2, kind: "adapter-error" })
    expect(failed!.message).toContain("trainer error in step 2: ValueError: broken batch at step 2")
    expect(failed!.message).toContain("trainer stderr, last")
    expect(failed!.message).toContain("Traceback (most recent call last)")
    expect(alive(pid)).toBe(false)
  })
})

describe.runIf(runs)("exec adapter: trainers that break the protocol", () => {
  it("garbage on stdout: adapter-error naming the line, with the stderr tail; the child is killed", async () => {
    const { summary, failed, pid, log } = await runFailing(
      raw("--garbage-at", "5", "--stderr-lines", "2"),
      "garbage",
    )
    // The trainer broke, not the schedule: the run stays resumable.
    expect(summary.status).toBe("interrupted")
    expect(log.at(-1)!._tag).toBe("RunInterrupted")
    expect(failed).toMatchObject({ step: 5, kind: "adapter-error" })
    expect(failed!.message).toContain(
      'not a protocol reply (not JSON): "epoch 0 iter 5: loss=0.5" (in reply to step 5)',
    )
    expect(failed!.message).toContain("  | stderr line 12")
    expect(log.filter((e) => e._tag === "StepCompleted")).toHaveLength(5)
    expect(alive(pid)).toBe(false)
  })

  it("exit mid-step: adapter-error with the exit code and the traceback", async () => {
    const { failed, pid } = await runFailing(raw("--exit-at", "3"), "exit")
    expect(failed).toMatchObject({ step: 3, kind: "adapter-error" })
    expect(failed!.message).toMatch(/^the trainer exited with code 3 \(step 3\)/)
    expect(failed!.message).toContain("  | RuntimeError: the trainer fell over at step 3")
    expect(alive(pid)).toBe(false)
  })

  it("after a trainer crash, resume continues the run with a fresh child: every step once", async () => {
    // The trainer exits in step 3 the first time only (--once), as a crashed process would not repeat.
    const options = raw("--exit-at", "3", "--once", join(dir, "crashed-once"), "--stateless")
    const steps = await world(
      Effect.gen(function* () {
        const first = yield* startRun({ runId: "crash", spec, source: "t", adapterOptions: options }, {})
        expect(first.status).toBe("interrupted")
        expect((yield* resumeRun("crash", {})).status).toBe("completed")
        const log = yield* events("crash")
        expect(log.filter((e) => e._tag === "StepFailed")).toHaveLength(1)
        return log.flatMap((e) => (e._tag === "StepCompleted" ? [e.step] : []))
      }),
    )
    expect(steps).toEqual([...Array(21).keys()])
  })

  it("a step past the step timeout: adapter-error, the hung child is killed", async () => {
    // That the step timeout, not the trainer, ended the hang is in the message; how soon is not
    // checked (a loaded machine is slow), and a timeout that never fired fails the test's own.
    const { failed, pid } = await runFailing({ ...raw("--hang-at", "2"), stepTimeout: 0.3 }, "hang")
    expect(failed).toMatchObject({ step: 2, kind: "adapter-error" })
    expect(failed!.message).toContain(
      "step 2 took longer than the step timeout (0.3 s; --step-timeout SECONDS sets it)",
    )
    expect(failed!.message).toContain("  | hanging at step 2")
    expect(alive(pid)).toBe(false)
  })

  it("a trainer that ignores SIGTERM is killed with SIGKILL after the grace period", async () => {
    const exit = await Effect.runPromise(
      Effect.gen(function* () {
        const scope = yield* Scope.make()
        const session = yield* Scope.extend(
          openProtocolSession(
            {
              kind: "exec",
              argv: [PYTHON, RAW, "--ignore-term", "--hang-at", "0"],
              helloOptions: {},
              descriptionOptions: {},
              stepTimeoutMs: 200,
              startTimeoutMs: 30_000,
              graceMs: 300,
            },
            spec,
          ),
          scope,
        )
        const r = yield* Effect.either(session.step(makePlanner(spec).at(0)))
        expect(Either.isLeft(r) && r.left.message).toContain("took longer than the step timeout")
        const t0 = performance.now()
        yield* Scope.close(scope, Exit.void)
        return { pid: session.pid!, ms: performance.now() - t0 }
      }),
    )
    expect(alive(exit.pid)).toBe(false)
    // It had its grace period before SIGKILL (a lower bound: load only makes it longer).
    expect(exit.ms).toBeGreaterThanOrEqual(250)
  })

  it("an interruption mid-step (Ctrl-C) ends the child", async () => {
    const pid = await Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const session = yield* ExecAdapter.open({ spec, options: raw("--hang-at", "0") })
          const fiber = yield* Effect.fork(session.step(makePlanner(spec).at(0)))
          yield* Effect.sleep("200 millis")
          yield* Fiber.interrupt(fiber)
          return (session as unknown as { pid: number }).pid
        }),
      ),
    )
    expect(alive(pid)).toBe(false)
  })

  it("replies out of turn: a wrong id, a wrong type, an extra line", async () => {
    const id = await runFailing(raw("--wrong-id-at", "1"), "wrong-id")
    expect(id.failed!.message).toMatch(/^out-of-turn reply: an outcome with id 3 to step 1 \(request id 2\)/)
    const type = await runFailing(raw("--wrong-type-at", "1"), "wrong-type")
    expect(type.failed!.message).toMatch(/^out-of-turn reply: a checkpointed reply to step 1/)
    const extra = await runFailing(raw("--extra-line-at", "1"), "extra")
    expect(extra.failed).toMatchObject({ step: 2, kind: "adapter-error" })
    // The extra line comes either before the next request (a stray line) or after (its answer).
    expect(extra.failed!.message).toMatch(
      /^(the trainer wrote on stdout while no request was pending|out-of-turn reply: an outcome with id 2 to step 2)/,
    )
    const kind = await runFailing(raw("--bad-kind-at", "2"), "bad-kind")
    expect(kind.failed).toMatchObject({ step: 2, kind: "adapter-error" })
    expect(kind.failed!.message).toMatch(
      /^invalid failure reply to step 2: kind "toString" is not one of nan-loss/,
    )
    for (const r of [id, type, extra, kind]) expect(alive(r.pid)).toBe(false)
  })

  it("a bare NaN on the wire is read as the nan-loss it means", async () => {
    const { failed } = await runFailing(raw("--bare-nan-at", "1"), "bare-nan")
    expect(failed).toMatchObject({ step: 1, kind: "nan-loss" })
    expect(failed!.message).toContain("total=NaN")
  })

  it("bounds the quoted stderr to its last 20 lines", async () => {
    const { failed } = await runFailing(raw("--exit-at", "4", "--stderr-lines", "30"), "chatty")
    const quoted = failed!.message.split("\n").filter((l) => l.startsWith("  | "))
    expect(quoted).toHaveLength(20)
    expect(quoted.at(-1)).toBe("  | RuntimeError: the trainer fell over at step 4")
  })
})

describe.runIf(runs)("exec adapter: a trainer that cannot start is bad input, in one line", () => {
  const openFails = (options: Record<string, unknown>) =>
    Effect.runPromise(Effect.scoped(Effect.flip(ExecAdapter.open({ spec, options }))))

  it("names the reason", async () => {
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [raw("--protocol", "2"), /it speaks step protocol version 2, interleave speaks version 1/],
      [
        raw("--refuse-hello"),
        /it refused hello: trainer-error: RuntimeError: device cuda was asked for, but torch sees no CUDA device/,
      ],
      [
        raw("--print-before-ready"),
        /not a protocol reply \(not JSON\): "Loading model weights... done" \(in reply to hello\)/,
      ],
      [
        raw("--exit-at", "0", "--nonsense"),
        /did not start: the trainer exited with code 2; its last stderr line: .*unrecognized arguments: --nonsense/,
      ],
      [
        { cmd: "/nonexistent/trainer --x" },
        /cannot start "\/nonexistent\/trainer": no such program \(ENOENT\)/,
      ],
      [{ cmd: "python3 train.py | tee log" }, /exec adapter: cmd: "\|" is shell syntax/],
      [
        { cmd: `${PYTHON} ${FAKE}`, stepTimeout: 0 },
        /stepTimeout \(--step-timeout\) must be a number of seconds > 0, got 0/,
      ],
      [{ cmd: `${PYTHON} ${FAKE}`, stepTimout: 3 }, /unknown option stepTimout/],
      [{}, /needs cmd/],
    ]
    for (const [options, want] of cases) {
      const e = await openFails(options)
      expect(e._tag).toBe("AdapterUnavailable")
      expect(e.message).toMatch(want)
      expect(e.message).not.toContain("\n")
    }
  })
})

describe("command lines and replies (pure)", () => {
  it("splits like a shell's simple command, without one", () => {
    expect(splitCommandLine(`python3 -u 'my trainer.py' --name "a \\"b\\"" c\\ d`)).toEqual(
      Either.right(["python3", "-u", "my trainer.py", "--name", 'a "b"', "c d"]),
    )
    expect(splitCommandLine("sh -c 'exec python3 t.py && echo $HOME'")).toEqual(
      Either.right(["sh", "-c", "exec python3 t.py && echo $HOME"]),
    )
    expect(splitCommandLine("a b#c")).toEqual(Either.right(["a", "b#c"]))
    for (const [line, why] of [
      ["", "empty"],
      ["python 'x", "unterminated ' quote"],
      ['python "x', 'unterminated " quote'],
      ["python t.py > out", '">" is shell syntax'],
      ["python $SCRIPT", '"$" is shell syntax'],
      ["python ~/t.py", '"~" is shell syntax'],
      ["CUDA_VISIBLE_DEVICES=1 python t.py", "env CUDA_VISIBLE_DEVICES=1"],
    ])
      expect(
        Either.getLeft(splitCommandLine(line!)).pipe((o) => (o._tag === "Some" ? o.value : "")),
      ).toContain(why)
    expect(joinCommandLine(["python3", "my trainer.py", "it's"])).toBe(`python3 'my trainer.py' 'it'\\''s'`)
  })

  it("reads replies strictly", () => {
    const outcome = (extra: Record<string, unknown>) =>
      JSON.stringify({
        type: "outcome",
        id: 1,
        step: 0,
        losses: { total: 1 },
        durationMs: 2,
        samples: 4,
        ...extra,
      })
    expect(decodeReply(outcome({ memory: { rssBytes: 5, peakBytes: 7 } }))).toMatchObject({
      type: "outcome",
      memory: { rssBytes: 5, peakBytes: 7 },
    })
    const violations: Array<[string, string]> = [
      [outcome({ losses: { cls: 1 } }), 'outcome.losses must hold "total"'],
      [outcome({ losses: { total: "1" } }), "outcome.losses.total must be a finite number"],
      [outcome({ memory: { logicalBytes: 1 } }), "outcome.memory.logicalBytes is not one of"],
      [outcome({ durationMs: -1 }), "outcome.durationMs must be a finite number >= 0"],
      [outcome({ samples: 1.5 }), "outcome.samples must be an integer >= 0"],
      [outcome({ id: "1" }), "outcome.id must be an integer"],
      ['{"type":"hello","id":0}', 'unknown type "hello"'],
      ["[1,2]", "not a JSON object"],
      ['{"type":"ready","id":0,"protocol":1}', "ready.trainer must be an object"],
      [
        '{"type":"ready","id":0,"protocol":1,"trainer":{"name":"a","version":"1"},"device":"cpu","framework":"x","stateless":false,"capabilities":{"evaluate":true,"checkpoint":true},"reproducible":"roughly"}',
        'ready.reproducible must be "exact"',
      ],
    ]
    for (const [line, why] of violations) {
      const r = decodeReply(line)
      expect(r).toBeInstanceOf(ProtocolViolation)
      expect((r as ProtocolViolation).reason).toContain(why)
    }
  })
})

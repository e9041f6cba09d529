/**
 * A TrainingSession over the step protocol: the one session code behind `exec` and `pytorch`.
 *
 * Open: start the child, `hello` (spec + trainer options) -> `ready` (protocol version checked;
 * `stateless`, capabilities, trainer facts). Each engine call is one request and one reply, in
 * turn. How replies map:
 *   outcome                 -> StepOutcome (losses, durationMs, samples, memory bytes)
 *   failure nan-loss / out-of-memory / device-lost -> StepFailure of that kind (the trainer is fine)
 *   failure trainer-error   -> StepFailure adapter-error, with the trainer's stderr tail
 *   anything else on stdout, a reply out of turn (wrong id or type), the child exiting or closing
 *   stdout while a request is pending, no reply within the timeout
 *                           -> StepFailure adapter-error naming the reason, with the stderr tail;
 *                              the child is ended at once and every later request fails the same way.
 * The child is ended and reaped when the session's scope closes, however it closes: a polite
 * `close` when the channel is idle and sound, then SIGTERM, then SIGKILL after a grace period.
 */
import { resolve } from "node:path"
import { Effect } from "effect"
import {
  type AdapterDescription,
  AdapterUnavailable,
  type EvalResult,
  type Reproducibility,
  StepFailure,
  type StepFailureKind,
  type StepOutcome,
  type TrainingSession,
} from "../../core/run/index.ts"
import { encodeSpec, type ScheduleSpec } from "../../core/schedule/index.ts"
import { type Answer, TrainerProcess } from "./child.ts"
import { joinCommandLine } from "./command-line.ts"
import {
  ANSWER,
  decodeReply,
  type Evaluation,
  type Outcome,
  PROTOCOL_VERSION,
  ProtocolViolation,
  type Ready,
  type Reply,
  type RequestType,
  stepRequest,
  TRAINER_FAILURE_KINDS,
} from "./protocol.ts"

export interface ProtocolSessionConfig {
  /** The adapter kind recorded in the description ("exec", "pytorch"). */
  readonly kind: string
  /** The trainer's argv: program and arguments. */
  readonly argv: ReadonlyArray<string>
  readonly env?: Readonly<Record<string, string | undefined>> | undefined
  /** Sent as `hello.options`. */
  readonly helloOptions: Readonly<Record<string, unknown>>
  /** Recorded as the description's options: enough to re-open the same session. */
  readonly descriptionOptions: Readonly<Record<string, unknown>>
  /** Longest wait for the reply to step, evaluate, checkpoint and restore. */
  readonly stepTimeoutMs: number
  /** Longest wait for `ready` (interpreter start, imports, model build). */
  readonly startTimeoutMs: number
  /** Where the step timeout is set, for messages ("--step-timeout SECONDS sets it"). */
  readonly timeoutHint?: string | undefined
  /** A failed start, in words the user can act on (pytorch: "python at X has no torch"). */
  readonly explainStartFailure?:
    | ((reason: string, stderrTail: ReadonlyArray<string>) => string | undefined)
    | undefined
  /** After `close`, how long the child may take to exit by itself; then SIGTERM. */
  readonly closeMs?: number | undefined
  /** After SIGTERM, how long before SIGKILL. */
  readonly graceMs?: number | undefined
}

export interface ProtocolSession extends TrainingSession {
  /** The trainer's process id (its process group's too). */
  readonly pid: number | undefined
  readonly ready: Ready
}

/** What replay may expect when the trainer does not say: bit-exact is not promised. */
export const DEFAULT_REPRODUCIBILITY: Reproducibility = { relTolerance: 1e-6 }
/** CUDA kernels with atomics (embedding and index backward, some reductions) are not deterministic. */
export const CUDA_REPRODUCIBILITY: Reproducibility = { relTolerance: 1e-2 }

/** 1e-6 rather than 0.000001. */
const tol = (x: number) => (x !== 0 && Math.abs(x) < 1e-3 ? x.toExponential() : String(x))

export const describeReproducibility = (r: Reproducibility): string =>
  r === "exact"
    ? "exact (bit-identical losses and evaluations on re-execution)"
    : `losses and evaluations within relative ${tol(r.relTolerance)}${r.durationRelTolerance !== undefined ? `, step times within relative ${tol(r.durationRelTolerance)}` : ""}`

/** "a checkpointed", "an outcome". */
const an = (word: string) => `${/^[aeiou]/.test(word) ? "an" : "a"} ${word}`

const seconds = (ms: number) => `${Number((ms / 1000).toPrecision(3))} s`

const KIND_OF: Readonly<Record<string, StepFailureKind>> = {
  "nan-loss": "nan-loss",
  "out-of-memory": "out-of-memory",
  "device-lost": "device-lost",
  "trainer-error": "adapter-error",
}

const stderrText = (tail: ReadonlyArray<string>): string => {
  const lines = [...tail]
  while (lines.length > 0 && lines.at(-1)!.trim() === "") lines.pop()
  return lines.length === 0
    ? " (the trainer wrote nothing on stderr)"
    : `\ntrainer stderr, last ${lines.length} line(s):\n${lines.map((l) => `  | ${l}`).join("\n")}`
}

const lastLine = (tail: ReadonlyArray<string>): string | undefined =>
  [...tail].reverse().find((l) => l.trim() !== "")

export const openProtocolSession = (config: ProtocolSessionConfig, spec: ScheduleSpec) =>
  Effect.gen(function* () {
    let nextId = 1
    const echo = process.env.INTERLEAVE_TRAINER_STDERR === "quiet" ? undefined : "[trainer] "
    const [program, ...args] = config.argv
    const env = { ...(config.env ?? process.env) }
    env.PYTHONUNBUFFERED ??= "1"
    const child = yield* Effect.acquireRelease(
      Effect.sync(() => new TrainerProcess({ command: program!, args, env, echoPrefix: echo })),
      (c) =>
        Effect.promise(() =>
          c.shutdown({
            closeLine: JSON.stringify({ type: "close", id: nextId++ }),
            closeMs: config.closeMs ?? 5000,
            graceMs: config.graceMs ?? 3000,
          }),
        ),
    )
    const hint = config.timeoutHint ? `; ${config.timeoutHint}` : ""

    const timeoutText = (what: string, timeoutMs: number, timeoutName: string) =>
      `${what} took longer than the ${timeoutName} (${seconds(timeoutMs)}${timeoutName === "step timeout" ? hint : ""})`

    /** One request, one answer; interruption (Ctrl-C mid-step) ends the child. */
    const ask = (line: string, timeoutMs: number, what: string, timeoutName = "step timeout") =>
      Effect.async<Answer>((resume) => {
        const cancel = child.request(line, timeoutMs, timeoutText(what, timeoutMs, timeoutName), (a) =>
          resume(Effect.succeed(a)),
        )
        return Effect.sync(() => {
          cancel()
          child.kill()
        })
      })

    /**
     * `reason` with the trainer's stderr tail, once stderr has settled: it is a separate pipe, so
     * lines written before the reply (or the stray line) that went wrong may not have been read yet.
     */
    const withStderrTail = (reason: string) =>
      Effect.promise(() => child.settleStderr()).pipe(
        Effect.map(() => `${reason}${stderrText(child.stderrTail())}`),
      )

    /** The channel is unusable: the child goes, every later request fails with this. */
    const broken = (reason: string) =>
      Effect.map(withStderrTail(reason), (message) => {
        child.kill()
        return new StepFailure({ kind: "adapter-error", message })
      })

    const exchange = (type: RequestType, id: number, line: string, what: string, timeoutMs: number) =>
      Effect.flatMap(ask(line, timeoutMs, what), (answer) => judge(type, id, what, answer))

    /** What an answer to request `id` means: the reply it should be, or the failure it is. */
    const judge = (type: RequestType, id: number, what: string, answer: Answer) =>
      Effect.gen(function* () {
        if (answer._tag === "Lost") return yield* Effect.flip(broken(`${answer.reason} (${what})`))
        const reply = decodeReply(answer.line)
        if (reply instanceof ProtocolViolation)
          return yield* Effect.flip(broken(`${reply.reason} (in reply to ${what})`))
        if (reply.type === "failure" && reply.id === null)
          return yield* Effect.flip(
            broken(`the trainer could not read the ${type} request (${what}): ${reply.message}`),
          )
        if (reply.id !== id)
          return yield* Effect.flip(
            broken(`out-of-turn reply: ${an(reply.type)} with id ${reply.id} to ${what} (request id ${id})`),
          )
        if (reply.type === "failure") {
          const kind = Object.hasOwn(KIND_OF, reply.kind) ? KIND_OF[reply.kind] : undefined
          if (!kind)
            return yield* Effect.flip(
              broken(
                `invalid failure reply to ${what}: kind ${JSON.stringify(reply.kind)} is not one of ${TRAINER_FAILURE_KINDS.join(", ")}`,
              ),
            )
          if (kind !== "adapter-error") return yield* new StepFailure({ kind, message: reply.message })
          // A trainer-error: the SDK has printed the traceback on stderr just before.
          return yield* new StepFailure({
            kind,
            message: yield* withStderrTail(`trainer error in ${what}: ${reply.message}`),
          })
        }
        if (reply.type !== ANSWER[type])
          return yield* Effect.flip(broken(`out-of-turn reply: ${an(reply.type)} reply to ${what}`))
        return reply as Reply
      })

    /** `quoteStderr`: a refusal says why itself; an exit or a stray line is explained by stderr. */
    const startFailed = (reason: string, quoteStderr = true) => {
      const tail = child.stderrTail()
      const explained = config.explainStartFailure?.(reason, tail)
      const last = quoteStderr ? lastLine(tail) : undefined
      return new AdapterUnavailable({
        message:
          explained ??
          `${config.kind}: the trainer (${joinCommandLine(config.argv)}) did not start: ${reason}${last ? `; its last stderr line: ${last.trim()}` : ""}`,
      })
    }

    const helloLine = JSON.stringify({
      type: "hello",
      id: 0,
      protocol: PROTOCOL_VERSION,
      spec: encodeSpec(spec),
      options: config.helloOptions,
    })
    const first = yield* ask(helloLine, config.startTimeoutMs, "hello", "start timeout")
    if (first._tag === "Lost") {
      child.kill()
      return yield* startFailed(first.reason)
    }
    const greeting = decodeReply(first.line)
    if (greeting instanceof ProtocolViolation) {
      child.kill()
      return yield* startFailed(`${greeting.reason} (in reply to hello)`)
    }
    if (greeting.type === "failure")
      return yield* startFailed(`it refused hello: ${greeting.kind}: ${greeting.message}`, false)
    if (greeting.type !== "ready" || greeting.id !== 0) {
      child.kill()
      return yield* startFailed(`out-of-turn reply: ${an(greeting.type)} with id ${greeting.id} to hello`)
    }
    const ready = greeting
    if (ready.protocol !== PROTOCOL_VERSION) {
      child.kill()
      return yield* startFailed(
        `it speaks step protocol version ${ready.protocol}, interleave speaks version ${PROTOCOL_VERSION}`,
      )
    }

    const reproducible =
      ready.reproducible ?? (/^cuda/i.test(ready.device) ? CUDA_REPRODUCIBILITY : DEFAULT_REPRODUCIBILITY)
    const description: AdapterDescription = {
      kind: config.kind,
      options: config.descriptionOptions,
      info: {
        ...ready.info,
        trainer: ready.trainer.name,
        trainerVersion: ready.trainer.version,
        device: ready.device,
        framework: ready.framework,
        protocol: String(ready.protocol),
        command: joinCommandLine(config.argv),
        pid: String(child.pid ?? "?"),
        reproducible: describeReproducibility(reproducible),
        durationMs:
          ready.info.durationMs ??
          "the trainer's own wall time of the step (protocol and engine time excluded)",
      },
      ...(ready.environment ? { environment: ready.environment } : {}),
    }

    const call = <R extends Reply>(type: RequestType, what: string, body: Record<string, unknown>) =>
      Effect.suspend(() => {
        const id = nextId++
        return exchange(
          type,
          id,
          JSON.stringify({ type, id, ...body }),
          what,
          config.stepTimeoutMs,
        ) as Effect.Effect<R, StepFailure>
      })

    /**
     * A step. The reply is read in the pipe's callback and, when it is the outcome asked for (the
     * usual case), handed back at once: this path runs once per step, between two training steps.
     */
    const step: TrainingSession["step"] = (plan) =>
      Effect.async<StepOutcome, StepFailure>((resume) => {
        const id = nextId++
        const timeout = config.stepTimeoutMs
        const cancel = child.request(
          stepRequest(id, plan),
          timeout,
          timeoutText(`step ${plan.step}`, timeout, "step timeout"),
          (answer) => {
            if (answer._tag === "Line") {
              const r = decodeReply(answer.line)
              if (
                !(r instanceof ProtocolViolation) &&
                r.type === "outcome" &&
                r.id === id &&
                r.step === plan.step
              )
                return resume(
                  Effect.succeed({
                    losses: r.losses,
                    durationMs: r.durationMs,
                    samples: r.samples,
                    memory: r.memory,
                  }),
                )
            }
            const what = `step ${plan.step}`
            resume(
              Effect.flatMap(judge("step", id, what, answer), (r) =>
                Effect.flip(
                  broken(`out-of-turn reply: the outcome of step ${(r as Outcome).step} to ${what}`),
                ),
              ),
            )
          },
        )
        return Effect.sync(() => {
          cancel()
          child.kill()
        })
      })

    const cannot = (what: string) =>
      Effect.fail(
        new StepFailure({
          kind: "adapter-error",
          message: `the trainer cannot ${what} (its ready reply says capabilities.checkpoint is false); run with --checkpoint-every 0`,
        }),
      )

    const session: ProtocolSession = {
      pid: child.pid,
      ready,
      description,
      stateless: ready.stateless,
      reproducible,
      step,
      evaluate: ready.capabilities.evaluate
        ? () =>
            Effect.map(
              call<Evaluation>("evaluate", "evaluate", {}),
              (e): EvalResult => ({ metric: e.metric, values: e.values, chance: e.chance }),
            )
        : undefined,
      checkpoint: (file) =>
        ready.capabilities.checkpoint
          ? Effect.asVoid(call("checkpoint", `checkpoint ${file}`, { path: resolve(file) }))
          : cannot("checkpoint"),
      restore: (file) =>
        ready.capabilities.checkpoint
          ? Effect.asVoid(call("restore", `restore ${file}`, { path: resolve(file) }))
          : cannot("restore a checkpoint"),
    }
    return session
  })

/** `interleave show`: a run's state (at a step), curves, evaluations and failures. */
import { Clock, Effect, Either, Option, Stream } from "effect"
import { formatNumber } from "../../core/common/index.ts"
import {
  decodeEvent,
  type EvalCompleted,
  evolveCurves,
  makeCurves,
  makeRunStateFold,
  type ObservedEval,
  type RunStarted,
  runReport,
  type Series,
  stepOf,
} from "../../core/log/index.ts"
import { effectiveStatus, environmentLine, noRun, readRunEvents, summarizeLog } from "../../core/run/index.ts"
import { EventStore } from "../../core/store/index.ts"
import { defineCommand } from "../command.ts"
import { badInput } from "../failure.ts"
import { flag } from "../flags.ts"
import { observedShowJson, observedShowLines } from "../observed-report.ts"
import { jsonFlag, runArg, storeFlag } from "../options.ts"
import { json, line, table } from "../output.ts"
import { printCurves, printState, reportLines } from "../run-report.ts"
import { withStore } from "../store.ts"

/** Tails a run in progress: a status line a second, until it completes, aborts or is interrupted. */
const follow = (runId: string, from: number, fold: ReturnType<typeof makeRunStateFold>) =>
  Effect.gen(function* () {
    const store = yield* EventStore
    let last = 0
    let done = false
    yield* store
      .tail(runId, {
        from,
        pollMs: 250,
        until: (e) => e.type === "RunCompleted" || e.type === "RunAborted" || e.type === "RunInterrupted",
      })
      .pipe(
        Stream.mapChunksEffect((chunk) =>
          Effect.gen(function* () {
            for (const stored of chunk) {
              const d = decodeEvent(stored, `run ${runId}, event ${stored.position}`, { validate: false })
              if (Either.isRight(d)) fold.push(d.right)
            }
            const s = fold.state()
            const t = yield* Clock.currentTimeMillis
            done = s.status !== "running"
            if (done || t - last >= 1000) {
              last = t
              yield* line(
                `${runId}: ${s.status} · step ${s.lastStep + 1}/${s.plannedSteps} · loss V ${formatNumber(s.lastLoss.visual)} T ${formatNumber(s.lastLoss.text)}`,
              )
            }
            return chunk
          }),
        ),
        Stream.runDrain,
      )
    const end = fold.state()
    yield* line(reportLines(runReport(end)).join("\n"))
  })

/** Points kept per curve by `show` (the fold thins them evenly, so memory stays bounded). */
const SHOW_POINTS = 400

export const showCommand = defineCommand({
  name: "show",
  summary: "Show a run's state (at a step with --at), evaluations and failures.",
  args: { run: runArg },
  flags: {
    at: flag.integer("at", "The state as of this step.", { value: "STEP", default: "the end of the log" }),
    follow: flag.boolean(
      "follow",
      "Keep reading a run in progress: a line per second until it ends or stops.",
    ),
    store: storeFlag,
    json: jsonFlag,
  },
  examples: ["interleave show RUN --at 449"],
  run: (o) =>
    Effect.gen(function* () {
      const limit = Option.getOrUndefined(o.at)
      if (limit !== undefined && limit < 0) return yield* badInput(`--at: must be a step >= 0, got ${limit}`)
      // One pass: the state, the evaluations and the curves up to --at.
      const evals: EvalCompleted[] = []
      const observedEvals: ObservedEval[] = []
      const fold = makeRunStateFold()
      const curves = makeCurves(SHOW_POINTS)
      let started: RunStarted | undefined
      let events = 0
      // Whether the log goes on past --at: the state is then the one the run had at that step.
      let cut = false
      yield* readRunEvents(o.run).pipe(
        Stream.takeWhile((e) => {
          if (limit === undefined) return true
          // Events without a step (RunResumed, RunInterrupted, RunCompleted) belong to where they stand.
          const s = stepOf(e)
          if (s === undefined || s <= limit) return true
          cut = true
          return false
        }),
        Stream.runForEachChunk((chunk) =>
          Effect.sync(() => {
            for (const e of chunk) {
              events++
              if (e._tag === "RunStarted") started ??= e
              else if (e._tag === "EvalCompleted") evals.push(e)
              else if (e._tag === "ObservedEval") observedEvals.push(e)
              fold.push(e)
              evolveCurves(curves, e)
            }
          }),
        ),
      )
      // No events: no such run when the store was read. (A second read to name it could find a run
      // that started in between, and print nothing with exit 0.)
      if (events === 0) return yield* noRun(o.run)
      const folded = fold.state()
      const store = yield* EventStore
      const streamInfo = (yield* store.streams()).find((x) => x.stream === o.run)
      const now = yield* Clock.currentTimeMillis
      const heartbeatAt = (streamInfo as { heartbeatAt?: number } | undefined)?.heartbeatAt
      // At a step the log goes on past, the run was running then (its writer's liveness is today's).
      const state = {
        ...folded,
        status: cut ? folded.status : effectiveStatus(folded.status, folded.writer, heartbeatAt, now),
      }
      const observed = (started as RunStarted | undefined)?.observed ? started : undefined
      if (observed) {
        if (limit !== undefined)
          return yield* badInput(`--at: run ${o.run} is an observed run: it has no steps of ours to stop at`)
        if (o.json) return yield* json(observedShowJson(state, observedEvals))
        return yield* line(observedShowLines(o.run, observed, state, observedEvals).join("\n"))
      }
      if (limit !== undefined && state.lastStep < limit) {
        const last = (yield* summarizeLog(o.run)).state.lastStep
        return yield* badInput(`--at: step ${limit} is outside the recorded steps (0..${last})`)
      }
      const nowState = cut ? (yield* summarizeLog(o.run)).state : undefined
      const statusNow = nowState && effectiveStatus(nowState.status, nowState.writer, heartbeatAt, now)
      const points = (x: Series) => x.points.map((p) => [p.step, p.value])
      const report = runReport(state)
      if (o.json)
        return yield* json({
          ...report,
          ...(statusNow ? { statusNow } : {}),
          evaluations: evals,
          curves: {
            loss: { visual: points(curves.loss.visual), text: points(curves.loss.text) },
            lr: points(curves.lr),
            memory: report.memory
              ? {
                  source: report.memory.source,
                  visual: points(curves.memory[report.memory.source]!.visual),
                  text: points(curves.memory[report.memory.source]!.text),
                }
              : null,
          },
        })
      const st = started
      if (!st) return yield* badInput(`run "${o.run}" has no RunStarted event`)
      yield* line(
        `run ${o.run}${limit === undefined ? "" : ` at step ${limit}`}: ${state.status}${statusNow ? ` (the log goes on past it; the run is now ${statusNow})` : ""}`,
      )
      yield* line(
        `source ${st.source}; adapter ${st.adapter.kind} ${JSON.stringify(st.adapter.options)}; seed ${st.seed}; planned steps ${st.steps}`,
      )
      if (st.forkOf) yield* line(`fork of ${st.forkOf.runId} at step ${st.forkOf.atStep}`)
      const info = Object.entries(st.adapter.info)
        .map(([k, v]) => `${k}=${v}`)
        .join(" ")
      if (info) yield* line(`adapter info: ${info}`)
      if (st.adapter.environment) yield* line(`environment: ${environmentLine(st.adapter.environment)}`)
      yield* line(`phase ${state.phase ?? "-"}; last step ${state.lastStep}`)
      yield* printState(state)
      yield* printCurves(curves, report.memory?.source)
      if (evals.length > 0) {
        yield* line("\nevaluations")
        yield* line(
          table(
            ["step", "metric", "visual", "text", "chance"],
            evals.map((e) => [
              e.step,
              e.metric,
              formatNumber(e.values.visual),
              formatNumber(e.values.text),
              formatNumber(e.chance),
            ]),
          ),
        )
      }
      if (state.lastFailure)
        yield* line(
          `\nfailed: step ${state.lastFailure.step} ${state.lastFailure.kind}: ${state.lastFailure.message}`,
        )
      if (state.status === "interrupted")
        yield* line(
          `\ninterrupted${state.lastInterruption ? `: ${state.lastInterruption.reason}` : " (its writer is gone)"}; resume with \`interleave resume ${o.run}\``,
        )
      if (o.follow && state.status === "running") yield* follow(o.run, events, fold)
    }).pipe((eff) => withStore(o.store, eff, { readOnly: true })),
})

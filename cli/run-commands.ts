/** Commands over recorded runs: run, resume, fork, replay, runs, show, diff, verify (log mode). */
import { createReadStream, existsSync } from "node:fs"
import { createInterface } from "node:readline"
import { Args, Command, Options } from "@effect/cli"
import { Effect, Either, Option, Stream } from "effect"
import { adapterLayer } from "../adapters/registry.ts"
import { sparkline } from "../core/bench/report/sparkline.ts"
import { compareEvents } from "../core/log/compare.ts"
import type { EvalCompleted, RunEvent, RunStarted, StepCompleted } from "../core/log/events.ts"
import { parseLogLine, sniffFormat } from "../core/log/formats.ts"
import { makeLogChecker } from "../core/log/log-invariants.ts"
import {
  type Curves,
  eventStep,
  evolveCurves,
  makeCurves,
  makeRunStateFold,
  type RunState,
  type Series,
} from "../core/log/projections.ts"
import {
  type EngineOptions,
  forkRun,
  type RunSummary,
  readRunEvents,
  replayRun,
  resumeRun,
  specOfRun,
  startRun,
  summarizeLog,
} from "../core/run/engine.ts"
import { makeChecker } from "../core/schedule/invariants.ts"
import { forkSpecWithRatio, parseRatio } from "../core/schedule/ratio-fork.ts"
import { type ScheduleSpec, totalSteps } from "../core/schedule/spec.ts"
import { EventStore } from "../core/store/event-store.ts"
import { DEFAULT_STORE_PATH, SqliteEventStoreLive } from "../core/store/sqlite.ts"
import { badInput, failedCheck } from "./failure.ts"
import { fmtBytes, fmtNum, makeProgress, printJson, println, table } from "./output.ts"
import { loadScenario, readTextFile } from "./scenario.ts"
import { jsonOption, reportVerify, verifyScenario } from "./schedule-commands.ts"

export const storeOption = Options.text("store").pipe(
  Options.withDefault(DEFAULT_STORE_PATH),
  Options.withDescription("SQLite event store file"),
)
const runArg = Args.text({ name: "run" }).pipe(Args.withDescription("run id (see `interleave runs`)"))

export const storeLayer = (file: string) => SqliteEventStoreLive(file)

export const withStore = <A, E, R>(file: string, eff: Effect.Effect<A, E, R>) =>
  Effect.provide(eff, storeLayer(file)) as Effect.Effect<
    A,
    E | import("../core/store/event-store.ts").StoreError,
    Exclude<R, EventStore>
  >

/** `20250101-120000-3fa2`: UTC time, plus a random suffix so that two runs in one second differ. */
export const runStamp = (): string => {
  const d = new Date()
  const p = (n: number) => String(n).padStart(2, "0")
  const rand = Math.floor(Math.random() * 0x10000)
    .toString(16)
    .padStart(4, "0")
  return `${d.getUTCFullYear()}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}-${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}-${rand}`
}

const newRunId = (name: string): string => `${name}-${runStamp()}`

const adapterOptions = Options.choice("adapter", ["sim", "tfjs"]).pipe(
  Options.withDefault("sim" as const),
  Options.withDescription("what executes the steps: sim (cost model) or tfjs (real training)"),
)
const opt = (name: string, desc: string) =>
  Options.text(name).pipe(Options.optional, Options.withDescription(desc))
const intOpt = (name: string, desc: string) =>
  Options.integer(name).pipe(Options.optional, Options.withDescription(desc))

const runOptions = {
  scenario: Args.text({ name: "scenario" }).pipe(Args.withDescription("scenario JSON file")),
  adapter: adapterOptions,
  hardware: opt("hardware", "sim: hardware profile name or file (default h100-sxm)"),
  model: opt("model", "sim: model profile name or file (default trex2-tiny)"),
  backend: opt("backend", "tfjs: cpu | wasm | webgpu | tensorflow (default wasm)"),
  preset: opt("preset", "tfjs: model preset tiny | small | base (default tiny)"),
  lrScale: Options.float("lr-scale").pipe(
    Options.optional,
    Options.withDescription(
      "tfjs: factor on every lr of the schedule (default: the preset's, 10 for tiny/small)",
    ),
  ),
  steps: intOpt("steps", "run only the first N steps of the schedule"),
  evalEvery: intOpt("eval-every", "evaluate every K steps when the adapter can (tfjs default 50)"),
  checkpointEvery: intOpt(
    "checkpoint-every",
    "checkpoint stateful adapters every K steps (tfjs default 100)",
  ),
  store: storeOption,
  runId: opt("run-id", "id for the new run (default NAME-DATE-RANDOM)"),
  json: jsonOption,
}

const buildAdapterOptions = (o: {
  adapter: string
  hardware: Option.Option<string>
  model: Option.Option<string>
  backend: Option.Option<string>
  preset: Option.Option<string>
  lrScale?: Option.Option<number>
}) => {
  const out: Record<string, unknown> = {}
  const set = (k: string, v: Option.Option<string>) => {
    if (Option.isSome(v)) out[k] = v.value
  }
  if (o.adapter === "sim") {
    set("hardware", o.hardware)
    set("model", o.model)
  } else {
    set("backend", o.backend)
    set("preset", o.preset)
    if (o.lrScale && Option.isSome(o.lrScale)) out.lrScale = o.lrScale.value
  }
  return out
}

const engineOptions = (
  adapter: string,
  evalEvery: Option.Option<number>,
  checkpointEvery: Option.Option<number>,
  storeFile: string,
): EngineOptions => ({
  evalEvery: Option.getOrElse(evalEvery, () => (adapter === "tfjs" ? 50 : 0)),
  checkpointEvery: Option.getOrElse(checkpointEvery, () => (adapter === "tfjs" ? 100 : 0)),
  checkpointDir: `${storeFile}.checkpoints`,
})

const positive = (name: string, v: Option.Option<number>) =>
  Option.isSome(v) && (!Number.isInteger(v.value) || v.value < 0)
    ? Effect.fail(badInput(`--${name}: must be an integer >= 0, got ${v.value}`))
    : Effect.void

/** Prints the outcome of run/resume/fork and sets the exit code. */
const reportRun = (summary: RunSummary, json: boolean) =>
  Effect.gen(function* () {
    const s = summary.state
    if (json)
      printJson({
        runId: summary.runId,
        status: summary.status,
        steps: s.stepsCompleted,
        visualSteps: s.visualSteps,
        textSteps: s.textSteps,
      })
    else {
      println(`run ${summary.runId}: ${summary.status}`)
      printState(s)
      if (summary.status === "completed") println(`\nnext: interleave verify --log ${summary.runId}`)
    }
    if (summary.status === "aborted") return yield* failedCheck(json ? "" : `run aborted: ${s.abortReason}`)
  })

const printState = (s: RunState) => {
  println(
    table(
      [
        "steps",
        "visual",
        "text",
        "updates V",
        "updates T",
        "last loss V",
        "last loss T",
        "mem peak",
        "mem trough",
        "step time",
      ],
      [
        [
          s.stepsCompleted,
          s.visualSteps,
          s.textSteps,
          s.updates.visual,
          s.updates.text,
          s.lastLoss.visual === undefined ? "-" : fmtNum(s.lastLoss.visual),
          s.lastLoss.text === undefined ? "-" : fmtNum(s.lastLoss.text),
          fmtBytes(s.memoryPeakBytes),
          fmtBytes(s.memoryTroughBytes),
          `${fmtNum(s.totalDurationMs / 1000)} s`,
        ],
      ],
    ),
  )
  if (s.lastEval) {
    const e = s.lastEval
    println(
      `eval at step ${e.step}: ${e.metric} visual ${fmtNum(e.values.visual)} text ${fmtNum(e.values.text)}${e.chance === undefined ? "" : ` (chance ${fmtNum(e.chance)})`}`,
    )
  }
}

/** Points kept per curve by `show` (the fold thins them evenly, so memory stays bounded). */
const SHOW_POINTS = 400

const printCurves = (c: Curves) => {
  const line = (label: string, x: Series, fmt: (v: number) => string) => {
    if (x.points.length === 0) return
    const values = x.points.map((p) => p.value)
    println(
      `${label.padEnd(13)} ${sparkline(values, 48).padEnd(48)}  ${fmt(values[0]!)} -> ${fmt(values.at(-1)!)}`,
    )
  }
  println()
  line("loss visual", c.loss.visual, fmtNum)
  line("loss text", c.loss.text, fmtNum)
  line("lr (1st group)", c.lr, fmtNum)
  line("memory visual", c.memory.visual, fmtBytes)
  line("memory text", c.memory.text, fmtBytes)
}

const withProgress = (label: string, total: number, opts: EngineOptions): [EngineOptions, () => void] => {
  const p = makeProgress(label, total)
  return [{ ...opts, onProgress: p.update }, p.done]
}

const runCommand = Command.make("run", runOptions, (o) =>
  Effect.gen(function* () {
    yield* positive("eval-every", o.evalEvery)
    yield* positive("checkpoint-every", o.checkpointEvery)
    const spec = yield* loadScenario(o.scenario)
    const steps = Option.getOrUndefined(o.steps)
    const runId = Option.getOrElse(o.runId, () => newRunId(spec.name))
    const total = Math.min(steps ?? Number.POSITIVE_INFINITY, totalSteps(spec))
    const [opts, done] = withProgress(
      runId,
      total,
      engineOptions(o.adapter, o.evalEvery, o.checkpointEvery, o.store),
    )
    const summary = yield* startRun(
      { runId, spec, source: o.scenario, steps, adapterOptions: buildAdapterOptions(o) },
      opts,
    ).pipe(Effect.provide(adapterLayer(o.adapter)), Effect.ensuring(Effect.sync(done)))
    yield* reportRun(summary, o.json)
  }).pipe((eff) => withStore(o.store, eff)),
).pipe(Command.withDescription("Run a schedule as a recorded, resumable run (default adapter: sim)."))

/** The adapter kind a recorded run used, read from its RunStarted. */
const recordedAdapter = (runId: string) => Effect.map(summarizeLog(runId), (log) => log.started!)

const resumeCommand = Command.make(
  "resume",
  { run: runArg, store: storeOption, json: jsonOption },
  ({ run, store, json }) =>
    Effect.gen(function* () {
      const started = yield* recordedAdapter(run)
      const [opts, done] = withProgress(run, started.steps, { checkpointDir: `${store}.checkpoints` })
      const summary = yield* resumeRun(run, opts).pipe(
        Effect.provide(adapterLayer(started.adapter.kind)),
        Effect.ensuring(Effect.sync(done)),
      )
      yield* reportRun(summary, json)
    }).pipe((eff) => withStore(store, eff)),
).pipe(
  Command.withDescription("Continue an interrupted or killed run from the step after the last one recorded."),
)

const forkCommand = Command.make(
  "fork",
  {
    run: runArg,
    at: Options.integer("at").pipe(Options.withDescription("first step the fork runs itself")),
    ratio: opt("ratio", "V:T ratio for every phase from --at on"),
    spec: opt("spec", "a scenario file for the fork (must plan steps before --at as the parent did)"),
    runId: opt("run-id", "id for the fork"),
    store: storeOption,
    json: jsonOption,
  },
  (o) =>
    Effect.gen(function* () {
      const parent = yield* recordedAdapter(o.run)
      const parentSpec = yield* specOfRun(parent)
      if (Option.isSome(o.ratio) && Option.isSome(o.spec))
        return yield* badInput("fork: give --ratio or --spec, not both")
      let spec: ScheduleSpec = parentSpec
      let source = `fork of ${o.run} at ${o.at}`
      if (Option.isSome(o.ratio)) {
        const r = parseRatio(o.ratio.value)
        if (Either.isLeft(r)) return yield* badInput(`--ratio: ${r.left}`)
        const f = forkSpecWithRatio(parentSpec, o.at, r.right)
        if (Either.isLeft(f)) return yield* badInput(`--at: ${f.left}`)
        spec = f.right
        source += ` with ratio ${o.ratio.value}`
      } else if (Option.isSome(o.spec)) {
        spec = yield* loadScenario(o.spec.value)
        source += ` with ${o.spec.value}`
      }
      const runId = Option.getOrElse(o.runId, () => newRunId(`${spec.name}-fork`))
      const [opts, done] = withProgress(runId, parent.steps, {
        checkpointDir: `${o.store}.checkpoints`,
      })
      const summary = yield* forkRun({ parentId: o.run, atStep: o.at, runId, spec, source }, opts).pipe(
        Effect.provide(adapterLayer(parent.adapter.kind)),
        Effect.ensuring(Effect.sync(done)),
      )
      yield* reportRun(summary, o.json)
    }).pipe((eff) => withStore(o.store, eff)),
).pipe(
  Command.withDescription(
    "Start a new run that shares a run's history up to --at, then continues under a new ratio or spec.",
  ),
)

const replayCommand = Command.make(
  "replay",
  { run: runArg, store: storeOption, json: jsonOption },
  ({ run, store, json }) =>
    Effect.gen(function* () {
      const started = yield* recordedAdapter(run)
      const result = yield* replayRun(run, { checkpointDir: `${store}.replay-checkpoints` }).pipe(
        Effect.provide(adapterLayer(started.adapter.kind)),
        Effect.either,
      )
      if (Either.isLeft(result)) {
        const e = result.left
        if (e._tag !== "Divergence") return yield* Effect.fail(e)
        if (json)
          printJson({
            ok: false,
            runId: run,
            divergence: { position: e.position, step: e.step, ...e.difference },
          })
        return yield* failedCheck(json ? "" : e.message)
      }
      if (json) printJson({ ok: true, ...result.right })
      else
        println(
          `run ${run}: replay matches the log (${result.right.eventsCompared} events, ${result.right.steps} steps re-executed on ${started.adapter.kind})`,
        )
    }).pipe((eff) => withStore(store, eff)),
).pipe(
  Command.withDescription(
    "Re-execute a recorded run from its spec and seed and compare it, event by event, with its log.",
  ),
)

const runsCommand = Command.make("runs", { store: storeOption, json: jsonOption }, ({ store, json }) =>
  Effect.gen(function* () {
    const es = yield* EventStore
    const infos = yield* es.streams()
    const rows = []
    for (const info of infos) {
      const head = yield* readRunEvents(info.stream, { from: 0, to: 1 }).pipe(Stream.runHead)
      const tail = yield* readRunEvents(info.stream, { from: Math.max(0, info.version - 8) }).pipe(
        Stream.runCollect,
      )
      const started = Option.getOrUndefined(head)
      let status = "running"
      let lastStep = -1
      for (const e of tail) {
        if (e._tag === "RunCompleted") status = "completed"
        if (e._tag === "RunAborted") status = "aborted"
        if (e._tag === "StepCompleted") lastStep = e.step
      }
      const st = started?._tag === "RunStarted" ? started : undefined
      rows.push({
        runId: info.stream,
        status,
        stepsDone: lastStep + 1,
        steps: st?.steps ?? 0,
        adapter: st?.adapter.kind ?? "?",
        source: st?.source ?? "?",
        events: info.version,
        startedAt: new Date(info.firstRecordedAt).toISOString(),
      })
    }
    if (json) return printJson(rows)
    if (rows.length === 0) return println(`no runs in ${store}`)
    println(
      table(
        ["run", "status", "steps", "adapter", "events", "started", "source"],
        rows.map((r) => [
          r.runId,
          r.status,
          `${r.stepsDone}/${r.steps}`,
          r.adapter,
          r.events,
          r.startedAt,
          r.source,
        ]),
      ),
    )
  }).pipe((eff) => withStore(store, eff)),
).pipe(Command.withDescription("List the runs in the store."))

const showCommand = Command.make(
  "show",
  { run: runArg, at: intOpt("at", "state as of this step"), store: storeOption, json: jsonOption },
  ({ run, at, store, json }) =>
    Effect.gen(function* () {
      const limit = Option.getOrUndefined(at)
      if (limit !== undefined && limit < 0) return yield* badInput(`--at: must be a step >= 0, got ${limit}`)
      // One pass: the state, the evaluations and the curves up to --at.
      const evals: EvalCompleted[] = []
      const fold = makeRunStateFold()
      const curves = makeCurves(SHOW_POINTS)
      let started: RunStarted | undefined
      let events = 0
      yield* readRunEvents(run).pipe(
        Stream.takeWhile((e) => {
          if (limit === undefined) return true
          const s = eventStep(e)
          return s === undefined ? false : s <= limit
        }),
        Stream.runForEachChunk((chunk) =>
          Effect.sync(() => {
            for (const e of chunk) {
              events++
              if (e._tag === "RunStarted") started ??= e
              else if (e._tag === "EvalCompleted") evals.push(e)
              fold.push(e)
              evolveCurves(curves, e)
            }
          }),
        ),
      )
      if (events === 0) return yield* summarizeLog(run) // names the missing run
      const state = fold.state()
      if (limit !== undefined && state.lastStep < limit) {
        const last = (yield* summarizeLog(run)).state.lastStep
        return yield* badInput(`--at: step ${limit} is outside the recorded steps (0..${last})`)
      }
      const log = { started }
      const points = (x: Series) => x.points.map((p) => [p.step, p.value])
      if (json)
        return printJson({
          ...state,
          evaluations: evals,
          curves: {
            loss: { visual: points(curves.loss.visual), text: points(curves.loss.text) },
            lr: points(curves.lr),
            memoryBytes: { visual: points(curves.memory.visual), text: points(curves.memory.text) },
          },
        })
      const st = log.started
      if (!st) return yield* badInput(`run "${run}" has no RunStarted event`)
      println(`run ${run}${limit === undefined ? "" : ` at step ${limit}`}: ${state.status}`)
      println(
        `source ${st.source}; adapter ${st.adapter.kind} ${JSON.stringify(st.adapter.options)}; seed ${st.seed}; planned steps ${st.steps}`,
      )
      if (st.forkOf) println(`fork of ${st.forkOf.runId} at step ${st.forkOf.atStep}`)
      const info = Object.entries(st.adapter.info)
        .map(([k, v]) => `${k}=${v}`)
        .join(" ")
      if (info) println(`adapter info: ${info}`)
      println(`phase ${state.phase ?? "-"}; last step ${state.lastStep}`)
      printState(state)
      printCurves(curves)
      if (evals.length > 0) {
        println("\nevaluations")
        println(
          table(
            ["step", "metric", "visual", "text", "chance"],
            evals.map((e) => [
              e.step,
              e.metric,
              fmtNum(e.values.visual),
              fmtNum(e.values.text),
              e.chance === undefined ? "-" : fmtNum(e.chance),
            ]),
          ),
        )
      }
      if (state.lastFailure)
        println(
          `\nfailed: step ${state.lastFailure.step} ${state.lastFailure.kind}: ${state.lastFailure.message}`,
        )
    }).pipe((eff) => withStore(store, eff)),
).pipe(Command.withDescription("Show a run's state (at a step with --at), evaluations and failures."))

const diffCommand = Command.make(
  "diff",
  { a: Args.text({ name: "runA" }), b: Args.text({ name: "runB" }), store: storeOption, json: jsonOption },
  ({ a, b, store, json }) =>
    Effect.gen(function* () {
      const la = yield* summarizeLog(a)
      const lb = yield* summarizeLog(b)
      const steps = (id: string) =>
        readRunEvents(id).pipe(Stream.filter((e): e is StepCompleted => e._tag === "StepCompleted"))
      let firstPlanDiff: { step: number; path: string; a: unknown; b: unknown } | undefined
      let firstLossDiff: { step: number; a: number; b: number } | undefined
      const sumAbs = { visual: 0, text: 0 }
      const count = { visual: 0, text: 0 }
      yield* Stream.zip(steps(a), steps(b)).pipe(
        Stream.runForEach(([x, y]) =>
          Effect.sync(() => {
            const pa: StepCompleted = { ...x, losses: {}, durationMs: 0, memory: { logicalBytes: 0 } }
            const pb: StepCompleted = { ...y, losses: {}, durationMs: 0, memory: { logicalBytes: 0 } }
            const d = compareEvents(pa, pb, { measurements: false, tolerance: 0 })
            if (d && !firstPlanDiff) firstPlanDiff = { step: x.step, ...d }
            const lx = x.losses.total ?? 0
            const ly = y.losses.total ?? 0
            if (lx !== ly && !firstLossDiff) firstLossDiff = { step: x.step, a: lx, b: ly }
            if (x.modality === y.modality) {
              sumAbs[x.modality] += Math.abs(lx - ly)
              count[x.modality]++
            }
          }),
        ),
      )
      const mean = (m: "visual" | "text") => (count[m] ? sumAbs[m] / count[m] : 0)
      const same = !firstPlanDiff && !firstLossDiff && la.state.stepsCompleted === lb.state.stepsCompleted
      const out = {
        same,
        a: {
          runId: a,
          status: la.state.status,
          steps: la.state.stepsCompleted,
          visualSteps: la.state.visualSteps,
          textSteps: la.state.textSteps,
          specHash: la.state.specHash,
          lastLoss: la.state.lastLoss,
          simulatedOrMeasuredMs: la.state.totalDurationMs,
        },
        b: {
          runId: b,
          status: lb.state.status,
          steps: lb.state.stepsCompleted,
          visualSteps: lb.state.visualSteps,
          textSteps: lb.state.textSteps,
          specHash: lb.state.specHash,
          lastLoss: lb.state.lastLoss,
          simulatedOrMeasuredMs: lb.state.totalDurationMs,
        },
        firstPlanDifference: firstPlanDiff ?? null,
        firstLossDifference: firstLossDiff ?? null,
        meanAbsLossDifference: { visual: mean("visual"), text: mean("text") },
      }
      if (json) printJson(out)
      else {
        println(
          table(
            ["run", "status", "steps", "visual", "text", "spec", "last loss V", "last loss T", "step time"],
            [out.a, out.b].map((r) => [
              r.runId,
              r.status,
              r.steps,
              r.visualSteps,
              r.textSteps,
              r.specHash ?? "-",
              fmtNum(r.lastLoss.visual ?? Number.NaN),
              fmtNum(r.lastLoss.text ?? Number.NaN),
              `${fmtNum(r.simulatedOrMeasuredMs / 1000)} s`,
            ]),
          ),
        )
        println(
          firstPlanDiff
            ? `schedules first differ at step ${firstPlanDiff.step}: ${firstPlanDiff.path} ${JSON.stringify(firstPlanDiff.a)} vs ${JSON.stringify(firstPlanDiff.b)}`
            : "schedules agree on every common step",
        )
        println(
          firstLossDiff
            ? `losses first differ at step ${firstLossDiff.step} (${fmtNum(firstLossDiff.a)} vs ${fmtNum(firstLossDiff.b)}); mean |delta| visual ${fmtNum(mean("visual"))}, text ${fmtNum(mean("text"))}`
            : "losses identical on every common step",
        )
      }
      if (!same) return yield* failedCheck("")
    }).pipe((eff) => withStore(store, eff)),
).pipe(Command.withDescription("Compare two runs step by step (exit 1 when they differ, like diff)."))

/** The step of a step event (StepCompleted / StepFailed), for the log rules. */
export const stepOfEvent = (e: RunEvent): number | undefined =>
  e._tag === "StepCompleted" || e._tag === "StepFailed" ? e.step : undefined

/** Reads a log file line by line, in bounded memory, decoding every event. */
export const fileEvents = (file: string, format?: "jsonl" | "mllog") =>
  Stream.unwrap(
    Effect.gen(function* () {
      yield* readTextFile(file, "log file").pipe(
        Effect.asVoid,
        Effect.catchAll((e) => (existsSync(file) ? Effect.void : Effect.fail(e))),
      )
      let fmt = format
      let lineNo = 0
      const lines = Stream.fromAsyncIterable(
        createInterface({ input: createReadStream(file), crlfDelay: Number.POSITIVE_INFINITY }),
        (e) => badInput(`${file}: ${String(e)}`),
      )
      return lines.pipe(
        Stream.mapEffect((text) => {
          lineNo++
          fmt ??= sniffFormat(file, text)
          const r = parseLogLine(text, fmt, file, lineNo)
          return Either.isLeft(r) ? Effect.fail(badInput(r.left.message)) : Effect.succeed(r.right)
        }),
        Stream.filterMap((x) => (x ? Option.some(x) : Option.none())),
      )
    }),
  )

const verifyCommand = Command.make(
  "verify",
  {
    scenario: Args.text({ name: "scenario" }).pipe(Args.optional, Args.withDescription("scenario JSON file")),
    log: opt("log", "a recorded run: a run id in the store, or a .jsonl / .mllog file"),
    spec: opt("spec", "with --log: check against this scenario instead of the recorded spec"),
    store: storeOption,
    json: jsonOption,
  },
  (o) =>
    Effect.gen(function* () {
      if (Option.isNone(o.log)) {
        if (Option.isNone(o.scenario))
          return yield* badInput("verify: give a scenario file, or --log RUN|FILE")
        return yield* verifyScenario(o.scenario.value, o.json)
      }
      const target = o.log.value
      const isFile = existsSync(target)
      const events: Stream.Stream<RunEvent, unknown, EventStore> = isFile
        ? Stream.map(fileEvents(target), (l) => l.event)
        : readRunEvents(target)
      if (!isFile) yield* summarizeLog(target)
      const override = Option.isSome(o.spec) ? yield* loadScenario(o.spec.value) : undefined
      let checker: ReturnType<typeof makeChecker> | undefined
      let started: RunStarted | undefined
      let position = 0
      let terminal: string | undefined
      const logChecker = makeLogChecker()
      let spec: ScheduleSpec | undefined
      yield* events.pipe(
        Stream.runForEach((e) =>
          Effect.gen(function* () {
            logChecker.push({ position: position++, type: e._tag, step: stepOfEvent(e) })
            if (e._tag === "RunStarted" && !started) {
              started = e
              const s = override ?? (yield* specOfRun(e))
              spec = s
              checker = makeChecker(s, { limit: e.steps })
            } else if (e._tag === "StepCompleted") {
              if (!checker) return yield* badInput(`${target}: step ${e.step} comes before RunStarted`)
              checker.push(e)
            } else if (e._tag === "RunCompleted" || e._tag === "RunAborted") terminal = e._tag
          }),
        ),
      )
      if (!checker || !started || !spec)
        return yield* badInput(`${target}: no RunStarted event: not a recorded run`)
      // A run that did not complete followed its schedule if its prefix did: check that prefix.
      let report = checker.finish()
      if (terminal !== "RunCompleted") {
        const partial = makeChecker(spec, { limit: report.steps })
        const again: Stream.Stream<RunEvent, unknown, EventStore> = isFile
          ? Stream.map(fileEvents(target), (l) => l.event)
          : readRunEvents(target)
        yield* again.pipe(
          Stream.runForEach((e) => Effect.sync(() => e._tag === "StepCompleted" && partial.push(e))),
        )
        report = partial.finish()
      }
      const logReport = logChecker.finish()
      const merged = {
        ...report,
        ok: report.ok && logReport.ok,
        violations: [...logReport.violations, ...report.violations],
      }
      const label = `${started.runId} (${started.source})${terminal === "RunCompleted" ? "" : ` [${terminal === "RunAborted" ? "aborted" : "incomplete"}: checked the ${report.steps} recorded steps]`}`
      yield* reportVerify(label, merged, o.json)
    }).pipe((eff) => withStore(o.store, eff)),
).pipe(
  Command.withDescription(
    "Check a schedule (scenario file) or a recorded run (--log) against every invariant; exit 1 on a violation.",
  ),
)

export const runCommands = [
  runCommand,
  resumeCommand,
  forkCommand,
  replayCommand,
  runsCommand,
  showCommand,
  diffCommand,
  verifyCommand,
] as const

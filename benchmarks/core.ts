/**
 * The core performance suite (`npm run bench`). Each comparison measures both sides in the same
 * process, interleaved over several rounds, and reports the ratio of medians; absolute rates are
 * printed too but only ratios are portable between machines.
 *
 *  - engine (sim + in-memory store) vs a plain loop computing the same sim outcomes
 *  - SQLite and PostgreSQL (loopback) append (batched) and replay (read + decode + fold) of a real
 *    run's events, per second and per CPU-second; PostgreSQL's commit-order lock cost
 *  - tinybench micro-benchmarks: planner, checker, sim step, store append
 *  - harness overhead: tfjs steps through the full engine vs a bare tfjs loop (see harness-overhead.ts)
 *  - harness overhead with a trainer in a child process: PyTorch steps through `--adapter pytorch`
 *    vs the trainer's bare Python loop, the protocol round trip and the harness's own time per
 *    step (see harness-exec.ts; skipped, and said so, without /usr/bin/python3 + torch)
 *
 * Writes benchmarks/results/core.json.
 */
import { spawnSync } from "node:child_process"
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { cpus, tmpdir, totalmem } from "node:os"
import { join } from "node:path"
import { setFlagsFromString } from "node:v8"
import { runInNewContext } from "node:vm"
import { Chunk, Effect, Either, Exit, Layer, Scope, Stream } from "effect"
import { Bench } from "tinybench"
import { loadHardware, loadModel, makeSimContext, SimAdapterLive, simOutcome } from "../adapters/sim/index.ts"
import { median } from "../core/common/index.ts"
import { makeRunStateFold, stepCompleted, toEnvelope } from "../core/log/index.ts"
import { readRunEvents, startRun } from "../core/run/index.ts"
import { decodeSpec, makeChecker, makePlanner, type ScheduleSpec } from "../core/schedule/index.ts"
import {
  type EventEnvelope,
  EventStore,
  type EventStoreShape,
  makeMemoryEventStore,
  makeSqliteEventStore,
  type StoreError,
} from "../core/store/index.ts"
import { makePostgresEventStore } from "../core/store/postgres.ts"
import { benchHarnessExec, describeHarnessExec } from "./harness-exec.ts"
import { benchHarnessOverhead } from "./harness-overhead.ts"
import { benchGlobalOrderCost, withBenchPostgres } from "./store-bench-pg.ts"

const STEPS = Number(process.env.BENCH_STEPS ?? 300_000)
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3)

const spec: ScheduleSpec = Either.getOrThrow(
  decodeSpec({
    name: "bench-8to1",
    seed: 1,
    phases: [
      { name: "text-only", steps: 1000, ratio: { visual: 0, text: 1 } },
      { name: "joint", steps: STEPS - 1000, ratio: { visual: 8, text: 1 } },
    ],
    batch: { visual: { size: 8, accumulation: 1 }, text: { size: 8, accumulation: 1 } },
    optimizer: {
      kind: "adamw",
      lr: 1e-4,
      groups: [
        { name: "backbone", lr: 1e-5 },
        { name: "text-encoder", lr: 1e-5 },
        { name: "visual-encoder" },
        { name: "head" },
      ],
    },
    lr: {
      warmup: { kind: "linear", steps: 1000 },
      decay: { kind: "multistep", milestones: [STEPS - 10_000], gamma: 0.1 },
    },
  }),
)

// Each timed section starts from a collected heap, so one side never pays for the other's garbage.
setFlagsFromString("--expose-gc")
const collect = runInNewContext("gc") as () => void

const time = async (f: () => Promise<unknown> | unknown): Promise<number> => {
  collect()
  const t0 = performance.now()
  await f()
  return performance.now() - t0
}

const simContext = Effect.runSync(
  Effect.map(Effect.all([loadHardware("h100-sxm"), loadModel("trex2-tiny")]), ([hw, m]) =>
    makeSimContext(spec, hw, m),
  ),
)

/** The same outcomes as the engine computes, without events, store or fold. */
const plainLoop = () => {
  const planner = makePlanner(spec)
  let checksum = 0
  for (let i = 0; i < planner.total; i++) {
    const o = simOutcome(simContext, planner.at(i))
    if ("losses" in o) checksum += o.losses.total ?? 0
  }
  return checksum
}

const engineRun = (runId: string) =>
  Effect.runPromise(
    Effect.gen(function* () {
      const store = yield* makeMemoryEventStore({ copy: false })
      return yield* startRun({ runId, spec, source: "bench", adapterOptions: {} }).pipe(
        Effect.provide(Layer.merge(Layer.succeed(EventStore, store), SimAdapterLive)),
      )
    }),
  )

const rate = (n: number, ms: number) => Math.round((n * 1000) / ms)

const engineVsLoop = async () => {
  const engine: number[] = []
  const loop: number[] = []
  for (let r = 0; r < ROUNDS; r++) {
    engine.push(await time(() => engineRun(`e${r}`)))
    loop.push(await time(plainLoop))
  }
  const e = median(engine)
  const l = median(loop)
  return {
    steps: STEPS,
    rounds: ROUNDS,
    engineStepsPerSec: rate(STEPS, e),
    plainLoopStepsPerSec: rate(STEPS, l),
    engineSlowdown: e / l,
    targets: { engineStepsPerSec: 300_000, maxSlowdown: 4 },
  }
}

/** A real run's events, as the engine writes them (recorded once into memory). */
const realRunEvents = (): Promise<ReadonlyArray<EventEnvelope>> =>
  Effect.runPromise(
    Effect.gen(function* () {
      const mem = yield* makeMemoryEventStore()
      yield* startRun({ runId: "src", spec, source: "bench", adapterOptions: {} }).pipe(
        Effect.provide(Layer.merge(Layer.succeed(EventStore, mem), SimAdapterLive)),
      )
      return Array.from(yield* Stream.runCollect(mem.read("src")), (e) => ({
        type: e.type,
        version: e.version,
        data: e.data,
      }))
    }),
  )

const cpuMs = () => {
  const u = process.cpuUsage()
  return (u.user + u.system) / 1000
}

/**
 * Records a real run into a store (append rate, in the engine's 2048-event batches), then replays
 * it: read + decode + fold. Per round a fresh stream, through `open`. Rates per second of wall
 * time and of this process's CPU; with `serverCpuMs` (a server's CPU so far) also per second of
 * this process's plus the server's CPU.
 */
const appendReplay = async (
  events: ReadonlyArray<EventEnvelope>,
  open: Effect.Effect<EventStoreShape, StoreError, Scope.Scope>,
  serverCpuMs: () => number | undefined = () => undefined,
) => {
  const append: number[] = []
  const replay: number[] = []
  const appendCpu: number[] = []
  const replayCpu: number[] = []
  const appendTotalCpu: number[] = []
  const replayTotalCpu: number[] = []
  for (let r = 0; r < ROUNDS; r++) {
    const runId = `run-${r}`
    await Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const store = yield* open
          collect()
          const s0 = serverCpuMs()
          const c0 = cpuMs()
          const t0 = performance.now()
          let v = 0
          for (let i = 0; i < events.length; i += 2048)
            v = yield* store.append(runId, events.slice(i, i + 2048), v)
          append.push(performance.now() - t0)
          const c1 = cpuMs()
          const s1 = serverCpuMs()
          appendCpu.push(c1 - c0)
          if (s0 !== undefined && s1 !== undefined) appendTotalCpu.push(c1 - c0 + s1 - s0)
          collect()
          const c2 = cpuMs()
          const t1 = performance.now()
          const fold = makeRunStateFold()
          yield* readRunEvents(runId).pipe(
            Stream.runForEachChunk((chunk) => Effect.sync(() => chunk.pipe(Chunk.forEach(fold.push)))),
            Effect.provideService(EventStore, store),
          )
          const state = fold.state()
          replay.push(performance.now() - t1)
          const c3 = cpuMs()
          const s3 = serverCpuMs()
          replayCpu.push(c3 - c2)
          if (s1 !== undefined && s3 !== undefined) replayTotalCpu.push(c3 - c2 + s3 - s1)
          if (state.stepsCompleted !== STEPS) throw new Error(`replayed ${state.stepsCompleted} steps`)
        }),
      ),
    )
  }
  const perTotal = (ms: ReadonlyArray<number>) =>
    ms.length === ROUNDS ? rate(events.length, median(ms)) : null
  return {
    events: events.length,
    batch: 2048,
    appendEventsPerSec: rate(events.length, median(append)),
    replayEventsPerSec: rate(events.length, median(replay)),
    appendEventsPerCpuSec: rate(events.length, median(appendCpu)),
    replayEventsPerCpuSec: rate(events.length, median(replayCpu)),
    appendEventsPerTotalCpuSec: perTotal(appendTotalCpu),
    replayEventsPerTotalCpuSec: perTotal(replayTotalCpu),
  }
}

/** SQLite: a temp file, opened afresh for each round. */
const sqliteAppendReplay = async (events: ReadonlyArray<EventEnvelope>) => {
  const dir = mkdtempSync(join(tmpdir(), "interleave-bench-"))
  try {
    const {
      appendEventsPerTotalCpuSec: _a,
      replayEventsPerTotalCpuSec: _r,
      ...result
    } = await appendReplay(events, makeSqliteEventStore(join(dir, "runs.db")))
    return { ...result, targets: { appendEventsPerSec: 100_000, replayEventsPerSec: 300_000 } }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

/**
 * PostgreSQL over loopback: a throwaway server (or INTERLEAVE_BENCH_PG_URL), the same rounds as
 * SQLite's, then the commit-order lock's cost under four concurrent writers. No targets yet.
 */
const postgresAppendReplay = async (events: ReadonlyArray<EventEnvelope>) => {
  const result = await withBenchPostgres(async (server) => ({
    server: server.source,
    ...(await appendReplay(
      events,
      makePostgresEventStore(server.url, { schema: "core_bench" }),
      server.serverCpuMs,
    )),
    globalOrder: await benchGlobalOrderCost(server),
  }))
  return result.ok ? result.value : { skipped: result.reason }
}

/** tinybench micro-benchmarks of the hot functions. */
const micro = async () => {
  const planner = makePlanner(spec)
  const bench = new Bench({ time: 300, warmupTime: 100 })
  let i = 0
  const checker = makeChecker(spec)
  let c = 0
  bench
    .add("planStep (random access)", () => {
      i = (i * 7919 + 13) % planner.total
      planner.at(i)
    })
    .add("checker push (sequential)", () => {
      if (c >= planner.total) return
      checker.push(planner.at(c++))
    })
    .add("sim step (stepSync outcome)", () => {
      i = (i + 1) % planner.total
      simOutcome(simContext, planner.at(i))
    })
  // Store appends of one engine-sized batch of real step events (the engine appends 2048 at a time).
  const batch = Array.from({ length: 256 }, (_, k) => {
    const plan = planner.at(k)
    const o = simOutcome(simContext, plan)
    return toEnvelope(
      stepCompleted(plan, "losses" in o ? o : { losses: {}, durationMs: 0, samples: 0, memory: {} }),
    )
  })
  const dir = mkdtempSync(join(tmpdir(), "interleave-micro-"))
  const stores = await Effect.runPromise(
    Effect.gen(function* () {
      const scope = yield* Scope.make()
      const sqlite = yield* Scope.extend(makeSqliteEventStore(join(dir, "micro.db")), scope)
      const memory = yield* makeMemoryEventStore()
      return { scope, sqlite, memory }
    }),
  )
  const versions = { sqlite: 0, memory: 0 }
  bench
    .add("memory store append (256 step events)", async () => {
      versions.memory = await Effect.runPromise(stores.memory.append("m", batch, versions.memory))
    })
    .add("sqlite store append (256 step events)", async () => {
      versions.sqlite = await Effect.runPromise(stores.sqlite.append("s", batch, versions.sqlite))
    })
  await bench.run()
  await Effect.runPromise(Scope.close(stores.scope, Exit.void))
  rmSync(dir, { recursive: true, force: true })
  return bench.tasks.map((t) => {
    const r = t.result as
      | { latency?: { mean: number; p99: number; rme: number }; throughput?: { mean: number } }
      | undefined
    return {
      name: t.name,
      meanNs: (r?.latency?.mean ?? Number.NaN) * 1e6,
      p99Ns: (r?.latency?.p99 ?? Number.NaN) * 1e6,
      rmePct: r?.latency?.rme ?? Number.NaN,
      opsPerSec: Math.round(r?.throughput?.mean ?? Number.NaN),
    }
  })
}

const fmt = (n: number) => n.toLocaleString("en-US", { maximumFractionDigits: 2 })

const main = async () => {
  const started = new Date().toISOString()
  const log = (s: string) => process.stdout.write(`${s}\n`)
  log(
    `interleave core benchmarks: ${STEPS} steps, ${ROUNDS} rounds, ${cpus()[0]?.model ?? "?"} x${cpus().length}`,
  )

  const engine = await engineVsLoop()
  log(
    `engine (sim + memory store): ${fmt(engine.engineStepsPerSec)} steps/s; plain loop ${fmt(engine.plainLoopStepsPerSec)} steps/s; ` +
      `engine/loop time ratio ${engine.engineSlowdown.toFixed(2)}x (target <= 4x, >= 300k steps/s)`,
  )
  const runEvents = await realRunEvents()
  const sqlite = await sqliteAppendReplay(runEvents)
  log(
    `sqlite: append ${fmt(sqlite.appendEventsPerSec)} events/s (target >= 100k), ${fmt(sqlite.appendEventsPerCpuSec)} per CPU-s; ` +
      `replay read+decode+fold ${fmt(sqlite.replayEventsPerSec)} events/s (target >= 300k), ${fmt(sqlite.replayEventsPerCpuSec)} per CPU-s`,
  )
  const postgres = await postgresAppendReplay(runEvents)
  if ("skipped" in postgres) log(`postgres: SKIPPED, no server (${postgres.skipped})`)
  else {
    const total = (n: number | null) => (n === null ? "?" : fmt(n))
    log(
      `postgres (loopback, ${postgres.server} server): append ${fmt(postgres.appendEventsPerSec)} events/s, ` +
        `${fmt(postgres.appendEventsPerCpuSec)} per client CPU-s, ${total(postgres.appendEventsPerTotalCpuSec)} per client+server CPU-s; ` +
        `replay read+decode+fold ${fmt(postgres.replayEventsPerSec)} events/s, ${fmt(postgres.replayEventsPerCpuSec)} per client CPU-s, ` +
        `${total(postgres.replayEventsPerTotalCpuSec)} per client+server CPU-s`,
    )
    for (const c of postgres.globalOrder.cases)
      log(
        `postgres commit-order lock, ${postgres.globalOrder.writers} writers x ${c.batch}-event appends: ` +
          `${fmt(c.orderedAppendsPerSec)} appends/s with it, ${fmt(c.unorderedAppendsPerSec)} without (cost ${(c.cost * 100).toFixed(0)}%)`,
      )
  }
  const microResults = await micro()
  for (const m of microResults)
    log(`tinybench ${m.name}: ${fmt(m.meanNs)} ns mean, p99 ${fmt(m.p99Ns)} ns, rme ${fmt(m.rmePct)}%`)
  const harness = process.env.BENCH_SKIP_TFJS ? undefined : await benchHarnessOverhead()
  if (harness)
    for (const r of harness.ratios)
      log(
        `harness overhead tfjs ${harness.preset}/${harness.backend} ratio ${r.ratio}: engine ${fmt(r.engineMsPerStep)} ms/step vs bare ${fmt(r.bareMsPerStep)} ms/step: ${(r.overhead * 100).toFixed(2)}% (target <= 3%)`,
      )

  const torchProbe = spawnSync("/usr/bin/python3", ["-c", "import torch"], { encoding: "utf8" })
  const torchMissing = process.env.BENCH_SKIP_TORCH
    ? "BENCH_SKIP_TORCH is set"
    : torchProbe.error
      ? `/usr/bin/python3 cannot run (${torchProbe.error.message})`
      : torchProbe.status !== 0
        ? "/usr/bin/python3 has no torch (install Debian's python3-torch)"
        : undefined
  const harnessExec = torchMissing ? { skipped: torchMissing } : await benchHarnessExec({ log })
  if ("skipped" in harnessExec) log(`harness overhead pytorch (exec): SKIPPED, ${harnessExec.skipped}`)
  else for (const line of describeHarnessExec(harnessExec)) log(line)

  const result = {
    suite: "core",
    createdAt: started,
    machine: {
      cpu: cpus()[0]?.model ?? "unknown",
      cores: cpus().length,
      memBytes: totalmem(),
      node: process.versions.node,
      platform: process.platform,
    },
    engine,
    sqlite,
    postgres,
    micro: microResults,
    harness: harness ?? null,
    harnessExec,
    pass: {
      engineRate: engine.engineStepsPerSec >= 300_000,
      engineSlowdown: engine.engineSlowdown <= 4,
      sqliteAppend: sqlite.appendEventsPerSec >= 100_000,
      sqliteReplay: sqlite.replayEventsPerSec >= 300_000,
      harnessOverhead: harness ? harness.ratios.every((r) => r.overhead <= 0.03) : null,
      harnessExecOverhead:
        "skipped" in harnessExec
          ? null
          : harnessExec.ratios.every((r) => r.ratio !== "8:1" || r.directOverhead <= 0.01),
    },
  }
  mkdirSync(join(import.meta.dirname, "results"), { recursive: true })
  const out = join(import.meta.dirname, "results", "core.json")
  writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`)
  log(`wrote ${out}`)
  log(`pass: ${JSON.stringify(result.pass)}`)
}

await main()

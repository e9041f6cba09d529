/**
 * `interleave run --adapter tfjs` in-process (runCli with a capturing console): the tfjs flags
 * reach the adapter's options and are recorded with the run; a bad value is one line, exit 2.
 */
import { rmSync } from "node:fs"
import { join } from "node:path"
import * as NodeContext from "@effect/platform-node/NodeContext"
import { Console, Effect, Option, Stream } from "effect"
import { afterAll, describe, expect, it } from "vitest"
import { runCli } from "../../cli/app.ts"
import { buildAdapterOptions } from "../../cli/commands/run.ts"
import { readRunEvents } from "../../core/run/index.ts"
import { EventStore, makeSqliteEventStore } from "../../core/store/index.ts"
import { scenario, tempDir } from "../support/cli-helpers.ts"

const dir = tempDir("interleave-tfjs-cli-")
afterAll(() => rmSync(dir, { recursive: true, force: true }))

const cli = (args: ReadonlyArray<string>) =>
  Effect.runPromise(
    Effect.gen(function* () {
      const base = yield* Console.consoleWith(Effect.succeed)
      const out: string[] = []
      const err: string[] = []
      const capturing: Console.Console = {
        ...base,
        log: (...a: ReadonlyArray<unknown>) => Effect.sync(() => void out.push(a.join(" "))),
        error: (...a: ReadonlyArray<unknown>) => Effect.sync(() => void err.push(a.join(" "))),
      }
      const code = yield* runCli(args).pipe(Effect.withConsole(capturing), Effect.provide(NodeContext.layer))
      return { code, out: out.join("\n"), err: err.join("\n") }
    }),
  )

const startedOptions = (store: string, runId: string) =>
  Effect.runPromise(
    Effect.scoped(
      Effect.gen(function* () {
        const s = yield* makeSqliteEventStore(store)
        const events = yield* Stream.runCollect(readRunEvents(runId)).pipe(
          Effect.provideService(EventStore, s),
        )
        const started = Array.from(events).find((e) => e._tag === "RunStarted")
        return started?._tag === "RunStarted" ? started.adapter.options : undefined
      }),
    ),
  )

describe("run --adapter tfjs flags", () => {
  it("passes --align-weight (tfjs only) into the adapter options", () => {
    const base = {
      adapter: "tfjs",
      hardware: Option.none(),
      model: Option.none(),
      backend: Option.some("cpu"),
      preset: Option.none(),
    }
    expect(buildAdapterOptions({ ...base, alignWeight: Option.some(0) })).toEqual({
      backend: "cpu",
      alignWeight: 0,
    })
    expect(buildAdapterOptions({ ...base, alignWeight: Option.none() })).toEqual({ backend: "cpu" })
    expect(buildAdapterOptions({ ...base, adapter: "sim", alignWeight: Option.some(0) })).toEqual({})
  })

  it("records --align-weight 0 with the run; a negative one is refused with exit 2", async () => {
    const store = join(dir, "runs.db")
    const common = ["run", scenario("trex2-joint-8to1.json"), "--adapter", "tfjs", "--store", store]
    const ok = await cli([
      ...common,
      "--align-weight",
      "0",
      "--steps",
      "2",
      "--eval-every",
      "0",
      "--run-id",
      "a0",
    ])
    expect(ok.err).toBe("")
    expect(ok.code).toBe(0)
    expect(await startedOptions(store, "a0")).toMatchObject({
      backend: "wasm",
      preset: "tiny",
      alignWeight: 0,
    })
    const bad = await cli([...common, "--align-weight", "-1", "--steps", "2", "--run-id", "a1"])
    expect(bad.code).toBe(2)
    expect(bad.err).toBe("interleave: tfjs adapter option alignWeight: must be a finite number >= 0")
  }, 120_000)
})

/**
 * Sweeps with pytorch and exec targets: decoding, config ids and adapter options, the shipped
 * ratios-pytorch-cpu sweep (duplicate-free, text batch varied as well as visual), and a small
 * `interleave bench` over an exec target (the SDK's torch-free fake trainer).
 */
import { readFileSync, rmSync } from "node:fs"
import { join } from "node:path"
import { Effect, Either } from "effect"
import { afterAll, describe, expect, it } from "vitest"
import { decodePytorchOptions } from "../../adapters/exec/index.ts"
import { decodeSweep, expandSweep, type SweepFile } from "../../core/bench/sweep.ts"
import { loadScenario } from "../../core/schedule/index.ts"
import { runCli, scenario, tempDir, writeJson } from "../support/cli-helpers.ts"
import { PY_TESTS, PYTHON, pythonTestsRun, ROOT } from "../support/exec-support.ts"

const base = Effect.runSync(loadScenario(scenario("trex2-joint-8to1.json")))
const sweepOf = (targets: unknown[], extra: Record<string, unknown> = {}) =>
  ({
    name: "s",
    base: "../trex2-joint-8to1.json",
    targets,
    warmupSteps: 1,
    measuredSteps: 8,
    ...extra,
  }) as const
const decode = (input: unknown) => decodeSweep(input, "s.json")

describe("sweep targets: pytorch and exec", () => {
  it("decode, with ids and the options each adapter is opened with", () => {
    const sweep = Either.getOrThrow(
      decode(
        sweepOf(
          [
            { adapter: "pytorch" },
            {
              adapter: "pytorch",
              device: "cuda:1",
              preset: "small",
              python: "/opt/py/bin/python",
              alignWeight: 0,
            },
            { adapter: "exec", cmd: "python3 my_trainer.py --fast", options: { lr: 1 }, stepTimeout: 30 },
            { adapter: "exec", name: "mmdet", cmd: "python3 tools/train.py", args: ["cfg.py"] },
          ],
          { ratios: ["8:1"], batchSizes: [{ visual: 16, text: 8 }] },
        ),
      ),
    )
    const configs = Either.getOrThrow(expandSweep(sweep, base))
    expect(configs.map((c) => c.id)).toEqual([
      "pytorch-cpu-tiny-8x1-b16x8",
      "pytorch-cuda1-small-8x1-b16x8",
      "exec-python3-8x1-b16x8",
      "exec-mmdet-8x1-b16x8",
    ])
    expect(configs.map((c) => c.label)).toEqual([
      "8:1 b16/8 pytorch/cpu tiny",
      "8:1 b16/8 pytorch/cuda:1 small",
      "8:1 b16/8 exec python3",
      "8:1 b16/8 exec mmdet",
    ])
    expect(configs.map((c) => c.adapterOptions)).toEqual([
      {},
      { python: "/opt/py/bin/python", device: "cuda:1", preset: "small", alignWeight: 0 },
      { cmd: "python3 my_trainer.py --fast", options: { lr: 1 }, stepTimeout: 30 },
      { cmd: "python3 tools/train.py", args: ["cfg.py"] },
    ])
    // What the sweep hands the pytorch adapter, it accepts.
    for (const c of configs.slice(0, 2)) Effect.runSync(decodePytorchOptions(c.adapterOptions))
  })

  it("refuses bad targets, naming the field", () => {
    const cases: Array<[unknown, string]> = [
      [{ adapter: "pytorch", device: "tpu" }, "targets[0].device: must be cpu, cuda or cuda:N"],
      [
        { adapter: "pytorch", preset: "huge" },
        'targets[0].preset: must be one of tiny, small, base, got "huge"',
      ],
      [{ adapter: "pytorch", backend: "wasm" }, "targets[0].backend: unknown key"],
      [{ adapter: "exec" }, "targets[0].cmd: is required"],
      [
        { adapter: "exec", cmd: "x", stepTimeout: 0 },
        "targets[0].stepTimeout: must be a number of seconds > 0",
      ],
      [{ adapter: "exec", cmd: "x", name: "a b" }, "targets[0].name: must be letters, digits"],
      [{ adapter: "jax" }, 'unknown target adapter "jax" (known: "sim", "tfjs", "pytorch", "exec")'],
    ]
    for (const [target, message] of cases) {
      const r = decode(sweepOf([target]))
      expect(Either.isLeft(r), JSON.stringify(target)).toBe(true)
      expect(Either.isLeft(r) && r.left.message).toContain(message)
    }
    const dup = Either.getOrThrow(
      decode(sweepOf([{ adapter: "pytorch" }, { adapter: "pytorch", device: "cpu" }])),
    )
    expect(
      Either.getLeft(expandSweep(dup, base)).pipe((o) => o._tag === "Some" && o.value.message),
    ).toContain("targets[1]: same as targets[0] (pytorch-cpu-tiny)")
  })

  it("ships ratios-pytorch-cpu: 5 ratios x 5 batch pairs, no duplicates, the text batch varied too", () => {
    const file = join(ROOT, "scenarios", "sweeps", "ratios-pytorch-cpu.json")
    const sweep: SweepFile = Either.getOrThrow(decode(JSON.parse(readFileSync(file, "utf8"))))
    const configs = Either.getOrThrow(expandSweep(sweep, base))
    expect(configs).toHaveLength(25)
    expect(new Set(configs.map((c) => c.id)).size).toBe(25)
    expect(new Set(configs.map((c) => `${c.ratio.visual}:${c.ratio.text}`)).size).toBe(5)
    const pairs = new Set(configs.map((c) => `${c.batch.visual}/${c.batch.text}`))
    expect([...pairs]).toEqual(["4/4", "8/4", "8/8", "16/8", "16/16"])
    // Pairs with the same visual batch and different text batches, and the other way round.
    expect(pairs.has("8/4") && pairs.has("8/8") && pairs.has("16/8") && pairs.has("16/16")).toBe(true)
    expect(configs.every((c) => c.target.adapter === "pytorch")).toBe(true)
    expect(configs[0]!.id).toBe("pytorch-cpu-tiny-8x1-b4x4")
  })
})

const dir = tempDir("interleave-exec-sweep-")
afterAll(() => rmSync(dir, { recursive: true, force: true }))

describe.runIf(pythonTestsRun("exec sweep bench"))("interleave bench over an exec target", () => {
  it("records a run per configuration and reports the trainer's step times", async () => {
    const sweep = writeJson(dir, "exec-sweep.json", {
      name: "exec-fake",
      base: scenario("trex2-joint-8to1.json"),
      ratios: ["2:1", "text-only"],
      batchSizes: [{ visual: 4, text: 2 }],
      targets: [{ adapter: "exec", name: "fake", cmd: `${PYTHON} ${join(PY_TESTS, "fake_trainer.py")}` }],
      warmupSteps: 1,
      measuredSteps: 6,
      microIterations: 2,
    })
    const out = join(dir, "out")
    const r = await runCli(["bench", sweep, "--out", out, "--store", join(dir, "runs.db"), "--json"], {
      env: { INTERLEAVE_TRAINER_STDERR: "quiet", INTERLEAVE_PROGRESS: "0" },
    })
    expect(r.code, r.stderr).toBe(0)
    const results = JSON.parse(readFileSync(join(out, "results.json"), "utf8"))
    expect(results.configs.map((c: { id: string }) => c.id)).toEqual([
      "exec-fake-2x1-b4x2",
      "exec-fake-0x1-b4x2",
    ])
    for (const c of results.configs) {
      expect(c.adapter).toBe("exec")
      expect(c.steps).toBe(6)
      expect(c.hardware).toBe("fake") // the device the trainer reported
    }
  })
})

/**
 * Hostile JSON: nesting 100,000 levels deep and 12 MB values of the wrong type, in scenario files,
 * sweep and results files and log lines. Each is bad input (exit 2) in one short line that names
 * the file and where, never a stack overflow (exit 70) or the value echoed whole.
 */
import { rmSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { Either, Schema } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { decodeMeasured } from "../../adapters/sim/fit.ts"
import { decodeHardware } from "../../adapters/sim/profiles.ts"
import { decodeSweep, decodeSweepResults, parseSweep, parseSweepResults } from "../../core/bench/index.ts"
import { firstIssue, jsonDepthOffset, MAX_JSON_DEPTH, parseJsonText } from "../../core/common/index.ts"
import { decodeEvent } from "../../core/log/index.ts"
import { parseSpec } from "../../core/schedule/index.ts"
import { baseScenario, scenario, tempDir } from "../support/cli-helpers.ts"
import { cliInProcess as runCli } from "../support/cli-inprocess.ts"

const dir = tempDir()
afterAll(() => rmSync(dir, { recursive: true, force: true }))

const DEEP = 100_000
const open = (n: number) => "[".repeat(n)
const nested = (n: number) => `${open(n)}${"]".repeat(n)}`
const HUGE = "y".repeat(12 * 1024 * 1024)

describe("jsonDepthOffset and parseJsonText", () => {
  it("finds where nesting passes the limit, skipping brackets inside strings", () => {
    expect(jsonDepthOffset(nested(MAX_JSON_DEPTH))).toBeUndefined()
    expect(jsonDepthOffset(nested(MAX_JSON_DEPTH + 1))).toBe(MAX_JSON_DEPTH)
    expect(jsonDepthOffset(`{"a": ${open(DEEP)}`)).toBe(6 + MAX_JSON_DEPTH - 1)
    const inString = JSON.stringify({ s: open(DEEP), t: '\\"[[[' })
    expect(jsonDepthOffset(inString)).toBeUndefined()
    expect(Either.isRight(parseJsonText(inString))).toBe(true)
  })

  it("refuses deep nesting, balanced or not, naming line and column, without overflowing", () => {
    expect(parseJsonText(open(DEEP))).toEqual(
      Either.left(
        "JSON nested more than 512 levels deep at line 1, column 513 (interleave reads at most 512)",
      ),
    )
    expect(parseJsonText(`{\n  "name": "x",\n  "phases": ${nested(DEEP)}\n}`)).toEqual(
      Either.left(
        "JSON nested more than 512 levels deep at line 3, column 524 (interleave reads at most 512)",
      ),
    )
  })

  it("scenario, sweep and results files are refused the same way", () => {
    const deep = /: JSON nested more than 512 levels deep at line 1, column 513/
    const spec = parseSpec(nested(DEEP), "s.json")
    expect(Either.isLeft(spec) && spec.left.message).toMatch(deep)
    const sweep = parseSweep(open(DEEP), "w.json")
    expect(Either.isLeft(sweep) && sweep.left.message).toMatch(deep)
    const results = parseSweepResults(nested(DEEP), "r.json")
    expect(Either.isLeft(results) && results.left.message).toMatch(/JSON nested more than 512 levels deep/)
  })
})

describe("decode errors quote values clipped", () => {
  it("firstIssue clips the reason and the path", () => {
    const decode = Schema.decodeUnknownEither(Schema.Struct({ n: Schema.Number }), {
      onExcessProperty: "error",
    })
    const wrong = decode({ n: HUGE })
    expect(Either.isLeft(wrong)).toBe(true)
    if (Either.isLeft(wrong)) {
      const { path, reason } = firstIssue(wrong.left)
      expect(path).toBe("n")
      expect(reason.length).toBeLessThan(400)
      expect(reason).toMatch(/^Expected number, actual "yyy/)
      expect(reason).toContain("characters)")
    }
    const key = decode({ n: 1, [HUGE]: 2 })
    if (Either.isLeft(key)) expect(firstIssue(key.left).path.length).toBeLessThan(400)
    else expect.unreachable()
  })

  it("a duplicate phase or group name, and a sweep target's adapter, are quoted clipped", () => {
    const long = "p".repeat(100_000)
    const base = baseScenario()
    const phases = {
      ...base,
      phases: [base.phases[0], { ...base.phases[1], name: long }, { ...base.phases[1], name: long }],
    }
    const groups = { ...base, optimizer: { ...base.optimizer, groups: [{ name: long }, { name: long }] } }
    for (const [spec, path] of [
      [phases, "phases[2].name"],
      [groups, "optimizer.groups[1].name"],
    ] as const) {
      const r = parseSpec(JSON.stringify(spec), "s.json")
      const message = Either.isLeft(r) ? r.left.message : ""
      expect(message).toContain(`${path}: duplicate`)
      expect(message).toContain("(100002 characters)")
      expect(message.length).toBeLessThan(400)
    }
    const sweep = parseSweep(
      JSON.stringify({ name: "w", base: "b.json", targets: [{ adapter: long }] }),
      "w.json",
    )
    const message = Either.isLeft(sweep) ? sweep.left.message : ""
    expect(message).toContain("targets[0].adapter: unknown target adapter")
    expect(message.length).toBeLessThan(400)
  })

  it("the sweep, results, profile and measurement decoders go through it", () => {
    const big = HUGE.slice(0, 5 * 1024 * 1024)
    const results: ReadonlyArray<Either.Either<unknown, { readonly message: string }>> = [
      decodeSweep(big, "sweep.json"),
      decodeSweepResults(big, "results.json"),
      decodeHardware(big, "gpu.json"),
      decodeMeasured(big, "measured.json"),
    ]
    for (const r of results) {
      const m = Either.isLeft(r) ? r.left.message : "decoded"
      // Either the value is quoted clipped, or the file's shape is named without quoting it.
      expect(m).toMatch(/… \(\d+ characters\)|must be a JSON object, got a string/)
      expect(m.length).toBeLessThan(500)
    }
  })

  it("the scenario and event decoders go through it", () => {
    const spec = parseSpec(JSON.stringify({ ...baseScenario(), phases: HUGE }), "huge.json")
    expect(Either.isLeft(spec) && spec.left.message.length).toBeLessThan(500)
    const event = decodeEvent(
      {
        type: "PhaseStarted",
        version: 1,
        data: { _tag: "PhaseStarted", phase: "joint", index: 0, step: HUGE },
      },
      "log:1",
    )
    expect(Either.isLeft(event) && event.left.message.length).toBeLessThan(500)
  })
})

describe("through the CLI", () => {
  let jsonl: string[] = []
  const store = join(dir, "runs.db")
  beforeAll(async () => {
    const r = await runCli([
      "run",
      scenario("text-first-3to2.json"),
      "--steps",
      "12",
      "--run-id",
      "h",
      "--store",
      store,
    ])
    expect(r.code).toBe(0)
    jsonl = (await runCli(["export", "h", "--store", store])).stdout.trim().split("\n")
  })

  /** Exit 2, one short line matching `message`. */
  const expectBadInput = (r: { code: number | null; stderr: string }, message: RegExp) => {
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(message)
    expect(r.stderr.trim().split("\n")).toHaveLength(1)
    expect(r.stderr.length).toBeLessThan(600)
  }

  it("a scenario nested 100,000 deep is exit 2 naming the file, line and column", async () => {
    const file = join(dir, "deep.json")
    writeFileSync(file, `{\n  "name": ${nested(DEEP)}\n}\n`)
    for (const args of [
      ["verify", file],
      ["plan", file],
    ]) {
      expectBadInput(
        await runCli(args),
        new RegExp(`${file}: JSON nested more than 512 levels deep at line 2, column 522`),
      )
    }
  })

  it("a scenario with a 12 MB value of the wrong type is exit 2 naming the field, the value clipped", async () => {
    const file = join(dir, "huge.json")
    writeFileSync(file, JSON.stringify({ ...baseScenario(), phases: HUGE }))
    expectBadInput(
      await runCli(["verify", file]),
      new RegExp(`${file}: phases: expected an array, got a string "yyy.*… \\(\\d+ characters\\)$`, "m"),
    )
  })

  it("a log line nested 100,000 deep is exit 2 naming the file and line, for verify --log and import", async () => {
    for (const [name, deepLine] of [
      ["deep.jsonl", `{"type":"StepCompleted","version":2,"data":${nested(DEEP)}}`],
      ["deep.mllog", `:::MLLOG {"namespace":"","metadata":{"interleave":${open(DEEP)}}}`],
    ] as const) {
      const lines = name.endsWith(".mllog")
        ? [`:::MLLOG {"namespace":"","time_ms":1,"key":"x","metadata":{}}`, deepLine]
        : [...jsonl.slice(0, 3), deepLine, ...jsonl.slice(3)]
      const at = name.endsWith(".mllog") ? 2 : 4
      const file = join(dir, name)
      writeFileSync(file, `${lines.join("\n")}\n`)
      for (const args of [
        ["verify", "--log", file],
        ["import", file, "--run-id", "deep", "--store", store],
      ]) {
        expectBadInput(
          await runCli(args),
          new RegExp(`${file}:${at}: JSON nested more than 512 levels deep at column \\d+`),
        )
      }
    }
    expect((await runCli(["show", "deep", "--store", store])).code).toBe(2)
  })

  it("a log line with a 12 MB value of the wrong type is exit 2 naming the line and field, clipped", async () => {
    const lines = [...jsonl]
    const i = lines.findIndex((l) => l.includes('"StepCompleted"'))
    lines[i] = lines[i]!.replace(/"modality":"\w+"/, `"modality":"${HUGE}"`)
    const file = join(dir, "huge.jsonl")
    writeFileSync(file, `${lines.join("\n")}\n`)
    for (const args of [
      ["verify", "--log", file],
      ["import", file, "--run-id", "huge", "--store", store],
    ]) {
      expectBadInput(await runCli(args), new RegExp(`${file}:${i + 1}: StepCompleted\\.modality: .*yyy…`))
    }
  })
})

describe("duplicate keys, a byte-order mark, bytes that are not UTF-8, null where an object goes", () => {
  const scenarioText = JSON.stringify({ ...baseScenario(), seed: 42 }, null, 2)
  const oneLine = async (file: string) => {
    const r = await runCli(["verify", file])
    return { code: r.code, lines: r.stderr.trim().split("\n") }
  }

  it('a repeated key ("seed": 42, "seed": 7) is exit 2 naming the key, line and column, at any depth', async () => {
    const file = join(dir, "dup.json")
    writeFileSync(file, scenarioText.replace('"seed": 42', '"seed": 42, "seed": 7'))
    const line = scenarioText.split("\n").findIndex((l) => l.includes('"seed"')) + 1
    expect(await oneLine(file)).toEqual({
      code: 2,
      lines: [
        `interleave: ${file}: duplicate key "seed" at line ${line}, column 15 (a key may appear once per object)`,
      ],
    })
    const nested = parseSpec('{"name":"n","batch":{"visual":{"size":1,"size":2}}}', "s.json")
    expect(Either.isLeft(nested) && nested.left.message).toBe(
      's.json: duplicate key "size" at line 1, column 41 (a key may appear once per object)',
    )
    // The same key in sibling objects, in arrays, or inside a string is no duplicate.
    expect(parseJsonText('{"a":{"k":1},"b":{"k":2},"c":[{"k":1},{"k":2}],"d":"\\"a\\":1"}')).toEqual(
      Either.right({ a: { k: 1 }, b: { k: 2 }, c: [{ k: 1 }, { k: 2 }], d: '"a":1' }),
    )
    // Keys compare unescaped: "a\u0062" is "ab".
    expect(parseJsonText('{"ab":1,"a\\u0062":2}')).toEqual(
      Either.left('duplicate key "ab" at line 1, column 9 (a key may appear once per object)'),
    )
    const sweep = parseSweep('{"name":"w","name":"v"}', "w.json")
    expect(Either.isLeft(sweep) && sweep.left.message).toMatch(/^w\.json: duplicate key "name" at line 1/)
  })

  it("a UTF-8 byte-order mark is dropped: the scenario verifies", async () => {
    const file = join(dir, "bom.json")
    writeFileSync(file, Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(scenarioText)]))
    const r = await runCli(["verify", file])
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toContain("PASS")
  })

  it("bytes that are not UTF-8 are exit 2 naming the byte, its offset, line and column", async () => {
    const file = join(dir, "latin1.json")
    const text = scenarioText.replace('"name": "t"', '"name": "caf\u00e9"')
    // Latin-1: é is the single byte 0xe9, not UTF-8's two.
    writeFileSync(file, Buffer.from(text, "latin1"))
    const line = text.split("\n").findIndex((l) => l.includes("caf")) + 1
    const column = text.split("\n")[line - 1]!.indexOf("é") + 1
    expect(await oneLine(file)).toEqual({
      code: 2,
      lines: [
        `interleave: ${file}: not UTF-8 text: byte 0xe9 at byte offset ${text.indexOf("é")} (line ${line}, column ${column}) is not valid UTF-8`,
      ],
    })
  })

  it("null (or an array) where an object goes is one plain line, not the schema's internals", async () => {
    for (const [name, value, message] of [
      ["batch-null.json", { ...baseScenario(), batch: null }, "batch: expected an object, got null"],
      [
        "visual-null.json",
        { ...baseScenario(), batch: { visual: null, text: { size: 2 } } },
        "batch.visual: expected an object, got null",
      ],
      ["phases-object.json", { ...baseScenario(), phases: {} }, "phases: expected an array, got an object"],
      ["phase-null.json", { ...baseScenario(), phases: [null] }, "phases[0]: expected an object, got null"],
    ] as const) {
      const file = join(dir, name)
      writeFileSync(file, JSON.stringify(value))
      expect(await oneLine(file)).toEqual({ code: 2, lines: [`interleave: ${file}: ${message}`] })
    }
  })
})
